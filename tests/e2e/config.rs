//! Config problems: errors name the key's path and stop the start; keys we do not
//! implement are one warning; a deployment that cannot work (no key, an unknown
//! provider, a bad value) is disabled with its reason, not fatal.

use e2e::{Gateway, Launch, Mock};
use serde_json::{Value, json};

#[test]
fn an_invalid_config_stops_the_start_naming_the_path() {
    let config = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: k}\nrouter_settings:\n  num_retries: many\n";
    let Err((status, output)) = Gateway::launch(config, Launch::default()) else {
        panic!("started with a broken config")
    };
    assert_eq!(status, Some(2));
    assert!(output.contains("router_settings.num_retries: invalid type"), "{output}");
}

#[tokio::test]
async fn a_deployment_of_an_unknown_provider_or_a_bad_value_is_disabled_and_the_rest_serve() {
    let mock = Mock::start();
    let config = format!(
        "model_list:\n  - model_name: ok\n    litellm_params: {{model: openai/up, api_base: '{}', tpm: 20_000}}\n  - model_name: odd\n    litellm_params: {{model: nonsense/c}}\n  - model_name: slow\n    litellm_params: {{model: openai/s, api_key: k, timeout: soon}}\n",
        mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    let logs = gateway.logs();
    assert!(
        logs.contains("model `odd` is disabled: model_list[1].litellm_params.model: unknown provider `nonsense`"),
        "{logs}"
    );
    assert!(logs.contains("model `slow` is disabled: model_list[2].litellm_params.timeout: invalid type"), "{logs}");
    for (model, status) in [("ok", 200), ("odd", 503), ("slow", 503)] {
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": "x" }] });
        let response = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap();
        assert_eq!(response.status(), status, "{model}");
    }
    let health: Value = gateway.get("/health").send().await.unwrap().json().await.unwrap();
    assert_eq!((health["healthy_count"].as_u64(), health["unhealthy_count"].as_u64()), (Some(1), Some(2)));
}

#[tokio::test]
async fn an_alias_serves_its_model_and_is_listed_unless_hidden() {
    let mock = Mock::start();
    let config = format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/up, api_base: '{}'}}\nrouter_settings:\n  model_group_alias: {{gpt-4: gpt-4o, secret: {{model: gpt-4o, hidden: true}}}}\n",
        mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    for model in ["gpt-4", "secret"] {
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": "x" }] });
        let response = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{model}");
        assert_eq!(mock.calls().await.last().unwrap()["body"]["model"], "up");
    }
    let models: Value = gateway.get("/v1/models").send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gpt-4", "gpt-4o"]);
}

#[tokio::test]
async fn unknown_keys_warn_once_and_a_keyless_deployment_is_disabled() {
    let mock = Mock::start();
    let config = format!(
        "model_list:\n  - model_name: ok\n    litellm_params: {{model: openai/up, api_base: '{}'}}\n  - model_name: needs-key\n    litellm_params: {{model: openai/gpt-4o, api_key: os.environ/SOME_UNSET_KEY}}\ngeneral_settings:\n  alerting: [slack]\n  proxy_batch_write_at: 10\nlitellm_settings:\n  callbacks: [langfuse]\n",
        mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    let logs = gateway.logs();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("not implemented")).collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0]
            .contains("general_settings.alerting, general_settings.proxy_batch_write_at, litellm_settings.callbacks")
    );
    assert!(
        logs.contains("deployment model_list[1] of model `needs-key` is disabled: environment variable SOME_UNSET_KEY")
    );

    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "needs-key", "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("SOME_UNSET_KEY"), "{error}");

    let ok = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "ok", "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let health: Value = gateway.get("/health").send().await.unwrap().json().await.unwrap();
    assert_eq!((health["healthy_count"].as_u64(), health["unhealthy_count"].as_u64()), (Some(1), Some(1)));
    let models: Value = gateway.get("/v1/models").send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "needs-key");
    assert_eq!(models["data"][0]["disabled"], true, "listed as LiteLLM lists it, marked: {models}");
    assert_eq!(models["data"][1], json!({ "id": "ok", "object": "model", "created": 0, "owned_by": "memory-proxy" }));
}

#[tokio::test]
async fn environment_variables_fill_keys_and_the_master_key() {
    let mock = Mock::start();
    let config = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/up, api_base: '{}', api_key: os.environ/E2E_UPSTREAM_KEY}}\n",
        mock.openai_base()
    );
    let launch = Launch {
        env: vec![("E2E_UPSTREAM_KEY", "sk-upstream-SECRET"), ("MEMORY_PROXY_MASTER_KEY", "sk-env-SECRET")],
        ..Launch::default()
    };
    let gateway = Gateway::launch(&config, launch).unwrap();
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "x" }] });
    assert_eq!(gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().status(), 401);
    let response = gateway.post("/v1/chat/completions").bearer_auth("sk-env-SECRET").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(mock.calls().await[0]["headers"]["authorization"], "Bearer sk-upstream-SECRET");
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let mock = Mock::start();
    let config = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/up, api_base: '{}'}}\nlitellm_settings:\n  json_logs: true\n",
        mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let logs = e2e::wait_for(std::time::Duration::from_secs(5), || async {
        let logs = gateway.logs();
        logs.contains("request completed").then_some(logs)
    })
    .await
    .expect("the request's lines are logged");
    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "{logs}");
    let of_request: Vec<&Value> = lines.iter().filter(|l| l["span"]["id"] == id.as_str()).collect();
    assert!(!of_request.is_empty(), "every line of the request carries its id: {logs}");
    assert!(of_request.iter().any(|l| l["message"] == "request completed" && l["status"] == 200));
}

/// The shipped config.yaml, alone in a folder with no plugin folder beside it: the
/// built-in plugins inside the binary detect the client and translate.
#[tokio::test]
async fn the_shipped_config_alone_in_a_folder_runs_on_the_built_in_plugins() {
    let mock = Mock::start();
    let shipped = std::fs::read_to_string(e2e::repo_root().join("config.yaml")).unwrap();
    let config = shipped.replace("http://127.0.0.1:8765", &mock.url);
    let folder = e2e::TempDir::new();
    let no_plugins = folder.path.join("no-plugins-here");
    let launch = Launch { dir: Some(&folder.path), plugins_dir: Some(&no_plugins), ..Launch::default() };
    let gateway = Gateway::launch(&config, launch).unwrap();
    let logs = gateway.logs();
    assert!(!logs.contains("plugin not loaded"), "{logs}");
    assert_eq!(logs.matches("origin=\"built-in\"").count(), 7, "every built-in plugin, from the binary: {logs}");

    let who: Value = gateway
        .get("/memory-routing/info")
        .header("user-agent", "OpenAIClientImpl/Java")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["user_id"], "pycharm-ai", "the header detector with the config's user_id_mappings: {who}");

    let body = json!({ "model": "claude-demo", "messages": [{ "role": "user", "content": "hello" }] });
    let response = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "translated by the built-in Anthropic adapter");
    let answer: Value = response.json().await.unwrap();
    assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().contains("You said: hello"));
    assert_eq!(mock.calls().await.last().unwrap()["path"], "/v1/messages");
    assert!(!no_plugins.exists() && !folder.path.join("plugins").exists(), "no folder made beside the config");
}
