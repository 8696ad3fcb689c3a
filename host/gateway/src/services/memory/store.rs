//! The local memory store: memories in the gateway's SQLite database, found by
//! full-text search within their scope.
//!
//! The index holds each memory's words prefixed with its scope's token, so a word's
//! postings are one scope's own: a search reads nothing of other scopes, however large
//! the store. FTS5 finds the scope's newest memories sharing a word with the query;
//! they are ranked here, by BM25 over those candidates. (Ranking with FTS5's bm25() on
//! a shared index counted each word over every scope on every search: 15 ms for common
//! words in a store of 100,000 memories; docs/benchmarks.md.)
//!
//! Reads use a small pool of connections on the blocking pool; captured memories are
//! written by the storage writer with the request records, added ones directly.

use std::sync::Arc;

/// The columns of a memory [`stored`] reads, in its order.
macro_rules! columns {
    () => {
        "id, text, client, request_id, created_at, superseded_by"
    };
}

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::embedding::{self, CurrentEmbeddings, Embedded, Embedder, Embeddings};
use super::facts;
use super::vectors::{Block, VectorCache};
use super::{NewMemory, Scope};
use crate::config::Retention;
use crate::core::time::now_ms;
use crate::storage::{Database, Readers};

/// A memory as stored, with its relevance when it was found by a search.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stored {
    pub id: String,
    pub text: String,
    pub client: Option<String>,
    pub request_id: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Relevance to the search, 0 to 1 (none when listed rather than searched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The memory that replaced this one (a newer fact): kept as history, not recalled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

/// One scope of the store, counted (the dashboard's memory view).
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct ScopeCount {
    pub user: String,
    pub project: Option<String>,
    pub memories: i64,
    /// Of `memories`, those superseded by newer facts (history).
    pub superseded: i64,
    /// Unix milliseconds of the newest memory.
    pub newest_at: i64,
}

pub struct MemoryStore {
    database: Database,
    readers: Readers,
    /// With a model, recall is hybrid: words and meaning, fused by rank.
    embeddings: CurrentEmbeddings,
    vectors: Arc<VectorCache>,
}

/// How many search terms of a query count: each costs a posting list to merge.
const MAX_TERMS: usize = 16;
/// How many of the newest matching memories are ranked: enough to find an old fact
/// by a rare word, bounded for common ones.
const CANDIDATES: usize = 100;

/// How long a request waits for its question's embedding (an embedding deployment
/// may hang) before it recalls by words alone.
const QUERY_EMBEDDING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Below this cosine similarity a memory is not related enough to recall by meaning.
const SIMILARITY_FLOOR: f32 = 0.3;
/// Reciprocal rank fusion's constant: how much the top ranks outweigh the next.
const RRF_K: f64 = 60.0;

/// The form of the index's words [`insert`] writes (the `memory_index_form` table).
const INDEX_FORM: i64 = 2;

impl MemoryStore {
    /// The store in `database`, recalling by meaning too with `embedder`; its index is
    /// rebuilt first if an older version wrote it.
    pub fn open(database: &Database, embedder: Option<Arc<Embedder>>) -> anyhow::Result<Self> {
        let embeddings = Arc::new(arc_swap::ArcSwapOption::from_pointee(embedder.map(Embeddings::Local)));
        Self::open_with(database, embeddings)
    }

    /// The same, with the embeddings the gateway's config names at the time.
    pub fn open_with(database: &Database, embeddings: CurrentEmbeddings) -> anyhow::Result<Self> {
        reindex_if_older(&mut database.connect()?)?;
        Ok(Self { database: database.clone(), readers: Readers::new(database), embeddings, vectors: Arc::default() })
    }

    /// The scopes' vectors as searches see them; the indexer adds to them.
    pub fn vectors(&self) -> Arc<VectorCache> {
        self.vectors.clone()
    }

    /// Where extracted facts are written.
    pub fn facts_target(&self) -> facts::Target<'_> {
        facts::Target { database: &self.database, embeddings: self.embeddings.load_full(), vectors: &self.vectors }
    }

    /// The scope's memories most relevant to `query`, best first: by its words (BM25
    /// over the scope's candidates) and, with the embedding model, by meaning (cosine
    /// over the scope's vectors), the two rankings fused.
    pub async fn search(&self, scope: &Scope, query: &str, limit: usize) -> anyhow::Result<Vec<Stored>> {
        Ok(self.search_with_vector(scope, query, limit).await?.0)
    }

    /// The same search, and the query's embedding when one was made (a turn that
    /// asked it reuses it for its own memory).
    pub async fn search_with_vector(
        &self,
        scope: &Scope,
        query: &str,
        limit: usize,
    ) -> anyhow::Result<(Vec<Stored>, Option<Embedded>)> {
        let terms = search_terms(query);
        let embeddings = self.embeddings.load_full();
        if (terms.is_empty() && embeddings.is_none()) || limit == 0 || query.trim().is_empty() {
            return Ok((Vec::new(), None));
        }
        let embedded = match &embeddings {
            Some(embeddings) => embed_query(embeddings, scope, query).await,
            None => None,
        };
        let meaning = embedded.clone().map(|e| (e.model, e.vector));
        let (token, vectors) = (scope.token(), self.vectors.clone());
        let found =
            self.readers.read(move |connection| hybrid(connection, &vectors, &token, &terms, meaning, limit)).await?;
        Ok((found, embedded))
    }

    /// The same search for a query whose embedding (by `model`) is known already.
    pub async fn search_embedded(
        &self,
        scope: &Scope,
        query: &str,
        model: &str,
        vector: Vec<f32>,
        limit: usize,
    ) -> anyhow::Result<Vec<Stored>> {
        let (token, terms, model, vectors) =
            (scope.token(), search_terms(query), model.to_owned(), self.vectors.clone());
        self.readers
            .read(move |connection| hybrid(connection, &vectors, &token, &terms, Some((model, vector)), limit))
            .await
    }

    /// The scope's memories, newest first.
    pub async fn list(&self, scope: &Scope, limit: usize) -> anyhow::Result<Vec<Stored>> {
        let token = scope.token();
        self.readers
            .read(move |connection| {
                let mut select = connection.prepare_cached(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM memories WHERE scope = ?1 ORDER BY rowid DESC LIMIT ?2"
                ))?;
                let rows = select.query_map(params![token, limit as i64], stored)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Every memory of the scope, oldest first (an export).
    pub async fn all(&self, scope: &Scope) -> anyhow::Result<Vec<Stored>> {
        let token = scope.token();
        self.readers
            .read(move |connection| {
                let mut select = connection.prepare_cached(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM memories WHERE scope = ?1 ORDER BY rowid"
                ))?;
                let rows = select.query_map([token], stored)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// The scopes holding the most memories, with their counts; and how many turns wait
    /// for fact extraction.
    pub async fn scopes(&self, limit: usize) -> anyhow::Result<(Vec<ScopeCount>, i64)> {
        self.readers
            .read(move |connection| {
                let mut select = connection.prepare_cached(
                    "SELECT user_id, project, COUNT(*), COUNT(superseded_by), MAX(created_at) FROM memories
                     GROUP BY scope ORDER BY COUNT(*) DESC, MAX(created_at) DESC LIMIT ?1",
                )?;
                let rows = select.query_map([limit as i64], |row| {
                    Ok(ScopeCount {
                        user: row.get(0)?,
                        project: row.get(1)?,
                        memories: row.get(2)?,
                        superseded: row.get(3)?,
                        newest_at: row.get(4)?,
                    })
                })?;
                let scopes = rows.collect::<Result<Vec<_>, _>>()?;
                let waiting = connection.query_row("SELECT COUNT(*) FROM memory_extractions", [], |row| row.get(0))?;
                Ok((scopes, waiting))
            })
            .await
    }

    /// The memories of these ids that still exist, whatever their scope (for the
    /// master key's analytics only).
    pub async fn by_ids(&self, ids: Vec<String>) -> anyhow::Result<Vec<Stored>> {
        self.readers
            .read(move |connection| {
                let mut select =
                    connection.prepare_cached(concat!("SELECT ", columns!(), " FROM memories WHERE id = ?1"))?;
                let mut found = Vec::with_capacity(ids.len());
                for id in &ids {
                    found.extend(select.query_row([id], stored).optional()?);
                }
                Ok(found)
            })
            .await
    }

    /// Deletes every memory of the scope (with its index entries and vectors); how many.
    pub async fn delete_scope(&self, scope: &Scope) -> anyhow::Result<usize> {
        let (token, vectors) = (scope.token(), self.vectors.clone());
        self.database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                let rowids: Vec<i64> = transaction
                    .prepare("DELETE FROM memories WHERE scope = ?1 RETURNING rowid")?
                    .query_map([&token], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                for rowid in &rowids {
                    unindex(&transaction, *rowid)?;
                }
                // Turns still waiting for fact extraction are the scope's memories too.
                transaction.execute("DELETE FROM memory_extractions WHERE scope = ?1", [&token])?;
                transaction.commit()?;
                vectors.remove_scope(&token);
                Ok(rowids.len())
            })
            .await
    }

    /// Deletes what `retention` does not keep: in every scope, memories older than its
    /// age and the oldest beyond its count. How many went.
    pub async fn enforce(&self, retention: Retention) -> anyhow::Result<usize> {
        if retention == Retention::default() {
            return Ok(0);
        }
        let vectors = self.vectors.clone();
        self.database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                let mut gone: Vec<(i64, String)> = Vec::new();
                if let Some(age) = retention.max_age {
                    let cutoff = now_ms() - age.as_millis() as i64;
                    let mut delete =
                        transaction.prepare("DELETE FROM memories WHERE created_at < ?1 RETURNING rowid, scope")?;
                    let rows = delete.query_map([cutoff], |row| Ok((row.get(0)?, row.get(1)?)))?;
                    gone.extend(rows.collect::<Result<Vec<_>, _>>()?);
                }
                if let Some(max) = retention.max_memories {
                    let over: Vec<(String, i64)> = transaction
                        .prepare("SELECT scope, COUNT(*) - ?1 FROM memories GROUP BY scope HAVING COUNT(*) > ?1")?
                        .query_map([max as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
                        .collect::<Result<_, _>>()?;
                    let mut delete = transaction.prepare(
                        "DELETE FROM memories WHERE rowid IN
                         (SELECT rowid FROM memories WHERE scope = ?1 ORDER BY rowid LIMIT ?2) RETURNING rowid",
                    )?;
                    for (scope, excess) in over {
                        let rows = delete.query_map(params![scope, excess], |row| row.get::<_, i64>(0))?;
                        for rowid in rows {
                            gone.push((rowid?, scope.clone()));
                        }
                    }
                }
                for (rowid, _) in &gone {
                    unindex(&transaction, *rowid)?;
                }
                transaction.commit()?;
                for (rowid, scope) in &gone {
                    vectors.remove(scope, *rowid);
                }
                Ok(gone.len())
            })
            .await
    }

    /// Stores a memory now (the memory API; captured turns go through the writer).
    /// The id it is stored under: its own, or that of the same memory stored before.
    pub async fn add(&self, memory: NewMemory) -> anyhow::Result<String> {
        self.database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                let stored = insert(&transaction, &memory)?;
                let id = match stored {
                    Some(rowid) => {
                        transaction.query_row("SELECT id FROM memories WHERE rowid = ?1", [rowid], |row| row.get(0))?
                    }
                    None => transaction.query_row(
                        "SELECT id FROM memories WHERE scope = ?1 AND fingerprint = ?2",
                        params![memory.scope.token(), memory.fingerprint],
                        |row| row.get(0),
                    )?,
                };
                transaction.commit()?;
                Ok(id)
            })
            .await
    }

    /// Stores `memories` in one transaction; how many were new (the rest were there).
    pub async fn import(&self, memories: Vec<NewMemory>) -> anyhow::Result<usize> {
        self.database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                let mut stored = 0;
                for memory in &memories {
                    stored += usize::from(insert(&transaction, memory)?.is_some());
                }
                transaction.commit()?;
                Ok(stored)
            })
            .await
    }

    /// Deletes a memory of `scope`; false when the scope has no memory `id`.
    pub async fn delete(&self, scope: &Scope, id: String) -> anyhow::Result<bool> {
        let (token, vectors) = (scope.token(), self.vectors.clone());
        self.database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                let rowid: Option<i64> = transaction
                    .query_row(
                        "DELETE FROM memories WHERE id = ?1 AND scope = ?2 RETURNING rowid",
                        params![id, token],
                        |row| row.get(0),
                    )
                    .optional()?;
                if let Some(rowid) = rowid {
                    unindex(&transaction, rowid)?;
                }
                transaction.commit()?;
                if let Some(rowid) = rowid {
                    vectors.remove(&token, rowid);
                }
                Ok(rowid.is_some())
            })
            .await
    }
}

