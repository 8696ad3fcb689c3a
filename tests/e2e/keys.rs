//! Identity and access: virtual keys like LiteLLM's (lifecycle, allow-lists, budgets,
//! rate limits), scopes pinned by keys, client credentials passed through, and
//! authentication that never breaks on odd input. Every secret here contains
//! "SECRET": the test command checks no log line of the whole run does.

use std::time::Duration;

use e2e::{Gateway, Mock, one_model, wait_for};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-SECRET-keys";

/// Two priced models (at a dollar per thousand tokens, so costs are visible) on one mock.
fn config(mock: &Mock) -> String {
    format!(
        "model_list:
  - model_name: cheap
    litellm_params: {{model: openai/cheap-up, api_base: '{base}'}}
    model_info: {{input_cost_per_token: 0.001, output_cost_per_token: 0.001}}
  - model_name: other
    litellm_params: {{model: openai/other-up, api_base: '{base}'}}
general_settings:
  master_key: {MASTER}
",
        base = mock.openai_base()
    )
}

async fn generate(gateway: &Gateway, settings: Value) -> Value {
    let response = gateway.post("/key/generate").bearer_auth(MASTER).json(&settings).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn chat(gateway: &Gateway, key: &str, model: &str) -> reqwest::Response {
    gateway
        .post("/v1/chat/completions")
        .bearer_auth(key)
        .json(&json!({ "model": model, "messages": [{ "role": "user", "content": "hello there" }] }))
        .send()
        .await
        .unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_key_is_created_used_updated_and_deleted() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock));
    let created =
        generate(&gateway, json!({ "models": ["cheap"], "key_alias": "ci", "metadata": { "team": "core" } })).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["token"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-mp-") && key.len() == 38, "{key}");
    assert!(id.starts_with("key_"));
    assert_eq!(created["key_name"], format!("sk-mp-...{}", &key[key.len() - 4..]));

    assert_eq!(chat(&gateway, &key, "cheap").await.status(), 200);
    let (status, error) = error_of(chat(&gateway, &key, "other").await).await;
    assert_eq!(status, 403, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("may not use model `other`"));

    // Spend comes from the request's usage at the model's price.
    let info: Value =
        gateway.get(&format!("/key/info?key={id}")).bearer_auth(MASTER).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["key"], id);
    let spend = info["info"]["spend"].as_f64().unwrap();
    assert!(spend > 0.0, "{info}");
    // A key may read its own info; it never shows the key itself.
    let own: Value = gateway.get("/key/info").bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(own["info"]["spend"].as_f64(), Some(spend));
    assert!(!own.to_string().contains(&key));
    let listed: Value = gateway.get("/key/list").bearer_auth(MASTER).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["keys"], json!([id]));
    assert_eq!(
        gateway.get("/key/list").bearer_auth(&key).send().await.unwrap().status(),
        403,
        "only the master key manages keys"
    );

    let updated: Value = gateway
        .post("/key/update")
        .bearer_auth(MASTER)
        .json(&json!({ "key": id, "models": ["cheap", "other"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["models"], json!(["cheap", "other"]), "{updated}");
    assert_eq!(updated["spend"].as_f64(), Some(spend), "an update keeps the spend");
    assert_eq!(chat(&gateway, &key, "other").await.status(), 200);
    for (bad, field) in [
        (json!({ "key": id, "rpm_limit": 0 }), "rpm_limit"),
        (json!({ "key": id, "budget_duration": "999999999999999999m" }), "budget_duration"),
        (json!({ "key": id, "max_budget": -1 }), "max_budget"),
    ] {
        let (status, error) =
            error_of(gateway.post("/key/update").bearer_auth(MASTER).json(&bad).send().await.unwrap()).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error["error"]["param"], field, "{error}");
    }

    let deleted: Value = gateway
        .post("/key/delete")
        .bearer_auth(MASTER)
        .json(&json!({ "keys": [key] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["deleted_keys"], json!([id]));
    let (status, error) = error_of(chat(&gateway, &key, "cheap").await).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["message"], "invalid API key");
    assert!(!gateway.logs().contains(&key), "the key never reaches a log line");
}

#[tokio::test]
async fn keys_survive_a_restart_and_expire() {
    let mock = Mock::start();
    let dir = e2e::TempDir::new();
    let launch =
        || Gateway::launch(&config(&mock), e2e::Launch { dir: Some(&dir.path), ..e2e::Launch::default() }).unwrap();
    let mut gateway = launch();
    let lasting = generate(&gateway, json!({ "duration": "1h" })).await["key"].as_str().unwrap().to_owned();
    let brief = generate(&gateway, json!({ "duration": "1s" })).await["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&gateway, &lasting, "cheap").await.status(), 200);
    assert_eq!(gateway.terminate(), Some(0));

    let gateway = launch();
    assert_eq!(chat(&gateway, &lasting, "cheap").await.status(), 200, "keys are stored, not in memory only");
    // The brief key lives a second: ask until it has expired.
    let expired = wait_for(Duration::from_secs(5), || async {
        let response = chat(&gateway, &brief, "cheap").await;
        (response.status() == 401).then_some(response)
    })
    .await
    .expect("the brief key expires");
    let (status, error) = error_of(expired).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["message"], "this API key has expired");
}

/// A fallback never takes a key to a model it may not use.
#[tokio::test]
async fn fallbacks_respect_the_allow_list() {
    let mock = Mock::start();
    let config = format!("{}litellm_settings:\n  fallbacks: [{{cheap: [other]}}]\n", config(&mock));
    let gateway = Gateway::start(&config);
    let narrow = generate(&gateway, json!({ "models": ["cheap"] })).await["key"].as_str().unwrap().to_owned();
    let wide = generate(&gateway, json!({ "models": ["cheap", "other"] })).await["key"].as_str().unwrap().to_owned();

    mock.fault(json!([{ "model": "cheap-up", "status": 500, "times": 100 }])).await;
    assert_eq!(chat(&gateway, &wide, "cheap").await.status(), 200, "the fallback answers");
    assert_eq!(mock.calls().await.last().unwrap()["body"]["model"], "other-up");
    let calls = mock.calls().await.len();
    assert_eq!(chat(&gateway, &narrow, "cheap").await.status(), 500);
    assert!(mock.calls().await[calls..].iter().all(|c| c["body"]["model"] == "cheap-up"));
}

/// With request logging off (LiteLLM's `disable_spend_logs`), spend is still kept:
/// a restart does not hand a spent key a fresh budget.
#[tokio::test]
async fn spend_survives_a_restart_with_request_logging_off() {
    let mock = Mock::start();
    let dir = e2e::TempDir::new();
    let config = format!("{}  disable_spend_logs: true\n", config(&mock));
    let launch = || Gateway::launch(&config, e2e::Launch { dir: Some(&dir.path), ..e2e::Launch::default() }).unwrap();
    let mut gateway = launch();
    let key = generate(&gateway, json!({ "max_budget": 0.01 })).await["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&gateway, &key, "cheap").await.status(), 200);
    assert_eq!(gateway.terminate(), Some(0));

    let gateway = launch();
    let (status, error) = error_of(chat(&gateway, &key, "cheap").await).await;
    assert_eq!(status, 429, "{error}");
    let summary: Value =
        gateway.get("/analytics/summary").bearer_auth(MASTER).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["requests"], 0, "no request was logged");
}

#[tokio::test]
async fn a_spent_budget_is_a_429_naming_the_budget_until_it_resets() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock));
    // One request costs about 0.03 $ at these prices; the budget allows the first only.
    let key = generate(&gateway, json!({ "max_budget": 0.01, "budget_duration": "2s" })).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(chat(&gateway, &key, "cheap").await.status(), 200);
    let response = chat(&gateway, &key, "cheap").await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, error) = error_of(response).await;
    assert_eq!(status, 429);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("budget exceeded")
            && message.contains("max_budget of $0.01")
            && message.contains("2s budget"),
        "{message}"
    );
    let reset = wait_for(Duration::from_secs(4), || async {
        (chat(&gateway, &key, "cheap").await.status() == 200).then_some(())
    })
    .await;
    assert!(reset.is_some(), "a new budget period starts");
}

