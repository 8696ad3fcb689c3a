//! How a client's API meets a provider's wire: passthrough when they match,
//! translation when they differ. Translation itself is pure code (the `translate`
//! crate) that runs unchanged inside provider-adapter plugins.

use serde_json::Value;
use translate::{MaxTokensField, Options, chat_via_messages, messages_via_chat};

use crate::error::{ErrorShape, GatewayError};
use crate::provider::{Provider, Wire};
use crate::sse::SseEvent;

/// The API a client called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientApi {
    OpenAiChat,
    OpenAiEmbeddings,
    AnthropicMessages,
    AnthropicCountTokens,
}

impl ClientApi {
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Self::OpenAiChat | Self::OpenAiEmbeddings => ErrorShape::OpenAi,
            Self::AnthropicMessages | Self::AnthropicCountTokens => ErrorShape::Anthropic,
        }
    }

    /// A stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai.chat",
            Self::OpenAiEmbeddings => "openai.embeddings",
            Self::AnthropicMessages => "anthropic.messages",
            Self::AnthropicCountTokens => "anthropic.count_tokens",
        }
    }

    /// The event that tells this client its stream broke off.
    pub fn stream_error(self, message: &str) -> SseEvent {
        match self.error_shape() {
            ErrorShape::OpenAi => chat_via_messages::stream_error(message),
            ErrorShape::Anthropic => messages_via_chat::stream_error(message),
        }
    }

    /// True for the event that properly ends this API's stream.
    pub fn is_stream_end(self, event: &SseEvent) -> bool {
        match self.error_shape() {
            ErrorShape::OpenAi => event.data == "[DONE]",
            ErrorShape::Anthropic => matches!(event.event.as_deref(), Some("message_stop" | "error")),
        }
    }
}

/// What happens to a request on its way to one deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adaptation {
    /// Same API on both sides: the body goes up unchanged but for the model name.
    Passthrough,
    Translate(Translation),
    /// Anthropic's count_tokens for a model whose provider has no such call: the
    /// gateway estimates.
    EstimateTokens,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Translation {
    /// An OpenAI chat client, an Anthropic upstream.
    ChatViaMessages,
    /// An Anthropic messages client, an OpenAI chat upstream.
    MessagesViaChat,
}

impl Adaptation {
    pub fn plan(api: ClientApi, provider: &Provider) -> Result<Self, GatewayError> {
        Ok(match (api, provider.wire) {
            (ClientApi::OpenAiChat, Wire::OpenAiChat)
            | (ClientApi::OpenAiEmbeddings, Wire::OpenAiChat)
            | (ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens, Wire::AnthropicMessages) => {
                Self::Passthrough
            }
            (ClientApi::OpenAiChat, Wire::AnthropicMessages) => Self::Translate(Translation::ChatViaMessages),
            (ClientApi::AnthropicMessages, Wire::OpenAiChat) => Self::Translate(Translation::MessagesViaChat),
            (ClientApi::AnthropicCountTokens, Wire::OpenAiChat) => Self::EstimateTokens,
            (ClientApi::OpenAiEmbeddings, Wire::AnthropicMessages) => {
                return Err(GatewayError::invalid(format!("provider `{}` does not serve embeddings", provider.name))
                    .with_param("model"));
            }
        })
    }

    /// The upstream path (after the deployment's base URL) for this client's call.
    pub fn upstream_path(api: ClientApi, wire: Wire) -> &'static str {
        match (api, wire) {
            (ClientApi::OpenAiEmbeddings, _) => "/embeddings",
            (ClientApi::AnthropicCountTokens, _) => "/v1/messages/count_tokens",
            (_, Wire::OpenAiChat) => "/chat/completions",
            (_, Wire::AnthropicMessages) => "/v1/messages",
        }
    }
}

impl Translation {
    pub fn options(provider: &Provider, drop_params: bool) -> Options {
        let max_tokens_field =
            if provider.name == "openai" { MaxTokensField::MaxCompletionTokens } else { MaxTokensField::MaxTokens };
        Options { drop_params, max_tokens_field, ..Options::new() }
    }

    pub fn request(self, body: Value, options: &Options) -> Result<Value, GatewayError> {
        let translated = match self {
            Self::ChatViaMessages => chat_via_messages::request(body, options),
            Self::MessagesViaChat => messages_via_chat::request(body, options),
        };
        translated.map_err(|e| {
            let error = GatewayError::invalid(e.message);
            match e.param {
                Some(param) => error.with_param(param),
                None => error,
            }
        })
    }

    /// `created`: the Unix time to stamp on an OpenAI response.
    pub fn response(self, body: Value, created: u64) -> Result<Value, translate::TranslateError> {
        match self {
            Self::ChatViaMessages => chat_via_messages::response(body, created),
            Self::MessagesViaChat => messages_via_chat::response(body),
        }
    }

    pub fn error(self, status: u16, body: &[u8]) -> Value {
        match self {
            Self::ChatViaMessages => chat_via_messages::error(status, body),
            Self::MessagesViaChat => messages_via_chat::error(status, body),
        }
    }

    pub fn stream(self, include_usage: bool, created: u64) -> StreamTranslator {
        match self {
            Self::ChatViaMessages => {
                StreamTranslator::ChatViaMessages(chat_via_messages::StreamTranslator::new(include_usage, created))
            }
            Self::MessagesViaChat => StreamTranslator::MessagesViaChat(messages_via_chat::StreamTranslator::new()),
        }
    }
}

pub enum StreamTranslator {
    ChatViaMessages(chat_via_messages::StreamTranslator),
    MessagesViaChat(messages_via_chat::StreamTranslator),
}

impl StreamTranslator {
    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        match self {
            Self::ChatViaMessages(t) => t.push(event),
            Self::MessagesViaChat(t) => t.push(event),
        }
    }

    pub fn finish(&mut self) -> Vec<SseEvent> {
        match self {
            Self::ChatViaMessages(t) => t.finish(),
            Self::MessagesViaChat(t) => t.finish(),
        }
    }

    pub fn completed(&self) -> bool {
        match self {
            Self::ChatViaMessages(t) => t.completed(),
            Self::MessagesViaChat(t) => t.completed(),
        }
    }
}
