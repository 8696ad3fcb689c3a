use serde_json::json;

use super::*;

#[test]
fn request_moves_system_tools_and_tool_results_into_anthropic_shape() {
    let body = json!({
        "model": "claude-x",
        "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": "Weather in Paris?" },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "call_1", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Paris\"}" } }
            ] },
            { "role": "tool", "tool_call_id": "call_1", "content": "sunny" },
            { "role": "user", "content": [{ "type": "text", "text": "And tomorrow?" }] }
        ],
        "tools": [{ "type": "function", "function": { "name": "weather", "description": "Weather", "parameters": { "type": "object" } } }],
        "tool_choice": "required",
        "stop": "END",
        "max_completion_tokens": 100,
        "temperature": 0.5,
        "stream": true,
        "stream_options": { "include_usage": true },
        "user": "u1"
    });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "claude-x",
            "messages": [
                { "role": "user", "content": [{ "type": "text", "text": "Weather in Paris?" }] },
                { "role": "assistant", "content": [{ "type": "tool_use", "id": "call_1", "name": "weather", "input": { "city": "Paris" } }] },
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "call_1", "content": "sunny" },
                    { "type": "text", "text": "And tomorrow?" }
                ] }
            ],
            "tools": [{ "name": "weather", "description": "Weather", "input_schema": { "type": "object" } }],
            "tool_choice": { "type": "any" },
            "stop_sequences": ["END"],
            "max_tokens": 100,
            "temperature": 0.5,
            "stream": true,
            "metadata": { "user_id": "u1" },
            "system": "Be brief."
        })
    );
}

#[test]
fn request_defaults_max_tokens_and_converts_images() {
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": [
        { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } },
        { "type": "image_url", "image_url": { "url": "https://example.com/a.png" } }
    ] }] });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(out["max_tokens"], 4096);
    assert_eq!(
        out["messages"][0]["content"][0]["source"],
        json!({ "type": "base64", "media_type": "image/png", "data": "AAAA" })
    );
    assert_eq!(
        out["messages"][0]["content"][1]["source"],
        json!({ "type": "url", "url": "https://example.com/a.png" })
    );
}

#[test]
fn request_rejects_unsupported_params_unless_dropping() {
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }], "n": 2, "logprobs": true });
    let error = request(body.clone(), &Options::new()).unwrap_err();
    assert!(error.message.contains("`logprobs`, `n` are not supported by Anthropic"), "{}", error.message);
    let dropping = Options { drop_params: true, ..Options::new() };
    let out = request(body, &dropping).unwrap();
    assert!(out.get("n").is_none() && out.get("logprobs").is_none());
}

#[test]
fn thinking_top_k_and_reasoning_effort_reach_anthropic() {
    let messages = json!([{ "role": "user", "content": "hi" }]);
    let thinking = json!({ "type": "enabled", "budget_tokens": 2000 });
    let body =
        json!({ "model": "m", "messages": messages, "thinking": thinking, "top_k": 4, "reasoning_effort": "high" });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!((&out["thinking"], &out["top_k"]), (&thinking, &json!(4)), "the client's thinking wins");
    let out =
        request(json!({ "model": "m", "messages": messages, "reasoning_effort": "medium" }), &Options::new()).unwrap();
    assert_eq!(out["thinking"], json!({ "type": "enabled", "budget_tokens": 2048 }));
    let out =
        request(json!({ "model": "m", "messages": messages, "reasoning_effort": "none" }), &Options::new()).unwrap();
    assert!(out.get("thinking").is_none());
    let error = request(json!({ "model": "m", "messages": messages, "reasoning_effort": "max" }), &Options::new());
    assert_eq!(error.unwrap_err().param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn request_errors_name_the_field() {
    let bad_role = json!({ "model": "m", "messages": [{ "role": "wizard", "content": "hi" }] });
    assert_eq!(request(bad_role, &Options::new()).unwrap_err().param.as_deref(), Some("messages[0].role"));
    let bad_args = json!({ "model": "m", "messages": [{ "role": "assistant", "tool_calls": [{ "id": "c", "function": { "name": "f", "arguments": "{oops" } }] }] });
    let error = request(bad_args, &Options::new()).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("messages[0].tool_calls[0].function.arguments"));
    assert!(request(json!({ "model": "m" }), &Options::new()).is_err());
}

#[test]
fn parallel_tool_calls_false_disables_parallel_tool_use() {
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }],
        "tools": [{ "type": "function", "function": { "name": "f" } }], "parallel_tool_calls": false });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(out["tool_choice"], json!({ "type": "auto", "disable_parallel_tool_use": true }));
    assert_eq!(out["tools"][0]["input_schema"], json!({ "type": "object", "properties": {} }));
}

