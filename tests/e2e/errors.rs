//! Bad input: a clear error in the client's API shape, with a fitting status, and
//! the gateway keeps serving.

use e2e::{Gateway, Mock, one_model};
use serde_json::{Value, json};

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn malformed_and_incomplete_bodies_are_400_naming_the_problem() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    let cases: [(&str, &str, &str); 7] = [
        ("/v1/chat/completions", "{\"model\": \"m\", \"messages\": [", "not valid JSON: EOF while parsing"),
        ("/v1/chat/completions", "", "the request body is empty"),
        ("/v1/chat/completions", "[1, 2]", "expected a JSON object"),
        ("/v1/chat/completions", "{\"messages\": []}", "`model` is required"),
        ("/v1/chat/completions", "{\"model\": \"m\"}", "`messages` is required"),
        (
            "/v1/chat/completions",
            "{\"model\": \"m\", \"messages\": \"hi\"}",
            "`messages` is required and must be an array",
        ),
        ("/v1/embeddings", "{\"model\": \"m\"}", "`input` is required"),
    ];
    for (path, body, expected) in cases {
        let (status, error) =
            error_of(gateway.post(path).header("content-type", "application/json").body(body).send().await.unwrap())
                .await;
        assert_eq!(status, 400, "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
    let (status, error) = error_of(
        gateway
            .post("/v1/messages")
            .body("{\"model\": \"m\", \"model\": \"n\", \"messages\": []}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["type"], "error", "Anthropic routes answer in Anthropic's shape");
    assert!(error["error"]["message"].as_str().unwrap().contains("duplicate field `model`"));
    assert!(mock.calls().await.is_empty(), "nothing bad reached the upstream");
}

#[tokio::test]
async fn an_unknown_model_lists_the_available_ones() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("fast", "openai/up", &mock.openai_base()));
    let (status, error) = error_of(
        gateway.post("/v1/chat/completions").json(&json!({ "model": "gpt-9", "messages": [] })).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["code"], "model_not_found");
    assert_eq!(error["error"]["message"], "model `gpt-9` is not served here; available models: fast");
}

#[tokio::test]
async fn an_oversized_body_is_413_before_it_is_read_whole() {
    let mock = Mock::start();
    let mut config = one_model("m", "openai/up", &mock.openai_base());
    config.push_str("general_settings:\n  max_request_size_mb: 0.01\n");
    let gateway = Gateway::start(&config);
    let big = json!({ "model": "m", "messages": [{ "role": "user", "content": "x".repeat(20_000) }] });
    let (status, error) = error_of(gateway.post("/v1/chat/completions").json(&big).send().await.unwrap()).await;
    assert_eq!(status, 413);
    assert!(error["error"]["message"].as_str().unwrap().contains("larger than the limit of 10485 bytes"));
    // Chunked, with no content-length to reject early: still cut off at the limit.
    let chunks = futures_util::stream::iter((0..30).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])));
    let response = gateway.post("/v1/messages").body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 413);
    assert_eq!(error["error"]["type"], "request_too_large");
    // A big prompt under the default limit is fine.
    let gateway = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    let prompt = json!({ "model": "m", "messages": [{ "role": "user", "content": "y".repeat(300_000) }] });
    assert_eq!(gateway.post("/v1/chat/completions").json(&prompt).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_master_key_guards_the_model_routes_only() {
    let mock = Mock::start();
    let mut config = one_model("m", "openai/up", &mock.openai_base());
    config.push_str("general_settings:\n  master_key: sk-master-SECRET-123\n");
    let gateway = Gateway::start(&config);
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "x" }] });

    let (status, error) = error_of(gateway.post("/v1/chat/completions").json(&body).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(error["error"]["message"].as_str().unwrap().starts_with("missing API key"));
    let (status, error) =
        error_of(gateway.post("/v1/messages").header("x-api-key", "sk-wrong").json(&body).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["type"], "authentication_error");
    for non_ascii in [&b"Bearer \xc3\xa9t\xc3\xa9"[..], b"\xff\xff", b"Bearer"] {
        let value = reqwest::header::HeaderValue::from_bytes(non_ascii).unwrap();
        let response =
            gateway.post("/v1/chat/completions").header("authorization", value).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(gateway.get("/v1/models").send().await.unwrap().status(), 401);

    for (header, value) in [
        ("authorization", "Bearer sk-master-SECRET-123"),
        ("x-api-key", "sk-master-SECRET-123"),
        ("api-key", "sk-master-SECRET-123"),
    ] {
        let response = gateway.post("/v1/chat/completions").header(header, value).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{header}");
    }
    assert_eq!(gateway.get("/health/liveliness").send().await.unwrap().status(), 200);
    assert_eq!(gateway.get("/health/readiness").send().await.unwrap().status(), 200);
    assert_eq!(mock.calls().await.len(), 3, "only authenticated requests went upstream");
    assert!(
        mock.calls().await.iter().all(|c| c["headers"].get("authorization").is_none()),
        "the master key stays here"
    );
    assert!(!gateway.logs().contains("sk-master-SECRET-123"), "the key never reaches a log line");
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_clients_shape() {
    let gateway = Gateway::start("");
    let (status, error) = error_of(gateway.get("/v1/nothing").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["message"], "no route for GET /v1/nothing");
}
