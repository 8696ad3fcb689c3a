//! Supermemory as the memory backend, against the fake Supermemory the mock provider
//! plays: turns are written to the scope's container, later requests of that scope
//! receive what its search returns and no other scope does, the memory API works on
//! it within the caller's scope, and when Supermemory is slow or down the answers
//! still arrive and the captured turns wait in the outbox, across a crash, until it is
//! back.

use std::time::Duration;

use e2e::{Gateway, Launch, Mock, TempDir, wait_for};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-supermemory";
const SUPERMEMORY_KEY: &str = "sm-test-key-7f3a";
const PROVIDER_KEY: &str = "sk-provider-secret-91c2";

fn config(mock: &Mock, timeout_ms: u64) -> String {
    format!(
        "model_list:
  - model_name: chat
    litellm_params: {{model: openai/mock-gpt, api_base: '{base}', api_key: {PROVIDER_KEY}}}
general_settings:
  master_key: {MASTER}
memory:
  backend: supermemory
  recall_limit: 3
  supermemory:
    api_key: {SUPERMEMORY_KEY}
    base_url: '{url}'
    timeout_ms: {timeout_ms}
",
        base = mock.openai_base(),
        url = mock.url
    )
}

struct Caller<'a> {
    gateway: &'a Gateway,
    user: &'a str,
}

