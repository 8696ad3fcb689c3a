//! Long-term memory end to end: a turn is remembered, recalled into a later prompt of
//! the same user and project only, in both APIs and from streams; tool loops recall
//! without being remembered; memories survive a crash; the memory API manages them
//! within the caller's scope.

use std::time::Duration;

use e2e::{Gateway, Launch, Mock, TempDir, wait_for};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-memory";

fn config(mock: &Mock, extra: &str) -> String {
    format!(
        "model_list:
  - model_name: chat
    litellm_params: {{model: openai/mock-gpt, api_base: '{base}'}}
  - model_name: claude
    litellm_params: {{model: anthropic/mock-claude, api_base: '{url}'}}
memory:
  recall_limit: 3
{extra}",
        base = mock.openai_base(),
        url = mock.url
    )
}

/// A client of one scope.
struct Caller<'a> {
    gateway: &'a Gateway,
    user: &'a str,
    project: &'a str,
}

impl Caller<'_> {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.gateway.post(path).header("x-memory-user-id", self.user).header("x-memory-project", self.project)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.with_method(self.gateway.get(path))
    }

    /// Any request, in this caller's scope.
    fn with_method(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("x-memory-user-id", self.user).header("x-memory-project", self.project)
    }

    async fn chat(&self, text: &str) -> Value {
        let body = json!({ "model": "chat", "messages": [{ "role": "user", "content": text }] });
        let response = self.post("/v1/chat/completions").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn memories(&self) -> Vec<Value> {
        let page: Value = self.get("/v1/memories").send().await.unwrap().json().await.unwrap();
        page["data"].as_array().cloned().unwrap_or_else(|| panic!("{page}"))
    }

    /// Waits until the scope holds `count` memories (captures are written in batches).
    async fn await_memories(&self, count: usize) -> Vec<Value> {
        let found = wait_for(Duration::from_secs(5), || async {
            let memories = self.memories().await;
            (memories.len() >= count).then_some(memories)
        })
        .await;
        found.unwrap_or_else(|| panic!("{count} memories did not arrive"))
    }
}

/// The system text of the last call the mock received (OpenAI system message or
/// Anthropic `system`), as JSON text; empty when there is none.
async fn last_system(mock: &Mock) -> String {
    let calls = mock.calls().await;
    let body = &calls.last().expect("a call")["body"];
    if let Some(system) = body.get("system") {
        return system.to_string();
    }
    let messages = body["messages"].as_array().unwrap();
    messages.iter().filter(|m| m["role"] == "system").map(|m| m["content"].to_string()).collect()
}

#[tokio::test]
async fn a_turn_is_remembered_and_recalled_for_its_user_and_project_only() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };

    ana.chat("My favourite colour is teal").await;
    assert_eq!(last_system(&mock).await, "", "nothing to recall yet");
    let memories = ana.await_memories(1).await;
    let text = memories[0]["text"].as_str().unwrap();
    assert!(text.starts_with("User: My favourite colour is teal\nAssistant: Hello from the mock model"), "{text}");

    ana.chat("Which colour is my favourite?").await;
    let system = last_system(&mock).await;
    assert!(system.contains("<memories>") && system.contains("My favourite colour is teal"), "{system}");
    // The client's own words reach the upstream as sent.
    let calls = mock.calls().await;
    let user = &calls.last().unwrap()["body"]["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(user, &json!({ "role": "user", "content": "Which colour is my favourite?" }));

    // Another user, and the same user in another project, recall nothing of it.
    Caller { gateway: &gateway, user: "bo", project: "/srv/shop" }.chat("Which colour is my favourite?").await;
    assert_eq!(last_system(&mock).await, "");
    Caller { gateway: &gateway, user: "ana", project: "/srv/blog" }.chat("Which colour is my favourite?").await;
    assert_eq!(last_system(&mock).await, "");

    // The databank counts what was recalled and captured.
    let rows = wait_for(Duration::from_secs(5), || async {
        let page: Value = gateway.get("/analytics/requests?user=ana").send().await.unwrap().json().await.unwrap();
        let rows = page["requests"].as_array().cloned().unwrap_or_default();
        (rows.len() >= 3).then_some(rows)
    })
    .await
    .expect("records");
    let shop: Vec<&Value> = rows.iter().filter(|r| r["project"] == "/srv/shop").collect();
    let recalled: Vec<i64> = shop.iter().map(|r| r["memories_recalled"].as_i64().unwrap()).collect();
    assert_eq!(recalled.iter().sum::<i64>(), 1, "{shop:?}");
    assert!(shop.iter().all(|r| r["memories_captured"] == 1), "both turns are remembered: {shop:?}");
}

