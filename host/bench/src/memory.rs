//! The local memory store at scale: memories written through the real writer, then
//! searches of one scope timed as the request path makes them (pooled connection,
//! blocking pool).

use std::time::{Duration, Instant};

use anyhow::Result;
use memory_proxy::services::journal::Journal;
use memory_proxy::services::memory::{MemoryStore, NewMemory, Scope};
use memory_proxy::storage::Database;

/// Words memories are made of: a developer's vocabulary, with some of the benchmark
/// prompt's own words among them, so searches meet many partial matches.
const WORDS: &[&str] = &[
    "deploy",
    "script",
    "staging",
    "database",
    "port",
    "migration",
    "schema",
    "index",
    "query",
    "cache",
    "redis",
    "postgres",
    "kubernetes",
    "pod",
    "service",
    "ingress",
    "token",
    "budget",
    "release",
    "friday",
    "review",
    "pull",
    "request",
    "branch",
    "merge",
    "rebase",
    "test",
    "suite",
    "flaky",
    "timeout",
    "retry",
    "latency",
    "p99",
    "dashboard",
    "metric",
    "alert",
    "pager",
    "incident",
    "rollback",
    "feature",
    "flag",
    "config",
    "yaml",
    "secret",
    "vault",
    "rotate",
    "key",
    "python",
    "rust",
    "cargo",
    "clippy",
    "format",
    "lint",
    "answer",
    "short",
    "one",
    "sentence",
    "paris",
    "europe",
    "city",
    "travel",
    "budget",
    "invoice",
    "customer",
    "ticket",
    "bug",
    "crash",
];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
}

/// A remembered turn of 20 to 60 words; one in `needle_every` is about France's capital.
fn memory_text(random: &mut Lcg, index: usize, needle_every: usize) -> String {
    let count = 20 + random.next() % 40;
    let mut words: Vec<&str> = (0..count).map(|_| WORDS[random.next() % WORDS.len()]).collect();
    if index.is_multiple_of(needle_every) {
        words.extend(["the", "capital", "of", "france", "is", "paris"]);
    }
    format!("User: {}\nAssistant: noted.", words.join(" "))
}

/// Writes `count` memories into `scope` through the writer (as captures are written).
pub async fn seed(database: &Database, scope: &Scope, count: usize, needle_every: usize) -> Result<()> {
    let writer = Journal::start(database, 100_000)?;
    let mut random = Lcg(7);
    for index in 0..count {
        let text = memory_text(&mut random, index, needle_every);
        writer.memory(NewMemory::new(scope.clone(), Some("bench".to_owned()), None, &text));
    }
    writer.flush().await;
    anyhow::ensure!(writer.dropped() == 0, "the writer dropped memories");
    writer.stop();
    Ok(())
}

fn scope(index: usize) -> Scope {
    Scope { user: format!("user-{}", index % 20), project: Some(format!("/srv/project-{index}")) }
}

pub async fn run(scopes: usize, per_scope: usize, searches: usize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("memory-proxy-memories-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let database = Database::open(&dir.join("bench.db"))?;
    let started = Instant::now();
    let writer = Journal::start(&database, 100_000)?;
    let mut random = Lcg(11);
    for index in 0..scopes * per_scope {
        let text = memory_text(&mut random, index / scopes, 50);
        writer.memory(NewMemory::new(scope(index % scopes), None, None, &text));
        if index % 50_000 == 49_999 {
            writer.flush().await;
        }
    }
    writer.flush().await;
    writer.stop();
    let written = started.elapsed();
    let total = scopes * per_scope;
    println!("## The local memory store with {total} memories ({scopes} scopes of {per_scope})\n");
    println!(
        "Written through the batching writer in {:.1} s ({:.0} memories/s); database {:.0} MiB.\n",
        written.as_secs_f64(),
        total as f64 / written.as_secs_f64(),
        std::fs::metadata(database.path())?.len() as f64 / (1 << 20) as f64
    );
    println!("| search in one scope (top 5) | matching memories | p50 | p99 |");
    println!("|---|---|---|---|");
    let store = MemoryStore::new(&database, None);
    let target = scope(3);
    for (name, query) in [
        ("a rare fact", "What is the capital of France?"),
        ("common words", "Why is the staging deploy script flaky after the migration?"),
        ("a long prompt (40 words, 16 searched)", &WORDS[..40].join(" ")),
    ] {
        let matching = store.search(&target, query, per_scope).await?.len();
        let mut times = Vec::with_capacity(searches);
        for _ in 0..searches {
            let began = Instant::now();
            std::hint::black_box(store.search(&target, query, 5).await?);
            times.push(began.elapsed());
        }
        times.sort_unstable();
        let at = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
        println!("| {name} | {matching} | {} | {} |", us(at(0.5)), us(at(0.99)));
    }
    println!();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
