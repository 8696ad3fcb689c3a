//! Host bindings of plugin API 0.2.0 (wit/v0.2.0, frozen): the generated types, the
//! host interface plugins of this version import, each hook call for each world, and
//! the conversions from 0.1.0's types (a detector's identity gained `scaffolding`).

use wasmtime::component::{HasSelf, InstancePre, Linker, ResourceAny};
use wasmtime::{Result, Store};

use crate::core::api::ClientApi;
use crate::plugins::plugin::Kind;
use crate::plugins::runtime::State;

pub const VERSION: &str = "0.2.0";

mod detector {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
        world: "detector",
        exports: { default: async },
    });
}

mod injector {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
        world: "memory-injector",
        exports: { default: async },
        with: {
            "memory-proxy:plugin/types": super::detector::memory_proxy::plugin::types,
            "memory-proxy:plugin/host": super::detector::memory_proxy::plugin::host,
        },
    });
}

mod adapter {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
        world: "provider-adapter",
        exports: { default: async },
        with: {
            "memory-proxy:plugin/types": super::detector::memory_proxy::plugin::types,
            "memory-proxy:plugin/host": super::detector::memory_proxy::plugin::host,
        },
    });
}

use detector::memory_proxy::plugin::host;
pub use detector::memory_proxy::plugin::types::{Api, Header};

pub use adapter::exports::memory_proxy::plugin::adaptation::{
    AdapterError, Context as AdapterContext, InvalidRequest, SseEvent, UpstreamRequest as AdaptedRequest,
};
pub use detector::exports::memory_proxy::plugin::detection::{Identity, Request as DetectRequest};
pub use injector::exports::memory_proxy::plugin::injection::{
    Memory, Patch, Position, Request as InjectRequest, Scope,
};

/// Adds the host interface of this version (every world imports the same one).
pub fn add_to_linker(linker: &mut Linker<State>) -> Result<()> {
    detector::Detector::add_to_linker::<State, HasSelf<State>>(linker, |state| state)
}

/// A component linked for its hook, ready to instantiate.
pub enum Pre {
    Detector(detector::DetectorPre<State>),
    MemoryInjector(injector::MemoryInjectorPre<State>),
    ProviderAdapter(adapter::ProviderAdapterPre<State>),
}

/// One live instance of a plugin of this version.
pub enum Instance {
    Detector(detector::Detector),
    MemoryInjector(injector::MemoryInjector),
    ProviderAdapter(adapter::ProviderAdapter),
}

impl Pre {
    pub fn new(kind: Kind, pre: InstancePre<State>) -> Result<Self> {
        Ok(match kind {
            Kind::Detector => Self::Detector(detector::DetectorPre::new(pre)?),
            Kind::MemoryInjector => Self::MemoryInjector(injector::MemoryInjectorPre::new(pre)?),
            Kind::ProviderAdapter => Self::ProviderAdapter(adapter::ProviderAdapterPre::new(pre)?),
        })
    }

    pub async fn instantiate(&self, store: &mut Store<State>) -> Result<Instance> {
        Ok(match self {
            Self::Detector(pre) => Instance::Detector(pre.instantiate_async(store).await?),
            Self::MemoryInjector(pre) => Instance::MemoryInjector(pre.instantiate_async(store).await?),
            Self::ProviderAdapter(pre) => Instance::ProviderAdapter(pre.instantiate_async(store).await?),
        })
    }
}

fn wrong_kind(hook: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("the plugin does not serve the {hook} hook"))
}

impl Instance {
    pub async fn init(&self, store: &mut Store<State>) -> Result<Result<(), String>> {
        match self {
            Self::Detector(b) => b.memory_proxy_plugin_detection().call_init(store).await,
            Self::MemoryInjector(b) => b.memory_proxy_plugin_injection().call_init(store).await,
            Self::ProviderAdapter(b) => b.memory_proxy_plugin_adaptation().call_init(store).await,
        }
    }

    pub async fn detect(&self, store: &mut Store<State>, request: &DetectRequest) -> Result<Result<Identity, String>> {
        match self {
            Self::Detector(b) => b.memory_proxy_plugin_detection().call_detect(store, request).await,
            _ => Err(wrong_kind("detector")),
        }
    }

    pub async fn inject(
        &self,
        store: &mut Store<State>,
        request: &InjectRequest,
    ) -> Result<Result<Option<Patch>, String>> {
        match self {
            Self::MemoryInjector(b) => b.memory_proxy_plugin_injection().call_inject(store, request).await,
            _ => Err(wrong_kind("memory-injector")),
        }
    }

    fn adapter(&self) -> Result<&adapter::ProviderAdapter> {
        match self {
            Self::ProviderAdapter(b) => Ok(b),
            _ => Err(wrong_kind("provider-adapter")),
        }
    }

    pub async fn translate_request(
        &self,
        store: &mut Store<State>,
        context: &AdapterContext,
        body: &str,
    ) -> Result<Result<AdaptedRequest, AdapterError>> {
        self.adapter()?.memory_proxy_plugin_adaptation().call_translate_request(store, context, body).await
    }

    pub async fn translate_response(
        &self,
        store: &mut Store<State>,
        context: &AdapterContext,
        body: &str,
    ) -> Result<Result<String, AdapterError>> {
        self.adapter()?.memory_proxy_plugin_adaptation().call_translate_response(store, context, body).await
    }

    pub async fn translate_error(
        &self,
        store: &mut Store<State>,
        context: &AdapterContext,
        status: u16,
        body: &str,
    ) -> Result<String> {
        self.adapter()?.memory_proxy_plugin_adaptation().call_translate_error(store, context, status, body).await
    }

