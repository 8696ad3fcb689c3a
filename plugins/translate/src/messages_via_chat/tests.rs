use serde_json::json;

use super::*;
use crate::MaxTokensField;

#[test]
fn request_moves_system_tool_use_and_tool_results_into_openai_shape() {
    let body = json!({
        "model": "gpt-x",
        "max_tokens": 256,
        "system": [{ "type": "text", "text": "Be brief.", "cache_control": { "type": "ephemeral" } }],
        "messages": [
            { "role": "user", "content": "Weather in Paris?" },
            { "role": "assistant", "content": [
                { "type": "thinking", "thinking": "hmm", "signature": "s" },
                { "type": "text", "text": "Checking." },
                { "type": "tool_use", "id": "toolu_1", "name": "weather", "input": { "city": "Paris" } }
            ] },
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_1", "content": [{ "type": "text", "text": "sunny" }] },
                { "type": "text", "text": "Thanks", "cache_control": { "type": "ephemeral" } }
            ] }
        ],
        "tools": [{ "name": "weather", "description": "Weather", "input_schema": { "type": "object" } }],
        "tool_choice": { "type": "tool", "name": "weather", "disable_parallel_tool_use": true },
        "stop_sequences": ["END"],
        "stream": true,
        "thinking": { "type": "enabled", "budget_tokens": 1024 },
        "metadata": { "user_id": "u1" }
    });
    let options = Options { max_tokens_field: MaxTokensField::MaxCompletionTokens, ..Options::new() };
    let out = request(body, &options).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "gpt-x",
            "max_completion_tokens": 256,
            "messages": [
                { "role": "system", "content": "Be brief." },
                { "role": "user", "content": "Weather in Paris?" },
                { "role": "assistant", "content": "Checking.", "tool_calls": [
                    { "id": "toolu_1", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Paris\"}" } }
                ] },
                { "role": "tool", "tool_call_id": "toolu_1", "content": "sunny" },
                { "role": "user", "content": "Thanks" }
            ],
            "tools": [{ "type": "function", "function": { "name": "weather", "description": "Weather", "parameters": { "type": "object" } } }],
            "tool_choice": { "type": "function", "function": { "name": "weather" } },
            "parallel_tool_calls": false,
            "stop": ["END"],
            "stream": true,
            "stream_options": { "include_usage": true },
            "user": "u1"
        })
    );
}

#[test]
fn server_tools_and_unknown_fields_are_refused_unless_dropped() {
    let body = json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "user", "content": "hi" }],
        "tools": [{ "type": "web_search_20250305", "name": "web_search" }], "top_k": 3 });
    let error = request(body.clone(), &Options::new()).unwrap_err();
    assert!(error.message.contains("`top_k`"), "{}", error.message);
    assert!(error.message.contains("web_search_20250305"), "{}", error.message);
    let out = request(body, &Options { drop_params: true, ..Options::new() }).unwrap();
    assert!(out.get("tools").is_none() && out.get("top_k").is_none());
    assert_eq!(out["max_tokens"], 5);
}

#[test]
fn output_config_effort_goes_and_a_format_becomes_response_format() {
    let options = Options::new();
    let body = json!({ "model": "m", "max_tokens": 9, "messages": [], "output_config": { "effort": "high" } });
    let out = request(body, &options).unwrap();
    assert!(out.get("output_config").is_none() && out.get("response_format").is_none(), "{out}");
    let schema = json!({ "type": "object", "properties": { "a": { "type": "string" } } });
    let body = json!({ "model": "m", "max_tokens": 9, "messages": [],
        "output_config": { "format": { "type": "json_schema", "schema": schema } } });
    let out = request(body, &options).unwrap();
    assert_eq!(out["response_format"]["type"], "json_schema");
    assert_eq!(out["response_format"]["json_schema"]["schema"], schema);
    let body = json!({ "model": "m", "max_tokens": 9, "messages": [], "output_config": { "novel": 1 } });
    assert_eq!(request(body, &options).unwrap_err().param.as_deref(), Some("output_config.novel"));
}