impl Caller<'_> {
    fn with_scope(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(MASTER).header("x-memory-user-id", self.user).header("x-memory-project", "/srv/shop")
    }

    async fn chat(&self, text: &str) -> Value {
        let body = json!({ "model": "chat", "messages": [{ "role": "user", "content": text }] });
        let response = self.with_scope(self.gateway.post("/v1/chat/completions")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn memories(&self, query: &str) -> Vec<Value> {
        let path = if query.is_empty() { "/v1/memories".to_owned() } else { format!("/v1/memories?q={query}") };
        let page: Value = self.with_scope(self.gateway.get(&path)).send().await.unwrap().json().await.unwrap();
        page["data"].as_array().cloned().unwrap_or_else(|| panic!("{page}"))
    }

    async fn container_tag(&self) -> String {
        let info: Value =
            self.with_scope(self.gateway.get("/memory-routing/info")).send().await.unwrap().json().await.unwrap();
        info["supermemory_container_tag"].as_str().unwrap().to_owned()
    }
}

async fn supermemory_calls(mock: &Mock, path: &str) -> Vec<Value> {
    mock.calls().await.into_iter().filter(|c| c["path"] == path).collect()
}

async fn documents_written(mock: &Mock, count: usize) -> Vec<Value> {
    wait_for(Duration::from_secs(10), || async {
        let written = supermemory_calls(mock, "/v3/documents").await;
        (written.len() >= count).then_some(written)
    })
    .await
    .unwrap_or_else(|| panic!("{count} documents were not written to Supermemory"))
}

async fn last_chat_upstream(mock: &Mock) -> Value {
    let calls = mock.calls().await;
    calls.iter().rev().find(|c| c["path"] == "/v1/chat/completions").unwrap()["body"].clone()
}

async fn analytics_rows(gateway: &Gateway, user: &str) -> Vec<Value> {
    gateway.requests(MASTER, &format!("user={user}")).await
}

#[tokio::test]
async fn turns_go_to_the_scopes_container_and_come_back_to_that_scope_only() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, 1_500));
    let (ana, bob) = (Caller { gateway: &gateway, user: "ana" }, Caller { gateway: &gateway, user: "bob" });
    let (ana_tag, bob_tag) = (ana.container_tag().await, bob.container_tag().await);
    assert_ne!(ana_tag, bob_tag);

    ana.chat("Our staging database is called heron").await;
    let written = documents_written(&mock, 1).await;
    let document = &written[0];
    assert_eq!(document["body"]["containerTag"], ana_tag.as_str());
    assert!(document["body"]["content"].as_str().unwrap().starts_with("User: Our staging database is called heron"));
    assert_eq!(document["headers"]["authorization"], format!("Bearer {SUPERMEMORY_KEY}"));
    assert!(document["body"]["customId"].as_str().unwrap().starts_with("mp_"));

    // Ana's next question is recalled from her container; Bob's is searched in his.
    ana.chat("What is our staging database called?").await;
    assert!(last_chat_upstream(&mock).await.to_string().contains("heron"), "recalled from Supermemory");
    let search = supermemory_calls(&mock, "/v4/search").await.pop().unwrap();
    assert_eq!(search["body"]["containerTag"], ana_tag.as_str());
    assert_eq!(search["body"]["q"], "What is our staging database called?");
    bob.chat("What is our staging database called?").await;
    assert!(!last_chat_upstream(&mock).await.to_string().contains("heron"), "nothing of Ana's for Bob");
    let search = supermemory_calls(&mock, "/v4/search").await.pop().unwrap();
    assert_eq!(search["body"]["containerTag"], bob_tag.as_str());
    let rows = wait_for(Duration::from_secs(5), || async {
        let rows = analytics_rows(&gateway, "ana").await;
        (rows.len() >= 2).then_some(rows)
    })
    .await
    .expect("both of Ana's requests recorded");
    assert!(rows.iter().any(|r| r["memories_recalled"] == 1), "{rows:?}");
    assert!(rows.iter().all(|r| r["memory_error"].is_null()), "{rows:?}");

    // The memory API works on Supermemory, within the caller's scope.
    documents_written(&mock, 3).await;
    let listed = ana.memories("").await;
    let heron = listed.iter().find(|m| m["text"].as_str().unwrap().contains("heron")).expect("listed").clone();
    assert!(ana.memories("heron").await.iter().any(|m| m["id"] == heron["id"]), "searched");
    assert!(bob.memories("").await.iter().all(|m| !m["text"].as_str().unwrap().contains("heron")));
    let id = heron["id"].as_str().unwrap();
    let refused = bob.with_scope(gateway.delete_path(&format!("/v1/memories/{id}"))).send().await.unwrap();
    assert_eq!(refused.status(), 404, "another scope's document is not Bob's to delete");
    assert!(ana.memories("").await.iter().any(|m| m["id"] == id), "still there");
    let deleted = ana.with_scope(gateway.delete_path(&format!("/v1/memories/{id}"))).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(ana.memories("").await.iter().all(|m| m["id"] != id), "gone");

    // The scope exports as JSON lines and deletes as a whole; Bob's container stays.
    let export = ana.with_scope(gateway.get("/v1/memories/export")).send().await.unwrap().text().await.unwrap();
    assert!(export.lines().count() >= 1 && export.contains("staging database"), "{export}");
    let gone = ana.with_scope(gateway.delete_path("/v1/memories?all=true")).send().await.unwrap();
    assert_eq!(gone.status(), 200);
    assert!(ana.memories("").await.is_empty());
    assert!(!bob.memories("").await.is_empty(), "Bob's container is his");

    // Each key goes only to its own service, and neither reaches a log line.
    for call in mock.calls().await {
        let text = call.to_string();
        match call["path"].as_str().unwrap() {
            "/v1/chat/completions" => assert!(!text.contains(SUPERMEMORY_KEY), "{text}"),
            _ => assert!(!text.contains(PROVIDER_KEY), "{text}"),
        }
    }
    let logs = gateway.logs();
    assert!(!logs.contains(SUPERMEMORY_KEY) && !logs.contains(PROVIDER_KEY));
}

