//! One attempt at one deployment: the upstream request, sent with the deployment's
//! timeouts, and what came back.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use crate::core::credentials::token_in;
use crate::core::error::{ErrorKind, GatewayError};
use crate::core::provider::{Endpoint, KeyHeader, Wire, bedrock};
use crate::services::routing::Deployment;

const ANTHROPIC_VERSION: &str = "2023-06-01";
static ANTHROPIC_VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");
static ANTHROPIC_BETA_HEADER: HeaderName = HeaderName::from_static("anthropic-beta");
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static API_KEY: HeaderName = HeaderName::from_static("api-key");
static X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

pub struct UpstreamRequest {
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The digest of the caller's own credentials, when they go upstream.
    pub caller: Option<[u8; 32]>,
}

/// The client's headers, and which one carried the gateway's own credential.
pub struct ClientHeaders<'a> {
    pub headers: &'a HeaderMap,
    pub credential: super::auth::CredentialHeader,
    /// The caller's memory scope as a Supermemory container tag, for deployments behind
    /// Supermemory's router (`x-sm-user-id`).
    pub container_tag: Option<&'a str>,
}

/// The client credentials a `forward_client_auth` deployment passes on.
const CLIENT_AUTH_HEADERS: [&str; 2] = ["authorization", "x-api-key"];

/// Headers a plugin may not set: the key and the routing are the host's.
const HOST_ONLY_HEADERS: [&str; 8] = [
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "host",
    "content-length",
    "x-supermemory-api-key",
    "x-sm-user-id",
];

/// What the gateway passes on from the client's side besides the body.
pub enum Passed {
    /// Passthrough: Anthropic's version and beta flags, when the wire is Anthropic's.
    Through,
    /// Translation: the headers the adapter plugin asks for.
    Translated(Vec<(String, String)>),
}

impl UpstreamRequest {
    /// The request for `deployment` at `path`. Client headers never go upstream
    /// wholesale: what `passed` says, and, for a `forward_client_auth` deployment, the
    /// client's own credentials (not the one it gave the gateway). Bedrock's requests
    /// are wrapped in its envelope and signed last, over the final headers and body.
    pub fn new(
        deployment: &Deployment,
        path: &str,
        passed: Passed,
        body: Bytes,
        client: &ClientHeaders<'_>,
        stream: bool,
    ) -> Result<Self, GatewayError> {
        let config = &deployment.config;
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut forwarded_auth = false;
        let mut caller = None;
        if config.forward_client_auth {
            // The gateway's own key never goes upstream, even when a client sends it in
            // more than one header.
            let gateway_key = client.credential.0.and_then(|name| Some(token_in(name, client.headers.get(name)?)));
            for name in CLIENT_AUTH_HEADERS {
                if let Some(value) = client.headers.get(name).filter(|v| Some(token_in(name, v)) != gateway_key) {
                    let mut value = value.clone();
                    value.set_sensitive(true);
                    headers.insert(name, value);
                    forwarded_auth = true;
                }
            }
            if forwarded_auth {
                let mut digest = Sha256::new();
                for name in CLIENT_AUTH_HEADERS {
                    digest.update(headers.get(name).map_or(&b""[..], HeaderValue::as_bytes));
                    digest.update([0]);
                }
                caller = Some(digest.finalize().into());
            }
        }
        if let Some(key) = config.api_key.as_ref().filter(|_| !forwarded_auth)
            && let Ok(mut value) = match config.key_header {
                KeyHeader::Bearer => HeaderValue::try_from(format!("Bearer {}", key.expose())),
                KeyHeader::XApiKey | KeyHeader::ApiKey | KeyHeader::GoogApiKey => HeaderValue::try_from(key.expose()),
            }
        {
            value.set_sensitive(true);
            let name = match config.key_header {
                KeyHeader::Bearer => AUTHORIZATION,
                KeyHeader::XApiKey => X_API_KEY.clone(),
                KeyHeader::ApiKey => API_KEY.clone(),
                KeyHeader::GoogApiKey => X_GOOG_API_KEY.clone(),
            };
            headers.insert(name, value);
        }
        match passed {
            Passed::Through if config.provider.wire == Wire::AnthropicMessages => {
                if let Some(version) = client.headers.get(&ANTHROPIC_VERSION_HEADER) {
                    headers.insert(ANTHROPIC_VERSION_HEADER.clone(), version.clone());
                }
                for beta in client.headers.get_all(&ANTHROPIC_BETA_HEADER) {
                    headers.append(ANTHROPIC_BETA_HEADER.clone(), beta.clone());
                }
            }
            Passed::Through => {}
            Passed::Translated(plugin_headers) => {
                for (name, value) in plugin_headers {
                    let (Ok(name), Ok(value)) =
                        (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
                    else {
                        tracing::warn!(header = %name, "adapter plugin asked for an invalid header; ignored");
                        continue;
                    };
                    if HOST_ONLY_HEADERS.contains(&name.as_str()) {
                        tracing::warn!(header = %name, "adapter plugin asked for a header only the host sets; ignored");
                        continue;
                    }
                    headers.insert(name, value);
                }
            }
        }
        if config.provider.wire == Wire::AnthropicMessages && !headers.contains_key(&ANTHROPIC_VERSION_HEADER) {
            headers.insert(ANTHROPIC_VERSION_HEADER.clone(), HeaderValue::from_static(ANTHROPIC_VERSION));
        }
        for (name, value) in &config.extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(router) = &config.supermemory_router {
            if let Some(Ok(mut key)) = router.api_key.as_ref().map(|k| HeaderValue::try_from(k.expose())) {
                key.set_sensitive(true);
                headers.insert("x-supermemory-api-key", key);
            }
            if let Some(Ok(tag)) = client.container_tag.map(HeaderValue::try_from) {
                headers.insert("x-sm-user-id", tag);
            }
        }
        let bad_request = |e: String| GatewayError::new(ErrorKind::Internal, format!("deployment {}: {e}", config.id));
        if config.provider.endpoint == Endpoint::Bedrock {
            let betas: Vec<String> = headers
                .get_all(&ANTHROPIC_BETA_HEADER)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            headers.remove(&ANTHROPIC_BETA_HEADER);
            headers.remove(&ANTHROPIC_VERSION_HEADER);
            let body = bedrock::envelope(&body, &betas).map_err(bad_request)?;
            let url =
                deployment.url(bedrock::path(stream)).map_err(|e| bad_request(format!("bad upstream URL: {e}")))?;
            if let Some(credentials) = &config.aws {
                bedrock::sign_request(credentials, &url, &mut headers, &body).map_err(bad_request)?;
            }
            return Ok(Self { url, headers, body, caller });
        }
        if !is_plain_path(path) {
            return Err(bad_request(format!(
                "the adapter plugin asked for the path `{path}`, which leaves the deployment"
            )));
        }
        let url = deployment.url(path).map_err(|e| bad_request(format!("bad upstream URL: {e}")))?;
        if !deployment.on_origin(&url) {
            return Err(bad_request(format!("the upstream URL for `{path}` is not on the deployment's origin")));
        }
        Ok(Self { url, headers, body, caller })
    }
}

/// A path an adapter may ask for: absolute, and nothing that could move the request
/// off the deployment's address (`@host`, `..`, a fragment, backslashes, controls).
fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains(['@', '#', '\\'])
        && !path.split(['/', '?']).any(|segment| segment == ".." || segment == ".")
        && !path.chars().any(char::is_control)
}