#[test]
fn images_become_image_urls() {
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": [
        { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "AAAA" } },
        { "type": "text", "text": "what is this?" }
    ] }] });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(
        out["messages"][0]["content"][0],
        json!({ "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } })
    );
}

#[test]
fn response_maps_tool_calls_stop_reason_and_cached_usage() {
    let upstream = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-x",
        "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null,
            "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "{\"a\":1}" } }] } }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107, "prompt_tokens_details": { "cached_tokens": 60 } }
    });
    assert_eq!(
        response(upstream).unwrap(),
        json!({
            "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-x",
            "content": [{ "type": "tool_use", "id": "call_1", "name": "f", "input": { "a": 1 } }],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": { "input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 0 }
        })
    );
    assert!(response(json!({ "choices": [] })).is_err());
}

#[test]
fn errors_take_the_anthropic_shape() {
    let out = error(503, br#"{"error":{"message":"busy","type":"server_error"}}"#);
    assert_eq!(out, json!({ "type": "error", "error": { "type": "overloaded_error", "message": "busy" } }));
}

fn chunks(deltas: &[serde_json::Value]) -> Vec<SseEvent> {
    let mut events: Vec<SseEvent> = deltas.iter().map(|d| SseEvent::data(d.to_string())).collect();
    events.push(SseEvent::data("[DONE]"));
    events
}

fn run(events: &[SseEvent]) -> (Vec<(String, serde_json::Value)>, bool) {
    let mut translator = StreamTranslator::new();
    let mut out: Vec<SseEvent> = events.iter().flat_map(|e| translator.push(e)).collect();
    out.extend(translator.finish());
    let out = out.into_iter().map(|e| (e.event.unwrap_or_default(), serde_json::from_str(&e.data).unwrap())).collect();
    (out, translator.completed())
}

#[test]
fn text_then_tool_call_stream_becomes_blocks() {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| json!({ "id": "c1", "model": "gpt-x", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
    let events = chunks(&[
        chunk(json!({ "role": "assistant", "content": "" }), json!(null)),
        chunk(json!({ "content": "Let me " }), json!(null)),
        chunk(json!({ "content": "look." }), json!(null)),
        chunk(
            json!({ "tool_calls": [{ "index": 0, "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "" } }] }),
            json!(null),
        ),
        chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"a\":1}" } }] }), json!(null)),
        chunk(json!({}), json!("tool_calls")),
        json!({ "id": "c1", "model": "gpt-x", "choices": [], "usage": { "prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13 } }),
    ]);
    let (out, completed) = run(&events);
    assert!(completed);
    let names: Vec<&str> = out.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(out[0].1["message"]["id"], "c1");
    assert_eq!(out[5].1["content_block"], json!({ "type": "tool_use", "id": "call_1", "name": "f", "input": {} }));
    assert_eq!(out[5].1["index"], 1);
    assert_eq!(out[6].1["delta"], json!({ "type": "input_json_delta", "partial_json": "{\"a\":1}" }));
    assert_eq!(out[8].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(out[8].1["usage"]["output_tokens"], 4);
    assert_eq!(out[8].1["usage"]["input_tokens"], 9);
}

#[test]
fn a_stream_cut_before_finish_is_incomplete_but_one_without_done_is_not() {
    let start =
        SseEvent::data(json!({ "id": "c", "model": "m", "choices": [{ "delta": { "content": "hi" } }] }).to_string());
    let mut translator = StreamTranslator::new();
    translator.push(&start);
    assert!(translator.finish().is_empty());
    assert!(!translator.completed());

    let finished = SseEvent::data(
        json!({ "id": "c", "model": "m", "choices": [{ "delta": {}, "finish_reason": "stop" }] }).to_string(),
    );
    let mut translator = StreamTranslator::new();
    translator.push(&start);
    translator.push(&finished);
    let tail = translator.finish();
    assert_eq!(tail.last().unwrap().event.as_deref(), Some("message_stop"));
    assert!(translator.completed());
}

#[test]
fn a_system_turn_among_the_messages_stays_in_its_place() {
    let body = json!({ "model": "m", "max_tokens": 9, "system": "top", "messages": [
        { "role": "user", "content": "hi" },
        { "role": "system", "content": [{ "type": "text", "text": "# Environment" }] },
        { "role": "assistant", "content": "hello" },
    ] });
    let out = request(body, &Options::new()).unwrap();
    let roles: Vec<&str> = out["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "system", "assistant"]);
    assert_eq!(out["messages"][2]["content"], "# Environment");
}
