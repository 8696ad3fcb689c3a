//! The local memory store at scale: memories written through the real writer, then
//! searches of one scope timed as the request path makes them (pooled connection,
//! blocking pool).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use memory_proxy::services::journal::Journal;
use memory_proxy::services::memory::embedding::{self, Embedder};
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
    let store = MemoryStore::open(&database, None)?;
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

/// Memory by meaning: loading the embedding model, embedding one query, and hybrid
/// searches (words and vectors fused) of one scope of 10,000 and 100,000 memories.
/// The scaling memories get random unit vectors: scanning costs the same whatever
/// they hold, and embedding 100,000 texts would take the run half an hour.
pub async fn semantic(searches: usize) -> Result<()> {
    println!("## Memory by meaning\n");
    let Some(dir) = embedding::model_dir() else {
        println!("The embedding model is not installed (`cargo xtask test` or `run` installs it): skipped.\n");
        return Ok(());
    };
    let before = rss_mib();
    let began = Instant::now();
    let embedder = Arc::new(Embedder::load(&dir)?);
    let loaded = began.elapsed();
    let question = "On which day of the week do we deploy to production?";
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let began = Instant::now();
        std::hint::black_box(embedder.embed(question)?);
        times.push(began.elapsed());
    }
    times.sort_unstable();
    let at = |times: &[Duration], p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "{} loaded in {:.0} ms, RSS {:.0} MiB more ({:.0} MiB in all); one query of 11 words embedded in {} p50, {} p99 (200 runs, this process pinned to one core).\n",
        embedder.id,
        loaded.as_secs_f64() * 1e3,
        rss_mib() - before,
        rss_mib(),
        us(at(&times, 0.5)),
        us(at(&times, 0.99)),
    );
    let query = embedder.embed(question)?;
    println!("| hybrid search, one scope (top 5) | memories in the scope | p50 | p99 |");
    println!("|---|---|---|---|");
    for size in [10_000, 100_000] {
        let dir = std::env::temp_dir().join(format!("memory-proxy-semantic-{}-{size}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let database = Database::open(&dir.join("bench.db"))?;
        let target = scope(0);
        seed(&database, &target, size, 50).await?;
        seed_vectors(&database, &target).await?;
        let store = MemoryStore::open(&database, Some(embedder.clone()))?;
        let began = Instant::now();
        store.search_embedded(&target, question, &embedder.id, query.clone(), 5).await?;
        println!("| the first search (reads the scope's vectors into memory) | {size} | {} | |", us(began.elapsed()));
        let mut times = Vec::with_capacity(searches);
        for _ in 0..searches {
            let began = Instant::now();
            std::hint::black_box(store.search_embedded(&target, question, &embedder.id, query.clone(), 5).await?);
            times.push(began.elapsed());
        }
        times.sort_unstable();
        println!(
            "| later searches (its embedding given) | {size} | {} | {} |",
            us(at(&times, 0.5)),
            us(at(&times, 0.99))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!();
    Ok(())
}

/// Recall quality on `host/bench/fixtures/recall.json`: recall@5 of each question's
/// fact, by words only, by meaning only and hybrid, and how often another scope's
/// facts came back (leaks).
pub async fn quality() -> Result<()> {
    println!("## Recall quality\n");
    let Some(dir) = embedding::model_dir() else {
        println!("The embedding model is not installed: skipped.\n");
        return Ok(());
    };
    let embedder = Arc::new(Embedder::load(&dir)?);
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("host/bench/fixtures/recall.json")?)?;
    let texts = |key: &str| -> Vec<String> {
        fixture[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    let (distractors, others) = (texts("distractors"), texts("other_scope_facts"));
    let cases: Vec<(String, String, bool)> = fixture["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (field("fact"), field("question"), c["shares_word"].as_bool().unwrap_or(false))
        })
        .collect();
    let work = std::env::temp_dir().join(format!("memory-proxy-quality-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let database = Database::open(&work.join("bench.db"))?;
    let (ana, bob) = (scope(0), scope(1));
    let writer = Journal::start(&database, 10_000)?;
    for text in cases.iter().map(|c| &c.0).chain(&distractors) {
        writer.memory(NewMemory::new(ana.clone(), None, None, &format!("User: {text}")));
    }
    for text in others.iter().chain(&distractors) {
        writer.memory(NewMemory::new(bob.clone(), None, None, &format!("User: {text}")));
    }
    writer.flush().await;
    writer.stop();
    let indexer = embedder.clone();
    database
        .with(move |connection| {
            let rows: Vec<(i64, String, String)> = connection
                .prepare("SELECT rowid, scope, text FROM memories")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let transaction = connection.transaction()?;
            for (rowid, scope, text) in rows {
                let vector = embedding::to_bytes(&indexer.embed(&text)?);
                transaction.execute(
                    "INSERT INTO memory_vectors (memory_rowid, scope, model, vector) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![rowid, scope, indexer.id, vector],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await?;
    let by_words = MemoryStore::open(&database, None)?;
    let hybrid = MemoryStore::open(&database, Some(embedder.clone()))?;
    println!(
        "| ranking | recall@5, question shares a distinctive word | recall@5, shares none | other scope's facts returned |"
    );
    println!("|---|---|---|---|");
    for mode in ["words only", "meaning only", "hybrid"] {
        let (mut with_word, mut without, mut leaks) = ((0, 0), (0, 0), 0);
        for (fact, question, shares_word) in &cases {
            let search = |target: Scope| {
                let (by_words, hybrid, embedder) = (&by_words, &hybrid, &embedder);
                async move {
                    match mode {
                        "words only" => by_words.search(&target, question, 5).await,
                        "meaning only" => {
                            let vector = embedder.embed(question)?;
                            hybrid.search_embedded(&target, "", &embedder.id, vector, 5).await
                        }
                        _ => hybrid.search(&target, question, 5).await,
                    }
                }
            };
            let found = search(ana.clone()).await?;
            let hit = found.iter().any(|m| m.text.contains(fact.as_str()));
            let tally = if *shares_word { &mut with_word } else { &mut without };
            *tally = (tally.0 + usize::from(hit), tally.1 + 1);
            // Bob's scope holds none of Ana's facts; neither may come back in the other.
            leaks += found.iter().filter(|m| others.iter().any(|o| m.text.contains(o.as_str()))).count();
            let theirs = search(bob.clone()).await?;
            leaks += theirs.iter().filter(|m| cases.iter().any(|c| m.text.contains(c.0.as_str()))).count();
        }
        let percent = |(hits, all): (usize, usize)| format!("{}% ({hits}/{all})", hits * 100 / all.max(1));
        println!("| {mode} | {} | {} | {leaks} |", percent(with_word), percent(without));
    }
    println!();
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Random unit vectors of the embedded model for every memory of `scope`: what the
/// indexer would write, without the half hour of embedding (a scan costs the same
/// whatever the vectors hold).
pub async fn seed_vectors(database: &Database, scope: &Scope) -> Result<()> {
    let token = scope.token();
    database
        .with(move |connection| {
            let rowids: Vec<i64> = connection
                .prepare("SELECT rowid FROM memories WHERE scope = ?1")?
                .query_map([&token], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let transaction = connection.transaction()?;
            {
                let mut random = Lcg(5);
                let mut insert = transaction
                    .prepare("INSERT OR REPLACE INTO memory_vectors (memory_rowid, scope, model, vector) VALUES (?1, ?2, ?3, ?4)")?;
                for rowid in rowids {
                    let mut vector: Vec<f32> = (0..384).map(|_| (random.next() % 2_000) as f32 / 1_000.0 - 1.0).collect();
                    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                    vector.iter_mut().for_each(|x| *x /= norm);
                    insert.execute(rusqlite::params![rowid, token, embedding::MODEL, embedding::to_bytes(&vector)])?;
                }
            }
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// This process's resident memory.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
