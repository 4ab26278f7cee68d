//! SPEC §5 and §7.1–7.3: the /ws protocol, its limits and its closes.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::spawn_app;
use crate::helpers::ws_client::{WsClient, refused_status};

#[actix_web::test]
async fn without_a_session_the_upgrade_is_401() {
    let app = spawn_app(|_| {}).await;
    let err = WsClient::connect(&app.base, None, None)
        .await
        .err()
        .unwrap();
    assert_eq!(refused_status(&err), Some(401));
}

#[actix_web::test]
async fn a_foreign_origin_is_403_and_public_urls_origin_is_accepted() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer42").await;
    let cookie = app.cookie_header();
    let err = WsClient::connect(&app.base, cookie.as_deref(), Some("https://evil.example"))
        .await
        .err()
        .unwrap();
    assert_eq!(refused_status(&err), Some(403));
    let mut ok = WsClient::connect(&app.base, cookie.as_deref(), Some("http://localhost:8080"))
        .await
        .unwrap();
    assert_eq!(ok.next_json().await["op"], "welcome");
}

#[actix_web::test]
async fn welcome_names_the_user_and_subscribe_delivers_live_events() {
    let app = spawn_app(|_| {}).await;
    app.login_as("Viewer42").await;
    let mut ws = app.ws_connect().await;
    let mut ws2 = app.ws_connect().await;
    let sub = ws.subscribe("TestStreamer", None).await;
    assert_eq!(
        sub,
        json!({"op":"subscribed","channel":"teststreamer","replayed":0,"gap":false})
    );
    ws2.subscribe("teststreamer", None).await;
    assert_eq!(
        app.post_follow("teststreamer", "follower1").await.status(),
        204
    );
    for w in [&mut ws, &mut ws2] {
        let ev = w.expect_op("event").await;
        assert_eq!(ev["message"]["type"], "channel.follow");
        assert_eq!(ev["message"]["channel"], "teststreamer");
        assert_eq!(ev["message"]["text"], "follower1 followed teststreamer");
    }
}

#[actix_web::test]
async fn since_replays_what_followed_then_goes_live_without_gap_or_duplicate() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let ids: Vec<String> = futures_util::future::join_all(
        (0..3).map(|i| app.publish("teststreamer", "n", json!({"i": i}))),
    )
    .await;
    let mut sorted = ids.clone();
    sorted.sort_by_key(|i| eventsub_bridge::domain::MessageId::parse(i).unwrap());
    let mut ws = app.ws_connect().await;
    let sub = ws.subscribe("teststreamer", Some(&sorted[0])).await;
    assert_eq!(sub["replayed"], 2);
    assert_eq!(sub["gap"], false);
    let a = ws.expect_op("event").await;
    let b = ws.expect_op("event").await;
    assert_eq!(a["message"]["id"], sorted[1].as_str());
    assert_eq!(b["message"]["id"], sorted[2].as_str());
    let live = app.publish("teststreamer", "n", json!({"i": 3})).await;
    assert_eq!(ws.expect_op("event").await["message"]["id"], live.as_str());
    assert!(ws.stays_quiet(Duration::from_millis(200)).await);
}

