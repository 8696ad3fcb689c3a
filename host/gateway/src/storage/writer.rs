//! The batching writer: requests hand what they leave behind to a bounded queue and
//! move on; a dedicated thread writes it in batches, one transaction per batch window.
//! What an item is and how a batch is written is the caller's (the journal's); this
//! module owns the queue, the window, flushes and shutdown.
//!
//! What a crash can lose: the items still queued or in the batch being gathered, at
//! most one batch window (50 ms) of traffic. A graceful shutdown flushes everything.
//! A full queue drops the item (counted, visible in /metrics) rather than making a
//! request wait.

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
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl<T: Send + 'static> Writer<T> {
    /// Starts the writer thread (named `name`) over its own connection.
    pub fn start(database: &Database, name: &str, capacity: usize, write: WriteBatch<T>) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let mut connection = database.connect()?;
        let counter = queued.clone();
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
                    let written = connection.transaction().map_err(anyhow::Error::from).and_then(|transaction| {
                        write(&transaction, &batch)?;
                        Ok(transaction.commit()?)
                    });
                    if let Err(error) = written {
                        tracing::error!(items = batch.len(), "batch not written: {error:#}");
                    }
                    batch.clear();
                }
                for reply in flushes.drain(..) {
                    let _ = reply.send(());
                }
            }
        })?;
        Ok(Self { sender, queued, dropped: AtomicU64::new(0), thread: Mutex::new(Some(thread)) })
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
}
