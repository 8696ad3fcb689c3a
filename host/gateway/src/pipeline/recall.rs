//! Stage 4, recall: the scope's memories most relevant to the user's words, and the
//! turn to remember once it is answered. A store that fails is logged and the request
//! goes on without memories.

use tracing::warn;

use crate::config::MemoryConfig;
use crate::core::api::ClientApi;
use crate::core::body::JsonBody;
use crate::core::identity::Identity;
use crate::core::prompt::user_words;
use crate::plugins::hooks::Memory;
use crate::services::memory::{MemoryStore, Scope, Turn};

/// What recall found for one request.
#[derive(Debug, Default)]
pub struct Recalled {
    /// The user's words the memories were recalled for.
    pub query: String,
    pub memories: Vec<Memory>,
    /// The turn to remember when its answer is complete (a new turn, with capture on).
    pub turn: Option<Turn>,
}

pub async fn recall(
    store: &MemoryStore,
    config: &MemoryConfig,
    api: ClientApi,
    identity: &Identity,
    body: &JsonBody,
) -> Recalled {
    let conversational =
        matches!(api, ClientApi::OpenAiChat | ClientApi::AnthropicMessages | ClientApi::OpenAiResponses);
    let Some(words) = user_words(body).filter(|_| conversational) else {
        return Recalled::default();
    };
    let scope = Scope::of(identity);
    let memories = match store.search(&scope, &words.text, config.recall_limit).await {
        Ok(found) => found
            .into_iter()
            .map(|m| Memory { id: m.id, text: m.text, score: m.score.unwrap_or(0.0), source: "local".to_owned() })
            .collect(),
        Err(error) => {
            warn!("memory recall failed; going on without memories: {error:#}");
            Vec::new()
        }
    };
    let turn =
        (config.capture && words.new_turn).then(|| Turn::new(scope, identity.client().map(str::to_owned), &words.text));
    Recalled { query: words.text, memories, turn }
}
