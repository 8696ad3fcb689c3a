//! LiteLLM's `os.environ/VAR`: any string value of that form is replaced by the
//! variable's value before the config is parsed.

use serde_yaml::Value;

const PREFIX: &str = "os.environ/";

/// A reference to an environment variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVar {
    /// Where in the config, e.g. `model_list[0].litellm_params.api_key`.
    pub path: String,
    pub var: String,
}

/// Replaces every `os.environ/VAR` string in `value` with the variable's value and
/// returns the references that could not be resolved (left as empty strings).
pub fn resolve(value: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<MissingVar> {
    let mut missing = Vec::new();
    walk(value, &mut String::new(), lookup, &mut missing);
    missing
}

fn walk(value: &mut Value, path: &mut String, lookup: &dyn Fn(&str) -> Option<String>, missing: &mut Vec<MissingVar>) {
    match value {
        Value::String(text) => {
            if let Some(var) = text.strip_prefix(PREFIX) {
                let var = var.trim().to_owned();
                match lookup(&var) {
                    Some(resolved) => *text = resolved,
                    None => {
                        missing.push(MissingVar { path: path.clone(), var });
                        text.clear();
                    }
                }
            }
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                walk(item, path, lookup, missing);
                path.truncate(len);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                match key {
                    Value::String(key) => path.push_str(key),
                    other => path.push_str(serde_yaml::to_string(other).unwrap_or_default().trim()),
                }
                walk(item, path, lookup, missing);
                path.truncate(len);
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, lookup, missing),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_set_variables_and_reports_missing_ones_with_their_path() {
        let mut value: Value = serde_yaml::from_str(
            "model_list:\n  - litellm_params:\n      api_key: os.environ/SET\n  - litellm_params:\n      api_key: os.environ/UNSET\nplain: text\n",
        )
        .unwrap();
        let lookup = |var: &str| (var == "SET").then(|| "secret".to_owned());
        let missing = resolve(&mut value, &lookup);
        assert_eq!(value["model_list"][0]["litellm_params"]["api_key"], "secret");
        assert_eq!(value["plain"], "text");
        assert_eq!(
            missing,
            vec![MissingVar { path: "model_list[1].litellm_params.api_key".into(), var: "UNSET".into() }]
        );
    }
}
