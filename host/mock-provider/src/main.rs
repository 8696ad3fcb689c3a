//! A mock LLM provider speaking OpenAI chat completions, responses and embeddings,
//! Anthropic messages and Gemini's generateContent, with streaming. It drives the
//! tests, the benchmark and the offline demo.
//!
//! Control endpoints (for tests):
//! - `GET /_mock/requests`: every request received, with headers and body, and whether
//!   a stream was cancelled by the client;
//! - `DELETE /_mock/requests`: forget them;
//! - `POST /_mock/faults`: queue faults (status codes, delays, dropped streams) that the
//!   next matching requests will suffer.
//!
//! It also plays Supermemory's REST API (`supermemory`), for the memory backend's tests.

mod anthropic;
mod bedrock;
mod facts;
mod gemini;
mod openai;
mod reply;
mod responses;
mod state;
mod supermemory;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use clap::Parser;

use crate::state::MockState;

#[derive(Parser, Debug, Clone)]
#[command(name = "mock-provider", about = "A mock OpenAI / Anthropic provider for tests and demos")]
pub struct Options {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (0 picks a free one; the chosen address is printed on stdout).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Delay before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Delay between streamed chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Fixed reply text; by default the reply echoes the last user message.
    #[arg(long)]
    reply: Option<String>,
    /// How many received requests to keep for `GET /_mock/requests` (0 keeps none).
    #[arg(long, default_value_t = 10_000)]
    record_limit: usize,
    /// Report this many of each prompt's tokens as read from the provider's cache.
    #[arg(long, default_value_t = 0)]
    cached_tokens: u64,
    /// Answer in text even when the request offers tools (agents then finish a turn in
    /// one request instead of calling the first tool offered).
    #[arg(long)]
    pub no_tool_calls: bool,
    /// Tokio worker threads (the benchmark pins the mock to one core).
    #[arg(long)]
    workers: Option<usize>,
}

impl Options {
    pub fn cached_tokens(&self) -> u64 {
        self.cached_tokens
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
    pub fn chunk_delay(&self) -> Duration {
        Duration::from_millis(self.chunk_delay_ms)
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = options.workers {
        runtime.worker_threads(workers);
    }
    runtime.enable_all().build()?.block_on(serve(options))
}

async fn serve(options: Options) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", options.host, options.port).parse().context("invalid --host/--port")?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    // Tests and the benchmark read this line to learn the port.
    println!("mock-provider listening on http://{local}");

    let state = Arc::new(MockState::new(options));
    let app = Router::new()
        .route("/_mock/requests", get(state::list_requests).delete(state::clear_requests))
        .route("/_mock/faults", post(state::add_faults).delete(state::clear_faults))
        // Any prefix works (`/v1`, `/v1beta/openai`, none), so a deployment's api_base
        // can point at the mock whatever its provider expects.
        .fallback(dispatch)
        .with_state(state);

    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn dispatch(
    axum::extract::State(state): axum::extract::State<Arc<MockState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path().to_owned();
    if supermemory::serves(&path) {
        return supermemory::handle(state, request).await;
    }
    if bedrock::serves(&path) {
        return bedrock::invoke(state, request).await;
    }
    // Supermemory's router: `/v3/<provider URL>/<provider path>`, answered as the
    // provider would (the paths end the same), with the router's own headers.
    if path.starts_with("/v3/") {
        if !request.headers().contains_key("x-supermemory-api-key") {
            return (axum::http::StatusCode::UNAUTHORIZED, "missing x-supermemory-api-key").into_response();
        }
        let mut response = answer(state, request).await;
        supermemory::add_router_headers(&mut response);
        return response;
    }
    answer(state, request).await
}

/// A model call, by the end of its path (any prefix works).
async fn answer(state: Arc<MockState>, request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if method == axum::http::Method::GET && path.ends_with("/models") {
        return openai::models().into_response();
    }
    if method != axum::http::Method::POST {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    }
    // Gemini names the model in the path and wants its key checked before anything.
    if gemini::serves(&path) {
        return gemini::generate(state, request).await;
    }
    let Ok(exchange) = state::Exchange::receive(&state, request).await else {
        return (axum::http::StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let set_cookie = exchange.fault.set_cookie.clone();
    let mut response = if path.ends_with("/chat/completions") {
        openai::chat(state, exchange).await
    } else if path.ends_with("/responses") {
        responses::responses(state, exchange).await
    } else if path.ends_with("/embeddings") {
        openai::embeddings(state, exchange).await
    } else if path.ends_with("/messages/count_tokens") {
        anthropic::count_tokens(state, exchange).await
    } else if path.ends_with("/messages") {
        anthropic::messages(state, exchange).await
    } else {
        (axum::http::StatusCode::NOT_FOUND, format!("mock has no route {path}")).into_response()
    };
    if let Some(cookie) = set_cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert(axum::http::header::SET_COOKIE, cookie);
    }
    response
}
