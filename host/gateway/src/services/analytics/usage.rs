//! Token usage and finish reason, read from what the client receives (in its API's
//! shape): a whole answer, or stream events one at a time.

use serde::Deserialize;

use crate::core::api::ClientApi;
use crate::core::sse::SseEvent;

/// Token counts of one answer, normalised: `input` counts every prompt token, cached
/// reads and cache writes included (as OpenAI counts; Anthropic reports them apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

/// What an answer said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Details {
    #[serde(default)]
    cached_tokens: u64,
    #[serde(default)]
    reasoning_tokens: u64,
}

/// Every provider's usage fields; each API fills its own.
#[derive(Deserialize, Default)]
struct RawUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
}

impl RawUsage {
    fn normalise(&self, api: ClientApi) -> Usage {
        let details =
            |d: &Option<Details>| d.as_ref().map(|d| (d.cached_tokens, d.reasoning_tokens)).unwrap_or_default();
        match api {
            ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens => {
                let cached = self.cache_read_input_tokens.unwrap_or(0);
                let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
                Usage {
                    input: self.input_tokens.unwrap_or(0) + cached + cache_write,
                    output: self.output_tokens.unwrap_or(0),
                    cached,
                    cache_write,
                    reasoning: 0,
                }
            }
            ClientApi::OpenAiResponses => Usage {
                input: self.input_tokens.unwrap_or(0),
                output: self.output_tokens.unwrap_or(0),
                cached: details(&self.input_tokens_details).0,
                cache_write: 0,
                reasoning: details(&self.output_tokens_details).1,
            },
            ClientApi::OpenAiChat | ClientApi::OpenAiEmbeddings => Usage {
                input: self.prompt_tokens.unwrap_or(0),
                output: self.completion_tokens.unwrap_or(0),
                cached: details(&self.prompt_tokens_details).0,
                cache_write: 0,
                reasoning: details(&self.completion_tokens_details).1,
            },
        }
    }
}

#[derive(Deserialize, Default)]
struct Choice {
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct IncompleteDetails {
    reason: Option<String>,
}

/// The fields of an answer (or of a stream event's payload) that carry usage and the
/// finish reason, in any of the APIs.
#[derive(Deserialize, Default)]
struct Answer {
    usage: Option<RawUsage>,
    #[serde(default)]
    choices: Vec<Choice>,
    stop_reason: Option<String>,
    status: Option<String>,
    incomplete_details: Option<IncompleteDetails>,
    // Stream payloads nest the answer.
    message: Option<Box<Answer>>,
    response: Option<Box<Answer>>,
    delta: Option<Box<Answer>>,
}

impl Answer {
    fn finish_reason(&self) -> Option<String> {
        self.choices
            .iter()
            .find_map(|c| c.finish_reason.clone())
            .or_else(|| self.stop_reason.clone())
            .or_else(|| self.delta.as_ref().and_then(|d| d.stop_reason.clone()))
            .or_else(|| self.incomplete_details.as_ref().and_then(|d| d.reason.clone()))
            .or_else(|| self.status.clone().filter(|s| s != "in_progress"))
    }
}

/// Usage and finish reason of a whole answer in `api`'s shape.
pub fn from_body(api: ClientApi, body: &[u8]) -> Observed {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Observed::default();
    };
    Observed { usage: answer.usage.as_ref().map(|u| u.normalise(api)), finish_reason: answer.finish_reason() }
}

/// True when the JSON text `data` has `key` with a non-null value (a cheap test that
/// spares parsing the many events that carry neither usage nor a finish reason).
fn has_value(data: &str, key: &str) -> bool {
    let mut rest = data;
    while let Some(at) = rest.find(key) {
        let after = rest[at + key.len()..].trim_start();
        if let Some(value) = after.strip_prefix(':') {
            let value = value.trim_start();
            if !value.starts_with("null") {
                return true;
            }
        }
        rest = &rest[at + key.len()..];
    }
    false
}

/// Usage and finish reason gathered from a stream, event by event.
pub struct StreamObserver {
    api: ClientApi,
    observed: Observed,
}

impl StreamObserver {
    pub fn new(api: ClientApi) -> Self {
        Self { api, observed: Observed::default() }
    }

