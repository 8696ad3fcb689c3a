//! The databank's HTTP face: `GET /analytics/summary`, `GET /analytics/requests`
//! (with what recall offered each: `/analytics/requests/{id}/memories`),
//! `GET /analytics/memories`,
//! LiteLLM's `GET /spend/logs`, `POST /v1/feedback`, `GET /metrics` and the
//! `GET /dashboard` page.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminError;
use crate::config::MemoryBackend;
use crate::core::error::{ErrorKind, GatewayError};
use crate::pipeline::RequestContext;
use crate::pipeline::auth::Caller;
use crate::services::Services;
use crate::services::analytics::metrics;
use crate::services::analytics::query::{self, Filters, GroupBy};

type ApiResult = Result<Json<Value>, AdminError>;

fn query_failed(error: anyhow::Error) -> GatewayError {
    GatewayError::new(ErrorKind::Internal, format!("analytics query failed: {error:#}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// [since, until) in Unix ms: `since` defaults to 7 days ago, `until` to now.
fn range(since: Option<&str>, until: Option<&str>) -> Result<(i64, i64), GatewayError> {
    let now = now_ms();
    let parse =
        |text: &str, name: &str| query::parse_time(text, now).map_err(|e| GatewayError::invalid(e).with_param(name));
    let since = since.map(|s| parse(s, "since")).transpose()?.unwrap_or(now - 7 * 86_400_000);
    let until = until.map(|u| parse(u, "until")).transpose()?.unwrap_or(now + 1);
    Ok((since, until))
}

#[derive(Deserialize)]
pub struct SummaryQuery {
    group_by: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

pub async fn summary(
    State(state): State<Services>,
    Query(query): Query<SummaryQuery>,
    Query(filters): Query<Filters>,
) -> ApiResult {
    let group_by = GroupBy::parse(query.group_by.as_deref().unwrap_or("model"))
        .map_err(|e| GatewayError::invalid(e).with_param("group_by"))?;
    let (since, until) = range(query.since.as_deref(), query.until.as_deref())?;
    let rows = state
        .database()
        .with(move |c| query::summary(c, group_by, since, until, &filters))
        .await
        .map_err(query_failed)?;
    let total_requests: i64 = rows.iter().map(|r| r.requests).sum();
    // Not `sum()`: a float sum of nothing is -0.0.
    let total_cost = rows.iter().fold(0.0, |total, r| total + r.cost_usd);
    Ok(Json(json!({
        "group_by": query.group_by.as_deref().unwrap_or("model"),
        "since": query::timestamp_of(since),
        "until": query::timestamp_of(until),
        "requests": total_requests,
        "cost_usd": total_cost,
        "groups": rows,
        "queue": { "pending": state.journal().queue_depth(), "dropped": state.journal().dropped() },
    })))
}

#[derive(Deserialize)]
pub struct RequestsQuery {
    since: Option<String>,
    until: Option<String>,
    status: Option<i64>,
    limit: Option<usize>,
    before: Option<String>,
}

pub async fn requests(
    State(state): State<Services>,
    Query(query): Query<RequestsQuery>,
    Query(filters): Query<Filters>,
) -> ApiResult {
    let (since, until) = range(query.since.as_deref(), query.until.as_deref())?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let (status, before) = (query.status, query.before.clone());
    let (rows, next) = state
        .database()
        .with(move |c| query::requests(c, since, until, &filters, status, before.as_deref(), limit))
        .await
        .map_err(query_failed)?;
    Ok(Json(json!({ "requests": rows, "next_cursor": next })))
}

#[derive(Deserialize)]
pub struct SpendLogsQuery {
    api_key: Option<String>,
    user_id: Option<String>,
    request_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
}

pub async fn spend_logs(State(state): State<Services>, Query(query): Query<SpendLogsQuery>) -> ApiResult {
    let (since, until) = range(query.start_date.as_deref().or(Some("30d")), query.end_date.as_deref())?;
    // LiteLLM filters by key; ours are named by id (a plain key is looked up).
    let key_id =
        query.api_key.as_deref().map(|k| state.keys().find(k).map_or_else(|| k.to_owned(), |e| e.record.id.clone()));
    let filters = Filters { user: query.user_id.clone(), key_id, ..Filters::default() };
    let request_id = query.request_id.clone();
    let rows = state
        .database()
        .with(move |c| query::spend_logs(c, since, until, &filters, request_id.as_deref()))
        .await
        .map_err(query_failed)?;
    Ok(Json(Value::Array(rows)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    request_id: String,
    score: f64,
    comment: Option<String>,
}

/// Quality signal from the client: a score (and a comment) for one of its requests.
pub async fn feedback(
    State(state): State<Services>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult {
    let feedback: Feedback = serde_json::from_slice(&body)
        .map_err(|e| GatewayError::invalid(format!("the feedback body is invalid: {e}")))?;
    if !feedback.score.is_finite() {
        return Err(GatewayError::invalid("`score` must be a number").with_param("score").into());
    }
    if feedback.comment.as_ref().is_some_and(|c| c.len() > 10_000) {
        return Err(GatewayError::invalid("`comment` is longer than 10,000 bytes").with_param("comment").into());
    }
    // A request that has just finished may still be in the writer's queue.
    let request_id = feedback.request_id.clone();
    if state.database().with(move |c| request_owner(c, &request_id)).await.map_err(query_failed)?.is_none() {
        state.journal().flush().await;
    }
    let key_id = caller.key().map(|k| k.record.id.clone());
    let stored = state
        .database()
        .with(move |c| {
            let owner = request_owner(c, &feedback.request_id)?;
            let refused = |kind, message| Ok(Err(GatewayError::new(kind, message).with_param("request_id")));
            match owner {
                None => refused(ErrorKind::NotFound, "no request with that id"),
                Some(owner) if key_id.is_some() && owner != key_id => {
                    refused(ErrorKind::PermissionDenied, "that request was made with another key")
                }
                Some(_) => {
                    c.execute(
                        "INSERT OR REPLACE INTO feedback (request_id, score, comment, created_at) VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![feedback.request_id, feedback.score, feedback.comment, now_ms()],
                    )?;
                    Ok(Ok(feedback.request_id))
                }
            }
        })
        .await;
    let id = stored.map_err(|e| GatewayError::new(ErrorKind::Internal, format!("feedback not stored: {e:#}")))??;
    Ok(Json(json!({ "request_id": id, "stored": true })))
}

/// `GET /analytics/memories`: the local store's scopes with the most memories, and
/// the turns waiting for fact extraction.
pub async fn memories(State(state): State<Services>, Extension(ctx): Extension<RequestContext>) -> ApiResult {
    let (scopes, waiting) = state.local_memories().scopes(200).await.map_err(query_failed)?;
    let backend = match ctx.snapshot.config.memory.as_ref().map(|m| &m.backend) {
        None => "off",
        Some(MemoryBackend::Local) => "local",
        Some(MemoryBackend::Supermemory(_)) => "supermemory",
    };
    Ok(Json(json!({ "backend": backend, "scopes": scopes, "waiting_for_extraction": waiting })))
}

/// `GET /analytics/requests/{id}/memories`: what recall offered the request, best first,
/// with each memory's score and text (none for a memory deleted since, or one kept by
/// Supermemory).
pub async fn request_memories(State(state): State<Services>, Path(id): Path<String>) -> ApiResult {
    let lookup = id.clone();
    let recalled = state.database().with(move |c| query::recalled(c, &lookup)).await.map_err(query_failed)?;
    let Some(recalled) = recalled else {
        return Err(GatewayError::new(ErrorKind::NotFound, format!("no request `{id}` in the databank")).into());
    };
    let ids = recalled.iter().map(|(id, _)| id.clone()).collect();
    let found = state.local_memories().by_ids(ids).await.map_err(query_failed)?;
    let memories: Vec<Value> = recalled
        .iter()
        .map(|(id, score)| {
            let memory = found.iter().find(|m| &m.id == id);
            json!({
                "id": id,
                "score": score,
                "text": memory.map(|m| &m.text),
                "superseded_by": memory.and_then(|m| m.superseded_by.as_ref()),
            })
        })
        .collect();
    Ok(Json(json!({ "request_id": id, "memories": memories })))
}

/// The key a logged request was made with: None when there is no such request.
fn request_owner(connection: &rusqlite::Connection, request_id: &str) -> anyhow::Result<Option<Option<String>>> {
    let mut statement = connection.prepare_cached("SELECT key_id FROM requests WHERE id = ?1")?;
    Ok(rusqlite::OptionalExtension::optional(statement.query_row([request_id], |row| row.get(0)))?)
}

pub async fn prometheus(State(state): State<Services>, Extension(ctx): Extension<RequestContext>) -> Response {
    let Some(handle) = metrics::handle() else {
        return AdminError(GatewayError::new(ErrorKind::Internal, "metrics are not available in this process"))
            .into_response();
    };
    let journal = state.journal();
    metrics::observe_state(&ctx.snapshot.plugins, journal.queue_depth(), journal.dropped(), journal.health());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

/// The dashboard: one self-contained page (no external assets) that reads the
/// analytics API.
pub async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}
