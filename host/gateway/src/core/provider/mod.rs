//! Providers we reach and how: which API they speak on the wire, where they live by
//! default, how they take a key. LiteLLM names them by the prefix of `model`
//! (`anthropic/claude-...`) or by `custom_llm_provider`.

pub mod bedrock;

/// The API an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI chat completions (and embeddings): OpenAI, Azure OpenAI, Gemini's OpenAI
    /// endpoint, Ollama, vLLM, llama.cpp and the other OpenAI-compatible servers.
    OpenAiChat,
    /// Anthropic messages: Anthropic, and Anthropic's models on AWS Bedrock.
    AnthropicMessages,
    /// Gemini's own API (`models/{model}:generateContent`), which no client speaks:
    /// every request is translated by the adapter plugin.
    GeminiGenerateContent,
}

/// How the upstream takes its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>`
    Bearer,
    /// `x-api-key: <key>` (Anthropic)
    XApiKey,
    /// `api-key: <key>` (Azure OpenAI)
    ApiKey,
    /// `x-goog-api-key: <key>` (Gemini's own API)
    GoogApiKey,
}

/// Where a request goes and how it is wrapped, beyond the wire API's own paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `{base}{path}`.
    Plain,
    /// Azure OpenAI: `{api_base}/openai/deployments/{deployment}{path}?api-version=...`.
    AzureDeployment,
    /// AWS Bedrock's InvokeModel: `{runtime}/model/{model id}/invoke`, the Anthropic body
    /// in Bedrock's envelope, SigV4-signed, streams in AWS's event-stream framing.
    Bedrock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provider {
    pub name: &'static str,
    pub wire: Wire,
    pub endpoint: Endpoint,
    pub key_header: KeyHeader,
    /// Where the provider lives when `api_base` is not given (None: it must be).
    pub default_base: Option<&'static str>,
    /// The environment variable read for `api_base` when it is not given (as LiteLLM
    /// does for providers without a fixed address).
    pub base_env: Option<&'static str>,
    /// The environment variables read, in order, for the key when `api_key` is not
    /// given (as LiteLLM does). Cloud providers need a key; local servers do not.
    pub key_env: &'static [&'static str],
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
    key_env: &'static [&'static str],
) -> Provider {
    Provider {
        name,
        wire: Wire::OpenAiChat,
        endpoint: Endpoint::Plain,
        key_header: KeyHeader::Bearer,
        default_base,
        base_env: None,
        key_env,
        append_v1: false,
        serves_responses: false,
    }
}

const fn local_server(name: &'static str, default_base: Option<&'static str>) -> Provider {
    Provider { append_v1: true, ..openai_like(name, default_base, &[]) }
}

/// An OpenAI-compatible provider found only at the `api_base` given (or in `base_env`).
const fn at_given_base(name: &'static str, base_env: &'static str, key_env: &'static [&'static str]) -> Provider {
    Provider { base_env: Some(base_env), ..openai_like(name, None, key_env) }
}

impl Provider {
    /// The provider of a deployment whose own could not be told (it is disabled and
    /// never sent to).
    pub const UNRESOLVED: Provider = openai_like("unresolved", None, &[]);
}

/// Gemini's own API, chosen for `gemini/` when `api_base` is not Gemini's OpenAI
/// endpoint (as LiteLLM does: `{api_base}/models/{model}:generateContent`).
const GEMINI_NATIVE: Provider = Provider {
    name: "gemini_native",
    wire: Wire::GeminiGenerateContent,
    key_header: KeyHeader::GoogApiKey,
    ..openai_like("gemini_native", Some("https://generativelanguage.googleapis.com/v1beta"), &["GEMINI_API_KEY"])
};

