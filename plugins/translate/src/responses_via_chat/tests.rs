use serde_json::{Value, json};

use super::*;
use crate::MaxTokensField;

fn events_of(translator: &mut StreamTranslator, chunks: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(translator.push(&SseEvent::data(chunk.to_string())));
    }
    out.extend(translator.push(&SseEvent::data("[DONE]")));
    out.into_iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(e.event.as_deref(), data["type"].as_str(), "the event name is its type");
            (e.event.unwrap(), data)
        })
        .collect()
}

fn chunk(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({ "id": "c1", "object": "chat.completion.chunk", "model": "m",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }] })
}

#[test]
fn request_turns_items_into_messages_and_keeps_function_tools_only() {
    let body = json!({
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            { "type": "message", "role": "developer", "content": [{ "type": "input_text", "text": "Use tools." }] },
            { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "List files" }] },
            { "type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque" },
            { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "Looking." }] },
            { "type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}" },
            { "type": "function_call", "call_id": "call_2", "name": "exec_command", "arguments": "{\"cmd\":\"pwd\"}" },
            { "type": "function_call_output", "call_id": "call_1", "output": "a.txt" },
            { "type": "function_call_output", "call_id": "call_2", "output": [{ "type": "input_text", "text": "/tmp" }] },
            { "role": "user", "content": "Thanks" }
        ],
        "tools": [
            { "type": "function", "name": "exec_command", "description": "Run", "strict": false, "parameters": { "type": "object" } },
            { "type": "namespace", "name": "agents", "tools": [{ "type": "function", "name": "spawn" }] },
            { "type": "web_search", "external_web_access": false }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "reasoning": { "effort": "high", "summary": "auto" },
        "max_output_tokens": 300,
        "stream": true,
        "store": false,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "k",
        "text": { "format": { "type": "json_schema", "name": "out", "schema": { "type": "object" }, "strict": true } }
    });
    let options = Options { max_tokens_field: MaxTokensField::MaxCompletionTokens, ..Options::new() };
    assert_eq!(
        request(body, &options).unwrap(),
        json!({
            "model": "m",
            "messages": [
                { "role": "system", "content": "Be brief." },
                { "role": "system", "content": "Use tools." },
                { "role": "user", "content": "List files" },
                { "role": "assistant", "content": "Looking.", "tool_calls": [
                    { "id": "call_1", "type": "function", "function": { "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}" } },
                    { "id": "call_2", "type": "function", "function": { "name": "exec_command", "arguments": "{\"cmd\":\"pwd\"}" } }
                ] },
                { "role": "tool", "tool_call_id": "call_1", "content": "a.txt" },
                { "role": "tool", "tool_call_id": "call_2", "content": "/tmp" },
                { "role": "user", "content": "Thanks" }
            ],
            "tools": [{ "type": "function", "function": { "name": "exec_command", "description": "Run", "parameters": { "type": "object" } } }],
            "tool_choice": "auto",
            "parallel_tool_calls": true,
            "reasoning_effort": "high",
            "max_completion_tokens": 300,
            "stream": true,
            "stream_options": { "include_usage": true },
            "response_format": { "type": "json_schema", "json_schema": { "name": "out", "schema": { "type": "object" }, "strict": true } }
        })
    );
}

#[test]
fn a_function_call_without_text_before_it_is_its_own_assistant_turn_and_images_stay_parts() {
    let body = json!({ "model": "m", "input": [
        { "role": "user", "content": [
            { "type": "input_text", "text": "What is this?" },
            { "type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low" }
        ] },
        { "type": "function_call", "call_id": "c", "name": "f", "arguments": "{}" }
    ] });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(
        out["messages"],
        json!([
            { "role": "user", "content": [
                { "type": "text", "text": "What is this?" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA", "detail": "low" } }
            ] },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "c", "type": "function", "function": { "name": "f", "arguments": "{}" } }
            ] }
        ])
    );
    assert_eq!(
        request(json!({ "model": "m", "input": "hi" }), &Options::new()).unwrap()["messages"],
        json!([{ "role": "user", "content": "hi" }])
    );
}

#[test]
fn stored_state_and_unknown_fields_are_refused_with_the_field_named() {
    let refused = |body: Value, options: &Options| request(body, options).unwrap_err();
    let error = refused(json!({ "model": "m", "input": "hi", "previous_response_id": "resp_1" }), &Options::new());
    assert_eq!(error.param.as_deref(), Some("previous_response_id"));
    assert!(error.message.contains("whole conversation in `input`"), "{}", error.message);
    let error = refused(json!({ "model": "m", "input": [{ "type": "item_reference", "id": "x" }] }), &Options::new());
    assert_eq!(error.param.as_deref(), Some("input[0]"));
    let error = refused(json!({ "model": "m", "input": [{ "type": "computer_call_output" }] }), &Options::new());
    assert_eq!(error.param.as_deref(), Some("input[0].type"));
    let error = refused(json!({ "model": "m", "input": "hi", "top_logprobs": 2 }), &Options::new());
    assert_eq!(error.param.as_deref(), Some("top_logprobs"));
    let dropping = Options { drop_params: true, ..Options::new() };
    assert!(request(json!({ "model": "m", "input": "hi", "top_logprobs": 2 }), &dropping).is_ok());
    assert_eq!(refused(json!({ "model": "m" }), &Options::new()).param.as_deref(), Some("input"));
}