/// What an attempt got back.
pub enum Reply {
    /// A whole response: any non-streamed answer, and every error answer.
    Complete { status: StatusCode, headers: HeaderMap, body: Bytes },
    /// A successful streamed response, its body (SSE) still to come.
    Stream(StreamReply),
}

/// An upstream's SSE body as it arrives.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

pub struct StreamReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ByteStream,
}

impl StreamReply {
    /// Bedrock's event-stream frames are unwrapped into the SSE events they carry.
    fn of(response: reqwest::Response, endpoint: Endpoint) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes_stream().map(|chunk| chunk.map_err(|e| e.to_string()));
        let body: ByteStream = match endpoint {
            Endpoint::Bedrock => {
                let mut frames = bedrock::EventStreamToSse::new();
                Box::pin(bytes.map(move |chunk| frames.push(&chunk?)))
            }
            Endpoint::Plain | Endpoint::AzureDeployment => Box::pin(bytes),
        };
        Self { status, headers, body }
    }
}

/// An attempt that got no answer.
#[derive(Debug, Clone)]
pub enum NoReply {
    /// The upstream could not be reached, or the connection broke before the answer was whole.
    Connect(String),
    Timeout(Duration),
}

pub async fn send(deployment: &Deployment, request: UpstreamRequest, stream: bool) -> Result<Reply, NoReply> {
    let config = &deployment.config;
    let endpoint = config.provider.endpoint;
    let client = deployment.client_for(request.caller.as_ref());
    let pending = client.post(request.url).headers(request.headers).body(request.body).send();
    if stream {
        let response = tokio::time::timeout(config.stream_timeout, pending)
            .await
            .map_err(|_| NoReply::Timeout(config.stream_timeout))?
            .map_err(connect_error)?;
        if response.status().is_success() {
            return Ok(Reply::Stream(StreamReply::of(response, endpoint)));
        }
        return read_whole(response, config.stream_timeout, endpoint).await;
    }
    let whole = async {
        let response = pending.await.map_err(connect_error)?;
        read_whole(response, config.timeout, endpoint).await
    };
    tokio::time::timeout(config.timeout, whole).await.map_err(|_| NoReply::Timeout(config.timeout))?
}

/// The largest whole answer read from an upstream (a big embeddings batch is tens of
/// MB); a bigger one is a broken or hostile upstream, not an answer.
pub const MAX_ANSWER_BYTES: usize = 128 << 20;

