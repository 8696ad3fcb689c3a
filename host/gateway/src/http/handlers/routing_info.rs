//! `GET|POST /memory-routing/info`: how the gateway sees the calling request: user,
//! project and client with what decided each, the memory scope and its Supermemory
//! container tag, and the models the caller may use. POST takes a request body in
//! any API shape, so prompt-based detection (a working directory) can be checked too.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::HeaderMap;
use serde_json::json;

use crate::core::api::ClientApi;
use crate::core::body::JsonBody;
use crate::core::error::{ErrorShape, GatewayError};
use crate::core::identity::Source;
use crate::pipeline::auth::Caller;
use crate::pipeline::request::read_body;
use crate::pipeline::{RequestContext, identify};
use crate::services::memory::Scope;

pub async fn info(
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match describe(&ctx, &caller, &headers, body).await {
        Ok(answer) => answer.into_response(),
        Err(error) => error.into_response(ErrorShape::OpenAi),
    }
}

/// The API a sample body is written in, judged by its fields.
fn api_of(body: &JsonBody, headers: &HeaderMap) -> ClientApi {
    if body.contains("input") && !body.contains("messages") {
        ClientApi::OpenAiResponses
    } else if body.contains("system") || headers.contains_key("anthropic-version") {
        ClientApi::AnthropicMessages
    } else {
        ClientApi::OpenAiChat
    }
}

async fn describe(
    ctx: &RequestContext,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, GatewayError> {
    let bytes =
        read_body(headers, body, ctx.snapshot.config.max_request_bytes, ctx.snapshot.config.request_body_timeout)
            .await?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) { None } else { Some(JsonBody::parse(&bytes)?) };
    let api = body.as_ref().map_or(ClientApi::OpenAiChat, |b| api_of(b, headers));
    let key = caller.key();
    let (plugins, mappings) = (&ctx.snapshot.plugins, &ctx.snapshot.config.user_id_mappings);
    let identity = identify::identify(plugins, mappings, api, headers, body.as_ref(), key.map(|k| &k.record)).await?;
    let scope = Scope::of(&identity);
    let rule = match &identity.user.source {
        Source::Key { id } => format!("virtual key {id}"),
        Source::Header { name } => format!("header {name}"),
        Source::Plugin { name, reason } => format!("plugin {name}: {reason}"),
        Source::Default => "default_user_id".to_owned(),
    };
    Ok(Json(json!({
        "user_id": identity.user.value,
        "project": identity.project(),
        "client": identity.client(),
        "matched_rule": rule,
        "identity": identity,
        "memory_scope": scope.path(),
        "supermemory_container_tag": scope.container_tag(),
        "models": ctx.snapshot.router.model_names().into_iter().filter(|m| key.is_none_or(|k| k.check_model(m).is_ok())).collect::<Vec<_>>(),
        "key": key.map(|k| json!({ "id": k.record.id, "key_name": k.record.key_hint, "alias": k.record.alias })),
        "caller": match caller { Caller::Master => "master key", Caller::Key(_) => "virtual key", Caller::Anonymous => "unauthenticated (no master key configured)" },
    })))
}