#[tokio::test]
async fn anthropic_streams_are_remembered_and_recalled_into_the_system_prompt() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    let ask = |text: &str, stream: bool| {
        json!({
            "model": "claude", "max_tokens": 100, "stream": stream,
            "system": [{ "type": "text", "text": "You are terse.", "cache_control": { "type": "ephemeral" } }],
            "messages": [{ "role": "user", "content": text }],
        })
    };
    let streamed = ana.post("/v1/messages").json(&ask("The staging database listens on port 5433", true)).send().await;
    let body = streamed.unwrap().text().await.unwrap();
    assert!(body.contains("message_stop"), "{body}");
    let memories = ana.await_memories(1).await;
    let text = memories[0]["text"].as_str().unwrap();
    assert!(text.contains("port 5433") && text.contains("Assistant: Hello from the mock model"), "{text}");

    let answer = ana.post("/v1/messages").json(&ask("Which port does staging use?", false)).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let system = mock.calls().await.last().unwrap()["body"]["system"].clone();
    assert_eq!(system[0]["text"], "You are terse.");
    assert_eq!(system[0]["cache_control"]["type"], "ephemeral", "the cached prefix is untouched");
    let memories = system[1]["text"].as_str().unwrap();
    assert!(memories.starts_with("<memories>") && memories.contains("port 5433"), "{memories}");
}

#[tokio::test]
async fn tool_loops_recall_but_leave_no_memory() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    ana.chat("Deploys go through the ops/deploy.sh script").await;
    ana.await_memories(1).await;

    // A tool loop: the last message holds the tool's result; the user's words are
    // further back, and are what memories are recalled for.
    let looping = json!({
        "model": "chat",
        "messages": [
            { "role": "user", "content": "Run the deploy script" },
            { "role": "assistant", "content": null, "tool_calls": [{ "id": "c1", "type": "function", "function": { "name": "shell", "arguments": "{}" } }] },
            { "role": "tool", "tool_call_id": "c1", "content": "deployed" },
        ],
    });
    let response = ana.post("/v1/chat/completions").json(&looping).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(last_system(&mock).await.contains("ops/deploy.sh"));
    // A later turn's memory is written after anything the loop could have left (one
    // queue, in order): once it is there, nothing from the loop can still arrive.
    ana.chat("zzz").await;
    ana.await_memories(2).await;
    let texts: Vec<String> = ana.memories().await.iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.iter().all(|t| !t.contains("Run the deploy script")), "{texts:?}");
}

