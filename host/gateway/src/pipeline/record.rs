//! Stage 8, record: what became of one request, gathered as it runs and finished
//! exactly once: its log line, its analytics record, its key's spend, its metrics, the
//! memory its turn leaves. The journal writes them off the request path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use crate::core::api::ClientApi;
use crate::core::identity::Identity;
use crate::core::ids::millis_of;
use crate::core::time::{now_ms, now_secs};
use crate::services::Services;
use crate::services::analytics::prices::{self, Price};
use crate::services::analytics::{Observed, Record, Usage, metrics};
use crate::services::keys::{KeyEntry, Reservation};
use crate::services::memory::Turn;

pub struct Outcome {
    services: Services,
    /// The request's place among those in flight, given back when the outcome goes.
    pub in_flight: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its estimated cost, reserved against its key's budget until it is settled.
    pub reservation: Option<Reservation>,
    pub id: Arc<str>,
    pub api: ClientApi,
    pub started: Instant,
    started_at_ms: i64,
    pub model: String,
    pub stream: bool,
    pub identity: Option<Identity>,
    pub key: Option<Arc<KeyEntry>>,
    /// The model group of the last attempt.
    pub model_group: Option<String>,
    pub deployment: Option<String>,
    pub provider: Option<&'static str>,
    pub upstream_model: Option<String>,
    pub price: Option<Price>,
    pub attempts: u32,
    pub fallbacks: u32,
    pub bytes_in: u64,
    /// Time spent on upstream attempts already finished.
    upstream_done: Duration,
    /// The attempt in progress (its answer may still be streaming).
    upstream_since: Option<Instant>,
    pub error: Option<&'static str>,
    /// The memories recall offered: id and score, best first.
    pub recalled: Vec<(String, f32)>,
    /// Why the memory backend failed this request, if it did.
    pub memory_error: Option<&'static str>,
    /// What Supermemory's router reported doing (its `x-supermemory-*` headers, JSON).
    pub supermemory: Option<String>,
    /// The turn to remember if the answer completes.
    pub turn: Option<Turn>,
    finished: bool,
}

impl Outcome {
    pub fn new(services: Services, id: Arc<str>, api: ClientApi) -> Self {
        // The id's own time: the log's time index is its ids.
        let started_at_ms = millis_of(&id).unwrap_or_else(now_ms);
        Self {
            services,
            in_flight: None,
            reservation: None,
            id,
            api,
            started: Instant::now(),
            started_at_ms,
            model: String::new(),
            stream: false,
            identity: None,
            key: None,
            model_group: None,
            deployment: None,
            provider: None,
            upstream_model: None,
            price: None,
            attempts: 0,
            fallbacks: 0,
            bytes_in: 0,
            upstream_done: Duration::ZERO,
            upstream_since: None,
            error: None,
            recalled: Vec::new(),
            memory_error: None,
            supermemory: None,
            turn: None,
            finished: false,
        }
    }

    /// Moves the outcome into a stream's relay, which finishes it when the stream ends;
    /// what is left here is already finished.
    pub fn hand_over(&mut self) -> Outcome {
        let mut placeholder = Outcome::new(self.services.clone(), self.id.clone(), self.api);
        placeholder.finished = true;
        std::mem::replace(self, placeholder)
    }

    /// An upstream attempt starts.
    pub fn attempt_started(&mut self) {
        self.upstream_since = Some(Instant::now());
    }

    /// The attempt in progress is over (failed, or its answer fully read).
    pub fn attempt_ended(&mut self) {
        if let Some(since) = self.upstream_since.take() {
            self.upstream_done += since.elapsed();
        }
    }

    fn upstream_time(&self) -> Option<Duration> {
        (self.attempts > 0).then(|| self.upstream_done + self.upstream_since.map_or(Duration::ZERO, |s| s.elapsed()))
    }

