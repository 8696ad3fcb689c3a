//! Loading plugin sets: read, check the API version, compile (off the request path),
//! link, self-check. A plugin whose file and settings did not change is reused as is
//! (warm instances and statistics kept); one that fails to load keeps its previous
//! version when there is one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::hooks::{AdapterContext, Api, DetectRequest, InjectRequest, Scope};
use super::kv::KvStore;
use super::plugin::{Kind, Plugin};
use super::runtime::PluginRuntime;
use super::{LoadProblem, PluginSet, PluginShared, SharedLimits, metadata};
use crate::config::plugins::{PluginSpec, PluginsConfig};

pub struct PluginHost {
    pub runtime: Arc<PluginRuntime>,
    /// Each plugin's key-value store, by name: it outlives reloads of the plugin.
    kv: Mutex<HashMap<String, Arc<KvStore>>>,
}

impl PluginHost {
    pub fn new(config: &PluginsConfig) -> anyhow::Result<Self> {
        let runtime = PluginRuntime::new(config.cache_directory.as_deref())?;
        Ok(Self { runtime: Arc::new(runtime), kv: Mutex::new(HashMap::new()) })
    }

    /// The plugin set for `config`. Never fails: what cannot load is reported in
    /// [`PluginSet::problems`] (and logged), and the gateway serves without it.
    pub async fn load_set(&self, config: &PluginsConfig, previous: Option<&PluginSet>) -> PluginSet {
        let mut set = PluginSet::default();
        for spec in &config.detectors {
            if let Some(plugin) = self.load_or_keep(spec, Kind::Detector, config, previous, &mut set.problems).await {
                set.detectors.push(plugin);
            }
        }
        if let Some(spec) = &config.memory_injector {
            set.memory_injector =
                self.load_or_keep(spec, Kind::MemoryInjector, config, previous, &mut set.problems).await;
        }
        for spec in &config.provider_adapters {
            if let Some(plugin) =
                self.load_or_keep(spec, Kind::ProviderAdapter, config, previous, &mut set.problems).await
            {
                set.provider_adapters.push(plugin);
            }
        }
        set
    }

    async fn load_or_keep(
        &self,
        spec: &PluginSpec,
        kind: Kind,
        config: &PluginsConfig,
        previous: Option<&PluginSet>,
        problems: &mut Vec<LoadProblem>,
    ) -> Option<Arc<Plugin>> {
        let earlier = previous.and_then(|set| set.all().find(|p| p.spec.name == spec.name && p.kind == kind));
        match self.load(spec, kind, config.max_failures, earlier).await {
            Ok(plugin) => Some(plugin),
            Err(error) => {
                let kept = earlier.filter(|p| p.spec == *spec).cloned();
                tracing::error!(
                    plugin = %spec.name,
                    file = %spec.file.display(),
                    kept_previous = kept.is_some(),
                    "plugin not loaded: {error}"
                );
                problems.push(LoadProblem::new(&spec.name, &spec.file, error, kept.is_some()));
                kept
            }
        }
    }

    async fn load(
        &self,
        spec: &PluginSpec,
        kind: Kind,
        max_failures: u32,
        earlier: Option<&Arc<Plugin>>,
    ) -> Result<Arc<Plugin>, String> {
        let (bytes, origin) = match tokio::fs::read(&spec.file).await {
            Ok(bytes) => (bytes, "file"),
            // No such file: the built-in plugin of that name, if there is one.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let name = spec.file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                match super::builtin::component(name) {
                    Some(bytes) => (bytes.to_vec(), "built-in"),
                    None => return Err(format!("cannot read {}: {error}", spec.file.display())),
                }
            }
            Err(error) => return Err(format!("cannot read {}: {error}", spec.file.display())),
        };
        let hash = hex(&Sha256::digest(&bytes));
        if let Some(earlier) = earlier.filter(|p| p.hash == hash && p.spec == *spec && !p.is_paused()) {
            return Ok(earlier.clone());
        }
        let metadata = metadata::read(&bytes)?;
        let runtime = self.runtime.clone();
        // Compiling takes 50 ms to a second: never on a request's thread.
        let component = tokio::task::spawn_blocking(move || runtime.compile(&bytes))
            .await
            .map_err(|e| format!("compilation did not finish: {e}"))?
            .map_err(|e| format!("cannot compile: {e:#}"))?;
        let shared = Arc::new(PluginShared {
            name: spec.name.clone(),
            config_json: spec.config_json.clone(),
            kv: self.kv_for(&spec.name),
            limits: SharedLimits { memory_bytes: spec.memory_bytes },
        });
        let plugin =
            Plugin::link(self.runtime.clone(), spec.clone(), kind, metadata, hash, &component, shared, max_failures)?;
        self_check(&plugin).await.map_err(|e| format!("failed its self-check: {e}"))?;
        tracing::info!(
            plugin = %spec.name,
            version = %plugin.metadata.version,
            api = %plugin.metadata.api,
            hash = %&plugin.hash[..12],
            origin,
            "plugin loaded"
        );
        Ok(Arc::new(plugin))
    }

    fn kv_for(&self, name: &str) -> Arc<KvStore> {
        self.kv.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_owned()).or_default().clone()
    }
}

/// One instance, initialised from the plugin's config, answers one harmless call
/// without trapping. An error value is fine: only a broken plugin traps.
async fn self_check(plugin: &Plugin) -> Result<(), super::PluginError> {
    plugin
        .call(0, async |warm| match plugin.kind {
            Kind::Detector => {
                let request = DetectRequest {
                    api: Api::OpenaiChat,
                    model: String::new(),
                    headers: Vec::new(),
                    system_excerpt: String::new(),
                    user_excerpt: String::new(),
                };
                warm.instance.detect(&mut warm.store, &request).await.map(|_| ())
            }
            Kind::MemoryInjector => {
                let request = InjectRequest {
                    api: Api::OpenaiChat,
                    scope: Scope { user: String::new(), project: None, client: None },
                    query: String::new(),
                    memories: Vec::new(),
                    token_budget: 0,
                };
                warm.instance.inject(&mut warm.store, &request).await.map(|_| ())
            }
            Kind::ProviderAdapter => {
                let context = AdapterContext {
                    client_api: Api::OpenaiChat,
                    provider: String::new(),
                    upstream_model: String::new(),
                    drop_params: false,
                    include_usage: false,
                    now: 0,
                };
                warm.instance.translate_error(&mut warm.store, &context, 500, "{}").await.map(|_| ())
            }
        })
        .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
