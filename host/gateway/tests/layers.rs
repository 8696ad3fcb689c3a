//! The crate's layering, checked on its own source: each top-level module may use only
//! the modules of lower layers (docs/architecture/README.md draws them), so
//! dependencies point one way and no circle can form among them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

/// Top-level modules by layer, highest first; a module may use modules of later rows.
const LAYERS: &[&[&str]] =
    &[&["cli"], &["app"], &["http"], &["pipeline"], &["services"], &["plugins"], &["config", "storage"], &["core"]];

fn layer_of(module: &str) -> usize {
    LAYERS.iter().position(|row| row.contains(&module)).unwrap_or_else(|| panic!("module `{module}` has no layer"))
}

/// The top-level modules `text` names through `crate::`.
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(group.len())].split(',').collect(),
            None => vec![rest],
        };
        for name in names {
            let name: String = name.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

fn sources(path: &Path, out: &mut Vec<(String, String)>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            sources(&entry.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push((path.display().to_string(), std::fs::read_to_string(path).unwrap()));
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().trim_end_matches(".rs").to_owned();
        if ["lib", "main"].contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        sources(&entry.path(), &mut files);
        for (file, text) in files {
            checked += 1;
            for used in used_modules(&text).into_iter().filter(|used| *used != name) {
                if layer_of(&used) <= layer_of(&name) {
                    violations.push(format!("{file}: `{name}` uses `{used}`, which is not below it"));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} files read");
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn app_state_stays_in_app() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let outside: Vec<&String> = files
        .iter()
        .filter(|(file, text)| {
            let inside = file.contains("/src/app/") || file.ends_with("/src/cli/mod.rs");
            !inside && text.contains("AppState")
        })
        .map(|(file, _)| file)
        .collect();
    assert!(outside.is_empty(), "AppState used outside app/: {outside:?}");
}

#[test]
fn the_check_reads_every_form_of_path() {
    let used =
        used_modules("use crate::core::api::ClientApi;\nuse crate::{config, storage::Database};\nx: crate::plugins::X");
    assert_eq!(used.into_iter().collect::<Vec<_>>(), ["config", "core", "plugins", "storage"]);
    assert!(layer_of("http") < layer_of("pipeline") && layer_of("config") == layer_of("storage"));
}
