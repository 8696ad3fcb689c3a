//! A deployment's default request parameters (`litellm_params.temperature`,
//! `max_tokens`, `thinking`, ...), as LiteLLM applies them: sent with every request,
//! the client's own value winning. They are written in LiteLLM's (OpenAI's) names and
//! put into the client's API before adaptation, so translation and `drop_params` treat
//! them as if the client had sent them.

use serde_json::{Map, Value, json};

use crate::core::api::ClientApi;
use crate::core::body::JsonBody;

/// OpenAI chat parameters that mean nothing in Anthropic's or the Responses API: a
/// default for them stays with OpenAI-speaking clients.
const OPENAI_CHAT_ONLY: &[&str] = &[
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "n",
    "parallel_tool_calls",
    "presence_penalty",
    "response_format",
    "seed",
    "tool_choice",
    "top_logprobs",
    "user",
];

/// The defaults to add to `body` of a client speaking `api`: field name and raw JSON,
/// each only where the client set neither it nor its equivalent.
pub fn for_client(api: ClientApi, defaults: &Map<String, Value>, body: &JsonBody) -> Vec<(String, String)> {
    if defaults.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(defaults.len());
    for (key, value) in defaults {
        let Some((field, value)) = in_client_api(api, key, value) else { continue };
        let set_by_client = equivalents(api, &field).iter().any(|f| body.contains(f)) || body.contains(&field);
        if !set_by_client && !out.iter().any(|(k, _)| *k == field) {
            out.push((field, value.to_string()));
        }
    }
    out
}

/// One default in the client's API, or None when that API has no place for it.
fn in_client_api(api: ClientApi, key: &str, value: &Value) -> Option<(String, Value)> {
    let same = || Some((key.to_owned(), value.clone()));
    match api {
        ClientApi::OpenAiChat | ClientApi::OpenAiEmbeddings => same(),
        ClientApi::AnthropicMessages => match key {
            "max_tokens" | "max_completion_tokens" => Some(("max_tokens".into(), value.clone())),
            "stop" => Some(("stop_sequences".into(), stop_list(value))),
            "reasoning_effort" => thinking_budget(value).map(|budget| ("thinking".into(), budget)),
            _ if OPENAI_CHAT_ONLY.contains(&key) => None,
            _ => same(),
        },
        ClientApi::OpenAiResponses => match key {
            "max_tokens" | "max_completion_tokens" => Some(("max_output_tokens".into(), value.clone())),
            "reasoning_effort" => Some(("reasoning".into(), json!({ "effort": value }))),
            "stop" => None,
            _ if OPENAI_CHAT_ONLY.contains(&key) => None,
            _ => same(),
        },
        // Counting tokens takes no generation parameters but thinking.
        ClientApi::AnthropicCountTokens => match key {
            "thinking" => same(),
            _ => None,
        },
    }
}

/// Fields of the client's API that set what `field` sets.
fn equivalents(api: ClientApi, field: &str) -> &'static [&'static str] {
    match (api, field) {
        (ClientApi::OpenAiChat, "max_tokens") => &["max_completion_tokens"],
        (ClientApi::OpenAiChat, "max_completion_tokens") => &["max_tokens"],
        (ClientApi::OpenAiChat, "reasoning_effort") => &["thinking"],
        (ClientApi::OpenAiChat, "thinking") => &["reasoning_effort"],
        _ => &[],
    }
}

fn stop_list(value: &Value) -> Value {
    match value {
        Value::String(s) => json!([s]),
        other => other.clone(),
    }
}

/// LiteLLM's mapping of `reasoning_effort` to Anthropic's thinking budget.
fn thinking_budget(effort: &Value) -> Option<Value> {
    let budget = match effort.as_str()? {
        "minimal" | "low" => 1024,
        "medium" => 2048,
        "high" => 4096,
        _ => return None,
    };
    Some(json!({ "type": "enabled", "budget_tokens": budget }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_clients_value_wins_and_its_equivalent_counts() {
        let defaults = defaults(json!({"temperature": 0.2, "max_tokens": 100, "top_k": 5}));
        let body = JsonBody::parse(br#"{"model":"m","temperature":0.9,"max_completion_tokens":7}"#).unwrap();
        assert_eq!(for_client(ClientApi::OpenAiChat, &defaults, &body), vec![("top_k".to_owned(), "5".to_owned())]);
    }

    #[test]
    fn defaults_take_the_names_of_the_clients_api() {
        let defaults =
            defaults(json!({"max_tokens": 100, "stop": "END", "reasoning_effort": "high", "seed": 3, "top_k": 2}));
        let body = JsonBody::parse(br#"{"model":"m"}"#).unwrap();
        let anthropic = for_client(ClientApi::AnthropicMessages, &defaults, &body);
        assert_eq!(
            anthropic,
            vec![
                ("max_tokens".to_owned(), "100".to_owned()),
                ("stop_sequences".to_owned(), r#"["END"]"#.to_owned()),
                ("thinking".to_owned(), r#"{"type":"enabled","budget_tokens":4096}"#.to_owned()),
                ("top_k".to_owned(), "2".to_owned()),
            ]
        );
        let responses = for_client(ClientApi::OpenAiResponses, &defaults, &body);
        assert_eq!(
            responses,
            vec![
                ("max_output_tokens".to_owned(), "100".to_owned()),
                ("reasoning".to_owned(), r#"{"effort":"high"}"#.to_owned()),
                ("top_k".to_owned(), "2".to_owned()),
            ]
        );
    }

    #[test]
    fn an_anthropic_clients_thinking_wins_over_a_reasoning_effort_default() {
        let defaults = defaults(json!({"reasoning_effort": "low"}));
        let body = JsonBody::parse(br#"{"model":"m","thinking":{"type":"disabled"}}"#).unwrap();
        assert!(for_client(ClientApi::AnthropicMessages, &defaults, &body).is_empty());
    }
}
