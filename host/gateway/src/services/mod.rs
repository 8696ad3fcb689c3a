//! What requests use beyond their own data: the config snapshot they run on, the
//! virtual keys, the memory store, the journal that records them, the analytics
//! databank and the model router. Services sit below the pipeline and the HTTP layer
//! and know neither.

pub mod analytics;
pub mod journal;
pub mod keys;
pub mod memory;
pub mod routing;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::plugins::PluginSet;
use crate::storage::Database;
use journal::Journal;
use keys::KeyStore;
use memory::MemoryStore;
use memory::conversation::Conversations;
use routing::Router;

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
    memories: MemoryStore,
    conversations: Conversations,
    /// The last config reload that failed, and why (shown by the admin API).
    reload_error: Mutex<Option<String>>,
}

impl Services {
    /// Opens the database's services; `snapshot` serves the first requests.
    pub fn open(database: Database, queue_size: usize, snapshot: Snapshot) -> anyhow::Result<Self> {
        let journal = Journal::start(&database, queue_size)?;
        let keys = KeyStore::load(&database)?;
        let memories = MemoryStore::new(&database);
        let conversations = Conversations::new(&database);
        Ok(Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(snapshot),
                database,
                journal,
                keys,
                memories,
                conversations,
                reload_error: Mutex::new(None),
            }),
        })
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// Makes `snapshot` current for every request that starts from now on.
    pub fn publish(&self, snapshot: Snapshot) {
        self.inner.current.store(Arc::new(snapshot));
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

    pub fn memories(&self) -> &MemoryStore {
        &self.inner.memories
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
