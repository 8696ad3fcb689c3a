//! Secrets never become memories: provider API keys, bearer tokens, private-key
//! blocks, passwords in URLs and `.env`-style assignments are replaced before anything
//! is stored. A memory is recalled into later prompts, possibly another client's, and
//! kept for good: a key pasted into a chat must not travel with it.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What a secret is replaced by.
pub const REDACTED: &str = "[REDACTED]";

struct Rule {
    pattern: Regex,
    /// The replacement, `$1` being what the secret's label keeps.
    replacement: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule = |pattern: &str, replacement: &'static str| Rule {
        // The patterns are constants, tested below: building them cannot fail.
        pattern: Regex::new(pattern).unwrap_or_else(|e| unreachable!("redaction pattern {pattern}: {e}")),
        replacement,
    };
    vec![
        // A PEM private key, whole, or as much of it as a cut-off text holds.
        rule(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[A-Za-z0-9+/=\s]*(?:-----END [A-Z ]*PRIVATE KEY-----)?", REDACTED),
        // user:password@ in a URL: the user stays.
        rule(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@", "$1:[REDACTED]@"),
        // NAME_KEY=value, PASSWORD: value (shell, .env, YAML): the name stays.
        rule(
            r#"\b((?:export\s+)?[A-Z0-9_]*(?:KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?)[A-Z0-9_]*\s*[=:]\s*)("[^"\n]*"|'[^'\n]*'|[^\s"']+)"#,
            "$1[REDACTED]",
        ),
        rule(r#"(?i)\b((?:password|passwd|pwd)\s*[=:]\s*)("[^"\n]*"|'[^'\n]*'|[^\s"']+)"#, "$1[REDACTED]"),
        // Authorization: Bearer <token>.
        rule(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{12,}", "$1[REDACTED]"),
        // Keys by their providers' formats: OpenAI, Anthropic and ours (sk-...), AWS
        // access keys, GitHub, GitLab, Google, Slack, Stripe, Hugging Face, Groq, xAI,
        // and JSON web tokens.
        rule(
            r"\b(?:sk-[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|glpat-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35}|xox[abprs]-[A-Za-z0-9-]{10,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{30,}|gsk_[A-Za-z0-9]{30,}|xai-[A-Za-z0-9]{30,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
            REDACTED,
        ),
    ]
});

/// `text` with every secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if let Cow::Owned(replaced) = rule.pattern.replace_all(&text, rule.replacement) {
            text = Cow::Owned(replaced);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_secret_is_replaced() {
        let secrets = [
            ("openai key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z here", "sk-proj-Ab3d"),
            ("anthropic sk-ant-api03-Zy9xW8vU7tS6rQ5pO4nM3lK2 there", "sk-ant-api03"),
            ("aws AKIAIOSFODNN7EXAMPLE and more", "AKIAIOSFODNN7EXAMPLE"),
            ("gh token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "ghp_aBcD"),
            ("google AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "AIzaSyA1b2"),
            ("slack xoxb-123456789012-abcdefghij", "xoxb-1234"),
            ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC3"),
            ("curl -H 'Authorization: Bearer abc.def-ghi_jkl123456'", "abc.def-ghi"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNz"),
            ("cut off: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PR", "MIIEowIB"),
            ("connect to postgres://app:hunter2pass@db.internal/prod", "hunter2pass"),
            ("DATABASE_PASSWORD=correct-horse-battery", "correct-horse"),
            ("export STRIPE_API_KEY='abc def'", "abc def"),
            ("the password: tr0ub4dor is old", "tr0ub4dor"),
            ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "dozjgNryP4"),
        ];
        for (text, secret) in secrets {
            let redacted = redact(text);
            assert!(!redacted.contains(secret), "{text} -> {redacted}");
            assert!(redacted.contains(REDACTED), "{text} -> {redacted}");
        }
        let url = redact("postgres://app:hunter2pass@db.internal/prod");
        assert_eq!(url, "postgres://app:[REDACTED]@db.internal/prod", "the user and host stay");
        assert_eq!(redact("DB_TOKEN=x1"), "DB_TOKEN=[REDACTED]");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "Our staging database is called heron",
            "The monkey key is under the mat; tokens of appreciation",
            "see https://example.com/docs and task-1234",
            "sk-short",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
