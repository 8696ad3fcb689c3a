//! AWS Bedrock's InvokeModel for Anthropic's models, as the mock speaks it: the model
//! in the path, the Messages body in Bedrock's envelope, a SigV4 signature (or a
//! Bedrock API key) required, streamed answers framed as AWS event-stream messages.

use std::sync::Arc;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::anthropic;
use crate::state::{Exchange, MockState};

/// `/model/{model id}/invoke` or `/model/{model id}/invoke-with-response-stream`.
pub fn serves(path: &str) -> bool {
    path.contains("/model/") && (path.ends_with("/invoke") || path.ends_with("/invoke-with-response-stream"))
}

pub async fn invoke(state: Arc<MockState>, request: axum::extract::Request) -> Response {
    let path = request.uri().path().to_owned();
    if let Err(problem) = check_auth(request.headers()) {
        return bedrock_error(StatusCode::FORBIDDEN, "AccessDeniedException", &problem);
    }
    let Ok(mut exchange) = Exchange::receive(&state, request).await else {
        return bedrock_error(StatusCode::BAD_REQUEST, "ValidationException", "unreadable body");
    };
    if exchange.body["anthropic_version"] != "bedrock-2023-05-31" || exchange.body.get("model").is_some() {
        let problem = "the body must carry anthropic_version bedrock-2023-05-31 and no model";
        return bedrock_error(StatusCode::BAD_REQUEST, "ValidationException", problem);
    }
    let model = path.split("/model/").nth(1).unwrap_or_default();
    let model = model.trim_end_matches("/invoke-with-response-stream").trim_end_matches("/invoke");
    exchange.model = model.replace("%3A", ":");
    exchange.stream = path.ends_with("-stream");
    let response = anthropic::messages(state, exchange).await;
    if !response.status().is_success() {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
        let parsed: Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = parsed["error"]["message"].as_str().unwrap_or("mock fault");
        let kind = if status == StatusCode::TOO_MANY_REQUESTS { "ThrottlingException" } else { "ModelErrorException" };
        return bedrock_error(status, kind, message);
    }
    if !path.ends_with("-stream") {
        return response;
    }
    // The Anthropic handler streams one SSE event per chunk: each becomes one frame.
    let frames = response.into_body().into_data_stream().map(|chunk| chunk.map(|event| frame_of(&event)));
    ([(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")], Body::from_stream(frames)).into_response()
}

/// A signed request has an AWS4 authorization for the bedrock service and its date;
/// a Bedrock API key is a bearer token.
fn check_auth(headers: &HeaderMap) -> Result<(), String> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if authorization.starts_with("Bearer ") {
        return Ok(());
    }
    let signed = authorization.starts_with("AWS4-HMAC-SHA256 Credential=")
        && authorization.contains("/bedrock/aws4_request")
        && authorization.contains("SignedHeaders=")
        && authorization.contains("Signature=");
    if !signed || !headers.contains_key("x-amz-date") {
        return Err("missing or malformed SigV4 signature".to_owned());
    }
    Ok(())
}

fn bedrock_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "message": message }))).into_response();
    if let Ok(kind) = kind.parse() {
        response.headers_mut().insert("x-amzn-errortype", kind);
    }
    response
}

/// One SSE event (`event: x\ndata: {...}\n\n`) as an event-stream chunk frame.
fn frame_of(event: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(event);
    let data: String = text.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
    let payload = json!({ "bytes": base64::engine::general_purpose::STANDARD.encode(data) });
    let message = Message::new(payload.to_string())
        .add_header(Header::new(":message-type", HeaderValue::String("event".to_owned().into())))
        .add_header(Header::new(":event-type", HeaderValue::String("chunk".to_owned().into())))
        .add_header(Header::new(":content-type", HeaderValue::String("application/json".to_owned().into())));
    let mut out = Vec::new();
    // Writing to a Vec fails only for headers too long for the format.
    let _ = write_message_to(&message, &mut out);
    Bytes::from(out)
}