    /// A stream translator living in this instance.
    pub async fn open_stream(&self, store: &mut Store<State>, context: &AdapterContext) -> Result<ResourceAny> {
        self.adapter()?.memory_proxy_plugin_adaptation().stream_translator().call_constructor(store, context).await
    }

    pub async fn push_stream(
        &self,
        store: &mut Store<State>,
        translator: ResourceAny,
        event: &SseEvent,
    ) -> Result<Vec<SseEvent>> {
        self.adapter()?.memory_proxy_plugin_adaptation().stream_translator().call_push(store, translator, event).await
    }

    /// The translator's last events and whether the upstream's stream was complete;
    /// the translator is dropped.
    pub async fn finish_stream(
        &self,
        store: &mut Store<State>,
        translator: ResourceAny,
    ) -> Result<(Vec<SseEvent>, bool)> {
        let translators = self.adapter()?.memory_proxy_plugin_adaptation().stream_translator();
        let events = translators.call_finish(&mut *store, translator).await?;
        let completed = translators.call_completed(&mut *store, translator).await?;
        translator.resource_drop_async(&mut *store).await?;
        Ok((events, completed))
    }
}

impl From<ClientApi> for Api {
    fn from(api: ClientApi) -> Self {
        match api {
            ClientApi::OpenAiChat => Self::OpenaiChat,
            ClientApi::OpenAiResponses => Self::OpenaiResponses,
            ClientApi::OpenAiEmbeddings => Self::OpenaiEmbeddings,
            ClientApi::AnthropicMessages => Self::AnthropicMessages,
            ClientApi::AnthropicCountTokens => Self::AnthropicCountTokens,
        }
    }
}

impl host::Host for State {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let plugin = self.plugin.name.as_str();
        let message = &message[..message.floor_char_boundary(4096)];
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&mut self) -> String {
        self.plugin.config_json.clone()
    }

    fn kv_get(&mut self, key: String) -> Option<String> {
        self.plugin.kv.get(&key)
    }

    fn kv_set(&mut self, key: String, value: String) {
        self.plugin.kv.set(key, value);
    }
}

impl detector::memory_proxy::plugin::types::Host for State {}

/// Plugins built against 0.1.0: the hooks' requests in its types, its answers in ours.
pub mod from_v0_1_0 {
    use super::super::v0_1_0 as old;
    use super::{
        AdaptedRequest, AdapterContext, AdapterError, Api, DetectRequest, Header, Identity, InjectRequest, Patch,
        Position, SseEvent,
    };

    fn api(api: Api) -> old::Api {
        match api {
            Api::OpenaiChat => old::Api::OpenaiChat,
            Api::OpenaiResponses => old::Api::OpenaiResponses,
            Api::OpenaiEmbeddings => old::Api::OpenaiEmbeddings,
            Api::AnthropicMessages => old::Api::AnthropicMessages,
            Api::AnthropicCountTokens => old::Api::AnthropicCountTokens,
        }
    }

    pub fn detect_request(request: &DetectRequest) -> old::DetectRequest {
        old::DetectRequest {
            api: api(request.api),
            model: request.model.clone(),
            headers: request
                .headers
                .iter()
                .map(|h| old::Header { name: h.name.clone(), value: h.value.clone() })
                .collect(),
            system_excerpt: request.system_excerpt.clone(),
            user_excerpt: request.user_excerpt.clone(),
        }
    }

    pub fn identity(identity: old::Identity) -> Identity {
        let old::Identity { user, project, client, reason } = identity;
        Identity { user, project, client, reason, scaffolding: Vec::new() }
    }

    pub fn inject_request(request: &InjectRequest) -> old::InjectRequest {
        let scope = &request.scope;
        old::InjectRequest {
            api: api(request.api),
            scope: old::Scope {
                user: scope.user.clone(),
                project: scope.project.clone(),
                client: scope.client.clone(),
            },
            query: request.query.clone(),
            memories: request
                .memories
                .iter()
                .map(|m| old::Memory {
                    id: m.id.clone(),
                    text: m.text.clone(),
                    score: m.score,
                    source: m.source.clone(),
                })
                .collect(),
            token_budget: request.token_budget,
        }
    }

    pub fn patch(patch: old::Patch) -> Patch {
        let position = match patch.position {
            old::Position::SystemPrepend => Position::SystemPrepend,
            old::Position::SystemAppend => Position::SystemAppend,
            old::Position::BeforeLastUser => Position::BeforeLastUser,
        };
        Patch { position, text: patch.text }
    }

    pub fn context(context: &AdapterContext) -> old::AdapterContext {
        old::AdapterContext {
            client_api: api(context.client_api),
            provider: context.provider.clone(),
            upstream_model: context.upstream_model.clone(),
            drop_params: context.drop_params,
            include_usage: context.include_usage,
            now: context.now,
        }
    }

    pub fn adapted(request: old::AdaptedRequest) -> AdaptedRequest {
        let headers = request.headers.into_iter().map(|h| Header { name: h.name, value: h.value }).collect();
        AdaptedRequest { path: request.path, headers, body: request.body }
    }

    pub fn adapter_error(error: old::AdapterError) -> AdapterError {
        match error {
            old::AdapterError::InvalidRequest(invalid) => {
                AdapterError::InvalidRequest(super::InvalidRequest { message: invalid.message, param: invalid.param })
            }
            old::AdapterError::BadUpstream(message) => AdapterError::BadUpstream(message),
        }
    }

    pub fn sse_event(event: &SseEvent) -> old::SseEvent {
        old::SseEvent { event: event.event.clone(), data: event.data.clone() }
    }

    pub fn sse_events(events: Vec<old::SseEvent>) -> Vec<SseEvent> {
        events.into_iter().map(|e| SseEvent { event: e.event, data: e.data }).collect()
    }
}
