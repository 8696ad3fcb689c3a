//! The process: graceful shutdown lets requests in flight finish.

use std::time::Duration;

use e2e::{Gateway, Mock, one_model, sse_events};
use serde_json::json;

#[tokio::test]
async fn sigterm_lets_a_stream_in_flight_finish() {
    let mock = Mock::start_with(&["--chunk-delay-ms", "100", "--reply", "a b c d e f"]);
    let mut gateway = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    let reading = tokio::spawn(async move { response.text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let exit = tokio::task::spawn_blocking(move || {
        let code = gateway.terminate();
        (code, gateway.logs())
    });
    let body = reading.await.unwrap();
    let (code, logs) = exit.await.unwrap();
    assert_eq!(sse_events(&body).last().unwrap().1, "[DONE]", "the stream finished: {body}");
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("shutting down"));
}
