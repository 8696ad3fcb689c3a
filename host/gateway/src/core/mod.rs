//! Small shared types every layer may use, and which use nothing above them: the
//! client APIs, the provider table, the request body, errors, identities, prompts,
//! credentials, ids, clocks, histograms and secrets.

pub mod api;
pub mod body;
pub mod credentials;
pub mod error;
pub mod histogram;
pub mod identity;
pub mod ids;
pub mod prompt;
pub mod provider;
pub mod secret;
pub mod time;

/// Server-sent events, shared with the plugins (the `wire` crate).
pub use wire::sse;