#[tokio::test]
async fn rpm_and_tpm_limits_answer_429_with_retry_after() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock));
    let rpm = generate(&gateway, json!({ "rpm_limit": 2 })).await["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&gateway, &rpm, "cheap").await.status(), 200);
    assert_eq!(chat(&gateway, &rpm, "cheap").await.status(), 200);
    let limited = chat(&gateway, &rpm, "cheap").await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert!(error_of(limited).await.1["error"]["message"].as_str().unwrap().contains("rpm_limit of 2"));

    let tpm = generate(&gateway, json!({ "tpm_limit": 10 })).await["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&gateway, &tpm, "cheap").await.status(), 200, "the first request spends more than 10 tokens");
    let limited = chat(&gateway, &tpm, "cheap").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(error_of(limited).await.1["error"]["message"].as_str().unwrap().contains("tpm_limit of 10"));
    assert_eq!(mock.calls().await.len(), 3, "refused requests never reached the upstream");
}

#[tokio::test]
async fn a_key_pins_its_user_and_project() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock));
    let key =
        generate(&gateway, json!({ "user_id": "ana", "project": "shop" })).await["key"].as_str().unwrap().to_owned();
    let info: Value = gateway
        .get("/memory-routing/info")
        .bearer_auth(&key)
        .header("x-memory-user-id", "someone-else")
        .header("user-agent", "OpenAIClientImpl/Java")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["user_id"], "ana", "the key wins over headers");
    assert_eq!(info["project"], "shop");
    assert_eq!(info["identity"]["user"]["source"]["kind"], "key");
    assert!(info["matched_rule"].as_str().unwrap().starts_with("virtual key key_"));
    assert_eq!(info["models"], json!(["cheap", "other"]));
    assert!(!info.to_string().contains(&key), "the key is masked: {info}");
    assert_eq!(info["key"]["key_name"], format!("sk-mp-...{}", &key[key.len() - 4..]));
}

