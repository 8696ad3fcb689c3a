//! `GET /v1/models`: the model names this gateway serves, in OpenAI's list shape, or in
//! Anthropic's when the client is an Anthropic SDK (it sends `anthropic-version`).

use axum::{Extension, Json};
use http::HeaderMap;
use serde_json::{Value, json};

use crate::pipeline::RequestContext;

pub async fn list(Extension(ctx): Extension<RequestContext>, headers: HeaderMap) -> Json<Value> {
    let names = ctx.snapshot.router.model_names();
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = names
            .iter()
            .map(|id| json!({ "type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z" }))
            .collect();
        return Json(json!({ "data": data, "has_more": false, "first_id": names.first(), "last_id": names.last() }));
    }
    let data: Vec<Value> = names
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "memory-proxy" }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}
