//! Reading the databank: summaries grouped by user, project, model, client, key or day
//! (from the hourly rollups, plus the raw rows of partial hours at the edges of the
//! range, so figures are exact while a million-row log is never scanned), the request
//! log page by page, and LiteLLM's spend logs.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params_from_iter, types::Value as SqlValue};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Totals, is_error, is_truncation};
use crate::core::histogram::Histogram;
use crate::core::ids::first_id_at;

const HOUR_MS: i64 = 3_600_000;

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-27` for a Unix time in milliseconds (UTC).
pub fn date_of(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

/// `2026-11-27T08:15:02Z` for a Unix time in milliseconds (UTC).
pub fn timestamp_of(ms: i64) -> String {
    let seconds = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}Z", date_of(ms), seconds / 3600, seconds % 3600 / 60, seconds % 60)
}

/// A time in a query: relative (`7d`, `24h`, `30m` ago), a date (`2026-11-20`) or a
/// UTC time (`2026-11-20T08:30:00Z`), or Unix seconds or milliseconds.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not a time (use 7d, 24h, 2026-11-20, 2026-11-20T08:30:00Z or a Unix time)");
    let bytes = text.as_bytes();
    if bytes.len() >= 10 && bytes[4] == b'-' && bytes[7] == b'-' {
        let number =
            |range: std::ops::Range<usize>| text.get(range).and_then(|n| n.parse::<u32>().ok()).ok_or_else(bad);
        let (month, day) = (number(5..7)?, number(8..10)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(bad());
        }
        let midnight = days_from_civil(i64::from(number(0..4)?), month, day) * 86_400_000;
        let time = match text.get(10..).ok_or_else(bad)?.trim_end_matches('Z') {
            "" => 0,
            clock if clock.len() == 9 && clock.starts_with('T') && &clock[3..4] == ":" && &clock[6..7] == ":" => {
                let (hours, minutes, seconds) = (number(11..13)?, number(14..16)?, number(17..19)?);
                if hours > 23 || minutes > 59 || seconds > 60 {
                    return Err(bad());
                }
                i64::from(hours * 3600 + minutes * 60 + seconds) * 1000
            }
            _ => return Err(bad()),
        };
        return Ok(midnight + time);
    }
    if let Ok(number) = text.parse::<i64>() {
        // Seconds until the year 33658; milliseconds after.
        return match number {
            ..0 => Err(bad()),
            0..1_000_000_000_000 => Ok(number * 1000),
            _ => Ok(number),
        };
    }
    let ago = crate::core::time::parse_duration(text).map_err(|_| bad())?;
    Ok(now_ms - ago.as_millis() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    User,
    Project,
    Model,
    Client,
    Key,
    Day,
}

impl GroupBy {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "user" => Self::User,
            "project" => Self::Project,
            "model" => Self::Model,
            "client" => Self::Client,
            "key" => Self::Key,
            "day" => Self::Day,
            other => return Err(format!("cannot group by `{other}`: use user, project, model, client, key or day")),
        })
    }
}

/// One group's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SummaryRow {
    pub group: String,
    pub requests: i64,
    pub errors: i64,
    pub error_rate: f64,
    /// Answers cut by their token limit.
    pub truncated: i64,
    /// Requests that needed more than one attempt.
    pub retried: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    /// Requests whose cost is unknown (a model without a price): not in `cost_usd`.
    pub unpriced_requests: i64,
    pub latency_ms_mean: f64,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p95: Option<f64>,
    pub latency_ms_p99: Option<f64>,
}

/// Filters on the scope of the rows summarised (also the query string's `user`,
/// `project`, `model`, `client` and `key_id`).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filters {
    pub user: Option<String>,
    pub project: Option<String>,
    pub model: Option<String>,
    pub client: Option<String>,
    pub key_id: Option<String>,
}

impl Filters {
    fn is_empty(&self) -> bool {
        [&self.user, &self.project, &self.model, &self.client, &self.key_id].iter().all(|f| f.is_none())
    }

    /// `AND column = ?` clauses for the filters set, with their values; '' matches a
    /// missing project, client or key (written so the log's indexes still apply).
    fn clauses(&self) -> (String, Vec<SqlValue>) {
        let mut sql = String::new();
        let mut values = Vec::new();
        for (column, value) in [
            ("user_id", &self.user),
            ("project", &self.project),
            ("model", &self.model),
            ("client", &self.client),
            ("key_id", &self.key_id),
        ] {
            match value.as_deref() {
                None => {}
                Some("") => sql.push_str(&format!(" AND {column} IS NULL")),
                Some(value) => {
                    sql.push_str(&format!(" AND {column} = ?"));
                    values.push(SqlValue::Text(value.to_owned()));
                }
            }
        }
        (sql, values)
    }
}

/// Figures per group over [since, until) (Unix ms), sorted by cost, then requests
/// (by date for days).
///
/// Unfiltered, whole hours come from the rollups and only the partial hours at the
/// ends of the range from the log, so a summary never scans a million-row log.
/// Filtered, the rows come from the log's time range.
pub fn summary(
    connection: &Connection,
    group_by: GroupBy,
    since_ms: i64,
    until_ms: i64,
    filters: &Filters,
) -> anyhow::Result<Vec<SummaryRow>> {
    let mut groups: BTreeMap<String, Totals> = BTreeMap::new();
    let first_hour = since_ms.div_euclid(HOUR_MS) + i64::from(since_ms.rem_euclid(HOUR_MS) != 0);
    let last_hour = until_ms.div_euclid(HOUR_MS);
    if filters.is_empty() && first_hour < last_hour {
        add_rollups(connection, group_by, first_hour, last_hour, &mut groups)?;
        add_log_rows(connection, group_by, since_ms, first_hour * HOUR_MS, filters, &mut groups)?;
        add_log_rows(connection, group_by, last_hour * HOUR_MS, until_ms, filters, &mut groups)?;
    } else {
        add_log_rows(connection, group_by, since_ms, until_ms, filters, &mut groups)?;
    }
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    let mut rows: Vec<SummaryRow> = groups
        .into_iter()
        .map(|(group, t)| SummaryRow {
            group,
            requests: t.requests,
            errors: t.errors,
            error_rate: if t.requests > 0 { t.errors as f64 / t.requests as f64 } else { 0.0 },
            truncated: t.truncated,
            retried: t.retried,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cached_tokens: t.cached_tokens,
            cost_usd: t.cost,
            unpriced_requests: t.unpriced,
            latency_ms_mean: if t.requests > 0 { t.latency_ms_sum / t.requests as f64 } else { 0.0 },
            latency_ms_p50: ms(t.latency.percentile(0.5)),
            latency_ms_p95: ms(t.latency.percentile(0.95)),
            latency_ms_p99: ms(t.latency.percentile(0.99)),
        })
        .collect();
    if group_by == GroupBy::Day {
        rows.sort_by(|a, b| a.group.cmp(&b.group));
    } else {
        rows.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(b.requests.cmp(&a.requests)));
    }
    Ok(rows)
}

/// Adds the rollups of the hours [first_hour, last_hour).
fn add_rollups(
    connection: &Connection,
    group_by: GroupBy,
    first_hour: i64,
    last_hour: i64,
    groups: &mut BTreeMap<String, Totals>,
) -> anyhow::Result<()> {
    let dimension = match group_by {
        GroupBy::User => "user",
        GroupBy::Project => "project",
        GroupBy::Model => "model",
        GroupBy::Client => "client",
        GroupBy::Key => "key",
        GroupBy::Day => "all",
    };
    let mut statement = connection.prepare_cached(
        "SELECT hour, value, requests, errors, truncated, retried, input_tokens, output_tokens, cached_tokens, cost_usd,
            unpriced, latency_ms_sum, latency_histogram FROM rollups WHERE dimension = ?1 AND hour >= ?2 AND hour < ?3",
    )?;
    let mut rows = statement.query(rusqlite::params![dimension, first_hour, last_hour])?;
    while let Some(row) = rows.next()? {
        let group = match group_by {
            GroupBy::Day => date_of(row.get::<_, i64>(0)? * HOUR_MS),
            _ => row.get::<_, String>(1)?,
        };
        let totals = groups.entry(group).or_default();
        totals.requests += row.get::<_, i64>(2)?;
        totals.errors += row.get::<_, i64>(3)?;
        totals.truncated += row.get::<_, i64>(4)?;
        totals.retried += row.get::<_, i64>(5)?;
        totals.input_tokens += row.get::<_, i64>(6)?;
        totals.output_tokens += row.get::<_, i64>(7)?;
        totals.cached_tokens += row.get::<_, i64>(8)?;
        totals.cost += row.get::<_, f64>(9)?;
        totals.unpriced += row.get::<_, i64>(10)?;
        totals.latency_ms_sum += row.get::<_, f64>(11)?;
        totals.latency.merge(&Histogram::from_bytes(&row.get::<_, Vec<u8>>(12)?));
    }
    Ok(())
}

/// Adds the logged requests started in [from, to) that pass the filters.
fn add_log_rows(
    connection: &Connection,
    group_by: GroupBy,
    from: i64,
    to: i64,
    filters: &Filters,
    groups: &mut BTreeMap<String, Totals>,
) -> anyhow::Result<()> {
    if from >= to {
        return Ok(());
    }
    let column = match group_by {
        GroupBy::User => "user_id",
        GroupBy::Project => "project",
        GroupBy::Model => "model",
        GroupBy::Client => "client",
        GroupBy::Key => "key_id",
        GroupBy::Day => "started_at",
    };
    let (filter_sql, filter_values) = filters.clauses();
    let sql = format!(
        "SELECT {column}, status, finish_reason, attempts, input_tokens, output_tokens, cached_tokens, cost_usd, latency_ms,
            error FROM requests WHERE id >= ? AND id < ?{filter_sql}"
    );
    let mut values = id_range(from, to);
    values.extend(filter_values);
    let mut statement = connection.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    while let Some(row) = rows.next()? {
        let group = match group_by {
            GroupBy::Day => date_of(row.get::<_, i64>(0)?),
            _ => row.get::<_, Option<String>>(0)?.unwrap_or_default(),
        };
        let totals = groups.entry(group).or_default();
        let status: u16 = row.get(1)?;
        let finish: Option<String> = row.get(2)?;
        let latency_ms: f64 = row.get(8)?;
        let error: Option<String> = row.get(9)?;
        totals.requests += 1;
        totals.errors += i64::from(is_error(status, error.as_deref()));
        totals.truncated += i64::from(is_truncation(finish.as_deref()));
        totals.retried += i64::from(row.get::<_, i64>(3)? > 1);
        totals.input_tokens += row.get::<_, Option<i64>>(4)?.unwrap_or(0);
        totals.output_tokens += row.get::<_, Option<i64>>(5)?.unwrap_or(0);
        totals.cached_tokens += row.get::<_, Option<i64>>(6)?.unwrap_or(0);
        match row.get::<_, Option<f64>>(7)? {
            Some(cost) => totals.cost += cost,
            None => totals.unpriced += 1,
        }
        totals.latency_ms_sum += latency_ms;
        totals.latency.record(Duration::from_secs_f64(latency_ms / 1e3));
    }
    Ok(())
}

/// [from, to) in Unix ms as bounds on the log's time-ordered ids.
fn id_range(from_ms: i64, to_ms: i64) -> Vec<SqlValue> {
    vec![SqlValue::Text(first_id_at(from_ms)), SqlValue::Text(first_id_at(to_ms))]
}

/// What recall offered logged request `id` (`[{"id", "score"}]`); None when there is no
/// such request.
pub fn recalled(connection: &Connection, id: &str) -> anyhow::Result<Option<Vec<(String, f64)>>> {
    let mut select = connection.prepare_cached("SELECT recalled FROM requests WHERE id = ?1")?;
    let Some(recalled) = select.query_row([id], |row| row.get::<_, Option<String>>(0)).optional()? else {
        return Ok(None);
    };
    let list: Vec<Value> = recalled.map(|text| serde_json::from_str(&text)).transpose()?.unwrap_or_default();
    Ok(Some(
        list.iter()
            .map(|m| (m["id"].as_str().unwrap_or_default().to_owned(), m["score"].as_f64().unwrap_or(0.0)))
            .collect(),
    ))
}

/// One logged request as the API shows it.
fn request_json(row: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let started: i64 = row.get("started_at")?;
    Ok(json!({
        "id": row.get::<_, String>("id")?,
        "started_at": timestamp_of(started),
        "started_at_ms": started,
        "user": row.get::<_, String>("user_id")?,
        "project": row.get::<_, Option<String>>("project")?,
        "client": row.get::<_, Option<String>>("client")?,
        "key_id": row.get::<_, Option<String>>("key_id")?,
        "model": row.get::<_, String>("model")?,
        "deployment": row.get::<_, Option<String>>("deployment")?,
        "provider": row.get::<_, Option<String>>("provider")?,
        "upstream_model": row.get::<_, Option<String>>("upstream_model")?,
        "api": row.get::<_, String>("api")?,
        "stream": row.get::<_, bool>("stream")?,
        "status": row.get::<_, i64>("status")?,
        "error": row.get::<_, Option<String>>("error")?,
        "attempts": row.get::<_, i64>("attempts")?,
        "fallbacks": row.get::<_, i64>("fallbacks")?,
        "input_tokens": row.get::<_, Option<i64>>("input_tokens")?,
        "output_tokens": row.get::<_, Option<i64>>("output_tokens")?,
        "cached_tokens": row.get::<_, Option<i64>>("cached_tokens")?,
        "cache_write_tokens": row.get::<_, Option<i64>>("cache_write_tokens")?,
        "reasoning_tokens": row.get::<_, Option<i64>>("reasoning_tokens")?,
        "tokens_estimated": row.get::<_, bool>("tokens_estimated")?,
        "cost_usd": row.get::<_, Option<f64>>("cost_usd")?,
        "latency_ms": row.get::<_, f64>("latency_ms")?,
        "ttft_ms": row.get::<_, Option<f64>>("ttft_ms")?,
        "upstream_ms": row.get::<_, Option<f64>>("upstream_ms")?,
        "overhead_ms": row.get::<_, Option<f64>>("overhead_ms")?,
        "memories_recalled": row.get::<_, i64>("memories_recalled")?,
        "memories_captured": row.get::<_, i64>("memories_captured")?,
        "recalled": row.get::<_, Option<String>>("recalled")?
            .and_then(|recalled| serde_json::from_str::<Value>(&recalled).ok())
            .unwrap_or_else(|| json!([])),
        "memory_error": row.get::<_, Option<String>>("memory_error")?,
        "supermemory": row.get::<_, Option<String>>("supermemory")?
            .and_then(|headers| serde_json::from_str::<Value>(&headers).ok()),
        "bytes_in": row.get::<_, i64>("bytes_in")?,
        "bytes_out": row.get::<_, i64>("bytes_out")?,
        "finish_reason": row.get::<_, Option<String>>("finish_reason")?,
        "feedback": row.get::<_, Option<f64>>("score")?.map(|score| json!({
            "score": score,
            "comment": row.get::<_, Option<String>>("comment").ok().flatten(),
        })),
    }))
}

/// Requests over [since, until), newest first, `limit` at a time; `before` is the
/// cursor a previous page returned.
pub fn requests(
    connection: &Connection,
    since_ms: i64,
    until_ms: i64,
    filters: &Filters,
    status: Option<i64>,
    before: Option<&str>,
    limit: usize,
) -> anyhow::Result<(Vec<Value>, Option<String>)> {
    let (mut sql, mut values) = filters.clauses();
    if let Some(status) = status {
        sql.push_str(" AND status = ?");
        values.push(SqlValue::Integer(status));
    }
    // The cursor is the last id of the previous page.
    if let Some(before) = before {
        sql.push_str(" AND id < ?");
        values.push(SqlValue::Text(before.to_owned()));
    }
    let query = format!(
        "SELECT requests.*, feedback.score, feedback.comment FROM requests LEFT JOIN feedback ON feedback.request_id = requests.id
         WHERE id >= ? AND id < ?{sql} ORDER BY id DESC LIMIT ?"
    );
    let mut all = id_range(since_ms, until_ms);
    all.extend(values);
    all.push(SqlValue::Integer(limit as i64 + 1));
    let mut statement = connection.prepare(&query)?;
    let mut rows: Vec<Value> = statement.query_map(params_from_iter(all), request_json)?.collect::<Result<_, _>>()?;
    let next = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows[limit - 1]["id"].as_str().unwrap_or_default().to_owned()
    });
    Ok((rows, next))
}

/// LiteLLM's `/spend/logs` rows.
pub fn spend_logs(
    connection: &Connection,
    since_ms: i64,
    until_ms: i64,
    filters: &Filters,
    request_id: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let (mut sql, mut values) = filters.clauses();
    if let Some(id) = request_id {
        sql.push_str(" AND id = ?");
        values.push(SqlValue::Text(id.to_owned()));
    }
    let query = format!(
        "SELECT id, api, key_id, cost_usd, input_tokens, output_tokens, started_at, latency_ms, model, user_id, project,
            client, deployment, provider, status FROM requests WHERE id >= ? AND id < ?{sql}
         ORDER BY id DESC LIMIT 10000"
    );
    let mut all = id_range(since_ms, until_ms);
    all.extend(values);
    let mut statement = connection.prepare(&query)?;
    let rows = statement.query_map(params_from_iter(all), |row| {
        let started: i64 = row.get(6)?;
        let latency: f64 = row.get(7)?;
        let prompt = row.get::<_, Option<i64>>(4)?.unwrap_or(0);
        let completion = row.get::<_, Option<i64>>(5)?.unwrap_or(0);
        Ok(json!({
            "request_id": row.get::<_, String>(0)?,
            "call_type": row.get::<_, String>(1)?,
            "api_key": row.get::<_, Option<String>>(2)?,
            "spend": row.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
            "total_tokens": prompt + completion,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "startTime": timestamp_of(started),
            "endTime": timestamp_of(started + latency as i64),
            "model": row.get::<_, String>(8)?,
            "user": row.get::<_, String>(9)?,
            "metadata": {
                "project": row.get::<_, Option<String>>(10)?,
                "client": row.get::<_, Option<String>>(11)?,
                "deployment": row.get::<_, Option<String>>(12)?,
                "provider": row.get::<_, Option<String>>(13)?,
                "status": row.get::<_, i64>(14)?,
            },
            "cache_hit": "False",
        }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the request log's rows that started before `cutoff_ms`, a few thousand at
/// a time so the journal's writes never wait long; the hourly rollups stay, so
/// summaries over whole hours keep counting them. Returns how many went.
pub fn forget_requests_before(connection: &Connection, cutoff_ms: i64) -> anyhow::Result<usize> {
    let mut deleted = 0;
    loop {
        // Ids sort by time: the range is the primary key's.
        let batch = connection.execute(
            "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE id < ?1 ORDER BY id LIMIT 5000)",
            [crate::core::ids::first_id_at(cutoff_ms)],
        )?;
        deleted += batch;
        if batch < 5000 {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::analytics::{Record, Usage};
    use crate::services::journal::Journal;
    use crate::storage::Database;

    fn record(index: i64, started_at_ms: i64) -> Record {
        Record {
            id: crate::core::ids::request_id_at(started_at_ms),
            started_at_ms,
            user: ["ana", "bo"][index as usize % 2].to_owned(),
            project: (index % 3 != 0).then(|| format!("p{}", index % 4)),
            client: Some(["codex", "claude-code", "jetbrains"][index as usize % 3].to_owned()),
            key_id: (index % 5 == 0).then(|| "k1".to_owned()),
            model: ["gpt-4o", "claude"][index as usize % 2].to_owned(),
            model_group: None,
            deployment: None,
            provider: None,
            upstream_model: None,
            api: "openai.chat",
            stream: false,
            status: if index % 7 == 0 { 502 } else { 200 },
            error: None,
            attempts: 1 + u32::from(index % 11 == 0),
            fallbacks: 0,
            usage: Some(Usage { input: 100 + index as u64, output: 10, cached: 5, cache_write: 0, reasoning: 0 }),
            tokens_estimated: false,
            cost_usd: (index % 6 != 0).then_some(0.001 * index as f64),
            latency: Duration::from_millis(10 + index as u64 * 3),
            ttft: None,
            upstream: None,
            memories_recalled: 0,
            recalled: None,
            memories_captured: 0,
            memory_error: None,
            supermemory: None,
            bytes_in: 0,
            bytes_out: 0,
            finish_reason: Some(if index % 9 == 0 { "length" } else { "stop" }.to_owned()),
            key_spend: None,
        }
    }

    /// The rollup path (whole hours, log edges) and the log-only path (taken when a
    /// filter is set) must agree for every group, across hour and day boundaries.
    #[tokio::test]
    async fn rollups_agree_with_the_log() {
        let dir = std::env::temp_dir().join(format!("memory-proxy-rollups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let database = Database::open(&dir.join("test.db")).unwrap();
        let writer = Journal::start(&database, 10_000).unwrap();
        let start = 1_795_737_600_000 - 5 * HOUR_MS;
        for index in 0..400 {
            // Every 4.5 minutes across 30 hours, spanning two midnights.
            writer.record(record(index, start + index * 270_000 + 17));
        }
        writer.flush().await;
        let connection = database.connect().unwrap();
        let (since, until) = (start + 1_234_567, start + 29 * HOUR_MS + 999);
        for (group_by, filter) in [
            (
                GroupBy::User,
                (|g: &str| Filters { user: Some(g.to_owned()), ..Filters::default() }) as fn(&str) -> Filters,
            ),
            (GroupBy::Project, |g: &str| Filters { project: Some(g.to_owned()), ..Filters::default() }),
            (GroupBy::Model, |g: &str| Filters { model: Some(g.to_owned()), ..Filters::default() }),
            (GroupBy::Client, |g: &str| Filters { client: Some(g.to_owned()), ..Filters::default() }),
            (GroupBy::Key, |g: &str| Filters { key_id: Some(g.to_owned()), ..Filters::default() }),
        ] {
            let groups = summary(&connection, group_by, since, until, &Filters::default()).unwrap();
            assert!(groups.len() >= 2, "{group_by:?}");
            let mut total = 0;
            for group in &groups {
                let from_log = summary(&connection, group_by, since, until, &filter(&group.group)).unwrap();
                assert_eq!(from_log.len(), 1, "{group_by:?} {}", group.group);
                let from_log = &from_log[0];
                assert_eq!(group.requests, from_log.requests, "{group_by:?} {}", group.group);
                assert_eq!(
                    (group.errors, group.truncated, group.retried, group.unpriced_requests),
                    (from_log.errors, from_log.truncated, from_log.retried, from_log.unpriced_requests)
                );
                assert_eq!((group.input_tokens, group.cached_tokens), (from_log.input_tokens, from_log.cached_tokens));
                assert!((group.cost_usd - from_log.cost_usd).abs() < 1e-9);
                assert!((group.latency_ms_mean - from_log.latency_ms_mean).abs() < 1e-6);
                assert_eq!(group.latency_ms_p95, from_log.latency_ms_p95);
                total += group.requests;
            }
            let in_range = (0..400).filter(|i| (since..until).contains(&(start + i * 270_000 + 17))).count();
            assert_eq!(total, in_range as i64, "{group_by:?}");
        }
        let days = summary(&connection, GroupBy::Day, since, until, &Filters::default()).unwrap();
        assert_eq!(days.iter().map(|d| d.group.as_str()).collect::<Vec<_>>(), ["2026-11-26", "2026-11-27"]);
        for day in &days {
            let midnight = parse_time(&day.group, 0).unwrap();
            let expected = (0..400)
                .map(|i| start + i * 270_000 + 17)
                .filter(|t| (since..until).contains(t) && (midnight..midnight + 86_400_000).contains(t))
                .count();
            assert_eq!(day.requests, expected as i64, "{}", day.group);
        }
        writer.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_old_log_goes_and_its_rollups_stay() {
        let dir = std::env::temp_dir().join(format!("memory-proxy-log-retention-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let database = Database::open(&dir.join("test.db")).unwrap();
        let writer = Journal::start(&database, 10_000).unwrap();
        let start = 1_795_737_600_000;
        for index in 0..100 {
            writer.record(record(index, start + index * 60_000));
        }
        writer.flush().await;
        let connection = database.connect().unwrap();
        let whole_hours = |c: &Connection| {
            summary(c, GroupBy::Model, start, start + 2 * HOUR_MS, &Filters::default())
                .unwrap()
                .iter()
                .map(|g| g.requests)
                .sum::<i64>()
        };
        assert_eq!(whole_hours(&connection), 100);
        assert_eq!(forget_requests_before(&connection, start + 60 * 60_000).unwrap(), 60);
        let left: i64 = connection.query_row("SELECT COUNT(*) FROM requests", [], |row| row.get(0)).unwrap();
        assert_eq!(left, 40, "the first hour's log is gone");
        assert_eq!(whole_hours(&connection), 100, "its rollups still count it");
        writer.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(date_of(1_795_737_600_000), "2026-11-27");
        for days in [-1000, 0, 59, 60, 365, 11_016, 20_419, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(timestamp_of(1_795_737_600_000 + 3_723_000), "2026-11-27T01:02:03Z");
    }

    #[test]
    fn times_in_queries() {
        let now = 1_795_737_600_000;
        assert_eq!(parse_time("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_time("2026-11-27", now).unwrap(), 1_795_737_600_000);
        assert_eq!(parse_time("1795737600", now).unwrap(), 1_795_737_600_000);
        assert_eq!(parse_time("1795737600123", now).unwrap(), 1_795_737_600_123);
        assert_eq!(parse_time("2026-11-27T01:02:03Z", now).unwrap(), 1_795_737_600_000 + 3_723_000);
        for bad in ["yesterday", "2026-11-27 garbage", "2026-13-01", "2026-11-27T25:00:00Z", "-5", "99999999999y"] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
