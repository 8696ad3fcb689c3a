//! Facts, not transcripts (`memory.extraction_model`): a finished turn waits in a
//! durable queue until the extraction model has distilled it into a few short,
//! durable memories. A fact that updates an older memory supersedes it (the old one is
//! kept as history and no longer recalled); a near-duplicate of a memory already there
//! merges into it. When the model cannot help (it keeps failing, or answers something
//! that is not facts), the cleaned turn is stored as it would be without one: nothing
//! is lost.
//!
//! The model is asked for JSON in the prompt rather than through `response_format`,
//! which not every provider takes (Anthropic's messages API has none).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, warn};

use super::embedding::{self, Embeddings};
use super::store::{self, Stored};
use super::vectors::VectorCache;
use super::{NewMemory, Scope};
use crate::core::time::now_ms;
use crate::storage::Database;

/// The client name the gateway's own requests are recorded under.
pub const CLIENT: &str = "memory-proxy";

/// What the extraction model is told. The mock provider knows it by "durable facts".
pub const INSTRUCTIONS: &str = "You keep the long-term memory of a coding assistant. From the turn below, \
extract the few durable facts worth knowing in later conversations: decisions, conventions, names, preferences \
and facts about the environment (paths, ports, versions, commands). Leave out greetings, questions, and what is \
only true for the moment. Each fact is one short sentence that stands on its own. `known` lists memories already \
stored: when a fact updates or contradicts one of them, put that memory's id in the fact's `replaces`; do not \
repeat a known memory unchanged. Answer with JSON only, in this shape: \
{\"facts\": [{\"text\": \"...\", \"replaces\": [\"m1\"]}]}; with nothing worth keeping: {\"facts\": []}.";

/// Known memories shown to the model, so it can say which a fact replaces.
const KNOWN: usize = 8;
/// Facts kept from one turn at most, and the length of each.
const MAX_FACTS: usize = 8;
const MAX_FACT_BYTES: usize = 500;
/// Attempts at a turn before its cleaned text is stored instead.
const MAX_ATTEMPTS: i64 = 5;
/// Content-word overlap (Jaccard) from which two facts are one.
const DUPLICATE_WORDS: f64 = 0.8;
/// Cosine similarity from which two facts with the same numbers are one.
const DUPLICATE_MEANING: f32 = 0.95;

/// Queues a finished turn for extraction (in the journal's transaction).
pub fn enqueue(transaction: &Transaction<'_>, turn: &NewMemory) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT OR IGNORE INTO memory_extractions
             (id, scope, user_id, project, client, request_id, text, created_at, fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            turn.id,
            turn.scope.token(),
            turn.scope.user,
            turn.scope.project,
            turn.client,
            turn.request_id,
            turn.text,
            turn.created_at,
            turn.fingerprint,
        ])?;
    Ok(())
}

/// The chat request that asks `model` for the facts of `turn`.
pub fn request(model: &str, turn: &str, known: &[Stored]) -> Value {
    let known: Vec<Value> =
        known.iter().enumerate().map(|(i, memory)| json!({ "id": handle(i), "text": memory.text })).collect();
    json!({
        "model": model,
        "temperature": 0,
        "max_tokens": 600,
        "messages": [
            { "role": "system", "content": INSTRUCTIONS },
            { "role": "user", "content": json!({ "known": known, "turn": turn }).to_string() },
        ],
    })
}

/// The short id a known memory goes by in the prompt (the model copies it back).
fn handle(index: usize) -> String {
    format!("m{}", index + 1)
}

/// A fact the model found, with the known memories it replaces (their ids).
#[derive(Debug, PartialEq)]
pub struct Fact {
    pub text: String,
    pub replaces: Vec<String>,
}

#[derive(Deserialize)]
struct Answer {
    facts: Vec<AnswerFact>,
}

#[derive(Deserialize)]
struct AnswerFact {
    text: String,
    #[serde(default)]
    replaces: Vec<String>,
}

