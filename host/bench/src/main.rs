//! Side-by-side benchmark on 127.0.0.1: the same load straight to the mock provider and
//! through the gateway, in one run, reported as ratios. On a machine with two or more
//! cores the gateway gets core 0 and the mock and the load generator core 1 (taskset),
//! so neither side steals the other's CPU.
//!
//! Every load loop is bounded by a request count and a time limit.

mod databank;
mod faults;
mod hooks;
mod memory;
mod sessions;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

#[derive(Parser, Debug)]
#[command(about = "Gateway overhead versus direct, measured side by side")]
struct Options {
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Concurrency levels for the non-streaming load.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Time limit of one measured run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Request limit of one measured run.
    #[arg(long, default_value_t = 200_000)]
    max_requests: u64,
    /// Streamed requests for the time-to-first-byte comparison.
    #[arg(long, default_value_t = 2_000)]
    stream_requests: u64,
    /// Extra gateway configurations to compare (name=path of a config.yaml whose model
    /// `bench` points at MOCK_URL, substituted at start).
    #[arg(long = "variant")]
    variants: Vec<String>,
    /// Also measure the LiteLLM proxy: the path of its `litellm` executable.
    #[arg(long)]
    litellm: Option<PathBuf>,
    /// The built plugins (the gateway's plugin folder).
    #[arg(long, default_value = "plugins/dist")]
    plugin_dir: PathBuf,
    /// Calls per plugin hook in the hook table.
    #[arg(long, default_value_t = 5_000)]
    hook_calls: usize,
    /// Skip the load runs (only the plugin hook table).
    #[arg(long)]
    hooks_only: bool,
    /// Only the agent-session table (memory on, Claude Code-sized requests).
    #[arg(long)]
    sessions_only: bool,
    /// Only the fault figures (docs/reliability.md): a spinning plugin beside other
    /// requests, broken plugins on every request, `kill -9` under load.
    #[arg(long)]
    faults: bool,
    /// Request records written for the databank query timings (0 skips them).
    #[arg(long, default_value_t = 1_000_000)]
    databank_rows: u64,
    /// Memories per scope for the memory store timings (0 skips them).
    #[arg(long, default_value_t = 2_000)]
    memories_per_scope: usize,
    /// Only load an already running server at this address (model `bench`), e.g.
    /// while profiling it; prints throughput and latency per concurrency.
    #[arg(long)]
    load_only: Option<SocketAddr>,
}

/// What gets measured against direct: our gateway with a config, or LiteLLM's proxy.
enum Target {
    Gateway { name: String, config: String },
    LiteLlm { bin: PathBuf, config: String },
}

/// Both gateways run with a master key, as deployed; direct calls carry it too (the mock ignores it).
const MASTER_KEY: &str = "sk-bench-5f0c1e7a9b3d4c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c";

const CHAT_BODY: &str = r#"{"model":"bench","messages":[{"role":"system","content":"You are a helpful assistant that answers briefly."},{"role":"user","content":"What is the capital of France? Please answer in one short sentence."}],"temperature":0.2,"max_tokens":64}"#;