    /// Logs, records and accounts the request. Called once, when the client has its
    /// whole answer (or went away).
    pub fn finish(&mut self, status: u16, observed: Observed, bytes_out: u64, ttfb: Option<Duration>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let latency = self.started.elapsed();
        let upstream = self.upstream_time();
        let succeeded = status < 400;
        // No usage came back from an answer the client got (all of it, or the part
        // before it went away): estimate. An answer cut short
        // is paid for too, so hanging up before the usage chunk is no way around a budget.
        let free = self.api == ClientApi::AnthropicCountTokens;
        let answered = succeeded || (status == CLIENT_CLOSED && bytes_out > 0);
        let (usage, estimated) = match observed.usage {
            Some(usage) => (Some(usage), false),
            None if answered && self.attempts > 0 && !free => {
                (Some(Usage { input: estimate(self.bytes_in), output: estimate(bytes_out), ..Usage::default() }), true)
            }
            None => (None, false),
        };
        let cost = match (&usage, &self.price) {
            _ if free => Some(0.0),
            (Some(usage), Some(price)) => Some(prices::cost(usage, price)),
            // Nothing was generated: nothing to pay, whatever the price.
            (None, _) if !succeeded => Some(0.0),
            _ => None,
        };
        let key_spend = self.key.as_ref().map(|key| {
            let tokens = usage.map_or(0, |u| u.input + u.output);
            key.accrue(cost, tokens, now_secs())
        });
        // Settled: the real cost replaces the estimate.
        self.reservation = None;
        // Only a whole answer is remembered: not an error, not one cut short.
        let mut turn = self.turn.take().filter(|_| succeeded && self.error.is_none());
        let remote = turn.as_ref().is_some_and(|t| t.remote);
        let vector = turn.as_mut().and_then(|t| t.vector.take());
        let memory = turn.and_then(|t| t.into_memory(&self.id));
        let captured = memory.is_some();
        if let Some(memory) = memory {
            self.services.remember(memory, remote, vector);
        }
        let identity = self.identity.as_ref();
        info!(
            status,
            model = %self.model,
            user = identity.map_or("-", |i| i.user.value.as_str()),
            project = identity.and_then(Identity::project).unwrap_or("-"),
            client = identity.and_then(Identity::client).unwrap_or("-"),
            key = self.key.as_ref().map_or("-", |k| k.record.id.as_str()),
            deployment = self.deployment.as_deref().unwrap_or("-"),
            attempts = self.attempts,
            input_tokens = usage.map(|u| u.input),
            output_tokens = usage.map(|u| u.output),
            cost_usd = cost,
            ttfb_ms = ttfb.map(|d| d.as_secs_f64() * 1e3),
            ms = latency.as_secs_f64() * 1e3,
            "request completed"
        );
        let record = Record {
            id: self.id.to_string(),
            started_at_ms: self.started_at_ms,
            user: identity.map_or_else(|| "unknown".to_owned(), |i| i.user.value.clone()),
            project: identity.and_then(Identity::project).map(str::to_owned),
            client: identity.and_then(Identity::client).map(str::to_owned),
            key_id: self.key.as_ref().map(|k| k.record.id.clone()),
            model: self.model.clone(),
            model_group: self.model_group.clone(),
            deployment: self.deployment.clone(),
            provider: self.provider.map(str::to_owned),
            upstream_model: self.upstream_model.clone(),
            api: self.api.label(),
            stream: self.stream,
            status,
            error: self.error.map(str::to_owned).or_else(|| (!succeeded).then(|| format!("status_{status}"))),
            attempts: self.attempts,
            fallbacks: self.fallbacks,
            usage,
            tokens_estimated: estimated,
            cost_usd: cost,
            latency,
            ttft: ttfb,
            upstream,
            memories_recalled: self.recalled.len() as u32,
            recalled: (!self.recalled.is_empty()).then(|| recalled_json(&self.recalled)),
            memories_captured: u32::from(captured),
            memory_error: self.memory_error,
            supermemory: self.supermemory.take(),
            bytes_in: self.bytes_in,
            bytes_out,
            finish_reason: observed.finish_reason,
            key_spend,
        };
        metrics::record(&record);
        let journal = self.services.journal();
        if self.services.snapshot().config.record_requests {
            journal.record(record);
        } else if let (Some(key_id), Some(spend)) = (record.key_id, record.key_spend) {
            journal.key_spend(key_id, spend);
        }
    }
}

/// The recalled memories as the databank keeps them: `[{"id", "score"}]`.
fn recalled_json(recalled: &[(String, f32)]) -> String {
    let list: Vec<serde_json::Value> = recalled
        .iter()
        .map(|(id, score)| serde_json::json!({ "id": id, "score": (f64::from(*score) * 1e4).round() / 1e4 }))
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn estimate(bytes: u64) -> u64 {
    wire::tokens::estimate(bytes as usize)
}

/// The status recorded for a client that went away (nginx's "client closed request").
pub const CLIENT_CLOSED: u16 = 499;

/// A request whose handler was dropped before it finished (the client went away while
/// the gateway waited on the upstream or a plugin) is still logged, recorded and paid.
impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.finished {
            self.attempt_ended();
            self.error.get_or_insert("client_disconnected");
            self.finish(CLIENT_CLOSED, Observed::default(), 0, None);
        }
    }
}
