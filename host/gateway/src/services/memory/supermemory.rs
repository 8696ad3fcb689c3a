//! Supermemory as the memory backend: its REST API, each scope one container tag.
//!
//! - recall: `POST /v4/search` (hybrid: extracted memories and document chunks, so a
//!   turn written a moment ago is found before Supermemory has distilled it);
//! - capture: `POST /v3/documents` with a `customId` per scope and turn (writing the
//!   same turn again upserts it), sent from the durable outbox ([`Sender`]);
//! - the memory API: `POST /v3/documents/list`, `DELETE /v4/memories` (scoped by the
//!   container tag), `GET`/`DELETE /v3/documents/{id}` after checking the document is
//!   the scope's own.
//!
//! Every call has the configured timeout; a failure is the caller's to absorb (recall
//! goes on without memories, captures wait in the outbox).

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use rusqlite::params;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use super::{NewMemory, Scope, Stored, fingerprint};
use crate::config::SupermemoryConfig;
use crate::core::time::now_ms;
use crate::storage::Database;

/// Why a Supermemory call failed, as the analytics and metrics name it.
#[derive(Debug, thiserror::Error)]
pub enum SupermemoryError {
    #[error("Supermemory did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Supermemory is unreachable: {0}")]
    Unreachable(String),
    #[error("Supermemory answered {0}: {1}")]
    Status(u16, String),
    #[error("Supermemory's answer is not what its API documents: {0}")]
    Unexpected(String),
}

impl SupermemoryError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "supermemory_timeout",
            Self::Unreachable(_) => "supermemory_unreachable",
            Self::Status(..) => "supermemory_error",
            Self::Unexpected(_) => "supermemory_bad_answer",
        }
    }
}

/// The Supermemory client: one long-lived HTTP client (connections and cookies kept).
#[derive(Clone)]
pub struct Supermemory {
    http: reqwest::Client,
}

impl Default for Supermemory {
    fn default() -> Self {
        Self::new()
    }
}

impl Supermemory {
    pub fn new() -> Self {
        Self { http: crate::services::routing::upstream_client() }
    }

    async fn call(
        &self,
        config: &SupermemoryConfig,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), SupermemoryError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", config.base_url))
            .bearer_auth(config.api_key.expose())
            .timeout(config.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport(e, config.timeout))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport(e, config.timeout))?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok((status, value));
        }
        let message =
            value["error"].as_str().map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_owned);
        Err(SupermemoryError::Status(status.as_u16(), message.chars().take(300).collect()))
    }

    /// The scope's memories most relevant to `query`, best first.
    pub async fn search(
        &self,
        config: &SupermemoryConfig,
        scope: &Scope,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Stored>, SupermemoryError> {
        let body = json!({ "q": query, "containerTag": scope.container_tag(), "limit": limit, "searchMode": "hybrid" });
        let (_, answer) = self.call(config, reqwest::Method::POST, "/v4/search", Some(&body)).await?;
        let results =
            answer["results"].as_array().ok_or_else(|| SupermemoryError::Unexpected("no `results`".into()))?;
        Ok(results
            .iter()
            .filter_map(|result| {
                let text = result["memory"].as_str().or_else(|| result["chunk"].as_str())?;
                let mut stored = stored(result, text);
                stored.score = result["similarity"].as_f64().map(|s| s as f32);
                Some(stored)
            })
            .collect())
    }

    /// The scope's documents, newest first.
    pub async fn list(
        &self,
        config: &SupermemoryConfig,
        scope: &Scope,
        limit: usize,
    ) -> Result<Vec<Stored>, SupermemoryError> {
        Ok(self.page(config, scope, limit, 1, "desc").await?.0)
    }

    /// Every document of the scope, oldest first, page by page.
    pub async fn all(&self, config: &SupermemoryConfig, scope: &Scope) -> Result<Vec<Stored>, SupermemoryError> {
        const PAGE: usize = 100;
        let mut found = Vec::new();
        for page in 1.. {
            let (documents, listed) = self.page(config, scope, PAGE, page, "asc").await?;
            found.extend(documents);
            if listed < PAGE {
                break;
            }
        }
        Ok(found)
    }

    /// One page of the scope's documents in `order` of creation, and how many the page
    /// listed (a document without text is listed but not returned).
    async fn page(
        &self,
        config: &SupermemoryConfig,
        scope: &Scope,
        limit: usize,
        page: usize,
        order: &str,
    ) -> Result<(Vec<Stored>, usize), SupermemoryError> {
        let body = json!({ "containerTags": [scope.container_tag()], "limit": limit, "page": page,
            "sort": "createdAt", "order": order });
        let (_, answer) = self.call(config, reqwest::Method::POST, "/v3/documents/list", Some(&body)).await?;
        let documents =
            answer["memories"].as_array().ok_or_else(|| SupermemoryError::Unexpected("no `memories`".into()))?;
        let found = documents
            .iter()
            .filter_map(|document| {
                let text = ["content", "summary", "title"].iter().find_map(|key| document[*key].as_str())?;
                Some(stored(document, text))
            })
            .collect();
        Ok((found, documents.len()))
    }

    /// Deletes the scope's whole container.
    pub async fn delete_scope(&self, config: &SupermemoryConfig, scope: &Scope) -> Result<(), SupermemoryError> {
        let path = format!("/v3/container-tags/{}", urlencoding(&scope.container_tag()));
        self.call(config, reqwest::Method::DELETE, &path, None).await.map(|_| ())
    }

    /// Sends a document now; its id.
    pub async fn add(&self, config: &SupermemoryConfig, document: &Document) -> Result<String, SupermemoryError> {
        let body = json!({
            "content": document.content, "containerTag": document.container_tag,
            "customId": document.custom_id, "metadata": document.metadata,
        });
        let (status, answer) = self.call(config, reqwest::Method::POST, "/v3/documents", Some(&body)).await?;
        match answer["id"].as_str() {
            Some(id) if status.is_success() => Ok(id.to_owned()),
            _ => Err(SupermemoryError::Unexpected(format!("adding a document answered {status} without an id"))),
        }
    }

    /// Forgets memory or document `id` of `scope`; false when the scope has none such.
    /// A document is looked at first: its id must not delete another scope's.
    pub async fn delete(&self, config: &SupermemoryConfig, scope: &Scope, id: &str) -> Result<bool, SupermemoryError> {
        let tag = scope.container_tag();
        let body = json!({ "id": id, "containerTag": tag });
        let (status, _) = self.call(config, reqwest::Method::DELETE, "/v4/memories", Some(&body)).await?;
        if status.is_success() {
            return Ok(true);
        }
        let path = format!("/v3/documents/{}", urlencoding(id));
        let (status, document) = self.call(config, reqwest::Method::GET, &path, None).await?;
        let owned = document["containerTags"].as_array().is_some_and(|tags| tags.iter().any(|t| t == tag.as_str()))
            || document["containerTag"] == tag.as_str();
        if !status.is_success() || !owned {
            return Ok(false);
        }
        let (status, _) = self.call(config, reqwest::Method::DELETE, &path, None).await?;
        Ok(status.is_success())
    }
}

