//! OpenAI's Responses API (what Codex CLI speaks), as the mock speaks it: text answers,
//! whole or streamed.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::openai::error_body;
use crate::reply::{Prompt, Reply, content_text, sse_response};
use crate::state::{Exchange, MockState};

fn prompt(body: &Value) -> Prompt<'_> {
    let last_user_text = match &body["input"] {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .rev()
            .find(|item| item["role"] == "user")
            .map(|item| content_text(&item["content"]))
            .unwrap_or_default(),
        _ => String::new(),
    };
    Prompt {
        model: body["model"].as_str().unwrap_or_default(),
        system_text: content_text(&body["instructions"]),
        last_user_text,
        first_tool: None,
        has_tool_result: false,
        tool_result_text: String::new(),
        max_tokens: body["max_output_tokens"].as_u64(),
        prompt_bytes: body["input"].to_string().len() + body["instructions"].to_string().len(),
    }
}

pub async fn responses(state: Arc<MockState>, exchange: Exchange) -> Response {
    if let Some(response) = exchange.fault_response(error_body) {
        state.mark(exchange.id, true);
        return response;
    }
    let reply = Reply::for_prompt(&state.options, &prompt(&exchange.body)).with_cached(state.options.cached_tokens());
    let id = format!("resp_mock_{}", exchange.id);
    let item_id = format!("msg_mock_{}", exchange.id);
    let usage = json!({
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "input_tokens_details": { "cached_tokens": reply.cached_tokens },
    });
    let text = reply.text();
    let item = json!({
        "type": "message", "id": item_id, "status": "completed", "role": "assistant",
        "content": [{ "type": "output_text", "text": text, "annotations": [] }],
    });
    let response = |status: &str, output: Value, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": 0, "status": status, "model": exchange.model,
            "output": output, "usage": usage,
        })
    };
    if !exchange.stream {
        state.mark(exchange.id, true);
        return Json(response("completed", json!([item]), usage)).into_response();
    }
    let mut sequence = 0;
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        format!("event: {kind}\ndata: {data}\n\n")
    };
    let mut events = vec![
        event("response.created", json!({ "response": response("in_progress", json!([]), Value::Null) })),
        event(
            "response.output_item.added",
            json!({ "output_index": 0, "item": { "type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": [] } }),
        ),
        event(
            "response.content_part.added",
            json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "part": { "type": "output_text", "text": "", "annotations": [] } }),
        ),
    ];
    for word in &reply.words {
        events.push(event(
            "response.output_text.delta",
            json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "delta": word }),
        ));
    }
    events.push(event(
        "response.output_text.done",
        json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "text": text }),
    ));
    events.push(event("response.output_item.done", json!({ "output_index": 0, "item": item })));
    events.push(event("response.completed", json!({ "response": response("completed", json!([item]), usage) })));
    sse_response(state, &exchange, events)
}
