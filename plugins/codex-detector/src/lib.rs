//! Codex CLI: the client from its user agent (`codex_cli_rs/...`, `codex_exec/...`) or
//! its `originator` header; the project from the `<cwd>` of the environment context it
//! puts in the conversation, or else from the `workspaces` of its
//! `x-codex-turn-metadata` header. It names the tags Codex wraps its context in, so
//! the host takes the user's words alone.

use memory_proxy_sdk::detector::{Detector, Identity, Request};

/// What Codex puts in user messages besides the user's words: its environment
/// context (working directory, shell, date) and AGENTS.md. Its own instructions come as
/// developer messages, never taken for the user's.
const SCAFFOLDING: [&str; 2] = ["environment_context", "user_instructions"];

struct CodexDetector;

fn is_codex(request: &Request) -> bool {
    request.header("user-agent").is_some_and(|a| a.starts_with("codex_"))
        || request.header("originator").is_some_and(|o| o.starts_with("codex_"))
}

/// The text between `<cwd>` and `</cwd>`.
fn cwd(text: &str) -> Option<&str> {
    let start = text.find("<cwd>")? + "<cwd>".len();
    let end = start + text[start..].find("</cwd>")?;
    let path = text[start..end].trim();
    (!path.is_empty()).then_some(path)
}

/// The first workspace root named in the turn metadata header (a JSON object whose
/// `workspaces` maps each root to its state).
fn metadata_workspace(header: &str) -> Option<String> {
    let metadata: serde_json::Value = serde_json::from_str(header).ok()?;
    metadata.get("workspaces")?.as_object()?.keys().next().cloned()
}

impl Detector for CodexDetector {
    fn new() -> Result<Self, String> {
        Ok(Self)
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        if !is_codex(request) {
            return Ok(Identity::because("not Codex"));
        }
        let stated = cwd(&request.user_excerpt).or_else(|| cwd(&request.system_excerpt)).map(str::to_owned);
        let (project, reason) = match stated {
            Some(path) => (Some(path), "Codex; project from <cwd> in its environment context"),
            None => match request.header("x-codex-turn-metadata").and_then(metadata_workspace) {
                Some(path) => (Some(path), "Codex; project from the workspaces of x-codex-turn-metadata"),
                None => (None, "Codex; no working directory stated"),
            },
        };
        let identity = Identity { user: None, project, client: Some("codex".into()), ..Identity::because(reason) };
        Ok(identity.wrapped_in(&SCAFFOLDING))
    }
}

memory_proxy_sdk::register_detector!(CodexDetector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cwd_and_metadata() {
        assert_eq!(cwd("<environment_context>\n  <cwd>/srv/x</cwd>\n"), Some("/srv/x"));
        assert_eq!(cwd("<cwd></cwd>"), None);
        assert_eq!(metadata_workspace(r#"{"workspaces":{"/a/b":{"has_changes":true}}}"#).as_deref(), Some("/a/b"));
        assert_eq!(metadata_workspace("not json"), None);
    }
}
