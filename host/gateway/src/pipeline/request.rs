//! The client's request, read and checked before any stage runs: the body within its
//! size limit, its model, whether it streams.

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;

use crate::core::api::ClientApi;
use crate::core::body::JsonBody;
use crate::core::error::{ErrorKind, GatewayError};

/// A client's request, read and checked.
pub struct ClientRequest {
    pub api: ClientApi,
    pub body: JsonBody,
    pub model: String,
    pub stream: bool,
    /// The client asked for `stream_options.include_usage` (OpenAI streams).
    pub include_usage: bool,
}

/// The body, within `limit` bytes and `timeout` (a caller trickling bytes holds a
/// connection and a place in flight, so it is cut off).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, GatewayError> {
    let too_large = || {
        GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the request body is larger than the limit of {limit} bytes (general_settings.max_request_size_mb)"
            ),
        )
    };
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await.map_err(|_| {
        GatewayError::new(
            ErrorKind::RequestTimeout,
            format!(
                "the request body did not arrive within {} s (general_settings.request_body_timeout)",
                timeout.as_secs_f64()
            ),
        )
    })?;
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => Err(GatewayError::invalid(format!("could not read the request body: {error}"))),
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

impl ClientRequest {
    pub fn parse(api: ClientApi, bytes: &[u8]) -> Result<Self, GatewayError> {
        let body = JsonBody::parse(bytes)?;
        let model: String = body
            .get("model")?
            .filter(|m: &String| !m.is_empty())
            .ok_or_else(|| GatewayError::invalid("`model` is required").with_param("model"))?;
        let required = match api {
            ClientApi::OpenAiEmbeddings | ClientApi::OpenAiResponses => "input",
            _ => "messages",
        };
        match api {
            ClientApi::OpenAiEmbeddings | ClientApi::OpenAiResponses => {
                if !body.contains(required) {
                    return Err(GatewayError::invalid(format!("`{required}` is required")).with_param(required));
                }
            }
            _ => {
                // The body is already valid JSON: a look at the first byte tells an array.
                let is_array = body.raw(required).is_some_and(|m| m.get().starts_with('['));
                if !is_array {
                    return Err(
                        GatewayError::invalid("`messages` is required and must be an array").with_param(required)
                    );
                }
            }
        }
        let streams = matches!(api, ClientApi::OpenAiChat | ClientApi::OpenAiResponses | ClientApi::AnthropicMessages);
        let stream = streams && body.get::<bool>("stream")?.unwrap_or(false);
        let include_usage = body.get::<StreamOptions>("stream_options")?.is_some_and(|o| o.include_usage);
        Ok(Self { api, body, model, stream, include_usage })
    }
}
