//! Clocks and durations: Unix times as the databank and the keys store them, and
//! LiteLLM's duration strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// LiteLLM's durations: `30s`, `15m`, `12h`, `30d`, `2w`, `1mo` (30 days).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 30d, 12h or 1mo"))?;
    let unit_secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        _ => return Err(format!("`{text}` is not a duration like 30d, 12h or 1mo")),
    };
    if number == 0 {
        return Err(format!("`{text}` is not a positive duration"));
    }
    // A century is plenty, and keeps every later sum of times far from overflowing.
    const MAX_SECS: u64 = 100 * 365 * 86_400;
    match number.checked_mul(unit_secs) {
        Some(secs) if secs <= MAX_SECS => Ok(Duration::from_secs(secs)),
        _ => Err(format!("`{text}` is longer than 100 years")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_litellm_writes_them() {
        assert_eq!(parse_duration("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_duration("1mo").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_duration("soon").is_err() && parse_duration("0d").is_err() && parse_duration("5y").is_err());
    }
}
