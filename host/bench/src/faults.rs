//! Figures for docs/reliability.md, measured on the built binaries (`--faults`):
//!
//! - a plugin spinning to its deadline, called by some requests: what it does to the
//!   latency of the others, and how long its own requests take;
//! - three broken detectors (a loop, a memory hog, a panic) on every request of 1,000:
//!   each request's time beyond the deadline, and the gateway still serving;
//! - `kill -9` under load: how many answered requests the databank lost.
//!
//! Every load loop is bounded by a request count and a time limit.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use super::{CHAT_BODY, MASTER_KEY, Process, connect, ms, percentile};

/// The plugins' deadline in these configs (the default).
const DEADLINE: Duration = Duration::from_millis(50);

fn chat(addr: SocketAddr, spin: bool) -> Result<Request<Full<Bytes>>> {
    let mut request = Request::post("/v1/chat/completions")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {MASTER_KEY}"));
    if spin {
        request = request.header("x-spin", "1");
    }
    Ok(request.body(Full::new(Bytes::from_static(CHAT_BODY.as_bytes())))?)
}

/// `count` requests one after the other on one connection; their latencies, sorted.
async fn sequence(addr: SocketAddr, spin: bool, count: usize, stop: Option<Arc<AtomicBool>>) -> Result<Vec<Duration>> {
    let mut sender = connect(addr).await?;
    let mut latencies = Vec::with_capacity(count);
    let deadline = Instant::now() + Duration::from_secs(120);
    for _ in 0..count {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) || Instant::now() > deadline {
            break;
        }
        let began = Instant::now();
        let response = sender.send_request(chat(addr, spin)?).await?;
        let status = response.status();
        response.into_body().collect().await?;
        if !status.is_success() {
            bail!("answered {status}");
        }
        latencies.push(began.elapsed());
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// Detectors `detectors` (their files under `dir`: absolute paths, as the benchmark
/// points the gateway's plugin folder at plugins/dist), never paused by the breaker.
fn plugins_config(bench_model: &str, dir: &Path, detectors: &str) -> String {
    let detectors = detectors.replace("file: ", &format!("file: {}/", dir.display()));
    format!(
        "{bench_model}plugins:\n  max_failures: 1000000000\n  detectors: {detectors}\n  memory_injector: {{name: none, enabled: false}}\n  provider_adapters: []\n"
    )
}

pub async fn run(
    dir: &Path,
    test_plugins: &Path,
    bench_model: &str,
    gateway: &dyn Fn(&str, &str) -> Result<Process>,
) -> Result<()> {
    let plugin_dir = std::path::absolute(dir.join("fault-plugins"))?;
    std::fs::create_dir_all(&plugin_dir)?;
    for name in ["test_spin.wasm", "test_hog.wasm", "test_panic.wasm"] {
        std::fs::copy(test_plugins.join(name), plugin_dir.join(name)).with_context(|| format!("no {name}"))?;
    }
    println!("## Faults\n");

    // A spinning detector called only by requests that carry `x-spin`.
    let config =
        plugins_config(bench_model, &plugin_dir, "[{name: spin, file: test_spin.wasm, match_headers: {x-spin: ''}}]");
    let server = gateway("faults spin", &config)?;
    let quiet = sequence(server.addr, false, 500, None).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..8).map(|_| tokio::spawn(sequence(server.addr, true, 200, Some(stop.clone())))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = sequence(server.addr, false, 500, None).await?;
    stop.store(true, Ordering::Relaxed);
    let mut spun = Vec::new();
    for spinner in spinners {
        spun.extend(spinner.await??);
    }
    spun.sort_unstable();
    println!(
        "A detector spinning to its {} ms deadline, called by 8 concurrent callers in a loop:\n",
        DEADLINE.as_millis()
    );
    println!("| | requests | p50 | p99 | max |\n|---|---|---|---|---|");
    for (name, figures) in [
        ("other requests, alone", &quiet),
        ("other requests, beside the spinners", &busy),
        ("the spinning requests", &spun),
    ] {
        let max = figures.last().copied().unwrap_or_default();
        let (p50, p99) = (percentile(figures, 0.5), percentile(figures, 0.99));
        println!("| {name} | {} | {} | {} | {} |", figures.len(), ms(p50), ms(p99), ms(max));
    }
    drop(server);

    // A loop, a memory hog and a panic on every request.
    let config = plugins_config(
        bench_model,
        &plugin_dir,
        "[{name: spin, file: test_spin.wasm}, {name: hog, file: test_hog.wasm, memory_mb: 16}, {name: panic, file: test_panic.wasm}]",
    );
    let server = gateway("faults broken", &config)?;
    let workers: Vec<_> = (0..8).map(|_| tokio::spawn(sequence(server.addr, false, 125, None))).collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    all.sort_unstable();
    let max = all.last().copied().unwrap_or_default();
    println!(
        "\nThree broken detectors (a loop, a memory hog, a panic) on each of {} requests, 8 at a time: all answered 200; p50 {}, p99 {}, max {} (the loop's deadline is {} ms; beyond it at most {})\n",
        all.len(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(max),
        DEADLINE.as_millis(),
        ms(max.saturating_sub(DEADLINE)),
    );
    drop(server);
    Ok(())
}

/// `kill -9` of a gateway under load: answered requests against the records that
/// survived, read by a gateway restarted on the same database.
pub async fn crash(dir: &Path, bench_model: &str, gateway: &dyn Fn(&str, &str) -> Result<Process>) -> Result<()> {
    let database = dir.join("crash.db");
    let _ = std::fs::remove_file(&database);
    let config = format!("{bench_model}  database_url: {}\n", database.display());
    let mut server = gateway("faults crash", &config)?;
    let answered = Arc::new(AtomicU64::new(0));
    let addr = server.addr;
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let answered = answered.clone();
            tokio::spawn(async move {
                let Ok(mut sender) = connect(addr).await else { return };
                for _ in 0..100_000 {
                    let Ok(request) = chat(addr, false) else { return };
                    let Ok(response) = sender.send_request(request).await else { return };
                    let ok = response.status().is_success();
                    if response.into_body().collect().await.is_ok() && ok {
                        answered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        return;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill9();
    for worker in workers {
        let _ = worker.await;
    }
    let answered = answered.load(Ordering::Relaxed);
    let restarted = gateway("faults crash restarted", &config)?;
    let recorded = super::recorded_requests(restarted.addr).await?;
    let lost = answered.saturating_sub(recorded);
    println!(
        "`kill -9` after 2 s of load (16 connections): {answered} requests answered, {recorded} recorded after the restart, {lost} lost ({:.2}%)\n",
        lost as f64 * 100.0 / answered.max(1) as f64
    );
    Ok(())
}
