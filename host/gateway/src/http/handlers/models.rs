//! `GET /v1/models`: the model names of the config, as LiteLLM lists them (its groups
//! and aliases; a group none of whose deployments can serve is listed with
//! `"disabled": true`), in OpenAI's list shape, or in Anthropic's when the client
//! is an Anthropic SDK (it sends `anthropic-version`).

use axum::{Extension, Json};
use http::HeaderMap;
use serde_json::{Value, json};

use crate::pipeline::RequestContext;

pub async fn list(Extension(ctx): Extension<RequestContext>, headers: HeaderMap) -> Json<Value> {
    let listed = ctx.snapshot.router.listed_models();
    // Marked only: why is in `/health` (master key); any caller may list models.
    let with_reason = |mut model: Value, disabled: Option<&str>| {
        if disabled.is_some() {
            model["disabled"] = json!(true);
        }
        model
    };
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = listed
            .iter()
            .map(|(id, disabled)| {
                let model =
                    json!({ "type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z" });
                with_reason(model, *disabled)
            })
            .collect();
        let (first, last) = (listed.first().map(|m| m.0), listed.last().map(|m| m.0));
        return Json(json!({ "data": data, "has_more": false, "first_id": first, "last_id": last }));
    }
    let data: Vec<Value> = listed
        .iter()
        .map(|(id, disabled)| {
            with_reason(json!({ "id": id, "object": "model", "created": 0, "owned_by": "memory-proxy" }), *disabled)
        })
        .collect();
    Json(json!({ "object": "list", "data": data }))
}
