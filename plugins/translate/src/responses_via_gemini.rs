//! An OpenAI Responses client (Codex CLI) served by Gemini's own API: Responses to
//! chat completions to Gemini and back, through the two translations that already
//! exist, so each mapping has one home.
//!
//! `reasoning.effort` travels, as a thinking budget (see [`chat_via_gemini`]).

use serde_json::Value;

use crate::{Options, SseEvent, TranslateError, chat_via_gemini, responses_via_chat};

/// Responses request -> Gemini request.
pub fn request(body: Value, options: &Options) -> Result<Value, TranslateError> {
    chat_via_gemini::request(responses_via_chat::request(body, options)?, options)
}

/// Gemini response -> Responses object.
pub fn response(body: Value, created: u64) -> Result<Value, TranslateError> {
    responses_via_chat::response(chat_via_gemini::response(body, created)?, created)
}

/// A Gemini error -> the OpenAI error JSON Responses clients read.
pub fn error(status: u16, body: &[u8]) -> Value {
    chat_via_gemini::error(status, body)
}

/// Gemini stream events -> chat chunks -> Responses events.
pub struct StreamTranslator {
    gemini: chat_via_gemini::StreamTranslator,
    responses: responses_via_chat::StreamTranslator,
}

impl StreamTranslator {
    pub fn new(created: u64) -> Self {
        Self {
            // Usage asked for: a Responses stream always ends with it.
            gemini: chat_via_gemini::StreamTranslator::new(true, created),
            responses: responses_via_chat::StreamTranslator::new(created),
        }
    }

    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let chunks = self.gemini.push(event);
        chunks.iter().flat_map(|chunk| self.responses.push(chunk)).collect()
    }

    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events: Vec<SseEvent> =
            self.gemini.finish().iter().flat_map(|chunk| self.responses.push(chunk)).collect();
        events.extend(self.responses.finish());
        events
    }

    pub fn completed(&self) -> bool {
        self.responses.completed()
    }
}

#[cfg(test)]
mod tests;
