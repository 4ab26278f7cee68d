//! SPEC §4 and §7.4: history and Server-Sent Events.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn history_and_events_need_a_session() {
    let app = spawn_app(|_| {}).await;
    for path in [
        "/api/channels/teststreamer/history",
        "/api/channels/teststreamer/events",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
}

#[actix_web::test]
async fn history_is_oldest_first_with_since_and_a_capped_limit() {
    let app = spawn_app(|s| s.limits.history_len = std::num::NonZeroUsize::new(5).unwrap()).await;
    app.login_as("viewer").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(app.publish("teststreamer", "n", json!({"i": i})).await);
    }
    let all = app.history("teststreamer", "").await;
    let got: Vec<_> = all
        .iter()
        .map(|m| m["data"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(
        got,
        vec![2, 3, 4, 5, 6],
        "exactly HISTORY_LEN, oldest first"
    );
    let newest2 = app.history("teststreamer", "?limit=2").await;
    assert_eq!(
        newest2
            .iter()
            .map(|m| m["data"]["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![5, 6]
    );
    let after = app
        .history("teststreamer", &format!("?since={}&limit=2", ids[3]))
        .await;
    assert_eq!(
        after
            .iter()
            .map(|m| m["data"]["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![4, 5]
    );
    let capped = app.history("teststreamer", "?limit=1000").await;
    assert_eq!(capped.len(), 5);
    assert!(app.history("nobody", "").await.is_empty());
}

#[actix_web::test]
async fn bad_history_parameters_are_400_with_a_named_problem() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    for (path, code) in [
        ("/api/channels/Bad%20Name/history", "invalid_channel"),
        ("/api/channels/teststreamer/history?since=abc", "invalid_id"),
        (
            "/api/channels/teststreamer/history?limit=0",
            "invalid_limit",
        ),
        (
            "/api/channels/teststreamer/history?limit=-1",
            "invalid_limit",
        ),
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], code, "{path}");
    }
}

/// Reads SSE records until `n` data records arrived.
async fn read_records(
    resp: reqwest::Response,
    n: usize,
) -> Vec<(String, String, serde_json::Value)> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an SSE chunk in time")
            .expect("stream open")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let record: String = buf.drain(..end + 2).collect();
            let mut id = String::new();
            let mut event = String::new();
            let mut data = None;
            for line in record.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.into();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = v.into();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).unwrap());
                }
            }
            if let Some(d) = data {
                out.push((id, event, d));
            }
        }
    }
    out
}

#[actix_web::test]
async fn sse_streams_live_messages_with_id_and_event_fields() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let resp = app
        .client
        .get(app.url("/api/channels/teststreamer/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let reader = actix_web::rt::spawn(read_records(resp, 1));
    // The stream is registered before the response headers are sent.
    assert_eq!(
        app.post_follow("teststreamer", "sseviewer").await.status(),
        204
    );
    let recs = reader.await.unwrap();
    let (id, event, data) = &recs[0];
    assert_eq!(event, "channel.follow");
    assert_eq!(data["id"].as_str().unwrap(), id);
    assert_eq!(data["text"], "sseviewer followed teststreamer");
}

#[actix_web::test]
async fn sse_last_event_id_and_since_replay_what_followed() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(app.publish("teststreamer", "n", json!({"i": i})).await);
    }
    let resp = app
        .client
        .get(app.url("/api/channels/teststreamer/events"))
        .header("Last-Event-ID", &ids[1])
        .send()
        .await
        .unwrap();
    let recs = read_records(resp, 2).await;
    assert_eq!(
        recs.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[3].clone()]
    );
    let resp = app
        .client
        .get(app.url(&format!(
            "/api/channels/teststreamer/events?since={}",
            ids[2]
        )))
        .send()
        .await
        .unwrap();
    let reader = actix_web::rt::spawn(read_records(resp, 2));
    let live = app.publish("teststreamer", "n", json!({"i": 4})).await;
    let recs = reader.await.unwrap();
    assert_eq!(recs[0].0, ids[3]);
    assert_eq!(recs[1].0, live);
}

#[actix_web::test]
async fn sse_sends_keep_alive_comments() {
    let app = spawn_app(|s| s.limits.sse_keepalive = Duration::from_millis(100)).await;
    app.login_as("viewer").await;
    let resp = app
        .client
        .get(app.url("/api/channels/teststreamer/events"))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let chunk = tokio::time::timeout(Duration::from_secs(3), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(std::str::from_utf8(&chunk).unwrap().starts_with(':'));
}