#[tokio::test]
async fn answers_arrive_while_supermemory_is_slow_or_down_and_no_turn_is_lost() {
    let mock = Mock::start();
    let dir = TempDir::new();
    let text = config(&mock, 300);
    let launch = || Gateway::launch(&text, Launch { dir: Some(&dir.path), ..Launch::default() }).unwrap();
    let mut gateway = launch();

    // Slow: the search gives up at its timeout and the answer arrives without memories.
    mock.fault(json!([{ "model": "supermemory", "delay_ms": 2_000 }])).await;
    let ana = Caller { gateway: &gateway, user: "ana" };
    let answer = ana.chat("Deploys happen on Fridays").await;
    assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().contains("Fridays"));
    documents_written(&mock, 1).await;

    // Down: the answer arrives, the miss is counted, the turn waits in the outbox.
    mock.fault(json!([{ "model": "supermemory", "status": 503, "times": 1000 }])).await;
    ana.chat("The release branch is called lighthouse").await;
    let rows = wait_for(Duration::from_secs(5), || async {
        let rows = analytics_rows(&gateway, "ana").await;
        (rows.len() >= 2).then_some(rows)
    })
    .await
    .unwrap();
    let errors: Vec<&Value> = rows.iter().map(|r| &r["memory_error"]).collect();
    assert!(errors.contains(&&json!("supermemory_timeout")), "{errors:?}");
    assert!(errors.contains(&&json!("supermemory_error")), "{errors:?}");
    let waiting = wait_for(Duration::from_secs(10), || async {
        let metrics = gateway.get("/metrics").bearer_auth(MASTER).send().await.unwrap().text().await.unwrap();
        let waiting = metrics.lines().find(|l| l.starts_with("memory_proxy_memory_outbox "))?.to_owned();
        (waiting.ends_with(" 1") && metrics.contains("memory_proxy_memory_backend_errors_total")).then_some(metrics)
    })
    .await;
    assert!(waiting.is_some(), "the failed send left the turn in the outbox");
    let before = supermemory_calls(&mock, "/v3/documents").await.len();

    // A crash while it waits loses nothing: once Supermemory is back, it arrives.
    gateway.kill();
    let cleared = reqwest::Client::new().delete(format!("{}/_mock/faults", mock.url)).send().await.unwrap();
    assert!(cleared.status().is_success());
    gateway = launch();
    let ana = Caller { gateway: &gateway, user: "ana" };
    let found = wait_for(Duration::from_secs(15), || async {
        let memories = ana.memories("").await;
        memories.iter().any(|m| m["text"].as_str().unwrap().contains("lighthouse")).then_some(())
    })
    .await;
    assert!(found.is_some(), "the queued turn reached Supermemory after the restart");
    assert!(supermemory_calls(&mock, "/v3/documents").await.len() > before);
}

#[tokio::test]
async fn a_deployment_behind_supermemorys_router_gets_its_headers_and_no_memory_of_ours() {
    let mock = Mock::start();
    let text = format!(
        "model_list:
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {url}/v3/api.anthropic.com
      api_key: {PROVIDER_KEY}
general_settings:
  master_key: {MASTER}
memory:
  supermemory:
    base_url: {url}
",
        url = mock.url
    );
    let launch = Launch { env: vec![("SUPERMEMORY_API_KEY", SUPERMEMORY_KEY)], ..Launch::default() };
    let gateway = Gateway::launch(&text, launch).unwrap();
    let ana = Caller { gateway: &gateway, user: "ana" };
    let added = ana
        .with_scope(gateway.post("/v1/memories"))
        .json(&json!({ "text": "The staging database is called heron" }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);

    let body = json!({ "model": "claude-sonnet", "max_tokens": 50,
        "messages": [{ "role": "user", "content": "What is our staging database called?" }] });
    let response = ana.with_scope(gateway.post("/v1/messages")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let calls = mock.calls().await;
    let call =
        calls.iter().find(|c| c["path"] == "/v3/api.anthropic.com/v1/messages").expect("sent through the router");
    assert_eq!(call["headers"]["x-supermemory-api-key"], SUPERMEMORY_KEY);
    assert_eq!(call["headers"]["x-sm-user-id"], ana.container_tag().await.as_str());
    assert_eq!(call["headers"]["x-api-key"], PROVIDER_KEY);
    assert!(!call["body"].to_string().contains("heron"), "the router recalls; the gateway adds nothing");

    let rows = wait_for(Duration::from_secs(5), || async {
        let rows = analytics_rows(&gateway, "ana").await;
        rows.into_iter().find(|r| r["model"] == "claude-sonnet")
    })
    .await
    .expect("recorded");
    assert_eq!(rows["supermemory"]["conversation-id"], "conv_mock", "{rows}");
    assert_eq!(rows["memories_captured"], 0, "the router remembers; the gateway does not");
    assert_eq!(ana.memories("").await.len(), 1, "only the note added before");
    assert!(!gateway.logs().contains(SUPERMEMORY_KEY));

    // Without a Supermemory key the deployment cannot serve, and says why.
    let keyless = Gateway::start(&text);
    let response = keyless.post("/v1/messages").bearer_auth(MASTER).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("SUPERMEMORY_API_KEY"), "{error}");
}