#[actix_web::test]
async fn replay_and_live_interleave_under_concurrent_publishing_without_loss_or_duplicate() {
    let app = spawn_app(|s| s.limits.rate_limit_frames = 1000).await;
    app.login_as("viewer").await;
    let first = app.publish("busy", "n", json!({})).await;
    let publisher = {
        let client = app.client.clone();
        let url = app.url("/api/publish");
        actix_web::rt::spawn(async move {
            for i in 0..60 {
                client
                    .post(&url)
                    .bearer_auth(crate::helpers::PUBLISH_TOKEN)
                    .json(&json!({"channel":"busy","type":"n","data":{"i":i}}))
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    let mut ws = app.ws_connect().await;
    let sub = ws.subscribe("busy", Some(&first)).await;
    let mut seen = Vec::new();
    publisher.await.unwrap();
    let total = 60usize;
    assert!(sub["replayed"].as_u64().unwrap() as usize <= total);
    while seen.len() < total {
        let ev = ws.expect_op("event").await;
        seen.push(ev["message"]["id"].as_str().unwrap().to_owned());
    }
    let parsed: Vec<_> = seen
        .iter()
        .map(|i| eventsub_bridge::domain::MessageId::parse(i).unwrap())
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate"
    );
    assert!(ws.stays_quiet(Duration::from_millis(200)).await);
}

#[actix_web::test]
async fn a_since_that_was_trimmed_reports_a_gap() {
    let app = spawn_app(|s| s.limits.history_len = std::num::NonZeroUsize::new(3).unwrap()).await;
    app.login_as("viewer").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.publish("teststreamer", "n", json!({"i": i})).await);
    }
    let mut ws = app.ws_connect().await;
    let sub = ws.subscribe("teststreamer", Some(&ids[0])).await;
    assert_eq!(sub["gap"], true);
    assert_eq!(sub["replayed"], 3);
    let mut ws2 = app.ws_connect().await;
    let sub = ws2.subscribe("teststreamer", Some(&ids[2])).await;
    assert_eq!(sub["gap"], false);
    assert_eq!(sub["replayed"], 2);
}

#[actix_web::test]
async fn unsubscribe_stops_delivery_and_ping_gets_pong() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let mut ws = app.ws_connect().await;
    ws.subscribe("teststreamer", None).await;
    ws.send_json(json!({"op":"unsubscribe","channel":"teststreamer"}))
        .await;
    assert_eq!(
        ws.expect_op("unsubscribed").await["channel"],
        "teststreamer"
    );
    app.publish("teststreamer", "n", json!({})).await;
    ws.send_json(json!({"op":"ping"})).await;
    // The pong comes, and no event before it.
    ws.expect_op("pong").await;
    assert!(ws.stays_quiet(Duration::from_millis(200)).await);
}