fn main() -> Result<()> {
    let options = Options::parse();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = cores >= 2 && Command::new("taskset").arg("--version").stdout(Stdio::null()).status().is_ok();
    if pin {
        // The load generator shares core 1 with the mock; the gateway has core 0.
        let _ =
            Command::new("taskset").args(["-cp", "1", &std::process::id().to_string()]).stdout(Stdio::null()).status();
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Some(addr) = options.load_only {
        return runtime.block_on(load_only(addr, &options));
    }
    runtime.block_on(run(options, pin, cores))
}

struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    /// SIGKILL: the process gets no chance to flush anything.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many requests a gateway's databank holds (its analytics summary).
async fn recorded_requests(addr: SocketAddr) -> Result<u64> {
    let mut sender = connect(addr).await?;
    let request = Request::get("/analytics/summary")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(Full::new(Bytes::new()))?;
    let response = sender.send_request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    let summary: serde_json::Value = serde_json::from_slice(&body)?;
    summary["requests"].as_u64().context("the summary has no request count")
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a binary (pinned to `core` when pinning) and reads the address it prints.
fn start(binary: &PathBuf, args: &[&str], core: Option<usize>, reads_stderr: bool) -> Result<Process> {
    use std::io::{BufRead, BufReader};
    let mut command = match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string()]).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    // The gateway runs with its default logging (a line per request), as deployed.
    command.args(args).env_remove("MEMORY_PROXY_LOG").env_remove("RUST_LOG").env("RUST_BACKTRACE", "0");
    command.env("MEMORY_PROXY_PLUGINS_DIR", std::path::absolute("plugins/dist").unwrap_or_default());
    // LiteLLM would fetch its price table from the internet at start; benchmarks stay on 127.0.0.1.
    command.env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
    if reads_stderr {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::null());
    }
    let mut child = command.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
    let output: Box<dyn std::io::Read + Send> = if reads_stderr {
        Box::new(child.stderr.take().context("stderr")?)
    } else {
        Box::new(child.stdout.take().context("stdout")?)
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if let Some(at) = line.find("http://")
                && let Some(sender) = sender.take()
            {
                let addr: String =
                    line[at + 7..].chars().take_while(|c| c.is_ascii_digit() || ".:".contains(*c)).collect();
                let _ = sender.send(addr);
            }
        }
    });
    let addr = receiver.recv_timeout(Duration::from_secs(30)).context("the process did not report its address")?;
    Ok(Process { child, addr: addr.parse().context("address")? })
}

/// CPU time a process has used so far (user + system).
fn cpu_time(pid: u32) -> Duration {
    stat_cpu_time(&format!("/proc/{pid}/stat"))
}

/// CPU time the threads of `pid` named `name` have used so far.
fn thread_cpu_time(pid: u32, name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    tasks
        .filter_map(Result::ok)
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
        .map(|task| stat_cpu_time(&task.path().join("stat").to_string_lossy()))
        .sum()
}

