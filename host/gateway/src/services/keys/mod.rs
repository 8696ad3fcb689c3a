//! Virtual keys, as LiteLLM's proxy has them: created by the master key, stored hashed,
//! each with optional model allow-list, budget (with a reset period), expiry, rate
//! limits, and a pinned user and project. The request path reads an in-memory copy:
//! authentication, allow-lists, budgets and limits never touch the database.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use rusqlite::{Row, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::core::error::{ErrorKind, GatewayError};
use crate::core::time::{now_secs, parse_duration};
use crate::services::analytics::KeySpend;
use crate::storage::Database;

/// Every generated key starts with this; the rest is 32 random base62 characters.
pub const KEY_PREFIX: &str = "sk-mp-";
const KEY_RANDOM_LEN: usize = 32;

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new key: its plain text (shown once), its id (public) and its hint.
pub fn new_key() -> (String, String) {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let random: String = (0..KEY_RANDOM_LEN).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    let id: String = (0..8).map(|_| format!("{:02x}", rng.random::<u8>())).collect();
    (format!("{KEY_PREFIX}{random}"), format!("key_{id}"))
}

/// `sk-mp-...AbCd`: enough to tell keys apart, never enough to use one.
pub fn hint(key: &str) -> String {
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{KEY_PREFIX}...{tail}")
}

/// A key's settings, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyRecord {
    pub id: String,
    pub key_hint: String,
    pub alias: Option<String>,
    pub user_id: Option<String>,
    pub project: Option<String>,
    pub models: Vec<String>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub rpm_limit: Option<u32>,
    pub tpm_limit: Option<u64>,
    pub metadata: Value,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl KeyRecord {
    /// The memory user of requests made with this key: its pinned user; or, unless
    /// its metadata sets `allow_scope_headers: true`, a user of the key's own (its id),
    /// so a key can never act for another user by naming one in a header. None: the
    /// headers and detectors decide.
    pub fn scope_user(&self) -> Option<&str> {
        match &self.user_id {
            Some(user) => Some(user),
            None if self.metadata["allow_scope_headers"] == true => None,
            None => Some(&self.id),
        }
    }
}

/// What changes as a key is used.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Usage {
    spend: f64,
    /// The estimated cost of the requests admitted and not yet settled.
    reserved: f64,
    total_spend: f64,
    budget_reset_at: Option<i64>,
    /// Tokens used in the current minute, for `tpm_limit`.
    minute: i64,
    minute_tokens: u64,
}

/// A request's reserved share of its key's budget, given back when it is settled (the
/// request finished and its cost was added) or dropped.
#[derive(Debug)]
pub struct Reservation {
    usage: Arc<Mutex<Usage>>,
    amount: f64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.amount > 0.0 {
            let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            usage.reserved = (usage.reserved - self.amount).max(0.0);
        }
    }
}

/// A live key: its settings, its running spend and its rate limiters.
pub struct KeyEntry {
    pub record: KeyRecord,
    /// Shared with the entry an update replaces: requests admitted under the old
    /// settings still add to the one running spend.
    usage: Arc<Mutex<Usage>>,
    rpm: Option<Arc<DefaultDirectRateLimiter>>,
    budget_period_secs: Option<i64>,
}

fn rpm_limiter(record: &KeyRecord) -> Option<Arc<DefaultDirectRateLimiter>> {
    let per_minute = NonZeroU32::new(record.rpm_limit?)?;
    Some(Arc::new(RateLimiter::direct(Quota::per_minute(per_minute))))
}

fn budget_period_secs(record: &KeyRecord) -> Option<i64> {
    let period = parse_duration(record.budget_duration.as_deref()?).ok()?;
    Some(period.as_secs() as i64)
}

impl KeyEntry {
    fn new(record: KeyRecord, spend: f64, total_spend: f64, budget_reset_at: Option<i64>) -> Self {
        let usage = Usage { spend, reserved: 0.0, total_spend, budget_reset_at, minute: 0, minute_tokens: 0 };
        Self {
            rpm: rpm_limiter(&record),
            budget_period_secs: budget_period_secs(&record),
            usage: Arc::new(Mutex::new(usage)),
            record,
        }
    }

