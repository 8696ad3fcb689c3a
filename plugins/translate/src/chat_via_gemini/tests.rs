use serde_json::{Value, json};

use super::*;

#[test]
fn request_moves_system_text_images_and_sampling_into_gemini_shape() {
    let body = json!({
        "model": "gemini-2.5-flash",
        "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "developer", "content": [{ "type": "text", "text": "Use French." }] },
            { "role": "user", "content": [
                { "type": "text", "text": "What is this?" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } },
                { "type": "image_url", "image_url": { "url": "https://example.com/cat.webp?size=2" } }
            ] },
            { "role": "assistant", "content": "A cat." },
            { "role": "user", "content": "Sure?" },
            { "role": "user", "content": "Really?" }
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 50,
        "max_completion_tokens": 100,
        "stop": "END",
        "n": 2,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "response_format": { "type": "json_object" },
        "stream": true,
        "stream_options": { "include_usage": true },
        "user": "u1",
        "store": false,
        "metadata": { "a": "b" },
        "parallel_tool_calls": true,
        "service_tier": "auto",
        "logprobs": null
    });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(
        out,
        json!({
            "systemInstruction": { "parts": [{ "text": "Be brief." }, { "text": "Use French." }] },
            "contents": [
                { "role": "user", "parts": [
                    { "text": "What is this?" },
                    { "inlineData": { "mimeType": "image/png", "data": "AAAA" } },
                    { "fileData": { "fileUri": "https://example.com/cat.webp?size=2", "mimeType": "image/webp" } }
                ] },
                { "role": "model", "parts": [{ "text": "A cat." }] },
                { "role": "user", "parts": [{ "text": "Sure?" }, { "text": "Really?" }] }
            ],
            "generationConfig": {
                "temperature": 0.2,
                "topP": 0.9,
                "topK": 40,
                "maxOutputTokens": 100,
                "stopSequences": ["END"],
                "candidateCount": 2,
                "seed": 7,
                "presencePenalty": 0.1,
                "frequencyPenalty": 0.3,
                "responseMimeType": "application/json"
            }
        })
    );
}

#[test]
fn request_sends_tools_with_schemas_gemini_accepts() {
    let body = json!({
        "messages": [{ "role": "user", "content": "Weather?" }],
        "tools": [
            { "type": "function", "function": {
                "name": "weather",
                "description": "Weather in a city",
                "strict": true,
                "parameters": {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "city": { "type": "string", "format": "uri", "minLength": 1 },
                        "when": { "type": ["string", "null"], "format": "date-time" },
                        "unit": { "const": "celsius" },
                        "days": { "type": "integer", "exclusiveMinimum": 0 },
                        "tags": { "type": "object", "propertyNames": { "type": "string" }, "additionalProperties": {} },
                        "stops": { "type": "array", "items": { "type": "object", "additionalProperties": false,
                            "properties": { "name": { "type": "string" } }, "required": ["name", "ghost"] } },
                        "either": { "oneOf": [{ "type": "string" }, { "type": "number", "additionalProperties": false }] }
                    },
                    "required": ["city", "missing"]
                }
            } },
            { "type": "function", "function": { "name": "now", "parameters": { "type": "object", "properties": {}, "additionalProperties": false } } }
        ],
        "tool_choice": { "type": "function", "function": { "name": "weather" } }
    });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(
        out["tools"],
        json!([{ "functionDeclarations": [
            { "name": "weather", "description": "Weather in a city", "parameters": {
                "type": "object",
                "properties": {
                    "city": { "type": "string", "minLength": 1 },
                    "when": { "type": "string", "nullable": true, "format": "date-time" },
                    "unit": { "enum": ["celsius"] },
                    "days": { "type": "integer" },
                    "tags": { "type": "object" },
                    "stops": { "type": "array", "items": { "type": "object",
                        "properties": { "name": { "type": "string" } }, "required": ["name"] } },
                    "either": { "anyOf": [{ "type": "string" }, { "type": "number" }] }
                },
                "required": ["city"]
            } },
            { "name": "now" }
        ] }])
    );
    assert_eq!(
        out["toolConfig"],
        json!({ "functionCallingConfig": { "mode": "ANY", "allowedFunctionNames": ["weather"] } })
    );
    for (choice, mode) in [("none", "NONE"), ("auto", "AUTO"), ("required", "ANY")] {
        let body = json!({ "messages": [], "tool_choice": choice });
        assert_eq!(request(body, &Options::new()).unwrap()["toolConfig"]["functionCallingConfig"]["mode"], mode);
    }
}

