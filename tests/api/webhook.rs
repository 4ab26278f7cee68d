//! SPEC §4: the EventSub webhook, step by step, and legacy WebSub.

use chrono::{SecondsFormat, Utc};
use eventsub_bridge::eventsub::signature;
use serde_json::json;

use crate::helpers::{SECRET, SignedWebhook, follow_event, notification_body, spawn_app};

fn follow(channel: &str) -> SignedWebhook {
    let body = notification_body(
        "channel.follow",
        "2",
        json!({"broadcaster_user_id": "4242", "moderator_user_id": "4242"}),
        follow_event(channel, "4242", "viewer42"),
    );
    SignedWebhook::new("notification", "channel.follow", "2", body)
}

#[actix_web::test]
async fn a_signed_notification_is_published_with_the_spec_shape() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let w = follow("teststreamer");
    let r = app.send_webhook(&w).await;
    assert_eq!(r.status(), 204);
    let h = app.history("teststreamer", "").await;
    assert_eq!(h.len(), 1);
    let m = &h[0];
    assert_eq!(m["channel"], "teststreamer");
    assert_eq!(m["type"], "channel.follow");
    assert_eq!(m["version"], "2");
    assert_eq!(m["source"], "eventsub");
    assert_eq!(m["text"], "viewer42 followed teststreamer");
    assert_eq!(m["data"], follow_event("teststreamer", "4242", "viewer42"));
    // `at` is the message timestamp (SPEC §7.13), to the nanosecond.
    let at = chrono::DateTime::parse_from_rfc3339(m["at"].as_str().unwrap()).unwrap();
    let sent = chrono::DateTime::parse_from_rfc3339(&w.timestamp).unwrap();
    assert_eq!(at, sent);
    let id = m["id"].as_str().unwrap();
    assert!(
        eventsub_bridge::domain::MessageId::parse(id).is_ok(),
        "{id}"
    );
}

