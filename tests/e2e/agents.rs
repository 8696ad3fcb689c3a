//! The real coding agents, unmodified, from npm: Claude Code and Codex CLI run
//! non-interactively in throwaway git repositories against the gateway and the mock
//! provider, with nothing leaving the machine. What a user tells one agent in a
//! repository is remembered as the user's own words and recalled into the next
//! session there, from either agent, and never in another repository.
//!
//! The test command installs the agents (`cargo xtask test`, into a cache) and names
//! their folder in MEMORY_PROXY_AGENT_CLIENTS; without it these tests fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Gateway, Mock, TempDir, wait_for};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-agents";

fn agent(name: &str) -> PathBuf {
    let dir = std::env::var_os("MEMORY_PROXY_AGENT_CLIENTS").unwrap_or_else(|| {
        panic!(
            "MEMORY_PROXY_AGENT_CLIENTS is not set: run the tests with `cargo xtask test`, which installs Claude Code and Codex CLI from npm"
        )
    });
    let path = PathBuf::from(dir).join(name);
    assert!(path.exists(), "{} is missing: the npm install of the agents did not complete", path.display());
    path
}

/// A throwaway git repository (its canonical path: what the agents report).
fn repository(parent: &Path, name: &str) -> PathBuf {
    let path = parent.join(name);
    std::fs::create_dir_all(&path).unwrap();
    let status = Command::new("git").args(["init", "-q"]).current_dir(&path).status().unwrap();
    assert!(status.success(), "git init");
    path.canonicalize().unwrap()
}

/// Runs an agent to completion (2 minutes at most) with only the environment given;
/// its stdout.
fn run(program: &Path, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Anything not for 127.0.0.1 goes to a closed port: nothing leaves the machine.
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{} {args:?} did not finish within 2 minutes", program.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{} {args:?} failed: {stdout}\n{stderr}", program.display());
    stdout.into_owned()
}

struct Agents {
    claude: PathBuf,
    codex: PathBuf,
    home: PathBuf,
    codex_home: PathBuf,
    gateway_url: String,
    key: String,
}

impl Agents {
    /// Both agents, installed by the test command, with a throwaway `HOME` and a Codex
    /// configuration that points at the gateway under `scratch`.
    fn new(scratch: &Path, gateway_url: &str, key: &str) -> Self {
        let (claude, codex) = (agent("claude"), agent("codex"));
        let codex_home = scratch.join("codex-home");
        std::fs::create_dir_all(&codex_home).unwrap();
        std::fs::write(
            codex_home.join("config.toml"),
            format!(
                "model = \"gpt-mock\"\nmodel_provider = \"memory-proxy\"\n\n[model_providers.memory-proxy]\nname = \"Memory Proxy\"\nbase_url = \"{gateway_url}/v1\"\nenv_key = \"MEMORY_PROXY_KEY\"\nwire_api = \"responses\"\n"
            ),
        )
        .unwrap();
        let home = scratch.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Self { claude, codex, home, codex_home, gateway_url: gateway_url.to_owned(), key: key.to_owned() }
    }