#[test]
fn tool_calls_and_results_round_trip_with_names_looked_up() {
    let body = json!({ "messages": [
        { "role": "user", "content": "Weather in Paris and Rome?" },
        { "role": "assistant", "content": null, "tool_calls": [
            { "id": "call_0", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Paris\"}" } },
            { "id": "call_1", "type": "function", "function": { "name": "forecast", "arguments": "" } }
        ] },
        { "role": "tool", "tool_call_id": "call_1", "content": "{\"rain\":true}" },
        { "role": "tool", "tool_call_id": "call_0", "content": "sunny" },
        { "role": "assistant", "content": "Checking more.", "tool_calls": [
            { "id": "call_0", "type": "function", "function": { "name": "clock", "arguments": "{}" } }
        ] },
        { "role": "tool", "tool_call_id": "call_0", "content": [{ "type": "text", "text": "noon" }] }
    ] });
    let out = request(body, &Options::new()).unwrap();
    assert_eq!(
        out["contents"],
        json!([
            { "role": "user", "parts": [{ "text": "Weather in Paris and Rome?" }] },
            { "role": "model", "parts": [
                { "functionCall": { "name": "weather", "args": { "city": "Paris" } }, "thoughtSignature": REPLAY_SIGNATURE },
                { "functionCall": { "name": "forecast", "args": {} } }
            ] },
            { "role": "user", "parts": [
                { "functionResponse": { "name": "forecast", "response": { "content": { "rain": true } } } },
                { "functionResponse": { "name": "weather", "response": { "content": "sunny" } } }
            ] },
            { "role": "model", "parts": [
                { "text": "Checking more." },
                { "functionCall": { "name": "clock", "args": {} }, "thoughtSignature": REPLAY_SIGNATURE }
            ] },
            { "role": "user", "parts": [{ "functionResponse": { "name": "clock", "response": { "content": "noon" } } }] }
        ])
    );

    // The answer's calls come back as tool calls whose ids the next request's results name.
    let answer = json!({
        "candidates": [{ "content": { "role": "model", "parts": [
            { "functionCall": { "name": "weather", "args": { "city": "Oslo" } }, "thoughtSignature": "c2ln" },
            { "functionCall": { "name": "clock" } }
        ] }, "finishReason": "STOP", "index": 0 }],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc"
    });
    let completion = response(answer, 9).unwrap();
    let message = &completion["choices"][0]["message"];
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["tool_calls"],
        json!([
            { "id": "call_0", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Oslo\"}" } },
            { "id": "call_1", "type": "function", "function": { "name": "clock", "arguments": "{}" } }
        ])
    );
    let next = json!({ "messages": [
        { "role": "user", "content": "Weather?" },
        message,
        { "role": "tool", "tool_call_id": "call_1", "content": "9am" },
        { "role": "tool", "tool_call_id": "call_0", "content": "cold" }
    ] });
    let out = request(next, &Options::new()).unwrap();
    assert_eq!(
        out["contents"][1]["parts"][0]["functionCall"],
        json!({ "name": "weather", "args": { "city": "Oslo" } })
    );
    assert_eq!(out["contents"][2]["parts"][0]["functionResponse"]["name"], "clock");
    assert_eq!(out["contents"][2]["parts"][1]["functionResponse"]["name"], "weather");
}

#[test]
fn a_tool_result_for_no_known_call_is_refused() {
    let body = json!({ "messages": [{ "role": "tool", "tool_call_id": "call_9", "content": "x" }] });
    let error = request(body, &Options::new()).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("messages[0].tool_call_id"));
    assert!(error.message.contains("`call_9`"), "{}", error.message);
}