#[tokio::test]
async fn client_credentials_go_upstream_when_the_deployment_asks() {
    let mock = Mock::start();
    let config = format!(
        "model_list:
  - model_name: claude
    litellm_params: {{model: anthropic/claude-up, api_base: '{}', forward_client_auth: true}}
general_settings:
  master_key: {MASTER}
",
        mock.url
    );
    let gateway = Gateway::start(&config);
    let body = json!({ "model": "claude", "max_tokens": 10, "messages": [{ "role": "user", "content": "x" }] });
    // Claude Code with a subscription: its OAuth token in Authorization, ours apart.
    let response = gateway
        .post("/v1/messages")
        .header("authorization", "Bearer oauth-SECRET-subscription")
        .header("x-memory-proxy-key", MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let call = &mock.calls().await[0];
    assert_eq!(call["headers"]["authorization"], "Bearer oauth-SECRET-subscription");
    assert!(call["headers"].get("x-memory-proxy-key").is_none());
    assert!(call["headers"].get("x-api-key").is_none());
    // The gateway's own credential is never passed on.
    let response = gateway.post("/v1/messages").header("x-api-key", MASTER).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(mock.calls().await[1]["headers"].get("x-api-key").is_none());
    // Not even when the client sends it twice (both SDK variables set to one key).
    let response = gateway
        .post("/v1/messages")
        .header("x-api-key", MASTER)
        .header("authorization", format!("Bearer {MASTER}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = &mock.calls().await[2]["headers"];
    assert!(headers.get("x-api-key").is_none() && headers.get("authorization").is_none(), "{headers}");
    let logs = gateway.logs();
    assert!(!logs.contains("oauth-SECRET") && !logs.contains(MASTER));
}

/// A small deterministic generator, so failures can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[tokio::test]
async fn odd_credentials_are_refused_never_a_server_error() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock));
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gateway.url);
    let body = json!({ "model": "cheap", "messages": [{ "role": "user", "content": "x" }] });
    let mut random = Lcg(0x5eed);
    for case in 0..300 {
        let length = (random.next() % 200) as usize;
        // Any byte a header value may hold: visible ASCII, spaces, tabs and obs-text.
        let bytes: Vec<u8> = (0..length)
            .map(|_| match (random.next() % 256) as u8 {
                0..=8 | 10..=31 | 127 => b'x',
                b => b,
            })
            .collect();
        let value = reqwest::header::HeaderValue::from_bytes(&bytes).unwrap();
        let header = ["authorization", "x-api-key", "api-key", "x-memory-proxy-key"][case % 4];
        let response = client.post(&url).header(header, value).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 401, "case {case}: {header}: {bytes:?}");
    }
    let huge = format!("Bearer {}", "k".repeat(60_000));
    let status = client.post(&url).header("authorization", huge).json(&body).send().await.unwrap().status();
    assert!(status == 401 || status == 431, "a huge header is refused: {status}");
    assert!(mock.calls().await.is_empty());
    assert_eq!(chat(&gateway, MASTER, "cheap").await.status(), 200, "and the gateway still serves");
}

