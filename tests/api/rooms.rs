//! SPEC §9 in memory mode: `/websocket?room=`, every frame type, the admin
//! rules, signing, exact decimals, one vote per viewer, ephemeral votes,
//! presence, coalescing, and bad input (an error frame, the connection
//! still open, nothing changed).

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::ws_client::refused_status;
use crate::helpers::{RoomClient, TestApp, WsClient, spawn_app};

const ROOM: &str = "teststreamer";
const SIGNING_KEY: &str = "room-signing-key-for-tests";

async fn app() -> TestApp {
    spawn_app(|s| s.room_signing_key = Some(SecretString::from(SIGNING_KEY))).await
}

fn key_for(room: &str, ts: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("{room}{ts}{SIGNING_KEY}").as_bytes());
    hex::encode(h.finalize())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn refused(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Option<u16> {
    match WsClient::connect_path(&app.base, path, cookie, origin).await {
        Ok(_) => None,
        Err(e) => refused_status(&e),
    }
}

#[actix_web::test]
async fn the_room_socket_needs_a_session_an_allowed_origin_and_a_valid_name() {
    let app = app().await;
    assert_eq!(
        refused(&app, "/websocket?room=teststreamer", None, None).await,
        Some(401)
    );
    let cookie = app.login_cookie("viewer1").await;
    assert_eq!(
        refused(
            &app,
            "/websocket?room=teststreamer",
            Some(&cookie),
            Some("https://evil.example")
        )
        .await,
        Some(403)
    );
    for bad in [
        "/websocket?room=not%20valid",
        "/websocket?room=",
        "/websocket",
    ] {
        assert_eq!(
            refused(&app, bad, Some(&cookie), None).await,
            Some(400),
            "{bad}"
        );
    }
    // The name is lower-cased; other query parameters (a Pact client's
    // `session`) are ignored.
    let mut c = RoomClient::open(&app.base, "TestStreamer&session=abc", &cookie).await;
    assert_eq!(c.config, json!(""));
    c.assert_open().await;
}

#[actix_web::test]
async fn connect_sends_config_then_profile_and_the_streamer_is_admin() {
    let app = app().await;
    let viewer = app.login_cookie("viewer1").await;
    let streamer = app.login_cookie(ROOM).await;
    let v1 = app.room(ROOM, &viewer).await;
    let v2 = app.room(ROOM, &viewer).await;
    let s = app.room(ROOM, &streamer).await;
    assert_eq!(v1.profile["role"], "user");
    assert_eq!(v1.profile["login"], "viewer1");
    assert_eq!(v1.profile["display_name"], "viewer1");
    assert_eq!(v1.profile["properties"], json!({}));
    let suffix = v1.profile["suffix"].as_u64().unwrap();
    assert!(suffix < 10_000);
    assert_eq!(v1.profile["id"], v2.profile["id"], "one id per viewer");
    assert_eq!(v1.profile["suffix"], v2.profile["suffix"]);
    assert_ne!(v1.profile["id"], s.profile["id"]);
    assert_eq!(s.profile["role"], "admin", "the streamer of the channel");
    // Another room: another id.
    let other = app.room("otherroom", &viewer).await;
    assert_ne!(other.profile["id"], v1.profile["id"]);
}

#[actix_web::test]
async fn login_merges_properties_and_private_ones_stay_with_the_owner() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let b = app.login_cookie("viewer2").await;
    let mut tab1 = app.room(ROOM, &a).await;
    let mut tab2 = app.room(ROOM, &a).await;
    let mut other = app.room(ROOM, &b).await;
    other.subscribe("chat").await;

    tab1.send(
        "login",
        json!({"name": "Ann", "color": "red", "_email": "a@x"}),
    )
    .await;
    let p = tab1.next_of("profile").await;
    assert_eq!(
        p["properties"],
        json!({"name": "Ann", "color": "red", "_email": "a@x"})
    );
    // Merge, and null removes.
    tab1.send("login", json!({"color": null, "level": 3})).await;
    let p = tab1.next_of("profile").await;
    assert_eq!(
        p["properties"],
        json!({"name": "Ann", "level": 3, "_email": "a@x"})
    );
    // The other tab shares the profile.
    tab2.send("profile", Value::Null).await;
    let p = tab2.next_of("profile").await;
    assert_eq!(p["properties"]["name"], "Ann");

    tab2.send("chat", json!("hello")).await;
    let chat = other.next_of("chat").await;
    assert_eq!(chat["message"], "hello");
    assert_eq!(
        chat["user"]["properties"],
        json!({"name": "Ann", "level": 3}),
        "public only"
    );
    assert_eq!(chat["user"]["login"], "viewer1");
    assert_eq!(chat["user"]["id"], tab1.profile["id"]);
    assert!(chat["user"].get("role").is_none());
}

