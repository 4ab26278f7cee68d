//! SPEC §8 in Redis mode with two instances sharing one Redis: an overlay
//! on one, alerts and acks on the other; exactly one alert in flight per
//! channel across instances; and everything (queue, alert in flight,
//! settings, key, recent list) survives restarting both instances.

use std::collections::HashSet;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};
use crate::redis_server::{cleanup, require_shared_redis, unique_prefix};

const CH: &str = "teststreamer";
const QUIET: Duration = Duration::from_millis(300);

/// An instance on the shared Redis under `prefix`, ready, with the
/// streamer signed in.
async fn instance(url: &str, prefix: &str) -> TestApp {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    let app = spawn_app(move |s| {
        s.redis_url = Some(SecretString::from(url));
        s.redis_prefix = prefix;
        s.limits.rate_limit_frames = 1000;
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(tokio::time::Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.login_as(CH).await;
    app
}

#[actix_web::test]
async fn an_overlay_on_one_instance_shows_alerts_queued_and_acked_on_the_other() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = instance(url, &prefix).await;
    let b = instance(url, &prefix).await;
    let key = a.overlay_key(CH).await;
    assert_eq!(b.overlay_key(CH).await, key, "one key for the channel");
    let (mut on_a, _) = a.overlay(CH, &key).await;
    let (mut on_b, _) = b.overlay(CH, &key).await;
    let first = b.donate(CH, "Ana", "1").await;
    let second = a.donate(CH, "Bo", "2").await;
    // Exactly one in flight across instances: both overlays show the same head.
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(ws.next_alert().await["id"], first.as_str());
        assert!(ws.stays_quiet(QUIET).await);
    }
    // The ack on A's overlay moves the queue on everywhere.
    on_a.ack(&first).await;
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(ws.next_alert().await["id"], second.as_str());
    }
    // Settings changed on B reach A's overlay; a skip on A reaches B's.
    let r = b
        .alerts_call(
            reqwest::Method::PUT,
            CH,
            "/settings",
            Some(json!({"raid": {"sound": false}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(
            ws.expect_op("settings").await["settings"]["raid"]["sound"],
            false
        );
    }
    a.alerts_control(CH, "skip").await;
    assert_eq!(on_b.expect_op("skip").await["id"], second.as_str());
    // Many alerts at once through both instances: each shown once, in queue order.
    let names: Vec<String> = (0..20).map(|i| format!("donor{i}")).collect();
    let posts = names.iter().enumerate().map(|(i, n)| {
        if i % 2 == 0 {
            a.donate(CH, n, "1")
        } else {
            b.donate(CH, n, "1")
        }
    });
    let ids: HashSet<String> = futures_util::future::join_all(posts)
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 20);
    let state = b.alerts_state(CH).await;
    let mut order = vec![state["in_flight"]["id"].as_str().unwrap().to_owned()];
    order.extend(
        state["queued"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned()),
    );
    let mut shown = Vec::new();
    for i in 0..20 {
        let alert = on_b.next_alert().await;
        let id = alert["id"].as_str().unwrap().to_owned();
        // Acks alternate between the instances.
        if i % 2 == 0 {
            on_a.ack(&id).await
        } else {
            on_b.ack(&id).await
        }
        shown.push(id);
    }
    assert!(on_b.stays_quiet(QUIET).await, "nothing shown twice");
    assert_eq!(shown, order);
    drop((a, b));
    cleanup(url, &prefix).await;
}

#[actix_web::test]
async fn everything_survives_restarting_every_instance() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = instance(url, &prefix).await;
    let b = instance(url, &prefix).await;
    let key = a.overlay_key(CH).await;
    let r = a
        .alerts_call(
            reqwest::Method::PUT,
            CH,
            "/settings",
            Some(json!({"donation": {"duration_ms": 4000}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let shown = a.donate(CH, "Ana", "1").await;
    let in_flight = b.donate(CH, "Bo", "1").await;
    let waiting = a.donate(CH, "Cy", "1").await;
    let (mut ws, _) = a.overlay(CH, &key).await;
    assert_eq!(ws.next_alert().await["id"], shown.as_str());
    ws.ack(&shown).await;
    assert_eq!(ws.next_alert().await["id"], in_flight.as_str());
    a.alerts_control(CH, "pause").await;
    // Both instances stop (the overlay never acked `in_flight`).
    drop(ws);
    drop((a, b));
    let a = instance(url, &prefix).await;
    let b = instance(url, &prefix).await;
    let state = b.alerts_state(CH).await;
    assert_eq!(state["paused"], true);
    assert_eq!(state["settings"]["donation"]["duration_ms"], 4000);
    assert_eq!(state["in_flight"]["id"], in_flight.as_str());
    assert_eq!(state["queued"][0]["id"], waiting.as_str());
    assert_eq!(state["recent"][0]["id"], shown.as_str());
    assert!(!b.get_text("/dashboard").await.contains("memory-notice"));
    // The same key still opens the overlay, which gets the unacked alert again.
    let (mut ws, welcome) = b.overlay(CH, &key).await;
    assert_eq!(welcome["paused"], true);
    assert_eq!(ws.next_alert().await["id"], in_flight.as_str());
    ws.ack(&in_flight).await;
    assert!(ws.stays_quiet(QUIET).await, "paused");
    a.alerts_control(CH, "resume").await;
    ws.expect_op("resumed").await;
    let next = ws.next_alert().await;
    assert_eq!(next["id"], waiting.as_str());
    assert_eq!(next["duration_ms"], 4000);
    drop((a, b));
    cleanup(url, &prefix).await;
}
