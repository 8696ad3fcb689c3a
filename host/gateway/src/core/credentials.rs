//! Credentials as clients present them: the headers that carry a key, reading the key
//! out of one, comparing keys in constant time, and telling which headers are secret.

use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::secret::Secret;

/// The gateway's own credential header, for when `Authorization` belongs upstream.
pub const GATEWAY_KEY_HEADER: HeaderName = HeaderName::from_static("x-memory-proxy-key");

/// The headers a client may present a key in, the one that wins first.
pub const KEY_HEADERS: [&str; 4] = ["x-memory-proxy-key", "authorization", "x-api-key", "api-key"];

/// Headers that carry credentials: never shown to plugins, logs or analytics.
pub fn is_credential(header: &str) -> bool {
    KEY_HEADERS.contains(&header) || header == "cookie" || header == "proxy-authorization"
}

/// The key a client presented and the header it came in: `x-memory-proxy-key` first,
/// then the headers clients use. A value that is not visible ASCII counts as presented
/// but wrong (never a panic).
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
