//! An Anthropic Messages client (Claude Code) served by Gemini's own API: Messages to
//! chat completions to Gemini and back, through the two translations that already
//! exist, so each mapping has one home.
//!
//! Extended thinking does not travel, as through any chat upstream: Claude Code's
//! budgets exceed what some Gemini models take, and Gemini's thoughts could not be
//! replayed with Anthropic signatures. Gemini thinks as its model does by default.

use serde_json::Value;

use crate::{Options, SseEvent, TranslateError, chat_via_gemini, messages_via_chat};

/// Anthropic messages request -> Gemini request.
pub fn request(mut body: Value, options: &Options) -> Result<Value, TranslateError> {
    // Gemini samples with `top_k` as Anthropic does; chat completions has no such field
    // and the chat translation would refuse it, so it goes around.
    let top_k = body.as_object_mut().and_then(|b| b.remove("top_k"));
    let mut chat = messages_via_chat::request(body, options)?;
    if let Some(top_k) = top_k {
        chat["top_k"] = top_k;
    }
    chat_via_gemini::request(chat, options)
}

/// Gemini response -> Anthropic messages response.
pub fn response(body: Value, created: u64) -> Result<Value, TranslateError> {
    messages_via_chat::response(chat_via_gemini::response(body, created)?)
}

/// A Gemini error -> the Anthropic error JSON for the same status.
pub fn error(status: u16, body: &[u8]) -> Value {
    messages_via_chat::error(status, chat_via_gemini::error(status, body).to_string().as_bytes())
}

/// Gemini stream events -> chat chunks -> Anthropic stream events.
pub struct StreamTranslator {
    gemini: chat_via_gemini::StreamTranslator,
    messages: messages_via_chat::StreamTranslator,
}

impl StreamTranslator {
    pub fn new(created: u64) -> Self {
        Self {
            // Usage asked for: an Anthropic stream always ends with it.
            gemini: chat_via_gemini::StreamTranslator::new(true, created),
            messages: messages_via_chat::StreamTranslator::new(),
        }
    }

    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let chunks = self.gemini.push(event);
        chunks.iter().flat_map(|chunk| self.messages.push(chunk)).collect()
    }

    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events: Vec<SseEvent> =
            self.gemini.finish().iter().flat_map(|chunk| self.messages.push(chunk)).collect();
        events.extend(self.messages.finish());
        events
    }

    pub fn completed(&self) -> bool {
        self.messages.completed()
    }
}

#[cfg(test)]
mod tests;
