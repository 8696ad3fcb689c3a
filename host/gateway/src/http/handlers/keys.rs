//! LiteLLM's key endpoints: `POST /key/generate`, `GET /key/info`, `POST /key/update`,
//! `POST /key/delete`, `GET /key/list`. The plain key is in the answer to `generate`
//! only; everywhere else a key is its id (`key_...`) and a hint (`sk-mp-...AbCd`).

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::AdminError;
use crate::core::error::{ErrorKind, GatewayError};
use crate::core::time::{now_secs, parse_duration};
use crate::pipeline::auth::Caller;
use crate::services::Services;
use crate::services::keys::{KeyEntry, KeyRecord, hint, new_key};

type ApiResult = Result<Json<Value>, AdminError>;

fn internal(error: anyhow::Error) -> GatewayError {
    GatewayError::new(ErrorKind::Internal, format!("the key store failed: {error:#}"))
}

/// Key management needs the master key (and so a master key configured: without one
/// the gateway does not authenticate, and keys would enforce nothing).
fn require_master(caller: &Caller) -> Result<(), GatewayError> {
    match caller {
        Caller::Master => Ok(()),
        Caller::Anonymous => Err(GatewayError::new(
            ErrorKind::PermissionDenied,
            "virtual keys need a master key: set general_settings.master_key (or MEMORY_PROXY_MASTER_KEY)",
        )),
        Caller::Key(_) => Err(GatewayError::new(ErrorKind::PermissionDenied, "only the master key manages keys")),
    }
}

/// A key as the API shows it: settings, spend, never the key itself.
pub fn describe(entry: &KeyEntry) -> Value {
    let record = &entry.record;
    let spend = entry.spend();
    json!({
        "token": record.id,
        "key_name": record.key_hint,
        "key_alias": record.alias,
        "user_id": record.user_id,
        "project": record.project,
        "models": record.models,
        "max_budget": record.max_budget,
        "budget_duration": record.budget_duration,
        "budget_reset_at": spend.budget_reset_at,
        "spend": spend.spend,
        "total_spend": spend.total_spend,
        "rpm_limit": record.rpm_limit,
        "tpm_limit": record.tpm_limit,
        "metadata": record.metadata,
        "expires": record.expires_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    })
}

/// Absent stays absent (None); `null` clears (Some(None)).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    budget_duration: Option<Option<String>>,
    /// Time until the key expires (`30d`); `null` removes the expiry.
    #[serde(default, deserialize_with = "nullable")]
    duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    rpm_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    tpm_limit: Option<Option<u64>>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    user_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    project: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    key_alias: Option<Option<String>>,
}

impl KeySettings {
    /// `base` with these settings applied, checked.
    fn apply(self, mut record: KeyRecord, now: i64) -> Result<KeyRecord, GatewayError> {
        if let Some(models) = self.models {
            record.models = models;
        }
        if let Some(budget) = self.max_budget {
            if budget.is_some_and(|b| !(b.is_finite() && b >= 0.0)) {
                return Err(GatewayError::invalid("`max_budget` must be a number of dollars, 0 or more")
                    .with_param("max_budget"));
            }
            record.max_budget = budget;
        }
        if let Some(period) = self.budget_duration {
            if let Some(text) = &period {
                parse_duration(text).map_err(|e| {
                    GatewayError::invalid(format!("`budget_duration`: {e}")).with_param("budget_duration")
                })?;
            }
            record.budget_duration = period;
        }
        if let Some(duration) = self.duration {
            record.expires_at = match duration {
                Some(text) => {
                    let length = parse_duration(&text)
                        .map_err(|e| GatewayError::invalid(format!("`duration`: {e}")).with_param("duration"))?;
                    Some(now + length.as_secs() as i64)
                }
                None => None,
            };
        }
        if let Some(rpm) = self.rpm_limit {
            if rpm == Some(0) {
                return Err(GatewayError::invalid(
                    "`rpm_limit` must be at least 1 (to stop a key, delete it or set `max_budget` to 0)",
                )
                .with_param("rpm_limit"));
            }
            record.rpm_limit = rpm;
        }
        if let Some(tpm) = self.tpm_limit {
            record.tpm_limit = tpm;
        }
        if let Some(metadata) = self.metadata {
            if !metadata.is_object() {
                return Err(GatewayError::invalid("`metadata` must be an object").with_param("metadata"));
            }
            record.metadata = metadata;
        }
        if let Some(user) = self.user_id {
            record.user_id = user.filter(|u| !u.trim().is_empty());
        }
        if let Some(project) = self.project {
            record.project = project.filter(|p| !p.trim().is_empty());
        }
        if let Some(alias) = self.key_alias {
            record.alias = alias;
        }
        record.updated_at = now;
        Ok(record)
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, GatewayError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        GatewayError::invalid(format!("invalid request body at `{path}`: {}", e.into_inner()))
    })
}

