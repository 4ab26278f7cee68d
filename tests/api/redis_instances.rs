//! SPEC §6 end to end: several instances sharing one Redis act as one
//! service (cross-instance delivery, shared de-duplication, sessions and
//! history), and a Redis outage mid-stream loses nothing that was answered
//! 2xx. The outage test runs its own `redis-server`.

use std::collections::HashMap;
use std::time::Duration;

use eventsub_bridge::config::Settings;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{SignedWebhook, TestApp, follow_event, notification_body, spawn_app};
use crate::redis_server::{RedisServer, cleanup, require_shared_redis, unique_prefix};

/// An instance on `url` under `prefix`, once `/readyz` says ready.
pub async fn instance(url: &str, prefix: &str) -> TestApp {
    instance_with(url, prefix, |_| {}).await
}

/// An instance on `url` under `prefix` with settings changed by `change`,
/// once `/readyz` says ready.
pub async fn instance_with(url: &str, prefix: &str, change: impl FnOnce(&mut Settings)) -> TestApp {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    let app = spawn_app(move |s| {
        s.redis_url = Some(SecretString::from(url));
        s.redis_prefix = prefix;
        change(s);
    })
    .await;
    wait_ready(&app, true, Duration::from_secs(10)).await;
    app
}

pub async fn readyz(app: &TestApp) -> u16 {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

pub async fn wait_ready(app: &TestApp, ready: bool, within: Duration) {
    let want = if ready { 200 } else { 503 };
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if readyz(app).await == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz did not answer {want} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn follow_webhook(channel: &str, follower: &str) -> SignedWebhook {
    let event = follow_event(channel, "4242", follower);
    let body = notification_body(
        "channel.follow",
        "2",
        json!({"broadcaster_user_id": "4242"}),
        event,
    );
    SignedWebhook::new("notification", "channel.follow", "2", body)
}

#[actix_web::test]
async fn a_message_published_on_one_instance_reaches_viewers_on_the_other() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = instance(url, &prefix).await;
    let b = instance(url, &prefix).await;
    a.login_as("viewer_a").await;
    b.login_as("viewer_b").await;
    let mut on_a = a.ws_connect().await;
    let mut on_b = b.ws_connect().await;
    on_a.subscribe("teststreamer", None).await;
    on_b.subscribe("teststreamer", None).await;

    assert_eq!(
        b.post_follow("teststreamer", "follower1").await.status(),
        204
    );
    let id = a
        .publish("teststreamer", "custom.alert", json!({"n": 1}))
        .await;
    for ws in [&mut on_a, &mut on_b] {
        let first = ws.expect_op("event").await;
        assert_eq!(first["message"]["text"], "follower1 followed teststreamer");
        let second = ws.expect_op("event").await;
        assert_eq!(second["message"]["id"], id.as_str());
        assert!(ws.stays_quiet(Duration::from_millis(300)).await);
    }
    cleanup(url, &prefix).await;
}

#[actix_web::test]
async fn the_same_webhook_sent_to_both_instances_is_published_once() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = instance(url, &prefix).await;
    let b = instance(url, &prefix).await;
    a.login_as("viewer42").await;
    let mut ws = a.ws_connect().await;
    ws.subscribe("teststreamer", None).await;

    // Twitch retries the same message id; the retry lands elsewhere.
    let webhook = follow_webhook("teststreamer", "once");
    assert_eq!(a.send_webhook(&webhook).await.status(), 204);
    assert_eq!(b.send_webhook(&webhook).await.status(), 204);
    assert_eq!(b.send_webhook(&webhook).await.status(), 204);
    assert_eq!(
        ws.expect_op("event").await["message"]["text"],
        "once followed teststreamer"
    );
    assert!(ws.stays_quiet(Duration::from_millis(500)).await);
    assert_eq!(a.history("teststreamer", "").await.len(), 1);
    assert_eq!(
        b.metric("eventsub_bridge_webhooks_total", "duplicate")
            .await,
        2.0
    );
    cleanup(url, &prefix).await;
}

