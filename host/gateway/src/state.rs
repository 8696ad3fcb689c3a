//! What every request reads: the current config, the router built from it and the
//! loaded plugins, swapped atomically on reload. A request holds the snapshot it
//! started with until it ends, so a reload never changes a request midway.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::keys::KeyStore;
use crate::memory::MemoryStore;
use crate::plugins::{PluginHost, PluginSet};
use crate::routing::{Router, UpstreamClients};
use crate::storage::Database;
use crate::storage::writer::Writer;

pub struct Snapshot {
    pub config: Arc<Config>,
    pub router: Arc<Router>,
    pub plugins: Arc<PluginSet>,
    pub loaded_at: SystemTime,
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Snapshot>,
    /// Outlives snapshots: connection pools and cookies survive reloads.
    clients: UpstreamClients,
    plugin_host: PluginHost,
    database: Database,
    /// Request records and captured memories on their way into the database.
    writer: Writer,
    keys: KeyStore,
    memories: MemoryStore,
    /// The last config reload that failed, and why (shown by the admin API).
    reload_error: std::sync::Mutex<Option<String>>,
}

impl AppState {
    /// Opens the database, loads the keys and the plugins `config` names, and makes it
    /// current.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let database = Database::open(&config.database_path)?;
        let writer = Writer::start(&database, config.analytics_queue_size)?;
        let keys = KeyStore::load(&database)?;
        let memories = MemoryStore::new(&database);
        let plugin_host = PluginHost::new(&config.plugins)?;
        let plugins = Arc::new(plugin_host.load_set(&config.plugins, None).await);
        let clients = UpstreamClients::default();
        let snapshot = Snapshot::build(config, plugins, &clients);
        Ok(Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(snapshot),
                clients,
                plugin_host,
                database,
                writer,
                keys,
                memories,
                reload_error: std::sync::Mutex::new(None),
            }),
        })
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    pub fn plugin_host(&self) -> &PluginHost {
        &self.inner.plugin_host
    }

    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    pub fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    pub fn keys(&self) -> &KeyStore {
        &self.inner.keys
    }

    pub fn memories(&self) -> &MemoryStore {
        &self.inner.memories
    }

    /// Makes `config` current for every request that starts from now on, reusing the
    /// plugins that did not change.
    pub async fn apply(&self, config: Config) {
        let previous = self.snapshot();
        let plugins = Arc::new(self.inner.plugin_host.load_set(&config.plugins, Some(&previous.plugins)).await);
        self.store(Snapshot::build(config, plugins, &self.inner.clients));
    }

    /// Reloads the plugins of the current config (a plugin file changed).
    pub async fn reload_plugins(&self) {
        let previous = self.snapshot();
        let plugins =
            Arc::new(self.inner.plugin_host.load_set(&previous.config.plugins, Some(&previous.plugins)).await);
        self.store(Snapshot {
            config: previous.config.clone(),
            router: previous.router.clone(),
            plugins,
            loaded_at: SystemTime::now(),
        });
    }

    fn store(&self, snapshot: Snapshot) {
        self.inner.current.store(Arc::new(snapshot));
    }

    pub fn set_reload_error(&self, error: Option<String>) {
        *self.inner.reload_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    pub fn reload_error(&self) -> Option<String> {
        self.inner.reload_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Snapshot {
    fn build(config: Config, plugins: Arc<PluginSet>, clients: &UpstreamClients) -> Self {
        let router = Arc::new(Router::new(&config, clients));
        Self { config: Arc::new(config), router, plugins, loaded_at: SystemTime::now() }
    }
}
