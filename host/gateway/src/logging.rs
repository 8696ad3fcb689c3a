//! Structured logs on stderr: human-readable by default, JSON with `--json-logs` or
//! `litellm_settings.json_logs: true`. `MEMORY_PROXY_LOG` (or `RUST_LOG`) filters.

use tracing_subscriber::EnvFilter;

pub fn init(json: bool, verbose: bool) {
    let default = if verbose { "memory_proxy=debug,info" } else { "info" };
    let filter = EnvFilter::try_from_env("MEMORY_PROXY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        builder.init();
    }
}
