//! Stage 1, who is calling: the master key or a virtual key, presented the way any
//! client can (`Authorization: Bearer`, `x-api-key`, `api-key`), or in
//! `x-memory-proxy-key` when the client's own credentials must go upstream untouched
//! (deployments with `forward_client_auth`). Without a master key configured the
//! gateway does not authenticate (bind it to 127.0.0.1 then, the default).

use std::sync::Arc;

use http::HeaderMap;

use crate::core::credentials::{keys_match, presented_key};
use crate::core::error::{ErrorKind, GatewayError};
use crate::core::secret::Secret;
use crate::core::time::now_secs;
use crate::services::keys::{KeyEntry, KeyRefusal, KeyStore, Reservation};

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

/// The caller the presented key stands for, or why it is refused (401).
pub fn authenticate(
    headers: &HeaderMap,
    master_key: Option<&Secret>,
    keys: &KeyStore,
) -> Result<(Caller, CredentialHeader), GatewayError> {
    let Some(master_key) = master_key else {
        return Ok((Caller::Anonymous, CredentialHeader(None)));
    };
    let refused = |message: &str| GatewayError::new(ErrorKind::Authentication, message);
    let Some((presented, header)) = presented_key(headers) else {
        return Err(refused(
            "missing API key: send it as `Authorization: Bearer <key>`, `x-api-key: <key>`, `api-key: <key>` or `x-memory-proxy-key: <key>`",
        ));
    };
    if keys_match(presented, master_key) {
        return Ok((Caller::Master, CredentialHeader(Some(header))));
    }
    match keys.authenticate(presented, now_secs()) {
        Ok(entry) => Ok((Caller::Key(entry), CredentialHeader(Some(header)))),
        Err(KeyRefusal::Expired) => Err(refused("this API key has expired")),
        Err(KeyRefusal::Unknown) => Err(refused("invalid API key")),
    }
}

/// A virtual key's checks for one request, once its route is known: its budget (with
/// the request's estimated cost reserved) and rate limits admit one more request.
pub fn admit(caller: &Caller, estimated_cost: f64) -> Result<Option<Reservation>, GatewayError> {
    caller.key().map(|key| key.admit(now_secs(), estimated_cost)).transpose()
}
