//! API-key authentication in front of the model routes: the master key, presented
//! the way any client can (`Authorization: Bearer`, `x-api-key`, `api-key`).

use axum::Extension;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::context::RequestContext;
use crate::error::{ErrorKind, ErrorShape, GatewayError};
use crate::secret::Secret;

pub async fn require_master_key(Extension(ctx): Extension<RequestContext>, request: Request, next: Next) -> Response {
    let Some(master_key) = &ctx.snapshot.config.master_key else {
        return next.run(request).await;
    };
    let shape = ErrorShape::for_path(request.uri().path());
    match presented_key(request.headers()) {
        Some(key) if keys_match(key, master_key) => next.run(request).await,
        Some(_) => GatewayError::new(ErrorKind::Authentication, "invalid API key").into_response(shape),
        None => GatewayError::new(
            ErrorKind::Authentication,
            "missing API key: send it as `Authorization: Bearer <key>`, `x-api-key: <key>` or `api-key: <key>`",
        )
        .into_response(shape),
    }
}

/// The key a client presented, from the first of the headers clients use. A header
/// that is not visible ASCII counts as presented but wrong (never a panic).
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default().trim();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => value,
        };
        return Some(token);
    }
    ["x-api-key", "api-key"]
        .iter()
        .find_map(|name| headers.get(*name))
        .map(|value| value.to_str().unwrap_or_default().trim())
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
        assert_eq!(presented_key(&headers(&[("authorization", b"Bearer sk-1")])), Some("sk-1"));
        assert_eq!(presented_key(&headers(&[("authorization", b"bearer  sk-1 ")])), Some("sk-1"));
        assert_eq!(presented_key(&headers(&[("x-api-key", b"sk-2")])), Some("sk-2"));
        assert_eq!(presented_key(&headers(&[("api-key", b"sk-3")])), Some("sk-3"));
        assert_eq!(presented_key(&headers(&[])), None);
        assert_eq!(presented_key(&headers(&[("authorization", b"Bearer \xff\xfe")])), Some(""));
    }

    #[test]
    fn matches_only_the_exact_key() {
        let key = Secret::new("sk-master");
        assert!(keys_match("sk-master", &key));
        assert!(!keys_match("sk-maste", &key));
        assert!(!keys_match("", &key));
    }
}
