//! The hooks as the request pipeline sees them: detection over the detector chain,
//! injection, and a provider adapter's translations. Each applies its plugin's
//! `on_error` policy, so callers only see an answer or the error to give the client.

use std::sync::Arc;

use wasmtime::component::ResourceAny;

use super::bindings::latest::SseEvent as WitSseEvent;
use super::plugin::{Plugin, Warm};
use super::{PluginError, PluginSet};
use crate::config::plugins::OnError;
use crate::core::error::{ErrorKind, GatewayError};
use crate::core::sse::SseEvent;

pub use super::bindings::latest::{
    AdaptedRequest, AdapterContext, AdapterError, Api, DetectRequest, Header, Identity, InjectRequest, Memory, Patch,
    Position, Scope,
};

/// A field of the identity, and the plugin and reason that decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decided {
    pub value: String,
    pub plugin: String,
    pub reason: String,
}

/// What the detectors made of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    pub user: Option<Decided>,
    pub project: Option<Decided>,
    pub client: Option<Decided>,
    /// The tags the client wraps around the user's words (the first detector to name
    /// any decides).
    pub scaffolding: Vec<String>,
}

impl Detection {
    fn complete(&self) -> bool {
        self.user.is_some() && self.project.is_some() && self.client.is_some()
    }

    /// Takes the fields this identity sets that no earlier detector decided.
    fn merge(&mut self, plugin: &str, identity: Identity) {
        if self.scaffolding.is_empty() {
            self.scaffolding = identity.scaffolding;
        }
        let decided = |value: String| Decided { value, plugin: plugin.to_owned(), reason: identity.reason.clone() };
        for (slot, value) in [
            (&mut self.user, identity.user),
            (&mut self.project, identity.project),
            (&mut self.client, identity.client),
        ] {
            if slot.is_none()
                && let Some(value) = value.filter(|v| !v.trim().is_empty())
            {
                *slot = Some(decided(value));
            }
        }
    }
}

/// Whether a detector limited to `matches` applies to a request with these headers.
fn applies(matches: &[crate::config::plugins::HeaderMatch], headers: &[Header]) -> bool {
    matches.is_empty()
        || matches
            .iter()
            .any(|m| m.accepts(headers.iter().find(|h| h.name == m.header.as_str()).map(|h| h.value.as_str())))
}

fn plugin_failed(plugin: &Plugin, error: &PluginError) -> GatewayError {
    match error {
        // The caller's request is too big for the plugin: theirs to shrink.
        PluginError::TooLarge { .. } => {
            GatewayError::new(ErrorKind::PayloadTooLarge, format!("plugin `{}` cannot take it: {error}", plugin.name()))
        }
        _ => GatewayError::new(ErrorKind::Internal, format!("plugin `{}` failed: {error}", plugin.name())),
    }
}

impl PluginSet {
    /// Runs the detectors in configured order; the first answer for each field wins.
    /// A failing detector is skipped (fail-open) or fails the request (fail-closed).
    pub async fn detect(&self, request: &DetectRequest) -> Result<Detection, GatewayError> {
        let mut detection = Detection::default();
        for plugin in &self.detectors {
            if detection.complete() {
                break;
            }
            if !applies(&plugin.spec.match_headers, &request.headers) {
                continue;
            }
            let size = request.system_excerpt.len()
                + request.user_excerpt.len()
                + request.headers.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>();
            let answer =
                plugin.call(size, async |warm: &mut Warm| warm.instance.detect(&mut warm.store, request).await).await;
            let error = match answer {
                Ok(Ok(identity)) => {
                    detection.merge(plugin.name(), identity);
                    continue;
                }
                Ok(Err(message)) => {
                    plugin.reported(&message);
                    PluginError::Reported(message)
                }
                Err(error) => error,
            };
            if plugin.spec.on_error == OnError::FailClosed {
                return Err(plugin_failed(plugin, &error));
            }
        }
        Ok(detection)
    }

    /// The injector's patch for these memories; None without an injector, without a
    /// patch, or when the injector fails open.
    pub async fn inject(&self, request: &InjectRequest) -> Result<Option<Patch>, GatewayError> {
        let Some(plugin) = &self.memory_injector else {
            return Ok(None);
        };
        let size = request.query.len() + request.memories.iter().map(|m| m.text.len()).sum::<usize>();
        let answer =
            plugin.call(size, async |warm: &mut Warm| warm.instance.inject(&mut warm.store, request).await).await;
        let error = match answer {
            Ok(Ok(patch)) => return Ok(patch),
            Ok(Err(message)) => {
                plugin.reported(&message);
                PluginError::Reported(message)
            }
            Err(error) => error,
        };
        match plugin.spec.on_error {
            OnError::FailOpen => Ok(None),
            OnError::FailClosed => Err(plugin_failed(plugin, &error)),
        }
    }
}

