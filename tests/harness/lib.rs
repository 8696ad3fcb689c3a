#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: a failed set-up should fail the test loudly

//! Starts the real binaries for black-box tests: the mock provider and the gateway,
//! each on a free port of 127.0.0.1, killed when dropped. Gateway logs are kept (and
//! written under target/e2e-logs/) so tests can read what the gateway said.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

/// The directory holding the workspace's binaries (target/debug), found from the
/// test executable's own path (target/debug/deps/e2e-...).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(|deps| deps.parent()).expect("target/debug").to_path_buf()
}

/// reqwest is built with rustls and no default crypto provider (the gateway picks
/// ring); tests talk plain http, but building a client still needs one installed.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The repository's root (tests/ is one level down).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The built-in plugins, as the test command builds them.
pub fn plugins_dist() -> PathBuf {
    repo_root().join("plugins/dist")
}

/// A plugin component as cargo built it (test plugins live only here).
pub fn built_plugin(file: &str) -> PathBuf {
    let path = repo_root().join("plugins/target/wasm32-wasip2/release").join(file);
    assert!(path.exists(), "{} is missing: the test command builds the plugins first", path.display());
    path
}

pub fn bin(name: &str) -> PathBuf {
    install_tls_provider();
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (the test command does)",
        path.display()
    );
    path
}

/// Reads a child's output on a thread: lines go to a shared buffer; the first line
/// containing `marker` is handed back through a channel.
fn drain(
    output: impl Read + Send + 'static,
    marker: &'static str,
    file: Option<PathBuf>,
) -> (Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let buffer = Arc::new(Mutex::new(String::new()));
    let (found, receiver) = mpsc::channel();
    let shared = buffer.clone();
    std::thread::spawn(move || {
        let mut file = file.and_then(|path| std::fs::File::create(path).ok());
        let mut found = Some(found);
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if let Some(file) = file.as_mut() {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
            }
            if line.contains(marker)
                && let Some(sender) = found.take()
            {
                let _ = sender.send(line.clone());
            }
            shared.lock().unwrap_or_else(|p| p.into_inner()).push_str(&(line + "\n"));
        }
    });
    (buffer, receiver)
}

fn address_in(line: &str) -> String {
    let start = line.find("http://").expect("listening line has an address");
    line[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c)).collect()
}

pub struct Mock {
    child: Child,
    pub url: String,
}

impl Mock {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let mut child = Command::new(bin("mock-provider"))
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mock-provider");
        let stdout = child.stdout.take().expect("mock stdout");
        let (_, listening) = drain(stdout, "listening on", None);
        let line = listening.recv_timeout(Duration::from_secs(10)).expect("mock-provider did not start");
        Self { child, url: address_in(&line) }
    }

    /// Base URL for OpenAI-style deployments (`.../v1`).
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub async fn requests(&self) -> Vec<Value> {
        let body: Value = reqwest::get(format!("{}/_mock/requests", self.url)).await.unwrap().json().await.unwrap();
        body.as_array().cloned().unwrap_or_default()
    }

    /// Requests to model endpoints (not the control ones), in arrival order.
    pub async fn calls(&self) -> Vec<Value> {
        self.requests().await.into_iter().filter(|r| !r["path"].as_str().unwrap_or("").starts_with("/_mock")).collect()
    }

    pub async fn fault(&self, faults: Value) {
        let response =
            reqwest::Client::new().post(format!("{}/_mock/faults", self.url)).json(&faults).send().await.unwrap();
        assert!(response.status().is_success(), "queue fault: {}", response.status());
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static GATEWAYS: AtomicUsize = AtomicUsize::new(0);

pub struct Gateway {
    child: Child,
    pub url: String,
    logs: Arc<Mutex<String>>,
    _dir: TempDir,
}

/// Options for starting a gateway beyond its config.
#[derive(Default)]
pub struct Launch<'a> {
    pub env: Vec<(&'a str, &'a str)>,
    pub args: Vec<&'a str>,
    /// Where the config file goes (a fresh temporary directory when None).
    pub dir: Option<&'a std::path::Path>,
    /// The plugin folder (plugins/dist when None).
    pub plugins_dir: Option<&'a std::path::Path>,
}