#[tokio::test]
async fn memories_survive_a_crash_and_the_api_manages_them_in_scope() {
    let mock = Mock::start();
    let dir = TempDir::new();
    let text = config(&mock, &format!("general_settings:\n  master_key: {MASTER}\n"));
    let launch = || Gateway::launch(&text, Launch { dir: Some(&dir.path), ..Launch::default() }).unwrap();
    let mut gateway = launch();
    let auth = |request: reqwest::RequestBuilder| request.bearer_auth(MASTER);
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };

    let added = auth(ana.post("/v1/memories")).json(&json!({ "text": "Ana reviews pull requests on Fridays" }));
    let added = added.send().await.unwrap();
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["scope"], json!({ "user": "ana", "project": "/srv/shop" }));
    auth(ana.post("/v1/chat/completions"))
        .json(&json!({ "model": "chat", "messages": [{ "role": "user", "content": "The CI runs on two cores" }] }))
        .send()
        .await
        .unwrap();
    wait_for(Duration::from_secs(5), || async {
        let page: Value = auth(ana.get("/v1/memories")).send().await.unwrap().json().await.unwrap();
        (page["data"].as_array().unwrap().len() == 2).then_some(())
    })
    .await
    .expect("the captured turn");

    gateway.kill();
    gateway = launch();
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    let found: Value = auth(ana.get("/v1/memories?q=when%20are%20pull%20requests%20reviewed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let found = found["data"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], added["id"]);
    assert!(found[0]["score"].as_f64().unwrap() > 0.0);
    let all: Value = auth(ana.get("/v1/memories")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 2, "both survived the crash: {all}");

    // A key pinned to another user sees none of it, whatever headers it sends, and
    // cannot delete it.
    let key: Value = auth(gateway.post("/key/generate"))
        .json(&json!({ "user_id": "bo" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap();
    let as_bo: Value = ana.get("/v1/memories").bearer_auth(key).send().await.unwrap().json().await.unwrap();
    assert_eq!(as_bo["scope"]["user"], "bo");
    assert_eq!(as_bo["data"], json!([]));
    let id = added["id"].as_str().unwrap();
    let refused = ana.gateway.delete_path(&format!("/v1/memories/{id}")).bearer_auth(key).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    let deleted = auth(ana.gateway.delete_path(&format!("/v1/memories/{id}")))
        .header("x-memory-user-id", "ana")
        .header("x-memory-project", "/srv/shop")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let left: Value = auth(ana.get("/v1/memories")).send().await.unwrap().json().await.unwrap();
    assert_eq!(left["data"].as_array().unwrap().len(), 1);

    // Bad input gets an OpenAI-shaped error.
    let empty = auth(ana.post("/v1/memories")).json(&json!({ "text": " " })).send().await.unwrap();
    assert_eq!(empty.status(), 400);
    let error: Value = empty.json().await.unwrap();
    assert_eq!(error["error"]["param"], "text");
    let unauthenticated = ana.get("/v1/memories").send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn without_a_memory_section_prompts_pass_untouched_and_the_api_says_why() {
    let mock = Mock::start();
    let gateway = Gateway::start(&e2e::one_model("chat", "openai/mock-gpt", &mock.openai_base()));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    let sent = json!({ "model": "chat", "messages": [{ "role": "user", "content": "My favourite colour is teal" }] });
    for _ in 0..2 {
        ana.post("/v1/chat/completions").json(&sent).send().await.unwrap();
    }
    // Both records written: a memory of them would have been written with them.
    wait_for(Duration::from_secs(5), || async {
        let page: Value = gateway.get("/analytics/requests").send().await.ok()?.json().await.ok()?;
        (page["requests"].as_array()?.len() == 2).then_some(())
    })
    .await
    .expect("both requests recorded");
    ana.post("/v1/chat/completions").json(&sent).send().await.unwrap();
    assert_eq!(mock.calls().await.last().unwrap()["body"]["messages"], sent["messages"]);
    let response = ana.get("/v1/memories").send().await.unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("memory is off"), "{error}");
}

#[tokio::test]
async fn a_stream_whose_client_hangs_up_after_its_last_event_is_a_remembered_success() {
    // Codex closes the connection right after `response.completed`, before the
    // upstream's body ends: the answer is whole all the same.
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/codex" };
    mock.fault(json!([{ "linger_ms": 3000 }])).await;
    let body = json!({ "model": "chat", "stream": true, "input": "Our staging database is called heron" });
    let response = ana.post("/v1/responses").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = futures_util::StreamExt::boxed(response.bytes_stream());
    let mut seen = String::new();
    while !seen.contains("event: response.completed") {
        let chunk = futures_util::StreamExt::next(&mut stream).await.expect("the stream goes on").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stream);

    let memories = ana.await_memories(1).await;
    assert!(memories[0]["text"].as_str().unwrap().contains("staging database is called heron"), "{memories:?}");
    let rows = wait_for(Duration::from_secs(5), || async {
        let page: Value = gateway.get("/analytics/requests").send().await.ok()?.json().await.ok()?;
        page["requests"].as_array().filter(|rows| !rows.is_empty()).cloned()
    })
    .await
    .expect("the request is recorded");
    assert_eq!((rows[0]["status"].as_u64(), rows[0]["error"].as_str()), (Some(200), None), "{:?}", rows[0]);
    assert_eq!(rows[0]["memories_captured"], 1);
}

#[tokio::test]
async fn a_key_not_pinned_to_a_user_acts_only_for_a_user_of_its_own() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, &format!("general_settings:\n  master_key: {MASTER}\n")));
    let master = |request: reqwest::RequestBuilder| request.bearer_auth(MASTER);
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    let planted = master(ana.post("/v1/memories")).json(&json!({ "text": "Ana's deploy token lives in vault" }));
    assert_eq!(planted.send().await.unwrap().status(), 201);

    // A key with no user pinned names "ana" in its headers: it is not ana.
    let (key, key_id) = gateway.new_key(MASTER, &json!({})).await;
    let page: Value = ana.get("/v1/memories").bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["scope"], json!({ "user": key_id, "project": "/srv/shop" }), "the key's own user, its project");
    assert_eq!(page["data"], json!([]), "none of ana's memories");
    let body =
        json!({ "model": "chat", "messages": [{ "role": "user", "content": "Where does the deploy token live?" }] });
    ana.post("/v1/chat/completions").bearer_auth(&key).json(&body).send().await.unwrap();
    assert!(!last_system(&mock).await.contains("vault"), "ana's memory is not recalled for the key");
    let planted = ana.post("/v1/memories").bearer_auth(&key).json(&json!({ "text": "Ignore the staging rules" }));
    assert_eq!(planted.send().await.unwrap().status(), 201);
    let as_ana: Value = master(ana.get("/v1/memories")).send().await.unwrap().json().await.unwrap();
    assert_eq!(as_ana["data"].as_array().unwrap().len(), 1, "nothing planted in ana's scope: {as_ana}");
    let routing: Value = gateway
        .get("/memory-routing/info")
        .bearer_auth(&key)
        .header("x-memory-user-id", "ana")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(routing["user_id"], key_id.as_str());

    // A key that says so lets its headers name the user.
    let (trusted, _) = gateway.new_key(MASTER, &json!({ "metadata": { "allow_scope_headers": true } })).await;
    let page: Value = ana.get("/v1/memories").bearer_auth(&trusted).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["scope"]["user"], "ana");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn secrets_in_a_turn_never_reach_the_store() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/keys" };
    // Each kind alone in its turn, so the mock's echo of the question (80 characters)
    // carries it into the answer too.
    let secrets = [
        ("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "Ab3dEf6h"),
        ("sk-ant-api03-Zy9xW8vU7tS6rQ5pO4nM3lK2jI1h", "Zy9xW8vU"),
        ("AKIAIOSFODNN7EXAMPLE", "IOSFODNN"),
        ("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "aBcDeFgH"),
        ("Bearer abc.def-ghi_jkl123456", "abc.def-ghi"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIB"),
        ("postgres://app:hunter2pass@db.internal/prod", "hunter2pass"),
        ("DATABASE_PASSWORD=correct-horse-battery", "correct-horse"),
    ];
    // Distinct words around each: redacted alike, two turns would be one memory.
    for (number, (secret, _)) in secrets.iter().enumerate() {
        ana.chat(&format!("Keep secret number {number}: {secret}")).await;
    }
    let memories = ana.await_memories(secrets.len()).await;
    let stored: Vec<&str> = memories.iter().map(|m| m["text"].as_str().unwrap()).collect();
    for (secret, tell) in secrets {
        assert!(stored.iter().all(|text| !text.contains(tell)), "{secret} was stored: {stored:#?}");
    }
    assert!(stored.iter().all(|text| text.contains("[REDACTED]")), "{stored:#?}");
    let added = ana.post("/v1/memories").json(&json!({ "text": "the admin password: tr0ub4dor" }));
    let added: Value = added.send().await.unwrap().json().await.unwrap();
    assert_eq!(added["text"], "the admin password: [REDACTED]");
}

#[tokio::test]
async fn count_tokens_counts_the_prompt_with_its_memories() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    ana.chat("The staging database listens on port 5433").await;
    ana.await_memories(1).await;
    let count =
        json!({ "model": "claude", "messages": [{ "role": "user", "content": "Which port does staging use?" }] });

    // An Anthropic upstream counts what it would be sent: the memory block included.
    let counted = ana.post("/v1/messages/count_tokens").json(&count).send().await.unwrap();
    assert_eq!(counted.status(), 200);
    let sent = mock.calls().await.last().unwrap()["body"].clone();
    assert!(sent["system"].to_string().contains("port 5433"), "{sent}");
    // An OpenAI-format upstream has no count: the estimate covers the memory block too.
    let estimated = |user: &str, project: &str| {
        let mut body = count.clone();
        body["model"] = json!("chat");
        let caller = Caller { gateway: &gateway, user, project };
        let request = caller.post("/v1/messages/count_tokens").json(&body);
        async move {
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            answer["input_tokens"].as_u64().unwrap()
        }
    };
    let with_memory = estimated("ana", "/srv/shop").await;
    let without = estimated("bo", "/srv/shop").await;
    assert!(with_memory > without + 20, "{with_memory} against {without}");
    // The chat turn and two counts, once the journal has written them all.
    let rows = wait_for(Duration::from_secs(5), || async {
        let page: Value = gateway.get("/analytics/requests?user=ana").send().await.ok()?.json().await.ok()?;
        page["requests"].as_array().filter(|rows| rows.len() >= 3).cloned()
    })
    .await
    .expect("the requests are recorded");
    let captured: i64 = rows.iter().map(|r| r["memories_captured"].as_i64().unwrap()).sum();
    assert_eq!(captured, 1, "counting is not a turn to remember: {rows:?}");
}

#[tokio::test]
async fn a_conversation_gets_the_same_memory_bytes_on_every_turn_even_after_a_restart() {
    let mock = Mock::start();
    let dir = TempDir::new();
    let text = config(&mock, "");
    let launch = || Gateway::launch(&text, Launch { dir: Some(&dir.path), ..Launch::default() }).unwrap();
    let mut gateway = launch();
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    for note in ["The staging database listens on port 5433", "Deploys to production happen on Fridays"] {
        let added = ana.post("/v1/memories").json(&json!({ "text": note })).send().await.unwrap();
        assert_eq!(added.status(), 201);
    }
    let system = json!([{ "type": "text", "text": "You are terse.", "cache_control": { "type": "ephemeral" } }]);
    let turn =
        |messages: Value| json!({ "model": "claude", "max_tokens": 100, "system": system, "messages": messages });
    let user = |text: &str| json!({ "role": "user", "content": [{ "type": "text", "text": text }] });
    let assistant = |text: &str| json!({ "role": "assistant", "content": text });
    let upstream = || async { mock.calls().await.last().unwrap()["body"].clone() };
    let send = |ana: &Caller<'_>, body: Value| {
        let request = ana.post("/v1/messages").header("x-claude-code-session-id", "s-1").json(&body);
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    };

    // Turn 1: the block goes after the cached system block.
    let q1 = user("Which port does staging use?");
    send(&ana, turn(json!([q1]))).await;
    let first = upstream().await;
    assert!(first["system"][1]["text"].as_str().unwrap().contains("port 5433"), "{first}");
    assert_eq!(first["system"][0], system[0], "the cached prefix is untouched");

    // A memory that would now match turn 1's question changes nothing already sent.
    let added = ana.post("/v1/memories").json(&json!({ "text": "The staging port is written in ops.md" }));
    assert_eq!(added.send().await.unwrap().status(), 201);

    // Turn 2 asks something new: turn 1's bytes stay, the new block goes into turn 2's message.
    let history = json!([q1, assistant("5433."), user("And on which day are deploys?")]);
    send(&ana, turn(history.clone())).await;
    let second = upstream().await;
    assert_eq!(second["system"], first["system"], "the system prompt is byte-stable");
    assert_eq!(second["messages"][0], first["messages"][0]);
    let asked = &second["messages"][2]["content"];
    assert!(asked[0]["text"].as_str().unwrap().contains("Fridays"), "{asked}");
    assert_eq!(asked.as_array().unwrap().last().unwrap()["text"], "And on which day are deploys?");

    // Turn 3 (a tool loop: nothing new asked) re-applies both blocks as they were, and
    // so does the gateway after a restart.
    let mut looping = history.as_array().unwrap().clone();
    looping.push(json!({ "role": "assistant", "content": [{ "type": "tool_use", "id": "t1", "name": "calendar", "input": {} }] }));
    looping.push(
        json!({ "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "t1", "content": "Friday" }] }),
    );
    send(&ana, turn(Value::Array(looping.clone()))).await;
    let third = upstream().await;
    assert_eq!(third["system"], second["system"]);
    let json_of =
        |body: &Value| body["messages"].as_array().unwrap()[..3].iter().map(Value::to_string).collect::<Vec<_>>();
    assert_eq!(json_of(&third), json_of(&second));
    wait_for(Duration::from_secs(5), || async {
        let rows: Value = gateway.get("/analytics/requests").send().await.ok()?.json().await.ok()?;
        (rows["requests"].as_array()?.len() >= 3).then_some(())
    })
    .await
    .expect("the turns are recorded");
    gateway.kill();
    gateway = launch();
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    send(&ana, turn(Value::Array(looping))).await;
    let after_restart = upstream().await;
    assert_eq!(after_restart["system"], second["system"]);
    assert_eq!(json_of(&after_restart), json_of(&second));

    // Another conversation of the same scope is recalled for afresh.
    let other = json!({ "model": "claude", "max_tokens": 100, "messages": [user("Which port does staging use?")] });
    send(&ana, other).await;
    assert!(upstream().await["system"].to_string().contains("ops.md"), "a new conversation sees the new memory");
}

/// True when the embedding model is installed where the gateway looks for it (the
/// test command installs it).
fn embedding_model_installed() -> bool {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cache")));
    let base = std::env::var_os("MEMORY_PROXY_MODELS")
        .map(std::path::PathBuf::from)
        .or(cache.map(|c| c.join("memory-proxy/models")));
    base.is_some_and(|base| base.join("all-MiniLM-L6-v2/model.safetensors").exists())
}

#[tokio::test]
async fn a_question_sharing_no_word_with_its_fact_recalls_it_by_meaning() {
    if !embedding_model_installed() {
        eprintln!("skipped: the embedding model is not installed (cargo xtask test installs it)");
        return;
    }
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    for note in ["Production releases go out every Saturday morning", "My favourite pasta is carbonara"] {
        let response = ana.post("/v1/memories").json(&json!({ "text": note })).send().await.unwrap();
        assert_eq!(response.status(), 201);
    }
    let question = "On which day of the week do we deploy?";
    // The vectors are written in the background, just after the memories.
    let found = wait_for(Duration::from_secs(20), || async {
        let page: Value = ana.get(&format!("/v1/memories?q={question}")).send().await.unwrap().json().await.unwrap();
        let first = page["data"][0]["text"].as_str()?.to_owned();
        first.contains("Saturday").then_some(page)
    })
    .await
    .expect("found by meaning: the question shares no word with the fact");
    assert!(
        found["data"].as_array().unwrap().iter().all(|m| !m["text"].as_str().unwrap().contains("carbonara")),
        "{found}"
    );

    ana.chat(question).await;
    assert!(last_system(&mock).await.contains("Saturday"), "recalled into the prompt");
    Caller { gateway: &gateway, user: "bo", project: "/srv/shop" }.chat(question).await;
    assert_eq!(last_system(&mock).await, "", "never another user's, by meaning either");
}

#[tokio::test]
async fn a_scope_exports_as_json_lines_and_deletes_as_a_whole_leaving_others_alone() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock, ""));
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    let bo = Caller { gateway: &gateway, user: "bo", project: "/srv/shop" };
    for (caller, note) in
        [(&ana, "The staging database is heron"), (&ana, "Deploys happen on Fridays"), (&bo, "Bo likes tea")]
    {
        let response = caller.post("/v1/memories").json(&json!({ "text": note })).send().await.unwrap();
        assert_eq!(response.status(), 201);
    }

    let export = ana.get("/v1/memories/export").send().await.unwrap();
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = export.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let texts: Vec<&str> = lines.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["The staging database is heron", "Deploys happen on Fridays"], "oldest first, Ana's only");

    let cy = Caller { gateway: &gateway, user: "cy", project: "/srv/shop" };
    let export_text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    for (imported, already_there) in [(2, 0), (0, 2)] {
        let response = cy.post("/v1/memories/import").body(export_text.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let counts: Value = response.json().await.unwrap();
        assert_eq!(
            (counts["imported"].as_u64(), counts["already_there"].as_u64()),
            (Some(imported), Some(already_there))
        );
    }
    let copied: Vec<Value> = cy.memories().await;
    assert_eq!(copied.len(), 2);
    assert_eq!(copied[1]["created_at"], lines[0]["created_at"], "the time of the original is kept");
    let bad = cy.post("/v1/memories/import").body("{\"text\": \"ok\"}\n{oops").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().starts_with("line 2:"), "{error}");

    let refused = gateway.delete_path("/v1/memories").header("x-memory-user-id", "ana").send().await.unwrap();
    assert_eq!(refused.status(), 400, "a whole scope needs all=true");
    let deleted: Value =
        ana.with_method(gateway.delete_path("/v1/memories?all=true")).send().await.unwrap().json().await.unwrap();
    assert_eq!(deleted["deleted"], 2, "{deleted}");
    assert!(ana.memories().await.is_empty());
    let found: Value = ana.get("/v1/memories?q=staging%20database").send().await.unwrap().json().await.unwrap();
    assert_eq!(found["data"], json!([]), "gone from the index and the vectors too");
    assert_eq!(bo.memories().await.len(), 1, "another user's memories stay");
}

