//! The request pipeline for the model APIs: read and check the body, identify the
//! caller, recall memories into the prompt, route the model, adapt the request for
//! each deployment tried, send with retries and fallbacks, and answer in the client's
//! API.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use tracing::{info, warn};

use crate::adapter::{Adaptation, ClientApi};
use crate::analytics::prices;
use crate::analytics::{Observed, usage};
use crate::auth::{Caller, CredentialHeader};
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ErrorKind, GatewayError};
use crate::identity;
use crate::keys::now_secs;
use crate::memory;
use crate::outcome::Outcome;
use crate::plugins::Plugin;
use crate::plugins::hooks::{AdaptedRequest, AdapterContext};
use crate::relay;
use crate::routing::{Deployment, Resolved};
use crate::state::AppState;
use crate::upstream::ClientHeaders;
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

/// Who called, as authentication established it.
pub struct Calling {
    pub caller: Caller,
    pub credential_header: CredentialHeader,
}

/// Serves one model-API request end to end; errors come back in the client's shape.
pub async fn handle(
    state: AppState,
    api: ClientApi,
    ctx: RequestContext,
    calling: Calling,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut outcome = Outcome::new(state.clone(), ctx.id.clone(), api);
    outcome.key = calling.caller.key().cloned();
    let result = async {
        let bytes = read_body(&headers, body, ctx.snapshot.config.max_request_bytes).await?;
        outcome.bytes_in = bytes.len() as u64;
        let mut request = ClientRequest::parse(api, &bytes)?;
        outcome.model.clone_from(&request.model);
        outcome.stream = request.stream;
        if let Some(key) = calling.caller.key() {
            key.check_model(&request.model)?;
            key.admit(now_secs())?;
        }
        let pins = calling.caller.key().map(|k| &k.record);
        let identity = identity::identify(&ctx.snapshot, api, &headers, Some(&request.body), pins).await?;
        let recall = memory::recall_into(&state, &ctx.snapshot, api, &identity, &mut request.body).await?;
        outcome.memories_recalled = recall.recalled;
        outcome.turn = recall.turn;
        outcome.identity = Some(identity);
        forward(&ctx, &headers, calling.credential_header, request, &mut outcome).await
    }
    .await;
    match result {
        Ok(Answer::Whole { response, observed, bytes_out }) => {
            outcome.finish(response.status().as_u16(), observed, bytes_out, None);
            response
        }
        Ok(Answer::Streaming(response)) => response,
        Err(error) => {
            info!(error = error.kind.code(), "{}", error.message);
            outcome.error = Some(error.kind.code());
            let response = error.into_response(api.error_shape());
            outcome.finish(response.status().as_u16(), Observed::default(), 0, None);
            response
        }
    }
}

