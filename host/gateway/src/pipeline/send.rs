//! Stage 7, send: the attempts, in the order the route planned (each group's
//! deployments, with retries, then the fallback groups), one attempt at a time, and
//! the answer when every attempt failed. Retries happen only before the client has a
//! byte.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use tracing::{info, warn};

use super::adapt::{Adaptation, Route};
use super::record::Outcome;
use super::relay::Relay;
use super::request::ClientRequest;
use super::route::Plan;
use super::upstream::{self, ClientHeaders, NoReply, Reply};
use crate::core::api::ClientApi;
use crate::core::body::JsonBody;
use crate::core::error::{ErrorKind, GatewayError};
use crate::services::Snapshot;
use crate::services::analytics::prices;
use crate::services::analytics::{Observed, usage};
use crate::services::memory::answer;
use crate::services::routing::{Deployment, Resolved};

/// What sending produced: a whole answer (finished by the caller) or a stream (whose
/// relay finishes the outcome when it ends).
pub enum Answer {
    Whole { response: Response<Body>, observed: Observed, bytes_out: u64 },
    Streaming(Response<Body>),
}

/// Why the last attempt failed, kept to answer with when nothing else is left.
enum Failure {
    Upstream { status: StatusCode, headers: HeaderMap, body: Bytes, route: Route },
    NoReply { deployment: String, reason: NoReply },
    Gateway(GatewayError),
}

/// What one attempt came to.
enum Attempt {
    Answered(Answer),
    /// Failed in a way another attempt may mend: retry the group, or go on to the next
    /// one, or to the context-window fallbacks.
    Failed {
        failure: Failure,
        next: Next,
    },
}

/// Where a failed attempt sends the request.
enum Next {
    /// Another deployment of this group (or the next group when none is left).
    Retry,
    /// The next group.
    Group,
    /// The prompt is too long for this model: the context-window fallbacks, if any.
    LargerContext,
}

/// Sends `request` along the plan's groups until an attempt answers or none is left;
/// a prompt too long for a model goes on to the context-window fallbacks.
pub async fn send(
    snapshot: &Snapshot,
    plan: &Plan<'_>,
    request: &ClientRequest,
    client: &ClientHeaders<'_>,
    outcome: &mut Outcome,
) -> Result<Answer, GatewayError> {
    let mut last_failure = None;
    let mut groups = plan.groups.as_slice();
    let mut on_larger_models = false;
    let mut tried_groups = 0;
    'chain: loop {
        'groups: for resolved in groups {
            let group = resolved.group;
            if tried_groups > 0 {
                info!(fallback = %group.name, "falling back to another model group");
                outcome.fallbacks = tried_groups;
            }
            tried_groups += 1;
            let mut tries = vec![0u32; group.deployments.len()];
            for retry in 0..=snapshot.config.num_retries {
                let index = match group.pick(&tries) {
                    Ok(Some(index)) => index,
                    Ok(None) => continue 'groups,
                    Err(error) => {
                        last_failure = Some(Failure::Gateway(error));
                        continue 'groups;
                    }
                };
                if tries[index] > 0 {
                    tokio::time::sleep(backoff(retry, last_failure.as_ref())).await;
                }
                tries[index] += 1;
                let deployment = &group.deployments[index];
                let (failure, next) = match attempt(snapshot, resolved, deployment, request, client, outcome).await? {
                    Attempt::Answered(answer) => return Ok(answer),
                    Attempt::Failed { failure, next } => (failure, next),
                };
                match next {
                    Next::Retry => last_failure = Some(failure),
                    Next::Group => {
                        last_failure = Some(failure);
                        continue 'groups;
                    }
                    Next::LargerContext if plan.on_context_overflow.is_empty() => {
                        return Ok(failed(failure_response(failure, request.api).await, outcome));
                    }
                    Next::LargerContext => {
                        last_failure = Some(failure);
                        if on_larger_models {
                            continue 'groups;
                        }
                        info!(model = %group.name, "prompt too long for the model's context window");
                        on_larger_models = true;
                        groups = &plan.on_context_overflow;
                        continue 'chain;
                    }
                }
            }
        }
        break;
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

