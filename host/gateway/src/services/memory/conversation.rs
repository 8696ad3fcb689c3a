//! What memory added to each conversation, so that every later turn of it gets the
//! same bytes in the same places: a prompt cache keeps hitting, and newer models
//! accept the conversation's replayed thinking blocks (both need the prefix before
//! them unchanged). The first turn's block goes where the injector puts it; memories
//! that become relevant later (the user asks something new) go into that user message,
//! and stay there on every turn after it. Later turns search nothing unless the user
//! asked something new, which also takes the search off an agent's tool loops.
//!
//! A conversation is told apart by its scope, the client's session header when it
//! sends one, its system prompt and its first user message (agents resend both on
//! every turn). Its state lives in memory and in the database (the journal writes it),
//! so a restart keeps it; it expires a while after its last change.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::Scope;
use crate::storage::{Database, Readers};

/// Where a block went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Place {
    SystemStart,
    SystemEnd,
    /// Into the user message at this index of the conversation, before its words.
    UserMessage {
        index: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub place: Place,
    pub text: String,
}

/// A user message whose words were searched for, by its index and the fingerprint of
/// its words (a conversation rewritten by its client does not match any more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    pub index: usize,
    pub fingerprint: String,
}

/// What memory added to one conversation so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    pub blocks: Vec<Block>,
    pub asked: Vec<Asked>,
    /// The memories already in the conversation, not recalled into it again.
    pub recalled: Vec<String>,
}

impl Injected {
    pub fn was_asked(&self, index: usize, fingerprint: &str) -> bool {
        self.asked.iter().any(|a| a.index == index && a.fingerprint == fingerprint)
    }
}

/// How many conversations are kept in memory (the rest are read from the database).
const CACHED: usize = 4_096;
/// How long a conversation's state is kept after its last change.
pub const LIFETIME_MS: i64 = 7 * 24 * 3_600_000;

pub struct Conversations {
    readers: Readers,
    cache: Mutex<LruCache<String, Arc<Injected>>>,
}

impl Conversations {
    pub fn new(database: &Database) -> Self {
        let cache = LruCache::new(NonZeroUsize::new(CACHED).unwrap_or(NonZeroUsize::MIN));
        Self { readers: Readers::new(database), cache: Mutex::new(cache) }
    }

    /// The conversation's state; empty for a new conversation. A database that fails
    /// is logged and the conversation starts afresh.
    pub async fn get(&self, key: &str) -> Arc<Injected> {
        if let Some(state) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return state.clone();
        }
        let owned = key.to_owned();
        let stored = self.readers.read(move |connection| load(connection, &owned)).await;
        let state = match stored {
            Ok(state) => Arc::new(state.unwrap_or_default()),
            Err(error) => {
                tracing::warn!("conversation state not read; the conversation starts afresh: {error:#}");
                Arc::default()
            }
        };
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(key.to_owned(), state.clone());
        state
    }

    /// Keeps a conversation's new state here; the caller hands it to the journal too.
    pub fn put(&self, key: &str, state: Arc<Injected>) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(key.to_owned(), state);
    }
}

/// The key of a conversation: a hash over its scope, the client's session id, its
/// system prompt and its first user message, all as the client sent them. Not a
/// secret, so a fast hash serves (two 64-bit hashes with different seeds).
pub fn key(scope: &Scope, session: Option<&str>, system: &str, first_user: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let hash = |seed: u64| {
        let mut hasher = foldhash::quality::FixedState::with_seed(seed).build_hasher();
        for part in [scope.token().as_str(), session.unwrap_or(""), system, first_user] {
            hasher.write(part.as_bytes());
            hasher.write_u8(0xff);
        }
        hasher.finish()
    };
    format!("c{:016x}{:016x}", hash(0x6d65_6d6f_7279), hash(0x0070_726f_7879))
}

fn load(connection: &rusqlite::Connection, key: &str) -> anyhow::Result<Option<Injected>> {
    let state: Option<String> =
        connection.query_row("SELECT state FROM conversations WHERE key = ?1", [key], |row| row.get(0)).optional()?;
    Ok(state.map(|text| serde_json::from_str(&text)).transpose()?)
}

/// Writes a conversation's state, and drops the states past their lifetime (the
/// journal calls it in its batch transaction).
pub fn store(transaction: &Transaction<'_>, key: &str, state: &Injected, now_ms: i64) -> anyhow::Result<()> {
    let mut upsert = transaction.prepare_cached(
        "INSERT INTO conversations (key, state, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )?;
    upsert.execute(params![key, serde_json::to_string(state)?, now_ms])?;
    let mut expire = transaction.prepare_cached("DELETE FROM conversations WHERE updated_at < ?1")?;
    expire.execute([now_ms - LIFETIME_MS])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_conversations_apart() {
        let ana = Scope { user: "ana".into(), project: None };
        let bo = Scope { user: "bo".into(), project: None };
        let one = key(&ana, None, "S", "\"hi\"");
        assert_eq!(one, key(&ana, None, "S", "\"hi\""));
        assert_ne!(one, key(&bo, None, "S", "\"hi\""));
        assert_ne!(one, key(&ana, Some("session-1"), "S", "\"hi\""));
        assert_ne!(one, key(&ana, None, "S2", "\"hi\""));
        assert_ne!(key(&ana, None, "ab", "c"), key(&ana, None, "a", "bc"));
    }

    #[tokio::test]
    async fn state_survives_in_the_database_and_expires() {
        let dir = std::env::temp_dir().join(format!("mp-conversations-{}", std::process::id()));
        let database = Database::open(&dir.join("test.db")).unwrap();
        let state = Injected {
            blocks: vec![Block { place: Place::UserMessage { index: 2 }, text: "<memories>".into() }],
            asked: vec![Asked { index: 2, fingerprint: "f".into() }],
            recalled: vec!["m1".into()],
        };
        let mut connection = database.connect().unwrap();
        let transaction = connection.transaction().unwrap();
        store(&transaction, "c1", &state, 1_000 + LIFETIME_MS).unwrap();
        store(&transaction, "c0", &Injected::default(), 0).unwrap();
        transaction.commit().unwrap();
        let conversations = Conversations::new(&database);
        assert_eq!(*conversations.get("c1").await, state);
        assert!(conversations.get("c2").await.blocks.is_empty(), "a new conversation");
        let transaction = connection.transaction().unwrap();
        store(&transaction, "c3", &Injected::default(), 2_000 + LIFETIME_MS).unwrap();
        transaction.commit().unwrap();
        let fresh = Conversations::new(&database);
        assert_eq!(*fresh.get("c1").await, state);
        let left: i64 = connection.query_row("SELECT COUNT(*) FROM conversations", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 2, "c0 expired");
        let _ = std::fs::remove_dir_all(dir);
    }
}
