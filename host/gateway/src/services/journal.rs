//! The journal: what a finished request leaves in the database (its analytics record
//! with the hourly rollups, its key's running spend, the memory its turn leaves, what
//! memory added to its conversation),
//! queued by the request path and written by the storage writer in one transaction
//! per batch window.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

// foldhash: the journal hashes every record's scope values; SipHash showed in its profile.
use foldhash::{HashMap, HashMapExt};
use rusqlite::{OptionalExtension, Transaction, params};

use super::analytics::{KeySpend, Record, Totals};
use super::memory::conversation::{self, Injected};
use super::memory::{self, NewMemory};
use crate::core::histogram::Histogram;
use crate::core::time::now_ms;
use crate::storage::Database;
use crate::storage::writer::Writer;

pub enum Entry {
    Record(Box<Record>),
    /// A key's spend alone, when requests are not logged (`disable_spend_logs`):
    /// budgets must survive a restart all the same.
    KeySpend(String, KeySpend),
    /// A memory a finished turn left.
    Memory(Box<NewMemory>),
    /// A memory for a remote backend, into the outbox its sender drains.
    RemoteMemory(Box<NewMemory>),
    /// A finished turn for the extraction model, into the queue its worker drains.
    Extraction(Box<NewMemory>),
    /// What memory added to a conversation, by its key.
    Conversation(String, Arc<Injected>),
}

/// The writer of journal entries.
pub struct Journal(Writer<Entry>);

impl Journal {
    pub fn start(database: &Database, capacity: usize) -> anyhow::Result<Self> {
        Writer::start(database, "journal-writer", capacity, write_batch).map(Self)
    }

    /// Queues a request's record; never blocks.
    pub fn record(&self, record: Record) {
        self.submit(Entry::Record(Box::new(record)));
    }

    /// Queues a memory to store.
    pub fn memory(&self, memory: NewMemory) {
        self.submit(Entry::Memory(Box::new(memory)));
    }

    /// Queues a memory for Supermemory (the outbox keeps it until it is sent).
    pub fn remote_memory(&self, memory: NewMemory) {
        self.submit(Entry::RemoteMemory(Box::new(memory)));
    }

    /// Queues a finished turn to distil into facts (the queue keeps it until then).
    pub fn extraction(&self, turn: NewMemory) {
        self.submit(Entry::Extraction(Box::new(turn)));
    }

    /// Queues a conversation's new state.
    pub fn conversation(&self, key: String, state: Arc<Injected>) {
        self.submit(Entry::Conversation(key, state));
    }

    /// Queues a key's spend to persist, for requests that are not logged.
    pub fn key_spend(&self, key_id: String, spend: KeySpend) {
        self.submit(Entry::KeySpend(key_id, spend));
    }
}

impl Deref for Journal {
    type Target = Writer<Entry>;

    fn deref(&self) -> &Writer<Entry> {
        &self.0
    }
}

pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(3_600_000)
}

/// One batch of entries, in the writer's transaction: the records with their rollups,
/// the memories, and each key's latest spend.
fn write_batch(transaction: &Transaction<'_>, entries: &[Entry]) -> anyhow::Result<()> {
    let mut records = Vec::new();
    let mut spends = Vec::new();
    for entry in entries {
        match entry {
            Entry::Record(record) => {
                if let (Some(id), Some(spend)) = (record.key_id.as_deref(), record.key_spend) {
                    spends.push((id, spend));
                }
                records.push(&**record);
            }
            Entry::KeySpend(id, spend) => spends.push((id.as_str(), *spend)),
            Entry::Memory(memory) => {
                memory::store::insert(transaction, memory)?;
            }
            Entry::RemoteMemory(memory) => memory::supermemory::enqueue(transaction, memory)?,
            Entry::Extraction(turn) => memory::facts::enqueue(transaction, turn)?,
            Entry::Conversation(key, state) => conversation::store(transaction, key, state, now_ms())?,
        }
    }
    insert_records(transaction, &records)?;
    update_rollups(transaction, &records)?;
    update_key_spend(transaction, spends)
}

