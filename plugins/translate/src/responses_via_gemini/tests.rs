use serde_json::{Value, json};

use super::*;

/// A real Codex CLI 0.171 request, as recorded.
fn codex_request() -> Value {
    let fixture: Value = serde_json::from_str(include_str!("../../../../tests/fixtures/codex-0.171.0.json")).unwrap();
    fixture["body"].clone()
}

#[test]
fn codex_request_becomes_a_gemini_request_with_its_function_tools() {
    let mut body = codex_request();
    body["reasoning"]["effort"] = json!("high");
    let out = request(body, &Options::new()).unwrap();
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["contents", "generationConfig", "systemInstruction", "toolConfig", "tools"]);
    assert!(
        out["systemInstruction"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("You are a coding agent running in the Codex CLI")
    );
    assert_eq!(out["contents"].as_array().unwrap().len(), 1, "consecutive user items merge into one user turn");
    assert_eq!(out["contents"][0]["parts"].as_array().unwrap().last().unwrap()["text"], "Say hello");
    assert_eq!(out["generationConfig"], json!({ "thinkingConfig": { "thinkingBudget": 4096 } }));
    assert_eq!(out["toolConfig"], json!({ "functionCallingConfig": { "mode": "AUTO" } }));
    let declarations = out["tools"][0]["functionDeclarations"].as_array().unwrap();
    let exec = declarations.iter().find(|d| d["name"] == "exec_command").unwrap();
    assert!(exec.get("strict").is_none());
    assert!(exec["parameters"].get("additionalProperties").is_none());
    assert_eq!(
        exec["parameters"]["properties"]["cmd"],
        json!({ "type": "string", "description": "Shell command to execute." })
    );
    let no_arguments = declarations.iter().find(|d| d["name"] == "get_goal").unwrap();
    assert!(no_arguments.get("parameters").is_none(), "{no_arguments}");
}

#[test]
fn a_function_call_output_answers_the_call_by_name() {
    let body = json!({ "model": "gemini", "input": [
        { "role": "user", "content": "List files" },
        { "type": "function_call", "call_id": "call_0", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}" },
        { "type": "function_call_output", "call_id": "call_0", "output": "a.txt" }
    ] });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(out["contents"][1]["parts"][0]["functionCall"]["name"], "exec_command");
    assert_eq!(
        out["contents"][2]["parts"][0],
        json!({ "functionResponse": { "name": "exec_command", "response": { "content": "a.txt" } } })
    );
}

#[test]
fn response_and_stream_of_a_function_call_answer() {
    let answer = json!({ "candidates": [{ "content": { "role": "model", "parts": [
            { "text": "Running." }, { "functionCall": { "name": "exec_command", "args": { "cmd": "ls" } } }
        ] }, "finishReason": "STOP" }],
        "usageMetadata": { "promptTokenCount": 10, "candidatesTokenCount": 3, "thoughtsTokenCount": 2 },
        "modelVersion": "gemini-2.5-flash", "responseId": "r1" });
    let out = response(answer.clone(), 7).unwrap();
    assert_eq!(out["id"], "resp_chatcmpl-r1");
    assert_eq!(out["created_at"], 7);
    assert_eq!(out["output"][0]["content"][0]["text"], "Running.");
    assert_eq!(out["output"][1]["call_id"], "call_0");
    assert_eq!(out["output"][1]["arguments"], "{\"cmd\":\"ls\"}");
    assert_eq!(out["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
    assert_eq!(out["usage"]["total_tokens"], 15);

    let mut translator = StreamTranslator::new(7);
    let mut events = translator.push(&SseEvent::data(answer.to_string()));
    events.extend(translator.finish());
    assert!(translator.completed());
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.completed"));
    let completed: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(completed["response"]["output"][1]["name"], "exec_command");
    assert_eq!(completed["response"]["usage"]["input_tokens"], 10);
    assert_eq!(completed["response"]["usage"]["output_tokens"], 5);
}

#[test]
fn errors_take_the_openai_shape() {
    let body = br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
    assert_eq!(
        error(429, body),
        json!({ "error": { "message": "Quota exceeded", "type": "rate_limit_error", "param": null, "code": "RESOURCE_EXHAUSTED" } })
    );
}
