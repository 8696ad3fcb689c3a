//! The HTTP surface: which routes exist, which need which key, and the small handlers
//! that hand model calls to the pipeline.

mod admin;
mod analytics;
mod health;
mod memories;
mod models;
mod routing_info;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use http::HeaderMap;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::adapter::ClientApi;
use crate::auth::{self, Caller, CredentialHeader};
use crate::context::{self, RequestContext};
use crate::error::{ErrorKind, ErrorShape, GatewayError};
use crate::keys;
use crate::proxy::{self, Calling};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let model_routes = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/chat/completions", post(chat_completions))
        .route("/v1/responses", post(responses))
        .route("/responses", post(responses))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/embeddings", post(embeddings))
        .route("/embeddings", post(embeddings))
        .route("/v1/models", get(models::list))
        .route("/models", get(models::list))
        .route("/v1/feedback", post(analytics::feedback))
        .route("/v1/memories", get(memories::list).post(memories::add))
        .route("/v1/memories/{id}", delete(memories::delete))
        .route("/memory-routing/info", get(routing_info::info).post(routing_info::info))
        .route("/key/generate", post(keys::api::generate))
        .route("/key/info", get(keys::api::info))
        .route("/key/update", post(keys::api::update))
        .route("/key/delete", post(keys::api::delete))
        .route("/key/list", get(keys::api::list));
    let admin_routes = Router::new()
        .route("/health", get(health::deployments))
        .route("/admin/plugins", get(admin::plugins))
        .route("/analytics/summary", get(analytics::summary))
        .route("/analytics/requests", get(analytics::requests))
        .route("/spend/logs", get(analytics::spend_logs))
        .route("/metrics", get(analytics::prometheus))
        .route_layer(from_fn(auth::admin_only));
    let keyed = model_routes.merge(admin_routes).route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    let open = Router::new()
        .route("/health/liveliness", get(health::liveliness))
        .route("/health/readiness", get(health::readiness))
        .route("/dashboard", get(analytics::dashboard));
    let origins = state.snapshot().config.allowed_origins.clone();
    let mut router = keyed
        .merge(open)
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), context::begin))
        .with_state(state);
    // CORS is closed unless origins are configured: browsers may not call the gateway
    // from another site's page.
    if !origins.is_empty() {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([http::Method::GET, http::Method::POST, http::Method::DELETE])
                .allow_headers([
                    http::header::AUTHORIZATION,
                    http::header::CONTENT_TYPE,
                    http::HeaderName::from_static("x-api-key"),
                    http::HeaderName::from_static("api-key"),
                    http::HeaderName::from_static("anthropic-version"),
                    http::HeaderName::from_static("anthropic-beta"),
                    auth::GATEWAY_KEY_HEADER,
                ]),
        );
    }
    router
}

async fn model_call(
    api: ClientApi,
    state: AppState,
    ctx: RequestContext,
    caller: Caller,
    credential_header: CredentialHeader,
    headers: HeaderMap,
    body: Body,
) -> Response {
    proxy::handle(state, api, ctx, Calling { caller, credential_header }, headers, body).await
}

macro_rules! model_route {
    ($name:ident, $api:expr) => {
        async fn $name(
            State(state): State<AppState>,
            Extension(ctx): Extension<RequestContext>,
            Extension(caller): Extension<Caller>,
            Extension(credential): Extension<CredentialHeader>,
            headers: HeaderMap,
            body: Body,
        ) -> Response {
            model_call($api, state, ctx, caller, credential, headers, body).await
        }
    };
}

model_route!(chat_completions, ClientApi::OpenAiChat);
model_route!(responses, ClientApi::OpenAiResponses);
model_route!(messages, ClientApi::AnthropicMessages);
model_route!(count_tokens, ClientApi::AnthropicCountTokens);
model_route!(embeddings, ClientApi::OpenAiEmbeddings);

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    GatewayError::new(ErrorKind::NotFound, format!("no route for {} {path}", request.method()))
        .into_response(ErrorShape::for_path(path))
}