#[actix_web::test]
async fn a_session_started_on_one_instance_works_on_the_other_until_logout() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = instance(url, &prefix).await;
    let key = a.state.settings.session_key.clone();
    let (url2, prefix2) = (url.to_owned(), prefix.clone());
    // Instances share SESSION_KEY (it signs the cookie) and the Redis.
    let b = spawn_app(move |s| {
        s.redis_url = Some(SecretString::from(url2));
        s.redis_prefix = prefix2;
        s.session_key = key;
    })
    .await;
    wait_ready(&b, true, Duration::from_secs(10)).await;
    a.login_as("viewer42").await;
    let cookie = a.cookie_header().unwrap();
    let history_on_b = || {
        b.client
            .get(b.url("/api/channels/teststreamer/history"))
            .header("Cookie", cookie.clone())
            .send()
    };
    assert_eq!(history_on_b().await.unwrap().status(), 200);
    let r = a.client.post(a.url("/auth/logout")).send().await.unwrap();
    assert!(r.status().is_redirection() || r.status().is_success());
    assert_eq!(history_on_b().await.unwrap().status(), 401);
    cleanup(url, &prefix).await;
}

#[actix_web::test]
async fn history_survives_a_restart_of_both_instances() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let ids = {
        let a = instance(url, &prefix).await;
        let b = instance(url, &prefix).await;
        vec![
            a.publish("teststreamer", "t", json!({"n": 0})).await,
            b.publish("teststreamer", "t", json!({"n": 1})).await,
            a.publish("teststreamer", "t", json!({"n": 2})).await,
        ]
        // Both instances stop here.
    };
    let c = instance(url, &prefix).await;
    let d = instance(url, &prefix).await;
    c.login_as("viewer42").await;
    let history = c.history("teststreamer", "").await;
    let got: Vec<&str> = history.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(history[1]["data"], json!({"n": 1}));

    d.login_as("viewer43").await;
    let mut ws = d.ws_connect().await;
    let sub = ws.subscribe("teststreamer", Some(&ids[0])).await;
    assert_eq!(sub["replayed"], 2);
    assert_eq!(sub["gap"], false);
    for id in &ids[1..] {
        assert_eq!(ws.expect_op("event").await["message"]["id"], id.as_str());
    }
    cleanup(url, &prefix).await;
}

#[actix_web::test]
async fn a_redis_outage_mid_stream_delivers_every_acknowledged_notification_exactly_once() {
    let mut redis = RedisServer::start().await;
    let prefix = unique_prefix();
    let a = instance(&redis.url(), &prefix).await;
    let b = instance(&redis.url(), &prefix).await;
    a.login_as("viewer42").await;
    let mut ws = a.ws_connect().await;
    ws.subscribe("teststreamer", None).await;

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut post = async |n: usize| {
        let follower = format!("f{n}");
        let to = if n % 2 == 0 { &a } else { &b };
        let status = to
            .send_webhook(&follow_webhook("teststreamer", &follower))
            .await
            .status();
        if status.is_success() {
            acknowledged.push(follower);
        } else {
            assert_eq!(status, 503, "a notification Redis cannot take is 503");
            refused += 1;
        }
    };
    for n in 0..20 {
        post(n).await;
    }
    redis.stop().await;
    for n in 20..30 {
        post(n).await;
    }
    wait_ready(&a, false, Duration::from_secs(5)).await;
    wait_ready(&b, false, Duration::from_secs(5)).await;
    let publish = b
        .client
        .post(b.url("/api/publish"))
        .bearer_auth(crate::helpers::PUBLISH_TOKEN)
        .json(&json!({"channel": "teststreamer", "type": "t", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 503, "publishing while Redis is down");
    redis.restart().await;
    // SPEC §7.16: both recover by themselves within 10 s.
    wait_ready(&a, true, Duration::from_secs(10)).await;
    wait_ready(&b, true, Duration::from_secs(10)).await;
    for n in 30..50 {
        post(n).await;
    }
    assert!(refused >= 10, "the posts during the outage were refused");
    assert_eq!(acknowledged.len() + refused, 50);

    // The viewer stayed connected through it all.
    let mut seen: HashMap<String, usize> = HashMap::new();
    while let Some(frame) = ws.try_next_json(Duration::from_secs(2)).await {
        assert_eq!(frame["op"], "event", "{frame}");
        let follower = frame["message"]["data"]["user_login"]
            .as_str()
            .unwrap()
            .to_owned();
        *seen.entry(follower).or_default() += 1;
    }
    for follower in &acknowledged {
        assert_eq!(
            seen.get(follower),
            Some(&1),
            "{follower} was answered 2xx and must arrive exactly once"
        );
    }
    assert!(seen.values().all(|n| *n == 1), "no duplicates: {seen:?}");
    redis.stop().await;
}
