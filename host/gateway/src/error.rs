//! The gateway's own errors, rendered in the calling client's API shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::sse::SseEvent;

/// Which error JSON a client understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error": {"message", "type", "param", "code"}}`
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`
    Anthropic,
}

impl ErrorShape {
    /// Anthropic's routes answer in Anthropic's shape, everything else in OpenAI's.
    pub fn for_path(path: &str) -> Self {
        if path.starts_with("/v1/messages") { Self::Anthropic } else { Self::OpenAi }
    }
}

/// What went wrong, which decides the status and the error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    /// The model exists but none of its deployments can serve (misconfigured).
    ModelUnavailable,
    /// The upstream could not be reached or answered nonsense.
    BadGateway,
    UpstreamTimeout,
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Authentication => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::ModelNotFound | Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ModelUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            Self::InvalidRequest | Self::ModelNotFound | Self::NotFound | Self::PayloadTooLarge => {
                "invalid_request_error"
            }
            Self::Authentication => "authentication_error",
            Self::PermissionDenied => "permission_error",
            Self::RateLimited => "rate_limit_error",
            Self::ModelUnavailable | Self::BadGateway | Self::UpstreamTimeout | Self::Internal => "server_error",
        }
    }

    fn anthropic_type(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::PermissionDenied => "permission_error",
            Self::ModelNotFound | Self::NotFound => "not_found_error",
            Self::PayloadTooLarge => "request_too_large",
            Self::RateLimited => "rate_limit_error",
            Self::ModelUnavailable => "overloaded_error",
            Self::UpstreamTimeout => "timeout_error",
            Self::BadGateway | Self::Internal => "api_error",
        }
    }

    /// A short, stable code (OpenAI's `code` field, and a log and metric label).
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Authentication => "invalid_api_key",
            Self::PermissionDenied => "permission_denied",
            Self::ModelNotFound => "model_not_found",
            Self::NotFound => "not_found",
            Self::PayloadTooLarge => "request_too_large",
            Self::RateLimited => "rate_limited",
            Self::ModelUnavailable => "model_unavailable",
            Self::BadGateway => "bad_gateway",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::Internal => "internal_error",
        }
    }
}

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

/// A [`GatewayError`] answered in OpenAI's shape, as the admin endpoints (keys,
/// analytics) answer, so their handlers can use `?`.
pub struct AdminError(pub GatewayError);

impl From<GatewayError> for AdminError {
    fn from(error: GatewayError) -> Self {
        Self(error)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        self.0.into_response(ErrorShape::OpenAi)
    }
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
        match shape {
            ErrorShape::OpenAi => json!({ "error": {
                "message": self.message,
                "type": self.kind.openai_type(),
                "param": self.param,
                "code": self.kind.code(),
            } }),
            ErrorShape::Anthropic => json!({ "type": "error", "error": {
                "type": self.kind.anthropic_type(),
                "message": self.message,
            } }),
        }
    }

    /// The event that ends a broken stream: OpenAI streams carry the error as a data
    /// event, Anthropic streams as an `error` event.
    pub fn stream_event(&self, shape: ErrorShape) -> SseEvent {
        let data = self.json(shape).to_string();
        match shape {
            ErrorShape::OpenAi => SseEvent::data(data),
            ErrorShape::Anthropic => SseEvent::named("error", data),
        }
    }

    /// The error as a response in the client's shape.
    pub fn into_response(self, shape: ErrorShape) -> Response {
        let body = self.json(shape);
        let mut response = (self.kind.status(), Json(body)).into_response();
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

/// A handler's error together with the shape to render it in.
pub struct ApiError(pub ErrorShape, pub GatewayError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.1.into_response(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn shape_follows_the_route() {
        assert_eq!(ErrorShape::for_path("/v1/messages/count_tokens"), ErrorShape::Anthropic);
        assert_eq!(ErrorShape::for_path("/v1/chat/completions"), ErrorShape::OpenAi);
    }
}
