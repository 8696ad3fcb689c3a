//! OpenAI's chat completions, embeddings and models, as the mock speaks them.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::reply::{Finish, Prompt, Reply, content_text, sse_response};
use crate::state::{Exchange, MockState};

pub fn error_body(status: u16) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        429 => "rate_limit_exceeded",
        _ => "server_error",
    };
    json!({ "error": { "message": format!("mock fault: status {status}"), "type": kind, "param": null, "code": null } })
}

fn prompt(body: &Value) -> Prompt<'_> {
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    let last_user_text =
        messages.iter().rev().find(|m| m["role"] == "user").map(|m| content_text(&m["content"])).unwrap_or_default();
    let tool_result = messages.iter().rev().find(|m| m["role"] == "tool");
    let tools_allowed = body["tool_choice"] != "none";
    let system = messages.iter().filter(|m| m["role"] == "system" || m["role"] == "developer");
    Prompt {
        model: body["model"].as_str().unwrap_or_default(),
        system_text: system.map(|m| content_text(&m["content"])).collect::<Vec<_>>().join("\n"),
        last_user_text,
        first_tool: body["tools"][0]["function"]["name"].as_str().filter(|_| tools_allowed).map(str::to_owned),
        has_tool_result: tool_result.is_some(),
        tool_result_text: tool_result.map(|m| content_text(&m["content"])).unwrap_or_default(),
        max_tokens: body["max_completion_tokens"].as_u64().or(body["max_tokens"].as_u64()),
        prompt_bytes: body["messages"].to_string().len(),
    }
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCall => "tool_calls",
    }
}

fn usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": { "cached_tokens": reply.cached_tokens },
    })
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub async fn chat(state: Arc<MockState>, exchange: Exchange) -> Response {
    if let Some(response) = exchange.fault_response(error_body) {
        state.mark(exchange.id, true);
        return response;
    }
    let reply = Reply::for_prompt(&state.options, &prompt(&exchange.body)).with_cached(state.options.cached_tokens());
    let id = format!("chatcmpl-mock-{}", exchange.id);
    let created = now();
    let model = exchange.model.as_str();
    let tool_call_id = format!("call_mock_{}", exchange.id);

    if !exchange.stream {
        let mut message = json!({ "role": "assistant", "content": null });
        match &reply.tool_call {
            Some((name, arguments)) => {
                message["tool_calls"] = json!([{
                    "id": tool_call_id, "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }]);
            }
            None => message["content"] = Value::String(reply.text()),
        }
        state.mark(exchange.id, true);
        return Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(reply.finish) }],
            "usage": usage(&reply),
            "system_fingerprint": "fp_mock",
        }))
        .into_response();
    }

    let chunk = |delta: Value, finish: Option<&str>| {
        let chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        format!("data: {chunk}\n\n")
    };
    let mut events = vec![chunk(json!({ "role": "assistant", "content": "" }), None)];
    match &reply.tool_call {
        Some((name, arguments)) => {
            events.push(chunk(
                json!({ "tool_calls": [{ "index": 0, "id": tool_call_id, "type": "function",
                    "function": { "name": name, "arguments": "" } }] }),
                None,
            ));
            // Arguments arrive in pieces, as real providers send them.
            let split = arguments.len() / 2;
            let split = (split..arguments.len()).find(|i| arguments.is_char_boundary(*i)).unwrap_or(0);
            for piece in [&arguments[..split], &arguments[split..]] {
                events.push(chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }), None));
            }
        }
        None => {
            for word in &reply.words {
                events.push(chunk(json!({ "content": word }), None));
            }
        }
    }
    events.push(chunk(json!({}), Some(finish_reason(reply.finish))));
    if exchange.body["stream_options"]["include_usage"] == true {
        let chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage(&reply),
        });
        events.push(format!("data: {chunk}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_owned());
    sse_response(state, &exchange, events)
}

pub async fn embeddings(state: Arc<MockState>, exchange: Exchange) -> Response {
    if let Some(response) = exchange.fault_response(error_body) {
        state.mark(exchange.id, true);
        return response;
    }
    let inputs: Vec<String> = match &exchange.body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect(),
        _ => {
            let error = json!({ "error": { "message": "'input' is required", "type": "invalid_request_error", "param": "input", "code": null } });
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    };
    let dimensions = exchange.body["dimensions"].as_u64().unwrap_or(8).clamp(1, 4096) as usize;
    let base64 = exchange.body["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = embed(text, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens: usize = inputs.iter().map(|i| i.len().div_ceil(4)).sum();
    state.mark(exchange.id, true);
    Json(json!({
        "object": "list", "data": data, "model": exchange.model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
    .into_response()
}

/// A deterministic unit vector derived from the text's bytes.
fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0f32; dimensions];
    for (i, byte) in text.bytes().enumerate() {
        vector[(i + byte as usize) % dimensions] += f32::from(byte) / 255.0;
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::EPSILON);
    vector.iter().map(|x| x / norm).collect()
}

pub fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{ "id": "mock-model", "object": "model", "created": 0, "owned_by": "mock" }],
    }))
}
