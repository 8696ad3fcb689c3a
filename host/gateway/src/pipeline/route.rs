//! Stage 3, route: the model name to the model groups that will be tried, the
//! requested one and then its fallbacks. A model nobody serves is a 404 here, before
//! any memory is searched.

use super::request::ClientRequest;
use crate::core::error::GatewayError;
use crate::services::analytics::prices;
use crate::services::analytics::usage::Usage;
use crate::services::keys::KeyEntry;
use crate::services::routing::{Resolved, Router};

/// The model groups a request may be sent to.
pub struct Plan<'r> {
    /// In order: the requested model's, then its fallbacks'.
    pub groups: Vec<Resolved<'r>>,
    /// Tried instead when an upstream says the prompt is too long for its context
    /// window (`context_window_fallbacks`).
    pub on_context_overflow: Vec<Resolved<'r>>,
}

/// Output tokens assumed for a request that sets no limit of its own.
const OUTPUT_ESTIMATE: u64 = 1024;

impl Plan<'_> {
    /// What the request will cost on the first group's first deployment, estimated
    /// before it is sent: its prompt (about four bytes a token) and its output limit.
    /// Reserved against a key's budget until the real cost is known.
    pub fn estimated_cost(&self, request: &ClientRequest, body_bytes: usize) -> f64 {
        let Some(deployment) = self.groups.first().and_then(|r| r.group.deployments.first()) else {
            return 0.0;
        };
        let config = &deployment.config;
        let Some(price) = prices::for_deployment(&config.costs, config.provider.name, &config.upstream_model) else {
            return 0.0;
        };
        let output = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
            .iter()
            .find_map(|field| request.body.get::<u64>(field).ok().flatten())
            .unwrap_or(OUTPUT_ESTIMATE);
        let usage = Usage { input: wire::tokens::estimate(body_bytes), output, ..Usage::default() };
        prices::cost(&usage, &price)
    }
}

/// The groups to try for `model`, with the fallbacks the key may use (a key's model
/// allow-list holds for fallbacks too).
pub fn plan<'r>(router: &'r Router, model: &str, key: Option<&KeyEntry>) -> Result<Plan<'r>, GatewayError> {
    let first = router.resolve(model).ok_or_else(|| router.unknown_model(model))?;
    let group = first.group.name.clone();
    let fallbacks = usable(router, router.fallbacks(model, &group), model, key);
    let on_context_overflow = usable(router, router.context_window_fallbacks(model, &group), model, key);
    Ok(Plan { groups: std::iter::once(first).chain(fallbacks).collect(), on_context_overflow })
}

/// The groups fallbacks `names` name that the key may use. A fallback names a group
/// (a wildcard one's `*` then takes the model asked for) or a model a wildcard group
/// serves (`claude-3-5-haiku` of `claude-*`).
fn usable<'r>(router: &'r Router, names: &[String], model: &str, key: Option<&KeyEntry>) -> Vec<Resolved<'r>> {
    let allowed = |name: &str| key.is_none_or(|key| key.check_model(name).is_ok());
    names
        .iter()
        .filter_map(|name| match router.group(name) {
            Some(group) => Some((name, Resolved::fallback(group, model))),
            None => router.resolve(name).map(|resolved| (name, resolved)),
        })
        // The key may name the model the fallback names, or its group.
        .filter(|(name, resolved)| allowed(name) || allowed(&resolved.group.name))
        .map(|(_, resolved)| resolved)
        .collect()
}

/// True when a deployment of the group reaches its provider through Supermemory's
/// router (any of them: the gateway cannot know which will answer).
pub fn reaches_supermemory_router(resolved: &Resolved<'_>) -> bool {
    resolved.group.deployments.iter().any(|d| d.config.supermemory_router.is_some())
}