    fn claude(&self, dir: &Path, model: &str, args: &[&str]) -> String {
        let mut all = vec!["-p", "--model", model];
        all.extend(args);
        let env = [
            ("HOME", self.home.to_str().unwrap()),
            ("ANTHROPIC_BASE_URL", self.gateway_url.as_str()),
            ("ANTHROPIC_AUTH_TOKEN", self.key.as_str()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("DISABLE_TELEMETRY", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
        ];
        run(&self.claude, &all, dir, &env)
    }

    fn codex(&self, dir: &Path, prompt: &str) -> String {
        self.codex_on(dir, "gpt-mock", prompt)
    }

    fn codex_on(&self, dir: &Path, model: &str, prompt: &str) -> String {
        let env = [
            ("HOME", self.home.to_str().unwrap()),
            ("CODEX_HOME", self.codex_home.to_str().unwrap()),
            ("MEMORY_PROXY_KEY", self.key.as_str()),
        ];
        run(&self.codex, &["exec", "--skip-git-repo-check", "-m", model, prompt], dir, &env)
    }
}

/// The body of the last request the mock received on a path ending in `path`.
async fn last_upstream(mock: &Mock, path: &str) -> Value {
    let calls = mock.calls().await;
    let call = calls.iter().rev().find(|c| c["path"].as_str().is_some_and(|p| p.contains(path)));
    call.unwrap_or_else(|| panic!("no upstream call to {path}"))["body"].clone()
}

#[tokio::test]
async fn claude_code_and_codex_remember_the_users_words_per_project() {
    let mock = Mock::start_with(&["--no-tool-calls", "--reply", "Noted."]);
    let config = format!(
        "model_list:
  - model_name: claude-*
    litellm_params: {{model: anthropic/mock-claude, api_base: '{url}'}}
  - model_name: gpt-mock
    litellm_params: {{model: openai/mock-gpt, api_base: '{base}'}}
general_settings:
  master_key: {MASTER}
memory:
  recall_limit: 3
",
        url = mock.url,
        base = mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    let (key, key_id) = gateway.new_key(MASTER, &json!({ "key_alias": "agents" })).await;
    let (key, key_id) = (key.as_str(), key_id.as_str());
    let scratch = TempDir::new();
    let (repo_a, repo_b) = (repository(&scratch.path, "shop"), repository(&scratch.path, "blog"));
    let agents = Agents::new(&scratch.path, &gateway.url, key);
    let memories_of = |project: &Path| {
        let request =
            gateway.get("/v1/memories").bearer_auth(key).header("x-memory-project", project.to_str().unwrap());
        async move {
            let page: Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(page["scope"]["user"], key_id, "the key's own user");
            page["data"].as_array().cloned().unwrap_or_default()
        }
    };

    // Claude Code in repository A: the answer arrives, and what is remembered is what
    // the user typed, not the kilobytes of reminders around it.
    let answer = agents.claude(&repo_a, "claude-opus-5", &["Our staging database is called heron"]);
    assert!(answer.contains("Noted."), "{answer}");
    let stored = wait_for(Duration::from_secs(10), || async {
        let memories = memories_of(&repo_a).await;
        (!memories.is_empty()).then_some(memories)
    })
    .await
    .expect("Claude Code's turn is remembered in its project");
    let text = stored[0]["text"].as_str().unwrap();
    assert!(text.starts_with("User: Our staging database is called heron"), "{text}");
    assert!(!text.contains("system-reminder") && !text.contains("<"), "no scaffolding: {text}");
    assert_eq!(stored[0]["client"], "claude-code");
    let rows = gateway.requests(MASTER, "client=claude-code").await;
    let row = &rows[0];
    assert_eq!((row["status"].as_u64(), row["project"].as_str()), (Some(200), repo_a.to_str()), "{row}");
    assert!(row["input_tokens"].as_u64().unwrap() > 100, "{row}");

    // The next Claude Code session in A recalls it, and its second turn keeps the
    // first turn's system prompt, memory block included, byte for byte.
    agents.claude(&repo_a, "claude-opus-5", &["What is our staging database called?"]);
    let first_turn = last_upstream(&mock, "/v1/messages").await;
    assert!(first_turn["system"].to_string().contains("heron"), "recalled: {}", first_turn["system"]);
    agents.claude(&repo_a, "claude-opus-5", &["--continue", "And who owns it?"]);
    let second_turn = last_upstream(&mock, "/v1/messages").await;
    assert_eq!(second_turn["system"].to_string(), first_turn["system"].to_string(), "a byte-stable prefix");
    assert_eq!(second_turn["messages"][0].to_string(), first_turn["messages"][0].to_string());
    assert!(second_turn["messages"].as_array().unwrap().len() > first_turn["messages"].as_array().unwrap().len());

    // Codex in A recalls what was told to Claude Code there: memory follows the
    // project across clients. Its turn is remembered too (it hangs up right after
    // `response.completed`).
    let answer = agents.codex(&repo_a, "Which database did I mention?");
    assert!(answer.contains("Noted."), "{answer}");
    let responses = last_upstream(&mock, "/responses").await;
    assert!(responses["instructions"].to_string().contains("heron"), "recalled into Codex");
    let codex_memory = wait_for(Duration::from_secs(10), || async {
        let memories = memories_of(&repo_a).await;
        memories.into_iter().find(|m| m["client"] == "codex")
    })
    .await
    .expect("Codex's turn is remembered");
    assert_eq!(codex_memory["text"].as_str().unwrap(), "User: Which database did I mention?\nAssistant: Noted.");

    // Repository B recalls nothing of A, from either agent.
    agents.claude(&repo_b, "claude-opus-5", &["What is our staging database called?"]);
    assert!(!last_upstream(&mock, "/v1/messages").await.to_string().contains("heron"), "no leak into B");
    agents.codex(&repo_b, "Which database did I mention?");
    assert!(!last_upstream(&mock, "/responses").await.to_string().contains("heron"), "no leak into B");

    // Claude Code on an OpenAI-format model answers through translation.
    let answer = agents.claude(&repo_b, "gpt-mock", &["Say hello"]);
    assert!(answer.contains("Noted."), "{answer}");
    assert_eq!(last_upstream(&mock, "/chat/completions").await["model"], "mock-gpt");
}

#[tokio::test]
async fn codex_reaches_anthropic_and_chat_only_models_through_a_tool_loop() {
    // The mock calls the first tool Codex offers; Codex runs it (the mock's arguments
    // are not a command, so Codex reports that back as the call's output) and asks
    // again; the mock answers with what the tool said.
    let mock = Mock::start();
    let config = format!(
        "model_list:
  - model_name: claude-mock
    litellm_params: {{model: anthropic/mock-claude, api_base: '{url}'}}
  - model_name: local-mock
    litellm_params: {{model: hosted_vllm/mock-local, api_base: '{url}'}}
general_settings:
  master_key: {MASTER}
memory: {{}}
",
        url = mock.url
    );
    let gateway = Gateway::start(&config);
    let (key, _) = gateway.new_key(MASTER, &json!({ "key_alias": "codex" })).await;
    let scratch = TempDir::new();
    let repo = repository(&scratch.path, "api");
    let agents = Agents::new(&scratch.path, &gateway.url, &key);

    for (model, path, upstream_model) in
        [("claude-mock", "/v1/messages", "mock-claude"), ("local-mock", "/v1/chat/completions", "mock-local")]
    {
        let before = mock.calls().await.len();
        let answer = agents.codex_on(&repo, model, "List the files here");
        assert!(answer.contains("The tool said:"), "{model}: {answer}");
        let calls = mock.calls().await;
        let ours: Vec<&Value> = calls[before..].iter().filter(|c| c["path"] == path).collect();
        assert!(ours.len() >= 2, "{model}: a call and its follow-up, got {}", ours.len());
        let follow_up = &ours.last().unwrap()["body"];
        assert_eq!(follow_up["model"], upstream_model);
        let history = follow_up["messages"].to_string();
        match path {
            "/v1/messages" => assert!(history.contains("tool_result") && history.contains("tool_use"), "{history}"),
            _ => assert!(history.contains("\"tool_call_id\"") && history.contains("\"tool_calls\""), "{history}"),
        }
        assert!(history.contains("exec_command"), "Codex's own tool was offered and called: {history}");
    }

    let rows = gateway.requests(MASTER, "client=codex").await;
    assert!(rows.len() >= 4, "{rows:?}");
    for row in &rows {
        assert_eq!(row["status"], 200, "streams that reached response.completed are successes: {row}");
        assert!(row["output_tokens"].as_u64().unwrap() > 0, "usage mapped: {row}");
    }
}

#[tokio::test]
async fn claude_code_reaches_a_chat_only_model_through_a_tool_loop() {
    // Claude Code's requests carry a system turn among the messages (its environment)
    // and a tool loop; both must survive the translation to chat completions.
    let mock = Mock::start();
    let config = format!(
        "model_list:
  - model_name: local-mock
    litellm_params: {{model: hosted_vllm/mock-local, api_base: '{url}'}}
general_settings:
  master_key: {MASTER}
",
        url = mock.url
    );
    let gateway = Gateway::start(&config);
    let (key, _) = gateway.new_key(MASTER, &json!({ "key_alias": "claude" })).await;
    let scratch = TempDir::new();
    let repo = repository(&scratch.path, "api");
    let agents = Agents::new(&scratch.path, &gateway.url, &key);
    let answer = agents.claude(&repo, "local-mock", &["List the files here"]);
    assert!(answer.contains("The tool said:"), "{answer}");
    let calls = mock.calls().await;
    let chats: Vec<&Value> = calls.iter().filter(|c| c["path"] == "/v1/chat/completions").collect();
    assert!(chats.len() >= 2, "a call and its follow-up, got {}", chats.len());
    let follow_up = &chats.last().unwrap()["body"];
    let history = follow_up["messages"].to_string();
    assert!(history.contains("\"tool_call_id\"") && history.contains("\"tool_calls\""), "{history}");
    let systems = follow_up["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "system").count();
    assert!(systems >= 1, "Claude Code's system prompt arrived as system messages: {history}");
}
