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

/// A time-ordered UUID (v7) whose order is also arrival order within a millisecond:
/// the 12 bits after the timestamp count requests (RFC 9562's "fixed-length dedicated
/// counter"); the rest is random, from the thread's generator (no syscall).
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    // (milliseconds << 12) | counter, never going backwards.
    let previous = LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some((now_ms << 12).max(last + 1)));
    let stamp = (now_ms << 12).max(previous.unwrap_or(0) + 1);
    let (millis, counter) = (stamp >> 12, (stamp & 0xfff) as u16);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..8].copy_from_slice(&counter.to_be_bytes());
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes[8..]);
    uuid::Builder::from_bytes(bytes)
        .with_version(uuid::Version::SortRand)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_sort_in_arrival_order() {
        let ids: Vec<String> = (0..5000).map(|_| super::new_request_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.iter().all(|id| id.as_bytes()[14] == b'7'), "version 7");
    }
}
