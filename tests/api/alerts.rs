//! SPEC §8, alert overlays, each rule through the real server: the queue
//! (order, one in flight, ack, skip, replay, test, pause, clear, the cap),
//! redelivery after a disconnect, the overlay key and its rotation, the
//! filters, the settings, who may use the API, and the EventSub source.
//! Every test that does not need two instances runs against both stores.

use std::collections::HashSet;
use std::time::Duration;

use eventsub_bridge::config::Settings;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::ws_client::refused_status;
use crate::helpers::{SignedWebhook, TestApp, notification_body, spawn_app};
use crate::redis_server::{cleanup, require_shared_redis};

/// The streamer of every test.
const CH: &str = "teststreamer";
const QUIET: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Memory,
    Redis,
}

/// A server (memory or Redis store) with `teststreamer` signed in.
pub async fn streamer(store: Store, change: impl FnOnce(&mut Settings)) -> TestApp {
    let redis = match store {
        Store::Memory => None,
        Store::Redis => Some(require_shared_redis().await),
    };
    let app = spawn_app(|s| {
        if let Some(url) = redis {
            s.redis_url = Some(SecretString::from(url.to_owned()));
        }
        change(s);
    })
    .await;
    if redis.is_some() {
        wait_ready(&app).await;
    }
    app.login_as(CH).await;
    app
}

async fn wait_ready(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn done(app: TestApp) {
    if app.state.settings.redis_url.is_some() {
        let prefix = app.state.settings.redis_prefix.clone();
        drop(app);
        cleanup(crate::redis_server::SHARED_REDIS_URL, &prefix).await;
    }
}

/// Runs `$name(Store)` against both stores.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[actix_web::test]
            async fn memory() {
                super::$name(super::Store::Memory).await;
            }
            #[actix_web::test]
            async fn redis() {
                super::$name(super::Store::Redis).await;
            }
        }
    };
}

fn cheer_webhook(channel: &str, bits: u64, message_id: &str) -> SignedWebhook {
    let event = json!({
        "is_anonymous": false, "user_id": "98765432", "user_login": "viewer42", "user_name": "Viewer42",
        "broadcaster_user_id": "12345678", "broadcaster_user_login": channel, "broadcaster_user_name": channel,
        "message": "Cheer!", "bits": bits
    });
    let body = notification_body(
        "channel.cheer",
        "1",
        json!({"broadcaster_user_id": "12345678"}),
        event,
    );
    SignedWebhook::at(
        "notification",
        "channel.cheer",
        "1",
        body,
        message_id,
        &eventsub_bridge::eventsub::signature::timestamp_now(),
    )
}

both!(the_head_is_in_flight_alone_and_the_next_follows_its_ack);
async fn the_head_is_in_flight_alone_and_the_next_follows_its_ack(store: Store) {
    let app = streamer(store, |_| {}).await;
    let key = app.overlay_key(CH).await;
    let (mut a, welcome) = app.overlay(CH, &key).await;
    assert_eq!(welcome["channel"], CH);
    assert_eq!(welcome["paused"], false);
    assert_eq!(welcome["settings"]["follow"]["duration_ms"], 8000);
    let (mut b, _) = app.overlay(CH, &key).await;
    let ids = [
        app.donate(CH, "Ana", "10.50").await,
        app.donate(CH, "Bo", "2").await,
        app.donate(CH, "Cy", "3").await,
    ];
    for ws in [&mut a, &mut b] {
        let first = ws.next_alert().await;
        assert_eq!(first["id"], ids[0].as_str());
        assert_eq!(first["text"], "Ana donated 10.50 USD");
        assert_eq!(first["amount"], "10.50");
        assert!(ws.stays_quiet(QUIET).await, "only the head is in flight");
    }
    let state = app.alerts_state(CH).await;
    assert_eq!(state["in_flight"]["id"], ids[0].as_str());
    let queued: Vec<&str> = state["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(queued, [ids[1].as_str(), ids[2].as_str()]);
    // Acks of a waiting alert and of an unknown id are ignored.
    a.ack(&ids[2]).await;
    a.ack("no-such-alert").await;
    assert!(a.stays_quiet(QUIET).await);
    // An ack from either overlay moves both on; a later ack of it is ignored.
    b.ack(&ids[0]).await;
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.next_alert().await["id"], ids[1].as_str());
    }
    a.ack(&ids[0]).await;
    assert!(a.stays_quiet(QUIET).await);
    a.ack(&ids[1]).await;
    assert_eq!(a.next_alert().await["id"], ids[2].as_str());
    a.ack(&ids[2]).await;
    assert!(a.stays_quiet(QUIET).await);
    let state = app.alerts_state(CH).await;
    assert_eq!(state["in_flight"], Value::Null);
    let recent: Vec<&str> = state["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(recent, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(state["recent"][0]["outcome"], "shown");
    assert!(app.metric("eventsub_bridge_alerts_shown_total", "").await >= 3.0);
    done(app).await;
}

