//! What every request reads: the current config and the router built from it,
//! swapped atomically on reload. A request holds the snapshot it started with until it
//! ends, so a reload never changes a request midway.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::routing::{Router, UpstreamClients};

pub struct Snapshot {
    pub config: Config,
    pub router: Router,
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
}

impl AppState {
    pub fn new(config: Config) -> Self {
        let clients = UpstreamClients::default();
        let snapshot = Snapshot::build(config, &clients);
        Self { inner: Arc::new(Inner { current: ArcSwap::from_pointee(snapshot), clients }) }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// Makes `config` current for every request that starts from now on.
    pub fn apply(&self, config: Config) {
        let snapshot = Snapshot::build(config, &self.inner.clients);
        self.inner.current.store(Arc::new(snapshot));
    }
}

impl Snapshot {
    fn build(config: Config, clients: &UpstreamClients) -> Self {
        let router = Router::new(&config, clients);
        Self { config, router, loaded_at: SystemTime::now() }
    }
}
