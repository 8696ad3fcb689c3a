//! Numbers as LiteLLM's YAML loader reads them. LiteLLM parses config.yaml with PyYAML,
//! which follows YAML 1.1: `20_000` is the integer 20000. serde_yaml follows YAML 1.2,
//! where it is a string, so a config that works under LiteLLM would fail here on
//! `tpm: 20_000`. This pass gives such strings the value PyYAML gives them before the
//! config is read. (YAML 1.1's `yes`/`off` booleans are left as strings: the Norway
//! problem would turn a plugin named `off` into `false`, and `true`/`false` already
//! read the same in both.)

use serde_yaml::{Number, Value};

/// Rewrites, in place, every string value PyYAML would read as a grouped number.
pub fn normalize(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(scalar) = yaml11_scalar(text) {
                *value = scalar;
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(normalize),
        Value::Mapping(map) => map.iter_mut().for_each(|(_, item)| normalize(item)),
        Value::Tagged(tagged) => normalize(&mut tagged.value),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The YAML 1.1 reading of `text` when it is a grouped number.
fn yaml11_scalar(text: &str) -> Option<Value> {
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
            "tpm: 20_000\nweight: 1_000.5\ndelta: -3_600\nname: gpt_4o\nkey: sk_1_2x\nversion: '2024-06-01'\nlist: [off, 1_0]\nodd: 1_2.3.4\n",
        )
        .unwrap();
        normalize(&mut value);
        assert_eq!(value["tpm"], Value::Number(20_000.into()));
        assert_eq!(value["weight"], Value::Number(1_000.5.into()));
        assert_eq!(value["delta"], Value::Number((-3_600).into()));
        assert_eq!(value["name"], "gpt_4o", "not a number");
        assert_eq!(value["key"], "sk_1_2x");
        assert_eq!(value["version"], "2024-06-01");
        assert_eq!(value["list"][0], "off", "a name, not YAML 1.1's false");
        assert_eq!(value["list"][1], Value::Number(10.into()));
        assert_eq!(value["odd"], "1_2.3.4");
    }
}
