//! Health: liveliness and readiness for orchestrators (no key), and `/health` for
//! operators: every deployment and whether it can serve. No upstream is called: a
//! health probe must not spend tokens.

use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::pipeline::RequestContext;

pub async fn liveliness() -> Json<&'static str> {
    Json("I'm alive!")
}

pub async fn readiness(Extension(ctx): Extension<RequestContext>) -> Json<Value> {
    let working = ctx.snapshot.config.deployments.iter().filter(|d| d.disabled.is_none()).count();
    Json(json!({ "status": "healthy", "deployments_working": working, "version": env!("CARGO_PKG_VERSION") }))
}

pub async fn deployments(Extension(ctx): Extension<RequestContext>) -> Json<Value> {
    let (healthy, unhealthy): (Vec<_>, Vec<_>) =
        ctx.snapshot.config.deployments.iter().partition(|d| d.disabled.is_none());
    let describe = |d: &&crate::config::DeploymentConfig| {
        json!({
            "model": d.model_name,
            "deployment": d.id,
            "provider": d.provider.name,
            "api_base": d.base_url,
            "error": d.disabled,
        })
    };
    Json(json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy.iter().map(describe).collect::<Vec<_>>(),
        "unhealthy_endpoints": unhealthy.iter().map(describe).collect::<Vec<_>>(),
    }))
}
