//! An OpenAI Responses client (Codex CLI) served by an Anthropic Messages upstream:
//! Responses to chat completions to Messages and back, through the two translations
//! that already exist, so each mapping has one home.
//!
//! Reasoning does not travel: Codex's `reasoning.effort` is not turned into extended
//! thinking, because thinking turns must be replayed with their signatures on every
//! later request of a tool loop, and Responses clients replay reasoning items only in
//! OpenAI's encrypted form. Claude answers without extended thinking.

use serde_json::Value;

use crate::{Options, SseEvent, TranslateError, chat_via_messages, responses_via_chat};

/// Responses request -> Anthropic messages request.
pub fn request(body: Value, options: &Options) -> Result<Value, TranslateError> {
    let mut chat = responses_via_chat::request(body, options)?;
    if let Some(chat) = chat.as_object_mut() {
        chat.remove("reasoning_effort");
    }
    chat_via_messages::request(chat, options)
}

/// Anthropic messages response -> Responses object.
pub fn response(body: Value, created: u64) -> Result<Value, TranslateError> {
    responses_via_chat::response(chat_via_messages::response(body, created)?, created)
}

/// An Anthropic error -> the OpenAI error JSON Responses clients read.
pub fn error(status: u16, body: &[u8]) -> Value {
    chat_via_messages::error(status, body)
}

/// Anthropic stream events -> chat chunks -> Responses events.
pub struct StreamTranslator {
    messages: chat_via_messages::StreamTranslator,
    responses: responses_via_chat::StreamTranslator,
}

impl StreamTranslator {
    pub fn new(created: u64) -> Self {
        Self {
            // Usage asked for: a Responses stream always ends with it.
            messages: chat_via_messages::StreamTranslator::new(true, created),
            responses: responses_via_chat::StreamTranslator::new(created),
        }
    }

    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let chunks = self.messages.push(event);
        chunks.iter().flat_map(|chunk| self.responses.push(chunk)).collect()
    }

    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events: Vec<SseEvent> =
            self.messages.finish().iter().flat_map(|chunk| self.responses.push(chunk)).collect();
        events.extend(self.responses.finish());
        events
    }

    pub fn completed(&self) -> bool {
        self.responses.completed()
    }
}

#[cfg(test)]
mod tests;