/// Stores and indexes `memory` in `transaction`: the rowid it is stored under, or None
/// when it is there already (its id, or its fingerprint in its scope), so a replayed
/// write or a resent turn cannot duplicate. A superseded memory of the same
/// fingerprint is current again (a fact that changed back), with this one's time.
pub fn insert(transaction: &Transaction<'_>, memory: &NewMemory) -> rusqlite::Result<Option<i64>> {
    let mut insert = transaction.prepare_cached(
        "INSERT OR IGNORE INTO memories (id, scope, user_id, project, client, request_id, text, created_at, fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let token = memory.scope.token();
    let inserted = insert.execute(params![
        memory.id,
        token,
        memory.scope.user,
        memory.scope.project,
        memory.client,
        memory.request_id,
        memory.text,
        memory.created_at,
        memory.fingerprint,
    ])?;
    if inserted > 0 {
        let rowid = transaction.last_insert_rowid();
        index(transaction, rowid, &token, &memory.text)?;
        return Ok(Some(rowid));
    }
    let revived: Option<(i64, String)> = transaction
        .prepare_cached(
            "UPDATE memories SET superseded_by = NULL, superseded_at = NULL, created_at = ?3
             WHERE scope = ?1 AND fingerprint = ?2 AND superseded_by IS NOT NULL RETURNING rowid, text",
        )?
        .query_row(params![token, memory.fingerprint, memory.created_at], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((rowid, text)) = &revived {
        index(transaction, *rowid, &token, text)?;
    }
    Ok(revived.map(|(rowid, _)| rowid))
}

/// The query's embedding; none when the model fails or hangs (a deployment down or
/// overloaded): the words are left to recall by.
async fn embed_query(embeddings: &Embeddings, scope: &Scope, query: &str) -> Option<Embedded> {
    match tokio::time::timeout(QUERY_EMBEDDING_TIMEOUT, embeddings.embed_one(scope, query)).await {
        Ok(Ok(vector)) => Some(Embedded { model: embeddings.id().to_owned(), vector }),
        Ok(Err(error)) => {
            tracing::warn!("the query could not be embedded; recalling by its words: {error:#}");
            None
        }
        Err(_) => {
            tracing::warn!("the query's embedding took over {QUERY_EMBEDDING_TIMEOUT:?}; recalling by its words");
            None
        }
    }
}

/// Rebuilds the full-text index when its words are of an older form, in one
/// transaction: every memory not superseded, indexed as [`insert`] indexes it.
fn reindex_if_older(connection: &mut Connection) -> anyhow::Result<()> {
    let form: i64 = connection.query_row("SELECT MAX(form) FROM memory_index_form", [], |row| row.get(0))?;
    if form >= INDEX_FORM {
        return Ok(());
    }
    let transaction = connection.transaction()?;
    transaction.execute("INSERT INTO memory_index (memory_index) VALUES ('delete-all')", [])?;
    let memories: Vec<(i64, String, String)> = transaction
        .prepare("SELECT rowid, scope, text FROM memories WHERE superseded_by IS NULL")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (rowid, token, text) in &memories {
        index(&transaction, *rowid, token, text)?;
    }
    transaction.execute("UPDATE memory_index_form SET form = ?1", [INDEX_FORM])?;
    transaction.commit()?;
    if !memories.is_empty() {
        tracing::info!(memories = memories.len(), "the memory index was rebuilt with word stems");
    }
    Ok(())
}

/// Indexes memory `rowid` of the scope `token`: its distinct word stems, each
/// prefixed with the scope's token.
fn index(transaction: &Transaction<'_>, rowid: i64, token: &str, text: &str) -> rusqlite::Result<()> {
    let mut distinct: Vec<String> = words(text).map(|word| stem(&word)).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let indexed: Vec<String> = distinct.iter().map(|word| format!("{token}{word}")).collect();
    let mut insert = transaction.prepare_cached("INSERT INTO memory_index (rowid, words) VALUES (?1, ?2)")?;
    insert.execute(params![rowid, indexed.join(" ")])?;
    Ok(())
}

/// Takes memory `rowid` out of the full-text index and the vectors: no search finds it
/// (it was deleted, or superseded and kept as history). The vector cache is the
/// caller's to update once the transaction commits.
pub fn unindex(transaction: &Transaction<'_>, rowid: i64) -> rusqlite::Result<()> {
    transaction.prepare_cached("DELETE FROM memory_index WHERE rowid = ?1")?.execute([rowid])?;
    transaction.prepare_cached("DELETE FROM memory_vectors WHERE memory_rowid = ?1")?.execute([rowid])?;
    Ok(())
}

/// The scope's newest memories matching the expression.
fn candidates(connection: &Connection, expression: &str) -> anyhow::Result<Vec<Stored>> {
    let mut select = connection.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM memories WHERE rowid IN
               (SELECT rowid FROM memory_index WHERE memory_index MATCH ?1 ORDER BY rowid DESC LIMIT ?2)
             ORDER BY rowid DESC"
    ))?;
    let rows = select.query_map(params![expression, CANDIDATES as i64], stored)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Words, and meaning when the query's embedding is given, fused.
fn hybrid(
    connection: &Connection,
    vectors: &VectorCache,
    token: &str,
    terms: &[String],
    meaning: Option<(String, Vec<f32>)>,
    limit: usize,
) -> anyhow::Result<Vec<Stored>> {
    let by_words = match terms.is_empty() {
        true => Vec::new(),
        false => rank(candidates(connection, &match_expression(token, terms))?, terms, CANDIDATES),
    };
    let Some((model, vector)) = meaning else {
        return Ok(by_words.into_iter().take(limit).collect());
    };
    let by_meaning = nearest(connection, vectors, token, &model, &vector)?;
    Ok(fuse(by_words, by_meaning, limit, now_ms()))
}

/// The scope's memories nearest in meaning to `query` (its embedding by `model`),
/// above the similarity floor, best first, each with its similarity. The scope's
/// vectors come from the cache (read from the database once); texts are read for the
/// best only.
fn nearest(
    connection: &Connection,
    vectors: &VectorCache,
    token: &str,
    model: &str,
    query: &[f32],
) -> anyhow::Result<Vec<(f32, Stored)>> {
    let block = vectors.get_or_load(token, model, || {
        let mut select = connection
            .prepare_cached("SELECT memory_rowid, vector FROM memory_vectors WHERE scope = ?1 AND model = ?2")?;
        let mut block = Block::default();
        let rows =
            select.query_map(params![token, model], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))?;
        for row in rows {
            let (rowid, bytes) = row?;
            block.push(rowid, &embedding::from_bytes(&bytes));
        }
        Ok(block)
    })?;
    let mut best: Vec<(f32, i64)> = block
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .scores(query)
        .filter(|(similarity, _)| *similarity >= SIMILARITY_FLOOR)
        .collect();
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    best.truncate(CANDIDATES);
    // The scope is checked again: a cached vector may outlive its memory (deleted by
    // the command line, say) and its rowid be reused by another scope's.
    let mut select = connection.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM memories WHERE rowid = ?1 AND scope = ?2 AND superseded_by IS NULL"
    ))?;
    let mut found = Vec::with_capacity(best.len());
    for (similarity, rowid) in best {
        if let Some(memory) = select.query_row(params![rowid, token], stored).optional()? {
            found.push((similarity, memory));
        }
    }
    Ok(found)
}