/// The system text the mock received with the user message `text`.
async fn system_sent_with(mock: &Mock, text: &str) -> String {
    let calls = mock.calls().await;
    let call = calls
        .iter()
        .rev()
        .find(|c| c["body"]["messages"].as_array().and_then(|m| m.last()).is_some_and(|m| m["content"] == text))
        .unwrap_or_else(|| panic!("no call asked {text:?}"));
    let messages = call["body"]["messages"].as_array().unwrap();
    messages.iter().filter(|m| m["role"] == "system").map(|m| m["content"].to_string()).collect()
}

#[tokio::test]
async fn an_extraction_model_keeps_facts_that_supersede_stale_ones_and_is_paid_for_in_analytics() {
    let mock = Mock::start();
    let extraction = format!(
        "  - model_name: extract
    litellm_params: {{model: anthropic/mock-extract, api_base: '{url}'}}
general_settings:
  master_key: {MASTER}
",
        url = mock.url
    );
    let text = config(&mock, "  extraction_model: extract\n").replace("memory:\n", &format!("{extraction}memory:\n"));
    let gateway = Gateway::start(&text);
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    let keyed = |caller: &Caller<'_>, text: &str| {
        let body = json!({ "model": "chat", "messages": [{ "role": "user", "content": text }] });
        caller.post("/v1/chat/completions").bearer_auth(MASTER).json(&body).send()
    };
    let memories = |caller: &Caller<'_>| caller.get("/v1/memories").bearer_auth(MASTER).send();
    let await_memories = async |caller: &Caller<'_>, count: usize| {
        wait_for(Duration::from_secs(10), || async {
            let page: Value = memories(caller).await.unwrap().json().await.unwrap();
            let list = page["data"].as_array().cloned().unwrap_or_default();
            (list.len() >= count).then_some(list)
        })
        .await
        .unwrap_or_else(|| panic!("{count} memories did not arrive"))
    };

    // The extraction model is down for its first attempt (three tries with the
    // gateway's retries): the turn waits in the queue and is distilled afterwards.
    mock.fault(json!([{ "model": "mock-extract", "status": 503, "times": 3 }])).await;
    let told = "Hello there. The staging database is on port 5433. What should I do first?";
    assert_eq!(keyed(&ana, told).await.unwrap().status(), 200);
    let stored = await_memories(&ana, 1).await;
    assert_eq!(stored[0]["text"], "The staging database is on port 5433.", "a fact, not the transcript: {stored:?}");

    assert_eq!(keyed(&ana, "The staging database is now on port 6543.").await.unwrap().status(), 200);
    let stored = await_memories(&ana, 2).await;
    let (new, old) = (&stored[0], &stored[1]);
    assert_eq!(new["text"], "The staging database is now on port 6543.");
    assert_eq!(old["superseded_by"], new["id"], "the stale fact is history: {stored:?}");
    assert!(new.get("superseded_by").is_none());

    let question = "Which port does the staging database use?";
    assert_eq!(keyed(&ana, question).await.unwrap().status(), 200);
    let recalled = system_sent_with(&mock, question).await;
    assert!(recalled.contains("6543") && !recalled.contains("5433"), "only the current fact: {recalled}");
    let bo = Caller { gateway: &gateway, user: "bo", project: "/srv/shop" };
    assert_eq!(keyed(&bo, question).await.unwrap().status(), 200);
    assert_eq!(system_sent_with(&mock, question).await, "", "never another user's facts");

    // What extraction cost is recorded, under the gateway's own client, for Ana.
    // (Bo's question is a turn too: its extraction, when done, is Bo's.)
    let rows = wait_for(Duration::from_secs(5), || async {
        let rows = gateway.requests(MASTER, "client=memory-proxy&user=ana").await;
        (rows.iter().filter(|r| r["status"] == 200).count() >= 3).then_some(rows)
    })
    .await
    .expect("the extraction requests are recorded");
    assert!(rows.iter().all(|r| r["model"] == "extract" && r["project"] == "/srv/shop"), "{rows:?}");
    let all = gateway.requests(MASTER, "client=memory-proxy").await;
    assert!(all.iter().all(|r| r["user"] == "ana" || r["user"] == "bo"), "{all:?}");
    assert!(rows.iter().any(|r| r["status"] == 503), "the failed attempt too: {rows:?}");
    let answered = rows.iter().find(|r| r["status"] == 200).unwrap();
    assert!(answered["input_tokens"].as_u64().unwrap() > 0 && answered["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn an_embedding_model_of_the_list_embeds_memories_and_questions_through_the_gateway() {
    let mock = Mock::start();
    let embedder = format!(
        "  - model_name: embed
    litellm_params: {{model: openai/mock-embed, api_base: '{base}'}}
general_settings:
  master_key: {MASTER}
",
        base = mock.openai_base()
    );
    let text = config(&mock, "  embedding_model: embed\n").replace("memory:\n", &format!("{embedder}memory:\n"));
    let gateway = Gateway::start(&text);
    let ana = Caller { gateway: &gateway, user: "ana", project: "/srv/shop" };
    let note = "Production releases go out every Saturday morning";
    let added = ana.post("/v1/memories").bearer_auth(MASTER).json(&json!({ "text": note })).send().await.unwrap();
    assert_eq!(added.status(), 201);
    let embedded = |text: &'static str| {
        let mock = &mock;
        async move {
            let calls = mock.calls().await;
            calls
                .iter()
                .any(|c| c["path"].as_str().unwrap_or("").ends_with("/embeddings") && c["body"]["input"][0] == text)
        }
    };
    let indexed = wait_for(Duration::from_secs(10), || async { embedded(note).await.then_some(()) }).await;
    assert!(indexed.is_some(), "the indexer embedded the memory with the deployment");

    let question = "When do the releases go out?";
    let body = json!({ "model": "chat", "messages": [{ "role": "user", "content": question }] });
    let answered = ana.post("/v1/chat/completions").bearer_auth(MASTER).json(&body).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    assert!(embedded(question).await, "the question was embedded by the deployment");
    assert!(system_sent_with(&mock, question).await.contains("Saturday"));
    let rows = wait_for(Duration::from_secs(5), || async {
        let rows = gateway.requests(MASTER, "client=memory-proxy&model=embed").await;
        (rows.len() >= 2).then_some(rows)
    })
    .await
    .expect("the embedding requests are recorded");
    assert!(
        rows.iter().all(|r| r["api"] == "openai.embeddings" && r["user"] == "ana" && r["status"] == 200),
        "{rows:?}"
    );

    // The embedding model down: the question is recalled by its words, and answered.
    mock.fault(json!([{ "model": "mock-embed", "status": 500, "times": 30 }])).await;
    let again = "When do the releases go out, again?";
    let body = json!({ "model": "chat", "messages": [{ "role": "user", "content": again }] });
    let answered = ana.post("/v1/chat/completions").bearer_auth(MASTER).json(&body).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    assert!(system_sent_with(&mock, again).await.contains("Saturday"), "recalled by its words");
}
