//! The dashboard page in headless Chromium, against a gateway with recorded traffic:
//! the charts are drawn with data. A screenshot is kept in tests/artifacts/.

use std::process::Command;
use std::time::Duration;

use e2e::{Gateway, Mock, TempDir, wait_for};
use serde_json::{Value, json};

fn chromium() -> String {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("Chromium is needed for the dashboard test (the test command installs Debian's `chromium`)")
        .to_owned()
}

/// Runs headless Chromium on `url` with `extra` arguments; bounded to 60 s.
fn headless(url: &str, extra: &[&str]) -> std::process::Output {
    let profile = TempDir::new();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path.display()))
        .args(extra)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chromium");
    let started = std::time::Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("chromium output")
}

/// The `data-points` a chart container reports, from the rendered DOM.
fn points(dom: &str, chart: &str) -> usize {
    let marker = format!("data-chart=\"{chart}\" data-points=\"");
    dom.find(&marker)
        .and_then(|at| dom[at + marker.len()..].split('"').next()?.parse().ok())
        .unwrap_or_else(|| panic!("chart {chart} was not drawn"))
}

#[tokio::test]
async fn the_dashboard_draws_the_recorded_traffic() {
    let mock = Mock::start();
    let gateway = Gateway::start(&format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, api_base: '{base}'}}\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: '{url}'}}\nmemory: {{embedding_model: none}}\n",
        base = mock.openai_base(),
        url = mock.url
    ));
    let client = reqwest::Client::new();
    let note = client
        .post(format!("{}/v1/memories", gateway.url))
        .header("x-memory-user-id", "bo")
        .header("x-memory-project", "shop")
        .json(&json!({ "text": "The shop database is called heron" }))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 201);
    for (user, project, model, agent, text) in [
        ("ana", "shop", "gpt-4o", "OpenAI/Python 1.99.0", "hello"),
        ("ana", "blog", "claude", "claude-cli/2.1.197 (external, cli)", "hello"),
        ("bo", "shop", "gpt-4o", "OpenAIClientImpl/Java", "which database does the shop use"),
        ("bo", "shop", "nope", "curl/8", "hello"),
    ] {
        client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .header("x-memory-user-id", user)
            .header("x-memory-project", project)
            .header("user-agent", agent)
            .json(&json!({ "model": model, "messages": [{ "role": "user", "content": text }] }))
            .send()
            .await
            .unwrap();
    }
    wait_for(Duration::from_secs(5), || async {
        let page: Value =
            client.get(format!("{}/analytics/requests", gateway.url)).send().await.ok()?.json().await.ok()?;
        (page["requests"].as_array()?.len() == 4).then_some(())
    })
    .await
    .expect("the traffic is recorded");

    let url = format!("{}/dashboard", gateway.url);
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || String::from_utf8_lossy(&headless(&url, &["--dump-dom"]).stdout).into_owned()
    })
    .await
    .unwrap();
    assert!(dom.contains("data-ready=\"true\""), "the page loaded its data: {dom}");
    assert_eq!(points(&dom, "daily"), 1, "one day of traffic");
    assert_eq!(points(&dom, "by-user"), 2);
    assert_eq!(points(&dom, "by-project"), 2);
    assert_eq!(points(&dom, "by-model"), 3, "gpt-4o, claude and the failed `nope`");
    assert!(points(&dom, "by-client") >= 3);
    assert_eq!(points(&dom, "recent"), 4);
    assert!(dom.contains("<rect"), "bars are drawn");
    assert!(dom.contains("25.0%"), "the error rate shows the failed request");
    assert_eq!(points(&dom, "memory-scopes"), 3, "ana/shop, ana/blog and bo/shop hold memories");
    assert_eq!(points(&dom, "recalled"), 1, "what Bo's question was given");
    assert!(dom.contains("The shop database is called heron"), "with its text and score");

    let artifacts = e2e::repo_root().join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let argument = format!("--screenshot={}", screenshot.display());
    tokio::task::spawn_blocking(move || headless(&url, &[&argument, "--window-size=1400,1600"])).await.unwrap();
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "a screenshot with content was written ({size} bytes)");
}
