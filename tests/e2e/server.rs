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
    // The stream is under way once the mock has the request.
    e2e::wait_for(Duration::from_secs(5), || async { (!mock.requests().await.is_empty()).then_some(()) })
        .await
        .expect("the stream started");
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
