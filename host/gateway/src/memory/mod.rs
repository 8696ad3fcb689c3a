//! Long-term memory, per user and project: recalled into the prompt before a request
//! goes upstream (pipeline stages 4 and 5), and each finished turn remembered after
//! (stage 8, off the request path). The store is local by default: full-text search in
//! the gateway's own database ([`store`]).

pub mod answer;
pub mod injection;
pub mod store;

use tracing::warn;

use crate::adapter::ClientApi;
use crate::body::JsonBody;
use crate::config::MemoryConfig;
use crate::error::GatewayError;
use crate::identity::{self, Identity};
use crate::plugins::hooks::Memory;
use crate::state::{AppState, Snapshot};

pub use store::{MemoryStore, Stored};

/// Whose memories: a user, in a project or in none. Scopes never mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub user: String,
    pub project: Option<String>,
}

impl Scope {
    pub fn of(identity: &Identity) -> Self {
        Self { user: identity.user.value.clone(), project: identity.project().map(str::to_owned) }
    }

    /// The scope as one search term: `s` and 24 hex digits of a SHA-256 over user and
    /// project, so any user or project name fits the full-text index's word rules.
    pub fn token(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.user.as_bytes());
        // The separator keeps ("ab", "c") apart from ("a", "bc"); a scope without a
        // project differs from one with an empty project.
        if let Some(project) = &self.project {
            hasher.update([0]);
            hasher.update(project.as_bytes());
        }
        let digest = hasher.finalize();
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("s{hex}")
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
}

impl NewMemory {
    pub fn new(scope: Scope, client: Option<String>, request_id: Option<String>, text: String) -> Self {
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self { id: uuid::Uuid::now_v7().to_string(), scope, client, request_id, text, created_at }
    }
}

/// How much of each side of a turn is remembered: enough to find it and to remind the
/// model, not a transcript.
const QUESTION_BYTES: usize = 1_000;
const ANSWER_BYTES: usize = 1_000;

/// A turn being answered, remembered once its answer is complete.
#[derive(Debug)]
pub struct Turn {
    scope: Scope,
    client: Option<String>,
    question: String,
    answer: String,
}

impl Turn {
    /// Adds answer text as it arrives; beyond the cap it is dropped.
    pub fn add_answer(&mut self, text: &str) {
        let room = ANSWER_BYTES.saturating_sub(self.answer.len());
        if room > 0 {
            self.answer.push_str(&text[..text.floor_char_boundary(room)]);
        }
    }

    /// The answer has all the text that will be remembered.
    pub fn is_full(&self) -> bool {
        self.answer.len() >= ANSWER_BYTES
    }

    /// The memory this turn leaves; none when the answer had no text (only tool calls).
    pub fn into_memory(self, request_id: &str) -> Option<NewMemory> {
        let answer = self.answer.trim();
        if answer.is_empty() {
            return None;
        }
        let text = format!("User: {}\nAssistant: {answer}", self.question.trim());
        Some(NewMemory::new(self.scope, self.client, Some(request_id.to_owned()), text))
    }
}

/// What recall did for one request.
#[derive(Debug, Default)]
pub struct Recall {
    pub recalled: u32,
    /// The turn to remember when its answer is complete (a new turn, with capture on).
    pub turn: Option<Turn>,
}

/// Stages 4 and 5: recalls the scope's memories for the user's words and hands them
/// to the memory-injector plugin, whose patch goes into `body`. A store that fails is
/// logged and the request goes on without memories.
pub async fn recall_into(
    state: &AppState,
    snapshot: &Snapshot,
    api: ClientApi,
    identity: &Identity,
    body: &mut JsonBody,
) -> Result<Recall, GatewayError> {
    let Some(config) = &snapshot.config.memory else {
        return Ok(Recall::default());
    };
    let conversational =
        matches!(api, ClientApi::OpenAiChat | ClientApi::AnthropicMessages | ClientApi::OpenAiResponses);
    let Some(words) = identity::user_words(body).filter(|_| conversational) else {
        return Ok(Recall::default());
    };
    let scope = Scope::of(identity);
    let memories = recall(state, config, &scope, &words.text).await;
    let recalled = memories.len() as u32;
    injection::inject(&snapshot.plugins, api, identity, body, &words.text, memories, config.token_budget).await?;
    let turn = (config.capture && words.new_turn).then(|| Turn {
        scope,
        client: identity.client().map(str::to_owned),
        question: words.text[..words.text.floor_char_boundary(QUESTION_BYTES)].to_owned(),
        answer: String::new(),
    });
    Ok(Recall { recalled, turn })
}

async fn recall(state: &AppState, config: &MemoryConfig, scope: &Scope, query: &str) -> Vec<Memory> {
    match state.memories().search(scope, query, config.recall_limit).await {
        Ok(found) => found
            .into_iter()
            .map(|m| Memory { id: m.id, text: m.text, score: m.score.unwrap_or(0.0), source: "local".to_owned() })
            .collect(),
        Err(error) => {
            warn!("memory recall failed; going on without memories: {error:#}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_tell_scopes_apart() {
        let scope = |user: &str, project: Option<&str>| Scope { user: user.into(), project: project.map(Into::into) };
        let tokens = [
            scope("ab", Some("c")).token(),
            scope("a", Some("bc")).token(),
            scope("ab", None).token(),
            scope("ab", Some("")).token(),
        ];
        for (i, a) in tokens.iter().enumerate() {
            assert!(a.len() == 25 && a.starts_with('s') && a[1..].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
            assert!(tokens[i + 1..].iter().all(|b| a != b), "{tokens:?}");
        }
    }

    #[test]
    fn turns_are_bounded_and_need_answer_text() {
        let scope = Scope { user: "ana".into(), project: None };
        let mut turn = Turn { scope: scope.clone(), client: None, question: "Q".into(), answer: String::new() };
        turn.add_answer("é".repeat(600).as_str());
        turn.add_answer("more");
        assert!(turn.answer.len() <= ANSWER_BYTES && turn.answer.chars().all(|c| c == 'é'));
        let memory = turn.into_memory("req-1").unwrap();
        assert!(memory.text.starts_with("User: Q\nAssistant: é"));
        assert_eq!(memory.request_id.as_deref(), Some("req-1"));
        let silent = Turn { scope, client: None, question: "Q".into(), answer: " ".into() };
        assert!(silent.into_memory("req-2").is_none(), "a tool call alone leaves no memory");
    }
}