fn stat_cpu_time(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // Linux reports in clock ticks of 1/100 s.
    Duration::from_millis(ticks * 10)
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn run(options: Options, pin: bool, cores: usize) -> Result<()> {
    let mock = start(
        &options.bin_dir.join("mock-provider"),
        &["--port", "0", "--record-limit", "0", "--workers", "1"],
        pin.then_some(1),
        false,
    )?;
    let mock_url = format!("http://{}", mock.addr);
    let dir = std::env::temp_dir().join(format!("memory-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let bench_model = format!(
        "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/mock-gpt\n      api_base: {mock_url}/v1\n      api_key: sk-bench\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
    );
    let plugins_off = format!(
        "{bench_model}plugins:\n  detectors: []\n  memory_injector: {{name: none, enabled: false}}\n  provider_adapters: []\n"
    );
    let recording_off = format!("{bench_model}  disable_spend_logs: true\n");
    // Memory on, recall only (the prompt never changes, so captures would pile up
    // identical memories): a scope of 2,000 memories, 40 of them about the prompt.
    let memory_db = dir.join("memory.db");
    let memory_on = format!("{bench_model}  database_url: {}\nmemory:\n  capture: false\n", memory_db.display());
    let bench_scope = memory_proxy::services::memory::Scope { user: "default_user".to_owned(), project: None };
    let memory_database = memory_proxy::storage::Database::open(&memory_db)?;
    memory::seed(&memory_database, &bench_scope, 2_000, 50).await?;
    memory::seed_vectors(&memory_database, &bench_scope).await?;
    let mut targets = vec![
        Target::Gateway { name: "gateway".to_owned(), config: bench_model.clone() },
        Target::Gateway { name: "gateway, plugins off".to_owned(), config: plugins_off },
        Target::Gateway { name: "gateway, memory on".to_owned(), config: memory_on },
    ];
    for variant in &options.variants {
        let (name, path) = variant.split_once('=').context("--variant takes name=path")?;
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
        targets.push(Target::Gateway { name: name.to_owned(), config: text.replace("MOCK_URL", &mock_url) });
    }
    if let Some(bin) = &options.litellm {
        targets.push(Target::LiteLlm { bin: bin.clone(), config: bench_model.clone() });
    }

    println!("# Memory Proxy benchmark\n");
    println!(
        "{cores} cores; {}; {}s or {} requests per run; body {} bytes\n",
        if pin { "gateway pinned to core 0, mock and load generator to core 1" } else { "no pinning" },
        options.seconds,
        options.max_requests,
        CHAT_BODY.len()
    );
    if options.databank_rows > 0 {
        databank::run(options.databank_rows).await?;
    }
    if options.memories_per_scope > 0 {
        memory::run(50, options.memories_per_scope, 2_000).await?;
        memory::semantic(200).await?;
        memory::quality().await?;
    }
    if !options.sessions_only && !options.faults {
        hooks::run(Path::new("."), &options.plugin_dir, options.hook_calls).await?;
    }
    if options.hooks_only {
        return Ok(());
    }
    let gateway = |name: &str, config: &str| -> Result<Process> {
        let path = dir.join(format!("{}.yaml", name.replace([' ', ','], "-")));
        std::fs::write(&path, config)?;
        let args = ["--config", path.to_str().context("path")?, "--port", "0"];
        start(&options.bin_dir.join("memory-proxy"), &args, pin.then_some(0), true)
    };
    if options.faults {
        // Not pinned: a plugin's isolation from other requests needs the worker
        // threads a gateway has in production (one core has one).
        let unpinned = |name: &str, config: &str| -> Result<Process> {
            let path = dir.join(format!("{}.yaml", name.replace([' ', ','], "-")));
            std::fs::write(&path, config)?;
            let args = ["--config", path.to_str().context("path")?, "--port", "0"];
            start(&options.bin_dir.join("memory-proxy"), &args, None, true)
        };
        let test_plugins = Path::new("plugins/target/wasm32-wasip2/release");
        faults::run(&dir, test_plugins, &bench_model, &unpinned).await?;
        return faults::crash(&dir, &bench_model, &unpinned).await;
    }
    {
        // Claude Code's path: Anthropic messages passed through, memory over the
        // project its recorded request names.
        let claude = format!(
            "model_list:\n  - model_name: bench-claude\n    litellm_params:\n      model: anthropic/mock-claude\n      api_base: {mock_url}\n      api_key: sk-bench\n"
        );
        let with_claude = bench_model.replacen("model_list:\n", &claude, 1);
        let sessions_db = dir.join("sessions.db");
        let project = memory_proxy::services::memory::Scope {
            user: "default_user".to_owned(),
            project: Some("/tmp/demo-project".to_owned()),
        };
        let sessions_database = memory_proxy::storage::Database::open(&sessions_db)?;
        memory::seed(&sessions_database, &project, 2_000, 50).await?;
        // Vectors for the seeded memories up front, so the gateway's indexer has nothing
        // to embed while it is measured (the model's own time is in the table above).
        memory::seed_vectors(&sessions_database, &project).await?;
        let off = gateway("sessions memory off", &with_claude)?;
        let on = gateway(
            "sessions memory on",
            &format!("{with_claude}  database_url: {}\nmemory:\n  recall_limit: 5\n", sessions_db.display()),
        )?;
        sessions::run(mock.addr, &off, &on, options.seconds).await?;
    }
    if options.sessions_only {
        return Ok(());
    }
    {
        let on = gateway("recording on", &bench_model)?;
        let off = gateway("recording off", &recording_off)?;
        recording_cost(&on, &off, 16, 11, options.seconds.min(2.0)).await?;
    }

    for target in targets {
        let (name, server) = match &target {
            Target::Gateway { name, config } => (name.clone(), gateway(name, config)?),
            Target::LiteLlm { bin, config } => {
                let path = dir.join("litellm.yaml");
                std::fs::write(&path, config)?;
                let port = free_port()?.to_string();
                let args = [
                    "--config",
                    path.to_str().context("path")?,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--num_workers",
                    "1",
                    "--telemetry",
                    "False",
                ];
                ("litellm".to_owned(), start(bin, &args, pin.then_some(0), true)?)
            }
        };
        measure(&options, &name, mock.addr, &server).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn load_only(addr: SocketAddr, options: &Options) -> Result<()> {
    for &concurrency in &options.concurrency {
        load(addr, "/v1/chat/completions", concurrency, 0.5, 2_000).await?;
        let figures = load(addr, "/v1/chat/completions", concurrency, options.seconds, options.max_requests).await?;
        println!("c={concurrency}: {:.0} req/s, p50 {}, p99 {}", figures.rps, ms(figures.p50), ms(figures.p99));
    }
    Ok(())
}

/// One target measured against direct: the load table, streaming, memory.
async fn measure(options: &Options, name: &str, direct_addr: SocketAddr, server: &Process) -> Result<()> {
    println!("## {name}\n");
    println!(
        "| load | direct req/s | {name} req/s | ratio | direct p50 | {name} p50 | added p50 | direct p99 | {name} p99 | added p99 | {name} CPU per request |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &concurrency in &options.concurrency {
        // Warm both paths (connections, caches) before measuring.
        load(direct_addr, "/v1/chat/completions", concurrency, 0.5, 2_000).await?;
        load(server.addr, "/v1/chat/completions", concurrency, 0.5, 2_000).await?;
        let direct =
            load(direct_addr, "/v1/chat/completions", concurrency, options.seconds, options.max_requests).await?;
        let cpu_before = cpu_time(server.child.id());
        let through =
            load(server.addr, "/v1/chat/completions", concurrency, options.seconds, options.max_requests).await?;
        let cpu = cpu_time(server.child.id()).saturating_sub(cpu_before);
        println!(
            "| c={concurrency} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {} | {} | {:.1} µs |",
            direct.rps,
            through.rps,
            through.rps / direct.rps,
            ms(direct.p50),
            ms(through.p50),
            ms(through.p50.saturating_sub(direct.p50)),
            ms(direct.p99),
            ms(through.p99),
            ms(through.p99.saturating_sub(direct.p99)),
            cpu.as_secs_f64() * 1e6 / through.requests as f64,
        );
    }
    let direct = stream_ttfb(direct_addr, options.stream_requests).await?;
    let through = stream_ttfb(server.addr, options.stream_requests).await?;
    println!(
        "\nStreaming, one keep-alive connection, {} requests: time to first byte p50 {} direct, {} through {name} (added {}); p99 {} / {}; whole stream p50 {} / {}.",
        options.stream_requests,
        ms(direct.ttfb_p50),
        ms(through.ttfb_p50),
        ms(through.ttfb_p50.saturating_sub(direct.ttfb_p50)),
        ms(direct.ttfb_p99),
        ms(through.ttfb_p99),
        ms(direct.total_p50),
        ms(through.total_p50),
    );
    let (rss, peak) = rss_kib(server.child.id());
    println!(
        "\n{name} memory after the run: RSS {:.1} MiB (peak {:.1} MiB).\n",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}

/// Recording's cost: the same load through a gateway that records every request and
/// one that does not (`disable_spend_logs`), in alternating rounds so that the VM's
/// drift hits both alike; medians over the rounds. Also the writer thread's own CPU
/// per recorded request, which the VM's drift barely touches.
async fn recording_cost(on: &Process, off: &Process, concurrency: usize, rounds: usize, seconds: f64) -> Result<()> {
    println!("## Recording on versus off\n");
    println!("c={concurrency}, {rounds} alternating rounds of {seconds} s each:\n");
    println!("| round | recording on req/s | recording off req/s | ratio | CPU per request on | off |");
    println!("|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    let mut cpu = (Vec::new(), Vec::new());
    // The journal writer's own thread ("journal-writer"): recording's cost, apart from
    // the VM's drift.
    let (mut writer_cpu, mut recorded) = (Duration::ZERO, 0);
    for round in 1..=rounds {
        // Which goes first alternates too, so neither always meets the VM just after the other.
        let order = if round % 2 == 1 { [on, off] } else { [off, on] };
        let mut figures = Vec::new();
        for server in order {
            load(server.addr, "/v1/chat/completions", concurrency, 0.3, 1_000).await?;
            let before = cpu_time(server.child.id());
            let writer_before = thread_cpu_time(server.child.id(), "journal-writer");
            let run = load(server.addr, "/v1/chat/completions", concurrency, seconds, u64::MAX).await?;
            let used = cpu_time(server.child.id()).saturating_sub(before);
            if std::ptr::eq(server, on) {
                writer_cpu += thread_cpu_time(server.child.id(), "journal-writer").saturating_sub(writer_before);
                recorded += run.requests;
            }
            figures.push((run.rps, used.as_secs_f64() * 1e6 / run.requests as f64));
        }
        if round % 2 == 0 {
            figures.reverse();
        }
        let ((on_rps, on_cpu), (off_rps, off_cpu)) = (figures[0], figures[1]);
        ratios.push(on_rps / off_rps);
        cpu.0.push(on_cpu);
        cpu.1.push(off_cpu);
        println!(
            "| {round} | {on_rps:.0} | {off_rps:.0} | {:.2} | {on_cpu:.1} µs | {off_cpu:.1} µs |",
            on_rps / off_rps
        );
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "\nMedian throughput ratio, recording on / off: {:.3}; median CPU per request {:.1} µs on, {:.1} µs off.\n",
        median(&mut ratios),
        median(&mut cpu.0),
        median(&mut cpu.1)
    );
    println!(
        "The databank writer thread used {:.1} µs of CPU per recorded request ({} requests).\n",
        writer_cpu.as_secs_f64() * 1e6 / recorded.max(1) as f64,
        recorded
    );
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

struct Figures {
    requests: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn connect(addr: SocketAddr) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn request(addr: SocketAddr, path: &str, body: &'static str) -> Result<Request<Full<Bytes>>> {
    Ok(Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(Full::new(Bytes::from_static(body.as_bytes())))?)
}

/// A closed loop of `concurrency` connections, each sending one request after the
/// other, until `seconds` pass or `max_requests` are sent.
async fn load(
    addr: SocketAddr,
    path: &'static str,
    concurrency: usize,
    seconds: f64,
    max_requests: u64,
) -> Result<Figures> {
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let sent = sent.clone();
        workers.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut latencies = Vec::with_capacity(4096);
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max_requests {
                let began = Instant::now();
                let response = sender.send_request(request(addr, path, CHAT_BODY)?).await?;
                let status = response.status();
                response.into_body().collect().await?;
                if !status.is_success() {
                    bail!("{addr}{path} answered {status}");
                }
                latencies.push(began.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    Ok(Figures {
        requests: all.len(),
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
    })
}

struct StreamFigures {
    ttfb_p50: Duration,
    ttfb_p99: Duration,
    total_p50: Duration,
}

/// Streamed requests one after the other on one keep-alive connection (where Nagle
/// and delayed ACKs would show).
async fn stream_ttfb(addr: SocketAddr, requests: u64) -> Result<StreamFigures> {
    const STREAM_BODY: &str =
        r#"{"model":"bench","stream":true,"messages":[{"role":"user","content":"Stream a short answer please."}]}"#;
    let mut sender = connect(addr).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut ttfb, mut total) = (Vec::new(), Vec::new());
    for _ in 0..requests {
        if Instant::now() > deadline {
            break;
        }
        let began = Instant::now();
        let response = sender.send_request(request(addr, "/v1/chat/completions", STREAM_BODY)?).await?;
        let mut body = response.into_body();
        let mut first = None;
        while let Some(frame) = body.frame().await {
            if frame?.is_data() && first.is_none() {
                first = Some(began.elapsed());
            }
        }
        ttfb.push(first.context("a stream with no data")?);
        total.push(began.elapsed());
    }
    ttfb.sort_unstable();
    total.sort_unstable();
    Ok(StreamFigures {
        ttfb_p50: percentile(&ttfb, 0.5),
        ttfb_p99: percentile(&ttfb, 0.99),
        total_p50: percentile(&total, 0.5),
    })
}
