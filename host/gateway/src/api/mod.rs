//! The HTTP surface: which routes exist, which need a key, and the small handlers
//! that hand model calls to the pipeline.

mod admin;
mod health;
mod models;
mod routing_info;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::HeaderMap;

use crate::adapter::ClientApi;
use crate::context::{self, RequestContext};
use crate::error::{ErrorKind, ErrorShape, GatewayError};
use crate::state::AppState;
use crate::{auth, proxy};

pub fn router(state: AppState) -> Router {
    let keyed = Router::new()
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
        .route("/health", get(health::deployments))
        .route("/memory-routing/info", get(routing_info::info).post(routing_info::info))
        .route("/admin/plugins", get(admin::plugins))
        .route_layer(from_fn(auth::require_master_key));
    let open = Router::new()
        .route("/health/liveliness", get(health::liveliness))
        .route("/health/readiness", get(health::readiness));
    keyed.merge(open).fallback(not_found).layer(from_fn_with_state(state.clone(), context::begin)).with_state(state)
}

async fn chat_completions(Extension(ctx): Extension<RequestContext>, headers: HeaderMap, body: Body) -> Response {
    proxy::handle(ClientApi::OpenAiChat, ctx, headers, body).await
}

async fn responses(Extension(ctx): Extension<RequestContext>, headers: HeaderMap, body: Body) -> Response {
    proxy::handle(ClientApi::OpenAiResponses, ctx, headers, body).await
}

async fn messages(Extension(ctx): Extension<RequestContext>, headers: HeaderMap, body: Body) -> Response {
    proxy::handle(ClientApi::AnthropicMessages, ctx, headers, body).await
}

async fn count_tokens(Extension(ctx): Extension<RequestContext>, headers: HeaderMap, body: Body) -> Response {
    proxy::handle(ClientApi::AnthropicCountTokens, ctx, headers, body).await
}

async fn embeddings(Extension(ctx): Extension<RequestContext>, headers: HeaderMap, body: Body) -> Response {
    proxy::handle(ClientApi::OpenAiEmbeddings, ctx, headers, body).await
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    GatewayError::new(ErrorKind::NotFound, format!("no route for {} {path}", request.method()))
        .into_response(ErrorShape::for_path(path))
}
