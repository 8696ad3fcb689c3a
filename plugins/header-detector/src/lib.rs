//! The seed's memory routing (`user_id_mappings`) as a detector: a custom header names
//! the user outright; else the first matching header pattern does; else the default
//! user. It also names well-known clients from their user agent.
//!
//! The host feeds `user_id_mappings` from config.yaml in as this plugin's config.

use memory_proxy_sdk::detector::{Detector, Identity, Request};
use regex::Regex;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    custom_header: String,
    header_patterns: Vec<UserRule>,
    default_user_id: Option<String>,
    /// Client names by header pattern; the built-in table applies after these.
    clients: Vec<ClientRule>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            custom_header: "x-memory-user-id".into(),
            header_patterns: Vec::new(),
            default_user_id: None,
            clients: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
struct UserRule {
    header: String,
    pattern: String,
    user_id: String,
}

#[derive(Deserialize)]
struct ClientRule {
    header: String,
    pattern: String,
    client: String,
}

/// Clients recognised by their user agent when no configured rule matched.
const KNOWN_CLIENTS: &[(&str, &str)] = &[
    ("^claude-cli/", "claude-code"),
    ("^claude-vscode", "claude-code"),
    ("^codex_", "codex"),
    ("OpenAIClientImpl/Java", "jetbrains"),
    ("^OpenAI/Python", "openai-python"),
    ("^OpenAI/JS", "openai-js"),
    ("^Anthropic/Python", "anthropic-python"),
    ("^Anthropic/JS", "anthropic-js"),
    ("^curl/", "curl"),
    ("^aider", "aider"),
];

struct Compiled {
    header: String,
    pattern: Regex,
    value: String,
}

struct HeaderDetector {
    custom_header: String,
    users: Vec<Compiled>,
    clients: Vec<Compiled>,
    default_user: Option<String>,
}

/// The first rule whose header matches its pattern.
fn first_match<'r>(rules: &'r [Compiled], request: &Request) -> Option<&'r Compiled> {
    rules.iter().find(|rule| request.header(&rule.header).is_some_and(|value| rule.pattern.is_match(value)))
}

fn compile(header: &str, pattern: &str, value: &str, what: &str) -> Result<Compiled, String> {
    let pattern = Regex::new(pattern).map_err(|e| format!("{what} pattern `{pattern}`: {e}"))?;
    Ok(Compiled { header: header.to_ascii_lowercase(), pattern, value: value.to_owned() })
}

impl Detector for HeaderDetector {
    fn new() -> Result<Self, String> {
        let config: Config = memory_proxy_sdk::host::config()?;
        let users = config
            .header_patterns
            .iter()
            .map(|r| compile(&r.header, &r.pattern, &r.user_id, "header_patterns"))
            .collect::<Result<_, _>>()?;
        let configured = config.clients.iter().map(|r| compile(&r.header, &r.pattern, &r.client, "clients"));
        let known = KNOWN_CLIENTS.iter().map(|(pattern, client)| compile("user-agent", pattern, client, "built-in"));
        Ok(Self {
            custom_header: config.custom_header.to_ascii_lowercase(),
            users,
            clients: configured.chain(known).collect::<Result<_, _>>()?,
            default_user: config.default_user_id,
        })
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        let mut reasons = Vec::new();
        let user = if let Some(user) = request.header(&self.custom_header).map(str::trim).filter(|u| !u.is_empty()) {
            reasons.push(format!("user from header {}", self.custom_header));
            Some(user.to_owned())
        } else if let Some(rule) = first_match(&self.users, request) {
            reasons.push(format!("user from {} matching `{}`", rule.header, rule.pattern.as_str()));
            Some(rule.value.clone())
        } else if let Some(default) = &self.default_user {
            reasons.push("default_user_id".to_owned());
            Some(default.clone())
        } else {
            None
        };
        let client = first_match(&self.clients, request).map(|rule| {
            reasons.push(format!("client from {} matching `{}`", rule.header, rule.pattern.as_str()));
            rule.value.clone()
        });
        Ok(Identity { user, client, ..Identity::because(reasons.join("; ")) })
    }
}

memory_proxy_sdk::register_detector!(HeaderDetector);
