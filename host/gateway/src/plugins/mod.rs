//! WebAssembly plugins: detectors, a memory injector and provider adapters, loaded from
//! components built against the WIT API in wit/ (the SDK in plugins/sdk).
//!
//! - [`runtime`]: the engine, linker, sandbox and deadlines (every wasmtime setting);
//! - [`plugin`]: one loaded plugin, its warm instances and its sandboxed calls;
//! - [`host`]: loading a set of plugins from config, reusing what did not change;
//! - [`hooks`]: what the request pipeline calls (detect, inject, translate);

pub mod bindings;
mod breaker;
pub mod builtin;
pub mod hooks;
pub mod host;
mod kv;
pub mod metadata;
pub mod plugin;
pub mod runtime;
mod stats;
mod stderr;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

pub use host::PluginHost;
pub use plugin::{Kind, Plugin};
pub use stats::StatsView;

/// What every instance of one plugin shares: its name, its config, its key-value
/// store and its limits.
pub struct PluginShared {
    pub name: String,
    pub config_json: String,
    pub kv: Arc<kv::KvStore>,
    pub limits: SharedLimits,
}

pub struct SharedLimits {
    pub memory_bytes: usize,
}

/// Why a plugin call did not produce an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("paused after repeated failures; tried again in {} ms", .0.as_millis())]
    Paused(std::time::Duration),
    #[error("the input ({bytes} bytes) is larger than the plugin takes ({limit} bytes; raise its memory_mb)")]
    TooLarge { bytes: usize, limit: usize },
    #[error("no instance available within the deadline (the instance pool is exhausted)")]
    Busy,
    #[error("failed to initialise: {0}")]
    Init(String),
    #[error("{0}")]
    Trap(String),
    #[error("returned an error: {0}")]
    Reported(String),
}

/// The plugins of one config, by hook. Requests hold the set they started with, so
/// a reload never changes a request midway.
#[derive(Default)]
pub struct PluginSet {
    pub detectors: Vec<Arc<Plugin>>,
    pub memory_injector: Option<Arc<Plugin>>,
    pub provider_adapters: Vec<Arc<Plugin>>,
    /// Plugins that could not be loaded (or reloaded), and why.
    pub problems: Vec<LoadProblem>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadProblem {
    pub name: String,
    pub file: PathBuf,
    pub error: String,
    /// Unix seconds.
    pub at: u64,
    /// True when an earlier version of the plugin is still serving.
    pub kept_previous: bool,
}

impl LoadProblem {
    fn new(name: &str, file: &std::path::Path, error: String, kept_previous: bool) -> Self {
        let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Self { name: name.to_owned(), file: file.to_owned(), error, at, kept_previous }
    }
}

impl PluginSet {
    pub fn all(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.detectors.iter().chain(&self.memory_injector).chain(&self.provider_adapters)
    }

    /// The adapter serving `provider`, if one is loaded.
    pub fn adapter_for(&self, provider: &str) -> Option<&Arc<Plugin>> {
        self.provider_adapters.iter().find(|p| p.spec.providers.iter().any(|served| served == provider))
    }
}