    /// The entry with new settings, keeping the running spend and, when its limit is
    /// unchanged, the rate limiter; a new budget period starts if its length changed.
    fn updated(&self, record: KeyRecord) -> Self {
        if record.budget_duration != self.record.budget_duration {
            self.usage().budget_reset_at = None;
        }
        let rpm = if record.rpm_limit == self.record.rpm_limit { self.rpm.clone() } else { rpm_limiter(&record) };
        Self { rpm, budget_period_secs: budget_period_secs(&record), usage: self.usage.clone(), record }
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a new budget period if the current one is over.
    fn roll_period(&self, usage: &mut Usage, now: i64) {
        let Some(period) = self.budget_period_secs else {
            return;
        };
        match usage.budget_reset_at {
            Some(reset) if reset <= now => {
                usage.spend = 0.0;
                // Periods stay aligned to the first one.
                let missed = (now - reset) / period + 1;
                usage.budget_reset_at = Some(reset + missed * period);
            }
            None => usage.budget_reset_at = Some(now + period),
            Some(_) => {}
        }
    }

    pub fn expired(&self, now: i64) -> bool {
        self.record.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether the key may use `model` (an empty list allows every model).
    pub fn check_model(&self, model: &str) -> Result<(), GatewayError> {
        let allowed = &self.record.models;
        if allowed.is_empty() || allowed.iter().any(|m| m == model || m == "*") {
            return Ok(());
        }
        Err(GatewayError::new(
            ErrorKind::PermissionDenied,
            format!("this key may not use model `{model}`; it is allowed: {}", allowed.join(", ")),
        )
        .with_param("model"))
    }

    /// Admits one request under the key's budget and rate limits, counting it toward
    /// rpm, and reserves its estimated cost until [`Reservation`] goes: concurrent and
    /// streaming requests see each other's cost before it is known, so the budget is
    /// overshot by one request's estimate at most.
    pub fn admit(&self, now: i64, estimated_cost: f64) -> Result<Reservation, GatewayError> {
        {
            let mut usage = self.usage();
            self.roll_period(&mut usage, now);
            if let Some(budget) = self.record.max_budget
                && usage.spend + usage.reserved >= budget
            {
                let period = match (&self.record.budget_duration, usage.budget_reset_at) {
                    (Some(duration), Some(reset)) => format!(" ({duration} budget; it resets at unix time {reset})"),
                    _ => String::new(),
                };
                let in_flight = if usage.reserved > 0.0 {
                    format!(" (and ${:.6} is reserved by requests in flight)", usage.reserved)
                } else {
                    String::new()
                };
                let mut error = GatewayError::new(
                    ErrorKind::RateLimited,
                    format!(
                        "budget exceeded: key {} has spent ${:.6}{in_flight} of its max_budget of ${budget}{period}",
                        self.record.id, usage.spend
                    ),
                );
                error.retry_after = usage.budget_reset_at.map(|reset| (reset - now).max(1) as u64);
                return Err(error);
            }
            if let Some(tpm) = self.record.tpm_limit {
                let minute = now / 60;
                if usage.minute == minute && usage.minute_tokens >= tpm {
                    let mut error = GatewayError::new(
                        ErrorKind::RateLimited,
                        format!("tpm_limit of {tpm} tokens per minute reached for key {}", self.record.id),
                    );
                    error.retry_after = Some((60 - now % 60).max(1) as u64);
                    return Err(error);
                }
            }
        }
        if let Some(limiter) = &self.rpm
            && let Err(not_until) = limiter.check()
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            let mut error = GatewayError::new(
                ErrorKind::RateLimited,
                format!(
                    "rpm_limit of {} requests per minute reached for key {}",
                    self.record.rpm_limit.unwrap_or_default(),
                    self.record.id
                ),
            );
            error.retry_after = Some(wait.as_secs().max(1));
            return Err(error);
        }
        let amount = estimated_cost.max(0.0);
        if self.record.max_budget.is_some() && amount > 0.0 {
            self.usage().reserved += amount;
        }
        Ok(Reservation { usage: self.usage.clone(), amount })
    }

    /// Adds a finished request's cost and tokens; returns the spend to persist.
    pub fn accrue(&self, cost: Option<f64>, tokens: u64, now: i64) -> KeySpend {
        let mut usage = self.usage();
        self.roll_period(&mut usage, now);
        if let Some(cost) = cost {
            usage.spend += cost;
            usage.total_spend += cost;
        }
        let minute = now / 60;
        if usage.minute != minute {
            usage.minute = minute;
            usage.minute_tokens = 0;
        }
        usage.minute_tokens += tokens;
        KeySpend { spend: usage.spend, total_spend: usage.total_spend, budget_reset_at: usage.budget_reset_at }
    }

    pub fn reserved(&self) -> f64 {
        self.usage().reserved
    }

    pub fn spend(&self) -> KeySpend {
        let usage = self.usage();
        KeySpend { spend: usage.spend, total_spend: usage.total_spend, budget_reset_at: usage.budget_reset_at }
    }
}

/// Why a presented key was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    Unknown,
    Expired,
}