#[actix_web::test]
async fn bad_frames_get_error_codes_and_the_connection_stays_open() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let mut ws = app.ws_connect().await;
    for (frame, code) in [
        ("not json".to_owned(), "bad_json"),
        (r#"{"op":"dance"}"#.to_owned(), "unknown_op"),
        (
            r#"{"op":"subscribe","channel":"no spaces allowed"}"#.to_owned(),
            "invalid_channel",
        ),
        (
            format!(r#"{{"op":"subscribe","channel":"{}"}}"#, "a".repeat(26)),
            "invalid_channel",
        ),
        (
            r#"{"op":"subscribe","channel":"ok","since":"yesterday"}"#.to_owned(),
            "bad_json",
        ),
    ] {
        ws.send_text(frame.clone()).await;
        let e = ws.expect_op("error").await;
        assert_eq!(e["code"], code, "{frame}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    ws.send_json(json!({"op":"ping"})).await;
    ws.expect_op("pong").await;
}

#[actix_web::test]
async fn the_101st_channel_is_refused_with_too_many_channels() {
    let app = spawn_app(|s| s.limits.rate_limit_frames = 1000).await;
    app.login_as("viewer").await;
    let mut ws = app.ws_connect().await;
    for i in 0..100 {
        ws.subscribe(&format!("c{i}"), None).await;
    }
    ws.send_json(json!({"op":"subscribe","channel":"c100"}))
        .await;
    assert_eq!(ws.expect_op("error").await["code"], "too_many_channels");
    // Re-subscribing to one already held is fine.
    ws.subscribe("c5", None).await;
}

#[actix_web::test]
async fn more_than_twenty_frames_a_second_are_rate_limited_and_the_connection_stays() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let mut ws = app.ws_connect().await;
    for _ in 0..25 {
        ws.send_json(json!({"op":"ping"})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..25 {
        match ws.next_json().await["op"].as_str().unwrap() {
            "pong" => pongs += 1,
            "error" => limited += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!((pongs, limited), (20, 5));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.send_json(json!({"op":"ping"})).await;
    ws.expect_op("pong").await;
}

#[actix_web::test]
async fn a_64_kib_message_is_accepted_and_one_byte_more_closes_with_1009() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let mut ws = app.ws_connect().await;
    let base = r#"{"op":"ping"}"#;
    let exact = format!("{base}{}", " ".repeat(65_536 - base.len()));
    assert_eq!(exact.len(), 65_536);
    ws.send_text(exact).await;
    ws.expect_op("pong").await;
    let over = format!("{base}{}", " ".repeat(65_537 - base.len()));
    ws.send_text(over).await;
    assert_eq!(
        ws.close_code(Duration::from_secs(5)).await,
        Some(CloseCode::Size)
    );
}

#[actix_web::test]
async fn the_server_pings_and_a_silent_connection_is_closed() {
    let app = spawn_app(|s| {
        s.limits.ping_interval = Duration::from_millis(100);
        s.limits.idle_timeout = Duration::from_millis(400);
    })
    .await;
    app.login_as("viewer").await;
    // tungstenite answers pings while we read: that keeps the connection alive.
    let mut ws = app.ws_connect().await;
    let mut pinged = false;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(900);
    while tokio::time::Instant::now() < deadline {
        use futures_util::StreamExt;
        if let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.inner.next()).await {
            assert!(!m.is_close(), "closed while answering pings");
            pinged |= m.is_ping();
        }
    }
    assert!(pinged, "the server pinged");

    // With pings far apart, a client that says nothing is closed at the idle timeout.
    let app = spawn_app(|s| {
        s.limits.ping_interval = Duration::from_secs(30);
        s.limits.idle_timeout = Duration::from_millis(300);
    })
    .await;
    app.login_as("viewer").await;
    let mut ws = app.ws_connect().await;
    assert!(ws.close_code(Duration::from_secs(3)).await.is_some());
}

#[actix_web::test]
async fn past_max_connections_an_upgrade_gets_503() {
    let app = spawn_app(|s| s.limits.max_connections = 2).await;
    app.login_as("viewer").await;
    let _a = app.ws_connect().await;
    let _b = app.ws_connect().await;
    let err = WsClient::connect(&app.base, app.cookie_header().as_deref(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(refused_status(&err), Some(503));
    assert_eq!(app.metric("eventsub_bridge_connections", "").await, 2.0);
    drop(_a);
    // The slot comes back once the connection is gone.
    let mut ok = None;
    for _ in 0..50 {
        if let Ok(c) = WsClient::connect(&app.base, app.cookie_header().as_deref(), None).await {
            ok = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok.is_some());
}

#[actix_web::test]
async fn a_slow_viewer_is_closed_with_4008_and_others_get_everything() {
    let app = spawn_app(|s| s.limits.outbound_queue = 8).await;
    app.login_as("viewer").await;
    let mut slow = app.ws_connect().await;
    slow.subscribe("teststreamer", None).await;
    let mut fast = app.ws_connect().await;
    fast.subscribe("teststreamer", None).await;
    let pad = "x".repeat(64 * 1024);
    let n = 400;
    let reader = actix_web::rt::spawn(async move {
        let mut got = 0;
        while got < n {
            let v = fast.next_json().await;
            assert_eq!(v["op"], "event");
            got += 1;
        }
        got
    });
    for i in 0..n {
        app.publish("teststreamer", "big", json!({"i": i, "pad": pad}))
            .await;
    }
    assert_eq!(reader.await.unwrap(), n);
    // The slow one never read; it is closed with 4008 once its queue overflowed.
    assert_eq!(
        slow.close_code(Duration::from_secs(10)).await,
        Some(CloseCode::Library(4008))
    );
    assert!(app.metric("eventsub_bridge_slow_consumers_total", "").await >= 1.0);
}
