//! The command line: `memory-proxy [--config ...]` serves; `memory-proxy report` prints
//! what the databank says; `memory-proxy memory ...` manages a scope's memories
//! ([`memory`]).

pub mod memory;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::warn;

use crate::app::{self, AppState, logging};
use crate::config::Config;
use crate::services::analytics::query::{self, Filters, GroupBy};
use crate::storage::Database;

#[derive(Parser, Debug)]
#[command(
    name = "memory-proxy",
    version,
    about = "A self-hosted LLM gateway with long-term memory per user and project"
)]
pub struct Cli {
    /// The config file (LiteLLM's proxy format plus our keys).
    #[arg(long, short, default_value = "config.yaml", env = "MEMORY_PROXY_CONFIG", global = true)]
    pub config: PathBuf,
    /// Address to listen on. Keep 127.0.0.1 unless a master key is set.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), env = "MEMORY_PROXY_HOST")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one; the log says which).
    #[arg(long, default_value_t = 8764, env = "MEMORY_PROXY_PORT")]
    pub port: u16,
    /// Log as JSON lines (also `litellm_settings.json_logs: true`).
    #[arg(long)]
    pub json_logs: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Prints usage and cost from the databank, grouped: "what did project X cost me
    /// this week, across all my clients?"
    Report {
        /// user, project, model, client, key or day.
        #[arg(long, default_value = "project")]
        by: String,
        /// Start of the period: 7d, 24h, 2026-11-20 or a Unix time.
        #[arg(long, default_value = "7d")]
        since: String,
        /// End of the period (default: now).
        #[arg(long)]
        until: Option<String>,
        /// Only requests of this user.
        #[arg(long)]
        user: Option<String>,
        /// Only requests of this project.
        #[arg(long)]
        project: Option<String>,
        /// Only requests of this model.
        #[arg(long)]
        model: Option<String>,
        /// Only requests of this client.
        #[arg(long)]
        client: Option<String>,
    },
    /// Lists, searches, adds, deletes, exports or imports one scope's memories.
    Memory {
        #[command(subcommand)]
        command: memory::MemoryCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match Config::load(&cli.config) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {}: {error}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    let done = match cli.command {
        Some(Command::Report { by, since, until, user, project, model, client }) => {
            let filters = Filters { user, project, model, client, key_id: None };
            Some(report(&loaded.config, &by, &since, until.as_deref(), &filters))
        }
        Some(Command::Memory { command }) => Some(memory::run(&loaded.config, command)),
        None => None,
    };
    if let Some(done) = done {
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    logging::init(cli.json_logs || loaded.config.json_logs, loaded.config.verbose);
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let serving = async {
        crate::services::analytics::metrics::handle();
        let state = AppState::new(loaded.config).await?;
        let _watcher = app::reload::watch(state.clone(), cli.config.clone())?;
        let served = app::server::serve(state.clone(), SocketAddr::new(cli.host, cli.port)).await;
        // Every request has finished: commit the records still queued.
        state.services().journal().stop();
        served
    };
    let code = match runtime.block_on(serving) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    };
    logging::finish();
    code
}

fn report(config: &Config, by: &str, since: &str, until: Option<&str>, filters: &Filters) -> anyhow::Result<()> {
    let group_by = GroupBy::parse(by).map_err(anyhow::Error::msg)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let since_ms = query::parse_time(since, now).map_err(anyhow::Error::msg)?;
    let until_ms = until.map(|u| query::parse_time(u, now)).transpose().map_err(anyhow::Error::msg)?.unwrap_or(now + 1);
    let database = Database::open(&config.database_path)?;
    let rows = query::summary(&database.connect()?, group_by, since_ms, until_ms, filters)?;
    print!("{}", report_table(by, since_ms, until_ms, &rows));
    Ok(())
}

/// The report as a plain-text table.
pub fn report_table(by: &str, since_ms: i64, until_ms: i64, rows: &[query::SummaryRow]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Usage by {by}, {} to {}", query::timestamp_of(since_ms), query::timestamp_of(until_ms));
    let _ = writeln!(
        out,
        "{:<32} {:>9} {:>12} {:>12} {:>12} {:>7} {:>10} {:>10}",
        by, "requests", "input tok", "output tok", "cost USD", "errors", "p50 ms", "p95 ms"
    );
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
    for row in rows {
        let name = if row.group.is_empty() { "(none)" } else { row.group.as_str() };
        let unpriced = if row.unpriced_requests > 0 { "*" } else { " " };
        let _ = writeln!(
            out,
            "{:<32} {:>9} {:>12} {:>12} {:>11.4}{unpriced} {:>6.1}% {:>10} {:>10}",
            name.chars().take(32).collect::<String>(),
            row.requests,
            row.input_tokens,
            row.output_tokens,
            row.cost_usd,
            100.0 * row.error_rate,
            ms(row.latency_ms_p50),
            ms(row.latency_ms_p95),
        );
    }
    let requests: i64 = rows.iter().map(|r| r.requests).sum();
    // Not `sum()`: a float sum of nothing is -0.0, which would print as "-0.0000".
    let cost = rows.iter().fold(0.0, |total, r| total + r.cost_usd);
    let _ = writeln!(out, "{:<32} {:>9} {:>12} {:>12} {:>11.4}", "total", requests, "", "", cost);
    if rows.iter().any(|r| r.unpriced_requests > 0) {
        let _ = writeln!(out, "* some requests used models without a known price; their cost is not included");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_report_totals_zero() {
        let table = super::report_table("project", 0, 3_600_000, &[]);
        let total = table.lines().find(|l| l.starts_with("total")).unwrap_or_default();
        assert!(total.ends_with(" 0.0000"), "{total:?}");
    }
}
