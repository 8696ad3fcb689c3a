//! What requests use beyond their own data: the config snapshot they run on, the
//! virtual keys, the memory store, the journal that records them, the analytics
//! databank and the model router. Services sit below the pipeline and the HTTP layer
//! and know neither.

pub mod analytics;
mod in_flight;
pub mod journal;
pub mod keys;
pub mod memory;
pub mod routing;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use tokio::sync::{Notify, watch};

use crate::config::{Config, EmbeddingModel, MemoryBackend, SupermemoryConfig};
use crate::plugins::PluginSet;
use crate::storage::Database;
use journal::Journal;
use keys::KeyStore;
use memory::conversation::Conversations;
use memory::embedding::{CurrentEmbeddings, Embedder, EmbeddingCalls, Embeddings, Indexer};
use memory::supermemory::{Sender, Supermemory};
use memory::{Backend, Memories, MemoryStore};
use routing::Router;

/// How often memory retention is applied.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// What one request runs on: the config, the router built from it and the loaded
/// plugins. A request holds the snapshot it started with until it ends, so a reload
/// never changes a request midway.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub router: Arc<Router>,
    pub plugins: Arc<PluginSet>,
    pub loaded_at: SystemTime,
}

/// The long-lived services, shared by every request (cheap to clone).
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Snapshot>,
    database: Database,
    journal: Journal,
    keys: KeyStore,
    memories: Memories,
    conversations: Conversations,
    /// Sends captured memories on to Supermemory, wherever the config sends them.
    supermemory_sender: Sender,
    supermemory_config: watch::Sender<Option<SupermemoryConfig>>,
    /// What the local store embeds with, as the current config says.
    embeddings: CurrentEmbeddings,
    /// The embedded model, loaded the first time a config asks for it.
    local_model: OnceLock<Option<Arc<Embedder>>>,
    /// How an embedding model of `model_list` is called (set at start: [`Self::connect_embeddings`]).
    embedding_calls: OnceLock<Arc<dyn EmbeddingCalls>>,
    /// Embeds new memories of the local store.
    indexer: Indexer,
    /// Wakes the fact extraction worker (when one runs: [`memory::facts::start`]).
    extraction: Arc<Notify>,
    /// The last config reload that failed, and why (shown by the admin API).
    reload_error: Mutex<Option<String>>,
    /// Model requests in flight, and their cap.
    in_flight: in_flight::InFlight,
}