#[test]
fn response_carries_reasoning_text_calls_status_and_usage() {
    let completion = json!({
        "id": "c9", "object": "chat.completion", "created": 7, "model": "m",
        "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Running it.", "reasoning_content": "Need ls.",
            "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}" } }]
        } }],
        "usage": { "prompt_tokens": 20, "completion_tokens": 5, "prompt_tokens_details": { "cached_tokens": 8 } }
    });
    let out = response(completion, 0).unwrap();
    assert_eq!(out["id"], "resp_c9");
    assert_eq!(out["object"], "response");
    assert_eq!(out["status"], "completed");
    assert_eq!(out["created_at"], 7);
    assert_eq!(
        out["output"][0],
        json!({ "type": "reasoning", "id": "rs_resp_c9", "summary": [{ "type": "summary_text", "text": "Need ls." }] })
    );
    assert_eq!(out["output"][1]["content"][0]["text"], "Running it.");
    assert_eq!(
        out["output"][2],
        json!({ "type": "function_call", "id": "fc_call_1", "status": "completed", "call_id": "call_1",
            "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}" })
    );
    assert_eq!(out["usage"]["input_tokens"], 20);
    assert_eq!(out["usage"]["output_tokens"], 5);
    assert_eq!(out["usage"]["total_tokens"], 25);
    assert_eq!(out["usage"]["input_tokens_details"]["cached_tokens"], 8);

    let cut = json!({ "id": "c", "choices": [{ "finish_reason": "length", "message": { "content": "Partial" } }] });
    let out = response(cut, 0).unwrap();
    assert_eq!(
        (out["status"].as_str(), &out["incomplete_details"]),
        (Some("incomplete"), &json!({ "reason": "max_output_tokens" }))
    );
}

#[test]
fn stream_builds_items_in_order_and_completes_with_usage() {
    let mut translator = StreamTranslator::new(5);
    let events = events_of(
        &mut translator,
        &[
            chunk(json!({ "role": "assistant", "content": "" }), None),
            chunk(json!({ "reasoning_content": "Think." }), None),
            chunk(json!({ "content": "Hel" }), None),
            chunk(json!({ "content": "lo" }), None),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "" } }] }),
                None,
            ),
            chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"a\":" } }] }), None),
            chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "1}" } }] }), None),
            chunk(json!({}), Some("tool_calls")),
            json!({ "id": "c1", "choices": [], "usage": { "prompt_tokens": 3, "completion_tokens": 4 } }),
        ],
    );
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let sequence: Vec<u64> = events.iter().map(|(_, data)| data["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(sequence, (0..events.len() as u64).collect::<Vec<_>>());
    let (_, completed) = events.last().unwrap();
    let response = &completed["response"];
    assert_eq!(response["id"], "resp_c1");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["output"][1]["content"][0]["text"], "Hello");
    assert_eq!(response["output"][2]["arguments"], "{\"a\":1}");
    assert_eq!(response["output"][2]["call_id"], "call_1");
    assert_eq!(response["usage"]["total_tokens"], 7);
    assert!(translator.completed());
    assert!(translator.push(&SseEvent::data("[DONE]")).is_empty(), "nothing after the end");
}

#[test]
fn stream_without_done_completes_on_its_finish_reason_and_a_cut_stream_does_not() {
    let mut translator = StreamTranslator::new(0);
    translator.push(&SseEvent::data(chunk(json!({ "content": "Hi" }), Some("length")).to_string()));
    let events = translator.finish();
    let last: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
    assert!(translator.completed());

    let mut broken = StreamTranslator::new(0);
    broken.push(&SseEvent::data(chunk(json!({ "content": "Hi" }), None).to_string()));
    assert!(broken.finish().is_empty());
    assert!(!broken.completed());
    let mut empty = StreamTranslator::new(0);
    assert!(empty.push(&SseEvent::data("[DONE]")).is_empty());
    assert!(!empty.completed(), "an empty stream is no answer");
}

#[test]
fn an_upstream_error_in_the_stream_fails_the_response() {
    let mut translator = StreamTranslator::new(0);
    let events = translator
        .push(&SseEvent::data(json!({ "error": { "message": "overloaded", "type": "server_error" } }).to_string()));
    let failed: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(failed["response"]["error"]["message"], "overloaded");
    assert!(translator.completed());
}

#[test]
fn errors_are_openai_shaped() {
    let out = error(429, br#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#);
    assert_eq!(out["error"]["message"], "slow down");
    assert_eq!(out["error"]["type"], "rate_limit_error");
}