#[actix_web::test]
async fn a_body_over_one_mebibyte_gets_413_before_anything_else() {
    let app = spawn_app(|_| {}).await;
    let big = "x".repeat(1024 * 1024 + 1);
    // No Twitch headers at all: the size rule comes first. The server may
    // answer and close before the client finished sending, so a broken pipe
    // after the 413 is possible; with Content-Length it answers up front.
    let r = app
        .client
        .post(app.url("/api/callback"))
        .header("Twitch-Eventsub-Message-Id", "x")
        .body(big)
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // A chunked body (no Content-Length) is cut off at the limit too.
    let chunks = futures_util::stream::iter(
        (0..17).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 64 * 1024]))),
    );
    let r = app
        .client
        .post(app.url("/api/callback"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    assert!(
        app.metric("eventsub_bridge_webhooks_total", "rejected_size")
            .await
            >= 1.0
    );
    // Exactly 1 MiB is not too large: it fails later, on the signature.
    let mut w = follow("teststreamer");
    w.body = " ".repeat(1024 * 1024);
    let r = app.send_webhook(&w).await;
    assert_eq!(r.status(), 403);
}

#[actix_web::test]
async fn each_missing_header_gets_400_naming_it() {
    let app = spawn_app(|_| {}).await;
    let w = follow("teststreamer");
    for missing in [
        "Twitch-Eventsub-Message-Id",
        "Twitch-Eventsub-Message-Timestamp",
        "Twitch-Eventsub-Message-Signature",
        "Twitch-Eventsub-Message-Type",
    ] {
        let mut req = app
            .client
            .post(app.url("/api/callback"))
            .body(w.body.clone());
        for (name, value) in [
            ("Twitch-Eventsub-Message-Id", &w.message_id),
            ("Twitch-Eventsub-Message-Timestamp", &w.timestamp),
            ("Twitch-Eventsub-Message-Signature", &w.signature),
            ("Twitch-Eventsub-Message-Type", &w.message_type),
        ] {
            if name != missing {
                req = req.header(name, value);
            }
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{missing}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "missing_header");
        assert!(
            body["message"].as_str().unwrap().contains(missing),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn a_wrong_or_malformed_signature_gets_403_and_publishes_nothing() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let good = follow("teststreamer");
    let mut wrong_secret = good.clone();
    wrong_secret.signature = signature::sign(
        b"another-secret-123",
        &good.message_id,
        &good.timestamp,
        good.body.as_bytes(),
    );
    let mut tampered = good.clone();
    tampered.body = tampered.body.replace("viewer42", "viewer43");
    let mut upper = good.clone();
    upper.signature = upper.signature.replace("sha256=", "SHA256=");
    let mut no_prefix = good.clone();
    no_prefix.signature = no_prefix.signature.trim_start_matches("sha256=").to_owned();
    for w in [wrong_secret, tampered, upper, no_prefix] {
        let r = app.send_webhook(&w).await;
        assert_eq!(r.status(), 403, "{}", w.signature);
    }
    assert!(app.history("teststreamer", "").await.is_empty());
    assert!(
        app.metric("eventsub_bridge_webhooks_total", "rejected_signature")
            .await
            >= 4.0
    );
}

#[actix_web::test]
async fn stale_and_future_timestamps_are_rejected_with_403() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let body = follow("teststreamer").body;
    let at = |secs: i64| {
        (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Nanos, true)
    };
    for (offset, status) in [(-11 * 60, 403), (-9 * 60, 204), (2 * 60, 403), (30, 204)] {
        let w = SignedWebhook::at(
            "notification",
            "channel.follow",
            "2",
            body.clone(),
            &uuid::Uuid::new_v4().to_string(),
            &at(offset),
        );
        assert_eq!(
            app.send_webhook(&w).await.status(),
            status,
            "offset {offset}"
        );
    }
    assert_eq!(app.history("teststreamer", "").await.len(), 2);
}

#[actix_web::test]
async fn timestamps_with_any_fraction_length_are_signed_as_received() {
    let app = spawn_app(|_| {}).await;
    let now = Utc::now();
    for ts in [
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
        now.to_rfc3339_opts(SecondsFormat::Millis, true),
        format!("{}.8091512Z", now.format("%Y-%m-%dT%H:%M:%S")),
        now.to_rfc3339_opts(SecondsFormat::Nanos, true),
    ] {
        let w = SignedWebhook::at(
            "notification",
            "channel.follow",
            "2",
            follow("teststreamer").body,
            &uuid::Uuid::new_v4().to_string(),
            &ts,
        );
        assert_eq!(app.send_webhook(&w).await.status(), 204, "{ts}");
    }
}

#[actix_web::test]
async fn a_repeated_message_id_is_acknowledged_and_not_published_again() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    // A production-style base64 id: ids are opaque, never parsed.
    let w = SignedWebhook::at(
        "notification",
        "channel.follow",
        "2",
        follow("teststreamer").body,
        "eTOJ71BBQNXGNW8qPUNMRGIHH5yv4bBrvwl02DWgF0o=",
        &signature::timestamp_now(),
    );
    assert_eq!(app.send_webhook(&w).await.status(), 204);
    // Twitch's resend: same id, possibly a new timestamp.
    let resend = SignedWebhook::at(
        "notification",
        "channel.follow",
        "2",
        w.body.clone(),
        &w.message_id,
        &signature::timestamp_now(),
    );
    let r = app.send_webhook(&resend).await;
    assert!(r.status().is_success());
    assert_eq!(app.history("teststreamer", "").await.len(), 1);
    assert_eq!(
        app.metric("eventsub_bridge_webhooks_total", "duplicate")
            .await,
        1.0
    );
}

#[actix_web::test]
async fn the_challenge_is_echoed_exactly_as_text_plain() {
    let app = spawn_app(|_| {}).await;
    let challenge = "pogchamp-kappa-360noscope-vohiyo";
    let body = json!({
        "subscription": {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "status": "webhook_callback_verification_pending",
            "type": "channel.follow", "version": "2", "condition": {"broadcaster_user_id": "12826"},
            "transport": {"method": "webhook", "callback": "https://example.com/api/callback"},
            "created_at": "2019-11-16T10:11:12.634234626Z", "cost": 0},
        "challenge": challenge
    })
    .to_string();
    let w = SignedWebhook::new("webhook_callback_verification", "channel.follow", "2", body);
    let r = app.send_webhook(&w).await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(r.text().await.unwrap(), challenge);
}

#[actix_web::test]
async fn a_revocation_is_204_and_a_system_message_for_a_learned_broadcaster() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    // Learn 4242 ↔ teststreamer from an accepted notification.
    assert_eq!(
        app.send_webhook(&follow("teststreamer")).await.status(),
        204
    );
    let revoke = |id: &str| {
        json!({"subscription": {"id": "sub-1", "status": "authorization_revoked", "type": "channel.follow",
            "version": "2", "condition": {"broadcaster_user_id": id, "moderator_user_id": id},
            "transport": {"method": "webhook", "callback": "https://example.com/api/callback"},
            "created_at": "2026-11-23T08:00:00Z", "cost": 0}})
        .to_string()
    };
    let r = app
        .send_webhook(&SignedWebhook::new(
            "revocation",
            "channel.follow",
            "2",
            revoke("4242"),
        ))
        .await;
    assert_eq!(r.status(), 204);
    let h = app.history("teststreamer", "").await;
    assert_eq!(h.len(), 2);
    assert_eq!(h[1]["type"], "subscription.revoked");
    assert_eq!(h[1]["source"], "system");
    assert_eq!(h[1]["data"]["status"], "authorization_revoked");
    // Unknown broadcaster: acknowledged, logged and counted, nothing published.
    let r = app
        .send_webhook(&SignedWebhook::new(
            "revocation",
            "channel.follow",
            "2",
            revoke("999"),
        ))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.metric("eventsub_bridge_unroutable_events_total", "")
            .await,
        1.0
    );
}

