//! The error kinds both client APIs know, each with its HTTP status and its type in
//! OpenAI's and Anthropic's error JSON: one table for the gateway's own errors and for
//! upstream errors the adapters translate.

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

/// What went wrong, which decides the status and the error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    /// The client did not send its request in time.
    RequestTimeout,
    RateLimited,
    /// The gateway has as many requests in flight as it takes.
    Overloaded,
    /// The model exists but none of its deployments can serve (misconfigured), or the
    /// upstream is overloaded.
    ModelUnavailable,
    /// The upstream could not be reached or answered nonsense.
    BadGateway,
    UpstreamTimeout,
    Internal,
}

impl ErrorKind {
    /// The kind an upstream's HTTP status stands for.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 | 422 => Self::InvalidRequest,
            401 => Self::Authentication,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            413 => Self::PayloadTooLarge,
            429 => Self::RateLimited,
            502 => Self::BadGateway,
            503 | 529 => Self::ModelUnavailable,
            504 => Self::UpstreamTimeout,
            _ => Self::Internal,
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Authentication => 401,
            Self::PermissionDenied => 403,
            Self::ModelNotFound | Self::NotFound => 404,
            Self::PayloadTooLarge => 413,
            Self::RequestTimeout => 408,
            Self::RateLimited => 429,
            Self::ModelUnavailable | Self::Overloaded => 503,
            Self::BadGateway => 502,
            Self::UpstreamTimeout => 504,
            Self::Internal => 500,
        }
    }

    pub fn openai_type(self) -> &'static str {
        match self {
            Self::InvalidRequest
            | Self::ModelNotFound
            | Self::NotFound
            | Self::PayloadTooLarge
            | Self::RequestTimeout => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::PermissionDenied => "permission_error",
            Self::RateLimited => "rate_limit_error",
            Self::ModelUnavailable | Self::Overloaded | Self::BadGateway | Self::UpstreamTimeout | Self::Internal => {
                "server_error"
            }
        }
    }

    pub fn anthropic_type(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::PermissionDenied => "permission_error",
            Self::ModelNotFound | Self::NotFound => "not_found_error",
            Self::PayloadTooLarge => "request_too_large",
            Self::RateLimited => "rate_limit_error",
            Self::ModelUnavailable | Self::Overloaded => "overloaded_error",
            Self::UpstreamTimeout | Self::RequestTimeout => "timeout_error",
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
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "gateway_overloaded",
            Self::ModelUnavailable => "model_unavailable",
            Self::BadGateway => "bad_gateway",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::Internal => "internal_error",
        }
    }
}

impl ErrorShape {
    /// The error JSON in this shape. `param` and `code` exist in OpenAI's shape only.
    pub fn body(self, kind: ErrorKind, message: &str, param: Option<&str>, code: Option<&str>) -> Value {
        match self {
            Self::OpenAi => json!({ "error": {
                "message": message,
                "type": kind.openai_type(),
                "param": param,
                "code": code,
            } }),
            Self::Anthropic => json!({ "type": "error", "error": {
                "type": kind.anthropic_type(),
                "message": message,
            } }),
        }
    }

    /// The event that ends a broken stream with `body`: OpenAI streams carry the error
    /// as a data event, Anthropic streams as an `error` event.
    pub fn stream_event(self, body: &Value) -> SseEvent {
        match self {
            Self::OpenAi => SseEvent::data(body.to_string()),
            Self::Anthropic => SseEvent::named("error", body.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_statuses_map_to_both_apis_types() {
        let types = |status| {
            let kind = ErrorKind::from_status(status);
            (kind.openai_type(), kind.anthropic_type())
        };
        assert_eq!(types(400), ("invalid_request_error", "invalid_request_error"));
        assert_eq!(types(404), ("invalid_request_error", "not_found_error"));
        assert_eq!(types(413), ("invalid_request_error", "request_too_large"));
        assert_eq!(types(429), ("rate_limit_error", "rate_limit_error"));
        assert_eq!(types(529), ("server_error", "overloaded_error"));
        assert_eq!(types(504), ("server_error", "timeout_error"));
        assert_eq!(types(500), ("server_error", "api_error"));
        for status in [400, 401, 403, 404, 413, 429, 502, 503, 504, 500] {
            assert_eq!(ErrorKind::from_status(status).status(), status);
        }
    }

    #[test]
    fn bodies_and_stream_events_in_both_shapes() {
        let openai = ErrorShape::OpenAi.body(ErrorKind::InvalidRequest, "bad", Some("model"), Some("invalid_request"));
        assert_eq!(
            openai,
            json!({ "error": { "message": "bad", "type": "invalid_request_error", "param": "model", "code": "invalid_request" } })
        );
        let anthropic = ErrorShape::Anthropic.body(ErrorKind::BadGateway, "gone", None, None);
        assert_eq!(anthropic, json!({ "type": "error", "error": { "type": "api_error", "message": "gone" } }));
        assert_eq!(ErrorShape::Anthropic.stream_event(&anthropic).event.as_deref(), Some("error"));
        assert_eq!(ErrorShape::OpenAi.stream_event(&openai).event, None);
    }
}
