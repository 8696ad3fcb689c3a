//! What the host offers: logging, this plugin's config, a small key-value store.

use serde::de::DeserializeOwned;

use crate::bindings::memory_proxy::plugin::host as wit;

pub use wit::LogLevel;

/// Writes a line to the gateway's log, tagged with this plugin and the request.
pub fn log(level: LogLevel, message: &str) {
    wit::log(level, message);
}

pub fn debug(message: &str) {
    wit::log(LogLevel::Debug, message);
}

pub fn info(message: &str) {
    wit::log(LogLevel::Info, message);
}

pub fn warn(message: &str) {
    wit::log(LogLevel::Warn, message);
}

/// This plugin's `config` block from config.yaml, as JSON text (`{}` when absent).
pub fn config_json() -> String {
    wit::config()
}

/// This plugin's `config` block, deserialized. Missing fields take their serde
/// defaults; a malformed block is an error naming what is wrong.
pub fn config<T: DeserializeOwned>() -> Result<T, String> {
    serde_json::from_str(&wit::config()).map_err(|e| format!("invalid plugin config: {e}"))
}

/// The key-value store private to this plugin, shared by its instances, bounded and
/// kept in memory by the host.
pub mod kv {
    use super::wit;

    pub fn get(key: &str) -> Option<String> {
        wit::kv_get(key)
    }

    pub fn set(key: &str, value: &str) {
        wit::kv_set(key, value);
    }
}
