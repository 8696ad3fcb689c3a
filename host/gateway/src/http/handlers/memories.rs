//! `/v1/memories`: the calling scope's memories: list or search them, add one, delete
//! one; export them all (JSON lines), import an export, or delete them all. The scope is resolved as for a model request (a virtual key's pins, then the
//! user and project headers, then the detectors), so a key pinned to a user sees that
//! user's memories only.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::api::ClientApi;
use crate::core::error::{ErrorKind, ErrorShape, GatewayError};
use crate::core::identity::Identity;
use crate::pipeline::auth::Caller;
use crate::pipeline::{RequestContext, identify};
use crate::services::Services;
use crate::services::memory::supermemory::SupermemoryError;
use crate::services::memory::{self, BackendError, NewMemory, Scope};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// A memory is a note, not a document.
const MAX_TEXT_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
pub struct ListQuery {
    /// Search for this text; without it, the newest memories.
    q: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub struct DeleteAll {
    /// Must be `true`: deleting a whole scope is never an accident.
    #[serde(default)]
    all: bool,
}

#[derive(Deserialize)]
pub struct NewNote {
    text: String,
}

pub async fn list(
    State(state): State<Services>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    answer(async {
        let identity = scope_of(&ctx, &caller, &headers).await?;
        let scope = Scope::of(&identity);
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let backend = state.memory_backend(&ctx.snapshot.config);
        let memories = match query.q.as_deref().filter(|q| !q.trim().is_empty()) {
            Some(q) => backend.search(&scope, q, limit).await,
            None => backend.list(&scope, limit).await,
        }
        .map_err(store_failed)?;
        Ok(Json(json!({ "object": "list", "scope": describe(&identity), "data": memories })).into_response())
    })
    .await
}

pub async fn add(
    State(state): State<Services>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    answer(async {
        let note: NewNote = serde_json::from_slice(&body)
            .map_err(|e| GatewayError::invalid(format!("the body must be {{\"text\": \"...\"}}: {e}")))?;
        let text = note.text.trim();
        if text.is_empty() || text.len() > MAX_TEXT_BYTES {
            return Err(
                GatewayError::invalid(format!("`text` must hold 1 to {MAX_TEXT_BYTES} bytes")).with_param("text")
            );
        }
        let identity = scope_of(&ctx, &caller, &headers).await?;
        let memory = NewMemory::new(Scope::of(&identity), identity.client().map(str::to_owned), None, text);
        let (new_id, text, created_at) = (memory.id.clone(), memory.text.clone(), memory.created_at);
        let backend = state.memory_backend(&ctx.snapshot.config);
        let id = backend.add(memory).await.map_err(store_failed)?;
        // The same note added again is the one stored before: 200, with its id.
        // (Supermemory upserts it under the same document and cannot say which.)
        let status = if id == new_id || backend.is_remote() { StatusCode::CREATED } else { StatusCode::OK };
        let body = json!({ "id": id, "text": text, "created_at": created_at, "scope": describe(&identity) });
        Ok((status, Json(body)).into_response())
    })
    .await
}

pub async fn delete(
    State(state): State<Services>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(async {
        let identity = scope_of(&ctx, &caller, &headers).await?;
        let backend = state.memory_backend(&ctx.snapshot.config);
        let deleted = backend.delete(&Scope::of(&identity), id.clone()).await.map_err(store_failed)?;
        if !deleted {
            return Err(GatewayError::new(ErrorKind::NotFound, format!("no memory `{id}` in this scope")));
        }
        Ok(Json(json!({ "id": id, "object": "memory", "deleted": true })).into_response())
    })
    .await
}

/// `GET /v1/memories/export`: every memory of the caller's scope, oldest first, one JSON
/// object a line.
pub async fn export(
    State(state): State<Services>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    answer(async {
        let identity = scope_of(&ctx, &caller, &headers).await?;
        let backend = state.memory_backend(&ctx.snapshot.config);
        let memories = backend.all(&Scope::of(&identity)).await.map_err(store_failed)?;
        let mut lines = String::new();
        for memory in &memories {
            lines.push_str(&serde_json::to_string(memory).unwrap_or_default());
            lines.push('\n');
        }
        Ok(([(http::header::CONTENT_TYPE, "application/x-ndjson")], lines).into_response())
    })
    .await
}

/// `POST /v1/memories/import`: the memories of an export (JSON lines, as
/// `GET /v1/memories/export` writes them) into the caller's scope. A memory the scope
/// holds already is not stored again; superseded ones (history) are left out.
pub async fn import(
    State(state): State<Services>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    answer(async {
        let identity = scope_of(&ctx, &caller, &headers).await?;
        let lines = std::str::from_utf8(&body).map_err(|_| GatewayError::invalid("the export is not UTF-8 text"))?;
        let export = memory::read_export(&Scope::of(&identity), lines).map_err(GatewayError::invalid)?;
        if let Some(long) = export.memories.iter().find(|m| m.text.len() > MAX_TEXT_BYTES) {
            let start = &long.text[..long.text.floor_char_boundary(40)];
            return Err(GatewayError::invalid(format!("a memory is longer than {MAX_TEXT_BYTES} bytes: {start}...")));
        }
        let read = export.memories.len();
        let backend = state.memory_backend(&ctx.snapshot.config);
        let imported = backend.import(export.memories).await.map_err(store_failed)?;
        state.memories_stored();
        Ok(Json(json!({
            "object": "import",
            "scope": describe(&identity),
            "imported": imported,
            "already_there": read - imported,
            "superseded_left_out": export.superseded,
        }))
        .into_response())
    })
    .await
}

/// `DELETE /v1/memories?all=true`: every memory of the caller's scope.
pub async fn delete_all(
    State(state): State<Services>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(query): Query<DeleteAll>,
) -> Response {
    answer(async {
        if !query.all {
            return Err(GatewayError::invalid(
                "deleting every memory of the scope needs `?all=true`; to delete one, use DELETE /v1/memories/{id}",
            )
            .with_param("all"));
        }
        let identity = scope_of(&ctx, &caller, &headers).await?;
        let backend = state.memory_backend(&ctx.snapshot.config);
        let deleted = backend.delete_scope(&Scope::of(&identity)).await.map_err(store_failed)?;
        Ok(Json(json!({ "object": "list", "scope": describe(&identity), "deleted": deleted })).into_response())
    })
    .await
}

async fn answer(work: impl Future<Output = Result<Response, GatewayError>>) -> Response {
    work.await.unwrap_or_else(|error| error.into_response(ErrorShape::OpenAi))
}

/// The caller's scope; memory must be on.
async fn scope_of(ctx: &RequestContext, caller: &Caller, headers: &HeaderMap) -> Result<Identity, GatewayError> {
    if ctx.snapshot.config.memory.is_none() {
        return Err(GatewayError::new(
            ErrorKind::NotFound,
            "memory is off: add a `memory:` section to config.yaml (docs/memory.md)",
        ));
    }
    let key = caller.key().map(|k| &k.record);
    let snapshot = &ctx.snapshot;
    identify::identify(&snapshot.plugins, &snapshot.config.user_id_mappings, ClientApi::OpenAiChat, headers, None, key)
        .await
}

fn describe(identity: &Identity) -> Value {
    json!({ "user": identity.user.value, "project": identity.project() })
}

fn store_failed(error: BackendError) -> GatewayError {
    match error {
        BackendError::Local(error) => {
            GatewayError::new(ErrorKind::Internal, format!("the memory store failed: {error:#}"))
        }
        BackendError::Supermemory(SupermemoryError::Timeout(_)) => {
            GatewayError::new(ErrorKind::UpstreamTimeout, error.to_string())
        }
        BackendError::Supermemory(error) => GatewayError::new(ErrorKind::BadGateway, error.to_string()),
    }
}