/// Reciprocal rank fusion of the two rankings, with a mild preference for recent
/// memories (worth less than one rank at the top), best `limit` first. A memory's
/// score is its fused score over the best possible (first in both), 0 to 1.
fn fuse(by_words: Vec<Stored>, by_meaning: Vec<(f32, Stored)>, limit: usize, now: i64) -> Vec<Stored> {
    let mut fused: Vec<(f64, Stored)> = Vec::with_capacity(by_words.len() + by_meaning.len());
    let mut add = |rank: usize, memory: Stored| {
        let share = 1.0 / (RRF_K + rank as f64 + 1.0);
        match fused.iter_mut().find(|(_, m)| m.id == memory.id) {
            Some((score, _)) => *score += share,
            None => fused.push((share, memory)),
        }
    };
    for (rank, memory) in by_words.into_iter().enumerate() {
        add(rank, memory);
    }
    for (rank, (_, memory)) in by_meaning.into_iter().enumerate() {
        add(rank, memory);
    }
    let best = 2.0 / (RRF_K + 1.0);
    let step = 1.0 / (RRF_K + 1.0) - 1.0 / (RRF_K + 2.0);
    for (score, memory) in &mut fused {
        let age_days = (now - memory.created_at).max(0) as f64 / 86_400_000.0;
        *score += 0.5 * step * (-age_days / 30.0).exp();
    }
    fused.sort_by(|a, b| b.0.total_cmp(&a.0));
    fused
        .into_iter()
        .take(limit)
        .map(|(score, mut memory)| {
            memory.score = Some((score / best).min(1.0) as f32);
            memory
        })
        .collect()
}