both!(alerts_wait_without_an_overlay_and_an_unacked_one_is_sent_again);
async fn alerts_wait_without_an_overlay_and_an_unacked_one_is_sent_again(store: Store) {
    let app = streamer(store, |_| {}).await;
    let key = app.overlay_key(CH).await;
    let first = app.donate(CH, "Ana", "1").await;
    let second = app.donate(CH, "Bo", "1").await;
    // Opened later: the head is waiting for it.
    let (mut ws, _) = app.overlay(CH, &key).await;
    assert_eq!(ws.next_alert().await["id"], first.as_str());
    // Closed before its ack (OBS crashed): the next overlay gets the same head.
    drop(ws);
    let (mut ws, _) = app.overlay(CH, &key).await;
    assert_eq!(ws.next_alert().await["id"], first.as_str());
    ws.ack(&first).await;
    assert_eq!(ws.next_alert().await["id"], second.as_str());
    done(app).await;
}

both!(fifty_alerts_published_at_once_are_each_shown_once_in_order);
async fn fifty_alerts_published_at_once_are_each_shown_once_in_order(store: Store) {
    let app = streamer(store, |s| {
        s.workers = 2;
        // This test acks as fast as it can; an overlay acks once per alert.
        s.limits.rate_limit_frames = 1000;
    })
    .await;
    let key = app.overlay_key(CH).await;
    let (mut ws, _) = app.overlay(CH, &key).await;
    let names: Vec<String> = (0..50).map(|i| format!("donor{i}")).collect();
    let posts = names.iter().map(|n| app.donate(CH, n, "1"));
    let ids: HashSet<String> = futures_util::future::join_all(posts)
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 50);
    // The queue's order once all are in: the head, then the waiting ones.
    let state = app.alerts_state(CH).await;
    let mut order = Vec::new();
    if let Some(id) = state["in_flight"]["id"].as_str() {
        order.push(id.to_owned());
    }
    let shown_before: Vec<String> = state["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(shown_before.is_empty());
    order.extend(
        state["queued"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned()),
    );
    assert_eq!(order.len(), 50);
    let mut shown = Vec::new();
    for _ in 0..50 {
        let alert = ws.next_alert().await;
        let id = alert["id"].as_str().unwrap().to_owned();
        ws.ack(&id).await;
        shown.push(id);
    }
    assert!(ws.stays_quiet(QUIET).await, "nothing shown twice");
    assert_eq!(shown, order);
    done(app).await;
}

