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
use translate::{
    MaxTokensField, Options, TranslateError, chat_via_messages, messages_via_chat, responses_via_chat,
    responses_via_messages,
};

/// The API an upstream speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Anthropic messages, at `/v1/messages`.
    Messages,
    /// OpenAI chat completions, at `/chat/completions`.
    Chat,
}

/// What differs between upstreams of one wire API.
pub trait Upstream: 'static {
    const WIRE: Wire;

    fn headers() -> Vec<Header> {
        Vec::new()
    }

    fn options(context: &Context) -> Options {
        Options { drop_params: context.drop_params, ..Options::new() }
    }
}

/// Anthropic: OpenAI chat and Responses clients translated to Messages.
pub struct Anthropic;

impl Upstream for Anthropic {
    const WIRE: Wire = Wire::Messages;

    fn headers() -> Vec<Header> {
        vec![Header { name: "anthropic-version".into(), value: "2023-06-01".into() }]
    }
}

/// OpenAI and OpenAI-compatible servers: Anthropic and Responses clients translated
/// to chat completions. OpenAI itself takes `max_completion_tokens`; most compatible
/// servers only know `max_tokens`.
pub struct OpenAi;

impl Upstream for OpenAi {
    const WIRE: Wire = Wire::Chat;

    fn options(context: &Context) -> Options {
        let max_tokens_field =
            if context.provider == "openai" { MaxTokensField::MaxCompletionTokens } else { MaxTokensField::MaxTokens };
        Options { drop_params: context.drop_params, max_tokens_field, ..Options::new() }
    }
}

/// Gemini's OpenAI-compatible endpoint: Anthropic and Responses clients translated to
/// chat completions with `max_tokens`, the field that endpoint documents.
pub struct Gemini;

impl Upstream for Gemini {
    const WIRE: Wire = Wire::Chat;
}

/// One translation the `translate` crate offers: the client's API and the upstream's.
#[derive(Clone, Copy)]
enum Translation {
    ChatViaMessages,
    MessagesViaChat,
    ResponsesViaChat,
    ResponsesViaMessages,
}

impl Translation {
    fn of(client_api: Api, wire: Wire) -> Option<Self> {
        Some(match (client_api, wire) {
            (Api::OpenaiChat, Wire::Messages) => Self::ChatViaMessages,
            (Api::OpenaiResponses, Wire::Messages) => Self::ResponsesViaMessages,
            (Api::AnthropicMessages, Wire::Chat) => Self::MessagesViaChat,
            (Api::OpenaiResponses, Wire::Chat) => Self::ResponsesViaChat,
            _ => return None,
        })
    }

    fn path(self) -> &'static str {
        match self {
            Self::ChatViaMessages | Self::ResponsesViaMessages => "/v1/messages",
            Self::MessagesViaChat | Self::ResponsesViaChat => "/chat/completions",
        }
    }
}

pub struct Adapter<U>(PhantomData<U>);