#[test]
fn response_maps_content_tool_use_stop_reason_and_usage() {
    let upstream = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            { "type": "text", "text": "Let me check." },
            { "type": "tool_use", "id": "toolu_1", "name": "weather", "input": { "city": "Paris" } }
        ],
        "stop_reason": "tool_use",
        "usage": { "input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90 }
    });
    let out = response(upstream, 1700).unwrap();
    assert_eq!(
        out,
        json!({
            "id": "msg_1", "object": "chat.completion", "created": 1700, "model": "claude-x",
            "choices": [{ "index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me check.",
                "tool_calls": [{ "id": "toolu_1", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Paris\"}" } }]
            } }],
            "usage": { "prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105, "prompt_tokens_details": { "cached_tokens": 90 } }
        })
    );
}

#[test]
fn errors_take_the_openai_shape() {
    let out = error(429, br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#);
    assert_eq!(
        out,
        json!({ "error": { "message": "slow down", "type": "rate_limit_error", "param": null, "code": null } })
    );
}

fn anthropic_stream(events: &[(&str, serde_json::Value)]) -> Vec<SseEvent> {
    events.iter().map(|(name, data)| SseEvent::named(*name, data.to_string())).collect()
}

fn run(translator: &mut StreamTranslator, events: &[SseEvent]) -> Vec<serde_json::Value> {
    let mut out: Vec<SseEvent> = events.iter().flat_map(|e| translator.push(e)).collect();
    out.extend(translator.finish());
    out.iter().map(|e| serde_json::from_str(&e.data).unwrap_or(json!(e.data))).collect()
}

#[test]
fn stream_of_text_becomes_chunks_with_usage_and_done() {
    let events = anthropic_stream(&[
        (
            "message_start",
            json!({ "type": "message_start", "message": { "id": "msg_1", "model": "claude-x", "usage": { "input_tokens": 7, "output_tokens": 1 } } }),
        ),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
        ),
        ("ping", json!({ "type": "ping" })),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "Hel" } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "lo" } }),
        ),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        (
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "max_tokens" }, "usage": { "output_tokens": 2 } }),
        ),
        ("message_stop", json!({ "type": "message_stop" })),
    ]);
    let mut translator = StreamTranslator::new(true, 5);
    let out = run(&mut translator, &events);
    assert!(translator.completed());
    assert_eq!(out[0]["choices"][0]["delta"], json!({ "role": "assistant", "content": "" }));
    assert_eq!(out[0]["id"], "msg_1");
    let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello");
    assert_eq!(out[3]["choices"][0]["finish_reason"], "length");
    assert_eq!(
        out[4]["usage"],
        json!({ "prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9, "prompt_tokens_details": { "cached_tokens": 0 } })
    );
    assert_eq!(out[5], json!("[DONE]"));
    assert_eq!(out.len(), 6);
}

#[test]
fn stream_of_tool_use_becomes_tool_call_deltas() {
    let events = anthropic_stream(&[
        (
            "message_start",
            json!({ "type": "message_start", "message": { "id": "m", "model": "c", "usage": { "input_tokens": 1 } } }),
        ),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "tool_use", "id": "toolu_1", "name": "f", "input": {} } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "input_json_delta", "partial_json": "{\"a\":" } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "input_json_delta", "partial_json": "1}" } }),
        ),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        (
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "tool_use" }, "usage": { "output_tokens": 3 } }),
        ),
        ("message_stop", json!({ "type": "message_stop" })),
    ]);
    let out = run(&mut StreamTranslator::new(false, 0), &events);
    assert_eq!(
        out[1]["choices"][0]["delta"]["tool_calls"][0],
        json!({ "index": 0, "id": "toolu_1", "type": "function", "function": { "name": "f", "arguments": "" } })
    );
    let arguments: String = out
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, "{\"a\":1}");
    assert_eq!(out[out.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out.last().unwrap(), &json!("[DONE]"));
}

#[test]
fn a_stream_without_message_stop_is_incomplete() {
    let events = anthropic_stream(&[(
        "message_start",
        json!({ "type": "message_start", "message": { "id": "m", "model": "c", "usage": {} } }),
    )]);
    let mut translator = StreamTranslator::new(false, 0);
    run(&mut translator, &events);
    assert!(!translator.completed());
}
