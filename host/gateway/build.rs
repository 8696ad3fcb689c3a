//! Embeds the built-in plugins (`plugins/dist/*.wasm`, built by `cargo xtask`) in the
//! binary, so it runs with any config and no plugin folder. A plugin not built yet is
//! left out with a warning: the gateway then needs the folder, as before.

use std::fmt::Write;
use std::path::PathBuf;

/// The built-in plugins' files (config/plugins.rs names them).
const BUILT_IN: [&str; 7] = [
    "claude_code_detector.wasm",
    "codex_detector.wasm",
    "header_detector.wasm",
    "system_prompt_injector.wasm",
    "anthropic_adapter.wasm",
    "openai_adapter.wasm",
    "gemini_adapter.wasm",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dist = manifest.join("../../plugins/dist");
    let mut code = String::from(
        "/// The built-in plugins: file name and component bytes.\npub const FILES: &[(&str, &[u8])] = &[\n",
    );
    let mut missing = Vec::new();
    for file in BUILT_IN {
        let path = dist.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        match path.canonicalize() {
            Ok(path) => writeln!(code, "    ({file:?}, include_bytes!({:?})),", path.display().to_string())?,
            Err(_) => missing.push(file),
        }
    }
    code.push_str("];\n");
    if !missing.is_empty() {
        println!(
            "cargo:warning=built-in plugins not built yet, left out of the binary: {} (cargo xtask builds them)",
            missing.join(", ")
        );
    }
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR")?).join("builtin_plugins.rs"), code)?;
    Ok(())
}