#[actix_web::test]
async fn chat_reaches_every_subscriber_including_the_sender_and_nobody_else() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let b = app.login_cookie("viewer2").await;
    let mut sender = app.room(ROOM, &a).await;
    let mut listener = app.room(ROOM, &b).await;
    let mut deaf = app.room(ROOM, &b).await;
    let mut elsewhere = app.room("otherroom", &b).await;
    sender.subscribe("chat").await;
    listener.subscribe("chat").await;
    elsewhere.subscribe("chat").await;
    sender.send("chat", json!("hi all")).await;
    assert_eq!(sender.next_of("chat").await["message"], "hi all");
    assert_eq!(listener.next_of("chat").await["message"], "hi all");
    assert!(deaf.stays_quiet(Duration::from_millis(300)).await);
    assert!(elsewhere.stays_quiet(Duration::from_millis(100)).await);
    // Unsubscribed: no more chat.
    listener.send("unsubscribe", json!("chat")).await;
    listener.assert_open().await;
    sender.send("chat", json!("again")).await;
    assert_eq!(sender.next_of("chat").await["message"], "again");
    assert!(listener.stays_quiet(Duration::from_millis(300)).await);
}

#[actix_web::test]
async fn one_vote_per_viewer_across_two_sockets_and_voting_again_moves_it() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let b = app.login_cookie("viewer2").await;
    let mut tab1 = app.room(ROOM, &a).await;
    let mut tab2 = app.room(ROOM, &a).await;
    let mut other = app.room(ROOM, &b).await;
    let mut all_polls = app.room(ROOM, &b).await;
    tab1.subscribe("poll:fav").await;
    all_polls.subscribe("poll").await;
    tab1.assert_open().await;
    all_polls.assert_open().await;

    tab1.send("poll", json!({"id": "fav", "answer": "Red"}))
        .await;
    assert_eq!(
        tab1.next_of("poll").await,
        json!({"id": "fav", "stats": {"Red": 1}})
    );
    tab2.send("poll", json!({"id": "fav", "answer": "Red"}))
        .await;
    other
        .send("poll", json!({"id": "fav", "answer": "Green"}))
        .await;
    let last = tab1
        .wait_for("Green", |v| v["data"]["stats"]["Green"] == 1)
        .await;
    assert_eq!(
        last["data"]["stats"],
        json!({"Red": 1, "Green": 1}),
        "one vote for viewer1"
    );
    tab2.send("poll", json!({"id": "fav", "answer": "Green"}))
        .await;
    let moved = tab1
        .wait_for("the moved vote", |v| v["data"]["stats"]["Green"] == 2)
        .await;
    assert_eq!(moved["data"]["stats"], json!({"Green": 2}));
    let seen = all_polls
        .wait_for("the same tally", |v| {
            v["data"]["stats"] == json!({"Green": 2})
        })
        .await;
    assert_eq!(seen["type"], "poll");
    // A late subscriber gets the tally at once.
    let mut late = app.room(ROOM, &b).await;
    late.subscribe("poll:fav").await;
    assert_eq!(
        late.next_of("poll").await,
        json!({"id": "fav", "stats": {"Green": 2}})
    );
    // Unknown polls send nothing on subscribe.
    late.subscribe("poll:nothing").await;
    late.assert_open().await;
}

#[actix_web::test]
async fn ephemeral_votes_leave_with_the_viewers_last_connection() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let b = app.login_cookie("viewer2").await;
    let mut watcher = app.room(ROOM, &b).await;
    watcher.subscribe("ephemeralPoll:map").await;
    watcher.assert_open().await;
    let mut tab1 = app.room(ROOM, &a).await;
    let tab2 = app.room(ROOM, &a).await;
    tab1.send("ephemeralPoll", json!({"id": "map", "answer": "here"}))
        .await;
    watcher
        .wait_for("the vote", |v| v["data"]["stats"] == json!({"here": 1}))
        .await;
    // Long polls are separate: a `poll` with the same id is another poll.
    tab1.send("poll", json!({"id": "map", "answer": "there"}))
        .await;
    drop(tab1);
    assert!(
        watcher.stays_quiet(Duration::from_millis(300)).await,
        "one tab is still open: the vote stays"
    );
    drop(tab2);
    let gone = watcher
        .wait_for("the vote removed", |v| v["type"] == "ephemeralPoll")
        .await;
    assert_eq!(gone["data"], json!({"id": "map", "stats": {}}));
}

