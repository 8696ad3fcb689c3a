use serde_json::{Value, json};

use super::*;

/// Every schema in a Gemini request's function declarations uses Gemini's keywords only.
fn assert_gemini_schema(schema: &Value, at: &str) {
    let Value::Object(map) = schema else { panic!("{at}: not an object: {schema}") };
    for (key, value) in map {
        match key.as_str() {
            "properties" => {
                for (name, property) in value.as_object().unwrap() {
                    assert_gemini_schema(property, &format!("{at}.{name}"));
                }
            }
            "items" => assert_gemini_schema(value, &format!("{at}.items")),
            "anyOf" => value.as_array().unwrap().iter().for_each(|s| assert_gemini_schema(s, &format!("{at}.anyOf"))),
            "type" => assert!(value.is_string(), "{at}: type {value}"),
            "format" => assert!(["enum", "date-time"].contains(&value.as_str().unwrap()), "{at}: format {value}"),
            "description" | "enum" | "default" | "required" | "minimum" | "maximum" | "minLength" | "maxLength"
            | "minItems" | "maxItems" | "pattern" | "nullable" | "title" => {}
            other => panic!("{at}: Gemini refuses `{other}`"),
        }
    }
}

/// A real Claude Code 2.1.197 request, as recorded.
fn claude_code_request() -> Value {
    let fixture: Value =
        serde_json::from_str(include_str!("../../../../tests/fixtures/claude-code-2.1.197.json")).unwrap();
    fixture["body"].clone()
}

#[test]
fn a_claude_code_request_becomes_a_gemini_request_gemini_accepts() {
    let body = claude_code_request();
    let out = request(body.clone(), &Options::new()).unwrap();
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["contents", "generationConfig", "systemInstruction", "tools"]);
    assert!(out["systemInstruction"]["parts"][0]["text"].as_str().unwrap().contains("Claude"));
    assert_eq!(out["contents"][0]["role"], "user");
    assert_eq!(out["generationConfig"], json!({ "maxOutputTokens": body["max_tokens"] }));
    let declarations = out["tools"][0]["functionDeclarations"].as_array().unwrap();
    assert!(declarations.iter().any(|d| d["name"] == "Bash"));
    for declaration in declarations {
        match declaration.get("parameters") {
            Some(parameters) => {
                assert_gemini_schema(parameters, declaration["name"].as_str().unwrap());
                assert!(parameters.get("properties").is_some(), "{}", declaration["name"]);
            }
            None => assert!(["CronList", "TaskList"].contains(&declaration["name"].as_str().unwrap())),
        }
    }
}

#[test]
fn a_tool_loop_round_trips_through_gemini_parts() {
    let body = json!({ "model": "gemini-2.5-flash", "max_tokens": 100, "top_k": 5, "messages": [
        { "role": "user", "content": "List files" },
        { "role": "assistant", "content": [{ "type": "tool_use", "id": "call_0", "name": "Bash", "input": { "command": "ls" } }] },
        { "role": "user", "content": [
            { "type": "tool_result", "tool_use_id": "call_0", "content": "a.txt" },
            { "type": "text", "text": "Now read it" }
        ] }
    ] });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(out["generationConfig"], json!({ "maxOutputTokens": 100, "topK": 5 }));
    assert_eq!(
        out["contents"],
        json!([
            { "role": "user", "parts": [{ "text": "List files" }] },
            { "role": "model", "parts": [{ "functionCall": { "name": "Bash", "args": { "command": "ls" } },
                "thoughtSignature": "skip_thought_signature_validator" }] },
            { "role": "user", "parts": [
                { "functionResponse": { "name": "Bash", "response": { "content": "a.txt" } } },
                { "text": "Now read it" }
            ] }
        ])
    );
}

#[test]
fn response_and_errors_in_anthropic_shape() {
    let answer = json!({ "candidates": [{ "content": { "role": "model", "parts": [
            { "text": "Running." }, { "functionCall": { "name": "Bash", "args": { "command": "ls" } } }
        ] }, "finishReason": "STOP" }],
        "usageMetadata": { "promptTokenCount": 10, "candidatesTokenCount": 3, "cachedContentTokenCount": 4 },
        "modelVersion": "gemini-2.5-flash", "responseId": "r1" });
    let out = response(answer, 1).unwrap();
    assert_eq!(out["id"], "chatcmpl-r1");
    assert_eq!(out["model"], "gemini-2.5-flash");
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["content"][0], json!({ "type": "text", "text": "Running." }));
    assert_eq!(
        out["content"][1],
        json!({ "type": "tool_use", "id": "call_0", "name": "Bash", "input": { "command": "ls" } })
    );
    assert_eq!(
        out["usage"],
        json!({ "input_tokens": 6, "output_tokens": 3, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0 })
    );

    let body = br#"{"error":{"code":404,"message":"models/nope is not found","status":"NOT_FOUND"}}"#;
    assert_eq!(
        error(404, body),
        json!({ "type": "error", "error": { "type": "not_found_error", "message": "models/nope is not found" } })
    );
}

#[test]
fn stream_becomes_anthropic_events_with_usage() {
    let events: Vec<SseEvent> = [
        json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "Hello " }] }, "index": 0 }],
            "modelVersion": "gemini-2.5-flash", "responseId": "r2" }),
        json!({ "candidates": [{ "content": { "role": "model", "parts": [
                { "text": "there." }, { "functionCall": { "name": "Bash", "args": { "command": "ls" } } }
            ] }, "finishReason": "STOP", "index": 0 }],
            "usageMetadata": { "promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13 },
            "modelVersion": "gemini-2.5-flash", "responseId": "r2" }),
    ]
    .iter()
    .map(|chunk| SseEvent::data(chunk.to_string()))
    .collect();
    let mut translator = StreamTranslator::new(5);
    let mut out: Vec<SseEvent> = events.iter().flat_map(|e| translator.push(e)).collect();
    assert!(!translator.completed(), "Gemini's stream has no end marker: the end comes with finish");
    out.extend(translator.finish());
    assert!(translator.completed());
    let names: Vec<&str> = out.iter().map(|e| e.event.as_deref().unwrap()).collect();
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
    let data: Vec<Value> = out.iter().map(|e| serde_json::from_str(&e.data).unwrap()).collect();
    assert_eq!(data[0]["message"]["id"], "chatcmpl-r2");
    assert_eq!(data[5]["content_block"]["name"], "Bash");
    assert_eq!(data[6]["delta"]["partial_json"], "{\"command\":\"ls\"}");
    assert_eq!(data[8]["delta"]["stop_reason"], "tool_use");
    assert_eq!(data[8]["usage"]["input_tokens"], 9);
    assert_eq!(data[8]["usage"]["output_tokens"], 4);
}

#[test]
fn a_broken_stream_is_incomplete() {
    let mut translator = StreamTranslator::new(0);
    translator
        .push(&SseEvent::data(json!({ "candidates": [{ "content": { "parts": [{ "text": "Hi" }] } }] }).to_string()));
    assert!(translator.finish().is_empty());
    assert!(!translator.completed());
}