both!(skip_ends_the_alert_on_screen_and_replay_and_test_go_through_the_queue);
async fn skip_ends_the_alert_on_screen_and_replay_and_test_go_through_the_queue(store: Store) {
    let app = streamer(store, |_| {}).await;
    let key = app.overlay_key(CH).await;
    let (mut ws, _) = app.overlay(CH, &key).await;
    let a = app.donate(CH, "Ana", "1").await;
    let b = app.donate(CH, "Bo", "1").await;
    assert_eq!(ws.next_alert().await["id"], a.as_str());
    app.alerts_control(CH, "skip").await;
    let skip = ws.expect_op("skip").await;
    assert_eq!(skip["id"], a.as_str());
    assert_eq!(ws.next_alert().await["id"], b.as_str());
    // A replay of the skipped one goes to the front, with a new id.
    let c = app.donate(CH, "Cy", "1").await;
    let r = app
        .alerts_call(Method::POST, CH, "/replay", Some(json!({"id": a})))
        .await;
    assert_eq!(r.status(), 202);
    let replay_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(replay_id, a);
    ws.ack(&b).await;
    let replayed = ws.next_alert().await;
    assert_eq!(replayed["id"], replay_id.as_str());
    assert_eq!(replayed["replay"], true);
    assert_eq!(replayed["user"], "Ana");
    ws.ack(&replay_id).await;
    assert_eq!(ws.next_alert().await["id"], c.as_str());
    // A test alert of each kind is queued with "test": true.
    let r = app
        .alerts_call(Method::POST, CH, "/test", Some(json!({"kind": "cheer"})))
        .await;
    assert_eq!(r.status(), 202);
    ws.ack(&c).await;
    let test = ws.next_alert().await;
    assert_eq!(test["kind"], "cheer");
    assert_eq!(test["test"], true);
    assert_eq!(test["text"], "Viewer42 cheered 100 bits!");
    for kind in [
        "follow",
        "subscribe",
        "resub",
        "gift",
        "raid",
        "redemption",
        "hype_train",
        "donation",
    ] {
        let r = app
            .alerts_call(Method::POST, CH, "/test", Some(json!({"kind": kind})))
            .await;
        assert_eq!(r.status(), 202, "{kind}");
    }
    for (body, status) in [(json!({"kind": "nope"}), 400), (json!({}), 400)] {
        let r = app.alerts_call(Method::POST, CH, "/test", Some(body)).await;
        assert_eq!(r.status(), status);
    }
    let r = app
        .alerts_call(Method::POST, CH, "/replay", Some(json!({"id": "nope"})))
        .await;
    assert_eq!(r.status(), 404);
    // Clear empties the waiting queue; the alert on screen stays.
    app.alerts_control(CH, "clear").await;
    let state = app.alerts_state(CH).await;
    assert_eq!(state["queued"].as_array().unwrap().len(), 0);
    assert_eq!(state["in_flight"]["kind"], "cheer");
    done(app).await;
}

both!(pause_lets_the_alert_on_screen_finish_and_sends_nothing_new);
async fn pause_lets_the_alert_on_screen_finish_and_sends_nothing_new(store: Store) {
    let app = streamer(store, |_| {}).await;
    let key = app.overlay_key(CH).await;
    let (mut ws, _) = app.overlay(CH, &key).await;
    let a = app.donate(CH, "Ana", "1").await;
    let b = app.donate(CH, "Bo", "1").await;
    assert_eq!(ws.next_alert().await["id"], a.as_str());
    app.alerts_control(CH, "pause").await;
    ws.expect_op("paused").await;
    ws.ack(&a).await;
    assert!(ws.stays_quiet(QUIET).await, "nothing new while paused");
    // A new overlay hears that it is paused.
    let (_other, welcome) = app.overlay(CH, &key).await;
    assert_eq!(welcome["paused"], true);
    app.alerts_control(CH, "resume").await;
    ws.expect_op("resumed").await;
    assert_eq!(ws.next_alert().await["id"], b.as_str());
    done(app).await;
}

