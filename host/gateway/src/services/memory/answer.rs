//! The text of an answer, for remembering the turn: read from a whole answer or
//! gathered from stream events, in the API the upstream spoke.

use serde::Deserialize;
use serde_json::Value;
use wire::content::text_of_value as content_text;

use crate::core::api::ClientApi;
use crate::core::sse::SseEvent;

/// The text of a whole answer in `api`'s shape (tool calls and reasoning left out).
pub fn of_body(api: ClientApi, body: &[u8]) -> String {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    match api {
        ClientApi::OpenAiChat => content_text(&answer["choices"][0]["message"]["content"]),
        ClientApi::AnthropicMessages => content_text(&answer["content"]),
        ClientApi::OpenAiResponses => {
            let messages = answer["output"].as_array().into_iter().flatten().filter(|o| o["type"] == "message");
            messages.map(|m| content_text(&m["content"])).collect::<Vec<_>>().join("\n")
        }
        ClientApi::OpenAiEmbeddings | ClientApi::AnthropicCountTokens => String::new(),
    }
}

#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Vec<ChatChoice>,
}

#[derive(Deserialize)]
struct ChatChoice {
    delta: Option<ChatDelta>,
}

#[derive(Deserialize)]
struct ChatDelta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicDelta {
    delta: AnthropicText,
}

#[derive(Deserialize)]
struct AnthropicText {
    text: Option<String>,
}

#[derive(Deserialize)]
struct ResponsesDelta {
    delta: String,
}

/// The answer text one stream event of `api` adds, if any.
pub fn of_event(api: ClientApi, event: &SseEvent) -> Option<String> {
    match api {
        ClientApi::OpenAiChat => {
            // Most chunks carry text; a cheap look spares parsing the rest.
            if !event.data.contains("\"content\"") {
                return None;
            }
            let chunk: ChatChunk = serde_json::from_str(&event.data).ok()?;
            chunk.choices.into_iter().next()?.delta?.content
        }
        ClientApi::AnthropicMessages if event.event.as_deref() == Some("content_block_delta") => {
            serde_json::from_str::<AnthropicDelta>(&event.data).ok()?.delta.text
        }
        ClientApi::OpenAiResponses if event.event.as_deref() == Some("response.output_text.delta") => {
            Some(serde_json::from_str::<ResponsesDelta>(&event.data).ok()?.delta)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: name.map(str::to_owned), data: data.to_owned() }
    }

    #[test]
    fn whole_answers_in_each_api() {
        let chat = br#"{"choices":[{"message":{"role":"assistant","content":"Teal.","tool_calls":[]}}]}"#;
        assert_eq!(of_body(ClientApi::OpenAiChat, chat), "Teal.");
        let messages = br#"{"content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"Teal."},{"type":"tool_use","id":"t","name":"x","input":{}}]}"#;
        assert_eq!(of_body(ClientApi::AnthropicMessages, messages), "Teal.");
        let responses = br#"{"output":[{"type":"reasoning"},{"type":"message","content":[{"type":"output_text","text":"Teal."}]}]}"#;
        assert_eq!(of_body(ClientApi::OpenAiResponses, responses), "Teal.");
        assert_eq!(of_body(ClientApi::OpenAiChat, b"not json"), "");
    }

    #[test]
    fn stream_events_in_each_api() {
        let chat = event(None, r#"{"choices":[{"index":0,"delta":{"content":"Te"}}]}"#);
        assert_eq!(of_event(ClientApi::OpenAiChat, &chat).as_deref(), Some("Te"));
        assert_eq!(of_event(ClientApi::OpenAiChat, &event(None, "[DONE]")), None);
        let role = event(None, r#"{"choices":[{"delta":{"role":"assistant","content":null}}]}"#);
        assert_eq!(of_event(ClientApi::OpenAiChat, &role), None);
        let anthropic = event(
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"al"}}"#,
        );
        assert_eq!(of_event(ClientApi::AnthropicMessages, &anthropic).as_deref(), Some("al"));
        let tool = event(
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
        );
        assert_eq!(of_event(ClientApi::AnthropicMessages, &tool), None);
        let responses =
            event(Some("response.output_text.delta"), r#"{"type":"response.output_text.delta","delta":"."}"#);
        assert_eq!(of_event(ClientApi::OpenAiResponses, &responses).as_deref(), Some("."));
    }
}
