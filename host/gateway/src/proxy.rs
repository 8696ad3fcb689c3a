//! The request pipeline for the model APIs: read and check the body, route the model,
//! adapt the request for each deployment tried, send with retries and fallbacks, and
//! answer in the client's API.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use tracing::{info, warn};

use crate::adapter::{Adaptation, ClientApi, Translation};
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ErrorKind, GatewayError};
use crate::relay;
use crate::routing::{Deployment, Resolved};
use crate::upstream::{self, NoReply, Reply, UpstreamRequest};

/// A client's request, read and checked.
pub struct ClientRequest {
    pub api: ClientApi,
    pub body: JsonBody,
    pub model: String,
    pub stream: bool,
    /// The client asked for `stream_options.include_usage` (OpenAI streams).
    pub include_usage: bool,
}

/// What became of a request: its one completion log line (and, later, its record).
#[derive(Clone)]
pub struct Outcome {
    pub started: Instant,
    pub model: String,
    pub deployment: Option<String>,
    pub attempts: u32,
    /// Set when a relay took over: the stream logs its own end.
    pub streamed: bool,
}

impl Outcome {
    fn new() -> Self {
        Self { started: Instant::now(), model: String::new(), deployment: None, attempts: 0, streamed: false }
    }

    pub fn log(&self, status: u16, time_to_first_byte: Option<Duration>) {
        info!(
            status,
            model = %self.model,
            deployment = self.deployment.as_deref().unwrap_or("-"),
            attempts = self.attempts,
            ttfb_ms = time_to_first_byte.map(|d| d.as_secs_f64() * 1e3),
            ms = self.started.elapsed().as_secs_f64() * 1e3,
            "request completed"
        );
    }
}

/// Serves one model-API request end to end; errors come back in the client's shape.
pub async fn handle(api: ClientApi, ctx: RequestContext, headers: HeaderMap, body: Body) -> Response {
    let mut outcome = Outcome::new();
    let result = async {
        let bytes = read_body(&headers, body, ctx.snapshot.config.max_request_bytes).await?;
        let request = ClientRequest::parse(api, &bytes)?;
        outcome.model.clone_from(&request.model);
        forward(&ctx, &headers, request, &mut outcome).await
    }
    .await;
    let response = result.unwrap_or_else(|error| {
        info!(error = error.kind.code(), "{}", error.message);
        error.into_response(api.error_shape())
    });
    if !outcome.streamed {
        outcome.log(response.status().as_u16(), None);
    }
    response
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, GatewayError> {
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
    match Limited::new(body, limit).collect().await {
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
        match api {
            ClientApi::OpenAiEmbeddings => {
                if !body.contains("input") {
                    return Err(GatewayError::invalid("`input` is required").with_param("input"));
                }
            }
            _ => {
                // The body is already valid JSON: a look at the first byte tells an array.
                let is_array = body.raw("messages").is_some_and(|m| m.get().starts_with('['));
                if !is_array {
                    return Err(
                        GatewayError::invalid("`messages` is required and must be an array").with_param("messages")
                    );
                }
            }
        }
        let streams = matches!(api, ClientApi::OpenAiChat | ClientApi::AnthropicMessages);
        let stream = streams && body.get::<bool>("stream")?.unwrap_or(false);
        let include_usage = body.get::<StreamOptions>("stream_options")?.is_some_and(|o| o.include_usage);
        Ok(Self { api, body, model, stream, include_usage })
    }
}

/// Why the last attempt failed, kept to answer with when nothing else is left.
enum Failure {
    Upstream { status: StatusCode, headers: HeaderMap, body: Bytes, adaptation: Adaptation },
    NoReply { deployment: String, reason: NoReply },
    Gateway(GatewayError),
}

async fn forward(
    ctx: &RequestContext,
    client_headers: &HeaderMap,
    request: ClientRequest,
    outcome: &mut Outcome,
) -> Result<Response, GatewayError> {
    let snapshot = &ctx.snapshot;
    let router = &snapshot.router;
    let first = router.resolve(&request.model).ok_or_else(|| router.unknown_model(&request.model))?;
    let mut groups = vec![first];
    for name in router.fallbacks(&groups[0].group.name) {
        if let Some(group) = router.group(name) {
            groups.push(Resolved::fallback(group, &request.model));
        }
    }

    let mut last_failure = None;
    'groups: for (fallback, resolved) in groups.iter().enumerate() {
        let group = resolved.group;
        if fallback > 0 {
            info!(fallback = %group.name, "falling back to another model group");
        }
        let mut attempts = vec![0u32; group.deployments.len()];
        for attempt in 0..=snapshot.config.num_retries {
            let index = match group.pick(&attempts) {
                Ok(Some(index)) => index,
                Ok(None) => continue 'groups,
                Err(error) => {
                    last_failure = Some(Failure::Gateway(error));
                    continue 'groups;
                }
            };
            if attempts[index] > 0 {
                tokio::time::sleep(backoff(attempt, last_failure.as_ref())).await;
            }
            attempts[index] += 1;
            let deployment = &group.deployments[index];
            outcome.attempts += 1;
            outcome.deployment = Some(deployment.config.id.clone());
            let adaptation = Adaptation::plan(request.api, deployment.config.provider)?;
            if adaptation == Adaptation::EstimateTokens {
                return Ok(estimate_tokens(&request.body));
            }
            let upstream_request =
                prepare(deployment, resolved, adaptation, &request, client_headers, snapshot.config.drop_params)?;
            match upstream::send(deployment, upstream_request, request.stream).await {
                Ok(Reply::Stream(response)) => {
                    outcome.streamed = true;
                    let translator = match adaptation {
                        Adaptation::Translate(t) => Some(t.stream(request.include_usage, unix_now())),
                        _ => None,
                    };
                    return Ok(relay::stream_response(
                        request.api,
                        response,
                        translator,
                        deployment.config.stream_timeout,
                        outcome.clone(),
                    ));
                }
                Ok(Reply::Complete { status, headers, body }) if status.is_success() => {
                    return complete_response(status, &headers, body, adaptation);
                }
                Ok(Reply::Complete { status, headers, body }) => {
                    warn!(deployment = %deployment.config.id, attempt, status = status.as_u16(), "upstream returned an error");
                    let retry = upstream::is_retryable(status);
                    let fall_back = upstream::warrants_fallback(status);
                    let failure = Failure::Upstream { status, headers, body, adaptation };
                    if !fall_back {
                        return Ok(failure_response(failure, request.api));
                    }
                    last_failure = Some(failure);
                    if !retry {
                        continue 'groups;
                    }
                }
                Err(reason) => {
                    warn!(deployment = %deployment.config.id, attempt, error = ?reason, "upstream attempt failed");
                    last_failure = Some(Failure::NoReply { deployment: deployment.config.id.clone(), reason });
                }
            }
        }
    }
    let failure =
        last_failure.unwrap_or_else(|| Failure::Gateway(GatewayError::new(ErrorKind::Internal, "no attempt was made")));
    Ok(failure_response(failure, request.api))
}

