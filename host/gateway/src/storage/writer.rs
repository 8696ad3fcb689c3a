//! The batching writer: requests hand what they leave behind to a bounded queue and
//! move on; a dedicated thread writes it in batches, one transaction per batch window.
//! What an item is and how a batch is written is the caller's (the journal's); this
//! module owns the queue, the window, flushes and shutdown.
//!
//! What a crash can lose: the items still queued or in the batch being gathered, at
//! most one batch window (50 ms) of traffic. A graceful shutdown flushes everything.
//! A full queue drops the item (counted, visible in /metrics) rather than making a
//! request wait.
//!
//! A batch the database refuses is never dropped silently. While the database cannot
//! write at all (a full disk, an I/O error, a lock), the batch is retried with a
//! back-off, the failure logged and counted, and new items queue behind it (the queue
//! bound still holds). When it refuses the batch for what is in it, each item is
//! written alone, and only the ones refused are left out, each logged and counted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Transaction;

use super::Database;

/// How long the writer gathers items before committing them together.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
const MAX_BATCH: usize = 2_000;

enum Command<T> {
    Write(T),
    /// Commit what is queued, then answer.
    Flush(mpsc::Sender<()>),
    Stop,
}

/// Writes one batch in the transaction the writer commits.
pub type WriteBatch<T> = fn(&Transaction<'_>, &[T]) -> anyhow::Result<()>;

pub struct Writer<T> {
    sender: SyncSender<Command<T>>,
    queued: Arc<AtomicUsize>,
    dropped: AtomicU64,
    health: Arc<Health>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// How the database has been taking the writes.
#[derive(Default)]
pub struct Health {
    /// Batch writes that failed (each retry counts).
    pub write_errors: AtomicU64,
    /// Items the database refused for what they hold, left out after being tried alone.
    pub refused: AtomicU64,
    /// The last write failed and its batch waits for a retry.
    pub failing: std::sync::atomic::AtomicBool,
}

/// Retries of a batch while stopping, before what it holds is given up (and logged):
/// a shutdown never hangs on a dead disk.
const RETRIES_WHEN_STOPPING: u32 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// True when the database failed as a whole (it may take the same batch later), not
/// because of what the batch holds.
fn is_transient(error: &anyhow::Error) -> bool {
    use rusqlite::ErrorCode::*;
    error.chain().any(|cause| match cause.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
            failure.code,
            DiskFull | SystemIoFailure | DatabaseBusy | DatabaseLocked | CannotOpen | ReadOnly | OutOfMemory
        ),
        _ => false,
    })
}

fn commit<T>(connection: &mut rusqlite::Connection, items: &[T], write: WriteBatch<T>) -> anyhow::Result<()> {
    let transaction = connection.transaction()?;
    write(&transaction, items)?;
    Ok(transaction.commit()?)
}

/// Writes `batch` until it is in, as the module says; empties it.
fn write_until_done<T>(
    connection: &mut rusqlite::Connection,
    batch: &mut Vec<T>,
    write: WriteBatch<T>,
    health: &Health,
    stopping: bool,
) {
    let mut attempt = 0u32;
    loop {
        let error = match commit(connection, batch, write) {
            Ok(()) => {
                if health.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(items = batch.len(), "the database takes writes again");
                }
                batch.clear();
                return;
            }
            Err(error) => error,
        };
        health.write_errors.fetch_add(1, Ordering::Relaxed);
        if !is_transient(&error) {
            // Something in the batch: each item alone, the refused ones told.
            for item in batch.drain(..) {
                if let Err(error) = commit(connection, std::slice::from_ref(&item), write) {
                    health.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("an item was refused by the database and left out: {error:#}");
                }
            }
            return;
        }
        health.failing.store(true, Ordering::Relaxed);
        if stopping && attempt >= RETRIES_WHEN_STOPPING {
            tracing::error!(
                items = batch.len(),
                "shutting down while the database refuses writes: these items are lost: {error:#}"
            );
            batch.clear();
            return;
        }
        if attempt.is_power_of_two() || attempt == 0 {
            tracing::error!(items = batch.len(), attempt, "the database refuses writes; retrying: {error:#}");
        }
        std::thread::sleep((Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(6))).min(MAX_BACKOFF));
        attempt += 1;
    }
}

