//! The key-value store a plugin sees through `kv-get` / `kv-set`: in memory, private to
//! the plugin, shared by its instances, bounded (least recently used entries go).

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

const MAX_ENTRIES: usize = 10_000;
const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 8 * 1024;

pub struct KvStore(Mutex<LruCache<String, String>>);

impl Default for KvStore {
    fn default() -> Self {
        Self(Mutex::new(LruCache::new(NonZeroUsize::new(MAX_ENTRIES).unwrap_or(NonZeroUsize::MIN))))
    }
}

impl KvStore {
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    /// Oversized keys or values are ignored: the store holds small facts, not data.
    pub fn set(&self, key: String, value: String) {
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            tracing::debug!(key_bytes = key.len(), value_bytes = value.len(), "plugin kv-set ignored: too large");
            return;
        }
        self.0.lock().unwrap_or_else(|p| p.into_inner()).put(key, value);
    }
}
