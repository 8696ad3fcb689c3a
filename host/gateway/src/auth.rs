//! API-key authentication, for IDEs that cannot configure it themselves: the master key
//! or a virtual key, presented the way any client can (`Authorization: Bearer`,
//! `x-api-key`, `api-key`), or in `x-memory-proxy-key` when the client's own
//! credentials must go upstream untouched (deployments with `forward_client_auth`).
//! Without a master key configured the gateway does not authenticate (bind it to
//! 127.0.0.1 then, the default).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::context::RequestContext;
use crate::error::{ErrorKind, ErrorShape, GatewayError};
use crate::keys::{KeyEntry, KeyRefusal, now_secs};
use crate::secret::Secret;
use crate::state::AppState;

/// The gateway's own credential header, for when `Authorization` belongs upstream.
pub const GATEWAY_KEY_HEADER: HeaderName = HeaderName::from_static("x-memory-proxy-key");

/// Who is calling, as authentication established.
#[derive(Clone)]
pub enum Caller {
    /// No master key is configured: nobody is authenticated.
    Anonymous,
    Master,
    Key(Arc<KeyEntry>),
}

impl Caller {
    pub fn key(&self) -> Option<&Arc<KeyEntry>> {
        match self {
            Self::Key(key) => Some(key),
            _ => None,
        }
    }
}

/// Which header carried the gateway credential: the others may go upstream.
#[derive(Clone, Copy)]
pub struct CredentialHeader(pub Option<&'static str>);

fn refused(shape: ErrorShape, message: &str) -> Response {
    GatewayError::new(ErrorKind::Authentication, message).into_response(shape)
}

/// Every keyed route: establishes the [`Caller`] or answers 401 in the client's shape.
pub async fn authenticate(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    mut request: Request,
    next: Next,
) -> Response {
    let shape = ErrorShape::for_path(request.uri().path());
    let (caller, header) = match &ctx.snapshot.config.master_key {
        None => (Caller::Anonymous, None),
        Some(master_key) => {
            let Some((presented, header)) = presented_key(request.headers()) else {
                return refused(
                    shape,
                    "missing API key: send it as `Authorization: Bearer <key>`, `x-api-key: <key>`, `api-key: <key>` or `x-memory-proxy-key: <key>`",
                );
            };
            if keys_match(presented, master_key) {
                (Caller::Master, Some(header))
            } else {
                match state.keys().authenticate(presented, now_secs()) {
                    Ok(entry) => (Caller::Key(entry), Some(header)),
                    Err(KeyRefusal::Expired) => return refused(shape, "this API key has expired"),
                    Err(KeyRefusal::Unknown) => return refused(shape, "invalid API key"),
                }
            }
        }
    };
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(CredentialHeader(header));
    next.run(request).await
}

/// Admin routes (`/admin/*`, analytics): the master key, or anyone when the gateway
/// does not authenticate (no master key: loopback only by default).
pub async fn admin_only(Extension(caller): Extension<Caller>, request: Request, next: Next) -> Response {
    match caller {
        Caller::Master | Caller::Anonymous => next.run(request).await,
        Caller::Key(_) => GatewayError::new(ErrorKind::PermissionDenied, "this route needs the master key")
            .into_response(ErrorShape::OpenAi),
    }
}

/// The key a client presented and the header it came in: `x-memory-proxy-key` first,
/// then the headers clients use. A value that is not visible ASCII counts as presented
/// but wrong (never a panic).
/// The headers a client may present a key in, the one that wins first.
pub const KEY_HEADERS: [&str; 4] = ["x-memory-proxy-key", "authorization", "x-api-key", "api-key"];

/// Headers that carry credentials: never shown to plugins, logs or analytics.
pub fn is_credential(header: &str) -> bool {
    KEY_HEADERS.contains(&header) || header == "cookie" || header == "proxy-authorization"
}

pub fn presented_key(headers: &HeaderMap) -> Option<(&str, &'static str)> {
    KEY_HEADERS.into_iter().find_map(|name| Some((token_in(name, headers.get(name)?), name)))
}

/// The key in a credential header's value (`Authorization: Bearer <key>` or the bare key).
pub fn token_in<'h>(header: &str, value: &'h http::HeaderValue) -> &'h str {
    let value = value.to_str().unwrap_or_default().trim();
    match value.split_once(' ') {
        Some((scheme, token)) if header == "authorization" && scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
    }
}

/// Compares in constant time; hashing first makes the time independent of length too.
pub fn keys_match(presented: &str, expected: &Secret) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.expose().as_bytes());
    bool::from(presented.ct_eq(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_every_header_clients_use() {
        assert_eq!(presented_key(&headers(&[("authorization", b"Bearer sk-1")])), Some(("sk-1", "authorization")));
        assert_eq!(presented_key(&headers(&[("authorization", b"bearer  sk-1 ")])), Some(("sk-1", "authorization")));
        assert_eq!(presented_key(&headers(&[("x-api-key", b"sk-2")])), Some(("sk-2", "x-api-key")));
        assert_eq!(presented_key(&headers(&[("api-key", b"sk-3")])), Some(("sk-3", "api-key")));
        assert_eq!(
            presented_key(&headers(&[("authorization", b"Bearer oauth-token"), ("x-memory-proxy-key", b"sk-4")])),
            Some(("sk-4", "x-memory-proxy-key")),
            "the gateway's own header wins, leaving Authorization for the upstream"
        );
        assert_eq!(presented_key(&headers(&[])), None);
        assert_eq!(presented_key(&headers(&[("authorization", b"Bearer \xff\xfe")])).map(|k| k.0), Some(""));
    }

    #[test]
    fn matches_only_the_exact_key() {
        let key = Secret::new("sk-master");
        assert!(keys_match("sk-master", &key));
        assert!(!keys_match("sk-maste", &key));
        assert!(!keys_match("", &key));
    }
}