/// A memory from a row of [`columns!`].
pub fn stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        id: row.get(0)?,
        text: row.get(1)?,
        client: row.get(2)?,
        request_id: row.get(3)?,
        created_at: row.get(4)?,
        score: None,
        superseded_by: row.get(5)?,
    })
}

/// The best `limit` candidates by BM25 (k1 1.2, b 0.75) over the candidates
/// themselves, each with its relevance; ties keep the newer first.
fn rank(candidates: Vec<Stored>, terms: &[String], limit: usize) -> Vec<Stored> {
    // Per candidate: its length in words and how often each term occurs in it. The
    // candidates share most of their words: each distinct one is stemmed once.
    let mut term_of: foldhash::HashMap<&str, Option<usize>> = foldhash::HashMap::default();
    let counted: Vec<(f64, Vec<f64>)> = candidates
        .iter()
        .map(|candidate| {
            let mut frequency = vec![0.0; terms.len()];
            let mut length = 0.0;
            for word in raw_words(&candidate.text) {
                length += 1.0;
                let term = *term_of.entry(word).or_insert_with(|| term_index(word, terms));
                if let Some(t) = term {
                    frequency[t] += 1.0;
                }
            }
            (length, frequency)
        })
        .collect();
    let count = counted.len() as f64;
    let average_length = (counted.iter().map(|(length, _)| length).sum::<f64>() / count.max(1.0)).max(1.0);
    let idf: Vec<f64> = (0..terms.len())
        .map(|t| {
            let holding = counted.iter().filter(|(_, f)| f[t] > 0.0).count() as f64;
            (1.0 + (count - holding + 0.5) / (holding + 0.5)).ln()
        })
        .collect();
    let (k1, b) = (1.2, 0.75);
    let mut scored: Vec<(f64, Stored)> = candidates
        .into_iter()
        .zip(&counted)
        .map(|(candidate, (length, frequency))| {
            let norm = k1 * (1.0 - b + b * length / average_length);
            let score = frequency.iter().zip(&idf).map(|(tf, idf)| idf * tf * (k1 + 1.0) / (tf + norm)).sum::<f64>();
            (score, candidate)
        })
        .collect();
    // Stable: among equal scores the newer stays first.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(limit)
        .map(|(score, mut candidate)| {
            candidate.score = Some((score / (1.0 + score)) as f32);
            candidate
        })
        .collect()
}

