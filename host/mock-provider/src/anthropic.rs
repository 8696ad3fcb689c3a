//! Anthropic's messages and count_tokens, as the mock speaks them.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::reply::{Finish, Prompt, Reply, content_text, sse_response};
use crate::state::{Exchange, MockState};

pub fn error_body(status: u16) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({ "type": "error", "error": { "type": kind, "message": format!("mock fault: status {status}") } })
}

fn prompt(body: &Value) -> Prompt<'_> {
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    let is_tool_result = |block: &&Value| block["type"] == "tool_result";
    let user_text = |m: &Value| match &m["content"] {
        Value::Array(blocks) => {
            content_text(&Value::Array(blocks.iter().filter(|b| b["type"] == "text").cloned().collect()))
        }
        other => content_text(other),
    };
    let tool_result = messages
        .iter()
        .rev()
        .filter_map(|m| m["content"].as_array())
        .find_map(|blocks| blocks.iter().find(is_tool_result));
    Prompt {
        model: body["model"].as_str().unwrap_or_default(),
        system_text: content_text(&body["system"]),
        last_user_text: messages.iter().rev().find(|m| m["role"] == "user").map(user_text).unwrap_or_default(),
        first_tool: body["tools"][0]["name"]
            .as_str()
            .filter(|_| body["tool_choice"]["type"] != "none")
            .map(str::to_owned),
        has_tool_result: tool_result.is_some(),
        tool_result_text: tool_result.map(|b| content_text(&b["content"])).unwrap_or_default(),
        max_tokens: body["max_tokens"].as_u64(),
        prompt_bytes: body["messages"].to_string().len() + body["system"].to_string().len(),
    }
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCall => "tool_use",
    }
}

pub async fn messages(state: Arc<MockState>, exchange: Exchange) -> Response {
    if let Some(response) = exchange.fault_response(error_body) {
        state.mark(exchange.id, true);
        return response;
    }
    let reply = Reply::for_prompt(&state.options, &prompt(&exchange.body)).with_cached(state.options.cached_tokens());
    let id = format!("msg_mock_{}", exchange.id);
    let tool_id = format!("toolu_mock_{}", exchange.id);
    let model = exchange.model.as_str();

    if !exchange.stream {
        let content = match &reply.tool_call {
            Some((name, arguments)) => {
                let input: Value = serde_json::from_str(arguments).unwrap_or_default();
                json!([{ "type": "tool_use", "id": tool_id, "name": name, "input": input }])
            }
            None => json!([{ "type": "text", "text": reply.text() }]),
        };
        state.mark(exchange.id, true);
        return Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason(reply.finish), "stop_sequence": null,
            "usage": {
                "input_tokens": reply.input_tokens - reply.cached_tokens,
                "cache_read_input_tokens": reply.cached_tokens,
                "output_tokens": reply.output_tokens,
            },
        }))
        .into_response();
    }

    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({ "type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {
                    "input_tokens": reply.input_tokens - reply.cached_tokens,
                    "cache_read_input_tokens": reply.cached_tokens,
                    "output_tokens": 1,
                },
            } }),
    )];
    match &reply.tool_call {
        Some((name, arguments)) => {
            events.push(event(
                "content_block_start",
                json!({ "type": "content_block_start", "index": 0,
                    "content_block": { "type": "tool_use", "id": tool_id, "name": name, "input": {} } }),
            ));
            let split = (arguments.len() / 2..arguments.len()).find(|i| arguments.is_char_boundary(*i)).unwrap_or(0);
            for piece in [&arguments[..split], &arguments[split..]] {
                events.push(event(
                    "content_block_delta",
                    json!({ "type": "content_block_delta", "index": 0,
                        "delta": { "type": "input_json_delta", "partial_json": piece } }),
                ));
            }
        }
        None => {
            events.push(event(
                "content_block_start",
                json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
            ));
            events.push(event("ping", json!({ "type": "ping" })));
            for word in &reply.words {
                events.push(event(
                    "content_block_delta",
                    json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": word } }),
                ));
            }
        }
    }
    events.push(event("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })));
    events.push(event(
        "message_delta",
        json!({ "type": "message_delta", "delta": { "stop_reason": stop_reason(reply.finish), "stop_sequence": null },
            "usage": { "output_tokens": reply.output_tokens } }),
    ));
    events.push(event("message_stop", json!({ "type": "message_stop" })));
    sse_response(state, &exchange, events)
}

pub async fn count_tokens(state: Arc<MockState>, exchange: Exchange) -> Response {
    if let Some(response) = exchange.fault_response(error_body) {
        return response;
    }
    let prompt = prompt(&exchange.body);
    state.mark(exchange.id, true);
    Json(json!({ "input_tokens": (prompt.prompt_bytes as u64).div_ceil(4).max(1) })).into_response()
}
