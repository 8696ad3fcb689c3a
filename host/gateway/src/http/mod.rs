//! The HTTP surface: which routes exist, which need which key, and the small handlers
//! that hand model calls to the pipeline.

pub mod auth;
pub mod context;
mod handlers;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use http::HeaderMap;
use tower_http::cors::{AllowOrigin, CorsLayer};

use handlers::{admin, analytics, health, keys, memories, models, routing_info};

use crate::core::api::ClientApi;
use crate::core::credentials::GATEWAY_KEY_HEADER;
use crate::core::error::{ErrorKind, ErrorShape, GatewayError};
use crate::pipeline::auth::{Caller, CredentialHeader};
use crate::pipeline::{self, Calling, RequestContext};
use crate::services::Services;

pub fn router(state: Services) -> Router {
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
        .route("/v1/memories", get(memories::list).post(memories::add).delete(memories::delete_all))
        .route("/v1/memories/export", get(memories::export))
        .route("/v1/memories/import", post(memories::import))
        .route("/v1/memories/{id}", delete(memories::delete))
        .route("/memory-routing/info", get(routing_info::info).post(routing_info::info))
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/list", get(keys::list));
    let admin_routes = Router::new()
        .route("/health", get(health::deployments))
        .route("/admin/plugins", get(admin::plugins))
        .route("/analytics/summary", get(analytics::summary))
        .route("/analytics/requests", get(analytics::requests))
        .route("/analytics/requests/{id}/memories", get(analytics::request_memories))
        .route("/analytics/memories", get(analytics::memories))
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
                    GATEWAY_KEY_HEADER,
                ]),
        );
    }
    router
}

macro_rules! model_route {
    ($name:ident, $api:expr) => {
        async fn $name(
            State(services): State<Services>,
            Extension(ctx): Extension<RequestContext>,
            Extension(caller): Extension<Caller>,
            Extension(credential_header): Extension<CredentialHeader>,
            headers: HeaderMap,
            body: Body,
        ) -> Response {
            let calling = Calling { caller, credential_header };
            pipeline::handle(&services, $api, &ctx, calling, &headers, body).await
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
        .into_response(error_shape_for(path))
}

/// Anthropic's routes answer in Anthropic's shape, everything else in OpenAI's.
pub fn error_shape_for(path: &str) -> ErrorShape {
    if path.starts_with("/v1/messages") { ErrorShape::Anthropic } else { ErrorShape::OpenAi }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape_follows_the_route() {
        assert_eq!(error_shape_for("/v1/messages/count_tokens"), ErrorShape::Anthropic);
        assert_eq!(error_shape_for("/v1/chat/completions"), ErrorShape::OpenAi);
    }
}
