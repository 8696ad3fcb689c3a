//! Model groups: the name a client asks for -> the deployments that can serve it, the
//! pick among them (simple-shuffle, weighted), and the fallback groups.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::config::{Alias, Config, DeploymentConfig, wildcard_match};
use crate::core::error::{ErrorKind, GatewayError};

/// A deployment ready to serve: its config and the HTTP client for its upstream.
pub struct Deployment {
    pub config: DeploymentConfig,
    pub client: reqwest::Client,
    /// `forward_client_auth`: one client (and cookie store) per caller credential, so
    /// cookies an upstream sets for one caller never travel with another's request.
    callers: Option<Arc<CallerClients>>,
    /// The upstream URLs of the usual paths, parsed once rather than per request.
    endpoints: Vec<(&'static str, reqwest::Url)>,
}

const USUAL_PATHS: [&str; 5] =
    ["/chat/completions", "/responses", "/embeddings", "/v1/messages", "/v1/messages/count_tokens"];

impl Deployment {
    fn new(config: DeploymentConfig, clients: &UpstreamClients) -> Self {
        let endpoints =
            USUAL_PATHS.iter().filter_map(|path| Self::parse_url(&config, path).ok().map(|url| (*path, url))).collect();
        let client = clients.for_base(&config.base_url);
        let callers = config.forward_client_auth.then(|| clients.callers_of(&config.base_url));
        Self { config, client, callers, endpoints }
    }

    /// The HTTP client for a request: the caller's own when the deployment forwards
    /// callers' credentials (`caller` is their digest), else the shared one.
    pub fn client_for(&self, caller: Option<&[u8; 32]>) -> reqwest::Client {
        match (&self.callers, caller) {
            (Some(callers), Some(caller)) => callers.get(caller),
            _ => self.client.clone(),
        }
    }

    /// The upstream URL for `path` (after the base URL).
    pub fn url(&self, path: &str) -> Result<reqwest::Url, String> {
        if let Some((_, url)) = self.endpoints.iter().find(|(known, _)| *known == path) {
            return Ok(url.clone());
        }
        Self::parse_url(&self.config, path)
    }

    /// True when `url` is at the deployment's scheme, host and port, under its base path.
    pub fn on_origin(&self, url: &reqwest::Url) -> bool {
        reqwest::Url::parse(&self.config.base_url).is_ok_and(|base| {
            base.origin() == url.origin() && url.path().starts_with(base.path().trim_end_matches('/'))
        })
    }

    /// `{base}{path}`, with the deployment's query (Azure's `api-version`) added.
    fn parse_url(config: &DeploymentConfig, path: &str) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", config.base_url)).map_err(|e| e.to_string())?;
        if let Some(query) = &config.url_query {
            let joined = match url.query() {
                Some(own) => format!("{own}&{query}"),
                None => query.clone(),
            };
            url.set_query(Some(&joined));
        }
        Ok(url)
    }
}

/// Deployments sharing one `model_name`.
pub struct ModelGroup {
    pub name: String,
    pub deployments: Vec<Arc<Deployment>>,
}

/// The group a requested model resolved to, and what its `*` matched.
pub struct Resolved<'r> {
    pub group: &'r ModelGroup,
    wildcard: Option<String>,
}

pub struct Router {
    exact: HashMap<String, ModelGroup>,
    /// Groups whose name holds a `*`, most specific first.
    wildcards: Vec<ModelGroup>,
    fallbacks: BTreeMap<String, Vec<String>>,
    context_window_fallbacks: BTreeMap<String, Vec<String>>,
    aliases: BTreeMap<String, Alias>,
}

