//! Long-term memory, per user and project: the scopes that keep it apart ([`scope`]),
//! the local store ([`store`]: full-text search in the gateway's own database), and
//! what a finished turn leaves behind ([`capture`], [`answer`]), secrets removed first
//! ([`redact`]), and what memory added to each conversation ([`conversation`]). The pipeline recalls and injects (stages 4 and 5) and hands the turn
//! to the journal (stage 8).

pub mod answer;
pub mod capture;
pub mod conversation;
pub mod redact;
pub mod scope;
pub mod store;

pub use capture::Turn;
pub use scope::Scope;
pub use store::{MemoryStore, Stored};

use crate::core::time::now_ms;

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
