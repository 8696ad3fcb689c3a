//! The provider adapters' shared glue: each upstream kind is a small [`Upstream`]
//! description, and [`Adapter`] runs the pure translation code (`translate`) behind
//! the plugin API for it. An adapter plugin is one line:
//! `register_provider_adapter!(adapter_kit::Adapter<adapter_kit::Anthropic>)`.

use std::marker::PhantomData;

use memory_proxy_sdk::Api;
use memory_proxy_sdk::Header;
use memory_proxy_sdk::provider_adapter::{
    AdapterError, Context, ProviderAdapter, SseEvent, StreamTranslator, UpstreamRequest,
};
use serde_json::Value;
use translate::{MaxTokensField, Options, TranslateError, chat_via_messages, messages_via_chat};

/// What differs between upstreams of one wire API.
pub trait Upstream: 'static {
    /// The client API this upstream needs translation from.
    const CLIENT_API: Api;
    /// The upstream path the translated request goes to.
    const PATH: &'static str;

    fn headers() -> Vec<Header> {
        Vec::new()
    }

    fn options(context: &Context) -> Options {
        Options { drop_params: context.drop_params, ..Options::new() }
    }
}

/// Anthropic: OpenAI chat clients translated to Messages.
pub struct Anthropic;

impl Upstream for Anthropic {
    const CLIENT_API: Api = Api::OpenaiChat;
    const PATH: &'static str = "/v1/messages";

    fn headers() -> Vec<Header> {
        vec![Header { name: "anthropic-version".into(), value: "2023-06-01".into() }]
    }
}

/// OpenAI and OpenAI-compatible servers: Anthropic clients translated to chat
/// completions. OpenAI itself takes `max_completion_tokens`; most compatible servers
/// only know `max_tokens`.
pub struct OpenAi;

impl Upstream for OpenAi {
    const CLIENT_API: Api = Api::AnthropicMessages;
    const PATH: &'static str = "/chat/completions";

    fn options(context: &Context) -> Options {
        let max_tokens_field =
            if context.provider == "openai" { MaxTokensField::MaxCompletionTokens } else { MaxTokensField::MaxTokens };
        Options { drop_params: context.drop_params, max_tokens_field, ..Options::new() }
    }
}

/// Gemini's OpenAI-compatible endpoint: Anthropic clients translated to chat
/// completions with `max_tokens`, the field that endpoint documents.
pub struct Gemini;

impl Upstream for Gemini {
    const CLIENT_API: Api = Api::AnthropicMessages;
    const PATH: &'static str = "/chat/completions";
}

pub struct Adapter<U>(PhantomData<U>);

fn request_error(error: TranslateError) -> AdapterError {
    match error.param {
        Some(param) => AdapterError::invalid_param(param, error.message),
        None => AdapterError::invalid(error.message),
    }
}

fn parse(body: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| format!("{what} is not valid JSON: {e}"))
}

impl<U: Upstream> ProviderAdapter for Adapter<U> {
    type Stream = Stream;

    fn new() -> Result<Self, String> {
        Ok(Self(PhantomData))
    }

    fn translate_request(&self, context: &Context, body: String) -> Result<UpstreamRequest, AdapterError> {
        if context.client_api != U::CLIENT_API {
            return Err(AdapterError::invalid(format!(
                "provider `{}` cannot serve {:?} requests",
                context.provider, context.client_api
            )));
        }
        let mut body = parse(&body, "the request body").map_err(AdapterError::invalid)?;
        body["model"] = Value::String(context.upstream_model.clone());
        let options = U::options(context);
        let translated = match U::CLIENT_API {
            Api::OpenaiChat => chat_via_messages::request(body, &options),
            _ => messages_via_chat::request(body, &options),
        }
        .map_err(request_error)?;
        Ok(UpstreamRequest { path: U::PATH.into(), headers: U::headers(), body: translated.to_string() })
    }

    fn translate_response(&self, context: &Context, body: String) -> Result<String, AdapterError> {
        let body = parse(&body, "the upstream answer").map_err(AdapterError::BadUpstream)?;
        let translated = match U::CLIENT_API {
            Api::OpenaiChat => chat_via_messages::response(body, context.now),
            _ => messages_via_chat::response(body),
        };
        translated.map(|v| v.to_string()).map_err(|e| AdapterError::BadUpstream(e.message))
    }

    fn translate_error(&self, _context: &Context, status: u16, body: String) -> String {
        match U::CLIENT_API {
            Api::OpenaiChat => chat_via_messages::error(status, body.as_bytes()),
            _ => messages_via_chat::error(status, body.as_bytes()),
        }
        .to_string()
    }
}

/// One streamed answer, translated for the client's API.
pub enum Stream {
    ChatViaMessages(chat_via_messages::StreamTranslator),
    MessagesViaChat(messages_via_chat::StreamTranslator),
}

fn to_wit(events: Vec<translate::SseEvent>) -> Vec<SseEvent> {
    events.into_iter().map(|e| SseEvent { event: e.event, data: e.data }).collect()
}

impl StreamTranslator for Stream {
    fn new(context: &Context) -> Self {
        match context.client_api {
            Api::OpenaiChat => {
                Self::ChatViaMessages(chat_via_messages::StreamTranslator::new(context.include_usage, context.now))
            }
            _ => Self::MessagesViaChat(messages_via_chat::StreamTranslator::new()),
        }
    }

    fn push(&mut self, event: SseEvent) -> Vec<SseEvent> {
        let event = translate::SseEvent { event: event.event, data: event.data };
        to_wit(match self {
            Self::ChatViaMessages(t) => t.push(&event),
            Self::MessagesViaChat(t) => t.push(&event),
        })
    }

    fn finish(&mut self) -> Vec<SseEvent> {
        to_wit(match self {
            Self::ChatViaMessages(t) => t.finish(),
            Self::MessagesViaChat(t) => t.finish(),
        })
    }

    fn completed(&self) -> bool {
        match self {
            Self::ChatViaMessages(t) => t.completed(),
            Self::MessagesViaChat(t) => t.completed(),
        }
    }
}
