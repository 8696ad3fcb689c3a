//! Long-term memory, per user and project: the scopes that keep it apart ([`scope`]),
//! the backends ([`store`]: full-text search in the gateway's own database;
//! [`supermemory`]: Supermemory's REST API, fed through a durable outbox), what a
//! finished turn leaves behind ([`capture`], [`answer`]; distilled into [`facts`] with
//! an extraction model), secrets removed first
//! ([`redact`]), and what memory added to each conversation ([`conversation`]). The
//! pipeline recalls and injects (stages 4 and 5) and hands the turn to the journal
//! (stage 8).

pub mod answer;
pub mod capture;
pub mod conversation;
pub mod embedding;
pub mod facts;
pub mod redact;
pub mod scope;
pub mod store;
pub mod supermemory;
pub mod vectors;

pub use capture::Turn;
pub use scope::Scope;
pub use store::{MemoryStore, Stored};

use crate::config::{MemoryBackend, SupermemoryConfig};
use crate::core::time::now_ms;
use supermemory::{Supermemory, SupermemoryError};

/// Both backends; each call goes to the one the request's config names.
pub struct Memories {
    pub local: MemoryStore,
    pub supermemory: Supermemory,
}

/// One backend, as a request's config names it.
pub enum Backend<'a> {
    Local(&'a MemoryStore),
    Supermemory(&'a Supermemory, &'a SupermemoryConfig),
}

/// A backend that failed a call.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the local memory store failed: {0:#}")]
    Local(anyhow::Error),
    #[error(transparent)]
    Supermemory(#[from] SupermemoryError),
}

impl BackendError {
    /// The short name analytics and metrics record.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Local(_) => "local_store_error",
            Self::Supermemory(error) => error.code(),
        }
    }
}

impl Memories {
    pub fn backend<'a>(&'a self, config: &'a MemoryBackend) -> Backend<'a> {
        match config {
            MemoryBackend::Local => Backend::Local(&self.local),
            MemoryBackend::Supermemory(settings) => Backend::Supermemory(&self.supermemory, settings),
        }
    }
}

impl Backend<'_> {
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Supermemory(..))
    }

    /// The scope's memories most relevant to `query`, best first.
    pub async fn search(&self, scope: &Scope, query: &str, limit: usize) -> Result<Vec<Stored>, BackendError> {
        Ok(self.search_with_vector(scope, query, limit).await?.0)
    }

    /// The same, and the query's embedding where the backend made one (the local
    /// store with its model).
    pub async fn search_with_vector(
        &self,
        scope: &Scope,
        query: &str,
        limit: usize,
    ) -> Result<(Vec<Stored>, Option<embedding::Embedded>), BackendError> {
        match self {
            Self::Local(store) => store.search_with_vector(scope, query, limit).await.map_err(BackendError::Local),
            Self::Supermemory(client, config) => Ok((client.search(config, scope, query, limit).await?, None)),
        }
    }

    /// The scope's memories, newest first.
    pub async fn list(&self, scope: &Scope, limit: usize) -> Result<Vec<Stored>, BackendError> {
        match self {
            Self::Local(store) => store.list(scope, limit).await.map_err(BackendError::Local),
            Self::Supermemory(client, config) => Ok(client.list(config, scope, limit).await?),
        }
    }

    /// Every memory of the scope, oldest first.
    pub async fn all(&self, scope: &Scope) -> Result<Vec<Stored>, BackendError> {
        match self {
            Self::Local(store) => store.all(scope).await.map_err(BackendError::Local),
            Self::Supermemory(client, config) => Ok(client.all(config, scope).await?),
        }
    }

    /// Deletes every memory of the scope; how many, where the backend says.
    pub async fn delete_scope(&self, scope: &Scope) -> Result<Option<usize>, BackendError> {
        match self {
            Self::Local(store) => store.delete_scope(scope).await.map(Some).map_err(BackendError::Local),
            Self::Supermemory(client, config) => Ok(client.delete_scope(config, scope).await.map(|()| None)?),
        }
    }

    /// Stores a memory now; the id it is stored under.
    pub async fn add(&self, memory: NewMemory) -> Result<String, BackendError> {
        match self {
            Self::Local(store) => store.add(memory).await.map_err(BackendError::Local),
            Self::Supermemory(client, config) => Ok(client.add(config, &supermemory::Document::of(&memory)).await?),
        }
    }

    /// Stores memories read from an export; how many were new to the scope.
    pub async fn import(&self, memories: Vec<NewMemory>) -> Result<usize, BackendError> {
        match self {
            Self::Local(store) => store.import(memories).await.map_err(BackendError::Local),
            Self::Supermemory(client, config) => {
                for memory in &memories {
                    client.add(config, &supermemory::Document::of(memory)).await?;
                }
                Ok(memories.len())
            }
        }
    }

    /// Deletes memory `id` of `scope`; false when the scope has none such.
    pub async fn delete(&self, scope: &Scope, id: String) -> Result<bool, BackendError> {
        match self {
            Self::Local(store) => store.delete(scope, id).await.map_err(BackendError::Local),
            Self::Supermemory(client, config) => Ok(client.delete(config, scope, &id).await?),
        }
    }
}