#[tokio::test]
async fn key_management_needs_a_configured_master_key() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    let (status, error) = error_of(gateway.post("/key/generate").json(&json!({})).send().await.unwrap()).await;
    assert_eq!(status, 403);
    assert!(error["error"]["message"].as_str().unwrap().contains("set general_settings.master_key"));
}

#[tokio::test]
async fn cors_stays_closed_unless_origins_are_configured() {
    let mock = Mock::start();
    let preflight = |gateway: &Gateway| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{}/v1/chat/completions", gateway.url))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .send()
    };
    let closed = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    let response = preflight(&closed).await.unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let open = Gateway::start(&format!(
        "{}general_settings:\n  allowed_origins: ['https://app.example']\n",
        one_model("m", "openai/up", &mock.openai_base())
    ));
    let response = preflight(&open).await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example");
}

#[tokio::test]
async fn concurrent_streams_overshoot_a_budget_by_one_estimate_at_most() {
    // Streams that take a while: all ten are in flight before any has a cost.
    let mock = Mock::start_with(&["--chunk-delay-ms", "40"]);
    let gateway = Gateway::start(&config(&mock));
    // Each is estimated at about 0.04 $ (its prompt and max_tokens) and costs about 0.03 $.
    let key = generate(&gateway, json!({ "max_budget": 0.05 })).await["key"].as_str().unwrap().to_owned();
    let body = json!({ "model": "cheap", "stream": true, "max_tokens": 10,
        "messages": [{ "role": "user", "content": "one two three four five six seven" }] });
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let request = gateway.post("/v1/chat/completions").bearer_auth(&key).json(&body).send();
            tokio::spawn(async move {
                let response = request.await.unwrap();
                let status = response.status().as_u16();
                // Read to the end: a stream is paid for when it is over.
                let _ = response.text().await;
                status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=3).contains(&served), "the budget admits what it covers plus one estimate: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 10 - served);
    let info: Value =
        gateway.get(&format!("/key/info?key={key}")).bearer_auth(MASTER).send().await.unwrap().json().await.unwrap();
    let spend = info["info"]["spend"].as_f64().unwrap();
    assert!(spend <= 0.05 + 0.035, "spent {spend} of a 0.05 budget: {info}");
}
