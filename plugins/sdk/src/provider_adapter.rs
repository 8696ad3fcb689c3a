//! Provider adapters: a client's API translated for an upstream that speaks another.

pub use crate::bindings::adapter::exports::memory_proxy::plugin::adaptation::{
    AdapterError, Context, InvalidRequest, SseEvent, UpstreamRequest,
};

/// A provider adapter. `new` runs once per plugin instance.
pub trait ProviderAdapter: Sized + 'static {
    /// Translates one streamed answer.
    type Stream: StreamTranslator;

    fn new() -> Result<Self, String>;

    /// The client's request body -> the upstream request.
    fn translate_request(&self, context: &Context, body: String) -> Result<UpstreamRequest, AdapterError> {
        let _ = body;
        Err(AdapterError::invalid(format!("this adapter cannot serve {:?} requests", context.client_api)))
    }

    /// A successful upstream answer -> the client's answer.
    fn translate_response(&self, context: &Context, body: String) -> Result<String, AdapterError> {
        let _ = (context, body);
        Err(AdapterError::BadUpstream("this adapter does not translate answers".into()))
    }

    /// An upstream error -> the client's error body. By default, unchanged.
    fn translate_error(&self, context: &Context, status: u16, body: String) -> String {
        let _ = (context, status);
        body
    }
}

/// Translates one streamed answer: upstream events in, client events out.
pub trait StreamTranslator: 'static {
    fn new(context: &Context) -> Self;

    fn push(&mut self, event: SseEvent) -> Vec<SseEvent>;

    /// The upstream stream ended: the events the client still needs.
    fn finish(&mut self) -> Vec<SseEvent> {
        Vec::new()
    }

    /// True once the upstream's stream reached its proper end.
    fn completed(&self) -> bool;
}

impl AdapterError {
    /// The request cannot be expressed upstream (the client gets a 400).
    pub fn invalid(message: impl Into<String>) -> Self {
        AdapterError::InvalidRequest(InvalidRequest { message: message.into(), param: None })
    }

    /// The same, naming the request field at fault.
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        AdapterError::InvalidRequest(InvalidRequest { message: message.into(), param: Some(param.into()) })
    }
}

/// Registers a [`ProviderAdapter`] as this plugin's export.
#[macro_export]
macro_rules! register_provider_adapter {
    ($plugin:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            use $crate::bindings::adapter::exports::memory_proxy::plugin::adaptation as wit;
            use $crate::provider_adapter::{
                AdapterError, Context, ProviderAdapter, SseEvent, StreamTranslator, UpstreamRequest,
            };

            struct Export;
            /// The resource the host holds for one stream.
            struct StreamResource(::std::cell::RefCell<Translator>);
            static INSTANCE: $crate::Instance<$plugin> = $crate::Instance::new();
            type Translator = <$plugin as ProviderAdapter>::Stream;

            fn plugin() -> ::core::result::Result<&'static $plugin, ::std::string::String> {
                INSTANCE.get(<$plugin as ProviderAdapter>::new)
            }

            impl wit::Guest for Export {
                type StreamTranslator = StreamResource;

                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    plugin().map(|_| ())
                }

                fn translate_request(
                    context: Context,
                    body: ::std::string::String,
                ) -> ::core::result::Result<UpstreamRequest, AdapterError> {
                    plugin().map_err(AdapterError::BadUpstream)?.translate_request(&context, body)
                }

                fn translate_response(
                    context: Context,
                    body: ::std::string::String,
                ) -> ::core::result::Result<::std::string::String, AdapterError> {
                    plugin().map_err(AdapterError::BadUpstream)?.translate_response(&context, body)
                }

                fn translate_error(
                    context: Context,
                    status: u16,
                    body: ::std::string::String,
                ) -> ::std::string::String {
                    match plugin() {
                        Ok(plugin) => plugin.translate_error(&context, status, body),
                        Err(_) => body,
                    }
                }
            }

            impl wit::GuestStreamTranslator for StreamResource {
                fn new(context: Context) -> Self {
                    StreamResource(::std::cell::RefCell::new(<Translator as StreamTranslator>::new(&context)))
                }

                fn push(&self, event: SseEvent) -> ::std::vec::Vec<SseEvent> {
                    self.0.borrow_mut().push(event)
                }

                fn finish(&self) -> ::std::vec::Vec<SseEvent> {
                    self.0.borrow_mut().finish()
                }

                fn completed(&self) -> bool {
                    self.0.borrow().completed()
                }
            }

    $crate::bindings::adapter::export_provider_adapter!(Export with_types_in $crate::bindings::adapter);
        };
        $crate::__embed_metadata!();
    };
}
