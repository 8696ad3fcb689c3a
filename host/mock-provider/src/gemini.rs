//! Gemini's own API, as the mock speaks it: `models/<model>:generateContent`, and
//! `:streamGenerateContent?alt=sse`, whose events are bare `data:` lines, each a whole
//! `GenerateContentResponse` with the next piece of the answer. The model and
//! streaming are in the path; the key is in `x-goog-api-key` or `?key=`.

use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::reply::{Finish, Prompt, Reply, content_text, sse_response};
use crate::state::{Exchange, MockState};

/// A Gemini model call: `/<version>/models/<model>:generateContent` or
/// `:streamGenerateContent`.
pub fn serves(path: &str) -> bool {
    path.contains(":generateContent") || path.contains(":streamGenerateContent")
}

/// The model a Gemini path names, when it is one.
pub fn model_of(path: &str) -> Option<&str> {
    if !serves(path) {
        return None;
    }
    let (resource, _) = path.rsplit_once(':')?;
    resource.rsplit('/').next().filter(|model| !model.is_empty())
}

/// True when a Gemini path asks for a streamed answer.
pub fn streams(path: &str) -> bool {
    path.contains(":streamGenerateContent")
}

/// Google's error JSON: the HTTP status, a message and the RPC status name.
pub fn error_body(status: u16) -> Value {
    error_json(status, &format!("mock fault: status {status}"))
}

fn error_json(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    json!({ "error": { "code": status, "message": message, "status": kind } })
}

/// Google takes the key in a header or in the query string.
fn has_key(request: &Request) -> bool {
    let in_header = request.headers().get("x-goog-api-key").is_some_and(|key| !key.is_empty());
    let in_query = request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair.strip_prefix("key=").is_some_and(|key| !key.is_empty())));
    in_header || in_query
}

fn prompt<'a>(body: &Value, model: &'a str) -> Prompt<'a> {
    let contents = body["contents"].as_array().map(Vec::as_slice).unwrap_or_default();
    let parts = |content: &Value| content["parts"].as_array().cloned().unwrap_or_default();
    // A user turn's text, without the function responses it may also carry.
    let text_of = |content: &Value| {
        let texts: Vec<Value> = parts(content).into_iter().filter(|p| p.get("text").is_some()).collect();
        content_text(&Value::Array(texts))
    };
    let last_user_text =
        contents.iter().rev().find(|c| c["role"] == "user" || c.get("role").is_none()).map(text_of).unwrap_or_default();
    let function_response =
        contents.iter().rev().flat_map(parts).find_map(|part| part.get("functionResponse").cloned());
    let tools_allowed = body["toolConfig"]["functionCallingConfig"]["mode"] != "NONE";
    Prompt {
        model,
        system_text: content_text(&body["systemInstruction"]["parts"]),
        last_user_text,
        first_tool: body["tools"][0]["functionDeclarations"][0]["name"]
            .as_str()
            .filter(|_| tools_allowed)
            .map(str::to_owned),
        has_tool_result: function_response.is_some(),
        tool_result_text: function_response
            .map(|response| match &response["response"]["content"] {
                Value::String(text) => text.clone(),
                Value::Null => response["response"].to_string(),
                other => other.to_string(),
            })
            .unwrap_or_default(),
        max_tokens: body["generationConfig"]["maxOutputTokens"].as_u64(),
        prompt_bytes: body["contents"].to_string().len() + body["systemInstruction"].to_string().len(),
    }
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCall => "STOP",
        Finish::Length => "MAX_TOKENS",
    }
}

fn usage(reply: &Reply) -> Value {
    let mut usage = json!({
        "promptTokenCount": reply.input_tokens,
        "candidatesTokenCount": reply.output_tokens,
        "totalTokenCount": reply.input_tokens + reply.output_tokens,
    });
    if reply.cached_tokens > 0 {
        usage["cachedContentTokenCount"] = json!(reply.cached_tokens);
    }
    usage
}

/// One `GenerateContentResponse`: `parts` of the answer and, on the last, its end.
fn answer_json(model: &str, response_id: &str, parts: Value, end: Option<&Reply>) -> Value {
    let mut candidate = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
    let mut answer = json!({ "candidates": [], "modelVersion": model, "responseId": response_id });
    if let Some(reply) = end {
        candidate["finishReason"] = json!(finish_reason(reply.finish));
        answer["usageMetadata"] = usage(reply);
    }
    answer["candidates"] = json!([candidate]);
    answer
}

/// The answer whole, as `generateContent` returns it.
fn whole(reply: &Reply, model: &str, response_id: &str) -> Value {
    let parts = match &reply.tool_call {
        Some((name, arguments)) => {
            let args: Value = serde_json::from_str(arguments).unwrap_or_default();
            json!([{ "functionCall": { "name": name, "args": args } }])
        }
        None => json!([{ "text": reply.text() }]),
    };
    answer_json(model, response_id, parts, Some(reply))
}

/// The answer streamed, as `streamGenerateContent?alt=sse` sends it: a word an event,
/// a function call whole, the last event with the finish reason and usage.
fn stream_events(reply: &Reply, model: &str, response_id: &str) -> Vec<String> {
    let pieces: Vec<Value> = match &reply.tool_call {
        Some(_) => vec![whole(reply, model, response_id)["candidates"][0]["content"]["parts"].clone()],
        None if reply.words.is_empty() => vec![json!([{ "text": "" }])],
        None => reply.words.iter().map(|word| json!([{ "text": word }])).collect(),
    };
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, parts)| {
            let answer = answer_json(model, response_id, parts, (i == last).then_some(reply));
            // Google ends its events with CRLF pairs.
            format!("data: {answer}\r\n\r\n")
        })
        .collect()
}

