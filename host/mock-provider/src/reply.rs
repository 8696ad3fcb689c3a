//! The mock's answer, independent of API shape, and the SSE body that streams it.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::Value;

use crate::state::{Exchange, MockState};

/// Why the answer ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Finish {
    Stop,
    Length,
    ToolCall,
}

/// The reply the mock gives, before it is shaped into an API's JSON.
pub struct Reply {
    /// Words of the text reply (each with its trailing space, as streamed).
    pub words: Vec<String>,
    /// A call to the first offered tool: name and JSON arguments.
    pub tool_call: Option<(String, String)>,
    pub finish: Finish,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's cache.
    pub cached_tokens: u64,
}

/// What the mock needs to know about a request to answer it, whatever its API.
pub struct Prompt<'a> {
    pub model: &'a str,
    /// The system prompt's text.
    pub system_text: String,
    pub last_user_text: String,
    /// Name of the first tool offered, when tools are offered and may be called.
    pub first_tool: Option<String>,
    /// True when the conversation already holds a tool result (so answer in text).
    pub has_tool_result: bool,
    pub tool_result_text: String,
    pub max_tokens: Option<u64>,
    /// Size of the prompt, for the token estimate (about four bytes a token).
    pub prompt_bytes: usize,
}

impl Reply {
    pub fn for_prompt(options: &crate::Options, prompt: &Prompt<'_>) -> Self {
        let fixed_reply = options.reply.as_deref();
        let input_tokens = (prompt.prompt_bytes as u64).div_ceil(4).max(1);
        if crate::facts::is_extraction(&prompt.system_text) {
            let words: Vec<String> =
                crate::facts::answer(&prompt.last_user_text).split_inclusive(' ').map(str::to_owned).collect();
            let output_tokens = words.len() as u64;
            return Self {
                words,
                tool_call: None,
                finish: Finish::Stop,
                input_tokens,
                output_tokens,
                cached_tokens: 0,
            };
        }
        if let (Some(name), false, false) = (&prompt.first_tool, prompt.has_tool_result, options.no_tool_calls) {
            let arguments = serde_json::json!({ "input": prompt.last_user_text }).to_string();
            return Self {
                words: Vec::new(),
                output_tokens: (arguments.len() as u64).div_ceil(4),
                tool_call: Some((name.clone(), arguments)),
                finish: Finish::ToolCall,
                input_tokens,
                cached_tokens: 0,
            };
        }
        let text = match fixed_reply {
            Some(text) => text.to_owned(),
            None if prompt.has_tool_result => format!("The tool said: {}", prompt.tool_result_text),
            None => {
                let echo: String = prompt.last_user_text.chars().take(80).collect();
                format!("Hello from the mock model {}. You said: {echo}", prompt.model)
            }
        };
        let mut words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
        let mut finish = Finish::Stop;
        if let Some(max) = prompt.max_tokens {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            if words.len() > max {
                words.truncate(max);
                finish = Finish::Length;
            }
        }
        Self { output_tokens: words.len() as u64, words, tool_call: None, finish, input_tokens, cached_tokens: 0 }
    }

    /// The same reply, with `cached` more prompt tokens, reported as cache reads.
    pub fn with_cached(mut self, cached: u64) -> Self {
        self.input_tokens += cached;
        self.cached_tokens = cached;
        self
    }

    pub fn text(&self) -> String {
        self.words.concat()
    }
}

/// Text of a message `content` that is either a string or a list of parts.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Streams pre-rendered SSE events, honouring the chunk delay and a
/// `drop_after_events` and `linger_ms` faults, and notes whether the client stayed to
/// the end.
pub fn sse_response(state: Arc<MockState>, exchange: &Exchange, events: Vec<String>) -> Response {
    struct Guard {
        state: Arc<MockState>,
        id: u64,
        outcome: Option<bool>,
    }
    impl Guard {
        fn settle(&mut self, completed: bool) {
            self.outcome = Some(completed);
        }
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            // Dropped before the last event went out: the client went away.
            self.state.mark(self.id, self.outcome.unwrap_or(false));
        }
    }
    let delay = state.options.chunk_delay();
    let drop_after = exchange.fault.drop_after_events;
    let linger = exchange.fault.linger_ms.map(std::time::Duration::from_millis);
    let guard = Guard { state, id: exchange.id, outcome: None };
    let body = stream::unfold((events.into_iter().enumerate(), guard), move |(mut events, mut guard)| async move {
        let (index, event) = match events.next() {
            Some(next) => next,
            None => {
                if let Some(linger) = linger {
                    tokio::time::sleep(linger).await;
                }
                guard.settle(true);
                return None;
            }
        };
        if drop_after == Some(index) {
            // The connection breaks mid-stream: hyper aborts it on a body error.
            guard.settle(false);
            let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "mock dropped the stream");
            return Some((Err(error), (events, guard)));
        }
        if index > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(event)), (events, guard)))
    });
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(body))
        .into_response()
}