both!(a_new_key_closes_open_overlays_with_4001_and_the_old_one_stops_at_once);
async fn a_new_key_closes_open_overlays_with_4001_and_the_old_one_stops_at_once(store: Store) {
    let app = streamer(store, |_| {}).await;
    let old = app.overlay_key(CH).await;
    let (mut ws, _) = app.overlay(CH, &old).await;
    let r = app.alerts_call(Method::POST, CH, "/key", None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let new = body["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/overlay/{CH}?key={new}"))
    );
    assert_eq!(
        ws.close_code(Duration::from_secs(5)).await,
        Some(CloseCode::Library(4001))
    );
    let err = app.try_overlay(CH, &old).await.err().unwrap();
    assert_eq!(refused_status(&err), Some(401));
    let page = app
        .client
        .get(app.url(&format!("/overlay/{CH}?key={old}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 401);
    app.overlay(CH, &new).await;
    done(app).await;
}

both!(the_overlay_page_needs_the_key_and_says_nothing_about_the_channel);
async fn the_overlay_page_needs_the_key_and_says_nothing_about_the_channel(store: Store) {
    let app = streamer(store, |_| {}).await;
    let key = app.overlay_key(CH).await;
    let anon = reqwest::Client::new();
    let page = anon
        .get(app.url(&format!("/overlay/{CH}?key={key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("set-cookie").is_none(), "no cookie");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/static/overlay.js") && !html.contains("<script>"),
        "{html}"
    );
    let mut bodies = HashSet::new();
    for path in [
        format!("/overlay/{CH}?key=wrong"),
        format!("/overlay/{CH}"),
        format!("/overlay/nobodyhere?key={key}"),
        "/overlay/nobodyhere?key=wrong".to_owned(),
    ] {
        let r = anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        bodies.insert(r.text().await.unwrap());
    }
    assert_eq!(
        bodies.len(),
        1,
        "one answer whatever the channel: {bodies:?}"
    );
    let err = app.try_overlay(CH, "wrong").await.err().unwrap();
    assert_eq!(refused_status(&err), Some(401));
    // The overlay socket keeps the Origin rule of /ws.
    let url = format!(
        "{}/overlay/{CH}/ws?key={key}",
        app.base.replacen("http", "ws", 1)
    );
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.err().unwrap();
    assert_eq!(refused_status(&err), Some(403));
    done(app).await;
}

both!(the_api_is_the_streamers_own_or_the_admins);
async fn the_api_is_the_streamers_own_or_the_admins(store: Store) {
    let app = streamer(store, |s| {
        s.admin_token = Some(SecretString::from("admin-token-0123456789"))
    })
    .await;
    // Another signed-in user: 403 on every route.
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    other
        .post(app.url("/auth/local"))
        .form(&[("login", "someoneelse")])
        .send()
        .await
        .unwrap();
    let anon = reqwest::Client::new();
    for (method, path) in [
        (Method::GET, ""),
        (Method::PUT, "/settings"),
        (Method::POST, "/test"),
        (Method::POST, "/pause"),
        (Method::POST, "/resume"),
        (Method::POST, "/skip"),
        (Method::POST, "/clear"),
        (Method::POST, "/replay"),
        (Method::POST, "/key"),
    ] {
        let url = app.url(&format!("/api/alerts/{CH}{path}"));
        let r = other
            .request(method.clone(), &url)
            .header("Origin", app.origin())
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path} as another user");
        let r = anon
            .request(method.clone(), &url)
            .header("Origin", app.origin())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} signed out");
        let r = anon
            .request(method.clone(), &url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with a wrong token");
    }
    // The admin token works without a session or an Origin.
    let r = anon
        .get(app.url(&format!("/api/alerts/{CH}")))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = anon
        .post(app.url(&format!("/api/alerts/{CH}/pause")))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // The dashboard: the signed-in user's own channel; 302 without a session.
    let page = app.get_text("/dashboard").await;
    assert!(page.contains(r#"data-channel="teststreamer""#));
    assert!(page.contains("/static/dashboard.js"));
    assert_eq!(page.contains("memory-notice"), store == Store::Memory);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(app.url("/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    done(app).await;
}

both!(session_changes_need_the_dashboards_own_origin);
async fn session_changes_need_the_dashboards_own_origin(store: Store) {
    let app = streamer(store, |_| {}).await;
    let url = app.url(&format!("/api/alerts/{CH}/pause"));
    let r = app.client.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 403, "no Origin or Referer");
    let r = app
        .client
        .post(&url)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a foreign Origin");
    let r = app
        .client
        .post(&url)
        .header("Referer", "https://evil.example/dashboard")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a foreign Referer");
    let r = app
        .client
        .put(app.url(&format!("/api/alerts/{CH}/settings")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "PUT without Origin");
    let r = app
        .client
        .post(&url)
        .header("Referer", format!("{}/dashboard", app.origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "the dashboard's Referer");
    let r = app
        .client
        .post(&url)
        .header("Origin", app.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "the dashboard's Origin");
    // A GET needs neither.
    let r = app
        .client
        .get(app.url(&format!("/api/alerts/{CH}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    done(app).await;
}

both!(settings_are_validated_by_field_and_pushed_to_open_overlays);
async fn settings_are_validated_by_field_and_pushed_to_open_overlays(store: Store) {
    let app = streamer(store, |_| {}).await;
    let key = app.overlay_key(CH).await;
    let (mut ws, _) = app.overlay(CH, &key).await;
    for (body, field) in [
        (json!({"cheer": {"duration_ms": 10}}), "cheer.duration_ms"),
        (json!({"cheer": {"min_amount": "-3"}}), "cheer.min_amount"),
        (json!({"cheer": {"template": "{nope}"}}), "cheer.template"),
        (json!({"cheer": {"enabled": "no"}}), "cheer.enabled"),
        (json!({"sparkles": {}}), "sparkles"),
    ] {
        let r = app
            .alerts_call(Method::PUT, CH, "/settings", Some(body.clone()))
            .await;
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["message"].as_str().unwrap().starts_with(field), "{e}");
    }
    let r = app
        .alerts_call(Method::PUT, CH, "/settings", Some(json!({"cheer": {"template": "{user} sent {amount}!", "duration_ms": 2500, "sound": false}})))
        .await;
    assert_eq!(r.status(), 200);
    let pushed = ws.expect_op("settings").await;
    assert_eq!(pushed["settings"]["cheer"]["duration_ms"], 2500);
    assert_eq!(pushed["settings"]["cheer"]["sound"], false);
    assert_eq!(pushed["settings"]["follow"]["duration_ms"], 8000);
    let state = app.alerts_state(CH).await;
    assert_eq!(state["settings"], pushed["settings"]);
    // The template renders the text, the duration comes along.
    let wh = cheer_webhook(CH, 250, &uuid::Uuid::new_v4().to_string());
    assert_eq!(app.send_webhook(&wh).await.status(), 204);
    let alert = ws.next_alert().await;
    assert_eq!(alert["text"], "Viewer42 sent 250!");
    assert_eq!(alert["duration_ms"], 2500);
    assert_eq!(alert["amount"], "250");
    done(app).await;
}

both!(disabled_and_small_events_never_enter_the_queue);
async fn disabled_and_small_events_never_enter_the_queue(store: Store) {
    let app = streamer(store, |_| {}).await;
    let r = app
        .alerts_call(Method::PUT, CH, "/settings", Some(json!({
            "cheer": {"min_amount": "100"}, "follow": {"enabled": false}, "donation": {"min_amount": "5.00"}
        })))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.send_webhook(&cheer_webhook(CH, 99, "small-cheer"))
            .await
            .status(),
        204
    );
    assert_eq!(app.post_follow(CH, "follower1").await.status(), 204);
    let r = app
        .post_alert(
            CH,
            json!({"kind": "donation", "user": "Ana", "amount": "4.99", "currency": "USD"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": null, "filtered": "below_min_amount"})
    );
    let state = app.alerts_state(CH).await;
    assert_eq!(state["in_flight"], Value::Null);
    assert_eq!(state["queued"], json!([]));
    // The viewer messages (SPEC §3) still went out.
    assert_eq!(app.history(CH, "").await.len(), 2);
    assert_eq!(
        app.send_webhook(&cheer_webhook(CH, 100, "big-cheer"))
            .await
            .status(),
        204
    );
    assert_eq!(app.alerts_state(CH).await["in_flight"]["amount"], "100");
    assert!(
        app.metric("eventsub_bridge_alerts_dropped_total", "below_min_amount")
            .await
            >= 2.0
    );
    assert!(
        app.metric("eventsub_bridge_alerts_dropped_total", "disabled")
            .await
            >= 1.0
    );
    done(app).await;
}

both!(a_full_queue_answers_429_and_drops_eventsub_alerts_counted);
async fn a_full_queue_answers_429_and_drops_eventsub_alerts_counted(store: Store) {
    use std::num::NonZeroUsize;
    let app = streamer(store, |s| {
        s.limits.alert_queue_len = NonZeroUsize::new(2).unwrap()
    })
    .await;
    // One in flight (not counted) and two waiting.
    for u in ["a", "b", "c"] {
        app.donate(CH, u, "1").await;
    }
    let r = app
        .post_alert(
            CH,
            json!({"kind": "donation", "user": "d", "amount": "1", "currency": "USD"}),
        )
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "queue_full");
    let r = app
        .alerts_call(Method::POST, CH, "/test", Some(json!({"kind": "follow"})))
        .await;
    assert_eq!(r.status(), 429);
    // An EventSub alert is dropped and counted; the webhook still succeeds.
    assert_eq!(
        app.send_webhook(&cheer_webhook(CH, 500, "dropped-cheer"))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.metric("eventsub_bridge_alerts_dropped_total", "queue_full")
            .await,
        1.0
    );
    let state = app.alerts_state(CH).await;
    assert_eq!(state["queued"].as_array().unwrap().len(), 2);
    done(app).await;
}

both!(eventsub_alerts_are_made_once_per_message_and_raids_go_to_the_raided_channel);
async fn eventsub_alerts_are_made_once_per_message_and_raids_go_to_the_raided_channel(
    store: Store,
) {
    let app = streamer(store, |_| {}).await;
    let key = app.overlay_key(CH).await;
    let (mut ws, _) = app.overlay(CH, &key).await;
    let wh = cheer_webhook(CH, 300, "cheer-once");
    assert_eq!(app.send_webhook(&wh).await.status(), 204);
    // Twitch retries the same message: 2xx, and no second alert.
    assert_eq!(app.send_webhook(&wh).await.status(), 204);
    let alert = ws.next_alert().await;
    assert_eq!(alert["kind"], "cheer");
    assert_eq!(alert["user"], "Viewer42");
    assert_eq!(alert["message"], "Cheer!");
    assert_eq!(alert["data"]["bits"], 300);
    ws.ack(alert["id"].as_str().unwrap()).await;
    assert!(
        ws.stays_quiet(QUIET).await,
        "a retried webhook makes no alert"
    );
    // A raid from teststreamer to otherstreamer: the alert is the raided one's.
    let raid = json!({
        "from_broadcaster_user_id": "1", "from_broadcaster_user_login": CH, "from_broadcaster_user_name": "TestStreamer",
        "to_broadcaster_user_id": "2", "to_broadcaster_user_login": "otherstreamer", "to_broadcaster_user_name": "Other",
        "viewers": 42
    });
    assert_eq!(
        app.post_notification("channel.raid", "1", raid)
            .await
            .status(),
        204
    );
    assert!(ws.stays_quiet(QUIET).await, "the raider gets no alert");
    let admin_view = app
        .state
        .alerts
        .state(&eventsub_bridge::domain::ChannelName::parse("otherstreamer").unwrap())
        .await
        .unwrap();
    let raid_alert = admin_view.in_flight.unwrap();
    assert_eq!(raid_alert.text, "TestStreamer is raiding with 42 viewers!");
    // Types that are not alert kinds make none.
    let online = json!({"id": "1", "broadcaster_user_id": "12345678", "broadcaster_user_login": CH,
        "broadcaster_user_name": CH, "type": "live", "started_at": "2026-11-23T08:00:00Z"});
    assert_eq!(
        app.post_notification("stream.online", "1", online)
            .await
            .status(),
        204
    );
    assert!(ws.stays_quiet(QUIET).await);
    done(app).await;
}

both!(the_app_api_checks_its_token_first_and_every_field);
async fn the_app_api_checks_its_token_first_and_every_field(store: Store) {
    let app = streamer(store, |_| {}).await;
    let url = app.url(&format!("/api/alerts/{CH}"));
    let r = app.client.post(&url).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 401, "the token before the body");
    let r = app
        .client
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let long = "x".repeat(10 * 1024);
    for (body, field) in [
        (
            json!({"kind": "donation", "user": "Ana", "amount": "-1", "currency": "USD"}),
            "amount",
        ),
        (
            json!({"kind": "donation", "user": "Ana", "amount": "lots", "currency": "USD"}),
            "amount",
        ),
        (
            json!({"kind": "donation", "user": "Ana", "amount": "1", "currency": "USD", "message": long}),
            "message",
        ),
        (json!({"kind": "What Ever", "text": "hi"}), "kind"),
        (
            json!({"kind": "donation", "amount": "1", "currency": "USD"}),
            "user",
        ),
        (
            json!({"kind": "donation", "user": "Ana", "amount": "1", "currency": "dollars"}),
            "currency",
        ),
        (json!({"kind": "merch"}), "text"),
    ] {
        let r = app.post_alert(CH, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["message"].as_str().unwrap().starts_with(field), "{e}");
    }
    let r = app
        .client
        .post(app.url("/api/alerts/Not-A-Channel!"))
        .bearer_auth(crate::helpers::PUBLISH_TOKEN)
        .json(&json!({"kind": "merch", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // HTML stays text: stored and sent exactly as written.
    let html = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    let r = app.post_alert(CH, json!({"kind": "donation", "user": html, "amount": "1", "currency": "usd", "message": html})).await;
    assert_eq!(r.status(), 202);
    let state = app.alerts_state(CH).await;
    assert_eq!(state["in_flight"]["user"], html);
    assert_eq!(state["in_flight"]["message"], html);
    assert_eq!(state["in_flight"]["currency"], "USD");
    // A custom kind with its own text and duration.
    let r = app
        .post_alert(
            CH,
            json!({"kind": "merch_sale", "text": "Someone bought a mug!", "duration_ms": 3000}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let state = app.alerts_state(CH).await;
    assert_eq!(state["queued"][0]["kind"], "merch_sale");
    assert_eq!(state["queued"][0]["duration_ms"], 3000);
    done(app).await;
}

both!(an_idempotency_key_queues_once);
async fn an_idempotency_key_queues_once(store: Store) {
    let app = streamer(store, |_| {}).await;
    let post = || {
        app.client
            .post(app.url(&format!("/api/alerts/{CH}")))
            .bearer_auth(crate::helpers::PUBLISH_TOKEN)
            .header("Idempotency-Key", "order-1")
            .json(&json!({"kind": "donation", "user": "Ana", "amount": "1", "currency": "USD"}))
            .send()
    };
    let (a, b) = tokio::join!(post(), post());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (202, 202));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["id"], b["id"]);
    let r = post().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["id"], a["id"]);
    let state = app.alerts_state(CH).await;
    assert_eq!(state["in_flight"]["id"], a["id"]);
    assert_eq!(state["queued"], json!([]));
    done(app).await;
}

#[actix_web::test]
async fn the_app_api_is_404_without_a_publish_token() {
    let app = spawn_app(|s| s.publish_token = None).await;
    let r = app
        .client
        .post(app.url(&format!("/api/alerts/{CH}")))
        .json(&json!({"kind": "merch", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