#[test]
fn reasoning_effort_and_thinking_become_a_thinking_config() {
    let with = |extra: Value| {
        let mut body = json!({ "messages": [{ "role": "user", "content": "hi" }] });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        request(body, &Options::new()).map(|out| out["generationConfig"]["thinkingConfig"].clone())
    };
    assert_eq!(with(json!({ "reasoning_effort": "none" })).unwrap(), json!({ "thinkingBudget": 0 }));
    assert_eq!(with(json!({ "reasoning_effort": "low" })).unwrap(), json!({ "thinkingBudget": 1024 }));
    assert_eq!(with(json!({ "reasoning_effort": "medium" })).unwrap(), json!({ "thinkingBudget": 2048 }));
    assert_eq!(with(json!({ "reasoning_effort": "high" })).unwrap(), json!({ "thinkingBudget": 4096 }));
    assert_eq!(with(json!({ "reasoning_effort": "minimal" })).unwrap(), json!({ "thinkingBudget": 128 }));
    assert_eq!(
        with(json!({ "reasoning_effort": "low", "thinking": { "type": "enabled", "budget_tokens": 5000 } })).unwrap(),
        json!({ "thinkingBudget": 5000, "includeThoughts": true })
    );
    assert_eq!(with(json!({ "reasoning_effort": "extreme" })).unwrap_err().param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn a_json_schema_response_format_sends_the_schema_gemini_accepts() {
    let body = json!({ "messages": [{ "role": "user", "content": "hi" }], "response_format": { "type": "json_schema",
        "json_schema": { "name": "out", "strict": true, "schema": { "type": "object", "additionalProperties": false,
            "properties": { "a": { "type": "string" } }, "required": ["a"] } } } });
    let config = request(body, &Options::new()).unwrap()["generationConfig"].clone();
    assert_eq!(
        config,
        json!({ "responseMimeType": "application/json", "responseSchema": { "type": "object",
            "properties": { "a": { "type": "string" } }, "required": ["a"] } })
    );
}

#[test]
fn request_rejects_unsupported_params_unless_dropping() {
    let body = json!({ "messages": [{ "role": "user", "content": "hi" }], "logprobs": true, "logit_bias": { "1": 2 } });
    let error = request(body.clone(), &Options::new()).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("logit_bias"));
    assert!(error.message.contains("`logit_bias`, `logprobs` are not supported by Gemini"), "{}", error.message);
    let dropping = Options { drop_params: true, ..Options::new() };
    let out = request(body, &dropping).unwrap();
    assert_eq!(out, json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }] }));
}

#[test]
fn request_errors_name_the_field() {
    let error = request(json!({ "model": "m" }), &Options::new()).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("messages"));
    let body = json!({ "messages": [{ "role": "user", "content": [{ "type": "file", "file": {} }] }] });
    assert_eq!(request(body, &Options::new()).unwrap_err().param.as_deref(), Some("messages[0].content[0]"));
    let body = json!({ "messages": [], "tools": [{ "type": "web_search" }] });
    assert_eq!(request(body, &Options::new()).unwrap_err().param.as_deref(), Some("tools[0].type"));
    let body = json!({ "messages": [{ "role": "assistant", "tool_calls": [
        { "id": "c", "function": { "name": "f", "arguments": "{not json" } }
    ] }] });
    let error = request(body, &Options::new()).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("messages[0].tool_calls[0].function.arguments"));
}

#[test]
fn response_maps_text_thoughts_finish_reason_and_usage() {
    let answer = json!({
        "candidates": [{
            "content": { "role": "model", "parts": [
                { "text": "Weighing it.", "thought": true },
                { "text": "Hello " },
                { "text": "there." }
            ] },
            "finishReason": "MAX_TOKENS",
            "index": 0
        }],
        "usageMetadata": { "promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 6,
            "cachedContentTokenCount": 3, "totalTokenCount": 20 },
        "modelVersion": "gemini-2.5-pro",
        "responseId": "r1"
    });
    assert_eq!(
        response(answer, 42).unwrap(),
        json!({
            "id": "chatcmpl-r1",
            "object": "chat.completion",
            "created": 42,
            "model": "gemini-2.5-pro",
            "choices": [{ "index": 0, "logprobs": null, "finish_reason": "length",
                "message": { "role": "assistant", "content": "Hello there.", "reasoning_content": "Weighing it." } }],
            "usage": { "prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20,
                "prompt_tokens_details": { "cached_tokens": 3 },
                "completion_tokens_details": { "reasoning_tokens": 6 } }
        })
    );
}

