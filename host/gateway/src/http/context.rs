//! The first thing every request meets: an id, the config snapshot it will run on,
//! and a tracing span that puts the id on every log line it causes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

use crate::pipeline::RequestContext;
use crate::services::Services;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub async fn begin(State(services): State<Services>, mut request: Request, next: Next) -> Response {
    let id: Arc<str> = crate::core::ids::new_request_id().into();
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    request.extensions_mut().insert(RequestContext { id: id.clone(), snapshot: services.snapshot() });
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
