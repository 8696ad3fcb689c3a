//! The built-in plugins, embedded in the binary by the build (`build.rs`): a config
//! needs no plugin folder. A file of the same name in the plugin folder wins, so a
//! folder adds plugins or overrides a built-in one.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// The embedded component of the built-in plugin file `name` (e.g. `codex_detector.wasm`).
pub fn component(name: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(file, _)| *file == name).map(|(_, bytes)| *bytes)
}