#[test]
fn response_of_a_blocked_or_filtered_answer_is_content_filter() {
    let blocked = json!({ "promptFeedback": { "blockReason": "SAFETY" }, "usageMetadata": { "promptTokenCount": 5 } });
    let out = response(blocked, 1).unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(out["choices"][0]["message"]["content"], "");
    assert!(out["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let filtered = json!({ "candidates": [{ "finishReason": "RECITATION", "index": 0 }] });
    let out = response(filtered, 1).unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
    assert!(response(json!({ "usageMetadata": {} }), 1).is_err());
}

#[test]
fn errors_take_the_openai_shape_with_geminis_status_as_code() {
    let body = br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
    assert_eq!(
        error(400, body),
        json!({ "error": { "message": "API key not valid.", "type": "invalid_request_error", "param": null, "code": "INVALID_ARGUMENT" } })
    );
    let body = br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
    assert_eq!(error(429, body)["error"]["type"], "rate_limit_error");
    assert_eq!(error(403, b"{}")["error"]["type"], "permission_error");
    assert_eq!(error(401, b"")["error"]["type"], "authentication_error");
    let out = error(503, b"<html>down</html>");
    assert_eq!(out["error"]["message"], "upstream returned status 503: <html>down</html>");
    assert_eq!(out["error"]["code"], Value::Null);
}

fn gemini_stream(chunks: &[Value]) -> Vec<SseEvent> {
    chunks.iter().map(|chunk| SseEvent::data(chunk.to_string())).collect()
}

fn run(translator: &mut StreamTranslator, events: &[SseEvent]) -> Vec<Value> {
    let mut out: Vec<SseEvent> = events.iter().flat_map(|e| translator.push(e)).collect();
    out.extend(translator.finish());
    assert!(out.iter().all(|e| e.event.is_none()), "chat chunks have no event name");
    out.iter().map(|e| serde_json::from_str(&e.data).unwrap_or(json!(e.data))).collect()
}

#[test]
fn stream_of_text_and_a_function_call_becomes_chunks_with_usage_and_done() {
    let text = |parts: Value| {
        json!({ "candidates": [{ "content": { "role": "model", "parts": parts }, "index": 0 }],
        "usageMetadata": { "promptTokenCount": 8, "totalTokenCount": 8 }, "modelVersion": "gemini-2.5-flash", "responseId": "r7" })
    };
    let events = gemini_stream(&[
        text(json!([{ "text": "Let me think", "thought": true }])),
        text(json!([{ "text": "Checking " }])),
        json!({ "candidates": [{ "content": { "role": "model", "parts": [
                { "text": "now." },
                { "functionCall": { "name": "weather", "args": { "city": "Oslo" } }, "thoughtSignature": "c2ln" }
            ] }, "finishReason": "STOP", "index": 0 }],
            "usageMetadata": { "promptTokenCount": 8, "candidatesTokenCount": 5, "thoughtsTokenCount": 2, "totalTokenCount": 15 },
            "modelVersion": "gemini-2.5-flash", "responseId": "r7" }),
    ]);
    let mut translator = StreamTranslator::new(true, 3);
    let out = run(&mut translator, &events);
    assert!(translator.completed());
    assert_eq!(out[0]["id"], "chatcmpl-r7");
    assert_eq!(out[0]["model"], "gemini-2.5-flash");
    assert_eq!(out[0]["created"], 3);
    assert_eq!(out[0]["object"], "chat.completion.chunk");
    assert_eq!(out[0]["choices"][0]["delta"], json!({ "role": "assistant", "content": "" }));
    assert_eq!(out[1]["choices"][0]["delta"], json!({ "reasoning_content": "Let me think" }));
    let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Checking now.");
    assert_eq!(
        out[4]["choices"][0]["delta"]["tool_calls"],
        json!([{ "index": 0, "id": "call_0", "type": "function",
            "function": { "name": "weather", "arguments": "{\"city\":\"Oslo\"}" } }])
    );
    assert_eq!(out[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out[6]["choices"], json!([]));
    assert_eq!(
        out[6]["usage"],
        json!({ "prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15,
            "prompt_tokens_details": { "cached_tokens": 0 }, "completion_tokens_details": { "reasoning_tokens": 2 } })
    );
    assert_eq!(out[7], json!("[DONE]"));
    assert_eq!(out.len(), 8);
}

#[test]
fn a_stream_without_usage_asked_ends_with_done_alone() {
    let events = gemini_stream(&[json!({ "candidates": [{ "content": { "parts": [{ "text": "Hi" }] },
        "finishReason": "STOP" }] })]);
    let out = run(&mut StreamTranslator::new(false, 0), &events);
    assert_eq!(out[out.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(out.last().unwrap(), &json!("[DONE]"));
    assert!(out.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn a_stream_without_a_finish_reason_is_incomplete() {
    let events = gemini_stream(&[json!({ "candidates": [{ "content": { "parts": [{ "text": "Hi" }] } }] })]);
    let mut translator = StreamTranslator::new(true, 0);
    let out = run(&mut translator, &events);
    assert!(!translator.completed());
    assert!(!out.contains(&json!("[DONE]")));
}

#[test]
fn a_blocked_prompt_streams_an_empty_filtered_answer() {
    let events = gemini_stream(&[json!({ "promptFeedback": { "blockReason": "PROHIBITED_CONTENT" } })]);
    let mut translator = StreamTranslator::new(false, 0);
    let out = run(&mut translator, &events);
    assert!(translator.completed());
    assert_eq!(out[1]["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(out[2], json!("[DONE]"));
}

#[test]
fn an_error_in_the_stream_becomes_an_openai_error_event() {
    let events =
        gemini_stream(&[json!({ "error": { "code": 503, "message": "overloaded", "status": "UNAVAILABLE" } })]);
    let mut translator = StreamTranslator::new(true, 0);
    let out = run(&mut translator, &events);
    assert!(translator.completed());
    assert_eq!(
        out,
        vec![
            json!({ "error": { "message": "overloaded", "type": "server_error", "param": null, "code": "UNAVAILABLE" } })
        ]
    );
}
