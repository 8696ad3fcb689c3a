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
    MaxTokensField, Options, TranslateError, chat_via_gemini, chat_via_messages, messages_via_chat,
    messages_via_gemini, responses_via_chat, responses_via_gemini, responses_via_messages,
};

/// The API an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Anthropic messages, at `/v1/messages`.
    Messages,
    /// OpenAI chat completions, at `/chat/completions`.
    Chat,
    /// Gemini's own API, at `/models/{model}:generateContent` (and
    /// `:streamGenerateContent?alt=sse` for streams).
    Gemini,
}

/// What differs between upstreams of one wire API.
pub trait Upstream: 'static {
    const WIRE: Wire;

    /// The wire a request goes out on: [`Self::WIRE`], unless the plugin serves
    /// providers of more than one (as the Gemini adapter does).
    fn wire(context: &Context) -> Wire {
        let _ = context;
        Self::WIRE
    }

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

/// The provider name, in config.yaml, of Gemini's own API; `gemini` is its
/// OpenAI-compatible endpoint.
pub const GEMINI_NATIVE: &str = "gemini_native";

/// Gemini, through whichever API the provider names: `gemini`, the OpenAI-compatible
/// endpoint (Anthropic and Responses clients translated to chat completions with
/// `max_tokens`, the field that endpoint documents), or [`GEMINI_NATIVE`], its own
/// API (as [`GeminiNative`]).
pub struct Gemini;

impl Upstream for Gemini {
    const WIRE: Wire = Wire::Chat;

    fn wire(context: &Context) -> Wire {
        if context.provider == GEMINI_NATIVE { GeminiNative::WIRE } else { Self::WIRE }
    }
}

/// Gemini's own API: OpenAI chat, Anthropic and Responses clients all translated to
/// `generateContent`. The key goes in `x-goog-api-key`, which the host adds.
pub struct GeminiNative;

impl Upstream for GeminiNative {
    const WIRE: Wire = Wire::Gemini;
}

/// One translation the `translate` crate offers: the client's API and the upstream's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Translation {
    ChatViaMessages,
    ResponsesViaMessages,
    MessagesViaChat,
    ResponsesViaChat,
    ChatViaGemini,
    MessagesViaGemini,
    ResponsesViaGemini,
}

impl Translation {
    fn of(client_api: Api, wire: Wire) -> Option<Self> {
        Some(match (client_api, wire) {
            (Api::OpenaiChat, Wire::Messages) => Self::ChatViaMessages,
            (Api::OpenaiResponses, Wire::Messages) => Self::ResponsesViaMessages,
            (Api::AnthropicMessages, Wire::Chat) => Self::MessagesViaChat,
            (Api::OpenaiResponses, Wire::Chat) => Self::ResponsesViaChat,
            (Api::OpenaiChat, Wire::Gemini) => Self::ChatViaGemini,
            (Api::AnthropicMessages, Wire::Gemini) => Self::MessagesViaGemini,
            (Api::OpenaiResponses, Wire::Gemini) => Self::ResponsesViaGemini,
            _ => return None,
        })
    }

    /// The path after the deployment's base URL. Gemini names the model and whether
    /// the answer streams in the path, not the body.
    fn path(self, model: &str, stream: bool) -> String {
        // A model given as its resource name (`models/gemini-2.5-flash`) is the same model.
        let model = model.strip_prefix("models/").unwrap_or(model);
        match self {
            Self::ChatViaMessages | Self::ResponsesViaMessages => "/v1/messages".into(),
            Self::MessagesViaChat | Self::ResponsesViaChat => "/chat/completions".into(),
            Self::ChatViaGemini | Self::MessagesViaGemini | Self::ResponsesViaGemini if stream => {
                format!("/models/{model}:streamGenerateContent?alt=sse")
            }
            Self::ChatViaGemini | Self::MessagesViaGemini | Self::ResponsesViaGemini => {
                format!("/models/{model}:generateContent")
            }
        }
    }
}

pub struct Adapter<U>(PhantomData<U>);