pub async fn generate(
    State(state): State<Services>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult {
    require_master(&caller)?;
    let settings: KeySettings = if body.is_empty() { KeySettings::default() } else { parse(&body)? };
    let now = now_secs();
    let (key, id) = new_key();
    let blank = KeyRecord {
        id,
        key_hint: hint(&key),
        alias: None,
        user_id: None,
        project: None,
        models: Vec::new(),
        max_budget: None,
        budget_duration: None,
        rpm_limit: None,
        tpm_limit: None,
        metadata: json!({}),
        expires_at: None,
        created_at: now,
        updated_at: now,
    };
    let record = settings.apply(blank, now)?;
    let entry = state.keys().create(record, &key).await.map_err(internal)?;
    tracing::info!(key_id = %entry.record.id, "virtual key created");
    let mut answer = describe(&entry);
    answer["key"] = Value::String(key);
    Ok(Json(answer))
}

fn find(state: &Services, key: &str) -> Result<std::sync::Arc<KeyEntry>, GatewayError> {
    state.keys().find(key).ok_or_else(|| {
        GatewayError::new(ErrorKind::NotFound, "no such key (it may have been deleted)").with_param("key")
    })
}

#[derive(Deserialize)]
pub struct InfoQuery {
    key: Option<String>,
}

/// A key's settings and spend. The master key may ask about any key; a virtual key
/// about itself (without `?key=`).
pub async fn info(
    State(state): State<Services>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<InfoQuery>,
) -> ApiResult {
    let entry = match (&caller, query.key.as_deref()) {
        (Caller::Key(own), None) => own.clone(),
        (Caller::Key(own), Some(asked)) if state.keys().find(asked).is_some_and(|e| e.record.id == own.record.id) => {
            own.clone()
        }
        (_, Some(asked)) => {
            require_master(&caller)?;
            find(&state, asked)?
        }
        (_, None) => return Err(GatewayError::invalid("`key` is required").with_param("key").into()),
    };
    Ok(Json(json!({ "key": entry.record.id, "info": describe(&entry) })))
}

pub async fn update(
    State(state): State<Services>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult {
    require_master(&caller)?;
    // `key`, plus any of the settings (which `KeySettings` checks strictly).
    let mut fields: serde_json::Map<String, Value> = parse(&body)?;
    let Some(Value::String(key)) = fields.remove("key") else {
        return Err(GatewayError::invalid("`key` is required").with_param("key").into());
    };
    let settings: KeySettings = parse(Value::Object(fields).to_string().as_bytes())?;
    let current = find(&state, &key)?;
    let record = settings.apply(current.record.clone(), now_secs())?;
    let entry = state.keys().update(&current, record).await.map_err(internal)?;
    tracing::info!(key_id = %entry.record.id, "virtual key updated");
    Ok(Json(describe(&entry)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    keys: Vec<String>,
}

pub async fn delete(
    State(state): State<Services>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult {
    require_master(&caller)?;
    let request: DeleteRequest = parse(&body)?;
    let mut ids = Vec::new();
    for key in &request.keys {
        ids.push(find(&state, key)?.record.id.clone());
    }
    state.keys().delete(ids.clone()).await.map_err(internal)?;
    tracing::info!(keys = ?ids, "virtual keys deleted");
    Ok(Json(json!({ "deleted_keys": ids })))
}

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<usize>,
    size: Option<usize>,
    user_id: Option<String>,
    key_alias: Option<String>,
    return_full_object: Option<bool>,
}

pub async fn list(
    State(state): State<Services>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    require_master(&caller)?;
    let keys: Vec<_> = state
        .keys()
        .list()
        .into_iter()
        .filter(|k| query.user_id.as_ref().is_none_or(|u| k.record.user_id.as_ref() == Some(u)))
        .filter(|k| query.key_alias.as_ref().is_none_or(|a| k.record.alias.as_ref() == Some(a)))
        .collect();
    let size = query.size.unwrap_or(100).clamp(1, 1000);
    let page = query.page.unwrap_or(1).max(1);
    let total = keys.len();
    let shown: Vec<Value> = keys
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|k| if query.return_full_object == Some(true) { describe(k) } else { Value::String(k.record.id.clone()) })
        .collect();
    Ok(Json(json!({
        "keys": shown,
        "total_count": total,
        "current_page": page,
        "total_pages": total.div_ceil(size),
    })))
}