impl Router {
    pub fn new(config: &Config, clients: &UpstreamClients) -> Self {
        let mut exact: HashMap<String, ModelGroup> = HashMap::new();
        let mut wildcards: Vec<ModelGroup> = Vec::new();
        for d in &config.deployments {
            let deployment = Arc::new(Deployment::new(d.clone(), clients));
            let name = &d.model_name;
            let group = if name.contains('*') {
                let index = wildcards.iter().position(|g| &g.name == name).unwrap_or_else(|| {
                    wildcards.push(ModelGroup::empty(name));
                    wildcards.len() - 1
                });
                &mut wildcards[index]
            } else {
                exact.entry(name.clone()).or_insert_with(|| ModelGroup::empty(name))
            };
            group.deployments.push(deployment);
        }
        wildcards.sort_by_key(|g| std::cmp::Reverse(g.name.len()));
        Self {
            exact,
            wildcards,
            fallbacks: config.fallbacks.clone(),
            context_window_fallbacks: config.context_window_fallbacks.clone(),
            aliases: config.aliases.clone(),
        }
    }

    /// The group serving `model`: an exact name first, then an alias's model, then the
    /// wildcards.
    pub fn resolve(&self, model: &str) -> Option<Resolved<'_>> {
        if let Some(group) = self.exact.get(model) {
            return Some(Resolved { group, wildcard: None });
        }
        let model = self.aliases.get(model).map_or(model, |alias| alias.model.as_str());
        if let Some(group) = self.exact.get(model) {
            return Some(Resolved { group, wildcard: None });
        }
        self.wildcards.iter().find_map(|group| {
            wildcard_match(&group.name, model).map(|m| Resolved { group, wildcard: Some(m.to_owned()) })
        })
    }

    /// What `/v1/models` lists, sorted: every model group (with why it cannot serve,
    /// when none of its deployments can) and every alias not hidden (with its model's
    /// reason).
    pub fn listed_models(&self) -> Vec<(&str, Option<&str>)> {
        fn disabled(group: &ModelGroup) -> Option<&str> {
            match group.deployments.iter().any(|d| d.config.disabled.is_none()) {
                true => None,
                false => group.deployments.iter().find_map(|d| d.config.disabled.as_deref()),
            }
        }
        let groups = self.exact.values().chain(&self.wildcards).map(|g| (g.name.as_str(), disabled(g)));
        let aliases = self.aliases.iter().filter(|(_, alias)| !alias.hidden).filter_map(|(name, _)| {
            let resolved = self.resolve(name)?;
            Some((name.as_str(), disabled(resolved.group)))
        });
        let mut listed: Vec<(&str, Option<&str>)> = groups.chain(aliases).collect();
        listed.sort_unstable_by_key(|(name, _)| *name);
        listed
    }

    /// The error for a model no group serves, listing those that exist.
    pub fn unknown_model(&self, model: &str) -> GatewayError {
        let names = self.model_names();
        let available = if names.is_empty() { "none are configured".to_owned() } else { names.join(", ") };
        GatewayError::new(
            ErrorKind::ModelNotFound,
            format!("model `{model}` is not served here; available models: {available}"),
        )
        .with_param("model")
    }

    /// Names clients can ask for (groups with at least one working deployment), sorted.
    pub fn model_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .exact
            .values()
            .chain(&self.wildcards)
            .filter(|g| g.deployments.iter().any(|d| d.config.disabled.is_none()))
            .map(|g| g.name.as_str())
            .collect();
        names.sort_unstable();
        names
    }

    /// The fallbacks of the model asked for: its own entry, else its group's (a model
    /// served by `claude-*` falls back as `claude-*` says, unless it has its own).
    pub fn fallbacks(&self, model: &str, group: &str) -> &[String] {
        Self::entry(&self.fallbacks, model, group)
    }

    /// Where the model asked for goes when its prompt is too long, found as `fallbacks`.
    pub fn context_window_fallbacks(&self, model: &str, group: &str) -> &[String] {
        Self::entry(&self.context_window_fallbacks, model, group)
    }

    fn entry<'f>(fallbacks: &'f BTreeMap<String, Vec<String>>, model: &str, group: &str) -> &'f [String] {
        fallbacks.get(model).or_else(|| fallbacks.get(group)).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn group(&self, name: &str) -> Option<&ModelGroup> {
        self.exact.get(name).or_else(|| self.wildcards.iter().find(|g| g.name == name))
    }
}