impl Gateway {
    pub fn start(config: &str) -> Self {
        Self::launch(config, Launch::default()).expect("gateway started")
    }

    /// Starts the gateway; Err holds its exit status and output if it exited instead.
    pub fn launch(config: &str, launch: Launch<'_>) -> Result<Self, (Option<i32>, String)> {
        let dir = TempDir::new();
        let config_path = launch.dir.unwrap_or(&dir.path).join("config.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let n = GATEWAYS.fetch_add(1, Ordering::Relaxed);
        let log_dir = bin_dir().join("e2e-logs");
        let _ = std::fs::create_dir_all(&log_dir);
        let log_file = log_dir.join(format!("gateway-{}-{n}.log", std::process::id()));
        let mut command = Command::new(bin("memory-proxy"));
        command
            .arg("--config")
            .arg(&config_path)
            .args(["--port", "0"])
            .args(&launch.args)
            .env_remove("MEMORY_PROXY_MASTER_KEY")
            .env_remove("LITELLM_MASTER_KEY")
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("GEMINI_API_KEY")
            .env_remove("SUPERMEMORY_API_KEY")
            .env("MEMORY_PROXY_LOG", "info")
            .env("MEMORY_PROXY_PLUGINS_DIR", launch.plugins_dir.map_or_else(plugins_dist, std::path::Path::to_path_buf))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start memory-proxy");
        let stderr = child.stderr.take().expect("gateway stderr");
        let (logs, listening) = drain(stderr, "listening on", Some(log_file));
        match listening.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => Ok(Self { child, url: address_in(&line), logs, _dir: dir }),
            Err(_) => {
                let status = child.wait().ok().and_then(|s| s.code());
                std::thread::sleep(Duration::from_millis(50));
                let output = logs.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Err((status, output))
            }
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process outright (a crash), without letting it clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().post(format!("{}{path}", self.url))
    }

    /// A new virtual key with these settings (`/key/generate` with the master key): the
    /// key and its id.
    pub async fn new_key(&self, master_key: &str, settings: &Value) -> (String, String) {
        let request = self.post("/key/generate").bearer_auth(master_key).json(settings);
        let created: Value = request.send().await.unwrap().json().await.unwrap();
        let field = |name: &str| created[name].as_str().unwrap_or_else(|| panic!("no `{name}`: {created}")).to_owned();
        (field("key"), field("token"))
    }

    /// The analytics rows the master `key` reads for `query` (`user=ana`, ...), newest first.
    pub async fn requests(&self, key: &str, query: &str) -> Vec<Value> {
        let response = self.get(&format!("/analytics/requests?{query}")).bearer_auth(key).send().await.unwrap();
        let page: Value = response.json().await.unwrap();
        page["requests"].as_array().cloned().unwrap_or_else(|| panic!("no rows: {page}"))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().get(format!("{}{path}", self.url))
    }

    pub fn delete_path(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().delete(format!("{}{path}", self.url))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "memory-proxy-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self { path }
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Polls `check` every 20 ms until it returns Some or `limit` passes.
pub async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replaces a file the way deployments should: write a temporary sibling, then rename.
pub fn replace_file(path: &std::path::Path, bytes: &[u8]) {
    let temporary = path.with_file_name(format!(".{}.tmp", path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// A config with one model `name` served by `provider/upstream` at `api_base`.
pub fn one_model(name: &str, model: &str, api_base: &str) -> String {
    format!(
        "model_list:\n  - model_name: {name}\n    litellm_params:\n      model: {model}\n      api_base: {api_base}\n"
    )
}

/// Splits an SSE body into (event name, data) pairs.
pub fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}
