//! Numbers as LiteLLM's YAML loader reads them. LiteLLM parses config.yaml with PyYAML,
//! which follows YAML 1.1: `20_000` is the integer 20000. serde_yaml follows YAML 1.2,
//! where it is a string, so a config that works under LiteLLM would fail here on
//! `tpm: 20_000`. This pass gives such strings the value PyYAML gives them before the
//! config is read. Only values of the numeric keys are read so: serde_yaml does not
//! say whether a scalar was quoted, and a quoted `api_key: "1234_5678"` must stay the
//! string it is. (YAML 1.1's `yes`/`off` booleans are left as strings: the Norway
//! problem would turn a plugin named `off` into `false`, and `true`/`false` already
//! read the same in both.)

use serde_yaml::{Number, Value};

/// The keys whose values are numbers, wherever they are in the config.
const NUMERIC_KEYS: &[&str] = &[
    "rpm",
    "tpm",
    "max_parallel_requests",
    "timeout",
    "stream_timeout",
    "request_timeout",
    "max_retries",
    "num_retries",
    "weight",
    "max_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "max_request_size_mb",
    "analytics_queue_size",
    "recall_limit",
    "token_budget",
    "max_memories",
    "max_age_days",
    "timeout_ms",
    "memory_mb",
    "max_failures",
];

/// Rewrites, in place, every value of a numeric key that PyYAML would read as a
/// grouped number.
pub fn normalize(value: &mut Value) {
    match value {
        Value::Sequence(items) => items.iter_mut().for_each(normalize),
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let numeric = key.as_str().is_some_and(|key| NUMERIC_KEYS.contains(&key));
                match item {
                    Value::String(text) if numeric => {
                        if let Some(number) = yaml11_number(text) {
                            *item = number;
                        }
                    }
                    _ => normalize(item),
                }
            }
        }
        Value::Tagged(tagged) => normalize(&mut tagged.value),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// The YAML 1.1 reading of `text` when it is a grouped number.
fn yaml11_number(text: &str) -> Option<Value> {
    // Digits grouped with underscores: `20_000`, `1_000.5`, `-3_600`.
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let grouped = unsigned.contains('_')
        && unsigned.starts_with(|c: char| c.is_ascii_digit())
        && unsigned.chars().all(|c| c.is_ascii_digit() || c == '_' || c == '.')
        && unsigned.matches('.').count() <= 1;
    if !grouped {
        return None;
    }
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    if digits.contains('.') {
        return digits.parse::<f64>().ok().map(|f| Value::Number(Number::from(f)));
    }
    match digits.parse::<i64>() {
        Ok(int) => Some(Value::Number(Number::from(int))),
        Err(_) => digits.parse::<u64>().ok().map(|int| Value::Number(Number::from(int))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscored_numbers_read_as_litellm_reads_them() {
        let mut value: Value = serde_yaml::from_str(
            "model_list:\n  - litellm_params: {tpm: 20_000, weight: 1_000.5, timeout: -3_600, rpm: 1_2.3.4, api_key: '1234_5678'}\nname: 2_0\nlist: [off]\n",
        )
        .unwrap();
        normalize(&mut value);
        let params = &value["model_list"][0]["litellm_params"];
        assert_eq!(params["tpm"], Value::Number(20_000.into()));
        assert_eq!(params["weight"], Value::Number(1_000.5.into()));
        assert_eq!(params["timeout"], Value::Number((-3_600).into()));
        assert_eq!(params["rpm"], "1_2.3.4", "not a number: the type error names it");
        assert_eq!(params["api_key"], "1234_5678", "a string key stays a string");
        assert_eq!(value["name"], "2_0", "only numeric keys");
        assert_eq!(value["list"][0], "off", "a name, not YAML 1.1's false");
    }
}