/// The live keys, by hash, over the database that stores them.
pub struct KeyStore {
    database: Database,
    by_hash: RwLock<HashMap<[u8; 32], Arc<KeyEntry>>>,
    /// The hash of each key id, to find entries by id.
    hash_by_id: RwLock<HashMap<String, [u8; 32]>>,
}

const COLUMNS: &str =
    "id, hash, key_hint, alias, user_id, project, models, max_budget, budget_duration, budget_reset_at, spend,
    total_spend, rpm_limit, tpm_limit, metadata, expires_at, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<([u8; 32], KeyEntry)> {
    let hash: Vec<u8> = row.get("hash")?;
    let models: String = row.get("models")?;
    let metadata: String = row.get("metadata")?;
    let record = KeyRecord {
        id: row.get("id")?,
        key_hint: row.get("key_hint")?,
        alias: row.get("alias")?,
        user_id: row.get("user_id")?,
        project: row.get("project")?,
        models: serde_json::from_str(&models).unwrap_or_default(),
        max_budget: row.get("max_budget")?,
        budget_duration: row.get("budget_duration")?,
        rpm_limit: row.get("rpm_limit")?,
        tpm_limit: row.get::<_, Option<i64>>("tpm_limit")?.map(|t| t.max(0) as u64),
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
        expires_at: row.get("expires_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    };
    let hash: [u8; 32] = hash.try_into().unwrap_or([0; 32]);
    Ok((hash, KeyEntry::new(record, row.get("spend")?, row.get("total_spend")?, row.get("budget_reset_at")?)))
}

impl KeyStore {
    /// Loads every live (not deleted) key.
    pub fn load(database: &Database) -> anyhow::Result<Self> {
        let connection = database.connect()?;
        let mut statement =
            connection.prepare(&format!("SELECT {COLUMNS} FROM virtual_keys WHERE deleted_at IS NULL"))?;
        let mut by_hash = HashMap::new();
        let mut hash_by_id = HashMap::new();
        for entry in statement.query_map([], from_row)? {
            let (hash, entry) = entry?;
            hash_by_id.insert(entry.record.id.clone(), hash);
            by_hash.insert(hash, Arc::new(entry));
        }
        Ok(Self { database: database.clone(), by_hash: RwLock::new(by_hash), hash_by_id: RwLock::new(hash_by_id) })
    }

    /// The live key a client presented.
    pub fn authenticate(&self, presented: &str, now: i64) -> Result<Arc<KeyEntry>, KeyRefusal> {
        let entry = self.by_hash.read().unwrap_or_else(|p| p.into_inner()).get(&hash_key(presented)).cloned();
        match entry {
            None => Err(KeyRefusal::Unknown),
            Some(entry) if entry.expired(now) => Err(KeyRefusal::Expired),
            Some(entry) => Ok(entry),
        }
    }

    /// A key by its id, or by the key itself.
    pub fn find(&self, key_or_id: &str) -> Option<Arc<KeyEntry>> {
        let hash = match self.hash_by_id.read().unwrap_or_else(|p| p.into_inner()).get(key_or_id) {
            Some(hash) => *hash,
            None => hash_key(key_or_id),
        };
        self.by_hash.read().unwrap_or_else(|p| p.into_inner()).get(&hash).cloned()
    }

    pub fn list(&self) -> Vec<Arc<KeyEntry>> {
        let mut keys: Vec<_> = self.by_hash.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        keys.sort_by(|a, b| (a.record.created_at, &a.record.id).cmp(&(b.record.created_at, &b.record.id)));
        keys
    }

    /// Stores a new key (durably, before it is shown) and makes it live.
    pub async fn create(&self, record: KeyRecord, key: &str) -> anyhow::Result<Arc<KeyEntry>> {
        let hash = hash_key(key);
        let stored = record.clone();
        self.database
            .with(move |connection| {
                connection.execute(
                    "INSERT INTO virtual_keys (id, hash, key_hint, alias, user_id, project, models, max_budget, budget_duration,
                        rpm_limit, tpm_limit, metadata, expires_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    params![
                        stored.id,
                        hash.to_vec(),
                        stored.key_hint,
                        stored.alias,
                        stored.user_id,
                        stored.project,
                        serde_json::to_string(&stored.models)?,
                        stored.max_budget,
                        stored.budget_duration,
                        stored.rpm_limit,
                        stored.tpm_limit.map(|t| t as i64),
                        stored.metadata.to_string(),
                        stored.expires_at,
                        stored.created_at,
                        stored.updated_at,
                    ],
                )?;
                Ok(())
            })
            .await?;
        let entry = Arc::new(KeyEntry::new(record, 0.0, 0.0, None));
        self.insert(hash, entry.clone());
        Ok(entry)
    }

    /// Replaces a key's settings, keeping its spend (and starting a new budget period
    /// if the period changed).
    pub async fn update(&self, current: &KeyEntry, record: KeyRecord) -> anyhow::Result<Arc<KeyEntry>> {
        let Some(hash) = self.hash_by_id.read().unwrap_or_else(|p| p.into_inner()).get(&record.id).copied() else {
            anyhow::bail!("key {} is gone", record.id);
        };
        let reset_at = if record.budget_duration == current.record.budget_duration {
            current.spend().budget_reset_at
        } else {
            None
        };
        let stored = record.clone();
        self.database
            .with(move |connection| {
                connection.execute(
                    "UPDATE virtual_keys SET alias = ?2, user_id = ?3, project = ?4, models = ?5, max_budget = ?6,
                        budget_duration = ?7, budget_reset_at = ?8, rpm_limit = ?9, tpm_limit = ?10, metadata = ?11,
                        expires_at = ?12, updated_at = ?13 WHERE id = ?1",
                    params![
                        stored.id,
                        stored.alias,
                        stored.user_id,
                        stored.project,
                        serde_json::to_string(&stored.models)?,
                        stored.max_budget,
                        stored.budget_duration,
                        reset_at,
                        stored.rpm_limit,
                        stored.tpm_limit.map(|t| t as i64),
                        stored.metadata.to_string(),
                        stored.expires_at,
                        stored.updated_at,
                    ],
                )?;
                Ok(())
            })
            .await?;
        let entry = Arc::new(current.updated(record));
        self.insert(hash, entry.clone());
        Ok(entry)
    }

    /// Deletes keys (kept in the database, marked deleted, for the analytics that name them).
    pub async fn delete(&self, ids: Vec<String>) -> anyhow::Result<()> {
        let now = now_secs();
        let deleted = ids.clone();
        self.database
            .with(move |connection| {
                let transaction = connection.transaction()?;
                for id in &deleted {
                    transaction.execute("UPDATE virtual_keys SET deleted_at = ?2 WHERE id = ?1", params![id, now])?;
                }
                transaction.commit()?;
                Ok(())
            })
            .await?;
        let mut by_hash = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        let mut hash_by_id = self.hash_by_id.write().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            if let Some(hash) = hash_by_id.remove(&id) {
                by_hash.remove(&hash);
            }
        }
        Ok(())
    }

    fn insert(&self, hash: [u8; 32], entry: Arc<KeyEntry>) {
        self.hash_by_id.write().unwrap_or_else(|p| p.into_inner()).insert(entry.record.id.clone(), hash);
        self.by_hash.write().unwrap_or_else(|p| p.into_inner()).insert(hash, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> KeyRecord {
        KeyRecord {
            id: "key_1".into(),
            key_hint: "sk-mp-...abcd".into(),
            alias: None,
            user_id: None,
            project: None,
            models: vec!["gpt".into()],
            max_budget: Some(1.0),
            budget_duration: Some("1d".into()),
            rpm_limit: Some(2),
            tpm_limit: Some(100),
            metadata: Value::Null,
            expires_at: Some(1_000),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn keys_are_random_and_hinted() {
        let (a, id_a) = new_key();
        let (b, _) = new_key();
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + KEY_RANDOM_LEN && a != b);
        assert!(id_a.starts_with("key_"));
        assert_eq!(hint("sk-mp-xyz1234"), "sk-mp-...1234");
    }

    #[test]
    fn requests_in_flight_reserve_their_estimate_until_settled() {
        let record = KeyRecord { max_budget: Some(1.0), rpm_limit: None, tpm_limit: None, ..record() };
        let entry = KeyEntry::new(record, 0.0, 0.0, None);
        let first = entry.admit(0, 0.6).unwrap();
        let second = entry.admit(0, 0.6).unwrap();
        let refused = entry.admit(0, 0.6).unwrap_err();
        assert!(refused.message.contains("is reserved by requests in flight"), "{}", refused.message);
        // The first settles at its real cost: the estimate is given back.
        entry.accrue(Some(0.1), 10, 0);
        drop(first);
        assert!((entry.reserved() - 0.6).abs() < 1e-9);
        assert!(entry.admit(0, 0.6).is_ok(), "0.1 spent + 0.6 reserved is under the budget");
        drop(second);
        assert!(entry.reserved().abs() < 1e-9, "dropped reservations leave nothing reserved");
    }

    #[test]
    fn models_budget_and_limits() {
        let entry = KeyEntry::new(record(), 0.0, 0.0, None);
        assert!(entry.check_model("gpt").is_ok());
        assert_eq!(entry.check_model("claude").unwrap_err().kind, ErrorKind::PermissionDenied);
        assert!(entry.expired(1_000) && !entry.expired(999));

        assert!(entry.admit(0, 0.0).is_ok());
        assert!(entry.admit(0, 0.0).is_ok());
        let limited = entry.admit(0, 0.0).unwrap_err();
        assert!(limited.message.contains("rpm_limit of 2"), "{}", limited.message);
        assert!(limited.retry_after.is_some());

        let entry = KeyEntry::new(KeyRecord { rpm_limit: None, ..record() }, 0.0, 0.0, None);
        entry.accrue(Some(0.4), 60, 100);
        assert!(entry.admit(110, 0.0).is_ok());
        entry.accrue(Some(0.7), 50, 110);
        let spent = entry.admit(115, 0.0).unwrap_err();
        assert!(
            spent.message.starts_with("budget exceeded") && spent.message.contains("1d budget"),
            "{}",
            spent.message
        );
        // The next day the budget starts again, but this minute's tokens are over the tpm limit.
        let next_day = 100 + 86_400;
        entry.accrue(None, 120, next_day);
        let tpm = entry.admit(next_day, 0.0).unwrap_err();
        assert!(tpm.message.contains("tpm_limit of 100"), "{}", tpm.message);
        assert!(entry.admit(next_day + 60, 0.0).is_ok());
        let spend = entry.spend();
        assert_eq!((spend.spend, spend.total_spend), (0.0, 1.1));
    }

    /// A request admitted before an update finishes after it: its cost still counts,
    /// and the rate limiter is not reset by an unrelated change.
    #[test]
    fn an_update_keeps_the_running_spend_and_the_limiter() {
        let old = KeyEntry::new(record(), 0.0, 0.0, None);
        assert!(old.admit(0, 0.0).is_ok() && old.admit(0, 0.0).is_ok());
        let renamed = old.updated(KeyRecord { alias: Some("renamed".into()), ..record() });
        old.accrue(Some(0.5), 10, 1);
        assert_eq!(renamed.spend().total_spend, 0.5);
        assert!(renamed.admit(2, 0.0).unwrap_err().message.contains("rpm_limit of 2"));
        let faster = renamed.updated(KeyRecord { rpm_limit: Some(10), budget_duration: Some("7d".into()), ..record() });
        assert!(faster.admit(3, 0.0).is_ok());
        assert_eq!(faster.spend().budget_reset_at, Some(3 + 7 * 86_400), "a new period length starts a new period");
    }
}
