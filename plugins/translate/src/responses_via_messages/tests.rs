use serde_json::{Value, json};

use super::*;

/// A real Codex CLI 0.171 request, as recorded.
fn codex_request() -> Value {
    let fixture: Value = serde_json::from_str(include_str!("../../../../tests/fixtures/codex-0.171.0.json")).unwrap();
    fixture["body"].clone()
}

#[test]
fn codex_request_becomes_a_messages_request_with_its_function_tools() {
    let out = request(codex_request(), &Options::new()).unwrap();
    assert_eq!(out["model"], "gpt-5-codex");
    assert_eq!(out["stream"], true);
    assert_eq!(out["max_tokens"], 4096);
    // Codex's developer messages make the system prompt; its user messages alternate properly.
    let system = out["system"].as_array().unwrap();
    assert!(system[0]["text"].as_str().unwrap().starts_with("You are a coding agent running in the Codex CLI"));
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "consecutive user items merge into one user turn");
    let blocks = messages[0]["content"].as_array().unwrap();
    assert!(blocks[0]["text"].as_str().unwrap().starts_with("<environment_context>"));
    assert_eq!(blocks.last().unwrap()["text"], "Say hello");
    let names: Vec<&str> = out["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"exec_command"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("agent")), "namespaced tools are left out: {names:?}");
    assert!(out.get("reasoning_effort").is_none() && out.get("thinking").is_none());
}

#[test]
fn a_tool_loop_round_trips_through_anthropic_blocks() {
    let body = json!({ "model": "claude", "input": [
        { "role": "user", "content": "List files" },
        { "type": "function_call", "call_id": "toolu_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}" },
        { "type": "function_call_output", "call_id": "toolu_1", "output": "a.txt" }
    ], "reasoning": { "effort": "low" } });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(
        out["messages"],
        json!([
            { "role": "user", "content": [{ "type": "text", "text": "List files" }] },
            { "role": "assistant", "content": [{ "type": "tool_use", "id": "toolu_1", "name": "exec_command", "input": { "cmd": "ls" } }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt" }] }
        ])
    );
}

#[test]
fn response_and_stream_of_a_tool_use_answer() {
    let message = json!({ "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{ "type": "text", "text": "Running." }, { "type": "tool_use", "id": "toolu_2", "name": "exec_command", "input": { "cmd": "ls" } }],
        "stop_reason": "tool_use", "usage": { "input_tokens": 10, "output_tokens": 3 } });
    let out = response(message, 1).unwrap();
    assert_eq!(out["output"][0]["content"][0]["text"], "Running.");
    assert_eq!(out["output"][1]["call_id"], "toolu_2");
    assert_eq!(out["output"][1]["arguments"], "{\"cmd\":\"ls\"}");
    assert_eq!(out["usage"]["total_tokens"], 13);

    let events = [
        (
            "message_start",
            json!({ "type": "message_start", "message": { "id": "msg_1", "model": "claude", "usage": { "input_tokens": 10 } } }),
        ),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "tool_use", "id": "toolu_2", "name": "exec_command", "input": {} } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "input_json_delta", "partial_json": "{\"cmd\":\"ls\"}" } }),
        ),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        (
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "tool_use" }, "usage": { "output_tokens": 3 } }),
        ),
        ("message_stop", json!({ "type": "message_stop" })),
    ];
    let mut translator = StreamTranslator::new(1);
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend(translator.push(&SseEvent::named(name, data.to_string())));
    }
    out.extend(translator.finish());
    assert!(translator.completed());
    let last: Value = serde_json::from_str(&out.last().unwrap().data).unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"]["output"][0]["type"], "function_call");
    assert_eq!(last["response"]["output"][0]["arguments"], "{\"cmd\":\"ls\"}");
    assert_eq!(last["response"]["usage"]["input_tokens"], 10);
    assert_eq!(last["response"]["usage"]["output_tokens"], 3);
}
