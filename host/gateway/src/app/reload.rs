//! Hot reload: a debounced watcher on the plugin folder and on config.yaml. Changes
//! are applied one at a time by a single task: compile and self-check off the request
//! path, then swap the snapshot atomically. Requests in flight finish on the version
//! they started with; a broken file or config keeps the old one and says why.
//!
//! config.yaml is watched as a file, not through its folder: a folder often holds
//! files written all the time (a log the gateway's output is redirected to), and each
//! write would wake the watcher.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode, event::ModifyKind};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::AppState;
use crate::config::Config;

/// Long enough to gather the several events one copy or rename fires, short enough
/// that a new plugin is live well within a second.
const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Change {
    Config,
    Plugin,
}

/// Starts watching; the watcher lives as long as the returned task.
pub fn watch(state: AppState, config_path: PathBuf) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let config_path = std::path::absolute(&config_path)?;
    let mut plugin_dir = std::path::absolute(&state.services().snapshot().config.plugins.directory)?;
    let (changes, mut received) = mpsc::unbounded_channel::<Change>();

    let watched_config = config_path.clone();
    let classify_dir = plugin_dir.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        for event in events {
            if !matters(&event.kind) {
                continue;
            }
            for path in &event.paths {
                if let Some(change) = classify(path, &watched_config, &classify_dir) {
                    let _ = changes.send(change);
                }
            }
        }
    })?;
    debouncer.watch(&config_path, RecursiveMode::NonRecursive)?;
    if !plugin_dir.is_dir() {
        info!("no plugin folder at {}: the built-in plugins serve", plugin_dir.display());
    } else if let Err(e) = debouncer.watch(&plugin_dir, RecursiveMode::NonRecursive) {
        warn!("not watching the plugin folder {}: {e}", plugin_dir.display());
    }
    info!(config = %config_path.display(), plugins = %plugin_dir.display(), "watching for changes");

    Ok(tokio::spawn(async move {
        // The debouncer stops when dropped: it lives in this task.
        let mut debouncer = debouncer;
        while let Some(first) = received.recv().await {
            let mut batch = HashSet::from([first]);
            while let Ok(more) = received.try_recv() {
                batch.insert(more);
            }
            if batch.contains(&Change::Config) {
                // A save that renames a new file into place leaves the watch on the old
                // file: watch the path again, before reading it, so no later save is missed.
                let _ = debouncer.unwatch(&config_path);
                if let Err(e) = debouncer.watch(&config_path, RecursiveMode::NonRecursive) {
                    warn!("config.yaml is no longer watched ({e}); later changes need a restart");
                }
                reload_config(&state, &config_path).await;
                let directory =
                    std::path::absolute(&state.services().snapshot().config.plugins.directory).unwrap_or_default();
                if directory != plugin_dir {
                    let _ = debouncer.unwatch(&plugin_dir);
                    if let Err(e) = debouncer.watch(&directory, RecursiveMode::NonRecursive) {
                        warn!("not watching the plugin folder {}: {e}", directory.display());
                    }
                    plugin_dir = directory;
                }
            } else {
                state.reload_plugins().await;
            }
        }
    }))
}

async fn reload_config(state: &AppState, path: &Path) {
    match Config::load(path) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                warn!("{warning}");
            }
            state.apply(loaded.config).await;
            state.services().set_reload_error(None);
            info!(config = %path.display(), "config reloaded");
        }
        Err(problem) => {
            error!(config = %path.display(), "config not reloaded, the previous one stays: {problem}");
            state.services().set_reload_error(Some(problem.to_string()));
        }
    }
}

/// Writes, creations, renames and removals matter; reads (including our own) and
/// metadata changes do not.
fn matters(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// The change a path means, if any: the config file itself, or a `.wasm` in the plugin
/// folder. Hidden and temporary files (editors, partial copies) are ignored.
fn classify(path: &Path, config: &Path, plugin_dir: &Path) -> Option<Change> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') || name.ends_with('~') || [".tmp", ".swp", ".part"].iter().any(|s| name.ends_with(s)) {
        return None;
    }
    if path == config {
        return Some(Change::Config);
    }
    (path.parent() == Some(plugin_dir) && name.ends_with(".wasm")).then_some(Change::Plugin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_config_and_plugin_files_and_ignores_the_rest() {
        let config = Path::new("/etc/mp/config.yaml");
        let plugins = Path::new("/etc/mp/plugins");
        assert_eq!(classify(config, config, plugins), Some(Change::Config));
        assert_eq!(classify(Path::new("/etc/mp/plugins/a.wasm"), config, plugins), Some(Change::Plugin));
        for ignored in [
            "/etc/mp/plugins/.a.wasm",
            "/etc/mp/plugins/a.wasm.tmp",
            "/etc/mp/plugins/a.txt",
            "/etc/mp/other.yaml",
            "/etc/mp/config.yaml~",
        ] {
            assert_eq!(classify(Path::new(ignored), config, plugins), None, "{ignored}");
        }
    }
}
