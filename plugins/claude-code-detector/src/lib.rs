//! Claude Code: the client from its user agent (`claude-cli/<version> (external, cli)`,
//! also `claude-vscode`) or its session header; the project from the working directory
//! its system prompt states. Prompt forms differ between versions:
//!
//! - v2.0: an `<env>` block with `Working directory: /path`;
//! - v2.1: a `# Environment` section with `- Primary working directory: /path`.
//!
//! Some versions state no directory: then the project seen before with the same
//! `X-Claude-Code-Session-Id` applies (kept in the plugin's key-value store).
//!
//! It also names the tags Claude Code wraps around the user's words, so the host
//! recalls for and remembers what the user typed, not the reminders around it.

use memory_proxy_sdk::detector::{Detector, Identity, Request};
use memory_proxy_sdk::host::kv;

const SESSION_HEADER: &str = "x-claude-code-session-id";
/// What Claude Code puts around the user's words in user messages: reminders (agent
/// types, skills, the date, CLAUDE.md), and a slash command's name, message and output.
/// A command's arguments (`<command-args>`) are the user's own.
const SCAFFOLDING: [&str; 5] =
    ["system-reminder", "command-name", "command-message", "local-command-stdout", "local-command-stderr"];
const DIRECTORY_LABELS: [&str; 2] = ["Primary working directory:", "Working directory:"];

struct ClaudeCodeDetector;

/// The path after the first directory label in `text`, if any.
fn working_directory(text: &str) -> Option<&str> {
    DIRECTORY_LABELS.iter().find_map(|label| {
        let start = text.find(label)? + label.len();
        let path = text[start..].trim_start_matches([' ', '\t']).split(['\n', '\r', ' ', '\t', '<']).next()?;
        (!path.is_empty()).then_some(path)
    })
}

fn is_claude_code(request: &Request) -> bool {
    let agent = request.header("user-agent").unwrap_or_default();
    agent.starts_with("claude-cli/") || agent.starts_with("claude-vscode") || request.header(SESSION_HEADER).is_some()
}

impl Detector for ClaudeCodeDetector {
    fn new() -> Result<Self, String> {
        Ok(Self)
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        if !is_claude_code(request) {
            return Ok(Identity::because("not Claude Code"));
        }
        let session = request.header(SESSION_HEADER).filter(|s| !s.is_empty());
        let stated = working_directory(&request.system_excerpt).or_else(|| working_directory(&request.user_excerpt));
        let (project, reason) = match (stated, session) {
            (Some(path), Some(session)) => {
                kv::set(&format!("session:{session}"), path);
                (Some(path.to_owned()), "Claude Code; project from the working directory in its prompt")
            }
            (Some(path), None) => {
                (Some(path.to_owned()), "Claude Code; project from the working directory in its prompt")
            }
            (None, Some(session)) => match kv::get(&format!("session:{session}")) {
                Some(path) => (Some(path), "Claude Code; project seen before in this session"),
                None => (None, "Claude Code; no working directory in the prompt or the session"),
            },
            (None, None) => (None, "Claude Code; no working directory in the prompt"),
        };
        let identity =
            Identity { user: None, project, client: Some("claude-code".into()), ..Identity::because(reason) };
        Ok(identity.wrapped_in(&SCAFFOLDING))
    }
}

memory_proxy_sdk::register_detector!(ClaudeCodeDetector);

#[cfg(test)]
mod tests {
    use super::working_directory;

    #[test]
    fn finds_both_prompt_forms() {
        let v20 = "<env>\nWorking directory: /home/ana/shop\nIs directory a git repo: Yes\n</env>";
        let v21 = "# Environment\nYou have been invoked in the following environment: \n - Primary working directory: /srv/app\n - Is a git repository: true";
        assert_eq!(working_directory(v20), Some("/home/ana/shop"));
        assert_eq!(working_directory(v21), Some("/srv/app"));
        assert_eq!(working_directory("Working directory:</env>"), None);
        assert_eq!(working_directory("nothing here"), None);
    }
}