/// What `forward` produced: a whole answer (finished here) or a stream (whose relay
/// finishes the outcome when it ends).
enum Answer {
    Whole { response: Response, observed: Observed, bytes_out: u64 },
    Streaming(Response),
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
    credential_header: CredentialHeader,
    request: ClientRequest,
    outcome: &mut Outcome,
) -> Result<Answer, GatewayError> {
    let snapshot = &ctx.snapshot;
    let router = &snapshot.router;
    let first = router.resolve(&request.model).ok_or_else(|| router.unknown_model(&request.model))?;
    let mut groups = vec![first];
    // A key's model allow-list holds for fallbacks too.
    let allowed = |name: &str| outcome.key.as_ref().is_none_or(|key| key.check_model(name).is_ok());
    for name in router.fallbacks(&groups[0].group.name) {
        if let Some(group) = router.group(name).filter(|group| allowed(&group.name)) {
            groups.push(Resolved::fallback(group, &request.model));
        }
    }

    let mut last_failure = None;
    'groups: for (fallback, resolved) in groups.iter().enumerate() {
        let group = resolved.group;
        if fallback > 0 {
            info!(fallback = %group.name, "falling back to another model group");
            outcome.fallbacks = fallback as u32;
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
            let provider = deployment.config.provider;
            outcome.provider = Some(provider.name);
            outcome.price = prices::for_deployment(&deployment.config.costs, provider.name, &upstream_model);
            outcome.upstream_model = Some(upstream_model.clone());
            let route = match Adaptation::plan(request.api, deployment.config.provider)? {
                Adaptation::EstimateTokens => {
                    let response = estimate_tokens(&request.body);
                    return Ok(Answer::Whole { response, observed: Observed::default(), bytes_out: 0 });
                }
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
            // OpenAI streams carry usage only when asked: ask, and drop that chunk again
            // for a client that did not.
            let add_usage = request.api == ClientApi::OpenAiChat
                && request.stream
                && !request.include_usage
                && matches!(route, Route::Passthrough);
            let upstream_request =
                prepare(deployment, &route, &upstream_model, &request, client_headers, credential_header, add_usage)
                    .await?;
            let upstream_api = match &route {
                Route::Passthrough => request.api,
                Route::Adapter(..) => crate::adapter::wire_api(provider.wire),
            };
            outcome.attempt_started();
            let reply = upstream::send(deployment, upstream_request, request.stream).await;
            match reply {
                Ok(Reply::Stream(response)) => {
                    let translator = match &route {
                        Route::Adapter(plugin, context) => Some(plugin.open_stream(context).await?),
                        Route::Passthrough => None,
                    };
                    let relay =
                        relay::Relay::new(request.api, upstream_api, translator, add_usage, outcome.hand_over());
                    return Ok(Answer::Streaming(relay.into_response(response, deployment.config.stream_timeout)));
                }
                Ok(Reply::Complete { status, headers, body }) if status.is_success() => {
                    outcome.attempt_ended();
                    let observed = usage::from_body(upstream_api, &body);
                    if let Some(turn) = outcome.turn.as_mut() {
                        turn.add_answer(&memory::answer::of_body(upstream_api, &body));
                    }
                    let (response, bytes_out) = complete_response(status, &headers, body, &route).await?;
                    return Ok(Answer::Whole { response, observed, bytes_out });
                }
                Ok(Reply::Complete { status, headers, body }) => {
                    outcome.attempt_ended();
                    warn!(deployment = %deployment.config.id, attempt, status = status.as_u16(), "upstream returned an error");
                    let retry = upstream::is_retryable(status);
                    let fall_back = upstream::warrants_fallback(status);
                    let failure = Failure::Upstream { status, headers, body, route };
                    if !fall_back {
                        return Ok(failed(failure_response(failure, request.api).await, outcome));
                    }
                    last_failure = Some(failure);
                    if !retry {
                        continue 'groups;
                    }
                }
                Err(reason) => {
                    outcome.attempt_ended();
                    warn!(deployment = %deployment.config.id, attempt, error = ?reason, "upstream attempt failed");
                    last_failure = Some(Failure::NoReply { deployment: deployment.config.id.clone(), reason });
                }
            }
        }
    }
    let failure =
        last_failure.unwrap_or_else(|| Failure::Gateway(GatewayError::new(ErrorKind::Internal, "no attempt was made")));
    if let Failure::NoReply { reason, .. } = &failure {
        outcome.error = Some(match reason {
            NoReply::Connect(_) => ErrorKind::BadGateway.code(),
            NoReply::Timeout(_) => ErrorKind::UpstreamTimeout.code(),
        });
    }
    Ok(failed(failure_response(failure, request.api).await, outcome))
}

/// An error answer, recorded as such.
fn failed(response: Response, outcome: &mut Outcome) -> Answer {
    outcome.error.get_or_insert("upstream_error");
    Answer::Whole { response, observed: Observed::default(), bytes_out: 0 }
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
    credential_header: CredentialHeader,
    add_usage: bool,
) -> Result<UpstreamRequest, GatewayError> {
    let model = serde_json::Value::String(upstream_model.to_owned()).to_string();
    let body = if add_usage {
        request.body.to_bytes_with(&[("model", &model), ("stream_options", r#"{"include_usage":true}"#)])
    } else {
        request.body.to_bytes_with(&[("model", &model)])
    };
    let client = ClientHeaders { headers: client_headers, credential: credential_header };
    match route {
        Route::Passthrough => {
            let path = Adaptation::passthrough_path(request.api);
            UpstreamRequest::new(deployment, path, Vec::new(), body, &client, true)
        }
        Route::Adapter(plugin, context) => {
            // A JSON body is UTF-8.
            let text = String::from_utf8_lossy(&body);
            let AdaptedRequest { path, headers, body } = plugin.translate_request(context, &text).await?;
            let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
            UpstreamRequest::new(deployment, &path, headers, Bytes::from(body), &client, false)
        }
    }
}

/// The client's answer to a successful upstream answer, and its size.
async fn complete_response(
    status: StatusCode,
    upstream_headers: &HeaderMap,
    body: Bytes,
    route: &Route,
) -> Result<(Response, u64), GatewayError> {
    let body = match route {
        Route::Adapter(plugin, context) => {
            Bytes::from(plugin.translate_response(context, &String::from_utf8_lossy(&body)).await?)
        }
        Route::Passthrough => body,
    };
    let size = body.len() as u64;
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    upstream::forwarded_headers(upstream_headers, headers);
    Ok((response, size))
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
