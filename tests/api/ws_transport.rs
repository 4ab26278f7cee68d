//! The `/ws` socket after the handshake leaves the HTTP layer (ws::upgrade,
//! ws::session, ws::flusher): bytes sent with the upgrade request,
//! fragmented messages, other upgrade requests, a full socket that drains
//! later, and shutdown. A raw client makes the byte-level cases exact.

use std::time::Duration;

use actix_http::ws::{Frame, OpCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::raw_ws::{RawWs, client_frame};
use crate::helpers::spawn_app;

const WAIT: Duration = Duration::from_secs(10);

#[actix_web::test]
async fn frames_sent_with_the_upgrade_request_are_read() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let ping = client_frame(br#"{"op":"ping"}"#, OpCode::Text, true);
    let (mut ws, head) = RawWs::open(&app, &ping).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(ws.next_json().await["op"], "welcome");
    assert_eq!(ws.next_json().await, json!({"op": "pong"}));
}

#[actix_web::test]
async fn a_fragmented_message_is_joined() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let (mut ws, _) = RawWs::open(&app, b"").await;
    assert_eq!(ws.next_json().await["op"], "welcome");
    let op = br#"{"op":"subscribe","channel":"teststreamer"}"#;
    let (first, rest) = op.split_at(10);
    let mut frames = client_frame(first, OpCode::Text, false);
    frames.extend_from_slice(&client_frame(b"", OpCode::Ping, true));
    frames.extend_from_slice(&client_frame(rest, OpCode::Continue, true));
    ws.send(&frames).await;
    // The ping in between is answered first, then the joined message.
    assert!(matches!(ws.next_frame().await, Some(Frame::Pong(_))));
    assert_eq!(ws.next_json().await["op"], "subscribed");
}

#[actix_web::test]
async fn another_upgrade_request_gets_an_ordinary_answer_and_the_end() {
    let app = spawn_app(|_| {}).await;
    for req in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
            .await
            .expect("the server closes after answering")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        if req.contains("/healthz") {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        } else {
            // No session: the same 401 and JSON body as without the upgrade.
            assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
            assert!(answer.contains("\"error\""), "{answer}");
        }
    }
    // The server is still serving.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[actix_web::test]
async fn a_viewer_whose_socket_filled_up_gets_everything_in_order_once_it_reads() {
    // Room for every message in the outbox, so this is about the full socket only.
    let app = spawn_app(|s| s.limits.outbound_queue = 4096).await;
    app.login_as("viewer").await;
    let (mut ws, _) = RawWs::open(&app, b"").await;
    ws.welcome_and_subscribe().await;
    // ~19 MiB unread: far more than the kernel buffers on both sides hold.
    let pad = "x".repeat(64 * 1024);
    let n = 300;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            app.publish("teststreamer", "big", json!({"i": i, "pad": pad}))
                .await,
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let ev = ws.next_json().await;
        assert_eq!(ev["op"], "event");
        assert_eq!(ev["message"]["id"], id.as_str(), "message {i} in order");
        assert_eq!(ev["message"]["data"]["i"], i);
    }
    assert_eq!(
        app.metric("eventsub_bridge_slow_consumers_total", "").await,
        0.0
    );
}

#[actix_web::test]
async fn shutdown_closes_viewers_with_1001() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let mut ws = app.ws_connect().await;
    ws.subscribe("teststreamer", None).await;
    app.shutdown.cancel();
    assert_eq!(
        ws.close_code(Duration::from_secs(5)).await,
        Some(CloseCode::Away)
    );
}

#[actix_web::test]
async fn viewers_that_leave_any_way_leave_nothing_behind() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let mut clean = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..10 {
        let mut ws = app.ws_connect().await;
        ws.subscribe("teststreamer", None).await;
        clean.push(ws);
        let (mut r, _) = RawWs::open(&app, b"").await;
        r.welcome_and_subscribe().await;
        raw.push(r);
    }
    assert_eq!(app.metric("eventsub_bridge_connections", "").await, 20.0);
    assert_eq!(
        app.metric("eventsub_bridge_channel_subscriptions", "")
            .await,
        20.0
    );
    // Half close properly, half just drop the socket.
    for mut ws in clean {
        ws.inner.close(None).await.unwrap();
    }
    drop(raw);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let conns = app.metric("eventsub_bridge_connections", "").await;
        let subs = app
            .metric("eventsub_bridge_channel_subscriptions", "")
            .await;
        if conns == 0.0 && subs == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{conns} connections and {subs} subscriptions left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A message now reaches nobody.
    let before = app.metric("eventsub_bridge_deliveries_total", "").await;
    app.publish("teststreamer", "custom", json!({})).await;
    assert_eq!(
        app.metric("eventsub_bridge_deliveries_total", "").await,
        before
    );
}
