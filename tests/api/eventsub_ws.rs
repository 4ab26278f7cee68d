//! EventSub over Twitch's WebSocket transport (SPEC §10; TWITCH.md §12)
//! against the fake EventSub WebSocket server and the fake Helix, which
//! creates WebSocket subscriptions only with the streamer's user token and
//! only on a live session. Every test also checks that the bridge never
//! sent Twitch anything but pongs and closes (no 4001), answered every
//! ping (no 4002), and subscribed in time (no 4003) unless the test makes
//! it fail to.

use std::time::Duration;

use eventsub_bridge::config::{EventSubTransport, Settings};
use serde_json::{Value, json};

use crate::helpers::fake_twitch::{ADMIN_TOKEN, Endpoint, Failure, FakeTwitch, eventually};
use crate::helpers::{SignedWebhook, TestApp, WsClient, follow_event, notification_body};

/// `EVENT_TYPES`' defaults plus the alert kinds (the raid is in both).
pub const SOCKET_TYPES: usize = 11;

/// Short timings for the WebSocket transport in tests.
pub fn ws_settings(s: &mut Settings, url: &str) {
    s.eventsub_transport = EventSubTransport::WebSocket;
    s.twitch_eventsub_ws_url = url::Url::parse(url).unwrap();
    s.limits.ws_keepalive_margin = Duration::from_millis(500);
    s.limits.ws_backoff_min = Duration::from_millis(50);
    s.limits.ws_backoff_max = Duration::from_millis(400);
    s.limits.ws_lease_poll = Duration::from_millis(200);
    s.limits.ws_welcome_timeout = Duration::from_secs(3);
}

/// A fake Twitch with its EventSub WebSocket server (1 s keepalives, pings
/// every 200 ms) and a bridge on the WebSocket transport.
async fn start(change: impl FnOnce(&mut Settings)) -> (TestApp, FakeTwitch) {
    if std::env::var_os("TEST_LOG").is_some() {
        eventsub_bridge::telemetry::init(std::io::stderr);
    }
    let fake = FakeTwitch::start().await;
    fake.set_ws_timings(1, Duration::from_secs(10), Duration::from_millis(200));
    let url = fake.start_eventsub_ws().await;
    let app = crate::helpers::spawn_app(|s| {
        fake.configure(s);
        ws_settings(s, &url);
        change(s);
    })
    .await;
    (app, fake)
}