/// The words of a text as the index splits them, as written.
fn raw_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// The lower-cased words of a text.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    raw_words(text).map(str::to_lowercase)
}

/// The distinct content words of a text, as stems (no stop words).
pub fn content_words(text: &str) -> std::collections::BTreeSet<String> {
    words(text).filter(|word| !STOP_WORDS.contains(&word.as_str())).map(|word| stem(&word)).collect()
}

/// The English (Snowball) stem of a lower-cased word: "deployed", "deploys" and
/// "deploying" are all "deploy".
fn stem(word: &str) -> String {
    static STEMMER: std::sync::LazyLock<rust_stemmers::Stemmer> =
        std::sync::LazyLock::new(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English));
    STEMMER.stem(word).into_owned()
}

/// Which of `terms` (stems) `word`, as written, has for its stem. A stem keeps its
/// word's letters but the last (a final "y" may become "i"), so a word that begins
/// like no term is not stemmed at all.
fn term_index(word: &str, terms: &[String]) -> Option<usize> {
    let begins_like = |term: &String| {
        let keep = term.char_indices().last().map_or(0, |(i, _)| i);
        match word.get(..keep) {
            Some(start) if word.is_ascii() => start.eq_ignore_ascii_case(&term[..keep]),
            _ => word.to_lowercase().starts_with(&term[..keep]),
        }
    };
    if !terms.iter().any(begins_like) {
        return None;
    }
    let stemmed = stem(&word.to_lowercase());
    terms.iter().position(|term| *term == stemmed)
}