/// One attempt at one deployment: adapt the request, send it, and read what came back.
async fn attempt(
    snapshot: &Snapshot,
    resolved: &Resolved<'_>,
    deployment: &Deployment,
    request: &ClientRequest,
    client: &ClientHeaders<'_>,
    outcome: &mut Outcome,
) -> Result<Attempt, GatewayError> {
    let upstream_model = resolved.upstream_model(&deployment.config);
    let provider = deployment.config.provider;
    outcome.attempts += 1;
    outcome.deployment = Some(deployment.config.id.clone());
    if outcome.model_group.as_deref() != Some(resolved.group.name.as_str()) {
        outcome.model_group = Some(resolved.group.name.clone());
    }
    outcome.provider = Some(provider.name);
    outcome.price = prices::for_deployment(&deployment.config.costs, provider.name, &upstream_model);
    outcome.upstream_model = Some(upstream_model.clone());
    let route = match Adaptation::plan(request.api, provider)? {
        Adaptation::EstimateTokens => {
            let response = estimate_tokens(&request.body);
            return Ok(Attempt::Answered(Answer::Whole { response, observed: Observed::default(), bytes_out: 0 }));
        }
        Adaptation::Passthrough => Route::Passthrough,
        Adaptation::Translate => Route::through_adapter(
            &snapshot.plugins,
            deployment,
            request,
            &upstream_model,
            snapshot.config.drop_params,
        )?,
    };
    // OpenAI streams carry usage only when asked: ask, and drop that chunk again for a
    // client that did not.
    let add_usage = request.api == ClientApi::OpenAiChat
        && request.stream
        && !request.include_usage
        && matches!(route, Route::Passthrough);
    let upstream_request = route.request(deployment, &upstream_model, request, client, add_usage).await?;
    let upstream_api = route.upstream_api(request.api, provider.wire);
    outcome.attempt_started();
    let reply = upstream::send(deployment, upstream_request, request.stream).await;
    if deployment.config.supermemory_router.is_some() {
        match &reply {
            Ok(Reply::Stream(response)) => outcome.supermemory = upstream::supermemory_headers(&response.headers),
            Ok(Reply::Complete { headers, .. }) => outcome.supermemory = upstream::supermemory_headers(headers),
            Err(_) => {}
        }
    }
    let id = &deployment.config.id;
    match reply {
        Ok(Reply::Stream(response)) => {
            let translator = route.stream_translator().await?;
            let relay = Relay::new(request.api, upstream_api, translator, add_usage, outcome.hand_over());
            let config = &deployment.config;
            let response = relay.into_response(response, config.stream_timeout, config.timeout);
            Ok(Attempt::Answered(Answer::Streaming(response)))
        }
        Ok(Reply::Complete { status, headers, body }) if status.is_success() => {
            outcome.attempt_ended();
            let upstream_body = body.clone();
            let body = route.response(body).await?;
            // Read from the upstream's answer, or from the translation when the
            // upstream's API is no client's.
            let (observed_api, observed_body) = match upstream_api {
                Some(api) => (api, &upstream_body),
                None => (request.api, &body),
            };
            let observed = usage::from_body(observed_api, observed_body);
            if let Some(turn) = outcome.turn.as_mut() {
                turn.add_answer(&answer::of_body(observed_api, observed_body));
            }
            let bytes_out = body.len() as u64;
            let mut response = (status, body).into_response();
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            upstream::forwarded_headers(&headers, response.headers_mut());
            Ok(Attempt::Answered(Answer::Whole { response, observed, bytes_out }))
        }
        Ok(Reply::Complete { status, .. }) if status.is_redirection() => {
            outcome.attempt_ended();
            warn!(deployment = %id, status = status.as_u16(), "upstream redirected; not followed");
            let error = GatewayError::new(
                ErrorKind::BadGateway,
                format!(
                    "the upstream of deployment {id} answered with a redirect ({}), which the gateway does not follow: the provider key stays with its provider",
                    status.as_u16()
                ),
            );
            Ok(Attempt::Failed { failure: Failure::Gateway(error), next: Next::Group })
        }
        Ok(Reply::Complete { status, headers, body }) => {
            outcome.attempt_ended();
            warn!(deployment = %id, attempt = outcome.attempts, status = status.as_u16(), "upstream returned an error");
            let overflow = upstream::is_context_overflow(status, &body);
            let failure = Failure::Upstream { status, headers, body, route };
            if overflow {
                return Ok(Attempt::Failed { failure, next: Next::LargerContext });
            }
            if !upstream::warrants_fallback(status) {
                return Ok(Attempt::Answered(failed(failure_response(failure, request.api).await, outcome)));
            }
            let next = if upstream::is_retryable(status) { Next::Retry } else { Next::Group };
            Ok(Attempt::Failed { failure, next })
        }
        Err(reason) => {
            outcome.attempt_ended();
            warn!(deployment = %id, attempt = outcome.attempts, error = ?reason, "upstream attempt failed");
            Ok(Attempt::Failed { failure: Failure::NoReply { deployment: id.clone(), reason }, next: Next::Retry })
        }
    }
}

/// An error answer, recorded as such.
fn failed(response: Response, outcome: &mut Outcome) -> Answer {
    outcome.error.get_or_insert("upstream_error");
    Answer::Whole { response, observed: Observed::default(), bytes_out: 0 }
}

/// Waits before retrying a deployment already tried: exponential from 50 ms, at least
/// what the upstream's `retry-after` asked (up to 5 s; beyond that, the client is
/// better told).
fn backoff(retry: u32, last: Option<&Failure>) -> Duration {
    let exponential = Duration::from_millis(50 << retry.min(5));
    let asked = match last {
        Some(Failure::Upstream { headers, .. }) => {
            upstream::retry_after(headers).map(|s| Duration::from_secs(s.min(5)))
        }
        _ => None,
    };
    exponential.max(asked.unwrap_or_default())
}

/// The client's answer when every attempt failed.
async fn failure_response(failure: Failure, api: ClientApi) -> Response {
    let shape = api.error_shape();
    match failure {
        Failure::Upstream { status, headers, body, route } => {
            let (body, content_type) = match route.error(status.as_u16(), &body).await {
                // Same API: the client reads the provider's own error as is.
                None => (body, headers.get(CONTENT_TYPE).cloned()),
                Some(Ok(translated)) => (translated, None),
                Some(Err(error)) => return error.into_response(shape),
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
            error.into_response(shape)
        }
        Failure::Gateway(error) => error.into_response(shape),
    }
}

/// Anthropic's count_tokens for a provider that has none: the token estimate over the
/// prompt's text-bearing fields, marked as an estimate.
fn estimate_tokens(body: &JsonBody) -> Response {
    let bytes: usize =
        ["system", "messages", "tools"].iter().filter_map(|k| body.raw(k)).map(|raw| raw.get().len()).sum();
    let tokens = wire::tokens::estimate(bytes);
    let mut response = axum::Json(serde_json::json!({ "input_tokens": tokens })).into_response();
    response.headers_mut().insert("x-token-count", HeaderValue::from_static("estimated"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
