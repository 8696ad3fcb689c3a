//! Agent sessions with memory on: Claude Code-sized requests (the recorded 2.1.197
//! request, 113 KB, with its headers) in sessions of ten turns, the first asking a
//! question and the nine after it going round a tool loop, as an agent's requests do.
//! Each session is a conversation of its own. Measured side by side: straight to the
//! mock, through the gateway with memory off, and with memory on over a scope of 2,000
//! memories.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};

use super::{MASTER_KEY, Process, connect, cpu_time, ms, percentile};

pub const TURNS: usize = 10;

/// The recorded request's headers and body, model and stream set for the mock.
pub struct Recorded {
    headers: Vec<(String, String)>,
    body: Value,
}

pub fn recorded(model: &str) -> Result<Recorded> {
    let text = std::fs::read_to_string("tests/fixtures/claude-code-2.1.197.json")
        .context("the benchmark runs from the repository root")?;
    let recorded: Value = serde_json::from_str(&text)?;
    let headers = recorded["headers"]
        .as_object()
        .context("headers")?
        .iter()
        .filter(|(name, _)| !["x-api-key", "authorization", "content-length", "host"].contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect();
    let mut body = recorded["body"].clone();
    body["model"] = json!(model);
    body["stream"] = json!(false);
    Ok(Recorded { headers, body })
}

/// The requests of session `session`: its own question first, then a tool loop.
fn session_bodies(recorded: &Recorded, session: u64) -> Vec<Bytes> {
    let mut body = recorded.body.clone();
    let question = format!("Session {session}: what is the capital of france, for the travel budget?");
    let messages = body["messages"].as_array_mut().map(std::mem::take).unwrap_or_default();
    let mut history: Vec<Value> = messages;
    if let Some(parts) = history.last_mut().and_then(|m| m["content"].as_array_mut())
        && let Some(last) = parts.last_mut()
    {
        last["text"] = json!(question);
    }
    let mut bodies = Vec::with_capacity(TURNS);
    for turn in 0..TURNS {
        if turn > 0 {
            let id = format!("toolu_{session}_{turn}");
            history.push(json!({ "role": "assistant", "content": [
                { "type": "text", "text": "Let me check." },
                { "type": "tool_use", "id": id, "name": "Read", "input": { "file_path": format!("/tmp/demo-project/file{turn}.rs") } }
            ] }));
            history.push(json!({ "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": id, "content": "fn main() { println!(\"hello\"); }" }
            ] }));
        }
        body["messages"] = Value::Array(history.clone());
        bodies.push(Bytes::from(body.to_string()));
    }
    bodies
}

fn request(addr: SocketAddr, recorded: &Recorded, body: Bytes) -> Result<Request<Full<Bytes>>> {
    let mut builder = Request::post("/v1/messages")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {MASTER_KEY}"));
    for (name, value) in &recorded.headers {
        builder = builder.header(name, value);
    }
    Ok(builder.body(Full::new(body))?)
}

/// Latency by turn (first, later) and throughput of `concurrency` session loops.
struct SessionFigures {
    first: Vec<Duration>,
    later: Vec<Duration>,
    requests: u64,
    rps: f64,
}

async fn drive(
    addr: SocketAddr,
    recorded: Arc<Recorded>,
    concurrency: usize,
    sessions_from: u64,
    seconds: f64,
    max_sessions: u64,
) -> Result<SessionFigures> {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, recorded) = (next.clone(), recorded.clone());
        workers.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let (mut first, mut later) = (Vec::new(), Vec::new());
            loop {
                let session = next.fetch_add(1, Ordering::Relaxed);
                if Instant::now() >= deadline || session >= max_sessions {
                    break;
                }
                for (turn, body) in session_bodies(&recorded, sessions_from + session).into_iter().enumerate() {
                    let began = Instant::now();
                    let response = sender.send_request(request(addr, &recorded, body)?).await?;
                    let status = response.status();
                    response.into_body().collect().await?;
                    if !status.is_success() {
                        bail!("{addr} answered {status}");
                    }
                    if turn == 0 { &mut first } else { &mut later }.push(began.elapsed());
                }
            }
            Ok::<_, anyhow::Error>((first, later))
        }));
    }
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for worker in workers {
        let (f, l) = worker.await??;
        first.extend(f);
        later.extend(l);
    }
    first.sort_unstable();
    later.sort_unstable();
    let requests = (first.len() + later.len()) as u64;
    Ok(SessionFigures { rps: requests as f64 / started.elapsed().as_secs_f64(), first, later, requests })
}

/// Prints the session table: `direct` is the mock, `off` and `on` gateways with
/// memory off and on.
pub async fn run(direct: SocketAddr, off: &Process, on: &Process, seconds: f64) -> Result<()> {
    let direct_body = Arc::new(recorded("mock-claude")?);
    let gateway_body = Arc::new(recorded("bench-claude")?);
    println!("## Agent sessions, memory on\n");
    println!(
        "Claude Code's recorded request ({} KB) with its headers, sessions of {TURNS} turns (a question, then a tool loop), each its own conversation; memory on over a scope of 2,000 memories.\n",
        direct_body.body.to_string().len() / 1024
    );
    println!("| target | c | sessions | first turn p50 | added | later turns p50 | added | req/s | CPU per request |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut session_base = 0;
    for concurrency in [1, 16] {
        let max = if concurrency == 1 { 100 } else { u64::MAX };
        let baseline = drive(direct, direct_body.clone(), concurrency, session_base, seconds, max).await?;
        session_base += 1_000_000;
        let row = |name: &str, figures: &SessionFigures, cpu: Option<Duration>| {
            let (first, later) = (percentile(&figures.first, 0.5), percentile(&figures.later, 0.5));
            let added = |a: Duration, b: Duration| ms(a.saturating_sub(b));
            println!(
                "| {name} | {concurrency} | {} | {} | {} | {} | {} | {:.0} | {} |",
                figures.first.len(),
                ms(first),
                added(first, percentile(&baseline.first, 0.5)),
                ms(later),
                added(later, percentile(&baseline.later, 0.5)),
                figures.rps,
                cpu.map_or("-".to_owned(), |c| format!("{:.1} µs", c.as_secs_f64() * 1e6 / figures.requests as f64)),
            );
        };
        row("direct", &baseline, None);
        for (name, server) in [("memory off", off), ("memory on", on)] {
            let before = cpu_time(server.child.id());
            let figures = drive(server.addr, gateway_body.clone(), concurrency, session_base, seconds, max).await?;
            session_base += 1_000_000;
            row(name, &figures, Some(cpu_time(server.child.id()).saturating_sub(before)));
        }
    }
    println!();
    Ok(())
}