impl<U: Upstream> Adapter<U> {
    fn translation(context: &Context) -> Result<Translation, AdapterError> {
        Translation::of(context.client_api, U::wire(context)).ok_or_else(|| {
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
        let stream = body["stream"] == true;
        let options = U::options(context);
        let translated = match translation {
            Translation::ChatViaMessages => chat_via_messages::request(body, &options),
            Translation::ResponsesViaMessages => responses_via_messages::request(body, &options),
            Translation::MessagesViaChat => messages_via_chat::request(body, &options),
            Translation::ResponsesViaChat => responses_via_chat::request(body, &options),
            Translation::ChatViaGemini => chat_via_gemini::request(body, &options),
            Translation::MessagesViaGemini => messages_via_gemini::request(body, &options),
            Translation::ResponsesViaGemini => responses_via_gemini::request(body, &options),
        }
        .map_err(request_error)?;
        Ok(UpstreamRequest {
            path: translation.path(&context.upstream_model, stream),
            headers: U::headers(),
            body: translated.to_string(),
        })
    }

    fn translate_response(&self, context: &Context, body: String) -> Result<String, AdapterError> {
        let translation = Self::translation(context)?;
        let body = parse(&body, "the upstream answer").map_err(AdapterError::BadUpstream)?;
        let now = context.now;
        let translated = match translation {
            Translation::ChatViaMessages => chat_via_messages::response(body, now),
            Translation::ResponsesViaMessages => responses_via_messages::response(body, now),
            Translation::MessagesViaChat => messages_via_chat::response(body),
            Translation::ResponsesViaChat => responses_via_chat::response(body, now),
            Translation::ChatViaGemini => chat_via_gemini::response(body, now),
            Translation::MessagesViaGemini => messages_via_gemini::response(body, now),
            Translation::ResponsesViaGemini => responses_via_gemini::response(body, now),
        };
        translated.map(|v| v.to_string()).map_err(|e| AdapterError::BadUpstream(e.message))
    }

    fn translate_error(&self, context: &Context, status: u16, body: String) -> String {
        let body = body.as_bytes();
        match Translation::of(context.client_api, U::wire(context)) {
            Some(Translation::ChatViaMessages) => chat_via_messages::error(status, body),
            Some(Translation::ResponsesViaMessages) => responses_via_messages::error(status, body),
            Some(Translation::MessagesViaChat) | None => messages_via_chat::error(status, body),
            Some(Translation::ResponsesViaChat) => responses_via_chat::error(status, body),
            Some(Translation::ChatViaGemini) => chat_via_gemini::error(status, body),
            Some(Translation::MessagesViaGemini) => messages_via_gemini::error(status, body),
            Some(Translation::ResponsesViaGemini) => responses_via_gemini::error(status, body),
        }
        .to_string()
    }
}

/// What every translation's stream translator does, so a stream holds whichever one
/// its pair needs.
trait Translate {
    fn push(&mut self, event: &translate::SseEvent) -> Vec<translate::SseEvent>;
    fn finish(&mut self) -> Vec<translate::SseEvent>;
    fn completed(&self) -> bool;
}

macro_rules! translate_with {
    ($($module:ident),* $(,)?) => {$(
        impl Translate for $module::StreamTranslator {
            fn push(&mut self, event: &translate::SseEvent) -> Vec<translate::SseEvent> {
                $module::StreamTranslator::push(self, event)
            }
            fn finish(&mut self) -> Vec<translate::SseEvent> {
                $module::StreamTranslator::finish(self)
            }
            fn completed(&self) -> bool {
                $module::StreamTranslator::completed(self)
            }
        }
    )*};
}

translate_with!(
    chat_via_messages,
    responses_via_messages,
    messages_via_chat,
    responses_via_chat,
    chat_via_gemini,
    messages_via_gemini,
    responses_via_gemini,
);

/// One streamed answer, translated for the client's API.
pub struct Stream<U>(Box<dyn Translate>, PhantomData<U>);

fn to_wit(events: Vec<translate::SseEvent>) -> Vec<SseEvent> {
    events.into_iter().map(|e| SseEvent { event: e.event, data: e.data }).collect()
}

impl<U: Upstream> StreamTranslator for Stream<U> {
    fn new(context: &Context) -> Self {
        // A stream is opened only after its request was translated, so the pair is one
        // the kit serves; the fallback is the upstream's usual client.
        let wire = U::wire(context);
        let translation = Translation::of(context.client_api, wire).unwrap_or(match wire {
            Wire::Messages => Translation::ChatViaMessages,
            Wire::Chat => Translation::MessagesViaChat,
            Wire::Gemini => Translation::ChatViaGemini,
        });
        let (include_usage, now) = (context.include_usage, context.now);
        let translator: Box<dyn Translate> = match translation {
            Translation::ChatViaMessages => Box::new(chat_via_messages::StreamTranslator::new(include_usage, now)),
            Translation::ResponsesViaMessages => Box::new(responses_via_messages::StreamTranslator::new(now)),
            Translation::MessagesViaChat => Box::new(messages_via_chat::StreamTranslator::new()),
            Translation::ResponsesViaChat => Box::new(responses_via_chat::StreamTranslator::new(now)),
            Translation::ChatViaGemini => Box::new(chat_via_gemini::StreamTranslator::new(include_usage, now)),
            Translation::MessagesViaGemini => Box::new(messages_via_gemini::StreamTranslator::new(now)),
            Translation::ResponsesViaGemini => Box::new(responses_via_gemini::StreamTranslator::new(now)),
        };
        Self(translator, PhantomData)
    }

    fn push(&mut self, event: SseEvent) -> Vec<SseEvent> {
        to_wit(self.0.push(&translate::SseEvent { event: event.event, data: event.data }))
    }

    fn finish(&mut self) -> Vec<SseEvent> {
        to_wit(self.0.finish())
    }

    fn completed(&self) -> bool {
        self.0.completed()
    }
}

#[cfg(test)]
mod tests;
