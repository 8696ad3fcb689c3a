//! A fake Supermemory: the REST calls the gateway's Supermemory backend makes, over
//! documents kept in memory, strictly separated by `containerTag` as the real service
//! separates them.
//!
//! - `POST /v3/documents` adds a document (`customId` upserts);
//! - `POST /v3/documents/list` lists a container's documents, newest first;
//! - `GET` / `DELETE /v3/documents/{id}`;
//! - `POST /v4/search` finds a container's documents sharing words with `q`;
//! - `DELETE /v4/memories` forgets one by id within a container;
//! - `DELETE /v3/container-tags/{tag}` deletes a whole container.
//!
//! Every call needs `Authorization: Bearer <key>`; requests are recorded like the
//! model calls, and faults queued with `model: "supermemory"` apply to them.
//!
//! Its router (`/v3/<provider URL>/...`, `x-supermemory-api-key`) answers as the mock
//! provider does and adds the router's response headers.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::{Exchange, MockState};

/// The model name faults use to target the fake Supermemory.
pub const FAULT_KEY: &str = "supermemory";

#[derive(Clone)]
struct Document {
    id: String,
    custom_id: Option<String>,
    container_tag: String,
    content: String,
    metadata: Value,
    /// Order of writing, for "newest first" and the timestamps.
    sequence: u64,
}

impl Document {
    fn json(&self) -> Value {
        json!({
            "id": self.id, "customId": self.custom_id, "containerTags": [self.container_tag],
            "content": self.content, "metadata": self.metadata, "status": "done",
            "createdAt": timestamp(self.sequence), "updatedAt": timestamp(self.sequence),
        })
    }
}

fn timestamp(sequence: u64) -> String {
    // Distinct, ordered, valid RFC 3339 times: one second per write from 2026-01-01.
    let (minutes, seconds) = (sequence / 60, sequence % 60);
    format!("2026-01-01T{:02}:{:02}:{:02}Z", (minutes / 60) % 24, minutes % 60, seconds)
}

#[derive(Default)]
pub struct Store {
    documents: Mutex<Vec<Document>>,
    next: Mutex<u64>,
}

impl Store {
    fn documents(&self) -> MutexGuard<'_, Vec<Document>> {
        self.documents.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self) -> u64 {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        *next
    }
}

/// True for the paths this module answers.
pub fn serves(path: &str) -> bool {
    path.starts_with("/v3/documents")
        || path.starts_with("/v3/container-tags/")
        || path == "/v4/search"
        || path == "/v4/memories"
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message, "details": message }))).into_response()
}

fn tag_of(body: &Value) -> Option<String> {
    let tag = body["containerTag"].as_str()?;
    let valid =
        !tag.is_empty() && tag.len() <= 100 && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c));
    valid.then(|| tag.to_owned())
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2).map(str::to_lowercase).collect()
}