/// Ids and container tags (`[a-zA-Z0-9_:-]`) go into the path as they are; anything
/// else (dots too: no `..` segment) is escaped.
fn urlencoding(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn transport(error: reqwest::Error, timeout: Duration) -> SupermemoryError {
    if error.is_timeout() {
        SupermemoryError::Timeout(timeout)
    } else {
        SupermemoryError::Unreachable(error.without_url().to_string())
    }
}

/// A search result or a listed document as the memory API shows it; our metadata
/// (written with every capture) gives its client, request and time.
fn stored(item: &Value, text: &str) -> Stored {
    let metadata = &item["metadata"];
    Stored {
        id: item["id"].as_str().unwrap_or_default().to_owned(),
        text: text.to_owned(),
        client: metadata["client"].as_str().map(str::to_owned),
        request_id: metadata["request_id"].as_str().map(str::to_owned),
        created_at: metadata["created_at"].as_i64().unwrap_or(0),
        score: None,
        superseded_by: None,
    }
}

/// A memory as Supermemory takes it.
#[derive(Debug, Clone)]
pub struct Document {
    pub container_tag: String,
    /// Stable for a scope's turn: writing it again upserts instead of duplicating.
    pub custom_id: String,
    pub content: String,
    pub metadata: Value,
}

impl Document {
    pub fn of(memory: &NewMemory) -> Self {
        let container_tag = memory.scope.container_tag();
        let custom_id = format!("mp_{}", fingerprint(&format!("{container_tag} {}", memory.fingerprint)));
        let mut metadata = json!({ "source": "memory-proxy", "created_at": memory.created_at });
        if let Some(client) = &memory.client {
            metadata["client"] = json!(client);
        }
        if let Some(request_id) = &memory.request_id {
            metadata["request_id"] = json!(request_id);
        }
        Self { container_tag, custom_id, content: memory.text.clone(), metadata }
    }
}

/// Queues `memory` for Supermemory in the writer's transaction.
pub fn enqueue(transaction: &rusqlite::Transaction<'_>, memory: &NewMemory) -> anyhow::Result<()> {
    let document = Document::of(memory);
    transaction
        .prepare_cached(
            "INSERT OR IGNORE INTO memory_outbox (id, backend, container_tag, custom_id, content, metadata, created_at)
             VALUES (?1, 'supermemory', ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            memory.id,
            document.container_tag,
            document.custom_id,
            document.content,
            document.metadata.to_string(),
            memory.created_at
        ])?;
    Ok(())
}

/// Sends the outbox to Supermemory: due documents oldest first; one that fails waits
/// longer each time (1 s doubling to 5 min) and stays until Supermemory has it.
pub struct Sender {
    pub notify: std::sync::Arc<Notify>,
}

const BATCH: usize = 20;
const IDLE_CHECK: Duration = Duration::from_secs(2);
const MAX_BACKOFF_MS: i64 = 300_000;

impl Sender {
    /// Starts the sender; `config` says where to send (None: memory is not on Supermemory).
    pub fn start(database: Database, client: Supermemory, config: watch::Receiver<Option<SupermemoryConfig>>) -> Self {
        let notify = std::sync::Arc::new(Notify::new());
        let woken = notify.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = woken.notified() => {
                        // The captured turn is committed with its batch (50 ms windows).
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    () = tokio::time::sleep(IDLE_CHECK) => {}
                }
                let current = config.borrow().clone();
                if let Some(config) = current
                    && let Err(error) = send_due(&database, &client, &config).await
                {
                    warn!("the Supermemory outbox could not be read: {error:#}");
                }
            }
        });
        Self { notify }
    }
}

