//! Binding, serving, and shutting down gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use super::AppState;
use crate::http;

/// How long in-flight requests get to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub async fn serve(state: AppState, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() && state.services().snapshot().config.master_key.is_none() {
        warn!("listening on {local} without a master key: anyone who can reach this address can use your providers");
    }
    info!("memory-proxy listening on http://{local}");
    // Nagle's algorithm would hold small SSE writes back for a delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, http::router(state.services().clone()))
        .with_graceful_shutdown(shutdown_signal(state))
        .await?;
    info!("all requests finished; bye");
    Ok(())
}

async fn shutdown_signal(state: AppState) {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    info!("shutting down: no new connections; waiting up to {}s for requests in flight", SHUTDOWN_GRACE.as_secs());
    tokio::spawn(async move {
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        warn!("requests still in flight after {}s; exiting anyway", SHUTDOWN_GRACE.as_secs());
        // What finished is recorded all the same.
        state.services().journal().stop();
        super::logging::finish();
        std::process::exit(1);
    });
}