/// The whole answer, at most [`MAX_ANSWER_BYTES`]; Bedrock's errors read as Anthropic's.
async fn read_whole(response: reqwest::Response, timeout: Duration, endpoint: Endpoint) -> Result<Reply, NoReply> {
    let status = response.status();
    let mut headers = response.headers().clone();
    if response.content_length().is_some_and(|length| length > MAX_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = bytes::BytesMut::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(connect_error)?;
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    let mut body = tokio::time::timeout(timeout, read).await.map_err(|_| NoReply::Timeout(timeout))??;
    if endpoint == Endpoint::Bedrock && !status.is_success() {
        body = bedrock::anthropic_error(status.as_u16(), &headers, &body);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(Reply::Complete { status, headers, body })
}

fn too_large() -> NoReply {
    NoReply::Connect(format!("the upstream's answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20))
}

/// The innermost cause ("Connection refused (os error 111)") says more than reqwest's
/// outer message, and carries no URL.
fn connect_error(error: reqwest::Error) -> NoReply {
    let mut cause: &dyn std::error::Error = &error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    NoReply::Connect(cause.to_string())
}

/// Statuses worth another attempt: the upstream is busy or broken, not the request.
pub fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// Statuses that say "not this deployment" (bad key, no access, no such model): the
/// next fallback group may still serve.
pub fn warrants_fallback(status: StatusCode) -> bool {
    is_retryable(status) || matches!(status.as_u16(), 401 | 403 | 404)
}

/// An upstream's way of saying the prompt does not fit the model's context window
/// (OpenAI's `context_length_exceeded`, Anthropic's "prompt is too long", ...).
pub fn is_context_overflow(status: StatusCode, body: &[u8]) -> bool {
    const SAYINGS: [&str; 7] = [
        "context_length_exceeded",
        "maximum context length",
        "context window",
        "prompt is too long",
        "input is too long",
        "too many tokens",
        "reduce the length",
    ];
    if !matches!(status.as_u16(), 400 | 413 | 422) {
        return false;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    SAYINGS.iter().any(|saying| text.contains(saying))
}

/// The `retry-after` an upstream asked for, in whole seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// Upstream response headers a client may act on: rate-limit state and retry hints.
pub fn forwarded_headers(upstream: &HeaderMap, out: &mut HeaderMap) {
    for (name, value) in upstream {
        let name_str = name.as_str();
        if name_str == "retry-after"
            || name_str.starts_with("x-ratelimit-")
            || name_str.starts_with("anthropic-ratelimit-")
        {
            out.append(name.clone(), value.clone());
        } else if name_str == "request-id" || name_str == "x-request-id" {
            out.insert(HeaderName::from_static("x-upstream-request-id"), value.clone());
        }
    }
}

/// What Supermemory's router says it did (`x-supermemory-*` response headers: its
/// conversation id, whether it changed the context, tokens processed, chunks created
/// and retrieved, its error), as a JSON object for the analytics record.
pub fn supermemory_headers(headers: &HeaderMap) -> Option<String> {
    let found: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix("x-supermemory-")?;
            Some((key.to_owned(), serde_json::Value::String(value.to_str().ok()?.to_owned())))
        })
        .collect();
    (!found.is_empty()).then(|| serde_json::Value::Object(found).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adapter_path_cannot_leave_the_deployment() {
        for good in ["/v1/messages", "/chat/completions", "/models/gemini-2.5-pro:streamGenerateContent?alt=sse"] {
            assert!(is_plain_path(good), "{good}");
        }
        for bad in [
            "@evil.example/v1/messages",
            "/v1/../../x",
            "//evil.example/x",
            "/a@b",
            "/x#y",
            "v1/messages",
            "/a\\b",
            "/a\nb",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_off_at_the_limit() {
        let chunk = Bytes::from(vec![b'x'; 1 << 20]);
        let endless = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        let response = http::Response::new(reqwest::Body::wrap_stream(endless));
        let read = read_whole(reqwest::Response::from(response), Duration::from_secs(30), Endpoint::Plain).await;
        match read {
            Err(NoReply::Connect(message)) => assert!(message.contains("larger than 128 MiB"), "{message}"),
            _ => panic!("an endless answer must be refused"),
        }
    }

    #[test]
    fn urls_off_the_deployments_origin_are_told_apart() {
        let yaml = "model_list:\n  - {model_name: a, litellm_params: {model: anthropic/a, api_base: 'https://api.anthropic.com'}}\n";
        let loaded = crate::config::Config::parse(yaml, &|_| None, std::path::Path::new(".")).unwrap();
        let router = crate::services::routing::Router::new(&loaded.config, &Default::default());
        let deployment = &router.resolve("a").unwrap().group.deployments[0];
        let on = |url: &str| deployment.on_origin(&reqwest::Url::parse(url).unwrap());
        assert!(on("https://api.anthropic.com/v1/messages"));
        assert!(!on("https://api.anthropic.com@evil.example/v1/messages"));
        assert!(!on("http://api.anthropic.com/v1/messages"));
        assert!(!on("https://api.anthropic.com:8443/v1/messages"));
    }
}
