//! Stage 6, adapt: how a client's API meets a provider's wire. Passthrough when they
//! match (the client's bytes go up but for the model name); translation by the
//! provider's adapter plugin when they differ, for the request, the answer, its errors
//! and its stream.

use std::sync::Arc;

use bytes::Bytes;

use super::defaults;
use super::request::ClientRequest;
use super::upstream::{ClientHeaders, Passed, UpstreamRequest};
use crate::core::api::{ClientApi, wire_api};
use crate::core::error::{ErrorKind, GatewayError};
use crate::core::provider::{Endpoint, Provider, Wire};
use crate::core::time::now_secs;
use crate::plugins::hooks::{AdaptedRequest, AdapterContext, PluginStream};
use crate::plugins::{Plugin, PluginSet};
use crate::services::routing::Deployment;

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
            // Bedrock has no count_tokens in the Messages shape.
            (ClientApi::AnthropicCountTokens, Wire::AnthropicMessages) if provider.endpoint == Endpoint::Bedrock => {
                Self::EstimateTokens
            }
            (ClientApi::OpenAiChat | ClientApi::OpenAiEmbeddings, Wire::OpenAiChat)
            | (ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens, Wire::AnthropicMessages) => {
                Self::Passthrough
            }
            (ClientApi::OpenAiResponses, Wire::OpenAiChat) if provider.serves_responses => Self::Passthrough,
            (ClientApi::OpenAiChat | ClientApi::OpenAiResponses, Wire::AnthropicMessages)
            | (ClientApi::AnthropicMessages | ClientApi::OpenAiResponses, Wire::OpenAiChat)
            | (
                ClientApi::OpenAiChat | ClientApi::AnthropicMessages | ClientApi::OpenAiResponses,
                Wire::GeminiGenerateContent,
            ) => Self::Translate,
            (ClientApi::AnthropicCountTokens, Wire::OpenAiChat | Wire::GeminiGenerateContent) => Self::EstimateTokens,
            (ClientApi::OpenAiEmbeddings, Wire::AnthropicMessages | Wire::GeminiGenerateContent) => {
                return Err(GatewayError::invalid(format!(
                    "provider `{}` does not serve embeddings in this build",
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

/// How one attempt talks to its deployment: directly, or through an adapter plugin
/// (with the context the plugin needs for every call of this attempt).
pub enum Route {
    Passthrough,
    Adapter(Arc<Plugin>, AdapterContext),
}

impl Route {
    /// The route to `deployment` for a client's request in `Adaptation::Translate`:
    /// the adapter plugin loaded for its provider.
    pub fn through_adapter(
        plugins: &PluginSet,
        deployment: &Deployment,
        request: &ClientRequest,
        upstream_model: &str,
        drop_params: bool,
    ) -> Result<Self, GatewayError> {
        let drop_params = deployment.config.drop_params.unwrap_or(drop_params);
        let provider = deployment.config.provider.name;
        let plugin = plugins.adapter_for(provider).ok_or_else(|| {
            GatewayError::new(
                ErrorKind::ModelUnavailable,
                format!(
                    "no provider adapter plugin is loaded for provider `{provider}`, so {} requests cannot reach model `{}` (see plugins.provider_adapters and GET /admin/plugins)",
                    request.api.label(),
                    request.model
                ),
            )
        })?;
        let context = AdapterContext {
            client_api: request.api.into(),
            provider: provider.to_owned(),
            upstream_model: upstream_model.to_owned(),
            drop_params,
            include_usage: request.include_usage,
            now: now_secs().max(0) as u64,
        };
        Ok(Self::Adapter(plugin.clone(), context))
    }

    /// The API the upstream answers in on this route, where usage and the answer's
    /// text are read; None when it is no client's API (Gemini's own), and they are
    /// read from the translated answer.
    pub fn upstream_api(&self, client_api: ClientApi, wire: Wire) -> Option<ClientApi> {
        match self {
            Self::Passthrough => Some(client_api),
            Self::Adapter(..) => wire_api(wire),
        }
    }

    /// The upstream request: the client's body with the upstream's model name, the
    /// deployment's default parameters where the client set none (and, when
    /// `add_usage`, OpenAI's usage chunk asked for), as is or translated.
    pub async fn request(
        &self,
        deployment: &Deployment,
        upstream_model: &str,
        request: &ClientRequest,
        client: &ClientHeaders<'_>,
        add_usage: bool,
    ) -> Result<UpstreamRequest, GatewayError> {
        let config = &deployment.config;
        let model = serde_json::Value::String(upstream_model.to_owned()).to_string();
        let both = [("model", model.as_str()), ("stream_options", r#"{"include_usage":true}"#)];
        let set = if add_usage { &both[..] } else { &both[..1] };
        let defaults = defaults::for_client(request.api, &config.request_defaults, &request.body);
        let body = request.body.to_bytes_edited(set, &defaults, &config.additional_drop_params);
        let send = |path: &str, passed: Passed, body: Bytes| {
            UpstreamRequest::new(deployment, path, passed, body, client, request.stream)
        };
        match self {
            Self::Passthrough => send(Adaptation::passthrough_path(request.api), Passed::Through, body),
            Self::Adapter(plugin, context) => {
                // A JSON body is UTF-8.
                let text = String::from_utf8_lossy(&body);
                let AdaptedRequest { path, headers, body } = plugin.translate_request(context, &text).await?;
                let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
                send(&path, Passed::Translated(headers), Bytes::from(body))
            }
        }
    }

    /// A successful whole answer in the client's API.
    pub async fn response(&self, body: Bytes) -> Result<Bytes, GatewayError> {
        match self {
            Self::Adapter(plugin, context) => {
                Ok(Bytes::from(plugin.translate_response(context, &String::from_utf8_lossy(&body)).await?))
            }
            Self::Passthrough => Ok(body),
        }
    }

    /// An upstream error in the client's API; None in passthrough (the client reads
    /// the provider's own error as is).
    pub async fn error(&self, status: u16, body: &[u8]) -> Option<Result<Bytes, GatewayError>> {
        match self {
            Self::Passthrough => None,
            Self::Adapter(plugin, context) => {
                Some(plugin.translate_error(context, status, &String::from_utf8_lossy(body)).await.map(Bytes::from))
            }
        }
    }

    /// A translator for a streamed answer; None in passthrough.
    pub async fn stream_translator(&self) -> Result<Option<PluginStream>, GatewayError> {
        match self {
            Self::Passthrough => Ok(None),
            Self::Adapter(plugin, context) => plugin.open_stream(context).await.map(Some),
        }
    }
}
