//! The gateway's own errors, rendered in the calling client's API shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use wire::errors::{ErrorKind, ErrorShape};
use wire::sse::SseEvent;

/// An error the gateway answers with, before it knows the client's shape.
#[derive(Debug, Clone)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// Seconds the client should wait, for rate limits.
    pub retry_after: Option<u64>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), param: None, retry_after: None }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The error's JSON in the client's shape.
    pub fn json(&self, shape: ErrorShape) -> Value {
        shape.body(self.kind, &self.message, self.param.as_deref(), Some(self.kind.code()))
    }

    /// The event that ends a broken stream, in the client's shape.
    pub fn stream_event(&self, shape: ErrorShape) -> SseEvent {
        shape.stream_event(&self.json(shape))
    }

    /// The error as a response in the client's shape.
    pub fn into_response(self, shape: ErrorShape) -> Response {
        let body = self.json(shape);
        let status = StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn renders_both_shapes_with_status() {
        let error = GatewayError::invalid("`messages` is required").with_param("messages");
        let openai = error.clone().into_response(ErrorShape::OpenAi);
        assert_eq!(openai.status(), 400);
        assert_eq!(
            body_of(openai).await,
            json!({ "error": { "message": "`messages` is required", "type": "invalid_request_error", "param": "messages", "code": "invalid_request" } })
        );
        let anthropic = error.into_response(ErrorShape::Anthropic);
        assert_eq!(
            body_of(anthropic).await,
            json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "`messages` is required" } })
        );
    }
}