impl TestApp {
    /// Signs in as `login` and connects alerts with every scope.
    pub async fn connect_streamer(&self, fake: &FakeTwitch, login: &str) {
        self.twitch_login(fake, login).await;
        let r = self
            .client
            .get(self.url("/auth/connect"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let (code, state) = fake.authorize(r.headers()["location"].to_str().unwrap(), login);
        let r = self
            .twitch_callback(&format!("code={code}&state={state}"))
            .await;
        assert_eq!(r.status(), 302, "{:?}", r.text().await);
    }

    /// The sources view once the socket says `connected`: Twitch has every
    /// subscription a moment before the socket's task has read every
    /// answer.
    async fn ws_sources_connected(&self, channel: &str) -> Value {
        eventually("the socket shown connected", || async move {
            self.ws_sources(channel).await["socket"]["state"] == "connected"
        })
        .await;
        self.ws_sources(channel).await
    }

    async fn ws_sources(&self, channel: &str) -> Value {
        let r = self
            .client
            .get(self.url(&format!("/api/alerts/{channel}/sources")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn readyz_body(&self) -> Value {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Waits until `login` has a live session with every socket type enabled;
/// returns the session id.
pub async fn subscribed_session(fake: &FakeTwitch, login: &str, not: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = fake.ws_session_of(login) {
            if Some(s.as_str()) != not && fake.ws_subscriptions(&s).len() == SOCKET_TYPES {
                return s;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no subscribed EventSub session for {login} (sessions: {:?}, closes: {:?})",
            fake.ws_sessions(),
            fake.ws_closes()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bridge only read (no 4001), answered pings (no 4002) and subscribed
/// in time (no 4003).
pub fn assert_client_behaved(fake: &FakeTwitch) {
    for code in [4001, 4002, 4003] {
        assert_eq!(
            fake.ws_server_closes(code),
            0,
            "Twitch closed a socket with {code}: {:?}",
            fake.ws_closes()
        );
    }
}

async fn viewer(app: &TestApp, channel: &str) -> WsClient {
    let mut ws = app.ws_connect().await;
    ws.subscribe(channel, None).await;
    ws
}

fn source_of<'a>(view: &'a Value, kind: &str) -> &'a Value {
    view["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap()
}

async fn expect_text(ws: &mut WsClient, text: &str) -> Value {
    let ev = ws.expect_op("event").await;
    assert_eq!(ev["message"]["text"], text, "{ev}");
    ev
}

#[actix_web::test]
async fn a_connected_streamer_gets_one_socket_subscribed_with_their_token() {
    let (app, fake) = start(|_| {}).await;
    fake.set_ws_timings(1, Duration::from_secs(2), Duration::from_millis(200));
    let before = app.ws_sources("teststreamer").await;
    assert_eq!(before["transport"], "websocket");
    assert_eq!(before["grant"]["status"], "not_connected");
    assert_eq!(before["socket"], Value::Null, "no socket before connect");
    assert_eq!(source_of(&before, "cheer")["status"], "not_connected");
    app.connect_streamer(&fake, "teststreamer").await;
    let session = subscribed_session(&fake, "teststreamer", None).await;

    let subs = fake.ws_subscriptions(&session);
    for s in &subs {
        assert_eq!(s["transport"]["method"], "websocket");
        assert_eq!(s["transport"]["session_id"], session.as_str());
    }
    let of = |t: &str| subs.iter().find(|s| s["type"] == t).unwrap().clone();
    assert_eq!(
        of("channel.follow")["condition"],
        json!({"broadcaster_user_id": "1001", "moderator_user_id": "1001"})
    );
    assert_eq!(
        of("channel.raid")["condition"],
        json!({"to_broadcaster_user_id": "1001"})
    );
    assert_eq!(of("channel.hype_train.begin")["version"], "2");
    assert!(
        fake.subscriptions()
            .iter()
            .all(|s| s["transport"]["method"] == "websocket"),
        "no webhook subscription in this mode"
    );

    let view = app.ws_sources_connected("teststreamer").await;
    assert_eq!(view["transport"], "websocket");
    assert_eq!(view["socket"]["state"], "connected", "{view}");
    assert_eq!(view["socket"]["session_id"], session.as_str());
    // The dashboard's socket line: connected, reconnects, last message age.
    assert_eq!(view["socket"]["connected"], true, "{view}");
    assert_eq!(view["socket"]["reconnects"], 0, "{view}");
    assert!(
        view["socket"]["last_message_age_s"]
            .as_f64()
            .is_some_and(|age| age >= 0.0),
        "{view}"
    );
    for s in view["sources"].as_array().unwrap() {
        assert_eq!(s["status"], "enabled", "{s}");
    }
    let ready = app.readyz_body().await;
    assert_eq!(ready["status"], "ready");
    let sockets = ready["eventsub"]["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "{ready}");
    assert_eq!(sockets[0]["channel"], "teststreamer");
    assert_eq!(sockets[0]["connected"], true);
    assert_eq!(sockets[0]["subscriptions"], SOCKET_TYPES);
    assert!(
        !ready.to_string().contains(&session),
        "no session id on /readyz"
    );
    assert_eq!(
        app.metric(
            "eventsub_bridge_eventsub_ws_connected",
            "channel=\"teststreamer\""
        )
        .await,
        1.0
    );
    assert!(app.get_text("/metrics").await.contains(
        "eventsub_bridge_eventsub_ws_last_message_age_seconds{channel=\"teststreamer\"}"
    ));
    // Past Twitch's unused-connection window the socket is still there.
    let quiet = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < quiet {
        assert_eq!(
            fake.ws_session_of("teststreamer").as_deref(),
            Some(session.as_str())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fake.ws_max_open("teststreamer"), 1);
    assert_client_behaved(&fake);
}

#[actix_web::test]
async fn notifications_reach_viewers_once_and_share_dedupe_with_webhooks() {
    let (app, fake) = start(|_| {}).await;
    app.connect_streamer(&fake, "teststreamer").await;
    subscribed_session(&fake, "teststreamer", None).await;
    let mut ws = viewer(&app, "teststreamer").await;

    let id = fake
        .ws_notify(
            "channel.follow",
            follow_event("teststreamer", "1001", "follower1"),
        )
        .unwrap();
    let ev = expect_text(&mut ws, "follower1 followed teststreamer").await;
    assert_eq!(ev["message"]["source"], "eventsub");
    assert_eq!(ev["message"]["version"], "2");
    // Twitch sends it again: nothing new.
    assert!(fake.ws_resend(&id));
    // The same message id over the webhook: a duplicate too (SPEC §10).
    let body = notification_body(
        "channel.follow",
        "2",
        json!({"broadcaster_user_id": "1001"}),
        follow_event("teststreamer", "1001", "follower1"),
    );
    let webhook = SignedWebhook::at(
        "notification",
        "channel.follow",
        "2",
        body,
        &id,
        &eventsub_bridge::eventsub::signature::timestamp_now(),
    );
    assert_eq!(app.send_webhook(&webhook).await.status(), 204);
    assert!(ws.stays_quiet(Duration::from_millis(500)).await);
    assert_eq!(app.history("teststreamer", "").await.len(), 1);
    eventually("the resend counted as a duplicate", || {
        let app = &app;
        async move {
            app.metric("eventsub_bridge_eventsub_ws_messages_total", "duplicate")
                .await
                == 1.0
        }
    })
    .await;
    assert_eq!(
        app.metric("eventsub_bridge_eventsub_ws_messages_total", "accepted")
            .await,
        1.0
    );

    // A raid to the streamer arrives too (to_broadcaster_user_id).
    fake.ws_notify(
        "channel.raid",
        json!({"from_broadcaster_user_id": "1002", "from_broadcaster_user_login": "otherstreamer",
               "from_broadcaster_user_name": "OtherStreamer", "to_broadcaster_user_id": "1001",
               "to_broadcaster_user_login": "teststreamer", "to_broadcaster_user_name": "TestStreamer",
               "viewers": 9}),
    )
    .unwrap();
    let ev = ws.expect_op("event").await;
    assert_eq!(ev["message"]["type"], "channel.raid");
    assert_client_behaved(&fake);
}

#[actix_web::test]
async fn a_silent_socket_is_replaced_and_subscribed_again() {
    let (app, fake) = start(|_| {}).await;
    app.connect_streamer(&fake, "teststreamer").await;
    let first = subscribed_session(&fake, "teststreamer", None).await;
    let mut ws = viewer(&app, "teststreamer").await;
    let creates = fake.calls(Endpoint::CreateSub);

    assert!(fake.ws_silence(&first));
    let second = subscribed_session(&fake, "teststreamer", Some(&first)).await;
    assert_ne!(first, second);
    assert_eq!(fake.calls(Endpoint::CreateSub), creates + SOCKET_TYPES);
    let closed = fake
        .ws_closes()
        .into_iter()
        .find(|c| c.session == first)
        .expect("the silent socket was closed");
    assert!(!closed.by_server, "the bridge closed it: {closed:?}");
    assert_eq!(
        app.metric(
            "eventsub_bridge_eventsub_ws_reconnects_total",
            "reason=\"keepalive_timeout\""
        )
        .await,
        1.0
    );
    fake.ws_notify("channel.cheer", cheer_event(100)).unwrap();
    expect_text(&mut ws, &cheer_text(100)).await;
    assert_client_behaved(&fake);
}

fn cheer_event(bits: u64) -> Value {
    json!({"is_anonymous": false, "user_id": "2042", "user_login": "viewer42", "user_name": "Viewer42",
           "broadcaster_user_id": "1001", "broadcaster_user_login": "teststreamer",
           "broadcaster_user_name": "TestStreamer", "message": "", "bits": bits})
}

fn cheer_text(bits: u64) -> String {
    let unit = if bits == 1 { "bit" } else { "bits" };
    format!("Viewer42 cheered {bits} {unit} to TestStreamer")
}

#[actix_web::test]
async fn session_reconnect_loses_and_repeats_nothing() {
    let (app, fake) = start(|_| {}).await;
    app.connect_streamer(&fake, "teststreamer").await;
    let old = subscribed_session(&fake, "teststreamer", None).await;
    let mut ws = viewer(&app, "teststreamer").await;
    let creates = fake.calls(Endpoint::CreateSub);

    // One just before the switch, on the old socket…
    let a = fake.ws_notify("channel.cheer", cheer_event(1)).unwrap();
    assert!(fake.ws_reconnect(&old));
    // …one while the bridge is connecting to the new socket: it still goes
    // to the old one, which the bridge must keep reading (not resent)…
    fake.ws_notify("channel.cheer", cheer_event(2)).unwrap();
    eventually("the subscriptions moved to the new session", || {
        let moved = fake.ws_session_of("teststreamer").is_some_and(|s| s != old);
        async move { moved }
    })
    .await;
    // …and one just after, on the new socket; Twitch resends the first.
    fake.ws_notify("channel.cheer", cheer_event(3)).unwrap();
    assert!(fake.ws_resend(&a));
    for bits in [1, 2, 3] {
        expect_text(&mut ws, &cheer_text(bits)).await;
    }
    assert!(ws.stays_quiet(Duration::from_millis(500)).await);
    assert_eq!(
        fake.calls(Endpoint::CreateSub),
        creates,
        "subscriptions carried over"
    );
    eventually("the old socket closed by the bridge", || {
        let closed = fake
            .ws_closes()
            .iter()
            .any(|c| c.session == old && !c.by_server && c.code == Some(1000));
        async move { closed }
    })
    .await;
    assert_eq!(fake.ws_server_closes(4004), 0);
    assert!(
        fake.ws_max_open("teststreamer") <= 2,
        "at most two sockets at once"
    );
    let view = app.ws_sources_connected("teststreamer").await;
    assert_eq!(view["socket"]["state"], "connected");
    assert_ne!(view["socket"]["session_id"], old.as_str());
    assert_client_behaved(&fake);
}

#[actix_web::test]
async fn every_close_code_is_followed_by_a_new_subscribed_socket() {
    let (app, fake) = start(|_| {}).await;
    app.connect_streamer(&fake, "teststreamer").await;
    let mut session = subscribed_session(&fake, "teststreamer", None).await;
    for code in 4000..=4007u16 {
        assert!(fake.ws_close(&session, code));
        session = subscribed_session(&fake, "teststreamer", Some(&session)).await;
        assert_eq!(
            app.metric(
                "eventsub_bridge_eventsub_ws_reconnects_total",
                &format!("reason=\"close_{code}\"")
            )
            .await,
            1.0,
            "close {code} counted"
        );
    }
    let view = app.ws_sources("teststreamer").await;
    assert_eq!(view["socket"]["reconnects"], 8);
    assert!(
        view["socket"]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("close_4007"),
        "{view}"
    );
    let mut ws = viewer(&app, "teststreamer").await;
    fake.ws_notify("channel.cheer", cheer_event(5)).unwrap();
    expect_text(&mut ws, &cheer_text(5)).await;
    // The fake's 4001-4003 closes above were its own doing, on request.
    assert_eq!(fake.ws_closes().iter().filter(|c| c.by_server).count(), 8);
}

#[actix_web::test]
async fn a_socket_left_unused_is_closed_by_twitch_and_subscribed_on_the_next() {
    let (app, fake) = start(|_| {}).await;
    fake.set_ws_timings(1, Duration::from_millis(800), Duration::from_millis(200));
    // Helix refuses every subscription of the first socket.
    fake.fail_next(Endpoint::CreateSub, Failure::Status(400), SOCKET_TYPES);
    app.connect_streamer(&fake, "teststreamer").await;
    let session = subscribed_session(&fake, "teststreamer", None).await;
    assert_eq!(fake.ws_server_closes(4003), 1, "{:?}", fake.ws_closes());
    let view = app.ws_sources_connected("teststreamer").await;
    assert_eq!(view["socket"]["state"], "connected");
    assert!(
        view["socket"]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("close_4003"),
        "{view}"
    );
    assert_eq!(fake.ws_subscriptions(&session).len(), SOCKET_TYPES);
    for code in [4001, 4002] {
        assert_eq!(fake.ws_server_closes(code), 0);
    }
}

#[actix_web::test]
async fn an_expired_token_is_refreshed_when_helix_answers_401() {
    let (app, fake) = start(|_| {}).await;
    app.connect_streamer(&fake, "teststreamer").await;
    let first = subscribed_session(&fake, "teststreamer", None).await;
    let refreshes = |fake: &FakeTwitch| {
        fake.token_forms()
            .iter()
            .filter(|f| f.get("grant_type").map(String::as_str) == Some("refresh_token"))
            .count()
    };
    let before = refreshes(&fake);
    fake.expire_user_tokens("teststreamer");
    assert!(fake.ws_close(&first, 4000));
    subscribed_session(&fake, "teststreamer", Some(&first)).await;
    assert_eq!(refreshes(&fake), before + 1, "one refresh for the socket");
    let view = app.ws_sources("teststreamer").await;
    assert_eq!(view["grant"]["status"], "connected");
    assert_client_behaved(&fake);
}

#[actix_web::test]
async fn a_revocation_on_the_socket_is_shown_and_authorization_revoked_stops_it() {
    let (app, fake) = start(|_| {}).await;
    app.connect_streamer(&fake, "teststreamer").await;
    let session = subscribed_session(&fake, "teststreamer", None).await;

    // A revocation that leaves the grant alone: shown on that kind only.
    fake.ws_revoke(
        "teststreamer",
        "channel.hype_train.begin",
        "version_removed",
    )
    .unwrap();
    eventually("the hype train shows as revoked", || {
        let app = &app;
        async move {
            let view = app.ws_sources("teststreamer").await;
            view["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["kind"] == "hype_train" && s["status"] == "version_removed")
        }
    })
    .await;
    assert_eq!(
        fake.ws_session_of("teststreamer").as_deref(),
        Some(session.as_str())
    );

    // The streamer withdrew the grant: revoked, socket closed for good.
    fake.ws_revoke("teststreamer", "channel.follow", "authorization_revoked")
        .unwrap();
    eventually("the grant revoked and the socket closed", || {
        let app = &app;
        let closed = fake
            .ws_closes()
            .iter()
            .any(|c| c.session == session && !c.by_server);
        async move {
            closed && app.ws_sources("teststreamer").await["grant"]["status"] == "revoked"
        }
    })
    .await;
    let view = app.ws_sources("teststreamer").await;
    assert_eq!(view["grant"]["revoked_reason"], "authorization_revoked");
    assert_ne!(view["socket"]["connected"], true, "{view}");
    // Nothing subscribed while the grant is revoked: the sources say why.
    assert_eq!(
        source_of(&view, "cheer")["status"],
        "grant_revoked",
        "{view}"
    );
    let history = app.history("teststreamer", "").await;
    assert!(
        history
            .iter()
            .any(|m| m["type"] == "subscription.revoked" && m["source"] == "system"),
        "{history:?}"
    );
    // No new socket while the grant is revoked.
    let sessions = fake.ws_sessions().len();
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        assert_eq!(fake.ws_sessions().len(), sessions);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.readyz_body().await["eventsub"]["sockets"],
        json!([]),
        "no socket held"
    );
    assert_eq!(
        app.metric(
            "eventsub_bridge_eventsub_ws_connected",
            "channel=\"teststreamer\""
        )
        .await,
        0.0
    );

    // Connecting again starts a new socket.
    app.connect_streamer(&fake, "teststreamer").await;
    subscribed_session(&fake, "teststreamer", Some(&session)).await;
    assert_client_behaved(&fake);
}

#[actix_web::test]
async fn viewers_of_a_streamer_who_has_not_connected_are_told_and_nothing_is_subscribed() {
    let (app, fake) = start(|s| {
        s.limits.ensure_retry_after = Duration::from_secs(60);
    })
    .await;
    app.twitch_login(&fake, "viewer42").await;
    for _ in 0..2 {
        let r = app
            .client
            .get(app.url("/watch/otherstreamer"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    eventually("the notice in the channel", || {
        let app = &app;
        async move { !app.history("otherstreamer", "").await.is_empty() }
    })
    .await;
    let history = app.history("otherstreamer", "").await;
    assert_eq!(history.len(), 1, "once per retry window: {history:?}");
    assert_eq!(history[0]["type"], "subscription.error");
    assert_eq!(history[0]["source"], "system");
    assert_eq!(history[0]["data"]["transport"], "websocket");
    assert!(
        history[0]["text"]
            .as_str()
            .unwrap()
            .contains("webhook transport"),
        "{}",
        history[0]["text"]
    );
    assert_eq!(
        fake.calls(Endpoint::CreateSub),
        0,
        "no webhook subscription"
    );
    assert!(fake.ws_sessions().is_empty());
}

#[actix_web::test]
async fn a_streamer_who_connected_gets_no_notice() {
    let (app, fake) = start(|_| {}).await;
    app.connect_streamer(&fake, "teststreamer").await;
    subscribed_session(&fake, "teststreamer", None).await;
    let r = app
        .client
        .get(app.url("/watch/teststreamer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut ws = viewer(&app, "teststreamer").await;
    fake.ws_notify("channel.cheer", cheer_event(7)).unwrap();
    // The cheer comes first and alone: no notice was published before it.
    let ev = expect_text(&mut ws, &cheer_text(7)).await;
    assert_eq!(ev["message"]["source"], "eventsub");
    let history = app.history("teststreamer", "").await;
    assert!(
        history.iter().all(|m| m["type"] != "subscription.error"),
        "{history:?}"
    );
}

/// The checks above mean something only if the fake enforces Twitch's
/// rules: a client that talks gets 4001, one that ignores pings 4002, one
/// that subscribes nothing 4003.
#[actix_web::test]
async fn the_fake_enforces_twitchs_close_rules() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let fake = FakeTwitch::start().await;
    fake.set_ws_timings(10, Duration::from_millis(600), Duration::from_millis(100));
    let url = fake.start_eventsub_ws().await;
    let close_code = |msg: Option<Result<Message, _>>| match msg {
        Some(Ok(Message::Close(Some(f)))) => Some(u16::from(f.code)),
        _ => None,
    };

    // Talks: 4001.
    let (mut talker, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let welcome = talker.next().await.unwrap().unwrap();
    assert!(welcome.to_text().unwrap().contains("session_welcome"));
    talker.send(Message::text("{\"hello\":1}")).await.unwrap();
    let code = loop {
        match talker.next().await {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => break close_code(other),
        }
    };
    assert_eq!(code, Some(4001));

    // Never reads (so never pongs): 4002.
    let (_deaf, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    eventually("4002 for a client that ignores pings", || {
        let n = fake.ws_server_closes(4002);
        async move { n == 1 }
    })
    .await;

    // Reads and pongs, but subscribes nothing: 4003.
    let (mut idle, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let code = loop {
        match idle.next().await {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => break close_code(other),
        }
    };
    assert_eq!(code, Some(4003));
    assert_eq!(fake.ws_server_closes(4001), 1);
}
