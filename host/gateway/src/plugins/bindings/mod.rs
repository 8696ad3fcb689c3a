//! Host bindings of the plugin API, one module per frozen WIT version (wit/vX.Y.Z),
//! and the dispatch by the version a plugin was built against. The hooks speak the
//! newest version's types ([`latest`]); a newer version's module converts an older
//! one's types to its own, so an old module is never edited and old plugins keep
//! loading.

pub mod v0_1_0;
pub mod v0_2_0;

use wasmtime::component::{InstancePre, Linker, ResourceAny};
use wasmtime::{Result, Store};

use super::plugin::Kind;
use super::runtime::State;

/// The types the hooks use: the newest version's.
pub use v0_2_0 as latest;
use v0_2_0::from_v0_1_0 as old;

use latest::{AdaptedRequest, AdapterContext, AdapterError, DetectRequest, Identity, InjectRequest, Patch, SseEvent};

/// API versions this host can load, newest first.
pub const SUPPORTED_API_VERSIONS: &[&str] = &[v0_2_0::VERSION, v0_1_0::VERSION];

/// Adds every version's host interface to the linker.
pub fn add_to_linker(linker: &mut Linker<State>) -> Result<()> {
    v0_2_0::add_to_linker(linker)?;
    v0_1_0::add_to_linker(linker)
}

/// A component linked for its hook, in the bindings of its API version.
pub enum Pre {
    V0_2_0(v0_2_0::Pre),
    V0_1_0(v0_1_0::Pre),
}

/// A live instance, in the bindings of its API version.
pub enum Instance {
    V0_2_0(v0_2_0::Instance),
    V0_1_0(v0_1_0::Instance),
}

impl Pre {
    pub fn new(api_version: &str, kind: Kind, pre: InstancePre<State>) -> Result<Self> {
        match api_version {
            v0_2_0::VERSION => v0_2_0::Pre::new(kind, pre).map(Self::V0_2_0),
            v0_1_0::VERSION => v0_1_0::Pre::new(kind, pre).map(Self::V0_1_0),
            other => Err(wasmtime::Error::msg(format!("plugin API {other} is not supported"))),
        }
    }

    pub async fn instantiate(&self, store: &mut Store<State>) -> Result<Instance> {
        match self {
            Self::V0_2_0(pre) => pre.instantiate(store).await.map(Instance::V0_2_0),
            Self::V0_1_0(pre) => pre.instantiate(store).await.map(Instance::V0_1_0),
        }
    }
}

impl Instance {
    pub async fn init(&self, store: &mut Store<State>) -> Result<Result<(), String>> {
        match self {
            Self::V0_2_0(instance) => instance.init(store).await,
            Self::V0_1_0(instance) => instance.init(store).await,
        }
    }

    pub async fn detect(&self, store: &mut Store<State>, request: &DetectRequest) -> Result<Result<Identity, String>> {
        match self {
            Self::V0_2_0(instance) => instance.detect(store, request).await,
            Self::V0_1_0(instance) => {
                Ok(instance.detect(store, &old::detect_request(request)).await?.map(old::identity))
            }
        }
    }

    pub async fn inject(
        &self,
        store: &mut Store<State>,
        request: &InjectRequest,
    ) -> Result<Result<Option<Patch>, String>> {
        match self {
            Self::V0_2_0(instance) => instance.inject(store, request).await,
            Self::V0_1_0(instance) => {
                Ok(instance.inject(store, &old::inject_request(request)).await?.map(|patch| patch.map(old::patch)))
            }
        }
    }

    pub async fn translate_request(
        &self,
        store: &mut Store<State>,
        context: &AdapterContext,
        body: &str,
    ) -> Result<Result<AdaptedRequest, AdapterError>> {
        match self {
            Self::V0_2_0(instance) => instance.translate_request(store, context, body).await,
            Self::V0_1_0(instance) => Ok(instance
                .translate_request(store, &old::context(context), body)
                .await?
                .map(old::adapted)
                .map_err(old::adapter_error)),
        }
    }

    pub async fn translate_response(
        &self,
        store: &mut Store<State>,
        context: &AdapterContext,
        body: &str,
    ) -> Result<Result<String, AdapterError>> {
        match self {
            Self::V0_2_0(instance) => instance.translate_response(store, context, body).await,
            Self::V0_1_0(instance) => {
                Ok(instance.translate_response(store, &old::context(context), body).await?.map_err(old::adapter_error))
            }
        }
    }

    pub async fn translate_error(
        &self,
        store: &mut Store<State>,
        context: &AdapterContext,
        status: u16,
        body: &str,
    ) -> Result<String> {
        match self {
            Self::V0_2_0(instance) => instance.translate_error(store, context, status, body).await,
            Self::V0_1_0(instance) => instance.translate_error(store, &old::context(context), status, body).await,
        }
    }

    pub async fn open_stream(&self, store: &mut Store<State>, context: &AdapterContext) -> Result<ResourceAny> {
        match self {
            Self::V0_2_0(instance) => instance.open_stream(store, context).await,
            Self::V0_1_0(instance) => instance.open_stream(store, &old::context(context)).await,
        }
    }

    pub async fn push_stream(
        &self,
        store: &mut Store<State>,
        translator: ResourceAny,
        event: &SseEvent,
    ) -> Result<Vec<SseEvent>> {
        match self {
            Self::V0_2_0(instance) => instance.push_stream(store, translator, event).await,
            Self::V0_1_0(instance) => {
                Ok(old::sse_events(instance.push_stream(store, translator, &old::sse_event(event)).await?))
            }
        }
    }

    pub async fn finish_stream(
        &self,
        store: &mut Store<State>,
        translator: ResourceAny,
    ) -> Result<(Vec<SseEvent>, bool)> {
        match self {
            Self::V0_2_0(instance) => instance.finish_stream(store, translator).await,
            Self::V0_1_0(instance) => instance
                .finish_stream(store, translator)
                .await
                .map(|(events, completed)| (old::sse_events(events), completed)),
        }
    }
}
