//! The databank at scale: a million request records written through the real writer,
//! then each summary the dashboard asks for, timed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use memory_proxy::services::analytics::query::{self, Filters, GroupBy};
use memory_proxy::services::analytics::{Record, Usage};
use memory_proxy::services::journal::Journal;
use memory_proxy::storage::Database;

/// A deterministic generator, so runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn record(random: &mut Lcg, index: u64, rows: u64, now_ms: i64, span_ms: i64) -> Record {
    const USERS: [&str; 5] = ["ana", "bo", "chen", "dara", "eli"];
    const MODELS: [&str; 4] = ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash", "llama3.2"];
    const CLIENTS: [&str; 4] = ["claude-code", "codex", "jetbrains", "openai-python"];
    let started_at_ms = now_ms - span_ms + (index as i64 * span_ms / rows as i64);
    let input = 500 + random.next() % 20_000;
    let output = 20 + random.next() % 2_000;
    let failed = random.next().is_multiple_of(50);
    Record {
        id: memory_proxy::core::ids::request_id_at(started_at_ms),
        started_at_ms,
        user: USERS[(random.next() % 5) as usize].to_owned(),
        project: Some(format!("/srv/project-{}", random.next() % 10)),
        client: Some(CLIENTS[(random.next() % 4) as usize].to_owned()),
        key_id: None,
        model: MODELS[(random.next() % 4) as usize].to_owned(),
        model_group: None,
        deployment: Some("model_list[0]".to_owned()),
        provider: Some("openai".to_owned()),
        upstream_model: None,
        api: "openai.chat",
        stream: random.next().is_multiple_of(2),
        status: if failed { 502 } else { 200 },
        error: failed.then(|| "bad_gateway".to_owned()),
        attempts: 1 + u32::from(random.next().is_multiple_of(20)),
        fallbacks: 0,
        usage: Some(Usage { input, output, cached: input / 3, cache_write: 0, reasoning: 0 }),
        tokens_estimated: false,
        cost_usd: Some(input as f64 * 2.5e-6 + output as f64 * 1e-5),
        latency: Duration::from_micros(200_000 + random.next() % 20_000_000),
        ttft: Some(Duration::from_millis(100 + random.next() % 900)),
        upstream: Some(Duration::from_millis(150)),
        memories_recalled: 0,
        recalled: None,
        memories_captured: 0,
        memory_error: None,
        supermemory: None,
        bytes_in: input * 4,
        bytes_out: output * 4,
        finish_reason: Some(if random.next().is_multiple_of(25) { "length" } else { "stop" }.to_owned()),
        key_spend: None,
    }
}

pub async fn run(rows: u64) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("memory-proxy-databank-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let database = Database::open(&dir.join("bench.db"))?;
    let writer = Journal::start(&database, 100_000)?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let span_ms = 30 * 86_400_000;
    let mut random = Lcg(42);
    let started = Instant::now();
    for index in 0..rows {
        writer.record(record(&mut random, index, rows, now_ms, span_ms));
        if index % 50_000 == 49_999 {
            writer.flush().await;
        }
    }
    writer.flush().await;
    let written = started.elapsed();
    anyhow::ensure!(writer.dropped() == 0, "the writer dropped records");
    let size = std::fs::metadata(database.path())?.len();
    println!("## The databank with {rows} requests\n");
    println!(
        "Written through the batching writer in {:.1} s ({:.0} records/s); database {:.0} MiB.\n",
        written.as_secs_f64(),
        rows as f64 / written.as_secs_f64(),
        size as f64 / (1 << 20) as f64
    );
    println!("| summary | groups | time (median of 5) |");
    println!("|---|---|---|");
    let connection = database.connect()?;
    // Not hour-aligned on purpose: the partial hours at both ends come from the log.
    let since = now_ms - span_ms - 1_234_567;
    for (group_by, name) in [
        (GroupBy::Project, "by project, 30 days"),
        (GroupBy::User, "by user, 30 days"),
        (GroupBy::Model, "by model, 30 days"),
        (GroupBy::Client, "by client, 30 days"),
        (GroupBy::Day, "by day, 30 days"),
    ] {
        let mut times = Vec::new();
        let mut groups = 0;
        for _ in 0..5 {
            let began = Instant::now();
            let rows = query::summary(&connection, group_by, since, now_ms + 1, &Filters::default())?;
            times.push(began.elapsed());
            groups = rows.len();
        }
        times.sort_unstable();
        println!("| {name} | {groups} | {:.1} ms |", times[2].as_secs_f64() * 1e3);
    }
    let filtered = Filters { project: Some("/srv/project-3".to_owned()), ..Filters::default() };
    let began = Instant::now();
    query::summary(&connection, GroupBy::Client, now_ms - 7 * 86_400_000, now_ms + 1, &filtered)?;
    println!("| project-3 by client, 7 days | - | {:.1} ms |", began.elapsed().as_secs_f64() * 1e3);
    println!();
    writer.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
