//! Stage 4, recall: the scope's memories for the user's words, when the user asked
//! something new in this conversation, and the turn to remember once it is answered.
//! What memory added to the conversation before comes along, for the inject stage to
//! re-apply. A store that fails is logged and the request goes on without memories.

use std::sync::Arc;

use http::HeaderMap;
use tracing::warn;

use crate::config::MemoryConfig;
use crate::core::api::ClientApi;
use crate::core::body::JsonBody;
use crate::core::identity::Identity;
use crate::core::prompt::{opening, user_words};
use crate::plugins::hooks::Memory;
use crate::services::memory::conversation::{self, Asked, Conversations, Injected};
use crate::services::memory::embedding::Embedded;
use crate::services::memory::{Backend, Scope, Turn, fingerprint};

/// Headers by which clients name their session (Claude Code, Codex, older Codex).
const SESSION_HEADERS: [&str; 3] = ["x-claude-code-session-id", "session-id", "session_id"];

/// What recall found for one request.
#[derive(Debug)]
pub struct Recalled {
    /// The conversation this request belongs to, and what memory added to it before.
    pub conversation: String,
    pub before: Arc<Injected>,
    /// The user message asked about for the first time in this request, if any.
    pub asked: Option<Asked>,
    /// The user's words the memories were recalled for.
    pub query: String,
    /// Memories newly recalled (none when the user asked nothing new).
    pub memories: Vec<Memory>,
    /// The turn to remember when its answer is complete (a new turn, with capture on).
    pub turn: Option<Turn>,
    /// Why the backend's search failed (the request goes on without memories).
    pub error: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
pub async fn recall(
    backend: &Backend<'_>,
    conversations: &Conversations,
    config: &MemoryConfig,
    api: ClientApi,
    identity: &Identity,
    headers: &HeaderMap,
    body: &JsonBody,
) -> Option<Recalled> {
    let conversation_raw = body.raw("messages").or_else(|| body.raw("input"))?;
    if api == ClientApi::OpenAiEmbeddings {
        return None;
    }
    let scope = Scope::of(identity);
    let session = SESSION_HEADERS.iter().find_map(|name| headers.get(*name)?.to_str().ok());
    let system = body.raw("system").or_else(|| body.raw("instructions")).map_or("", |raw| raw.get());
    let key = conversation::key(&scope, session, system, opening(conversation_raw));
    let before = conversations.get(&key).await;
    let words = user_words(body, &identity.scaffolding);
    // count_tokens is recalled for too, so it counts the prompt as it will be sent; it
    // is no turn to remember.
    let new_turn = words.as_ref().filter(|w| w.new_turn && api != ClientApi::AnthropicCountTokens);
    // A new question is asked about; so is a conversation seen for the first time,
    // whatever its last message (a tool loop after a restart, a client new to us).
    let asked = words
        .as_ref()
        .filter(|w| w.new_turn || before.asked.is_empty())
        .map(|w| Asked { index: w.index, fingerprint: fingerprint(&w.text) })
        .filter(|asked| !before.was_asked(asked.index, &asked.fingerprint));
    let (memories, vector, error) = match (&asked, &words) {
        (Some(_), Some(words)) => search(backend, config, &scope, &words.text, &before).await,
        _ => (Vec::new(), None, None),
    };
    let turn = new_turn.filter(|_| config.capture).map(|words| {
        let mut turn = Turn::new(scope, identity.client().map(str::to_owned), &words.text);
        turn.remote = backend.is_remote();
        turn.vector = vector;
        turn
    });
    let query = words.map(|w| w.text).unwrap_or_default();
    Some(Recalled { conversation: key, before, asked, query, memories, turn, error })
}

/// The scope's memories for `query` that the conversation does not hold yet, and the
/// query's embedding if one was made; a backend that fails leaves none, and its error
/// code.
async fn search(
    backend: &Backend<'_>,
    config: &MemoryConfig,
    scope: &Scope,
    query: &str,
    before: &Injected,
) -> (Vec<Memory>, Option<Embedded>, Option<&'static str>) {
    let source = if backend.is_remote() { "supermemory" } else { "local" };
    match backend.search_with_vector(scope, query, config.recall_limit + before.recalled.len()).await {
        Ok((found, vector)) => {
            let memories = found
                .into_iter()
                .filter(|m| !before.recalled.contains(&m.id))
                .take(config.recall_limit)
                .map(|m| Memory { id: m.id, text: m.text, score: m.score.unwrap_or(0.0), source: source.to_owned() })
                .collect();
            (memories, vector, None)
        }
        Err(error) => {
            warn!("memory recall failed; going on without memories: {error}");
            (Vec::new(), None, Some(error.code()))
        }
    }
}