#[actix_web::test]
async fn invalid_json_is_400_and_does_not_consume_the_message_id() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let id = uuid::Uuid::new_v4().to_string();
    let ts = signature::timestamp_now();
    let bad = SignedWebhook::at(
        "notification",
        "channel.follow",
        "2",
        "{not json".into(),
        &id,
        &ts,
    );
    let r = app.send_webhook(&bad).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_json");
    // The retry of that id is processed, not swallowed as a duplicate.
    let good = SignedWebhook::at(
        "notification",
        "channel.follow",
        "2",
        follow("teststreamer").body,
        &id,
        &ts,
    );
    assert_eq!(app.send_webhook(&good).await.status(), 204);
    assert_eq!(app.history("teststreamer", "").await.len(), 1);
}

#[actix_web::test]
async fn an_unknown_message_type_is_400() {
    let app = spawn_app(|_| {}).await;
    let mut w = follow("teststreamer");
    w.message_type = "surprise".into();
    assert_eq!(app.send_webhook(&w).await.status(), 400);
}

#[actix_web::test]
async fn a_raid_reaches_both_channels_and_logins_are_lower_cased() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let event = json!({"from_broadcaster_user_id": "1", "from_broadcaster_user_login": "RaiderOne",
        "from_broadcaster_user_name": "RaiderOne", "to_broadcaster_user_id": "2",
        "to_broadcaster_user_login": "testBroadcaster", "to_broadcaster_user_name": "testBroadcaster", "viewers": 42});
    let body = notification_body(
        "channel.raid",
        "1",
        json!({"from_broadcaster_user_id": "", "to_broadcaster_user_id": "2"}),
        event,
    );
    let r = app
        .send_webhook(&SignedWebhook::new(
            "notification",
            "channel.raid",
            "1",
            body,
        ))
        .await;
    assert_eq!(r.status(), 204);
    let to = app.history("testbroadcaster", "").await;
    let from = app.history("raiderone", "").await;
    assert_eq!(to.len(), 1);
    assert_eq!(from.len(), 1);
    assert!(
        to[0]["text"].as_str().unwrap().contains("42"),
        "{}",
        to[0]["text"]
    );
}