#[actix_web::test]
async fn counters_are_exact_decimals_sent_as_strings() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let mut c = app.room(ROOM, &a).await;
    c.subscribe("counter").await;
    c.assert_open().await;
    c.send("counter", json!({"id": "sum", "value": 0.1})).await;
    assert_eq!(
        c.next_of("counter").await,
        json!({"id": "sum", "value": "0.1"})
    );
    c.send("counter", json!({"id": "sum", "value": "0.2"}))
        .await;
    c.wait_for("0.3", |v| v["data"]["value"] == "0.3").await;

    c.send("counter", json!({"id": "order_subtotals", "value": 17.75}))
        .await;
    c.send("counter", json!({"id": "order_subtotals", "value": -15.14}))
        .await;
    c.wait_for("2.61", |v| {
        v["data"] == json!({"id": "order_subtotals", "value": "2.61"})
    })
    .await;
    // No data at all adds 1 to `default`, as the Pact server does.
    c.send_raw(r#"{"type":"counter"}"#).await;
    c.wait_for("default", |v| {
        v["data"] == json!({"id": "default", "value": "1"})
    })
    .await;
    // A late subscriber to one counter gets its value at once.
    let mut late = app.room(ROOM, &a).await;
    late.subscribe("counter:sum").await;
    assert_eq!(
        late.next_of("counter").await,
        json!({"id": "sum", "value": "0.3"})
    );
}

#[actix_web::test]
async fn presence_counts_distinct_viewers_and_follows_joins_and_leaves() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let b = app.login_cookie("viewer2").await;
    let mut watcher = app.room(ROOM, &a).await;
    watcher.subscribe("presence").await;
    assert_eq!(watcher.next_of("presence").await, json!({"count": 1}));
    let second_tab = app.room(ROOM, &a).await;
    let other = app.room(ROOM, &b).await;
    watcher
        .wait_for("2 viewers", |v| v["data"]["count"] == 2)
        .await;
    drop(second_tab);
    drop(other);
    watcher
        .wait_for("back to 1", |v| v["data"]["count"] == 1)
        .await;
    assert!(watcher.stays_quiet(Duration::from_millis(300)).await);
}

#[actix_web::test]
async fn config_is_for_admins_and_reaches_everyone_and_every_new_connection() {
    let app = app().await;
    let viewer = app.login_cookie("viewer1").await;
    let streamer = app.login_cookie(ROOM).await;
    let mut v = app.room(ROOM, &viewer).await;
    let mut s = app.room(ROOM, &streamer).await;
    v.send("config", json!("{\"theme\":\"dark\"}")).await;
    v.expect_error("forbidden").await;
    v.assert_open().await;
    assert!(
        s.stays_quiet(Duration::from_millis(200)).await,
        "nothing changed"
    );

    s.send("config", json!("{\"theme\":\"light\"}")).await;
    assert_eq!(v.next_of("config").await, json!("{\"theme\":\"light\"}"));
    assert_eq!(s.next_of("config").await, json!("{\"theme\":\"light\"}"));
    let late = app.room(ROOM, &viewer).await;
    assert_eq!(late.config, json!("{\"theme\":\"light\"}"));
}

#[actix_web::test]
async fn broadcasts_reach_everyone_or_only_subscribers_of_to() {
    let app = app().await;
    let viewer = app.login_cookie("viewer1").await;
    let streamer = app.login_cookie(ROOM).await;
    let mut weather = app.room(ROOM, &viewer).await;
    let mut plain = app.room(ROOM, &viewer).await;
    let mut s = app.room(ROOM, &streamer).await;
    weather.subscribe("weather").await;
    weather.assert_open().await;

    s.send(
        "broadcast",
        json!({"type": "whatsup", "data": [1, 2, "abc"]}),
    )
    .await;
    for c in [&mut weather, &mut plain, &mut s] {
        assert_eq!(
            c.next().await,
            json!({"type": "whatsup", "data": [1, 2, "abc"]})
        );
    }
    s.send(
        "broadcast",
        json!({"to": "weather", "type": "weather_forecast", "data": "Cloudy with a chance of meatballs"}),
    )
    .await;
    assert_eq!(
        weather.next().await,
        json!({"type": "weather_forecast", "data": "Cloudy with a chance of meatballs"})
    );
    assert!(plain.stays_quiet(Duration::from_millis(300)).await);
    // Not for viewers.
    plain
        .send("broadcast", json!({"type": "fake", "data": 1}))
        .await;
    plain.expect_error("forbidden").await;
    assert!(weather.stays_quiet(Duration::from_millis(200)).await);
}

