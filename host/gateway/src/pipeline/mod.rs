//! The request pipeline for the model APIs, one stage per module, run in this order
//! by [`handle`]:
//!
//! 1. [`auth`]: who is calling, and whether the key admits this request;
//! 2. [`identify`]: user, project and client (detector plugins);
//! 3. [`route`]: the model groups to try (an unknown model costs no memory work);
//! 4. [`recall`]: the scope's memories for the user's words;
//! 5. [`inject`]: the memory-injector plugin's patch, applied to the body;
//! 6. [`adapt`]: passthrough or translation for each deployment tried, with the
//!    deployment's [`defaults`];
//! 7. [`send`]: the attempts ([`upstream`] sends one, [`relay`] streams an answer);
//! 8. [`record`]: the log line, analytics record, key spend and memory of the turn.
//!
//! ([`request`] reads and checks the body before the stages run; [`own`] sends the
//! gateway's own requests through stages 3, 6, 7 and 8.)

pub mod adapt;
pub mod auth;
pub mod defaults;
pub mod identify;
pub mod inject;
pub mod own;
pub mod recall;
pub mod record;
pub mod relay;
pub mod request;
pub mod route;
pub mod send;
pub mod upstream;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::HeaderMap;
use tracing::info;

use auth::{Caller, CredentialHeader};
use record::Outcome;
use request::ClientRequest;
use send::Answer;
use upstream::ClientHeaders;

use crate::core::api::ClientApi;
use crate::core::error::{ErrorKind, GatewayError};
use crate::services::analytics::Observed;
use crate::services::memory::Scope;
use crate::services::{Services, Snapshot};

/// What every request carries from its first moment: its id and the config snapshot
/// it runs on.
#[derive(Clone)]
pub struct RequestContext {
    pub id: Arc<str>,
    pub snapshot: Arc<Snapshot>,
}

/// Who called, as authentication established it.
pub struct Calling {
    pub caller: Caller,
    pub credential_header: CredentialHeader,
}

/// Serves one model-API request end to end; errors come back in the client's shape.
pub async fn handle(
    services: &Services,
    api: ClientApi,
    ctx: &RequestContext,
    calling: Calling,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let mut outcome = Outcome::new(services.clone(), ctx.id.clone(), api);
    outcome.key = calling.caller.key().cloned();
    outcome.in_flight = services.admit();
    let admitted = outcome.in_flight.is_some();
    let result = if admitted {
        run(services, ctx, api, &calling, headers, body, &mut outcome).await
    } else {
        Err(GatewayError::new(
            ErrorKind::Overloaded,
            format!(
                "the gateway has as many requests in flight as it takes ({}, general_settings.global_max_parallel_requests); retry shortly",
                ctx.snapshot.config.max_parallel_requests
            ),
        ))
    };
    match result {
        Ok(Answer::Whole { response, observed, bytes_out }) => {
            outcome.finish(response.status().as_u16(), observed, bytes_out, None);
            response
        }
        Ok(Answer::Streaming(response)) => response,
        Err(error) => {
            info!(error = error.kind.code(), "{}", error.message);
            outcome.error = Some(error.kind.code());
            let mut response = error.into_response(api.error_shape());
            if !admitted {
                response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            }
            outcome.finish(response.status().as_u16(), Observed::default(), 0, None);
            response
        }
    }
}

/// The stages, in order.
async fn run(
    services: &Services,
    ctx: &RequestContext,
    api: ClientApi,
    calling: &Calling,
    headers: &HeaderMap,
    body: Body,
    outcome: &mut Outcome,
) -> Result<Answer, GatewayError> {
    let snapshot = &ctx.snapshot;
    let config = &snapshot.config;
    let bytes = request::read_body(headers, body, config.max_request_bytes, config.request_body_timeout).await?;
    outcome.bytes_in = bytes.len() as u64;
    let mut request = ClientRequest::parse(api, &bytes)?;
    outcome.model.clone_from(&request.model);
    outcome.stream = request.stream;

    let key = calling.caller.key();
    if let Some(key) = key {
        key.check_model(&request.model)?;
    }
    let (plugins, mappings) = (&snapshot.plugins, &config.user_id_mappings);
    let pins = key.map(|k| &k.record);
    let identity = identify::identify(plugins, mappings, api, headers, Some(&request.body), pins).await?;
    // Kept with the outcome from here on, so even a request that fails later is the
    // caller's in the analytics.
    let identity = &*outcome.identity.insert(identity);
    let plan = route::plan(&snapshot.router, &request.model, key.map(|k| &**k))?;
    // Only a key with a budget has a cost to reserve.
    let budgeted = key.is_some_and(|k| k.record.max_budget.is_some());
    let estimate = if budgeted { plan.estimated_cost(&request, bytes.len()) } else { 0.0 };
    outcome.reservation = auth::admit(&calling.caller, estimate)?;
    // Supermemory's router does memory itself: the gateway's would apply it twice.
    let memory_by_router = plan.groups.first().is_some_and(route::reaches_supermemory_router);
    if let Some(memory) = config.memory.as_ref().filter(|_| !memory_by_router) {
        let (backend, conversations) = (services.memory_backend(config), services.conversations());
        let body = &request.body;
        if let Some(mut recalled) = recall::recall(&backend, conversations, memory, api, identity, headers, body).await
        {
            outcome.turn = recalled.turn.take();
            outcome.memory_error = recalled.error;
            let conversation = std::mem::take(&mut recalled.conversation);
            let budget = memory.token_budget;
            let injection = inject::inject(plugins, api, identity, &mut request.body, recalled, budget).await?;
            outcome.recalled = injection.recalled;
            // Counting tokens is no turn: what it recalled is recalled again by the turn.
            if let Some(state) = injection.changed.filter(|_| api != ClientApi::AnthropicCountTokens) {
                let state = Arc::new(state);
                conversations.put(&conversation, state.clone());
                services.journal().conversation(conversation, state);
            }
        }
    }

    let routed = plan.groups.iter().chain(&plan.on_context_overflow).any(route::reaches_supermemory_router);
    let container_tag = routed.then(|| Scope::of(identity).container_tag());
    let client =
        ClientHeaders { headers, credential: calling.credential_header, container_tag: container_tag.as_deref() };
    send::send(snapshot, &plan, &request, &client, outcome).await
}
