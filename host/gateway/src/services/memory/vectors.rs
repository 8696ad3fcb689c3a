//! The scopes' vectors in memory, for search by meaning: a scope's vectors are read
//! from the database once, into one contiguous array, and kept up to date as the
//! indexer writes and the memory API deletes. Reading 100,000 vectors' BLOBs from
//! SQLite took 150 ms a search; scanning them in memory takes a fraction of that
//! (docs/benchmarks.md).
//!
//! Bounded: the least recently searched scopes leave once the cache holds more than
//! its limit of vectors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use lru::LruCache;

/// One scope's vectors of one model.
#[derive(Default)]
pub struct Block {
    pub rowids: Vec<i64>,
    /// `rowids.len()` vectors of `dimensions` floats, one after another.
    pub data: Vec<f32>,
    pub dimensions: usize,
}

impl Block {
    pub fn push(&mut self, rowid: i64, vector: &[f32]) {
        if self.dimensions == 0 {
            self.dimensions = vector.len();
        }
        if vector.len() == self.dimensions {
            self.rowids.push(rowid);
            self.data.extend_from_slice(vector);
        }
    }

    fn remove(&mut self, rowid: i64) {
        if let Some(index) = self.rowids.iter().position(|r| *r == rowid) {
            self.rowids.swap_remove(index);
            let (start, last) = (index * self.dimensions, self.rowids.len() * self.dimensions);
            if start != last {
                let (head, tail) = self.data.split_at_mut(last);
                head[start..start + self.dimensions].copy_from_slice(&tail[..self.dimensions]);
            }
            self.data.truncate(last);
        }
    }

    /// Each vector's dot product with `query`, with its rowid.
    pub fn scores<'a>(&'a self, query: &'a [f32]) -> impl Iterator<Item = (f32, i64)> + 'a {
        self.data
            .chunks_exact(self.dimensions.max(1))
            .zip(&self.rowids)
            .map(|(vector, rowid)| (dot(vector, query), *rowid))
    }
}

/// Eight lanes at a time, so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

type Key = (String, String);

pub struct VectorCache {
    scopes: Mutex<LruCache<Key, Arc<RwLock<Block>>>>,
    limit: usize,
    /// Counts every change, so a block read while vectors changed is not kept.
    changes: AtomicU64,
}

impl VectorCache {
    /// A cache of at most `limit` vectors (a scope larger than that is read per search).
    pub fn new(limit: usize) -> Self {
        Self { scopes: Mutex::new(LruCache::unbounded()), limit, changes: AtomicU64::new(0) }
    }

    fn scopes(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Arc<RwLock<Block>>>> {
        self.scopes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The scope's vectors: cached, or read by `load` and kept.
    pub fn get_or_load(
        &self,
        scope: &str,
        model: &str,
        load: impl FnOnce() -> anyhow::Result<Block>,
    ) -> anyhow::Result<Arc<RwLock<Block>>> {
        let key = (scope.to_owned(), model.to_owned());
        if let Some(block) = self.scopes().get(&key) {
            return Ok(block.clone());
        }
        let before = self.changes.load(Ordering::Acquire);
        let block = Arc::new(RwLock::new(load()?));
        let size = block.read().unwrap_or_else(|p| p.into_inner()).rowids.len();
        // A change while it was read may be missing from it: use it this once.
        if self.changes.load(Ordering::Acquire) != before || size > self.limit {
            return Ok(block);
        }
        let mut scopes = self.scopes();
        let mut total: usize =
            scopes.iter().map(|(_, b)| b.read().unwrap_or_else(|p| p.into_inner()).rowids.len()).sum::<usize>() + size;
        while total > self.limit {
            let Some((_, evicted)) = scopes.pop_lru() else { break };
            total -= evicted.read().unwrap_or_else(|p| p.into_inner()).rowids.len();
        }
        scopes.put(key, block.clone());
        Ok(block)
    }

    /// A vector was written (the indexer): a cached scope takes it at once.
    pub fn insert(&self, scope: &str, model: &str, rowid: i64, vector: &[f32]) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Some(block) = self.scopes().get(&(scope.to_owned(), model.to_owned())) {
            let mut block = block.write().unwrap_or_else(|p| p.into_inner());
            block.remove(rowid);
            block.push(rowid, vector);
        }
    }

    /// A scope was deleted: its blocks go.
    pub fn remove_scope(&self, scope: &str) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        let mut scopes = self.scopes();
        let keys: Vec<Key> = scopes.iter().filter(|((cached, _), _)| cached == scope).map(|(k, _)| k.clone()).collect();
        for key in keys {
            scopes.pop(&key);
        }
    }

    /// A memory was deleted: it leaves every cached block of its scope.
    pub fn remove(&self, scope: &str, rowid: i64) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        for ((cached, _), block) in self.scopes().iter() {
            if cached == scope {
                block.write().unwrap_or_else(|p| p.into_inner()).remove(rowid);
            }
        }
    }
}

impl Default for VectorCache {
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT)
    }
}

/// 500,000 vectors of 384 floats: about 730 MiB at most.
const DEFAULT_LIMIT: usize = 500_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_take_and_lose_vectors_and_score_them() {
        let mut block = Block::default();
        for (rowid, x) in [(1, 1.0), (2, 2.0), (3, 3.0)] {
            block.push(rowid, &[x; 10]);
        }
        block.remove(1);
        let scores: Vec<(f32, i64)> = block.scores(&[1.0; 10]).collect();
        assert_eq!(scores.len(), 2);
        assert!(scores.contains(&(20.0, 2)) && scores.contains(&(30.0, 3)), "{scores:?}");
        assert_eq!(dot(&[1.0; 19], &[2.0; 19]), 38.0, "the tail counts");
    }

    #[test]
    fn the_cache_follows_writes_and_deletes_and_stays_within_its_limit() {
        let cache = VectorCache::new(3);
        let load = |n: i64| {
            move || {
                let mut block = Block::default();
                (1..=n).for_each(|rowid| block.push(rowid, &[1.0, 0.0]));
                Ok(block)
            }
        };
        let a = cache.get_or_load("a", "m", load(2)).unwrap();
        cache.insert("a", "m", 9, &[0.0, 1.0]);
        cache.remove("a", 1);
        let mut scores: Vec<(f32, i64)> = a.read().unwrap().scores(&[0.0, 1.0]).collect();
        scores.sort_by_key(|(_, rowid)| *rowid);
        assert_eq!(scores, vec![(0.0, 2), (1.0, 9)], "each vector stays with its rowid");
        // Another scope of two: over the limit of three, the least recent scope leaves.
        cache.get_or_load("b", "m", load(2)).unwrap();
        let reloaded = cache.get_or_load("a", "m", load(5)).unwrap();
        assert_eq!(reloaded.read().unwrap().rowids.len(), 5, "read again, and too big to keep");
    }
}
