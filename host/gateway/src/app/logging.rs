//! Structured logs on stderr: human-readable by default, JSON with `--json-logs` or
//! `litellm_settings.json_logs: true`. `MEMORY_PROXY_LOG` (or `RUST_LOG`) filters.

use std::sync::Mutex;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// The log writer thread's guard, until [`finish`] drops it.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Installs the subscriber. Lines are written by a thread of their own: a request
/// never waits on stderr (a pipe, a slow terminal), and lines that arrive together
/// leave in one write.
pub fn init(json: bool, verbose: bool) {
    // notify reports at info what re-watching a replaced config.yaml routinely meets.
    let default = if verbose { "memory_proxy=debug,info,notify=warn" } else { "info,notify=warn" };
    let filter = EnvFilter::try_from_env("MEMORY_PROXY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stderr()));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi).with_target(false);
    if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        builder.init();
    }
    *WRITER.lock().unwrap_or_else(|p| p.into_inner()) = Some(guard);
}

/// Writes out the lines still queued; call before the process exits.
pub fn finish() {
    drop(WRITER.lock().unwrap_or_else(|p| p.into_inner()).take());
}
