//! The request pipeline for the model APIs: read and check the body, identify the
//! caller, route the model, adapt the request for each deployment tried, send with
//! retries and fallbacks, and answer in the client's API.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use tracing::{info, warn};

use crate::adapter::{Adaptation, ClientApi};
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ErrorKind, GatewayError};
use crate::identity::{self, Identity};
use crate::plugins::Plugin;
use crate::plugins::hooks::{AdaptedRequest, AdapterContext};
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
    pub identity: Option<Identity>,
    pub deployment: Option<String>,
    pub attempts: u32,
    /// Set when a relay took over: the stream logs its own end.
    pub streamed: bool,
}

impl Outcome {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            model: String::new(),
            identity: None,
            deployment: None,
            attempts: 0,
            streamed: false,
        }
    }

    pub fn log(&self, status: u16, time_to_first_byte: Option<Duration>) {
        let identity = self.identity.as_ref();
        info!(
            status,
            model = %self.model,
            user = identity.map_or("-", |i| i.user.value.as_str()),
            project = identity.and_then(Identity::project).unwrap_or("-"),
            client = identity.and_then(Identity::client).unwrap_or("-"),
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
        outcome.identity = Some(identity::identify(&ctx.snapshot, api, &headers, Some(&request.body)).await?);
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

pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, GatewayError> {
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

/// How one attempt talks to its deployment: directly, or through an adapter plugin
/// (with the context the plugin needs for every call of this attempt).
enum Route {
    Passthrough,
    Adapter(Arc<Plugin>, AdapterContext),
}

/// Why the last attempt failed, kept to answer with when nothing else is left.
enum Failure {
    Upstream { status: StatusCode, headers: HeaderMap, body: Bytes, route: Route },
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
            let upstream_model = resolved.upstream_model(&deployment.config);
            let route = match Adaptation::plan(request.api, deployment.config.provider)? {
                Adaptation::EstimateTokens => return Ok(estimate_tokens(&request.body)),
                Adaptation::Passthrough => Route::Passthrough,
                Adaptation::Translate => {
                    let provider = deployment.config.provider.name;
                    let plugin = snapshot.plugins.adapter_for(provider).ok_or_else(|| {
                        GatewayError::new(
                            ErrorKind::ModelUnavailable,
                            format!(
                                "no provider adapter plugin is loaded for provider `{provider}`, so {} requests cannot reach model `{}` (see plugins.provider_adapters and GET /admin/plugins)",
                                request.api.label(),
                                request.model
                            ),
                        )
                    })?;
                    let context = AdapterContext {
                        client_api: request.api.wit(),
                        provider: provider.to_owned(),
                        upstream_model: upstream_model.clone(),
                        drop_params: snapshot.config.drop_params,
                        include_usage: request.include_usage,
                        now: unix_now(),
                    };
                    Route::Adapter(plugin.clone(), context)
                }
            };
            let upstream_request = prepare(deployment, &route, &upstream_model, &request, client_headers).await?;
            match upstream::send(deployment, upstream_request, request.stream).await {
                Ok(Reply::Stream(response)) => {
                    outcome.streamed = true;
                    let translator = match &route {
                        Route::Adapter(plugin, context) => Some(plugin.open_stream(context).await?),
                        Route::Passthrough => None,
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
                    return complete_response(status, &headers, body, &route).await;
                }
                Ok(Reply::Complete { status, headers, body }) => {
                    warn!(deployment = %deployment.config.id, attempt, status = status.as_u16(), "upstream returned an error");
                    let retry = upstream::is_retryable(status);
                    let fall_back = upstream::warrants_fallback(status);
                    let failure = Failure::Upstream { status, headers, body, route };
                    if !fall_back {
                        return Ok(failure_response(failure, request.api).await);
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
    Ok(failure_response(failure, request.api).await)
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

async fn prepare(
    deployment: &Deployment,
    route: &Route,
    upstream_model: &str,
    request: &ClientRequest,
    client_headers: &HeaderMap,
) -> Result<UpstreamRequest, GatewayError> {
    let body = request.body.to_bytes_with("model", upstream_model);
    match route {
        Route::Passthrough => {
            let path = Adaptation::passthrough_path(request.api);
            UpstreamRequest::new(deployment, path, Vec::new(), body, Some(client_headers))
        }
        Route::Adapter(plugin, context) => {
            // A JSON body is UTF-8.
            let text = String::from_utf8_lossy(&body);
            let AdaptedRequest { path, headers, body } = plugin.translate_request(context, &text).await?;
            let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
            UpstreamRequest::new(deployment, &path, headers, Bytes::from(body), None)
        }
    }
}

async fn complete_response(
    status: StatusCode,
    upstream_headers: &HeaderMap,
    body: Bytes,
    route: &Route,
) -> Result<Response, GatewayError> {
    let body = match route {
        Route::Adapter(plugin, context) => {
            Bytes::from(plugin.translate_response(context, &String::from_utf8_lossy(&body)).await?)
        }
        Route::Passthrough => body,
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    upstream::forwarded_headers(upstream_headers, headers);
    Ok(response)
}

/// The client's answer when every attempt failed.
async fn failure_response(failure: Failure, api: ClientApi) -> Response {
    match failure {
        Failure::Upstream { status, headers, body, route } => {
            let (body, content_type) = match &route {
                // Same API: the client reads the provider's own error as is.
                Route::Passthrough => (body, headers.get(CONTENT_TYPE).cloned()),
                Route::Adapter(plugin, context) => {
                    match plugin.translate_error(context, status.as_u16(), &String::from_utf8_lossy(&body)).await {
                        Ok(translated) => (Bytes::from(translated), None),
                        Err(error) => return error.into_response(api.error_shape()),
                    }
                }
            };
            let mut response = (status, body).into_response();
            let out = response.headers_mut();
            out.insert(CONTENT_TYPE, content_type.unwrap_or(HeaderValue::from_static("application/json")));
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
