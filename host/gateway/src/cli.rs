//! The command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::warn;

use crate::config::Config;
use crate::state::AppState;
use crate::{logging, server};

#[derive(Parser, Debug)]
#[command(
    name = "memory-proxy",
    version,
    about = "A self-hosted LLM gateway with long-term memory per user and project"
)]
pub struct Cli {
    /// The config file (LiteLLM's proxy format plus our keys).
    #[arg(long, short, default_value = "config.yaml", env = "MEMORY_PROXY_CONFIG")]
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
        let state = AppState::new(loaded.config).await?;
        let _watcher = crate::plugins::reload::watch(state.clone(), cli.config.clone())?;
        server::serve(state, SocketAddr::new(cli.host, cli.port)).await
    };
    match runtime.block_on(serving) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