#[actix_web::test]
async fn authenticate_makes_an_admin_only_with_a_fresh_right_key() {
    let app = app().await;
    let viewer = app.login_cookie("viewer1").await;
    // The room name is signed as written in the URL.
    let mut c = app.room("TestStreamer", &viewer).await;
    let ts = now_ms().to_string();
    // Wrong key, signed for the lower-cased name, and an old timestamp.
    c.send(
        "authenticate",
        json!({"ts": ts, "key": key_for("TestStreamer", "1")}),
    )
    .await;
    c.expect_error("unauthorized").await;
    c.send(
        "authenticate",
        json!({"ts": ts, "key": key_for("teststreamer", &ts)}),
    )
    .await;
    c.expect_error("unauthorized").await;
    let old = (now_ms() - 6 * 60 * 1000).to_string();
    c.send(
        "authenticate",
        json!({"ts": old, "key": key_for("TestStreamer", &old)}),
    )
    .await;
    c.expect_error("unauthorized").await;
    c.send("config", json!("x")).await;
    c.expect_error("forbidden").await;
    // A number `ts` and an upper-case key work too.
    let ts = now_ms();
    let key = key_for("TestStreamer", &ts.to_string()).to_uppercase();
    c.send("authenticate", json!({"ts": ts, "key": key})).await;
    let p = c.next_of("profile").await;
    assert_eq!(p["role"], "admin");
    c.send("config", json!("now admin")).await;
    assert_eq!(c.next_of("config").await, json!("now admin"));
}

#[actix_web::test]
async fn without_a_signing_key_nobody_authenticates() {
    let app = spawn_app(|_| {}).await;
    let viewer = app.login_cookie("viewer1").await;
    let mut c = app.room(ROOM, &viewer).await;
    let ts = now_ms().to_string();
    c.send("authenticate", json!({"ts": ts, "key": key_for(ROOM, &ts)}))
        .await;
    c.expect_error("unauthorized").await;
    c.assert_open().await;
}

#[actix_web::test]
async fn relays_bring_viewers_frames_to_the_admin_with_private_properties() {
    let app = app().await;
    let viewer = app.login_cookie("viewer1").await;
    let streamer = app.login_cookie(ROOM).await;
    let mut v = app.room(ROOM, &viewer).await;
    let mut s = app.room(ROOM, &streamer).await;
    v.send("login", json!({"name": "Ann", "_secret": "s3"}))
        .await;
    v.next_of("profile").await;

    v.send("report", json!({"user": 12})).await;
    v.expect_error("unknown_type").await;
    v.send("relay", json!("report")).await;
    v.expect_error("forbidden").await;

    s.send("relay", json!("report")).await;
    s.assert_open().await;
    v.send("report", json!({"user": 12})).await;
    let relayed = s.next_of("relay:report").await;
    assert_eq!(relayed["type"], "report");
    assert_eq!(relayed["data"], json!({"user": 12}));
    assert_eq!(
        relayed["user"]["properties"],
        json!({"name": "Ann", "_secret": "s3"})
    );
    assert_eq!(relayed["user"]["id"], v.profile["id"]);
    assert!(
        v.stays_quiet(Duration::from_millis(200)).await,
        "no error for a relayed type"
    );
    // Known types are relayed too (and still handled).
    s.send("relay", json!("chat")).await;
    s.assert_open().await;
    v.send("chat", json!("psst")).await;
    let relayed = s.next_of("relay:chat").await;
    assert_eq!(relayed["data"], "psst");

    s.send("deleteRelay", json!("report")).await;
    s.assert_open().await;
    v.send("report", json!({"user": 13})).await;
    v.expect_error("unknown_type").await;
    // Relays end with the admin's connection.
    drop(s);
    let mut probe = app.room(ROOM, &viewer).await;
    probe.assert_open().await;
    v.send("chat", json!("after")).await;
    v.assert_open().await;
}