/// The FTS5 query for any of `terms` in the scope of `token`. Terms are quoted, so
/// nothing in a prompt is read as query syntax.
fn match_expression(token: &str, terms: &[String]) -> String {
    let any: Vec<String> = terms.iter().map(|t| format!("\"{token}{t}\"")).collect();
    any.join(" OR ")
}

/// The words of `query` worth searching for, as the index holds them: stems of the
/// lower-cased words, no stop words, each once.
fn search_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in words(query) {
        if word.chars().count() < 2 || STOP_WORDS.contains(&word.as_str()) {
            continue;
        }
        let term = stem(&word);
        if !terms.contains(&term) {
            terms.push(term);
        }
        if terms.len() == MAX_TERMS {
            break;
        }
    }
    terms
}

/// Words too common to tell memories apart (they would recall everything).
const STOP_WORDS: &[&str] = &[
    "a", "about", "all", "am", "an", "and", "any", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do",
    "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no",
    "not", "of", "on", "or", "our", "please", "so", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "to", "us", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would",
    "you", "your",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(user: &str, project: Option<&str>) -> Scope {
        Scope { user: user.to_owned(), project: project.map(str::to_owned) }
    }

    fn memory(scope: &Scope, text: &str) -> NewMemory {
        NewMemory {
            id: uuid::Uuid::now_v7().to_string(),
            scope: scope.clone(),
            client: Some("test".to_owned()),
            request_id: None,
            text: text.to_owned(),
            created_at: 1,
            fingerprint: crate::services::memory::fingerprint(text),
        }
    }

    fn store() -> (MemoryStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mp-memory-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
        let database = Database::open(&dir.join("test.db")).unwrap();
        (MemoryStore::open(&database, None).unwrap(), dir)
    }

    #[tokio::test]
    async fn finds_the_relevant_memory_in_its_scope_only() {
        let (store, dir) = store();
        let ana = scope("ana", Some("/srv/shop"));
        let ana_elsewhere = scope("ana", Some("/srv/blog"));
        let bo = scope("bo", Some("/srv/shop"));
        for text in
            ["The deploy script lives in ops/deploy.sh", "Ana's favourite colour is teal", "Tests run with nextest"]
        {
            store.add(memory(&ana, text)).await.unwrap();
        }
        store.add(memory(&ana_elsewhere, "The blog's favourite colour is red")).await.unwrap();
        store.add(memory(&bo, "Bo's favourite colour is orange")).await.unwrap();

        let found = store.search(&ana, "What is my favourite colour?", 5).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].text, "Ana's favourite colour is teal");
        let score = found[0].score.unwrap();
        assert!(score > 0.0 && score < 1.0, "{score}");
        // A plural finds its singular.
        assert_eq!(store.search(&bo, "colours", 5).await.unwrap()[0].text, "Bo's favourite colour is orange");
        assert!(store.search(&scope("ana", None), "favourite colour", 5).await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn better_matches_rank_first_and_limits_hold() {
        let (store, dir) = store();
        let ana = scope("ana", None);
        store.add(memory(&ana, "postgres runs on port 5433")).await.unwrap();
        store.add(memory(&ana, "the staging postgres database is called shop_staging on port 5433")).await.unwrap();
        store.add(memory(&ana, "redis runs on port 6380")).await.unwrap();
        let found = store.search(&ana, "which port does staging postgres use", 2).await.unwrap();
        assert_eq!(found.len(), 2);
        assert!(found[0].text.contains("staging"), "{found:?}");
        assert!(found[0].score >= found[1].score);
        assert_eq!(store.list(&ana, 10).await.unwrap()[0].text, "redis runs on port 6380", "newest first");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn prompt_text_is_never_query_syntax() {
        let (store, dir) = store();
        let ana = scope("ana", None);
        store.add(memory(&ana, "NEAR the AND gate")).await.unwrap();
        for query in [r#"" OR * NEAR( AND ) ^ {scope}: -"#, "the a an", "", "\"unbalanced", "scope : x"] {
            store.search(&ana, query, 5).await.unwrap_or_else(|e| panic!("{query}: {e}"));
        }
        assert_eq!(store.search(&ana, "near GATE", 5).await.unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn deleted_memories_are_not_found_and_other_scopes_cannot_delete() {
        let (store, dir) = store();
        let ana = scope("ana", None);
        let note = memory(&ana, "the release is on friday");
        let id = note.id.clone();
        store.add(note).await.unwrap();
        assert!(!store.delete(&scope("bo", None), id.clone()).await.unwrap());
        assert_eq!(store.search(&ana, "release friday", 5).await.unwrap().len(), 1);
        assert!(store.delete(&ana, id).await.unwrap());
        assert!(store.search(&ana, "release friday", 5).await.unwrap().is_empty());
        assert!(store.list(&ana, 5).await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn words_are_found_by_their_stems_and_an_older_index_is_rebuilt() {
        let (store, dir) = store();
        let ana = scope("ana", None);
        store.add(memory(&ana, "We deployed the databases on Tuesday")).await.unwrap();
        store.add(memory(&ana, "Nothing here")).await.unwrap();
        for query in ["deploying", "DEPLOYS", "database", "Tuesdays"] {
            assert_eq!(store.search(&ana, query, 5).await.unwrap().len(), 1, "{query}");
        }
        // An index of the first form (whole words): rebuilt with stems when opened.
        let database = store.database.clone();
        let token = ana.token();
        database
            .with(move |c| {
                c.execute("INSERT INTO memory_index (memory_index) VALUES ('delete-all')", [])?;
                c.execute("INSERT INTO memory_index (rowid, words) VALUES (1, ?1)", [format!("{token}deployed")])?;
                Ok(c.execute("UPDATE memory_index_form SET form = 1", [])?)
            })
            .await
            .unwrap();
        assert!(store.search(&ana, "deploying", 5).await.unwrap().is_empty(), "the old form misses");
        let reopened = MemoryStore::open(&database, None).unwrap();
        assert_eq!(reopened.search(&ana, "deploying", 5).await.unwrap().len(), 1);
        assert_eq!(reopened.search(&ana, "nothing", 5).await.unwrap().len(), 1, "every memory is indexed again");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn retention_keeps_each_scope_within_its_count_and_age() {
        let (store, dir) = store();
        let (ana, bo) = (scope("ana", None), scope("bo", None));
        let now = now_ms();
        for (i, text) in ["alpha one", "alpha two", "alpha three", "alpha four"].iter().enumerate() {
            store.add(NewMemory { created_at: now - 1_000 + i as i64, ..memory(&ana, text) }).await.unwrap();
        }
        store.add(NewMemory { created_at: now, ..memory(&bo, "alpha bo") }).await.unwrap();
        store.add(NewMemory { created_at: now - 40 * 86_400_000, ..memory(&bo, "alpha ancient") }).await.unwrap();
        let unlimited = Retention::default();
        assert_eq!(store.enforce(unlimited).await.unwrap(), 0);

        let retention = Retention { max_memories: Some(2), max_age: Some(std::time::Duration::from_secs(30 * 86_400)) };
        assert_eq!(store.enforce(retention).await.unwrap(), 3);
        let texts = |found: Vec<Stored>| found.into_iter().map(|m| m.text).collect::<Vec<_>>();
        assert_eq!(texts(store.all(&ana).await.unwrap()), ["alpha three", "alpha four"], "the newest stay");
        assert_eq!(texts(store.all(&bo).await.unwrap()), ["alpha bo"], "the old one went, whatever the count");
        let found = texts(store.search(&ana, "alpha", 10).await.unwrap());
        assert_eq!(found, ["alpha four", "alpha three"], "gone from the index too");
        assert_eq!(store.enforce(retention).await.unwrap(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn search_terms_are_stems_without_stop_words_and_repeats() {
        assert_eq!(search_terms("What is MY favourite colour, my Favourite?"), ["favourit", "colour"]);
        assert_eq!(search_terms("colours class bus tests deployed"), ["colour", "class", "bus", "test", "deploy"]);
        assert!(search_terms("a I . ?").is_empty());
        assert_eq!(search_terms(&"word ".repeat(100)).len(), 1);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(search_terms(&many).len(), MAX_TERMS);
    }
}