impl Services {
    /// Opens the database's services; `snapshot` serves the first requests.
    pub fn open(database: Database, queue_size: usize, snapshot: Snapshot) -> anyhow::Result<Self> {
        let journal = Journal::start(&database, queue_size)?;
        let keys = KeyStore::load(&database)?;
        // Set below, from the config, once the services exist.
        let embeddings = CurrentEmbeddings::default();
        let local = MemoryStore::open_with(&database, embeddings.clone())?;
        let indexer = Indexer::start(database.clone(), embeddings.clone(), local.vectors());
        let memories = Memories { local, supermemory: Supermemory::new() };
        let conversations = Conversations::new(&database);
        let max_parallel_requests = snapshot.config.max_parallel_requests;
        let (supermemory_config, watched) = watch::channel(supermemory_of(&snapshot.config));
        let supermemory_sender = Sender::start(database.clone(), memories.supermemory.clone(), watched);
        let services = Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(snapshot),
                database,
                journal,
                keys,
                memories,
                conversations,
                supermemory_sender,
                supermemory_config,
                embeddings,
                local_model: OnceLock::new(),
                embedding_calls: OnceLock::new(),
                indexer,
                extraction: Arc::default(),
                reload_error: Mutex::new(None),
                in_flight: in_flight::InFlight::new(max_parallel_requests),
            }),
        };
        services.use_embeddings_of(&services.snapshot().config);
        services.start_retention();
        Ok(services)
    }

    /// How embedding models of `model_list` are called: the gateway's own requests.
    pub fn connect_embeddings(&self, calls: Arc<dyn EmbeddingCalls>) {
        let _ = self.inner.embedding_calls.set(calls);
        self.use_embeddings_of(&self.snapshot().config);
    }

    /// Makes the embeddings `config` names current: the embedded model (loaded the first
    /// time), an embedding model of `model_list`, or none (memory off, Supermemory, or
    /// `embedding_model: none`).
    fn use_embeddings_of(&self, config: &Config) {
        let local_store = config.memory.as_ref().filter(|m| m.backend == MemoryBackend::Local);
        let embeddings = match local_store.map(|m| &m.embedding_model) {
            None | Some(EmbeddingModel::Off) => None,
            Some(EmbeddingModel::Local) => {
                self.inner.local_model.get_or_init(memory::embedding::load_default).clone().map(Embeddings::Local)
            }
            Some(EmbeddingModel::Deployment(model)) => {
                let mut backing: Vec<String> = config
                    .deployments
                    .iter()
                    .filter(|d| &d.model_name == model)
                    .map(|d| format!("{}/{}", d.provider.name, d.upstream_model))
                    .collect();
                backing.sort_unstable();
                backing.dedup();
                let backing = backing.join(",");
                self.inner.embedding_calls.get().map(|calls| Embeddings::deployment(model, &backing, calls.clone()))
            }
        };
        self.inner.embeddings.store(embeddings.map(Arc::new));
    }

    /// A handle that does not keep the services alive.
    pub fn downgrade(&self) -> WeakServices {
        WeakServices(Arc::downgrade(&self.inner))
    }

    /// Applies the current config's memory retention soon after start, then every few
    /// minutes (a limit lowered on reload takes effect within that time).
    fn start_retention(&self) {
        let services = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RETENTION_EVERY);
            loop {
                every.tick().await;
                if let Some(keep) = services.snapshot().config.request_log_retention {
                    let cutoff = crate::core::time::now_ms() - keep.as_millis() as i64;
                    let forgotten =
                        services.database().with(move |c| analytics::query::forget_requests_before(c, cutoff)).await;
                    match forgotten {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(deleted, "requests past the log's retention deleted"),
                        Err(error) => tracing::warn!("request log retention failed: {error:#}"),
                    }
                }
                let retention = services.snapshot().config.memory.as_ref().map(|m| m.retention);
                match services.local_memories().enforce(retention.unwrap_or_default()).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "memories past their retention deleted"),
                    Err(error) => tracing::warn!("memory retention failed: {error:#}"),
                }
            }
        });
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// Makes `snapshot` current for every request that starts from now on.
    pub fn publish(&self, snapshot: Snapshot) {
        if snapshot.config.max_parallel_requests != self.inner.in_flight.limit() {
            self.inner.in_flight.resize(snapshot.config.max_parallel_requests);
        }
        self.inner.supermemory_config.send_replace(supermemory_of(&snapshot.config));
        self.use_embeddings_of(&snapshot.config);
        self.inner.current.store(Arc::new(snapshot));
    }

    /// A place for one more model request, or None when the cap is reached.
    pub fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.in_flight.admit()
    }

    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub fn keys(&self) -> &KeyStore {
        &self.inner.keys
    }

    /// The memory backend `config` names (the local store when memory is off: the
    /// memory API still reads what was stored before).
    pub fn memory_backend<'a>(&'a self, config: &'a Config) -> Backend<'a> {
        let backend = config.memory.as_ref().map_or(&MemoryBackend::Local, |memory| &memory.backend);
        self.inner.memories.backend(backend)
    }

    /// Queues a finished turn's memory for the backend `remote` says: Supermemory
    /// through the durable outbox, or the local store: distilled into facts first when
    /// the config names an extraction model, else as it is (its `vector`, when the
    /// recall made one, saved for the indexer).
    pub fn remember(&self, memory: memory::NewMemory, remote: bool, vector: Option<memory::embedding::Embedded>) {
        if remote {
            self.inner.journal.remote_memory(memory);
            self.inner.supermemory_sender.notify.notify_one();
            return;
        }
        if self.snapshot().config.memory.as_ref().is_some_and(|m| m.extraction_model.is_some()) {
            self.inner.journal.extraction(memory);
            self.inner.extraction.notify_one();
            return;
        }
        if let Some(vector) = vector {
            self.inner.indexer.made(&memory.id, vector);
        }
        self.inner.journal.memory(memory);
        self.memories_stored();
    }

    /// Memories were stored without vectors: the indexer embeds them.
    pub fn memories_stored(&self) {
        self.inner.indexer.notify.notify_one();
    }

    /// The local store, whatever the config names (facts and retention are its own).
    pub fn local_memories(&self) -> &MemoryStore {
        &self.inner.memories.local
    }

    /// What wakes the fact extraction worker.
    pub fn extraction_notify(&self) -> Arc<Notify> {
        self.inner.extraction.clone()
    }

    pub fn conversations(&self) -> &Conversations {
        &self.inner.conversations
    }

    pub fn set_reload_error(&self, error: Option<String>) {
        *self.inner.reload_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    pub fn reload_error(&self) -> Option<String> {
        self.inner.reload_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// [`Services`] that may have ended (held by what the services themselves hold).
#[derive(Clone)]
pub struct WeakServices(std::sync::Weak<Inner>);

impl WeakServices {
    pub fn upgrade(&self) -> Option<Services> {
        self.0.upgrade().map(|inner| Services { inner })
    }
}

fn supermemory_of(config: &Config) -> Option<SupermemoryConfig> {
    match config.memory.as_ref().map(|memory| &memory.backend) {
        Some(MemoryBackend::Supermemory(settings)) => Some(settings.clone()),
        _ => None,
    }
}