fn insert_records(transaction: &Transaction<'_>, batch: &[&Record]) -> anyhow::Result<()> {
    let mut insert = transaction.prepare_cached(
        "INSERT OR REPLACE INTO requests (id, started_at, user_id, project, client, key_id, model, deployment, provider,
            upstream_model, api, stream, status, error, attempts, fallbacks, input_tokens, output_tokens, cached_tokens,
            cache_write_tokens, reasoning_tokens, tokens_estimated, cost_usd, latency_ms, ttft_ms, upstream_ms, overhead_ms,
            memories_recalled, memories_captured, bytes_in, bytes_out, finish_reason, memory_error, supermemory,
            recalled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
            ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35)",
    )?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for r in batch {
        let usage = r.usage.as_ref();
        insert.execute(params![
            r.id,
            r.started_at_ms,
            r.user,
            r.project,
            r.client,
            r.key_id,
            r.model,
            r.deployment,
            r.provider,
            r.upstream_model,
            r.api,
            r.stream,
            r.status,
            r.error,
            r.attempts,
            r.fallbacks,
            usage.map(|u| u.input as i64),
            usage.map(|u| u.output as i64),
            usage.map(|u| u.cached as i64),
            usage.map(|u| u.cache_write as i64),
            usage.map(|u| u.reasoning as i64),
            r.tokens_estimated,
            r.cost_usd,
            ms(r.latency),
            r.ttft.map(ms),
            r.upstream.map(ms),
            r.overhead().map(ms),
            r.memories_recalled,
            r.memories_captured,
            r.bytes_in as i64,
            r.bytes_out as i64,
            r.finish_reason,
            r.memory_error,
            r.supermemory,
            r.recalled,
        ])?;
    }
    Ok(())
}

/// The dimensions summaries group by, in the order `update_rollups` lists a record's
/// values; `all` totals every request.
const DIMENSIONS: [&str; 6] = ["user", "project", "model", "client", "key", "all"];

fn update_rollups(transaction: &Transaction<'_>, batch: &[&Record]) -> anyhow::Result<()> {
    // Each record once into its combination of values, then each combination into every
    // dimension: a batch holds many records but few combinations.
    let mut combinations: HashMap<(i64, [&str; 6]), Totals> = HashMap::new();
    for r in batch {
        let values = [
            r.user.as_str(),
            r.project.as_deref().unwrap_or(""),
            r.model.as_str(),
            r.client.as_deref().unwrap_or(""),
            r.key_id.as_deref().unwrap_or(""),
            "",
        ];
        combinations.entry((hour_of(r.started_at_ms), values)).or_default().add(r);
    }
    let mut rollups: HashMap<(&str, i64, &str), Totals> = HashMap::new();
    for ((hour, values), combination) in &combinations {
        for (dimension, value) in DIMENSIONS.into_iter().zip(values) {
            rollups.entry((dimension, *hour, value)).or_default().merge(combination);
        }
    }
    let mut read = transaction
        .prepare_cached("SELECT latency_histogram FROM rollups WHERE dimension = ?1 AND hour = ?2 AND value = ?3")?;
    let mut upsert = transaction.prepare_cached(
        "INSERT INTO rollups (dimension, hour, value, requests, errors, truncated, retried, input_tokens, output_tokens,
            cached_tokens, cost_usd, unpriced, latency_ms_sum, latency_histogram)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (dimension, hour, value) DO UPDATE SET
            requests = requests + excluded.requests, errors = errors + excluded.errors,
            truncated = truncated + excluded.truncated, retried = retried + excluded.retried,
            input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
            cached_tokens = cached_tokens + excluded.cached_tokens, cost_usd = cost_usd + excluded.cost_usd,
            unpriced = unpriced + excluded.unpriced, latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,
            latency_histogram = excluded.latency_histogram",
    )?;
    for ((dimension, hour, value), mut rollup) in rollups {
        let existing: Option<Vec<u8>> = read.query_row(params![dimension, hour, value], |row| row.get(0)).optional()?;
        if let Some(bytes) = existing {
            rollup.latency.merge(&Histogram::from_bytes(&bytes));
        }
        upsert.execute(params![
            dimension,
            hour,
            value,
            rollup.requests,
            rollup.errors,
            rollup.truncated,
            rollup.retried,
            rollup.input_tokens,
            rollup.output_tokens,
            rollup.cached_tokens,
            rollup.cost,
            rollup.unpriced,
            rollup.latency_ms_sum,
            rollup.latency.to_bytes(),
        ])?;
    }
    Ok(())
}

/// The keys' spend as the request path last computed it (the in-memory value is the
/// authority; this persists it). Requests finish and queue in slightly different
/// orders, so the latest value is the one with the highest `total_spend`, which only
/// grows.
fn update_key_spend(transaction: &Transaction<'_>, spends: Vec<(&str, KeySpend)>) -> anyhow::Result<()> {
    let mut update = transaction.prepare_cached(
        "UPDATE virtual_keys SET spend = ?2, total_spend = ?3, budget_reset_at = ?4 WHERE id = ?1 AND total_spend <= ?3",
    )?;
    let mut latest: HashMap<&str, KeySpend> = HashMap::new();
    for (id, spend) in spends {
        let entry = latest.entry(id).or_insert(spend);
        if spend.total_spend >= entry.total_spend {
            *entry = spend;
        }
    }
    for (id, spend) in latest {
        update.execute(params![id, spend.spend, spend.total_spend, spend.budget_reset_at])?;
    }
    Ok(())
}