/// The providers by LiteLLM's names. OpenAI-compatible ones differ only in where they
/// live and which variable holds their key.
const PROVIDERS: &[Provider] = &[
    Provider {
        serves_responses: true,
        ..openai_like("openai", Some("https://api.openai.com/v1"), &["OPENAI_API_KEY"])
    },
    Provider {
        name: "anthropic",
        wire: Wire::AnthropicMessages,
        key_header: KeyHeader::XApiKey,
        ..openai_like("anthropic", Some("https://api.anthropic.com"), &["ANTHROPIC_API_KEY"])
    },
    Provider {
        endpoint: Endpoint::AzureDeployment,
        key_header: KeyHeader::ApiKey,
        ..at_given_base("azure", "AZURE_API_BASE", &["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"])
    },
    // Bedrock's base is the region's runtime; its key is AWS credentials (or a Bedrock
    // API key, sent as a bearer token).
    Provider {
        name: "bedrock",
        wire: Wire::AnthropicMessages,
        endpoint: Endpoint::Bedrock,
        ..openai_like("bedrock", None, &[])
    },
    openai_like("gemini", Some("https://generativelanguage.googleapis.com/v1beta/openai"), &["GEMINI_API_KEY"]),
    GEMINI_NATIVE,
    local_server("ollama", Some("http://localhost:11434")),
    local_server("ollama_chat", Some("http://localhost:11434")),
    Provider { base_env: Some("HOSTED_VLLM_API_BASE"), ..local_server("hosted_vllm", None) },
    local_server("vllm", None),
    local_server("llamacpp", Some("http://localhost:8080")),
    local_server("llamafile", Some("http://localhost:8080")),
    local_server("lm_studio", Some("http://localhost:1234")),
    local_server("xinference", Some("http://localhost:9997")),
    openai_like("openai_like", None, &[]),
    openai_like("openai_compatible", None, &[]),
    openai_like("custom_openai", None, &[]),
    at_given_base("litellm_proxy", "LITELLM_PROXY_API_BASE", &[]),
    at_given_base("azure_ai", "AZURE_AI_API_BASE", &["AZURE_AI_API_KEY"]),
    at_given_base("databricks", "DATABRICKS_API_BASE", &["DATABRICKS_API_KEY"]),
    openai_like("groq", Some("https://api.groq.com/openai/v1"), &["GROQ_API_KEY"]),
    openai_like("deepseek", Some("https://api.deepseek.com/v1"), &["DEEPSEEK_API_KEY"]),
    openai_like("mistral", Some("https://api.mistral.ai/v1"), &["MISTRAL_API_KEY"]),
    openai_like("codestral", Some("https://codestral.mistral.ai/v1"), &["CODESTRAL_API_KEY"]),
    openai_like("openrouter", Some("https://openrouter.ai/api/v1"), &["OPENROUTER_API_KEY"]),
    openai_like("together_ai", Some("https://api.together.xyz/v1"), &["TOGETHERAI_API_KEY", "TOGETHER_API_KEY"]),
    openai_like(
        "fireworks_ai",
        Some("https://api.fireworks.ai/inference/v1"),
        &["FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY"],
    ),
    openai_like("xai", Some("https://api.x.ai/v1"), &["XAI_API_KEY"]),
    openai_like("perplexity", Some("https://api.perplexity.ai"), &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"]),
    openai_like("cohere", Some("https://api.cohere.ai/compatibility/v1"), &["COHERE_API_KEY", "CO_API_KEY"]),
    openai_like("cohere_chat", Some("https://api.cohere.ai/compatibility/v1"), &["COHERE_API_KEY", "CO_API_KEY"]),
    openai_like("huggingface", Some("https://router.huggingface.co/v1"), &["HF_TOKEN", "HUGGINGFACE_API_KEY"]),
    openai_like("cerebras", Some("https://api.cerebras.ai/v1"), &["CEREBRAS_API_KEY"]),
    openai_like("zai", Some("https://api.z.ai/api/paas/v4"), &["ZAI_API_KEY"]),
    openai_like("zhipu", Some("https://open.bigmodel.cn/api/paas/v4"), &["ZHIPUAI_API_KEY", "ZHIPU_API_KEY"]),
    openai_like("siliconflow", Some("https://api.siliconflow.cn/v1"), &["SILICONFLOW_API_KEY"]),
    openai_like("moonshot", Some("https://api.moonshot.ai/v1"), &["MOONSHOT_API_KEY"]),
    openai_like("dashscope", Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"), &["DASHSCOPE_API_KEY"]),
    openai_like("volcengine", Some("https://ark.cn-beijing.volces.com/api/v3"), &["VOLCENGINE_API_KEY", "ARK_API_KEY"]),
    openai_like("nvidia_nim", Some("https://integrate.api.nvidia.com/v1"), &["NVIDIA_NIM_API_KEY"]),
    openai_like("sambanova", Some("https://api.sambanova.ai/v1"), &["SAMBANOVA_API_KEY"]),
    openai_like("deepinfra", Some("https://api.deepinfra.com/v1/openai"), &["DEEPINFRA_API_KEY"]),
    openai_like("novita", Some("https://api.novita.ai/v3/openai"), &["NOVITA_API_KEY"]),
    openai_like("nebius", Some("https://api.studio.nebius.ai/v1"), &["NEBIUS_API_KEY"]),
    openai_like("hyperbolic", Some("https://api.hyperbolic.xyz/v1"), &["HYPERBOLIC_API_KEY"]),
    openai_like("lambda_ai", Some("https://api.lambda.ai/v1"), &["LAMBDA_API_KEY"]),
    openai_like("nscale", Some("https://inference.api.nscale.com/v1"), &["NSCALE_API_KEY"]),
    openai_like("featherless_ai", Some("https://api.featherless.ai/v1"), &["FEATHERLESS_AI_API_KEY"]),
    openai_like("friendliai", Some("https://api.friendli.ai/serverless/v1"), &["FRIENDLI_TOKEN", "FRIENDLIAI_API_KEY"]),
    openai_like("github", Some("https://models.inference.ai.azure.com"), &["GITHUB_API_KEY"]),
    openai_like("ai21_chat", Some("https://api.ai21.com/studio/v1"), &["AI21_API_KEY"]),
];

impl Provider {
    pub fn named(name: &str) -> Option<&'static Provider> {
        PROVIDERS.iter().find(|p| p.name == name)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        PROVIDERS.iter().map(|p| p.name)
    }

    pub fn all() -> impl Iterator<Item = &'static Provider> {
        PROVIDERS.iter()
    }

    /// The provider of a LiteLLM `model` string and the model name to send upstream.
    /// `custom_llm_provider` wins over the prefix; a bare model name is recognised by
    /// its family (`gpt-`, `claude-`, `gemini-`), as LiteLLM does. `gemini` at an
    /// `api_base` other than Gemini's OpenAI endpoint is Gemini's own API.
    pub fn resolve<'m>(
        model: &'m str,
        custom: Option<&str>,
        api_base: Option<&str>,
    ) -> Result<(&'static Provider, &'m str), String> {
        let (provider, name) = Self::resolve_name(model, custom)?;
        let openai_endpoint = |base: &str| base.trim().trim_end_matches('/').ends_with("/openai");
        if provider.name == "gemini" && api_base.is_some_and(|base| !openai_endpoint(base)) {
            return Ok((&GEMINI_NATIVE, name));
        }
        Ok((provider, name))
    }

    fn resolve_name<'m>(model: &'m str, custom: Option<&str>) -> Result<(&'static Provider, &'m str), String> {
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

    /// The base URL of one deployment's requests: `api_base` if given (normalised),
    /// else the default; Azure's and Bedrock's hold the deployment or model itself.
    pub fn base_url(&self, api_base: Option<&str>, upstream_model: &str) -> Result<String, String> {
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
        let per_model = |what: &str| {
            if upstream_model.contains('*') {
                Err(format!("a wildcard {what} (`{upstream_model}`) cannot be served; name each one"))
            } else {
                Ok(())
            }
        };
        Ok(match (self.endpoint, self.wire) {
            (Endpoint::AzureDeployment, _) => {
                per_model("Azure deployment")?;
                let base = base.trim_end_matches("/openai");
                format!("{base}/openai/deployments/{}", percent_encode_segment(upstream_model))
            }
            (Endpoint::Bedrock, _) => {
                per_model("Bedrock model")?;
                format!("{base}/model/{}", percent_encode_segment(upstream_model))
            }
            // Anthropic's paths carry `/v1` themselves.
            (Endpoint::Plain, Wire::AnthropicMessages) => base.trim_end_matches("/v1").to_owned(),
            (Endpoint::Plain, Wire::OpenAiChat) if self.append_v1 && !base.ends_with("/v1") => format!("{base}/v1"),
            (Endpoint::Plain, Wire::OpenAiChat | Wire::GeminiGenerateContent) => base,
        })
    }

    /// True when a request to this base needs a key: a cloud provider at its own
    /// address, or one that has no address but the one given.
    pub fn needs_key(&self, api_base: Option<&str>) -> bool {
        !self.key_env.is_empty() && (api_base.is_none() || self.default_base.is_none())
    }
}

