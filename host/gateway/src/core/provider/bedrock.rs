//! Anthropic's models on AWS Bedrock, through InvokeModel: the Messages body in
//! Bedrock's envelope, the request signed with SigV4 (or a Bedrock API key as a bearer
//! token), and streamed answers unwrapped from AWS's event-stream framing into the
//! Anthropic SSE events every other part of the gateway reads.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::core::secret::Secret;

/// The Messages API version Bedrock's Anthropic models take, in the body.
const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// AWS credentials for SigV4, from `aws_*` params or the usual environment variables.
#[derive(Clone, Debug, PartialEq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub region: String,
}

/// The runtime endpoint of a region.
pub fn runtime_endpoint(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// The path after the model's base URL.
pub fn path(stream: bool) -> &'static str {
    if stream { "/invoke-with-response-stream" } else { "/invoke" }
}

/// An Anthropic Messages body as InvokeModel takes it: the model is in the URL,
/// streaming is the path's, the version and beta flags travel in the body.
pub fn envelope(body: &[u8], betas: &[String]) -> Result<Bytes, String> {
    let mut body: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not a JSON object: {e}"))?;
    body.remove("model");
    body.remove("stream");
    body.insert("anthropic_version".into(), Value::String(BEDROCK_ANTHROPIC_VERSION.into()));
    let betas: Vec<Value> =
        betas.iter().flat_map(|b| b.split(',')).map(|b| Value::String(b.trim().to_owned())).collect();
    if !betas.is_empty() {
        body.insert("anthropic_beta".into(), Value::Array(betas));
    }
    Ok(Bytes::from(Value::Object(body).to_string()))
}

/// Signs a POST to `url` with `headers` and `body`, adding the signature's headers
/// (`authorization`, `x-amz-date`, `x-amz-security-token`) to `headers`.
pub fn sign_request(
    credentials: &AwsCredentials,
    url: &reqwest::Url,
    headers: &mut HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let identity = Credentials::new(
        &credentials.access_key_id,
        credentials.secret_access_key.expose(),
        credentials.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "config.yaml",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&credentials.region)
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let signed: Vec<(&str, &str)> =
        headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
    let request = SignableRequest::new("POST", url.as_str(), signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) =
        sign(request, &params).map_err(|e| format!("cannot sign the request: {e}"))?.into_parts();
    let (signature_headers, _params) = instructions.into_parts();
    for header in signature_headers {
        let unusable = |e: String| format!("cannot sign the request: {e}");
        let name = HeaderName::try_from(header.name()).map_err(|e| unusable(e.to_string()))?;
        let mut value = HeaderValue::try_from(header.value()).map_err(|e| unusable(e.to_string()))?;
        value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
        headers.insert(name, value);
    }
    Ok(())
}

/// A Bedrock error (`{"message": ...}`, its kind in `x-amzn-errortype`) as Anthropic's
/// error JSON, which the client or the adapter plugin reads.
pub fn anthropic_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Bytes {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Bedrock returned status {status}: {}", String::from_utf8_lossy(body)));
    let aws_kind = headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()).unwrap_or_default();
    Bytes::from(
        json!({ "type": "error", "error": { "type": error_type(status, aws_kind), "message": message } }).to_string(),
    )
}

fn error_type(status: u16, aws_kind: &str) -> &'static str {
    match status {
        400 if aws_kind.starts_with("ValidationException") => "invalid_request_error",
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 | 403 => "permission_error",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Turns a streamed InvokeModel answer (AWS event-stream frames, each chunk's payload
/// `{"bytes": <base64 of one Anthropic event>}`) into Anthropic SSE text.
#[derive(Default)]
pub struct EventStreamToSse {
    decoder: MessageFrameDecoder,
    buffer: BytesMut,
}

impl EventStreamToSse {
    pub fn new() -> Self {
        Self::default()
    }

    /// The SSE text of the whole frames in `bytes` and those it completes.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Bytes, String> {
        self.buffer.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => out.push_str(&sse_of(&message)?),
                Ok(DecodedFrame::Incomplete) => return Ok(Bytes::from(out)),
                Err(e) => return Err(format!("Bedrock's event stream is corrupt: {e}")),
            }
        }
    }
}

fn header<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message.headers().iter().find(|h| h.name().as_str() == name)?.value().as_string().ok().map(|s| s.as_str())
}