#[actix_web::test]
async fn bad_frames_get_an_error_keep_the_connection_and_change_nothing() {
    // More frames than the rate limit allows a second.
    let app = spawn_app(|s| {
        s.room_signing_key = Some(SecretString::from(SIGNING_KEY));
        s.limits.rate_limit_frames = 1000;
    })
    .await;
    let a = app.login_cookie("viewer1").await;
    let mut c = app.room(ROOM, &a).await;
    let mut watcher = app.room(ROOM, &a).await;
    watcher.subscribe("chat").await;
    watcher.subscribe("counter").await;
    watcher.subscribe("poll").await;
    watcher.assert_open().await;
    c.send("counter", json!({"id": "c", "value": "5"})).await;
    watcher.next_of("counter").await;
    c.send("login", json!({"name": "Ann"})).await;
    c.next_of("profile").await;

    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_json"),
        ("[1,2,3]".into(), "invalid"),
        (json!({"data": "no type"}).to_string(), "invalid"),
        (
            json!({"type": "dance", "data": 1}).to_string(),
            "unknown_type",
        ),
        (json!({"type": "chat", "data": ""}).to_string(), "invalid"),
        (
            json!({"type": "chat", "data": "x".repeat(501)}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "chat", "data": {"text": "hi"}}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "counter", "data": {"id": "c", "value": "abc"}}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "counter", "data": {"id": "c", "value": "NaN"}}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "counter", "data": {"id": "c", "value": [1]}}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "counter", "data": {"id": "c", "value": "1e40"}}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "poll", "data": {"id": "p"}}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "poll", "data": "Red"}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "login", "data": {"big": "x".repeat(4096)}}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "login", "data": "Ann"}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "subscribe", "data": 5}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "config", "data": "x"}).to_string(),
            "forbidden",
        ),
        (
            json!({"type": "broadcast", "data": {"type": "x", "data": 1}}).to_string(),
            "forbidden",
        ),
        (
            json!({"type": "relay", "data": "x"}).to_string(),
            "forbidden",
        ),
        (
            json!({"type": "deleteRelay", "data": "x"}).to_string(),
            "forbidden",
        ),
        (
            json!({"type": "authenticate", "data": {"ts": now_ms(), "key": "00"}}).to_string(),
            "unauthorized",
        ),
        (
            json!({"type": "authenticate", "data": {"ts": "yesterday", "key": "00"}}).to_string(),
            "invalid",
        ),
    ];
    for (frame, code) in &cases {
        c.send_raw(frame).await;
        let e = c.next_of("error").await;
        assert_eq!(e["code"], *code, "{frame} → {e}");
    }
    c.assert_open().await;
    assert!(
        watcher.stays_quiet(Duration::from_millis(300)).await,
        "nothing reached the room"
    );
    // Nothing changed: the counter, the properties, the role.
    let mut late = app.room(ROOM, &a).await;
    late.subscribe("counter:c").await;
    assert_eq!(late.next_of("counter").await["value"], "5");
    c.send("profile", Value::Null).await;
    let p = c.next_of("profile").await;
    assert_eq!(p["properties"], json!({"name": "Ann"}));
    assert_eq!(p["role"], "user");
}

#[actix_web::test]
async fn past_the_rate_limit_frames_are_refused_with_rate_limited() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let mut c = app.room(ROOM, &a).await;
    for _ in 0..25 {
        c.send("ping", Value::Null).await;
    }
    c.wait_for("rate_limited", |v| {
        v["type"] == "error" && v["data"]["code"] == "rate_limited"
    })
    .await;
}

#[actix_web::test]
async fn a_close_frame_closes_normally() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let mut c = app.room(ROOM, &a).await;
    c.send("close", Value::Null).await;
    let code = c.ws.close_code(Duration::from_secs(5)).await;
    assert_eq!(code.map(u16::from), Some(1000));
}