impl<'r> Resolved<'r> {
    /// A fallback group: a `*` in its deployments takes the whole model name the
    /// client asked for.
    pub fn fallback(group: &'r ModelGroup, requested: &str) -> Self {
        let wildcard = group.name.contains('*').then(|| requested.to_owned());
        Self { group, wildcard }
    }

    /// The model name to send to `deployment`, its `*` filled with what the client's matched.
    pub fn upstream_model(&self, deployment: &DeploymentConfig) -> String {
        match &self.wildcard {
            Some(matched) if deployment.upstream_model.contains('*') => {
                deployment.upstream_model.replacen('*', matched, 1)
            }
            _ => deployment.upstream_model.clone(),
        }
    }
}

impl ModelGroup {
    fn empty(name: &str) -> Self {
        Self { name: name.to_owned(), deployments: Vec::new() }
    }

    /// Picks the deployment for the next attempt: an untried working one if any is
    /// left, else a working one still within its `max_retries`; weighted by `weight`
    /// (simple-shuffle). `attempts[i]` counts the attempts made on deployment `i`.
    /// `Ok(None)`: every working deployment has had all its attempts.
    pub fn pick(&self, attempts: &[u32]) -> Result<Option<usize>, GatewayError> {
        let tried = |i: usize| attempts.get(i).copied().unwrap_or(0);
        let working: Vec<usize> =
            (0..self.deployments.len()).filter(|&i| self.deployments[i].config.disabled.is_none()).collect();
        if working.is_empty() {
            let reasons: Vec<String> = self
                .deployments
                .iter()
                .filter_map(|d| d.config.disabled.as_ref().map(|r| format!("{}: {r}", d.config.id)))
                .collect();
            return Err(GatewayError::new(
                ErrorKind::ModelUnavailable,
                format!("model `{}` has no working deployment ({})", self.name, reasons.join("; ")),
            ));
        }
        let untried: Vec<usize> = working.iter().copied().filter(|&i| tried(i) == 0).collect();
        let pool = if untried.is_empty() {
            let within_limit = |&i: &usize| self.deployments[i].config.max_retries.is_none_or(|max| tried(i) <= max);
            working.into_iter().filter(within_limit).collect()
        } else {
            untried
        };
        let total: f64 = pool.iter().map(|&i| self.deployments[i].config.weight).sum();
        let mut point = rand::rng().random::<f64>() * total;
        for &i in &pool {
            point -= self.deployments[i].config.weight;
            if point < 0.0 {
                return Ok(Some(i));
            }
        }
        Ok(pool.last().copied())
    }
}

/// One long-lived HTTP client per upstream origin, kept across config reloads: its
/// connection pool stays warm, and its cookie store keeps the cookies that
/// Cloudflare-fronted upstreams set (without them, every request is challenged).
#[derive(Default)]
pub struct UpstreamClients {
    by_origin: Mutex<HashMap<String, reqwest::Client>>,
    callers_by_origin: Mutex<HashMap<String, Arc<CallerClients>>>,
}

/// Callers whose own credentials go upstream, each with a client of its own (the
/// most recent ones; a caller left out gets a fresh client, and cookie store, next time).
pub struct CallerClients {
    clients: Mutex<lru::LruCache<[u8; 32], reqwest::Client>>,
}

const CALLER_CLIENTS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(256).unwrap();

impl CallerClients {
    fn get(&self, caller: &[u8; 32]) -> reqwest::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        clients.get_or_insert(*caller, upstream_client).clone()
    }
}

impl UpstreamClients {
    fn callers_of(&self, base_url: &str) -> Arc<CallerClients> {
        let origin = origin(base_url);
        let mut callers = self.callers_by_origin.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        callers
            .entry(origin.to_owned())
            .or_insert_with(|| Arc::new(CallerClients { clients: Mutex::new(lru::LruCache::new(CALLER_CLIENTS)) }))
            .clone()
    }

    pub fn for_base(&self, base_url: &str) -> reqwest::Client {
        let origin = origin(base_url);
        let mut clients = self.by_origin.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        clients.entry(origin.to_owned()).or_insert_with(upstream_client).clone()
    }
}

fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// An HTTP client for one upstream origin (a provider, Supermemory): kept for the
/// process's life, with its connections and cookies.
pub fn upstream_client() -> reqwest::Client {
    // TLS through rustls with ring; installing the process default is idempotent.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("memory-proxy/", env!("CARGO_PKG_VERSION")))
        .cookie_store(true)
        // A redirect would carry the provider key to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        // Without it, small SSE writes wait for delayed ACKs (tens of ms per event).
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .unwrap_or_else(|e| {
            // Only a broken TLS set-up makes this fail; a default client still serves http.
            tracing::error!("cannot build the upstream HTTP client: {e}");
            reqwest::Client::new()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn router(yaml: &str) -> Router {
        let loaded = Config::parse(yaml, &|_| None, std::path::Path::new(".")).unwrap();
        Router::new(&loaded.config, &UpstreamClients::default())
    }

    const YAML: &str = "model_list:
  - {model_name: gpt, litellm_params: {model: openai/a, api_base: 'http://127.0.0.1:1/v1'}}
  - {model_name: gpt, litellm_params: {model: openai/b, api_base: 'http://127.0.0.1:2/v1', weight: 3}}
  - {model_name: 'claude-*', litellm_params: {model: 'anthropic/claude-*', api_base: 'http://127.0.0.1:3'}}
  - {model_name: '*', litellm_params: {model: 'openai/*', api_base: 'http://127.0.0.1:4/v1'}}
  - {model_name: off, litellm_params: {model: anthropic/x}}
";

    #[test]
    fn resolves_exact_names_before_wildcards() {
        let router = router(YAML);
        assert_eq!(router.resolve("gpt").unwrap().group.name, "gpt");
        let claude = router.resolve("claude-sonnet-4-5").unwrap();
        assert_eq!(claude.group.name, "claude-*");
        assert_eq!(claude.upstream_model(&claude.group.deployments[0].config), "claude-sonnet-4-5");
        let any = router.resolve("llama3").unwrap();
        assert_eq!(
            (any.group.name.as_str(), any.upstream_model(&any.group.deployments[0].config).as_str()),
            ("*", "llama3")
        );
        assert_eq!(router.model_names(), ["*", "claude-*", "gpt"], "a group with no working deployment is not listed");
    }

    #[test]
    fn picks_untried_deployments_first_and_follows_weights() {
        let router = router(YAML);
        let group = router.group("gpt").unwrap();
        assert_eq!(group.pick(&[1, 0]).unwrap(), Some(1));
        assert_eq!(group.pick(&[0, 1]).unwrap(), Some(0));
        let picks: Vec<usize> = (0..4000).map(|_| group.pick(&[0, 0]).unwrap().unwrap()).collect();
        let share = picks.iter().filter(|&&i| i == 1).count() as f64 / 4000.0;
        assert!((0.70..0.80).contains(&share), "weight 3:1 gave {share}");
    }

    #[test]
    fn max_retries_bounds_attempts_per_deployment() {
        let router = router(
            "model_list:\n  - {model_name: m, litellm_params: {model: openai/a, api_base: 'http://127.0.0.1:1/v1', max_retries: 1}}\n",
        );
        let group = router.group("m").unwrap();
        assert_eq!(group.pick(&[1]).unwrap(), Some(0));
        assert_eq!(group.pick(&[2]).unwrap(), None);
    }

    #[test]
    fn a_group_without_working_deployments_says_why() {
        let router = router(YAML);
        let error = router.group("off").unwrap().pick(&[0]).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ModelUnavailable);
        assert!(error.message.contains("ANTHROPIC_API_KEY is not set"), "{}", error.message);
        let unknown = router.unknown_model("nope");
        assert!(unknown.message.contains("available models: *, claude-*, gpt"), "{}", unknown.message);
    }

    #[test]
    fn clients_are_shared_per_origin() {
        assert_eq!(origin("http://127.0.0.1:9/v1/x"), "http://127.0.0.1:9");
        assert_eq!(origin("https://api.anthropic.com"), "https://api.anthropic.com");
    }
}