pub async fn handle(state: Arc<MockState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > "Bearer ".len());
    let Ok(exchange) = Exchange::receive_keyed(&state, request, FAULT_KEY).await else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    if let Some(response) = exchange.fault_response(|status| json!({ "error": format!("fault {status}") })) {
        return response;
    }
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "missing or invalid API key");
    }
    let store = &state.supermemory;
    let body = &exchange.body;
    match (method, path.as_str()) {
        (Method::POST, "/v3/documents") => {
            let (Some(tag), Some(content)) = (tag_of(body), body["content"].as_str()) else {
                return error(StatusCode::BAD_REQUEST, "`content` and a valid `containerTag` are required");
            };
            let custom_id = body["customId"].as_str().map(str::to_owned);
            let sequence = store.next();
            let mut documents = store.documents();
            let existing =
                custom_id.as_ref().and_then(|c| documents.iter().position(|d| d.custom_id.as_ref() == Some(c)));
            let id = match existing {
                Some(index) => {
                    let document = &mut documents[index];
                    (document.content, document.container_tag, document.sequence) = (content.to_owned(), tag, sequence);
                    document.metadata = body["metadata"].clone();
                    document.id.clone()
                }
                None => {
                    let id = format!("doc_{sequence}");
                    documents.push(Document {
                        id: id.clone(),
                        custom_id,
                        container_tag: tag,
                        content: content.to_owned(),
                        metadata: body["metadata"].clone(),
                        sequence,
                    });
                    id
                }
            };
            Json(json!({ "id": id, "status": "queued" })).into_response()
        }
        (Method::POST, "/v3/documents/list") => {
            let Some(tag) = body["containerTags"][0].as_str() else {
                return error(StatusCode::BAD_REQUEST, "`containerTags` is required");
            };
            let limit = body["limit"].as_u64().unwrap_or(50) as usize;
            let page = body["page"].as_u64().unwrap_or(1).max(1) as usize;
            let mut found: Vec<Document> =
                store.documents().iter().filter(|d| d.container_tag == tag).cloned().collect();
            found.sort_by_key(|d| d.sequence);
            if body["order"] != "asc" {
                found.reverse();
            }
            let total = found.len();
            let memories: Vec<Value> = found.iter().skip((page - 1) * limit).take(limit).map(Document::json).collect();
            Json(json!({ "memories": memories, "pagination": { "currentPage": 1, "limit": limit, "totalItems": total } }))
                .into_response()
        }
        (Method::POST, "/v4/search") => {
            let Some(tag) = tag_of(body) else {
                return error(StatusCode::BAD_REQUEST, "a valid `containerTag` is required");
            };
            let query = words(body["q"].as_str().unwrap_or_default());
            let limit = body["limit"].as_u64().unwrap_or(10) as usize;
            let documents = store.documents();
            let mut results: Vec<(f64, &Document)> = documents
                .iter()
                .filter(|d| d.container_tag == tag)
                .filter_map(|d| {
                    let text = words(&d.content);
                    let shared = query.iter().filter(|w| text.contains(w)).count();
                    (shared > 0).then(|| (shared as f64 / query.len().max(1) as f64, d))
                })
                .collect();
            results.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.sequence.cmp(&a.1.sequence)));
            let results: Vec<Value> = results
                .into_iter()
                .take(limit)
                .map(|(similarity, d)| {
                    json!({ "id": d.id, "memory": d.content, "similarity": similarity, "metadata": d.metadata,
                        "updatedAt": timestamp(d.sequence), "version": 1 })
                })
                .collect();
            let total = results.len();
            Json(json!({ "results": results, "timing": 1, "total": total })).into_response()
        }
        (Method::DELETE, "/v4/memories") => {
            let (Some(tag), Some(id)) = (tag_of(body), body["id"].as_str()) else {
                return error(StatusCode::BAD_REQUEST, "`id` and a valid `containerTag` are required");
            };
            let mut documents = store.documents();
            match documents.iter().position(|d| d.id == id && d.container_tag == tag) {
                Some(index) => {
                    documents.remove(index);
                    Json(json!({ "id": id, "forgotten": true })).into_response()
                }
                None => error(StatusCode::NOT_FOUND, "memory not found"),
            }
        }
        (Method::DELETE, path) if path.starts_with("/v3/container-tags/") => {
            let tag = &path["/v3/container-tags/".len()..];
            let mut documents = store.documents();
            let before = documents.len();
            documents.retain(|d| d.container_tag != tag);
            Json(json!({ "containerTag": tag, "deleted": before - documents.len() })).into_response()
        }
        (method, path) if path.starts_with("/v3/documents/") => {
            let id = &path["/v3/documents/".len()..];
            let mut documents = store.documents();
            let Some(index) = documents.iter().position(|d| d.id == id || d.custom_id.as_deref() == Some(id)) else {
                return error(StatusCode::NOT_FOUND, "document not found");
            };
            match method {
                Method::GET => Json(documents[index].json()).into_response(),
                Method::DELETE => {
                    documents.remove(index);
                    StatusCode::NO_CONTENT.into_response()
                }
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            }
        }
        (_, path) => error(StatusCode::NOT_FOUND, &format!("fake Supermemory has no route {path}")),
    }
}

/// The headers Supermemory's router adds to the provider's answer.
pub fn add_router_headers(response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-supermemory-conversation-id", "conv_mock"),
        ("x-supermemory-context-modified", "false"),
        ("x-supermemory-tokens-processed", "0"),
    ] {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
}