impl<U: Upstream> Adapter<U> {
    fn translation(context: &Context) -> Result<Translation, AdapterError> {
        Translation::of(context.client_api, U::WIRE).ok_or_else(|| {
            AdapterError::invalid(format!(
                "provider `{}` cannot serve {:?} requests",
                context.provider, context.client_api
            ))
        })
    }
}

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
    type Stream = Stream<U>;

    fn new() -> Result<Self, String> {
        Ok(Self(PhantomData))
    }

    fn translate_request(&self, context: &Context, body: String) -> Result<UpstreamRequest, AdapterError> {
        let translation = Self::translation(context)?;
        let mut body = parse(&body, "the request body").map_err(AdapterError::invalid)?;
        body["model"] = Value::String(context.upstream_model.clone());
        let options = U::options(context);
        let translated = match translation {
            Translation::ChatViaMessages => chat_via_messages::request(body, &options),
            Translation::MessagesViaChat => messages_via_chat::request(body, &options),
            Translation::ResponsesViaChat => responses_via_chat::request(body, &options),
            Translation::ResponsesViaMessages => responses_via_messages::request(body, &options),
        }
        .map_err(request_error)?;
        Ok(UpstreamRequest { path: translation.path().into(), headers: U::headers(), body: translated.to_string() })
    }

    fn translate_response(&self, context: &Context, body: String) -> Result<String, AdapterError> {
        let translation = Self::translation(context)?;
        let body = parse(&body, "the upstream answer").map_err(AdapterError::BadUpstream)?;
        let translated = match translation {
            Translation::ChatViaMessages => chat_via_messages::response(body, context.now),
            Translation::MessagesViaChat => messages_via_chat::response(body),
            Translation::ResponsesViaChat => responses_via_chat::response(body, context.now),
            Translation::ResponsesViaMessages => responses_via_messages::response(body, context.now),
        };
        translated.map(|v| v.to_string()).map_err(|e| AdapterError::BadUpstream(e.message))
    }

    fn translate_error(&self, context: &Context, status: u16, body: String) -> String {
        let body = body.as_bytes();
        match Translation::of(context.client_api, U::WIRE) {
            Some(Translation::ChatViaMessages) => chat_via_messages::error(status, body),
            Some(Translation::ResponsesViaMessages) => responses_via_messages::error(status, body),
            Some(Translation::ResponsesViaChat) => responses_via_chat::error(status, body),
            Some(Translation::MessagesViaChat) | None => messages_via_chat::error(status, body),
        }
        .to_string()
    }
}

/// One streamed answer, translated for the client's API.
pub struct Stream<U>(Translator, PhantomData<U>);

enum Translator {
    ChatViaMessages(chat_via_messages::StreamTranslator),
    MessagesViaChat(messages_via_chat::StreamTranslator),
    ResponsesViaChat(responses_via_chat::StreamTranslator),
    ResponsesViaMessages(responses_via_messages::StreamTranslator),
}

fn to_wit(events: Vec<translate::SseEvent>) -> Vec<SseEvent> {
    events.into_iter().map(|e| SseEvent { event: e.event, data: e.data }).collect()
}

impl<U: Upstream> StreamTranslator for Stream<U> {
    fn new(context: &Context) -> Self {
        // A stream is opened only after its request was translated, so the pair is one
        // the kit serves; the fallback is the upstream's usual client.
        let translation = Translation::of(context.client_api, U::WIRE).unwrap_or(match U::WIRE {
            Wire::Messages => Translation::ChatViaMessages,
            Wire::Chat => Translation::MessagesViaChat,
        });
        let translator = match translation {
            Translation::ChatViaMessages => Translator::ChatViaMessages(chat_via_messages::StreamTranslator::new(
                context.include_usage,
                context.now,
            )),
            Translation::MessagesViaChat => Translator::MessagesViaChat(messages_via_chat::StreamTranslator::new()),
            Translation::ResponsesViaChat => {
                Translator::ResponsesViaChat(responses_via_chat::StreamTranslator::new(context.now))
            }
            Translation::ResponsesViaMessages => {
                Translator::ResponsesViaMessages(responses_via_messages::StreamTranslator::new(context.now))
            }
        };
        Self(translator, PhantomData)
    }

    fn push(&mut self, event: SseEvent) -> Vec<SseEvent> {
        let event = translate::SseEvent { event: event.event, data: event.data };
        to_wit(match &mut self.0 {
            Translator::ChatViaMessages(t) => t.push(&event),
            Translator::MessagesViaChat(t) => t.push(&event),
            Translator::ResponsesViaChat(t) => t.push(&event),
            Translator::ResponsesViaMessages(t) => t.push(&event),
        })
    }

    fn finish(&mut self) -> Vec<SseEvent> {
        to_wit(match &mut self.0 {
            Translator::ChatViaMessages(t) => t.finish(),
            Translator::MessagesViaChat(t) => t.finish(),
            Translator::ResponsesViaChat(t) => t.finish(),
            Translator::ResponsesViaMessages(t) => t.finish(),
        })
    }

    fn completed(&self) -> bool {
        match &self.0 {
            Translator::ChatViaMessages(t) => t.completed(),
            Translator::MessagesViaChat(t) => t.completed(),
            Translator::ResponsesViaChat(t) => t.completed(),
            Translator::ResponsesViaMessages(t) => t.completed(),
        }
    }
}