    pub fn observe(&mut self, event: &SseEvent) {
        let data = &event.data;
        if !(has_value(data, "\"usage\"") || has_value(data, "\"finish_reason\"") || has_value(data, "\"stop_reason\""))
        {
            return;
        }
        let Ok(payload) = serde_json::from_str::<Answer>(data) else {
            return;
        };
        // Anthropic: message_start has the input counts, message_delta the output
        // (and, in newer versions, the input again); Responses: the final response.
        let nested = payload.message.as_deref().or(payload.response.as_deref());
        let usage = payload.usage.as_ref().or(nested.and_then(|n| n.usage.as_ref()));
        if let Some(raw) = usage {
            let fresh = raw.normalise(self.api);
            let merged = self.observed.usage.get_or_insert_with(Usage::default);
            if raw.input_tokens.is_some() || raw.prompt_tokens.is_some() {
                merged.input = fresh.input;
                merged.cached = fresh.cached;
                merged.cache_write = fresh.cache_write;
            }
            if raw.output_tokens.is_some() || raw.completion_tokens.is_some() {
                merged.output = fresh.output;
                merged.reasoning = fresh.reasoning;
            }
        }
        if let Some(reason) = payload.finish_reason().or_else(|| nested.and_then(Answer::finish_reason)) {
            self.observed.finish_reason = Some(reason);
        }
    }

    pub fn finish(self) -> Observed {
        self.observed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_answers_in_every_api() {
        let openai = br#"{"choices":[{"finish_reason":"length"}],"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":60},"completion_tokens_details":{"reasoning_tokens":3}}}"#;
        let observed = from_body(ClientApi::OpenAiChat, openai);
        assert_eq!(observed.usage, Some(Usage { input: 100, output: 7, cached: 60, cache_write: 0, reasoning: 3 }));
        assert!(super::super::is_truncation(observed.finish_reason.as_deref()));

        let anthropic = br#"{"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":90,"cache_creation_input_tokens":20}}"#;
        let observed = from_body(ClientApi::AnthropicMessages, anthropic);
        assert_eq!(observed.usage, Some(Usage { input: 120, output: 5, cached: 90, cache_write: 20, reasoning: 0 }));
        assert_eq!(observed.finish_reason.as_deref(), Some("end_turn"));

        let responses = br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":50,"output_tokens":9,"input_tokens_details":{"cached_tokens":40},"output_tokens_details":{"reasoning_tokens":4}}}"#;
        let observed = from_body(ClientApi::OpenAiResponses, responses);
        assert_eq!(observed.usage, Some(Usage { input: 50, output: 9, cached: 40, cache_write: 0, reasoning: 4 }));
        assert!(super::super::is_truncation(observed.finish_reason.as_deref()));

        assert_eq!(from_body(ClientApi::OpenAiChat, b"not json"), Observed::default());
    }

    fn run(api: ClientApi, events: &[(&str, &str)]) -> Observed {
        let mut observer = StreamObserver::new(api);
        for (name, data) in events {
            let event = if name.is_empty() { SseEvent::data(*data) } else { SseEvent::named(*name, *data) };
            observer.observe(&event);
        }
        observer.finish()
    }

    #[test]
    fn streams_in_every_api() {
        let openai = run(
            ClientApi::OpenAiChat,
            &[
                ("", r#"{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}"#),
                ("", r#"{"choices":[{"delta":{},"finish_reason": "stop"}]}"#),
                ("", r#"{"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}"#),
                ("", "[DONE]"),
            ],
        );
        assert_eq!(openai.usage, Some(Usage { input: 8, output: 2, ..Usage::default() }));
        assert_eq!(openai.finish_reason.as_deref(), Some("stop"));

        let anthropic = run(
            ClientApi::AnthropicMessages,
            &[
                (
                    "message_start",
                    r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"cache_read_input_tokens":100,"output_tokens":1}}}"#,
                ),
                ("content_block_delta", r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#),
                (
                    "message_delta",
                    r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":40}}"#,
                ),
            ],
        );
        assert_eq!(anthropic.usage, Some(Usage { input: 112, output: 40, cached: 100, ..Usage::default() }));
        assert!(super::super::is_truncation(anthropic.finish_reason.as_deref()));

        let responses = run(
            ClientApi::OpenAiResponses,
            &[(
                "response.completed",
                r#"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":6}}}"#,
            )],
        );
        assert_eq!(responses.usage, Some(Usage { input: 5, output: 6, ..Usage::default() }));
        assert_eq!(responses.finish_reason.as_deref(), Some("completed"));
    }

    #[test]
    fn cheap_test_for_values() {
        assert!(has_value(r#"{"finish_reason": "stop"}"#, "\"finish_reason\""));
        assert!(!has_value(r#"{"finish_reason":null}"#, "\"finish_reason\""));
        assert!(!has_value(r#"{"text":"usage"}"#, "\"usage\""));
    }
}
