//! Stage 3, route: the model name to the model groups that will be tried, the
//! requested one and then its fallbacks. A model nobody serves is a 404 here, before
//! any memory is searched.

use crate::core::error::GatewayError;
use crate::services::keys::KeyEntry;
use crate::services::routing::{Resolved, Router};

/// The groups to try, in order: the requested model's, then its fallbacks' that the
/// key may use (a key's model allow-list holds for fallbacks too).
pub fn plan<'r>(router: &'r Router, model: &str, key: Option<&KeyEntry>) -> Result<Vec<Resolved<'r>>, GatewayError> {
    let first = router.resolve(model).ok_or_else(|| router.unknown_model(model))?;
    let allowed = |name: &str| key.is_none_or(|key| key.check_model(name).is_ok());
    // A fallback names a group (a wildcard one's `*` then takes the model asked for) or
    // a model a wildcard group serves (`claude-3-5-haiku` of `claude-*`).
    let fallbacks = router
        .fallbacks(model, &first.group.name)
        .iter()
        .filter_map(|name| match router.group(name) {
            Some(group) => Some((name, Resolved::fallback(group, model))),
            None => router.resolve(name).map(|resolved| (name, resolved)),
        })
        // The key may name the model the fallback names, or its group.
        .filter(|(name, resolved)| allowed(name) || allowed(&resolved.group.name))
        .map(|(_, resolved)| resolved)
        .collect::<Vec<_>>();
    Ok(std::iter::once(first).chain(fallbacks).collect())
}

/// True when a deployment of the group reaches its provider through Supermemory's
/// router (any of them: the gateway cannot know which will answer).
pub fn reaches_supermemory_router(resolved: &Resolved<'_>) -> bool {
    resolved.group.deployments.iter().any(|d| d.config.supermemory_router.is_some())
}
