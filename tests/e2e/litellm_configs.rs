//! LiteLLM proxy configs as users have them (`tests/fixtures/litellm-configs`, written
//! after LiteLLM's docs and examples), each alone in a folder with its environment
//! variables set to dummies: the gateway starts, lists the models LiteLLM would list,
//! marks the deployments it cannot serve, and routes a request to the mock provider.
//! Each file says in its header what to expect (`# expect-models:`, `# expect-disabled:`,
//! `# call:`); its local servers' addresses are pointed at the mock.

use e2e::{Gateway, Launch, Mock};
use serde_json::{Value, json};

/// The value of a `# key:` header line, as a list.
fn header(text: &str, key: &str) -> Vec<String> {
    let line = text.lines().find_map(|l| l.strip_prefix(&format!("# {key}:"))).unwrap_or_else(|| panic!("no {key}"));
    line.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Every `os.environ/VAR` of the config.
fn variables(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .split("os.environ/")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect();
    found.sort();
    found.dedup();
    found
}

#[tokio::test]
async fn litellm_configs_start_list_their_models_and_serve() {
    let dir = e2e::repo_root().join("tests/fixtures/litellm-configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "the corpus is there");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let original = std::fs::read_to_string(&file).unwrap();
        let mock = Mock::start();
        let text = original
            .replace("http://localhost:11434", &mock.url)
            .replace("http://localhost:8000/v1", &mock.openai_base());
        let vars = variables(&text);
        let dummies: Vec<(String, String)> = vars.iter().map(|v| (v.clone(), format!("dummy-{v}"))).collect();
        let env = dummies.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let gateway = Gateway::launch(&text, Launch { env, ..Launch::default() })
            .unwrap_or_else(|(status, output)| panic!("{name} did not start ({status:?}):\n{output}"));
        let master = if text.contains("master_key: sk-1234") { "sk-1234" } else { "dummy-LITELLM_MASTER_KEY" };

        let models: Value = gateway.get("/v1/models").bearer_auth(master).send().await.unwrap().json().await.unwrap();
        let listed: Vec<&Value> =
            models["data"].as_array().unwrap_or_else(|| panic!("{name}: {models}")).iter().collect();
        let ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, header(&original, "expect-models"), "{name}: the models LiteLLM lists");
        let disabled: Vec<&str> =
            listed.iter().filter(|m| m["disabled"] == true).map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(disabled, header(&original, "expect-disabled"), "{name}: what cannot serve is marked");
        let logs = gateway.logs();
        for model in &disabled {
            assert!(logs.contains(&format!("of model `{model}` is disabled:")), "{name}: {model} says why:\n{logs}");
        }

        let model = &header(&original, "call")[0];
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": "hello" }] });
        let response = gateway.post("/v1/chat/completions").bearer_auth(master).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}: {model} is served");
        let answer: Value = response.json().await.unwrap();
        assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().contains("You said: hello"), "{name}");
        assert_eq!(mock.calls().await.len(), 1, "{name}: the request reached the mock once");
        for (var, value) in dummies.iter().filter(|(var, _)| var.contains("KEY")) {
            assert!(!gateway.logs().contains(value.as_str()), "{name}: {var}'s value reached the log");
        }
    }
}
