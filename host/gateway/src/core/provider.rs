//! Providers we reach and how: which API they speak on the wire, where they live by
//! default, how they take a key. LiteLLM names them by the prefix of `model`
//! (`anthropic/claude-...`) or by `custom_llm_provider`.

/// The API an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI chat completions (and embeddings): OpenAI, Gemini's OpenAI endpoint,
    /// Ollama, vLLM, llama.cpp and the other OpenAI-compatible servers.
    OpenAiChat,
    /// Anthropic messages.
    AnthropicMessages,
}

/// How the upstream takes its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>`
    Bearer,
    /// `x-api-key: <key>`
    XApiKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provider {
    pub name: &'static str,
    pub wire: Wire,
    pub key_header: KeyHeader,
    /// Where the provider lives when `api_base` is not given (None: it must be).
    pub default_base: Option<&'static str>,
    /// The environment variable read for the key when `api_key` is not given (as
    /// LiteLLM does). Cloud providers need a key; local servers do not.
    pub key_env: Option<&'static str>,
    /// Local servers serve the OpenAI API under `/v1`; an `api_base` without it
    /// gets it appended.
    pub append_v1: bool,
    /// The provider serves OpenAI's Responses API itself. Elsewhere Responses requests
    /// are translated to the provider's wire (chat completions or Anthropic messages),
    /// which every OpenAI-compatible server speaks.
    pub serves_responses: bool,
}

const fn openai_like(
    name: &'static str,
    default_base: Option<&'static str>,
    key_env: Option<&'static str>,
) -> Provider {
    Provider {
        name,
        wire: Wire::OpenAiChat,
        key_header: KeyHeader::Bearer,
        default_base,
        key_env,
        append_v1: false,
        serves_responses: false,
    }
}

const fn local_server(name: &'static str, default_base: Option<&'static str>) -> Provider {
    Provider {
        name,
        wire: Wire::OpenAiChat,
        key_header: KeyHeader::Bearer,
        default_base,
        key_env: None,
        append_v1: true,
        serves_responses: false,
    }
}

impl Provider {
    /// The provider of a deployment whose own could not be told (it is disabled and
    /// never sent to).
    pub const UNRESOLVED: Provider = openai_like("unresolved", None, None);
}

const PROVIDERS: &[Provider] = &[
    Provider {
        serves_responses: true,
        ..openai_like("openai", Some("https://api.openai.com/v1"), Some("OPENAI_API_KEY"))
    },
    Provider {
        name: "anthropic",
        wire: Wire::AnthropicMessages,
        key_header: KeyHeader::XApiKey,
        default_base: Some("https://api.anthropic.com"),
        key_env: Some("ANTHROPIC_API_KEY"),
        append_v1: false,
        serves_responses: false,
    },
    openai_like("gemini", Some("https://generativelanguage.googleapis.com/v1beta/openai"), Some("GEMINI_API_KEY")),
    local_server("ollama", Some("http://localhost:11434")),
    local_server("ollama_chat", Some("http://localhost:11434")),
    local_server("hosted_vllm", None),
    local_server("vllm", None),
    local_server("llamacpp", Some("http://localhost:8080")),
    local_server("lm_studio", Some("http://localhost:1234")),
    openai_like("openai_like", None, None),
    openai_like("openai_compatible", None, None),
    openai_like("custom_openai", None, None),
    openai_like("groq", Some("https://api.groq.com/openai/v1"), Some("GROQ_API_KEY")),
    openai_like("deepseek", Some("https://api.deepseek.com/v1"), Some("DEEPSEEK_API_KEY")),
    openai_like("mistral", Some("https://api.mistral.ai/v1"), Some("MISTRAL_API_KEY")),
    openai_like("openrouter", Some("https://openrouter.ai/api/v1"), Some("OPENROUTER_API_KEY")),
    openai_like("together_ai", Some("https://api.together.xyz/v1"), Some("TOGETHERAI_API_KEY")),
    openai_like("fireworks_ai", Some("https://api.fireworks.ai/inference/v1"), Some("FIREWORKS_AI_API_KEY")),
    openai_like("xai", Some("https://api.x.ai/v1"), Some("XAI_API_KEY")),
    openai_like("perplexity", Some("https://api.perplexity.ai"), Some("PERPLEXITYAI_API_KEY")),
];