/// Waits before retrying a deployment already tried: exponential from 50 ms, at least
/// what the upstream's `retry-after` asked (up to 5 s; beyond that, the client is
/// better told).
fn backoff(attempt: u32, last: Option<&Failure>) -> Duration {
    let exponential = Duration::from_millis(50 << attempt.min(5));
    let asked = match last {
        Some(Failure::Upstream { headers, .. }) => {
            upstream::retry_after(headers).map(|s| Duration::from_secs(s.min(5)))
        }
        _ => None,
    };
    exponential.max(asked.unwrap_or_default())
}

fn prepare(
    deployment: &Deployment,
    resolved: &Resolved<'_>,
    adaptation: Adaptation,
    request: &ClientRequest,
    client_headers: &HeaderMap,
    drop_params: bool,
) -> Result<UpstreamRequest, GatewayError> {
    let upstream_model = resolved.upstream_model(&deployment.config);
    let body = match adaptation {
        Adaptation::Translate(translation) => {
            let mut body = request.body.to_value();
            body["model"] = serde_json::Value::String(upstream_model);
            let options = Translation::options(deployment.config.provider, drop_params);
            let translated = translation.request(body, &options)?;
            Bytes::from(
                serde_json::to_vec(&translated).map_err(|e| GatewayError::new(ErrorKind::Internal, e.to_string()))?,
            )
        }
        _ => request.body.to_bytes_with("model", &upstream_model),
    };
    UpstreamRequest::new(deployment, request.api, adaptation, body, client_headers)
}

fn complete_response(
    status: StatusCode,
    upstream_headers: &HeaderMap,
    body: Bytes,
    adaptation: Adaptation,
) -> Result<Response, GatewayError> {
    let body = match adaptation {
        Adaptation::Translate(translation) => {
            let bad_gateway = |e: String| {
                GatewayError::new(ErrorKind::BadGateway, format!("the upstream's answer could not be translated: {e}"))
            };
            let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad_gateway(e.to_string()))?;
            let translated = translation.response(value, unix_now()).map_err(|e| bad_gateway(e.message))?;
            Bytes::from(translated.to_string())
        }
        _ => body,
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    upstream::forwarded_headers(upstream_headers, headers);
    Ok(response)
}

/// The client's answer when every attempt failed.
fn failure_response(failure: Failure, api: ClientApi) -> Response {
    match failure {
        Failure::Upstream { status, headers, body, adaptation } => {
            let body = match adaptation {
                // Same API: the client reads the provider's own error as is.
                Adaptation::Passthrough => body,
                Adaptation::Translate(translation) => {
                    Bytes::from(translation.error(status.as_u16(), &body).to_string())
                }
                Adaptation::EstimateTokens => Bytes::new(),
            };
            let mut response = (status, body).into_response();
            let out = response.headers_mut();
            out.insert(
                CONTENT_TYPE,
                headers
                    .get(CONTENT_TYPE)
                    .filter(|_| adaptation == Adaptation::Passthrough)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("application/json")),
            );
            upstream::forwarded_headers(&headers, out);
            response
        }
        Failure::NoReply { deployment, reason } => {
            let error = match reason {
                NoReply::Connect(cause) => GatewayError::new(
                    ErrorKind::BadGateway,
                    format!("the upstream of deployment {deployment} could not be reached: {cause}"),
                ),
                NoReply::Timeout(after) => GatewayError::new(
                    ErrorKind::UpstreamTimeout,
                    format!("the upstream of deployment {deployment} did not answer within {}s", after.as_secs_f64()),
                ),
            };
            error.into_response(api.error_shape())
        }
        Failure::Gateway(error) => error.into_response(api.error_shape()),
    }
}

/// Anthropic's count_tokens for a provider that has none: about four bytes a token
/// over the prompt's text-bearing fields. An estimate, and marked as one.
fn estimate_tokens(body: &JsonBody) -> Response {
    let bytes: usize =
        ["system", "messages", "tools"].iter().filter_map(|k| body.raw(k)).map(|raw| raw.get().len()).sum();
    let mut response = axum::Json(serde_json::json!({ "input_tokens": bytes.div_ceil(4) })).into_response();
    response.headers_mut().insert("x-token-count", HeaderValue::from_static("estimated"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
