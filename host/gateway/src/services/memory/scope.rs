//! Whose memories: a user, in a project or in none. Scopes never mix. One type, with
//! each form a backend needs: the local store's index token, Supermemory's
//! `containerTag`, and a readable path for people.

use sha2::{Digest, Sha256};

use crate::core::identity::Identity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub user: String,
    pub project: Option<String>,
}

impl Scope {
    pub fn of(identity: &Identity) -> Self {
        Self { user: identity.user.value.clone(), project: identity.project().map(str::to_owned) }
    }

    /// The scope as one search term: `s` and 24 hex digits of a SHA-256 over user and
    /// project, so any user or project name fits the full-text index's word rules.
    pub fn token(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.user.as_bytes());
        // The separator keeps ("ab", "c") apart from ("a", "bc"); a scope without a
        // project differs from one with an empty project.
        if let Some(project) = &self.project {
            hasher.update([0]);
            hasher.update(project.as_bytes());
        }
        format!("s{}", hex(&hasher.finalize()[..12]))
    }

    /// The Supermemory `containerTag`. Tags allow only `[a-zA-Z0-9_:-]` and 100
    /// characters, so the user is sanitised and the project (a path) becomes its folder
    /// name plus a short hash of the whole path, which keeps two `app` folders apart.
    pub fn container_tag(&self) -> String {
        fn clean(text: &str, max: usize) -> String {
            text.chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                .take(max)
                .collect()
        }
        let user = clean(&self.user, 40);
        match &self.project {
            Some(project) => {
                let hash = hex(&Sha256::digest(project.as_bytes())[..6]);
                let folder = project.trim_end_matches('/').rsplit('/').next().unwrap_or(project);
                format!("mp:u:{user}:p:{}-{hash}", clean(folder, 32))
            }
            None => format!("mp:u:{user}"),
        }
    }

    /// The scope as a readable path: `user/<user>` or `user/<user>/project/<project>`.
    pub fn path(&self) -> String {
        match &self.project {
            Some(project) => format!("user/{}/project/{project}", self.user),
            None => format!("user/{}", self.user),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(user: &str, project: Option<&str>) -> Scope {
        Scope { user: user.into(), project: project.map(Into::into) }
    }

    #[test]
    fn scope_tokens_tell_scopes_apart() {
        let tokens = [
            scope("ab", Some("c")).token(),
            scope("a", Some("bc")).token(),
            scope("ab", None).token(),
            scope("ab", Some("")).token(),
        ];
        for (i, a) in tokens.iter().enumerate() {
            assert!(a.len() == 25 && a.starts_with('s') && a[1..].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
            assert!(tokens[i + 1..].iter().all(|b| a != b), "{tokens:?}");
        }
    }

    #[test]
    fn container_tags_fit_supermemory_rules() {
        assert_eq!(scope("pycharm-ai", None).container_tag(), "mp:u:pycharm-ai");
        let a = scope("ana@example.com", Some("/home/ana/app")).container_tag();
        let b = scope("ana@example.com", Some("/srv/app")).container_tag();
        assert!(a.starts_with("mp:u:ana_example_com:p:app-"), "{a}");
        assert_ne!(a, b, "same folder name, different paths");
        let long = scope(&"u".repeat(300), Some(&format!("/{}", "p".repeat(300)))).container_tag();
        assert!(long.len() <= 100, "{}", long.len());
        for tag in [a, b, long] {
            assert!(tag.chars().all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c)), "{tag}");
        }
    }

    #[test]
    fn paths_read_as_user_and_project() {
        assert_eq!(scope("ana", None).path(), "user/ana");
        assert_eq!(scope("ana", Some("/srv/app")).path(), "user/ana/project//srv/app");
    }
}