impl Provider {
    pub fn named(name: &str) -> Option<&'static Provider> {
        PROVIDERS.iter().find(|p| p.name == name)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        PROVIDERS.iter().map(|p| p.name)
    }

    /// The provider of a LiteLLM `model` string and the model name to send upstream.
    /// `custom_llm_provider` wins over the prefix; a bare model name is recognised by
    /// its family (`gpt-`, `claude-`, `gemini-`), as LiteLLM does.
    pub fn resolve<'m>(model: &'m str, custom: Option<&str>) -> Result<(&'static Provider, &'m str), String> {
        let split = model.split_once('/');
        if let Some(custom) = custom {
            let provider = Self::named(custom).ok_or_else(|| unknown(custom))?;
            let name = match split {
                Some((prefix, rest)) if prefix == custom => rest,
                _ => model,
            };
            return Ok((provider, name));
        }
        if let Some((prefix, rest)) = split
            && let Some(provider) = Self::named(prefix)
        {
            return Ok((provider, rest));
        }
        let family = [
            ("gpt-", "openai"),
            ("o1", "openai"),
            ("o3", "openai"),
            ("o4", "openai"),
            ("chatgpt-", "openai"),
            ("text-embedding-", "openai"),
            ("claude-", "anthropic"),
            ("gemini-", "gemini"),
        ];
        match family.iter().find(|(start, _)| model.starts_with(start)) {
            Some((_, name)) => Ok((Self::named(name).ok_or_else(|| unknown(name))?, model)),
            None => Err(match split {
                Some((prefix, _)) => unknown(prefix),
                None => format!(
                    "cannot tell the provider of `{model}`: write it as `<provider>/{model}` (e.g. `openai/{model}`) or set `custom_llm_provider`"
                ),
            }),
        }
    }

    /// The base URL requests go to: `api_base` if given (normalised), else the default.
    pub fn base_url(&self, api_base: Option<&str>) -> Result<String, String> {
        let base = match api_base {
            Some(base) => base.trim().trim_end_matches('/').to_owned(),
            None => self
                .default_base
                .ok_or_else(|| format!("provider `{}` needs `api_base` (the server's URL)", self.name))?
                .to_owned(),
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("`{base}` is not an http(s) URL"));
        }
        reqwest::Url::parse(&base).map_err(|e| format!("`{base}` is not a valid URL: {e}"))?;
        Ok(match self.wire {
            // Anthropic's paths carry `/v1` themselves.
            Wire::AnthropicMessages => base.trim_end_matches("/v1").to_owned(),
            Wire::OpenAiChat if self.append_v1 && !base.ends_with("/v1") => format!("{base}/v1"),
            Wire::OpenAiChat => base,
        })
    }

    /// True when a request to this base needs a key: a cloud provider at its own address.
    pub fn needs_key(&self, api_base: Option<&str>) -> bool {
        self.key_env.is_some() && api_base.is_none()
    }
}

fn unknown(name: &str) -> String {
    format!("unknown provider `{name}`; known providers: {}", Provider::names().collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_prefix_family_and_custom_provider() {
        let (p, m) = Provider::resolve("anthropic/claude-sonnet-4-5", None).unwrap();
        assert_eq!((p.name, m), ("anthropic", "claude-sonnet-4-5"));
        let (p, m) = Provider::resolve("gpt-4o", None).unwrap();
        assert_eq!((p.name, m), ("openai", "gpt-4o"));
        let (p, m) = Provider::resolve("meta-llama/Llama-3-8B", Some("hosted_vllm")).unwrap();
        assert_eq!((p.name, m), ("hosted_vllm", "meta-llama/Llama-3-8B"));
        let (p, m) = Provider::resolve("ollama_chat/llama3.2", None).unwrap();
        assert_eq!((p.name, m), ("ollama_chat", "llama3.2"));
        assert!(Provider::resolve("azure/gpt-4", None).unwrap_err().contains("unknown provider `azure`"));
        assert!(Provider::resolve("mystery", None).unwrap_err().contains("openai/mystery"));
    }

    #[test]
    fn base_urls_are_normalised_per_wire() {
        let anthropic = Provider::named("anthropic").unwrap();
        assert_eq!(anthropic.base_url(Some("http://127.0.0.1:9/v1/")).unwrap(), "http://127.0.0.1:9");
        let ollama = Provider::named("ollama").unwrap();
        assert_eq!(ollama.base_url(None).unwrap(), "http://localhost:11434/v1");
        let openai = Provider::named("openai").unwrap();
        assert_eq!(openai.base_url(Some("http://127.0.0.1:9/v1")).unwrap(), "http://127.0.0.1:9/v1");
        assert!(Provider::named("hosted_vllm").unwrap().base_url(None).is_err());
        assert!(openai.base_url(Some("ftp://x")).is_err());
        assert!(openai.needs_key(None) && !openai.needs_key(Some("http://127.0.0.1:9/v1")));
    }
}
