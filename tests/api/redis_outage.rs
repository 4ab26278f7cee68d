//! The Redis-outage bug of issue 13, kept as a test: two instances on one
//! Redis, a viewer on B, notifications sent to A during an outage are
//! refused (503), and "Twitch" sends each of them again with the same id
//! until it gets a 2xx. Every notification answered 2xx reaches the viewer
//! exactly once, whether Redis stalled (`SIGSTOP`: what was sent to it
//! meanwhile runs when it resumes) or crashed and came back empty.
//!
//! The stall used to lose every refused notification for good: the claim
//! of its id (`SET … NX`) timed out on our side, ran in Redis when it
//! resumed, and the resend was then answered "duplicate" with nothing
//! published.

use std::collections::HashMap;
use std::time::Duration;

use eventsub_bridge::config::Settings;
use futures_util::future::join_all;

use crate::helpers::{SignedWebhook, TestApp, WsClient};
use crate::redis_instances::{follow_webhook, instance_with, wait_ready};
use crate::redis_server::{RedisServer, unique_prefix};

/// How long "Twitch" keeps resending one notification before the test fails.
const RESEND_FOR: Duration = Duration::from_secs(40);
/// Twitch's pause between resends (its real schedule is not documented).
const RESEND_PAUSE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy)]
enum Outage {
    /// `SIGSTOP` then `SIGCONT`: Redis hangs, then runs what it was sent.
    Stall,
    /// Killed, then started again empty.
    Crash,
}

/// Sends `webhook` as Twitch does: again (same id, new timestamp) after
/// every refusal, until a 2xx. Refusals must be 503 or 409.
async fn deliver(app: &TestApp, webhook: &SignedWebhook) {
    let deadline = tokio::time::Instant::now() + RESEND_FOR;
    let mut attempt = webhook.clone();
    loop {
        let status = app.send_webhook(&attempt).await.status();
        if status.is_success() {
            return;
        }
        assert!(
            status == 503 || status == 409,
            "a notification that cannot be handled yet is 503 or 409, got {status}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} still refused after {RESEND_FOR:?}",
            webhook.message_id
        );
        tokio::time::sleep(RESEND_PAUSE).await;
        attempt = webhook.resent();
    }
}

/// Reads events until every follower in `expected` arrived, then checks
/// that nothing else and nothing twice did.
async fn expect_each_once(ws: &mut WsClient, expected: &[String]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while expected.iter().any(|f| !seen.contains_key(f)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(frame) = ws.try_next_json(left).await else {
            let missing: Vec<&String> =
                expected.iter().filter(|f| !seen.contains_key(*f)).collect();
            panic!("answered 2xx but never delivered: {missing:?}");
        };
        assert_eq!(frame["op"], "event", "{frame}");
        let follower = frame["message"]["data"]["user_login"]
            .as_str()
            .unwrap()
            .to_owned();
        *seen.entry(follower).or_default() += 1;
    }
    while let Some(frame) = ws.try_next_json(Duration::from_millis(500)).await {
        let follower = frame["message"]["data"]["user_login"].as_str().unwrap();
        *seen.entry(follower.to_owned()).or_default() += 1;
    }
    assert_eq!(seen.len(), expected.len(), "nothing else: {seen:?}");
    assert!(seen.values().all(|n| *n == 1), "no duplicates: {seen:?}");
}

fn follows(prefix: &str, n: usize) -> Vec<SignedWebhook> {
    (0..n)
        .map(|i| follow_webhook("teststreamer", &format!("{prefix}{i}")))
        .collect()
}

async fn refused_notifications_resent_after_an_outage_arrive_once(outage: Outage) {
    let mut redis = RedisServer::start().await;
    let prefix = unique_prefix();
    // A lease shorter than the default (15 s) keeps the test short; it
    // is even shorter than a slow attempt can take under load (claim,
    // publish, complete: 3 s each at most), which must be safe too.
    let lease = |s: &mut Settings| s.limits.claim_lease = Duration::from_secs(5);
    let a = instance_with(&redis.url(), &prefix, lease).await;
    let b = instance_with(&redis.url(), &prefix, lease).await;
    b.login_as("viewer42").await;
    let mut ws = b.ws_connect().await;
    ws.subscribe("teststreamer", None).await;

    let before = follows("before", 5);
    for w in &before {
        deliver(&a, w).await;
    }
    match outage {
        Outage::Stall => redis.pause().await,
        Outage::Crash => redis.stop().await,
    }
    let during = follows("during", 8);
    let answers = join_all(during.iter().map(|w| a.send_webhook(w))).await;
    for r in answers {
        assert_eq!(r.status(), 503, "a notification Redis cannot take is 503");
    }
    wait_ready(&a, false, Duration::from_secs(5)).await;
    wait_ready(&b, false, Duration::from_secs(5)).await;
    match outage {
        Outage::Stall => redis.resume().await,
        Outage::Crash => redis.restart().await,
    }
    // SPEC §7.16: both recover by themselves within 10 s.
    wait_ready(&a, true, Duration::from_secs(10)).await;
    wait_ready(&b, true, Duration::from_secs(10)).await;
    // Twitch delivers each refused notification again, with the same id.
    join_all(during.iter().map(|w| deliver(&a, w))).await;
    let after = follows("after", 5);
    for w in &after {
        deliver(&a, w).await;
    }

    let expected: Vec<String> = before
        .iter()
        .chain(&during)
        .chain(&after)
        .map(|w| {
            let body: serde_json::Value = serde_json::from_str(&w.body).unwrap();
            body["event"]["user_login"].as_str().unwrap().to_owned()
        })
        .collect();
    expect_each_once(&mut ws, &expected).await;
    redis.stop().await;
}

#[actix_web::test]
async fn notifications_refused_while_redis_stalled_arrive_once_when_resent() {
    refused_notifications_resent_after_an_outage_arrive_once(Outage::Stall).await;
}

#[actix_web::test]
async fn notifications_refused_while_redis_was_down_arrive_once_when_resent() {
    refused_notifications_resent_after_an_outage_arrive_once(Outage::Crash).await;
}