/// A memory on its way into the store.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub id: String,
    pub scope: Scope,
    pub client: Option<String>,
    /// The request whose turn it remembers (none for memories added through the API).
    pub request_id: Option<String>,
    pub text: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// What makes it the same memory as another of its scope (it is then not stored
    /// again): the user's words of a turn, a note's text.
    pub fingerprint: String,
}

impl NewMemory {
    /// A memory of `text`, its secrets redacted: nothing stored ever holds one.
    pub fn new(scope: Scope, client: Option<String>, request_id: Option<String>, text: &str) -> Self {
        let text = redact::redact(text).into_owned();
        let fingerprint = fingerprint(&text);
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            scope,
            client,
            request_id,
            text,
            created_at: now_ms(),
            fingerprint,
        }
    }
}

/// A line of an export (`GET /v1/memories/export`), as an import reads it.
#[derive(serde::Deserialize)]
struct Exported {
    text: String,
    client: Option<String>,
    request_id: Option<String>,
    created_at: Option<i64>,
    superseded_by: Option<String>,
}

/// What an export holds for an import.
#[derive(Debug)]
pub struct Export {
    /// Its memories, for the importing scope, with their client, request and time.
    pub memories: Vec<NewMemory>,
    /// Superseded memories left out: history, which would be recalled as current.
    pub superseded: usize,
}

/// Reads an export (JSON lines, blank lines ignored) into memories of `scope`. Texts
/// are redacted like any memory's; an error names the first bad line.
pub fn read_export(scope: &Scope, lines: &str) -> Result<Export, String> {
    let mut export = Export { memories: Vec::new(), superseded: 0 };
    for (number, line) in lines.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line: Exported =
            serde_json::from_str(line).map_err(|e| format!("line {}: not a memory of an export: {e}", number + 1))?;
        if line.superseded_by.is_some() {
            export.superseded += 1;
            continue;
        }
        let text = line.text.trim();
        if text.is_empty() {
            return Err(format!("line {}: the memory has no text", number + 1));
        }
        let memory = NewMemory::new(scope.clone(), line.client, line.request_id, text);
        export.memories.push(NewMemory { created_at: line.created_at.unwrap_or(memory.created_at), ..memory });
    }
    Ok(export)
}

/// A hash of `text` that ignores case and spacing.
pub fn fingerprint(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for word in text.split_whitespace() {
        hasher.update(word.to_lowercase().as_bytes());
        hasher.update(b" ");
    }
    hasher.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_reads_back_as_memories_of_the_importing_scope() {
        let bo = Scope { user: "bo".into(), project: None };
        let lines = concat!(
            r#"{"id":"a","text":"Deploys on Fridays","client":"claude-code","request_id":"r1","created_at":5}"#,
            "\n\n",
            r#"{"id":"b","text":"Old port 5433","created_at":6,"superseded_by":"c"}"#,
            "\n",
            r#"{"text":"token sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"}"#,
        );
        let export = read_export(&bo, lines).unwrap();
        assert_eq!(export.superseded, 1);
        let [first, second] = export.memories.as_slice() else { panic!("{export:?}") };
        assert_eq!((first.text.as_str(), first.created_at, first.scope.user.as_str()), ("Deploys on Fridays", 5, "bo"));
        assert_eq!(first.client.as_deref(), Some("claude-code"));
        assert_ne!(first.id, "a", "a new id: ids are unique across scopes");
        assert!(!second.text.contains("sk-ant"), "redacted like any memory: {}", second.text);
        let bad = read_export(&bo, "{\"text\": \"ok\"}\nnot json").unwrap_err();
        assert!(bad.starts_with("line 2:"), "{bad}");
        assert!(read_export(&bo, "{\"text\": \" \"}").unwrap_err().contains("no text"));
    }
}