struct Due {
    id: String,
    attempts: i64,
    document: Document,
}

async fn send_due(database: &Database, client: &Supermemory, config: &SupermemoryConfig) -> anyhow::Result<()> {
    loop {
        let now = now_ms();
        let due = database
            .with(move |connection| {
                let mut select = connection.prepare_cached(
                    "SELECT id, attempts, container_tag, custom_id, content, metadata FROM memory_outbox
                     WHERE backend = 'supermemory' AND next_attempt_at <= ?1 ORDER BY created_at LIMIT ?2",
                )?;
                let rows = select.query_map(params![now, BATCH as i64], |row| {
                    Ok(Due {
                        id: row.get(0)?,
                        attempts: row.get(1)?,
                        document: Document {
                            container_tag: row.get(2)?,
                            custom_id: row.get(3)?,
                            content: row.get(4)?,
                            metadata: serde_json::from_str(&row.get::<_, String>(5)?).unwrap_or(Value::Null),
                        },
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .context("reading the outbox")?;
        if due.is_empty() {
            return Ok(());
        }
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        for item in due {
            match client.add(config, &item.document).await {
                Ok(id) => {
                    debug!(document = %id, "memory sent to Supermemory");
                    sent.push(item.id);
                }
                Err(error) => {
                    metrics::counter!("memory_proxy_memory_backend_errors_total", "error" => error.code()).increment(1);
                    let attempts = item.attempts + 1;
                    let backoff = (1_000_i64 << attempts.min(20)).min(MAX_BACKOFF_MS);
                    warn!(attempts, "a memory waits for Supermemory: {error}");
                    failed.push((item.id, attempts, now_ms() + backoff, error.to_string()));
                }
            }
        }
        let stop = !failed.is_empty();
        database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                for id in &sent {
                    transaction.execute("DELETE FROM memory_outbox WHERE id = ?1", [id])?;
                }
                for (id, attempts, next, error) in &failed {
                    transaction.execute(
                        "UPDATE memory_outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE id = ?1",
                        params![id, attempts, next, error],
                    )?;
                }
                let waiting: i64 = transaction.query_row("SELECT COUNT(*) FROM memory_outbox", [], |row| row.get(0))?;
                transaction.commit()?;
                metrics::gauge!("memory_proxy_memory_outbox").set(waiting as f64);
                Ok(())
            })
            .await
            .context("updating the outbox")?;
        // Supermemory is failing: the rest waits for the next round.
        if stop {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_keeps_its_custom_id_per_scope_and_its_metadata() {
        let ana = Scope { user: "ana".into(), project: Some("/srv/shop".into()) };
        let bob = Scope { user: "bob".into(), project: Some("/srv/shop".into()) };
        let memory = NewMemory::new(ana.clone(), Some("claude-code".into()), Some("req-1".into()), "User: hi");
        let again = NewMemory::new(ana, None, None, "User: hi");
        let other = NewMemory::new(bob, None, None, "User: hi");
        let document = Document::of(&memory);
        assert_eq!(document.custom_id, Document::of(&again).custom_id, "the same turn upserts");
        assert_ne!(document.custom_id, Document::of(&other).custom_id, "never another scope's document");
        assert!(document.custom_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_eq!(document.metadata["client"], "claude-code");
        assert_eq!(document.metadata["request_id"], "req-1");
        assert_eq!(document.container_tag, memory.scope.container_tag());
    }

    #[test]
    fn ids_are_escaped_for_the_path() {
        assert_eq!(urlencoding("doc_1"), "doc_1");
        assert_eq!(urlencoding("mp:u_1-a"), "mp:u_1-a", "a container tag as it is");
        assert_eq!(urlencoding("../x y"), "%2E%2E%2Fx%20y");
    }
}