pub async fn generate(state: Arc<MockState>, request: Request) -> Response {
    if !has_key(&request) {
        let message = "Method doesn't allow unregistered callers. Please use an API key (x-goog-api-key or ?key=).";
        return (StatusCode::UNAUTHORIZED, Json(error_json(401, message))).into_response();
    }
    let Ok(exchange) = Exchange::receive(&state, request).await else {
        return (StatusCode::BAD_REQUEST, Json(error_json(400, "unreadable body"))).into_response();
    };
    if let Some(response) = exchange.fault_response(error_body) {
        state.mark(exchange.id, true);
        return response;
    }
    let reply = Reply::for_prompt(&state.options, &prompt(&exchange.body, &exchange.model))
        .with_cached(state.options.cached_tokens());
    let response_id = format!("mock-{}", exchange.id);
    if !exchange.stream {
        state.mark(exchange.id, true);
        return Json(whole(&reply, &exchange.model, &response_id)).into_response();
    }
    let events = stream_events(&reply, &exchange.model, &response_id);
    sse_response(state, &exchange, events)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn options(extra: &[&str]) -> crate::Options {
        crate::Options::parse_from(std::iter::once("mock-provider").chain(extra.iter().copied()))
    }

    #[test]
    fn paths_name_the_model_and_streaming() {
        assert_eq!(model_of("/v1beta/models/gemini-2.5-flash:generateContent"), Some("gemini-2.5-flash"));
        assert_eq!(model_of("/models/gemini-2.5-pro:streamGenerateContent"), Some("gemini-2.5-pro"));
        assert_eq!(model_of("/v1/chat/completions"), None);
        assert!(streams("/v1beta/models/m:streamGenerateContent"));
        assert!(!streams("/v1beta/models/m:generateContent"));
    }

    #[test]
    fn a_prompt_reads_contents_tools_and_limits() {
        let body = json!({
            "systemInstruction": { "parts": [{ "text": "Be brief." }] },
            "contents": [{ "role": "user", "parts": [{ "text": "Weather in Oslo?" }] }],
            "tools": [{ "functionDeclarations": [{ "name": "weather" }] }],
            "generationConfig": { "maxOutputTokens": 3 }
        });
        let prompt = prompt(&body, "gemini-x");
        assert_eq!(prompt.system_text, "Be brief.");
        assert_eq!(prompt.last_user_text, "Weather in Oslo?");
        assert_eq!(prompt.first_tool.as_deref(), Some("weather"));
        assert_eq!(prompt.max_tokens, Some(3));
        assert!(!prompt.has_tool_result);

        let reply = Reply::for_prompt(&options(&[]), &prompt);
        let answer = whole(&reply, "gemini-x", "r1");
        assert_eq!(
            answer["candidates"][0]["content"]["parts"],
            json!([{ "functionCall": { "name": "weather", "args": { "input": "Weather in Oslo?" } } }])
        );
        assert_eq!(answer["candidates"][0]["finishReason"], "STOP");
        assert_eq!(answer["modelVersion"], "gemini-x");

        let reply = Reply::for_prompt(&options(&["--no-tool-calls"]), &prompt);
        let answer = whole(&reply, "gemini-x", "r1");
        assert_eq!(answer["candidates"][0]["content"]["parts"][0]["text"], "Hello from the ");
        assert_eq!(answer["candidates"][0]["finishReason"], "MAX_TOKENS");
        assert_eq!(answer["usageMetadata"]["candidatesTokenCount"], 3);
    }

    #[test]
    fn a_function_response_is_answered_in_text() {
        let body = json!({
            "contents": [
                { "role": "user", "parts": [{ "text": "Weather?" }] },
                { "role": "model", "parts": [{ "functionCall": { "name": "weather", "args": {} } }] },
                { "role": "user", "parts": [{ "functionResponse": { "name": "weather", "response": { "content": "sunny" } } }] }
            ],
            "tools": [{ "functionDeclarations": [{ "name": "weather" }] }]
        });
        let prompt = prompt(&body, "m");
        assert!(prompt.has_tool_result);
        let reply = Reply::for_prompt(&options(&[]), &prompt);
        assert_eq!(reply.text(), "The tool said: sunny");
    }

    #[test]
    fn a_stream_sends_words_then_the_end_with_usage() {
        let body = json!({ "contents": [{ "parts": [{ "text": "hi" }] }] });
        let reply = Reply::for_prompt(&options(&[]), &prompt(&body, "m"));
        let events = stream_events(&reply, "m", "r1");
        assert_eq!(events.len(), reply.words.len());
        assert!(events.iter().all(|e| e.starts_with("data: {") && e.ends_with("}\r\n\r\n")));
        let chunks: Vec<Value> =
            events.iter().map(|e| serde_json::from_str(e.trim_start_matches("data: ").trim_end()).unwrap()).collect();
        let text: String =
            chunks.iter().filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str()).collect();
        assert_eq!(text, "Hello from the mock model m. You said: hi");
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.get("usageMetadata").is_none()));
        let last = chunks.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["usageMetadata"]["totalTokenCount"], reply.input_tokens + reply.output_tokens);
    }

    #[test]
    fn errors_take_googles_shape() {
        assert_eq!(
            error_body(429),
            json!({ "error": { "code": 429, "message": "mock fault: status 429", "status": "RESOURCE_EXHAUSTED" } })
        );
    }
}
