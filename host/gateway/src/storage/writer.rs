//! The batching writer: requests hand their records (and the memories their turns
//! leave) to a bounded queue and move on; a dedicated thread writes them in batches
//! (one transaction per batch window), with the hourly rollups and the keys' running
//! spend in the same transaction.
//!
//! What a crash can lose: the records still queued or in the batch being gathered, at
//! most one batch window (50 ms) of traffic. A graceful shutdown flushes everything.
//! A full queue drops the record (counted, visible in /metrics) rather than making a
//! request wait.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// foldhash: the writer hashes every record's scope values; SipHash showed in its profile.
use foldhash::{HashMap, HashMapExt};
use rusqlite::{OptionalExtension, Transaction, params};

use super::Database;
use crate::analytics::{KeySpend, Record, Totals};
use crate::histogram::Histogram;
use crate::memory::{self, NewMemory};

/// How long the writer gathers records before committing them together.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
const MAX_BATCH: usize = 2_000;
pub const DEFAULT_QUEUE: usize = 50_000;

enum Command {
    Record(Box<Record>),
    /// A key's spend alone, when requests are not logged (`disable_spend_logs`):
    /// budgets must survive a restart all the same.
    KeySpend(String, KeySpend),
    /// A memory a finished turn left.
    Memory(Box<NewMemory>),
    /// Commit what is queued, then answer.
    Flush(mpsc::Sender<()>),
    Stop,
}

pub struct Writer {
    sender: SyncSender<Command>,
    queued: Arc<AtomicUsize>,
    dropped: AtomicU64,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    pub fn start(database: &Database, capacity: usize) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let mut connection = database.connect()?;
        let counter = queued.clone();
        let thread = std::thread::Builder::new().name("analytics-writer".into()).spawn(move || {
            let mut batch = Vec::new();
            let mut spends = Vec::new();
            let mut memories = Vec::new();
            let mut flushes = Vec::new();
            let mut stopping = false;
            let mut behind = false;
            while !stopping {
                let Ok(first) = receiver.recv() else { break };
                // One wake-up per window rather than one per record (a thread woken per
                // request costs the request path more than the insert): sleep through
                // the window, then take what arrived. A flush or stop, or a backlog,
                // skips the wait.
                if !behind && !matches!(first, Command::Flush(_) | Command::Stop) {
                    std::thread::sleep(BATCH_WINDOW);
                }
                let mut next = Some(first);
                while let Some(command) = next.take() {
                    match command {
                        Command::Record(record) => {
                            counter.fetch_sub(1, Ordering::Relaxed);
                            batch.push(*record);
                        }
                        Command::KeySpend(id, spend) => {
                            counter.fetch_sub(1, Ordering::Relaxed);
                            spends.push((id, spend));
                        }
                        Command::Memory(memory) => {
                            counter.fetch_sub(1, Ordering::Relaxed);
                            memories.push(*memory);
                        }
                        Command::Flush(reply) => flushes.push(reply),
                        Command::Stop => stopping = true,
                    }
                    if batch.len() + spends.len() + memories.len() >= MAX_BATCH {
                        break;
                    }
                    next = receiver.try_recv().ok();
                }
                behind = batch.len() + spends.len() + memories.len() >= MAX_BATCH;
                if !batch.is_empty() || !spends.is_empty() || !memories.is_empty() {
                    if let Err(error) = write_batch(&mut connection, &batch, &spends, &memories) {
                        tracing::error!(
                            records = batch.len(),
                            memories = memories.len(),
                            "batch not written: {error:#}"
                        );
                    }
                    batch.clear();
                    spends.clear();
                    memories.clear();
                }
                for reply in flushes.drain(..) {
                    let _ = reply.send(());
                }
            }
        })?;
        Ok(Self { sender, queued, dropped: AtomicU64::new(0), thread: Mutex::new(Some(thread)) })
    }

    /// Queues a record; never blocks. A full queue drops it and counts the drop.
    pub fn submit(&self, record: Record) {
        self.enqueue(Command::Record(Box::new(record)));
    }

    /// Queues a memory to store.
    pub fn submit_memory(&self, memory: NewMemory) {
        self.enqueue(Command::Memory(Box::new(memory)));
    }

    /// Queues a key's spend to persist, for requests that are not logged.
    pub fn submit_key_spend(&self, key_id: String, spend: KeySpend) {
        self.enqueue(Command::KeySpend(key_id, spend));
    }

    fn enqueue(&self, command: Command) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(command) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "write queue full: request records or memories dropped");
                }
            }
        }
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let (reply, done) = mpsc::channel();
        if self.sender.send(Command::Flush(reply)).is_ok() {
            let _ = tokio::task::spawn_blocking(move || done.recv_timeout(Duration::from_secs(30))).await;
        }
    }

    /// Commits what is queued and stops the thread (graceful shutdown).
    pub fn stop(&self) {
        let _ = self.sender.send(Command::Stop);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }

    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(3_600_000)
}

fn write_batch(
    connection: &mut rusqlite::Connection,
    batch: &[Record],
    spends: &[(String, KeySpend)],
    memories: &[NewMemory],
) -> anyhow::Result<()> {
    let transaction = connection.transaction()?;
    insert_records(&transaction, batch)?;
    for memory in memories {
        memory::store::insert(&transaction, memory)?;
    }
    update_rollups(&transaction, batch)?;
    let logged = batch.iter().filter_map(|r| Some((r.key_id.as_deref()?, r.key_spend?)));
    update_key_spend(&transaction, logged.chain(spends.iter().map(|(id, spend)| (id.as_str(), *spend))))?;
    transaction.commit()?;
    Ok(())
}

fn insert_records(transaction: &Transaction<'_>, batch: &[Record]) -> anyhow::Result<()> {
    let mut insert = transaction.prepare_cached(
        "INSERT OR REPLACE INTO requests (id, started_at, user_id, project, client, key_id, model, deployment, provider,
            upstream_model, api, stream, status, error, attempts, fallbacks, input_tokens, output_tokens, cached_tokens,
            cache_write_tokens, reasoning_tokens, tokens_estimated, cost_usd, latency_ms, ttft_ms, upstream_ms, overhead_ms,
            memories_recalled, memories_captured, bytes_in, bytes_out, finish_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
            ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)",
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
        ])?;
    }
    Ok(())
}

/// The dimensions summaries group by, in the order `update_rollups` lists a record's
/// values; `all` totals every request.
const DIMENSIONS: [&str; 6] = ["user", "project", "model", "client", "key", "all"];

fn update_rollups(transaction: &Transaction<'_>, batch: &[Record]) -> anyhow::Result<()> {
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
fn update_key_spend<'a>(
    transaction: &Transaction<'_>,
    spends: impl Iterator<Item = (&'a str, KeySpend)>,
) -> anyhow::Result<()> {
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