/// An adapter's verdict on a request or answer as the client should hear it.
fn adapter_error(plugin: &Plugin, error: AdapterError) -> GatewayError {
    match error {
        AdapterError::InvalidRequest(invalid) => {
            let error = GatewayError::invalid(invalid.message);
            match invalid.param {
                Some(param) => error.with_param(param),
                None => error,
            }
        }
        AdapterError::BadUpstream(message) => GatewayError::new(
            ErrorKind::BadGateway,
            format!("the upstream's answer could not be translated ({}): {message}", plugin.name()),
        ),
    }
}

impl Plugin {
    pub async fn translate_request(
        &self,
        context: &AdapterContext,
        body: &str,
    ) -> Result<AdaptedRequest, GatewayError> {
        let answer = self
            .call(body.len(), async |warm: &mut Warm| {
                warm.instance.translate_request(&mut warm.store, context, body).await
            })
            .await
            .map_err(|e| plugin_failed(self, &e))?;
        answer.map_err(|e| adapter_error(self, e))
    }

    pub async fn translate_response(&self, context: &AdapterContext, body: &str) -> Result<String, GatewayError> {
        let answer = self
            .call(body.len(), async |warm: &mut Warm| {
                warm.instance.translate_response(&mut warm.store, context, body).await
            })
            .await
            .map_err(|e| plugin_failed(self, &e))?;
        answer.map_err(|e| adapter_error(self, e))
    }

    pub async fn translate_error(
        &self,
        context: &AdapterContext,
        status: u16,
        body: &str,
    ) -> Result<String, GatewayError> {
        let translate =
            async |warm: &mut Warm| warm.instance.translate_error(&mut warm.store, context, status, body).await;
        self.call(body.len(), translate).await.map_err(|e| plugin_failed(self, &e))
    }

    /// A translator for one streamed answer. It holds its instance until the stream ends.
    pub async fn open_stream(self: &Arc<Self>, context: &AdapterContext) -> Result<PluginStream, GatewayError> {
        let mut warm = self.checkout().await.map_err(|e| plugin_failed(self, &e))?;
        let resource = self
            .call_on(&mut warm, 0, async |warm: &mut Warm| warm.instance.open_stream(&mut warm.store, context).await)
            .await
            .map_err(|e| plugin_failed(self, &e))?;
        Ok(PluginStream { plugin: self.clone(), warm: Some(warm), resource })
    }
}

/// One stream's translator, living in an instance checked out for the stream. A
/// stream that ends properly hands the instance back; one abandoned midway (client
/// gone) discards it with its Store.
pub struct PluginStream {
    plugin: Arc<Plugin>,
    warm: Option<Warm>,
    resource: ResourceAny,
}

impl PluginStream {
    async fn with<R>(
        &mut self,
        input_bytes: usize,
        call: impl AsyncFnOnce(&mut Warm, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, GatewayError> {
        let plugin = self.plugin.clone();
        let resource = self.resource;
        let Some(warm) = self.warm.as_mut() else {
            return Err(plugin_failed(&plugin, &PluginError::Trap("the stream's instance failed earlier".into())));
        };
        let result = plugin.call_on(warm, input_bytes, async |warm: &mut Warm| call(warm, resource).await).await;
        if result.is_err() {
            // A trapped instance cannot be entered again.
            self.warm = None;
        }
        result.map_err(|e| plugin_failed(&plugin, &e))
    }

    /// One upstream event in, the client's events out.
    pub async fn push(&mut self, event: SseEvent) -> Result<Vec<SseEvent>, GatewayError> {
        let event = WitSseEvent { event: event.event, data: event.data };
        let size = event.data.len();
        let out = self
            .with(size, async |warm: &mut Warm, translator| {
                warm.instance.push_stream(&mut warm.store, translator, &event).await
            })
            .await?;
        Ok(out.into_iter().map(|e| SseEvent { event: e.event, data: e.data }).collect())
    }

    /// The upstream ended: the client's remaining events, and whether the upstream's
    /// stream was complete. The instance goes back to the pool.
    pub async fn finish(&mut self) -> Result<(Vec<SseEvent>, bool), GatewayError> {
        let (events, completed) = self
            .with(0, async |warm: &mut Warm, translator| warm.instance.finish_stream(&mut warm.store, translator).await)
            .await?;
        if let Some(warm) = self.warm.take() {
            self.plugin.checkin(warm);
        }
        Ok((events.into_iter().map(|e| SseEvent { event: e.event, data: e.data }).collect(), completed))
    }
}
