//! The running gateway: the services, the plugin host and the upstream connection
//! pools, wired together at start and rewired on reload. The only module that knows
//! [`AppState`]; everything below it is handed the few services it uses.

pub mod logging;
pub mod reload;
pub mod server;

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::plugins::{PluginHost, PluginSet};
use crate::services::routing::{Router, UpstreamClients};
use crate::services::{Services, Snapshot};
use crate::storage::Database;

#[derive(Clone)]
pub struct AppState {
    services: Services,
    inner: Arc<Inner>,
}

struct Inner {
    /// Outlives snapshots: connection pools and cookies survive reloads.
    clients: UpstreamClients,
    plugin_host: PluginHost,
}

impl AppState {
    /// Opens the database, loads the keys and the plugins `config` names, and makes it
    /// current.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let database = Database::open(&config.database_path)?;
        let plugin_host = PluginHost::new(&config.plugins)?;
        let plugins = Arc::new(plugin_host.load_set(&config.plugins, None).await);
        let clients = UpstreamClients::default();
        let queue_size = config.analytics_queue_size;
        let services = Services::open(database, queue_size, snapshot(config, plugins, &clients))?;
        crate::pipeline::own::start(&services);
        Ok(Self { services, inner: Arc::new(Inner { clients, plugin_host }) })
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Makes `config` current for every request that starts from now on, reusing the
    /// plugins that did not change.
    pub async fn apply(&self, config: Config) {
        let previous = self.services.snapshot();
        let plugins = Arc::new(self.inner.plugin_host.load_set(&config.plugins, Some(&previous.plugins)).await);
        self.services.publish(snapshot(config, plugins, &self.inner.clients));
    }

    /// Reloads the plugins of the current config (a plugin file changed).
    pub async fn reload_plugins(&self) {
        let previous = self.services.snapshot();
        let plugins =
            Arc::new(self.inner.plugin_host.load_set(&previous.config.plugins, Some(&previous.plugins)).await);
        self.services.publish(Snapshot {
            config: previous.config.clone(),
            router: previous.router.clone(),
            plugins,
            loaded_at: SystemTime::now(),
        });
    }
}

fn snapshot(config: Config, plugins: Arc<PluginSet>, clients: &UpstreamClients) -> Snapshot {
    let router = Arc::new(Router::new(&config, clients));
    Snapshot { config: Arc::new(config), router, plugins, loaded_at: SystemTime::now() }
}