/// One frame as an SSE event: a chunk is the Anthropic event it carries; an exception
/// is Anthropic's `error` event, which ends the stream for the client.
fn sse_of(message: &Message) -> Result<String, String> {
    let payload: Value = serde_json::from_slice(message.payload()).unwrap_or(Value::Null);
    if header(message, ":message-type") == Some("exception") || header(message, ":message-type") == Some("error") {
        let kind = header(message, ":exception-type").or(header(message, ":error-code")).unwrap_or("exception");
        let message_text = payload
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Bedrock sent {kind}"));
        let status = if kind.contains("hrottling") { 429 } else { 500 };
        let error = json!({ "type": "error", "error": { "type": error_type(status, kind), "message": message_text } });
        return Ok(format!("event: error\ndata: {error}\n\n"));
    }
    let Some(encoded) = payload.get("bytes").and_then(Value::as_str) else {
        return Ok(String::new());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("a Bedrock stream chunk is not base64: {e}"))?;
    let event: Value =
        serde_json::from_slice(&decoded).map_err(|e| format!("a Bedrock stream chunk is not JSON: {e}"))?;
    let name = event.get("type").and_then(Value::as_str).unwrap_or("message");
    Ok(format!("event: {name}\ndata: {event}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue as FrameValue};

    fn frame(kind: &str, payload: Value) -> Vec<u8> {
        let message = Message::new(payload.to_string())
            .add_header(Header::new(":message-type", FrameValue::String(kind.to_owned().into())))
            .add_header(Header::new(":event-type", FrameValue::String("chunk".to_owned().into())));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).unwrap();
        out
    }

    fn chunk(event: Value) -> Vec<u8> {
        let bytes = base64::engine::general_purpose::STANDARD.encode(event.to_string());
        frame("event", json!({ "bytes": bytes }))
    }

    #[test]
    fn the_envelope_moves_model_stream_and_betas() {
        let body = br#"{"model":"claude","stream":true,"max_tokens":5,"messages":[]}"#;
        let out: Value = serde_json::from_slice(&envelope(body, &["a, b".into()]).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"max_tokens":5,"messages":[],"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a","b"]})
        );
    }

    #[test]
    fn frames_split_anywhere_become_anthropic_events() {
        let mut stream = chunk(json!({"type":"message_start","message":{"id":"m"}}));
        stream.extend(chunk(json!({"type":"message_stop"})));
        let mut decoder = EventStreamToSse::new();
        let mut text = String::new();
        for piece in stream.chunks(7) {
            text.push_str(std::str::from_utf8(&decoder.push(piece).unwrap()).unwrap());
        }
        assert_eq!(
            text,
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }

    #[test]
    fn an_exception_frame_is_an_error_event_and_garbage_is_an_error() {
        let message = Message::new(json!({"message":"slow down"}).to_string())
            .add_header(Header::new(":message-type", FrameValue::String("exception".to_owned().into())))
            .add_header(Header::new(":exception-type", FrameValue::String("throttlingException".to_owned().into())));
        let mut bytes = Vec::new();
        write_message_to(&message, &mut bytes).unwrap();
        let text = EventStreamToSse::new().push(&bytes).unwrap();
        assert!(std::str::from_utf8(&text).unwrap().contains(r#""type":"rate_limit_error""#));
        let mut corrupt = chunk(json!({"type":"ping"}));
        corrupt[20] ^= 0xff;
        assert!(EventStreamToSse::new().push(&corrupt).is_err());
    }

    #[test]
    fn signing_adds_an_aws4_authorization_for_the_region_and_service() {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::new("token")),
            region: "us-west-2".into(),
        };
        let url = reqwest::Url::parse("https://bedrock-runtime.us-west-2.amazonaws.com/model/a%3A0/invoke").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        sign_request(&credentials, &url, &mut headers, b"{}").unwrap();
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{authorization}");
        assert!(authorization.contains("/us-west-2/bedrock/aws4_request"), "{authorization}");
        assert!(authorization.contains("SignedHeaders=") && authorization.contains("Signature="));
        assert!(headers["authorization"].is_sensitive());
        assert_eq!(headers["x-amz-security-token"], "token");
        assert!(headers.contains_key("x-amz-date"));
    }

    #[test]
    fn errors_read_as_anthropic_errors() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-errortype", HeaderValue::from_static("ThrottlingException:http://internal"));
        let body: Value =
            serde_json::from_slice(&anthropic_error(429, &headers, br#"{"message":"Too many"}"#)).unwrap();
        assert_eq!(body, json!({"type":"error","error":{"type":"rate_limit_error","message":"Too many"}}));
    }
}
