//! How a client's API meets a provider's wire: passthrough when they match,
//! translation by the provider's adapter plugin when they differ.

use crate::error::{ErrorKind, ErrorShape, GatewayError};
use crate::plugins::hooks::Api;
use crate::provider::{Provider, Wire};
use crate::sse::SseEvent;

/// The API a client called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientApi {
    OpenAiChat,
    OpenAiResponses,
    OpenAiEmbeddings,
    AnthropicMessages,
    AnthropicCountTokens,
}

impl ClientApi {
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Self::OpenAiChat | Self::OpenAiResponses | Self::OpenAiEmbeddings => ErrorShape::OpenAi,
            Self::AnthropicMessages | Self::AnthropicCountTokens => ErrorShape::Anthropic,
        }
    }

    /// A stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai.chat",
            Self::OpenAiResponses => "openai.responses",
            Self::OpenAiEmbeddings => "openai.embeddings",
            Self::AnthropicMessages => "anthropic.messages",
            Self::AnthropicCountTokens => "anthropic.count_tokens",
        }
    }

    /// The API as the plugin interface names it.
    pub fn wit(self) -> Api {
        match self {
            Self::OpenAiChat => Api::OpenaiChat,
            Self::OpenAiResponses => Api::OpenaiResponses,
            Self::OpenAiEmbeddings => Api::OpenaiEmbeddings,
            Self::AnthropicMessages => Api::AnthropicMessages,
            Self::AnthropicCountTokens => Api::AnthropicCountTokens,
        }
    }

    /// The event that tells this client its stream broke off.
    pub fn stream_error(self, message: &str) -> SseEvent {
        GatewayError::new(ErrorKind::BadGateway, message).stream_event(self.error_shape())
    }

    /// True for the event that properly ends this API's stream.
    pub fn is_stream_end(self, event: &SseEvent) -> bool {
        match self {
            Self::OpenAiResponses => matches!(
                event.event.as_deref(),
                Some("response.completed" | "response.failed" | "response.incomplete" | "error")
            ),
            _ => match self.error_shape() {
                ErrorShape::OpenAi => event.data == "[DONE]",
                ErrorShape::Anthropic => matches!(event.event.as_deref(), Some("message_stop" | "error")),
            },
        }
    }
}

/// What happens to a request on its way to one deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adaptation {
    /// Same API on both sides: the body goes up unchanged but for the model name.
    Passthrough,
    /// Different APIs: the provider's adapter plugin translates both ways.
    Translate,
    /// Anthropic's count_tokens for a provider that has no such call: the gateway
    /// estimates.
    EstimateTokens,
}

impl Adaptation {
    pub fn plan(api: ClientApi, provider: &Provider) -> Result<Self, GatewayError> {
        Ok(match (api, provider.wire) {
            (ClientApi::OpenAiChat | ClientApi::OpenAiResponses | ClientApi::OpenAiEmbeddings, Wire::OpenAiChat)
            | (ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens, Wire::AnthropicMessages) => {
                Self::Passthrough
            }
            (ClientApi::OpenAiChat, Wire::AnthropicMessages) | (ClientApi::AnthropicMessages, Wire::OpenAiChat) => {
                Self::Translate
            }
            (ClientApi::AnthropicCountTokens, Wire::OpenAiChat) => Self::EstimateTokens,
            (ClientApi::OpenAiEmbeddings, Wire::AnthropicMessages) => {
                return Err(GatewayError::invalid(format!("provider `{}` does not serve embeddings", provider.name))
                    .with_param("model"));
            }
            (ClientApi::OpenAiResponses, Wire::AnthropicMessages) => {
                return Err(GatewayError::invalid(format!(
                    "the Responses API is passed through to OpenAI-compatible providers only, not to `{}`",
                    provider.name
                ))
                .with_param("model"));
            }
        })
    }

    /// The upstream path (after the deployment's base URL) of a passed-through call.
    pub fn passthrough_path(api: ClientApi) -> &'static str {
        match api {
            ClientApi::OpenAiChat => "/chat/completions",
            ClientApi::OpenAiResponses => "/responses",
            ClientApi::OpenAiEmbeddings => "/embeddings",
            ClientApi::AnthropicMessages => "/v1/messages",
            ClientApi::AnthropicCountTokens => "/v1/messages/count_tokens",
        }
    }
}

/// The API an upstream of this wire speaks, in the terms of the client APIs.
pub fn wire_api(wire: Wire) -> ClientApi {
    match wire {
        Wire::OpenAiChat => ClientApi::OpenAiChat,
        Wire::AnthropicMessages => ClientApi::AnthropicMessages,
    }
}