/// The facts of the model's chat completion `answer`; an error when it holds none in
/// the asked shape. A handle that names no known memory is ignored.
pub fn parse(answer: &Value, known: &[Stored]) -> Result<Vec<Fact>, String> {
    let content = answer["choices"][0]["message"]["content"].as_str().ok_or("the answer has no text")?;
    // Models like to wrap JSON in a code fence or a sentence.
    let json = match (content.find('{'), content.rfind('}')) {
        (Some(start), Some(end)) if start < end => &content[start..=end],
        _ => return Err("the answer holds no JSON object".to_owned()),
    };
    let answer: Answer = serde_json::from_str(json).map_err(|e| format!("the answer is not the facts: {e}"))?;
    let facts = answer
        .facts
        .into_iter()
        .filter_map(|fact| {
            let text = fact.text.trim();
            let text = &text[..text.floor_char_boundary(MAX_FACT_BYTES)];
            let replaces = fact
                .replaces
                .iter()
                .filter_map(|h| (0..known.len()).find(|&i| handle(i) == *h).map(|i| known[i].id.clone()))
                .collect();
            (!text.is_empty()).then(|| Fact { text: text.to_owned(), replaces })
        })
        .take(MAX_FACTS)
        .collect();
    Ok(facts)
}

/// A finished turn waiting for extraction.
struct Job {
    turn: NewMemory,
    attempts: i64,
}

/// What storing a turn's facts did.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    pub stored: usize,
    pub merged: usize,
    pub superseded: usize,
}

/// The local store's parts the facts are written to.
pub struct Target<'a> {
    pub database: &'a Database,
    pub embeddings: Option<Arc<Embeddings>>,
    pub vectors: &'a VectorCache,
}

