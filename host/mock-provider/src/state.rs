//! What the mock remembers: the requests it received (for tests to inspect) and the
//! faults queued for the next requests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Options;

pub struct MockState {
    pub options: Options,
    next_id: AtomicU64,
    requests: Mutex<VecDeque<Recorded>>,
    faults: Mutex<Vec<Fault>>,
    /// The fake Supermemory's documents.
    pub supermemory: crate::supermemory::Store,
}

/// One request as the mock received it.
#[derive(Serialize, Clone)]
pub struct Recorded {
    pub id: u64,
    pub method: String,
    pub path: String,
    /// The query string, when there was one (Azure's `api-version=...`).
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// The body as JSON, or as a string when it was not JSON.
    pub body: Value,
    /// True when the client went away before a streamed response was complete.
    pub stream_cancelled: bool,
    /// True when the response (streamed or not) was completely handed to the client.
    pub completed: bool,
}

/// A fault the next matching requests suffer. Queued with `POST /_mock/faults`.
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Only requests for this model (as the mock receives it) match; any when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Answer with this status and an error body in the API's shape.
    #[serde(default)]
    pub status: Option<u16>,
    /// The error body's message, instead of "mock fault: status N".
    #[serde(default)]
    pub message: Option<String>,
    /// A `set-cookie` header to send with the answer, whatever it is.
    #[serde(default)]
    pub set_cookie: Option<String>,
    /// A `location` header to send with the status (a redirect).
    #[serde(default)]
    pub location: Option<String>,
    /// A `retry-after` header to send with the status.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// Wait this long before answering at all.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// For streams: send this many events, then break the connection.
    #[serde(default)]
    pub drop_after_events: Option<usize>,
    /// For streams: after the last event, keep the body open this long before ending
    /// it (a client that hangs up after the answer's last event leaves before the end).
    #[serde(default)]
    pub linger_ms: Option<u64>,
    /// How many requests this fault applies to (default 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl MockState {
    pub fn new(options: Options) -> Self {
        Self {
            options,
            next_id: AtomicU64::new(1),
            requests: Mutex::new(VecDeque::new()),
            faults: Mutex::new(Vec::new()),
            supermemory: crate::supermemory::Store::default(),
        }
    }

    fn requests(&self) -> MutexGuard<'_, VecDeque<Recorded>> {
        self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, Vec<Fault>> {
        self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next fault for `model`: one naming it, or (unless `exact`) one naming none.
    fn take_fault(&self, model: &str, exact: bool) -> Option<Fault> {
        let mut faults = self.faults();
        let index = faults.iter().position(|f| match f.model.as_deref() {
            Some(m) => m == model,
            None => !exact,
        })?;
        let fault = faults[index].clone();
        faults[index].times = faults[index].times.saturating_sub(1);
        if faults[index].times == 0 {
            faults.remove(index);
        }
        Some(fault)
    }

    pub fn mark(&self, id: u64, completed: bool) {
        if let Some(r) = self.requests().iter_mut().rev().find(|r| r.id == id) {
            r.completed = completed;
            r.stream_cancelled = !completed;
        }
    }
}

/// A request being answered: its parsed body, the fault it drew, and its record id.
pub struct Exchange {
    pub id: u64,
    pub body: Value,
    pub model: String,
    pub stream: bool,
    pub fault: Fault,
}

impl Exchange {
    pub async fn receive(state: &Arc<MockState>, request: Request) -> Result<Self, ()> {
        Self::receive_for(state, request, None).await
    }

    /// A request that is no model call: only faults naming `fault_key` apply to it.
    pub async fn receive_keyed(state: &Arc<MockState>, request: Request, fault_key: &str) -> Result<Self, ()> {
        Self::receive_for(state, request, Some(fault_key)).await
    }

    async fn receive_for(state: &Arc<MockState>, request: Request, fault_key: Option<&str>) -> Result<Self, ()> {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024).await.map_err(|_| ())?;
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        // Gemini names the model and streaming in the path, not the body.
        let path = parts.uri.path();
        let model = body["model"].as_str().or_else(|| crate::gemini::model_of(path)).unwrap_or_default().to_owned();
        let stream = body["stream"].as_bool().unwrap_or(false) || crate::gemini::streams(path);
        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
        if state.options.record_limit > 0 {
            let headers = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let mut requests = state.requests();
            if requests.len() >= state.options.record_limit {
                requests.pop_front();
            }
            requests.push_back(Recorded {
                id,
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                headers,
                body: body.clone(),
                stream_cancelled: false,
                completed: false,
            });
        }
        let fault = match fault_key {
            Some(key) => state.take_fault(key, true),
            None => state.take_fault(&model, false),
        }
        .unwrap_or_default();
        let delay = state.options.latency() + Duration::from_millis(fault.delay_ms.unwrap_or(0));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(Self { id, body, model, stream, fault })
    }

    /// The fault's error response, shaped by `error_body`, if the fault sets a status.
    pub fn fault_response(&self, error_body: impl Fn(u16) -> Value) -> Option<Response> {
        let status = StatusCode::from_u16(self.fault.status?).ok()?;
        let mut body = error_body(status.as_u16());
        if let Some(message) = &self.fault.message {
            body["error"]["message"] = Value::String(message.clone());
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(location) = self.fault.location.as_deref().and_then(|v| v.parse().ok()) {
            response.headers_mut().insert("location", location);
        }
        if let Some(retry_after) = self.fault.retry_after.as_deref().and_then(|v| v.parse().ok()) {
            response.headers_mut().insert("retry-after", retry_after);
        }
        Some(response)
    }
}

pub async fn list_requests(State(state): State<Arc<MockState>>) -> Json<Vec<Recorded>> {
    Json(state.requests().iter().cloned().collect())
}

pub async fn clear_requests(State(state): State<Arc<MockState>>) -> StatusCode {
    state.requests().clear();
    StatusCode::NO_CONTENT
}

pub async fn add_faults(State(state): State<Arc<MockState>>, Json(faults): Json<Vec<Fault>>) -> Json<Value> {
    let mut queued = state.faults();
    queued.extend(faults);
    Json(json!({ "queued": queued.len() }))
}

pub async fn clear_faults(State(state): State<Arc<MockState>>) -> StatusCode {
    state.faults().clear();
    StatusCode::NO_CONTENT
}
