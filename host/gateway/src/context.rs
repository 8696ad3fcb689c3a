//! The first thing every request meets: an id, the config snapshot it will run on,
//! and a tracing span that puts the id on every log line it causes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

use crate::state::{AppState, Snapshot};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Clone)]
pub struct RequestContext {
    pub id: Arc<str>,
    pub snapshot: Arc<Snapshot>,
}

pub async fn begin(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let id: Arc<str> = new_request_id().into();
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    request.extensions_mut().insert(RequestContext { id: id.clone(), snapshot: state.snapshot() });
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// A time-ordered UUID (v7). The random part comes from the thread's generator, not
/// the kernel: no syscall per request.
fn new_request_id() -> String {
    use rand::RngCore;
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis as u64, &random).into_uuid().to_string()
}
