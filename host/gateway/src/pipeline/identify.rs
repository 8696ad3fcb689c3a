//! Stage 2, identify: who is calling, from which client, for which project, the scope
//! memory and analytics hang on. Resolved once per request, each field with where it
//! came from: a virtual key's pin first, then an explicit header, then the detector
//! plugins (in config order), then the defaults.

use http::HeaderMap;

use crate::config::UserIdMappings;
use crate::core::api::ClientApi;
use crate::core::body::JsonBody;
use crate::core::credentials::is_credential;
use crate::core::error::GatewayError;
use crate::core::identity::{Field, Identity, Source};
use crate::core::prompt::excerpts;
use crate::plugins::PluginSet;
use crate::plugins::hooks::{Decided, DetectRequest, Detection, Header};
use crate::services::keys::KeyRecord;

/// The header that names the project outright.
pub const PROJECT_HEADER: &str = "x-memory-project";

/// Resolves the identity of a request. `body` is None for calls without a prompt
/// (e.g. `GET /memory-routing/info`); `key` is the virtual key used, whose pinned
/// user and project win over everything else, and which otherwise has a user of its
/// own (see [`KeyRecord::scope_user`]).
pub async fn identify(
    plugins: &PluginSet,
    mappings: &UserIdMappings,
    api: ClientApi,
    headers: &HeaderMap,
    body: Option<&JsonBody>,
    key: Option<&KeyRecord>,
) -> Result<Identity, GatewayError> {
    let pinned = |value: Option<&str>| {
        let key = key?;
        value.map(|value| Field { value: value.to_owned(), source: Source::Key { id: key.id.clone() } })
    };
    let explicit = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|value| Field { value: value.to_owned(), source: Source::Header { name: name.to_owned() } })
    };
    // A virtual key decides its user (pinned, or its own); only the master key and an
    // unauthenticated gateway let headers and detectors name one.
    let user = pinned(key.and_then(KeyRecord::scope_user)).or_else(|| explicit(mappings.custom_header.as_str()));
    let project = pinned(key.and_then(|k| k.project.as_deref())).or_else(|| explicit(PROJECT_HEADER));
    // The client is only ever detected, so detectors run even when headers named
    // the user and the project.
    let detection = detect(plugins, api, headers, body).await?;
    let from_plugin = |decided: Option<Decided>| {
        decided.map(|d| Field { value: d.value, source: Source::Plugin { name: d.plugin, reason: d.reason } })
    };
    Ok(Identity {
        user: user
            .or_else(|| from_plugin(detection.user))
            .unwrap_or_else(|| Field { value: mappings.default_user_id.clone(), source: Source::Default }),
        project: project.or_else(|| from_plugin(detection.project)),
        client: from_plugin(detection.client),
        scaffolding: detection.scaffolding,
    })
}

async fn detect(
    plugins: &PluginSet,
    api: ClientApi,
    headers: &HeaderMap,
    body: Option<&JsonBody>,
) -> Result<Detection, GatewayError> {
    if plugins.detectors.is_empty() {
        return Ok(Default::default());
    }
    let (system_excerpt, user_excerpt) = body.map(|b| excerpts(api, b)).unwrap_or_default();
    let request = DetectRequest {
        api: api.into(),
        model: body.and_then(|b| b.get::<String>("model").ok().flatten()).unwrap_or_default(),
        headers: headers
            .iter()
            // A plugin never sees credentials.
            .filter(|(name, _)| !is_credential(name.as_str()))
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect(),
        system_excerpt,
        user_excerpt,
    };
    plugins.detect(&request).await
}
