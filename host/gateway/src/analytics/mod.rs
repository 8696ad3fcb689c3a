//! The analytics databank: one [`Record`] per request (tokens, cost, latency, errors,
//! quality signals), written off the request path by the storage writer, queried by
//! the API in [`query`], exported as Prometheus metrics in [`metrics`].

pub mod metrics;
pub mod prices;
pub mod query;
pub mod usage;

use std::time::Duration;

pub use usage::{Observed, StreamObserver, Usage};

/// What a request did, as the databank stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// Unix milliseconds when the request arrived.
    pub started_at_ms: i64,
    pub user: String,
    pub project: Option<String>,
    pub client: Option<String>,
    /// The virtual key's id (never the key).
    pub key_id: Option<String>,
    /// The model name the client asked for.
    pub model: String,
    pub deployment: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub api: &'static str,
    pub stream: bool,
    pub status: u16,
    /// A short error code when the request failed.
    pub error: Option<String>,
    pub attempts: u32,
    /// Fallback model groups tried beyond the requested one.
    pub fallbacks: u32,
    pub usage: Option<Usage>,
    /// No usage came back: the token counts are estimates (about four bytes a token).
    pub tokens_estimated: bool,
    /// None when the model's price is unknown.
    pub cost_usd: Option<f64>,
    pub latency: Duration,
    /// Time to the first byte of a streamed answer.
    pub ttft: Option<Duration>,
    /// Time spent waiting for the upstream (all attempts).
    pub upstream: Option<Duration>,
    pub memories_recalled: u32,
    pub memories_captured: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub finish_reason: Option<String>,
    /// The key's spend after this request, persisted with it.
    pub key_spend: Option<KeySpend>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeySpend {
    pub spend: f64,
    pub total_spend: f64,
    pub budget_reset_at: Option<i64>,
}

impl Record {
    /// The gateway's own share of the latency: everything but waiting for upstreams.
    pub fn overhead(&self) -> Option<Duration> {
        self.upstream.map(|upstream| self.latency.saturating_sub(upstream))
    }

    pub fn is_error(&self) -> bool {
        is_error(self.status, self.error.as_deref())
    }

    pub fn truncated(&self) -> bool {
        is_truncation(self.finish_reason.as_deref())
    }
}

/// A failed request: an error status, or an answer that broke off (its status was
/// already sent as 200).
pub fn is_error(status: u16, error: Option<&str>) -> bool {
    status >= 400 || error.is_some()
}

/// An answer cut by its token limit, in any API's words.
pub fn is_truncation(finish_reason: Option<&str>) -> bool {
    matches!(finish_reason, Some("length" | "max_tokens" | "max_output_tokens"))
}
