//! Long-term memory, per user and project: the scopes that keep it apart ([`scope`]),
//! the local store ([`store`]: full-text search in the gateway's own database), and
//! what a finished turn leaves behind ([`capture`], [`answer`]). The pipeline recalls
//! and injects (stages 4 and 5) and hands the turn to the journal (stage 8).

pub mod answer;
pub mod capture;
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
}

impl NewMemory {
    pub fn new(scope: Scope, client: Option<String>, request_id: Option<String>, text: String) -> Self {
        Self { id: uuid::Uuid::now_v7().to_string(), scope, client, request_id, text, created_at: now_ms() }
    }
}
