//! `GET /admin/plugins`: every loaded plugin with its version, hash and call
//! statistics, the plugins that could not be loaded, and the last failed reload.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::pipeline::RequestContext;
use crate::services::Services;

pub async fn plugins(State(state): State<Services>, Extension(ctx): Extension<RequestContext>) -> Json<Value> {
    let set = &ctx.snapshot.plugins;
    let unix = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let plugins: Vec<Value> = set
        .all()
        .map(|p| {
            json!({
                "name": p.spec.name,
                "kind": p.kind,
                "file": p.spec.file,
                "crate": p.metadata.name,
                "version": p.metadata.version,
                "api_version": p.metadata.api,
                "hash": p.hash,
                "loaded_at": unix(p.loaded_at),
                "paused": p.is_paused(),
                "on_error": format!("{:?}", p.spec.on_error),
                "isolation": format!("{:?}", p.spec.isolation),
                "timeout_ms": p.spec.timeout.as_millis(),
                "memory_mb": p.spec.memory_bytes >> 20,
                "providers": p.spec.providers,
                "stats": p.stats.view(),
            })
        })
        .collect();
    Json(json!({
        "plugins": plugins,
        "problems": set.problems,
        "config_reload_error": state.reload_error(),
    }))
}