impl<T: Send + 'static> Writer<T> {
    /// Starts the writer thread (named `name`) over its own connection.
    pub fn start(database: &Database, name: &str, capacity: usize, write: WriteBatch<T>) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let mut connection = database.connect()?;
        let counter = queued.clone();
        let health = Arc::new(Health::default());
        let writer_health = health.clone();
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut stopping = false;
            let mut behind = false;
            while !stopping {
                let Ok(first) = receiver.recv() else { break };
                // One wake-up per window rather than one per item (a thread woken per
                // request costs the request path more than the insert): sleep through
                // the window, then take what arrived. A flush or stop, or a backlog,
                // skips the wait.
                if !behind && matches!(first, Command::Write(_)) {
                    std::thread::sleep(BATCH_WINDOW);
                }
                let mut next = Some(first);
                while let Some(command) = next.take() {
                    match command {
                        Command::Write(item) => {
                            counter.fetch_sub(1, Ordering::Relaxed);
                            batch.push(item);
                        }
                        Command::Flush(reply) => flushes.push(reply),
                        Command::Stop => stopping = true,
                    }
                    if batch.len() >= MAX_BATCH {
                        break;
                    }
                    next = receiver.try_recv().ok();
                }
                behind = batch.len() >= MAX_BATCH;
                if !batch.is_empty() {
                    write_until_done(&mut connection, &mut batch, write, &writer_health, stopping);
                }
                for reply in flushes.drain(..) {
                    let _ = reply.send(());
                }
            }
        })?;
        Ok(Self { sender, queued, dropped: AtomicU64::new(0), health, thread: Mutex::new(Some(thread)) })
    }

    /// Queues an item; never blocks. A full queue drops it and counts the drop.
    pub fn submit(&self, item: T) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(Command::Write(item)) {
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

    pub fn health(&self) -> &Health {
        &self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FAILURES_LEFT: AtomicU64 = AtomicU64::new(0);

    /// Fails as a full disk does while FAILURES_LEFT lasts; refuses the item 13.
    fn write(transaction: &Transaction<'_>, items: &[i64]) -> anyhow::Result<()> {
        if FAILURES_LEFT.load(Ordering::Relaxed) > 0 {
            FAILURES_LEFT.fetch_sub(1, Ordering::Relaxed);
            let full = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL);
            return Err(rusqlite::Error::SqliteFailure(full, None).into());
        }
        for item in items {
            if *item == 13 {
                anyhow::bail!("item 13 is refused");
            }
            transaction.execute("INSERT INTO items (n) VALUES (?1)", [item])?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_batch_is_retried_and_a_bad_item_is_left_out_alone() {
        let dir = std::env::temp_dir().join(format!("writer-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database = Database::open(&dir.join("db.sqlite")).unwrap();
        database.connect().unwrap().execute("CREATE TABLE items (n INTEGER)", []).unwrap();
        let writer = Writer::start(&database, "test-writer", 100, write).unwrap();
        FAILURES_LEFT.store(3, Ordering::Relaxed);
        for n in [1, 2, 3] {
            writer.submit(n);
        }
        writer.flush().await;
        assert_eq!(writer.health().write_errors.load(Ordering::Relaxed), 3, "a full disk three times");
        assert!(!writer.health().failing.load(Ordering::Relaxed), "and then it took them");
        for n in [12, 13, 14] {
            writer.submit(n);
        }
        writer.flush().await;
        writer.stop();
        let written: Vec<i64> = database
            .connect()
            .unwrap()
            .prepare("SELECT n FROM items ORDER BY n")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(written, [1, 2, 3, 12, 14], "nothing dropped but the refused item");
        assert_eq!(writer.health().refused.load(Ordering::Relaxed), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