/// Stores `facts` of `turn` in its scope, each embedded (with the model), and takes
/// the turn off the queue, in one transaction. `known` are the memories the model was
/// shown. A fact is merged, not stored, when it nearly repeats a memory it does not
/// replace or an earlier fact of the turn.
pub async fn apply(
    target: &Target<'_>,
    turn: &NewMemory,
    facts: Vec<Fact>,
    known: &[Stored],
) -> anyhow::Result<Applied> {
    // Without vectors (no model, or one that fails) the indexer embeds the facts later.
    let embeddings = target.embeddings.as_ref().filter(|_| !facts.is_empty());
    let vectors = match embeddings {
        Some(embeddings) => match embeddings.embed(&turn.scope, facts.iter().map(|f| f.text.clone()).collect()).await {
            Ok(vectors) => vectors.into_iter().map(Some).collect(),
            Err(error) => {
                warn!("the facts could not be embedded now: {error:#}");
                vec![None; facts.len()]
            }
        },
        None => vec![None; facts.len()],
    };
    let model = embeddings.map(|e| e.id().to_owned());
    let (turn, known) = (turn.clone(), known.to_vec());
    let token = turn.scope.token();
    let scope_token = token.clone();
    let (applied, added, retired) = target
        .database
        .with(move |connection| {
            let token = scope_token;
            let transaction = connection.transaction()?;
            if !take_from_queue(&transaction, &turn.id)? {
                return Ok((Applied::default(), Vec::new(), Vec::new()));
            }
            let known_vectors: Vec<Option<Vec<f32>>> = match &model {
                Some(model) => known.iter().map(|m| vector_of(&transaction, &m.id, model)).collect::<Result<_, _>>()?,
                None => vec![None; known.len()],
            };
            // What a new fact may repeat: the known memories it leaves in place, and
            // the facts of this turn stored before it.
            let mut kept: Vec<(String, Option<Vec<f32>>)> = Vec::new();
            let (mut applied, mut added, mut retired) = (Applied::default(), Vec::new(), Vec::new());
            for (fact, vector) in facts.into_iter().zip(vectors) {
                let standing = known.iter().zip(&known_vectors).filter(|(m, _)| !fact.replaces.contains(&m.id));
                let repeats = standing
                    .map(|(m, v)| (m.text.as_str(), v.as_deref()))
                    .chain(kept.iter().map(|(text, v)| (text.as_str(), v.as_deref())))
                    .any(|(text, v)| near_duplicate(&fact.text, text, similarity(vector.as_deref(), v)));
                let memory = NewMemory {
                    created_at: turn.created_at,
                    ..NewMemory::new(turn.scope.clone(), turn.client.clone(), turn.request_id.clone(), &fact.text)
                };
                let stored = if repeats { None } else { store::insert(&transaction, &memory)? };
                let Some(rowid) = stored else {
                    applied.merged += 1;
                    continue;
                };
                applied.stored += 1;
                // The id it is stored under: its own, or that of the superseded memory
                // it made current again.
                let id: String = transaction.query_row("SELECT id FROM memories WHERE rowid = ?1", [rowid], |row| row.get(0))?;
                if let (Some(model), Some(vector)) = (&model, &vector) {
                    transaction
                        .prepare_cached(
                            "INSERT OR REPLACE INTO memory_vectors (memory_rowid, scope, model, vector) VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![rowid, token, model, embedding::to_bytes(vector)])?;
                    added.push((rowid, vector.clone()));
                }
                for old in &fact.replaces {
                    let superseded: Option<i64> = transaction
                        .query_row(
                            "UPDATE memories SET superseded_by = ?1, superseded_at = ?2
                             WHERE id = ?3 AND scope = ?4 AND superseded_by IS NULL RETURNING rowid",
                            params![id, now_ms(), old, token],
                            |row| row.get(0),
                        )
                        .optional()?;
                    if let Some(rowid) = superseded {
                        store::unindex(&transaction, rowid)?;
                        retired.push(rowid);
                        applied.superseded += 1;
                    }
                }
                kept.push((memory.text, vector));
            }
            transaction.commit()?;
            Ok((applied, added, retired))
        })
        .await?;
    if let Some(embeddings) = &target.embeddings {
        for (rowid, vector) in &added {
            target.vectors.insert(&token, embeddings.id(), *rowid, vector);
        }
    }
    for rowid in retired {
        target.vectors.remove(&token, rowid);
    }
    Ok(applied)
}

/// Takes turn `id` off the queue; false when it is no longer there: it was deleted with
/// its scope while the model worked on it, and must leave nothing.
fn take_from_queue(transaction: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(transaction.prepare_cached("DELETE FROM memory_extractions WHERE id = ?1")?.execute([id])? > 0)
}

/// The vector of memory `id` by `model`, if it has one yet.
fn vector_of(transaction: &Transaction<'_>, id: &str, model: &str) -> rusqlite::Result<Option<Vec<f32>>> {
    transaction
        .prepare_cached(
            "SELECT v.vector FROM memory_vectors v JOIN memories m ON m.rowid = v.memory_rowid
             WHERE m.id = ?1 AND v.model = ?2",
        )?
        .query_row(params![id, model], |row| row.get::<_, Vec<u8>>(0))
        .optional()
        .map(|bytes| bytes.map(|b| embedding::from_bytes(&b)))
}

fn similarity(a: Option<&[f32]>, b: Option<&[f32]>) -> Option<f32> {
    let (a, b) = (a?, b?);
    Some(a.iter().zip(b).map(|(x, y)| x * y).sum())
}

/// Two facts are one when they share nearly all their content words, or mean nearly
/// the same; never when their numbers differ ("port 5433" and "port 6543" are an
/// update, however alike they read).
fn near_duplicate(a: &str, b: &str, similarity: Option<f32>) -> bool {
    let (words_a, words_b) = (store::content_words(a), store::content_words(b));
    let numbers = |words: &BTreeSet<String>| -> BTreeSet<String> {
        words.iter().filter(|w| w.chars().any(|c| c.is_ascii_digit())).cloned().collect()
    };
    if numbers(&words_a) != numbers(&words_b) {
        return false;
    }
    let union = words_a.union(&words_b).count();
    let shared = words_a.intersection(&words_b).count();
    (union > 0 && shared as f64 / union as f64 >= DUPLICATE_WORDS) || similarity.is_some_and(|s| s >= DUPLICATE_MEANING)
}

/// The queued turns due now, oldest first.
async fn due(database: &Database, limit: usize) -> anyhow::Result<Vec<Job>> {
    let now = now_ms();
    database
        .with(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT id, user_id, project, client, request_id, text, created_at, fingerprint, attempts
                 FROM memory_extractions WHERE next_attempt_at <= ?1 ORDER BY created_at LIMIT ?2",
            )?;
            let rows = select.query_map(params![now, limit as i64], |row| {
                Ok(Job {
                    turn: NewMemory {
                        id: row.get(0)?,
                        scope: Scope { user: row.get(1)?, project: row.get(2)? },
                        client: row.get(3)?,
                        request_id: row.get(4)?,
                        text: row.get(5)?,
                        created_at: row.get(6)?,
                        fingerprint: row.get(7)?,
                    },
                    attempts: row.get(8)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// A failed attempt: the turn waits longer each time (2 s doubling: all attempts
/// take half a minute).
async fn retry_later(database: &Database, job: &Job, error: &str) -> anyhow::Result<()> {
    let (id, attempts, error) = (job.turn.id.clone(), job.attempts + 1, error.to_owned());
    let next = now_ms() + (1_000_i64 << attempts.min(10));
    database
        .with(move |connection| {
            connection.execute(
                "UPDATE memory_extractions SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE id = ?1",
                params![id, attempts, next, error],
            )?;
            Ok(())
        })
        .await
}

/// What the extraction worker needs from the gateway.
pub trait Host: Send + Sync + 'static {
    /// The extraction model of the current config (None: extraction is off).
    fn extraction_model(&self) -> Option<String>;
    /// The local store's parts.
    fn target(&self) -> Target<'_>;
    /// The memories of `scope` most relevant to `text`.
    fn related(
        &self,
        scope: &Scope,
        text: &str,
        limit: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<Stored>>> + Send;
    /// Sends the gateway's own chat request (`body`) for `scope`, recorded like any.
    fn chat(&self, scope: &Scope, body: Value) -> impl Future<Output = anyhow::Result<Value>> + Send;
    /// New memories were stored without vectors (the indexer embeds them).
    fn stored_turn(&self);
}

/// Starts the worker that drains the queue: one turn at a time, woken by `notify` or
/// every few seconds.
pub fn start(host: impl Host, notify: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                // The turn is committed with its journal batch (50 ms windows).
                () = notify.notified() => tokio::time::sleep(Duration::from_millis(100)).await,
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            if let Err(error) = drain(&host).await {
                warn!("the fact extraction queue could not be read: {error:#}");
            }
        }
    });
}

async fn drain(host: &impl Host) -> anyhow::Result<()> {
    loop {
        let jobs = due(host.target().database, 16).await?;
        if jobs.is_empty() {
            return Ok(());
        }
        for job in jobs {
            extract(host, job).await?;
        }
    }
}

/// Distils one turn. A model that fails is tried again later, up to [`MAX_ATTEMPTS`];
/// one that answers something other than facts will not do better the next time. A
/// failure of the database stops the round.
async fn extract(host: &impl Host, job: Job) -> anyhow::Result<()> {
    let target = host.target();
    let Some(model) = host.extraction_model() else {
        return store_turn(host, &job.turn).await;
    };
    let known = host.related(&job.turn.scope, &job.turn.text, KNOWN).await.context("finding related memories")?;
    match host.chat(&job.turn.scope, request(&model, &job.turn.text, &known)).await {
        Ok(answer) => match parse(&answer, &known) {
            Ok(facts) => {
                let applied = apply(&target, &job.turn, facts, &known).await?;
                debug!(stored = applied.stored, merged = applied.merged, superseded = applied.superseded, "facts");
                for (outcome, count) in
                    [("stored", applied.stored), ("merged", applied.merged), ("superseded", applied.superseded)]
                {
                    metrics::counter!("memory_proxy_memory_facts_total", "outcome" => outcome).increment(count as u64);
                }
                Ok(())
            }
            Err(error) => {
                warn!("the extraction model answered no facts ({error}); the turn is stored as it is");
                store_turn(host, &job.turn).await
            }
        },
        Err(error) if job.attempts + 1 >= MAX_ATTEMPTS => {
            warn!(attempts = job.attempts + 1, "fact extraction gave up; the turn is stored as it is: {error:#}");
            store_turn(host, &job.turn).await
        }
        Err(error) => {
            warn!(attempts = job.attempts + 1, "fact extraction failed; it is tried again: {error:#}");
            retry_later(target.database, &job, &format!("{error:#}")).await
        }
    }
}

/// Stores the cleaned turn itself (extraction is off, or failed for good) and takes
/// it off the queue.
async fn store_turn(host: &impl Host, turn: &NewMemory) -> anyhow::Result<()> {
    let turn = turn.clone();
    host.target()
        .database
        .with(move |connection| {
            let transaction = connection.transaction()?;
            if take_from_queue(&transaction, &turn.id)? {
                store::insert(&transaction, &turn)?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await?;
    metrics::counter!("memory_proxy_memory_facts_total", "outcome" => "turn_stored").increment(1);
    host.stored_turn();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(texts: &[&str]) -> Vec<Stored> {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| Stored {
                id: format!("id-{i}"),
                text: (*text).to_owned(),
                client: None,
                request_id: None,
                created_at: 1,
                score: None,
                superseded_by: None,
            })
            .collect()
    }

    fn answer(content: &str) -> Value {
        json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] })
    }

    #[test]
    fn the_request_shows_the_turn_and_the_known_memories_by_handle() {
        let body = request("small", "User: we use port 5433", &known(&["Staging is on port 6543"]));
        assert_eq!(body["model"], "small");
        assert!(body.get("response_format").is_none(), "not every provider takes it");
        let shown: Value = serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
        assert_eq!(
            shown,
            json!({ "known": [{ "id": "m1", "text": "Staging is on port 6543" }], "turn": "User: we use port 5433" })
        );
    }

    #[test]
    fn answers_become_facts_with_the_ids_they_replace() {
        let known = known(&["a", "b"]);
        let fenced = "Here you are:\n```json\n{\"facts\": [{\"text\": \" Tabs, not spaces. \", \"replaces\": [\"m2\", \"m9\"]}, {\"text\": \"\"}, {\"text\": \"Port 5433\"}]}\n```";
        let facts = parse(&answer(fenced), &known).unwrap();
        assert_eq!(
            facts,
            [
                Fact { text: "Tabs, not spaces.".into(), replaces: vec!["id-1".into()] },
                Fact { text: "Port 5433".into(), replaces: vec![] }
            ]
        );
        assert_eq!(parse(&answer("{\"facts\": []}"), &known).unwrap(), []);
        for bad in ["no json here", "{\"memories\": []}", "{\"facts\": [{\"txt\": 1}]}"] {
            assert!(parse(&answer(bad), &known).is_err(), "{bad}");
        }
        assert!(parse(&json!({ "choices": [] }), &known).is_err());
        let many: Vec<Value> = (0..20).map(|i| json!({ "text": format!("fact {i}") })).collect();
        let many = answer(&json!({ "facts": many }).to_string());
        assert_eq!(parse(&many, &known).unwrap().len(), MAX_FACTS);
    }

    /// A gateway whose extraction model answers from a list.
    struct FakeHost {
        database: Database,
        store: store::MemoryStore,
        answers: std::sync::Mutex<Vec<anyhow::Result<Value>>>,
        asked: std::sync::Mutex<Vec<Value>>,
    }

    impl Host for FakeHost {
        fn extraction_model(&self) -> Option<String> {
            Some("small".into())
        }
        fn target(&self) -> Target<'_> {
            self.store.facts_target()
        }
        async fn related(&self, scope: &Scope, text: &str, limit: usize) -> anyhow::Result<Vec<Stored>> {
            self.store.search(scope, text, limit).await
        }
        async fn chat(&self, _: &Scope, body: Value) -> anyhow::Result<Value> {
            self.asked.lock().unwrap().push(body);
            self.answers.lock().unwrap().remove(0)
        }
        fn stored_turn(&self) {}
    }

    fn host(answers: Vec<anyhow::Result<Value>>) -> (FakeHost, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mp-facts-{}", uuid::Uuid::now_v7()));
        let database = Database::open(&dir.join("test.db")).unwrap();
        let store = store::MemoryStore::open(&database, None).unwrap();
        let host = FakeHost { database, store, answers: answers.into(), asked: Default::default() };
        (host, dir)
    }

    async fn queue(host: &FakeHost, turn: &NewMemory) {
        let turn = turn.clone();
        host.database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                enqueue(&transaction, &turn)?;
                Ok(transaction.commit()?)
            })
            .await
            .unwrap();
    }

    async fn waiting(host: &FakeHost) -> i64 {
        let count = |c: &mut rusqlite::Connection| {
            Ok(c.query_row("SELECT COUNT(*) FROM memory_extractions", [], |row| row.get(0))?)
        };
        host.database.with(count).await.unwrap()
    }

    fn facts(list: Value) -> anyhow::Result<Value> {
        Ok(answer(&json!({ "facts": list }).to_string()))
    }

    #[tokio::test]
    async fn a_fact_supersedes_the_memory_it_updates_and_near_duplicates_merge() {
        let ana = Scope { user: "ana".into(), project: Some("/srv/shop".into()) };
        let (host, dir) = host(vec![facts(json!([
            { "text": "The staging database is on port 6543.", "replaces": ["m1"] },
            { "text": "The user prefers tabs." },
            { "text": "User prefers tabs" },
        ]))]);
        let old = NewMemory::new(ana.clone(), None, None, "The staging database is on port 5433.");
        let old_id = host.store.add(old).await.unwrap();
        let turn = NewMemory::new(
            ana.clone(),
            Some("claude-code".into()),
            Some("req-1".into()),
            "User: staging database moved to 6543; I prefer tabs",
        );
        queue(&host, &turn).await;

        drain(&host).await.unwrap();
        let shown = host.asked.lock().unwrap()[0]["messages"][1]["content"].as_str().unwrap().to_owned();
        assert!(shown.contains(r#""id":"m1","text":"The staging database is on port 5433.""#), "{shown}");
        let all = host.store.all(&ana).await.unwrap();
        let texts: Vec<&str> = all.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "The staging database is on port 5433.",
                "The staging database is on port 6543.",
                "The user prefers tabs."
            ]
        );
        assert_eq!(all[0].superseded_by.as_deref(), Some(all[1].id.as_str()), "kept as history");
        assert_eq!(all[0].id, old_id);
        assert!(all[1..].iter().all(|m| m.superseded_by.is_none() && m.request_id.as_deref() == Some("req-1")));
        assert_eq!(all[1].client.as_deref(), Some("claude-code"));
        let found = host.store.search(&ana, "staging database port", 5).await.unwrap();
        assert_eq!(
            found.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            ["The staging database is on port 6543."]
        );
        assert_eq!(waiting(&host).await, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_fact_that_changes_back_makes_the_superseded_memory_current_again() {
        let ana = Scope { user: "ana".into(), project: None };
        let (host, dir) = host(vec![
            facts(json!([{ "text": "Staging is on port 6543.", "replaces": ["m1"] }])),
            facts(json!([{ "text": "Staging is on port 5433.", "replaces": ["m1"] }])),
        ]);
        host.store.add(NewMemory::new(ana.clone(), None, None, "Staging is on port 5433.")).await.unwrap();
        for said in ["User: staging moved to port 6543", "User: staging is back on port 5433"] {
            queue(&host, &NewMemory::new(ana.clone(), None, None, said)).await;
            drain(&host).await.unwrap();
        }
        let all = host.store.all(&ana).await.unwrap();
        let (first, second) = (&all[0], &all[1]);
        assert_eq!(first.text, "Staging is on port 5433.");
        assert_eq!(first.superseded_by, None, "current again");
        assert_eq!(second.superseded_by.as_deref(), Some(first.id.as_str()));
        let found = host.store.search(&ana, "staging port", 5).await.unwrap();
        assert_eq!(found.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["Staging is on port 5433."]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_turn_whose_scope_was_deleted_meanwhile_leaves_nothing() {
        let ana = Scope { user: "ana".into(), project: None };
        let (host, dir) = host(Vec::new());
        let turn = NewMemory::new(ana.clone(), None, None, "User: the cat is called Miso");
        queue(&host, &turn).await;
        host.store.delete_scope(&ana).await.unwrap();
        let fact = vec![Fact { text: "The cat is called Miso.".into(), replaces: Vec::new() }];
        assert_eq!(apply(&host.store.facts_target(), &turn, fact, &[]).await.unwrap(), Applied::default());
        assert!(host.store.all(&ana).await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_turn_the_model_cannot_distil_is_stored_as_it_is() {
        let ana = Scope { user: "ana".into(), project: None };
        let failures = (0..MAX_ATTEMPTS).map(|_| Err(anyhow::anyhow!("503"))).collect();
        let (host, dir) = host(failures);
        let turn = NewMemory::new(ana.clone(), None, None, "User: deploys happen on Fridays");
        queue(&host, &turn).await;
        for attempt in 1..MAX_ATTEMPTS {
            drain(&host).await.unwrap();
            assert_eq!(waiting(&host).await, 1, "waits after failed attempt {attempt}");
            assert!(host.store.all(&ana).await.unwrap().is_empty());
            drain(&host).await.unwrap();
            assert_eq!(host.asked.lock().unwrap().len() as i64, attempt, "not due again yet");
            host.database
                .with(|c| Ok(c.execute("UPDATE memory_extractions SET next_attempt_at = 0", [])?))
                .await
                .unwrap();
        }
        drain(&host).await.unwrap();
        assert_eq!(host.store.all(&ana).await.unwrap()[0].text, "User: deploys happen on Fridays");
        assert_eq!(waiting(&host).await, 0);

        host.answers.lock().unwrap().push(Ok(answer("I cannot help with that.")));
        queue(&host, &NewMemory::new(ana.clone(), None, None, "User: the cat is called Miso")).await;
        drain(&host).await.unwrap();
        assert_eq!(host.store.all(&ana).await.unwrap()[1].text, "User: the cat is called Miso", "at once");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn near_duplicates_share_their_words_and_numbers() {
        assert!(near_duplicate("The user prefers tabs.", "User prefers tabs", None));
        assert!(!near_duplicate("Staging runs on port 5433", "Staging runs on port 6543", Some(0.99)), "an update");
        assert!(near_duplicate("Deploys go out on Saturday", "Releases happen every Saturday", Some(0.96)));
        assert!(!near_duplicate("Deploys go out on Saturday", "The cat is called Miso", Some(0.1)));
    }
}
