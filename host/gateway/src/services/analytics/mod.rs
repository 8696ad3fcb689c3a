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
    /// The `model_name` of model_list that served it (a wildcard group's own name).
    pub model_group: Option<String>,
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
    /// The memories recalled, `[{"id", "score"}]` as JSON (none when none were).
    pub recalled: Option<String>,
    pub memories_captured: u32,
    /// Why the memory backend failed this request (it went on without memories).
    pub memory_error: Option<&'static str>,
    /// What Supermemory's router reported doing for this request (JSON of its
    /// `x-supermemory-*` response headers).
    pub supermemory: Option<String>,
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

/// Request totals: one hour of one dimension's value in the `rollups` table (the
/// writer's), or one group of a summary (the query's).
#[derive(Default)]
pub struct Totals {
    pub requests: i64,
    pub errors: i64,
    pub truncated: i64,
    pub retried: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost: f64,
    /// Requests whose cost is unknown (not in `cost`).
    pub unpriced: i64,
    pub latency_ms_sum: f64,
    pub latency: crate::core::histogram::Histogram,
}

impl Totals {
    pub fn add(&mut self, r: &Record) {
        let usage = r.usage.unwrap_or_default();
        self.requests += 1;
        self.errors += i64::from(r.is_error());
        self.truncated += i64::from(r.truncated());
        self.retried += i64::from(r.attempts > 1);
        self.input_tokens += usage.input as i64;
        self.output_tokens += usage.output as i64;
        self.cached_tokens += usage.cached as i64;
        match r.cost_usd {
            Some(cost) => self.cost += cost,
            None => self.unpriced += 1,
        }
        self.latency_ms_sum += r.latency.as_secs_f64() * 1e3;
        self.latency.record(r.latency);
    }

    pub fn merge(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.truncated += other.truncated;
        self.retried += other.retried;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_tokens += other.cached_tokens;
        self.cost += other.cost;
        self.unpriced += other.unpriced;
        self.latency_ms_sum += other.latency_ms_sum;
        self.latency.merge(&other.latency);
    }
}