/// A path segment as AWS and Azure expect it: `anthropic.claude-3-5-sonnet-v1:0` has
/// its `:` escaped.
fn percent_encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn unknown(name: &str) -> String {
    format!("unknown provider `{name}`; known providers: {}", Provider::names().collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_prefix_family_and_custom_provider() {
        let (p, m) = Provider::resolve("anthropic/claude-sonnet-4-5", None, None).unwrap();
        assert_eq!((p.name, m), ("anthropic", "claude-sonnet-4-5"));
        let (p, m) = Provider::resolve("gpt-4o", None, None).unwrap();
        assert_eq!((p.name, m), ("openai", "gpt-4o"));
        let (p, m) = Provider::resolve("meta-llama/Llama-3-8B", Some("hosted_vllm"), None).unwrap();
        assert_eq!((p.name, m), ("hosted_vllm", "meta-llama/Llama-3-8B"));
        let (p, m) = Provider::resolve("ollama_chat/llama3.2", None, None).unwrap();
        assert_eq!((p.name, m), ("ollama_chat", "llama3.2"));
        assert!(Provider::resolve("azur/gpt-4", None, None).unwrap_err().contains("unknown provider `azur`"));
        assert!(Provider::resolve("mystery", None, None).unwrap_err().contains("openai/mystery"));
        let (p, _) = Provider::resolve("gemini/gemini-2.5-pro", None, Some("http://127.0.0.1:9/v1beta")).unwrap();
        assert_eq!(p.name, "gemini_native");
        let compat = Some("https://generativelanguage.googleapis.com/v1beta/openai/");
        assert_eq!(Provider::resolve("gemini/gemini-2.5-pro", None, compat).unwrap().0.name, "gemini");
    }

    #[test]
    fn base_urls_are_normalised_per_wire() {
        let anthropic = Provider::named("anthropic").unwrap();
        assert_eq!(anthropic.base_url(Some("http://127.0.0.1:9/v1/"), "m").unwrap(), "http://127.0.0.1:9");
        let ollama = Provider::named("ollama").unwrap();
        assert_eq!(ollama.base_url(None, "m").unwrap(), "http://localhost:11434/v1");
        let openai = Provider::named("openai").unwrap();
        assert_eq!(openai.base_url(Some("http://127.0.0.1:9/v1"), "m").unwrap(), "http://127.0.0.1:9/v1");
        assert!(Provider::named("hosted_vllm").unwrap().base_url(None, "m").is_err());
        assert!(openai.base_url(Some("ftp://x"), "m").is_err());
        assert!(openai.needs_key(None) && !openai.needs_key(Some("http://127.0.0.1:9/v1")));
        let azure = Provider::named("azure").unwrap();
        assert!(azure.needs_key(Some("https://x.openai.azure.com")));
        assert_eq!(
            azure.base_url(Some("https://x.openai.azure.com/"), "gpt-4o").unwrap(),
            "https://x.openai.azure.com/openai/deployments/gpt-4o"
        );
        let bedrock = Provider::named("bedrock").unwrap();
        assert_eq!(
            bedrock.base_url(Some("https://bedrock-runtime.us-east-1.amazonaws.com"), "anthropic.claude-v1:0").unwrap(),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-v1%3A0"
        );
        assert!(azure.base_url(Some("https://x"), "gpt-*").is_err());
    }
}