#[actix_web::test]
async fn an_event_without_a_login_is_routed_by_its_condition_through_the_registry() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    assert_eq!(
        app.send_webhook(&follow("teststreamer")).await.status(),
        204
    );
    let body = notification_body(
        "some.future.type",
        "1",
        json!({"broadcaster_user_id": "4242"}),
        json!({"value": 7}),
    );
    let r = app
        .send_webhook(&SignedWebhook::new(
            "notification",
            "some.future.type",
            "1",
            body,
        ))
        .await;
    assert_eq!(r.status(), 204);
    let h = app.history("teststreamer", "").await;
    assert_eq!(h.len(), 2);
    // Unknown types pass through untouched, named by their type.
    assert_eq!(h[1]["type"], "some.future.type");
    assert_eq!(h[1]["text"], "some.future.type");
    assert_eq!(h[1]["data"], json!({"value": 7}));
}

#[actix_web::test]
async fn a_bad_login_in_an_event_is_400_invalid_channel() {
    let app = spawn_app(|_| {}).await;
    let r = app
        .post_notification(
            "channel.follow",
            "2",
            follow_event("bad login!", "4242", "v"),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_channel");
}

#[actix_web::test]
async fn legacy_websub_verification_answers_the_challenge() {
    let app = spawn_app(|_| {}).await;
    for mode in ["subscribe", "unsubscribe"] {
        let r = app
            .client
            .get(app.url(&format!("/api/callback?hub.mode={mode}&hub.challenge=abc123&hub.topic=x&hub.lease_seconds=864000")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(r.text().await.unwrap(), "abc123");
    }
    let denied = app
        .client
        .get(app.url("/api/callback?hub.mode=denied&hub.topic=x&hub.reason=unauthorized"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 200);
    for bad in [
        "/api/callback",
        "/api/callback?hub.mode=subscribe",
        "/api/callback?hub.mode=nope&hub.challenge=a",
    ] {
        assert_eq!(
            app.client.get(app.url(bad)).send().await.unwrap().status(),
            400,
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn legacy_websub_posts_publish_stream_changed_and_need_the_signature() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let post = |body: &'static str, sig: Option<String>| {
        let mut req = app
            .client
            .post(app.url("/api/callback?channel=TestStreamer"))
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body);
        if let Some(s) = sig {
            req = req.header("X-Hub-Signature", s);
        }
        req.send()
    };
    let live = r#"{"data":[{"id":"1","user_id":"5","user_login":"teststreamer","user_name":"TestStreamer","game_id":"1","game_name":"Chess","type":"live","title":"Hello","viewer_count":3,"started_at":"2026-11-23T08:00:00Z","language":"en","thumbnail_url":"","tag_ids":[],"is_mature":false}]}"#;
    let sig = signature::sign_websub(SECRET.as_bytes(), live.as_bytes());
    assert_eq!(post(live, Some(sig)).await.unwrap().status(), 204);
    let empty = r#"{"data":[]}"#;
    assert_eq!(post(empty, None).await.unwrap().status(), 403);
    assert_eq!(
        post(empty, Some("sha256=00".into()))
            .await
            .unwrap()
            .status(),
        403
    );
    let sig = signature::sign_websub(SECRET.as_bytes(), empty.as_bytes());
    assert_eq!(post(empty, Some(sig)).await.unwrap().status(), 204);
    let h = app.history("teststreamer", "").await;
    assert_eq!(h.len(), 2);
    assert!(
        h.iter()
            .all(|m| m["type"] == "stream.changed" && m["source"] == "websub")
    );
    assert!(
        h[1]["text"].as_str().unwrap().contains("offline"),
        "{}",
        h[1]["text"]
    );
}
