//! Streams: a client that leaves cancels the upstream; an upstream that breaks off
//! leaves the client with an error event, never a silent truncation.

use std::time::Duration;

use e2e::{Gateway, Mock, one_model, sse_events};
use futures_util::StreamExt;
use serde_json::{Value, json};

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_request() {
    let mock =
        Mock::start_with(&["--chunk-delay-ms", "200", "--reply", "one two three four five six seven eight nine ten"]);
    let gateway = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(body);

    // The mock notices its stream was dropped long before the ~2 s it would take.
    let mut cancelled = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let calls = mock.calls().await;
        if calls[0]["stream_cancelled"] == true {
            cancelled = true;
            break;
        }
    }
    assert!(cancelled, "the upstream stream was cancelled");
    let logged = e2e::wait_for(Duration::from_secs(5), || async {
        gateway.logs().contains("client went away mid-stream").then_some(())
    })
    .await;
    assert!(logged.is_some(), "{}", gateway.logs());
}

#[tokio::test]
async fn a_stream_cut_by_the_upstream_ends_with_an_error_event() {
    // Paced, so the first events are on the wire before the break (a break before the
    // first byte is retried instead; see routing tests).
    let mock = Mock::start_with(&["--chunk-delay-ms", "20"]);
    let config = format!(
        "{}  - model_name: c\n    litellm_params:\n      model: anthropic/c\n      api_base: {}\n",
        one_model("m", "openai/up", &mock.openai_base()),
        mock.url
    );
    let gateway = Gateway::start(&config);

    mock.fault(json!([{ "drop_after_events": 3 }])).await;
    let openai = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&openai);
    let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{openai}");
    assert!(!events.iter().any(|(_, d)| d == "[DONE]"));
    assert_eq!(mock.calls().await.len(), 1, "no retry once the client has bytes");

    // Translated (Anthropic client, OpenAI upstream): an Anthropic error event.
    mock.fault(json!([{ "drop_after_events": 2 }])).await;
    let anthropic = gateway
        .post("/v1/messages")
        .json(&json!({ "model": "m", "max_tokens": 50, "stream": true, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&anthropic);
    assert_eq!(events.last().unwrap().0.as_deref(), Some("error"), "{anthropic}");
    assert!(!events.iter().any(|(e, _)| e.as_deref() == Some("message_stop")));
}

#[tokio::test]
async fn a_stream_that_stalls_is_ended_after_the_stream_timeout() {
    let mock = Mock::start_with(&["--chunk-delay-ms", "2000"]);
    let mut config = one_model("m", "anthropic/up", &mock.url);
    config.push_str("      stream_timeout: 0.5\n");
    let gateway = Gateway::start(&config);
    let started = std::time::Instant::now();
    let body = gateway
        .post("/v1/messages")
        .json(&json!({ "model": "m", "max_tokens": 50, "stream": true, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(1800));
    let events = sse_events(&body);
    assert_eq!(events[0].0.as_deref(), Some("message_start"));
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert!(data.contains("sent nothing for 0.5s"), "{data}");
}