/// Votes from many connections within a fraction of a second: the
/// subscriber gets at most about 10 stats frames a second, and the last
/// one is the final tally.
#[actix_web::test]
async fn coalescing_bounds_the_update_rate_and_never_loses_the_last_value() {
    let app = app().await;
    let watcher_cookie = app.login_cookie("watcher").await;
    let mut watcher = app.room(ROOM, &watcher_cookie).await;
    watcher.subscribe("poll:storm").await;
    watcher.subscribe("counter:storm").await;
    watcher.assert_open().await;
    let mut voters = Vec::new();
    for i in 0..30 {
        let cookie = app.login_cookie(&format!("voter{i}")).await;
        voters.push(app.room(ROOM, &cookie).await);
    }
    let started = std::time::Instant::now();
    for (i, v) in voters.iter_mut().enumerate() {
        let answer = if i % 3 == 0 { "a" } else { "b" };
        v.send("poll", json!({"id": "storm", "answer": answer}))
            .await;
        v.send("counter", json!({"id": "storm", "value": "0.01"}))
            .await;
    }
    let mut poll_frames = 0;
    let mut counter_frames = 0;
    let mut last_poll = Value::Null;
    let mut last_counter = Value::Null;
    while last_poll != json!({"a": 10, "b": 20}) || last_counter != json!("0.3") {
        let f = watcher.next().await;
        match f["type"].as_str() {
            Some("poll") => {
                poll_frames += 1;
                last_poll = f["data"]["stats"].clone();
            }
            Some("counter") => {
                counter_frames += 1;
                last_counter = f["data"]["value"].clone();
            }
            _ => panic!("unexpected {f}"),
        }
    }
    let elapsed = started.elapsed();
    // At most one per 100 ms per slot, plus the first.
    let bound = (elapsed.as_millis() / 100) as usize + 2;
    assert!(
        poll_frames <= bound,
        "{poll_frames} poll frames in {elapsed:?}"
    );
    assert!(
        counter_frames <= bound,
        "{counter_frames} counter frames in {elapsed:?}"
    );
    assert!(
        poll_frames < 30,
        "coalesced: {poll_frames} frames for 30 votes"
    );
    assert!(
        watcher.stays_quiet(Duration::from_millis(300)).await,
        "nothing after the last value"
    );
    assert!(app.metric("eventsub_bridge_room_coalesced_total", "").await > 0.0);
}

#[actix_web::test]
async fn room_metrics_count_rooms_members_and_frames() {
    let app = app().await;
    let a = app.login_cookie("viewer1").await;
    let mut c = app.room(ROOM, &a).await;
    let _d = app.room("otherroom", &a).await;
    c.subscribe("chat").await;
    c.send("chat", json!("hi")).await;
    c.next_of("chat").await;
    assert_eq!(app.metric("eventsub_bridge_rooms_open", "").await, 2.0);
    assert_eq!(app.metric("eventsub_bridge_room_members", "").await, 2.0);
    assert_eq!(
        app.metric("eventsub_bridge_room_frames_in_total", "type=\"chat\"")
            .await,
        1.0
    );
    assert_eq!(
        app.metric("eventsub_bridge_room_frames_out_total", "type=\"chat\"")
            .await,
        1.0
    );
    assert!(
        app.metric("eventsub_bridge_room_frames_out_total", "type=\"profile\"")
            .await
            >= 2.0
    );
    drop(c);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.metric("eventsub_bridge_rooms_open", "").await != 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room closed here"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.metric("eventsub_bridge_room_members", "").await, 1.0);
}

#[actix_web::test]
async fn the_room_page_is_for_the_streamer_and_the_watch_page_shows_the_room() {
    let app = app().await;
    let r = app
        .client
        .get(app.url("/rooms/teststreamer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "login first");
    app.login_as("viewer1").await;
    let r = app
        .client
        .get(app.url("/rooms/teststreamer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("/rooms/viewer1"),
        "{body}"
    );
    let r = app
        .client
        .get(app.url("/rooms/Not%20valid"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let watch = app.get_text("/watch/teststreamer").await;
    assert!(watch.contains(r#"data-room="teststreamer""#), "{watch}");
    assert!(watch.contains(r#"<script src="/static/room.js"></script>"#));
    assert!(watch.contains(r#"href="/static/rooms.css""#));

    app.login_as(ROOM).await;
    let dashboard = app.get_text("/dashboard").await;
    assert!(
        dashboard.contains(r#"href="/rooms/teststreamer""#),
        "the dashboard links to the room page"
    );
    let r = app
        .client
        .get(app.url("/rooms/TestStreamer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"data-room="teststreamer""#));
    assert!(page.contains(r#"<script src="/static/room.js"></script>"#));
    assert!(page.contains(r#"<script src="/static/room-admin.js"></script>"#));
    assert!(!page.contains("<script>"), "no inline scripts (CSP)");
    assert!(!page.contains("style="), "no inline styles (CSP)");
    for (path, kind) in [
        ("/static/room.js", "text/javascript"),
        ("/static/room-admin.js", "text/javascript"),
        ("/static/rooms.css", "text/css"),
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
    }
}
