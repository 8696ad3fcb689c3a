//! The APIs clients call, and what each needs of the gateway: its error shape, its
//! label, how its stream ends.

use super::error::{ErrorKind, ErrorShape, GatewayError};
use super::provider::Wire;
use super::sse::SseEvent;

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

    /// The event that tells this client its stream broke off.
    pub fn stream_error(self, message: &str) -> SseEvent {
        GatewayError::new(ErrorKind::BadGateway, message).stream_event(self.error_shape())
    }

    /// True for the event that ends a successful answer in this API: OpenAI chat's
    /// `[DONE]`, Anthropic's `message_stop`, Responses' `response.completed`.
    pub fn is_answer_end(self, event: &SseEvent) -> bool {
        match self {
            Self::OpenAiResponses => event.event.as_deref() == Some("response.completed"),
            _ => match self.error_shape() {
                ErrorShape::OpenAi => event.data == "[DONE]",
                ErrorShape::Anthropic => event.event.as_deref() == Some("message_stop"),
            },
        }
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

/// The API an upstream of this wire speaks, in the terms of the client APIs (None:
/// no client speaks it).
pub fn wire_api(wire: Wire) -> Option<ClientApi> {
    match wire {
        Wire::OpenAiChat => Some(ClientApi::OpenAiChat),
        Wire::AnthropicMessages => Some(ClientApi::AnthropicMessages),
        Wire::GeminiGenerateContent => None,
    }
}
