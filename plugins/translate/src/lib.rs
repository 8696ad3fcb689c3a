//! Translation between OpenAI chat completions, OpenAI Responses, Anthropic messages
//! and Gemini's own API (`generateContent`).
//!
//! Pure functions over JSON: no I/O, no clock, no host types, so the same code runs in
//! the gateway's tests and inside the provider-adapter plugins (wasm32-wasip2).
//!
//! One module per pair, named by what the client speaks and what serves it:
//! - [`chat_via_messages`]: an OpenAI chat client served by an Anthropic Messages upstream;
//! - [`messages_via_chat`]: an Anthropic Messages client served by an OpenAI chat upstream;
//! - [`responses_via_chat`]: an OpenAI Responses client served by an OpenAI chat upstream;
//! - [`responses_via_messages`]: an OpenAI Responses client served by an Anthropic
//!   Messages upstream (the two translations above, chained);
//! - [`chat_via_gemini`]: an OpenAI chat client served by Gemini's own API;
//! - [`messages_via_gemini`] and [`responses_via_gemini`]: Anthropic Messages and
//!   OpenAI Responses clients served by Gemini's own API (their chat translation and
//!   [`chat_via_gemini`], chained).
//!
//! Each has `request` (client body -> upstream body), `response` (upstream body -> client
//! body), `error` (upstream error -> client error JSON) and a `StreamTranslator` that turns
//! upstream SSE events into client SSE events.

pub mod chat_via_gemini;
pub mod chat_via_messages;
pub mod messages_via_chat;
pub mod messages_via_gemini;
pub mod responses_via_chat;
pub mod responses_via_gemini;
pub mod responses_via_messages;
pub use wire::sse::SseEvent;

use serde_json::{Map, Value};

/// How a translation treats what it cannot express in the target API.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Drop request parameters the target API has no equivalent for, instead of
    /// failing (LiteLLM's `drop_params`).
    pub drop_params: bool,
    /// The OpenAI field that carries the output limit: `max_completion_tokens` for
    /// OpenAI itself, `max_tokens` for most OpenAI-compatible servers.
    pub max_tokens_field: MaxTokensField,
    /// Output limit to send to Anthropic when an OpenAI client set none (Anthropic
    /// requires one).
    pub default_max_tokens: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaxTokensField {
    #[default]
    MaxTokens,
    MaxCompletionTokens,
}

impl MaxTokensField {
    pub fn key(self) -> &'static str {
        match self {
            Self::MaxTokens => "max_tokens",
            Self::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

impl Options {
    pub fn new() -> Self {
        Self { default_max_tokens: 4096, ..Self::default() }
    }
}

/// Why a request or response could not be translated. Request errors are the
/// client's fault (400); response errors mean the upstream said something unexpected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
}

impl TranslateError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), param: None }
    }

    pub fn param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self { message: message.into(), param: Some(param.into()) }
    }
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TranslateError {}

/// Parameters that do not exist in the target API: an error naming them, unless
/// `drop_params` is set, in which case they are silently left out.
fn reject_unsupported(unsupported: &[String], target: &str, options: &Options) -> Result<(), TranslateError> {
    if unsupported.is_empty() || options.drop_params {
        return Ok(());
    }
    let mut unsupported = unsupported.to_vec();
    unsupported.sort();
    Err(TranslateError::param(
        unsupported[0].clone(),
        format!(
            "{} not supported by {target}; remove {} or set `litellm_settings.drop_params: true` to drop unsupported parameters",
            quote_list(&unsupported),
            if unsupported.len() == 1 { "it" } else { "them" },
        ),
    ))
}

fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.len() {
        1 => format!("{} is", quoted[0]),
        _ => format!("{} are", quoted.join(", ")),
    }
}

/// Appends a turn's `items` (under `key`), merged into the last turn when it has the
/// same role: Anthropic and Gemini want turns to alternate. Nothing for no items.
fn push_turn(turns: &mut Vec<Value>, role: &str, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last["role"] == role => {
            if let Some(existing) = last[key].as_array_mut() {
                existing.extend(items);
            }
        }
        _ => {
            let mut turn = Map::new();
            turn.insert("role".into(), Value::String(role.to_owned()));
            turn.insert(key.into(), Value::Array(items));
            turns.push(Value::Object(turn));
        }
    }
}

/// A message without a role, or with one the target API has no place for.
fn role_error(index: usize, role: &str, allowed: &str) -> TranslateError {
    let param = format!("messages[{index}].role");
    if role.is_empty() {
        return TranslateError::param(param, format!("messages[{index}] has no `role`"));
    }
    TranslateError::param(param, format!("messages[{index}]: role `{role}` is not supported; use {allowed}"))
}

/// The body as a JSON object, or an error naming what it was instead.
fn into_object(body: Value, what: &str) -> Result<Map<String, Value>, TranslateError> {
    match body {
        Value::Object(map) => Ok(map),
        other => Err(TranslateError::new(format!("{what} must be a JSON object, got {}", kind_of(&other)))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The human-readable message of an upstream error body, whatever its shape.
fn upstream_error_message(status: u16, body: &[u8]) -> (String, Option<String>) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message").and_then(Value::as_str).or_else(|| e.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("upstream returned status {status}")
            } else {
                format!("upstream returned status {status}: {}", text.chars().take(500).collect::<String>())
            }
        });
    let kind = error.and_then(|e| e.get("type")).and_then(Value::as_str).map(str::to_owned);
    (message, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_params_are_named_unless_dropped() {
        let options = Options::new();
        let error = reject_unsupported(&["n".into(), "seed".into()], "Anthropic", &options).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("n"));
        assert!(error.message.contains("`n`, `seed` are not supported by Anthropic"), "{}", error.message);
        let dropping = Options { drop_params: true, ..Options::new() };
        assert!(reject_unsupported(&["n".into()], "Anthropic", &dropping).is_ok());
    }

    #[test]
    fn upstream_error_message_reads_either_shape_or_raw_text() {
        let (message, kind) =
            upstream_error_message(400, br#"{"error":{"message":"bad","type":"invalid_request_error"}}"#);
        assert_eq!((message.as_str(), kind.as_deref()), ("bad", Some("invalid_request_error")));
        let (message, _) = upstream_error_message(502, b"<html>Bad gateway</html>");
        assert_eq!(message, "upstream returned status 502: <html>Bad gateway</html>");
    }
}
