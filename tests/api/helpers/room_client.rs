//! A Pact-style room client for tests: opens `/websocket?room=`, reads the
//! `config` and `profile` frames the server sends first, and waits for
//! frames with timeouts (never a bare sleep).

use std::time::Duration;

use serde_json::{Value, json};

use super::ws_client::{WAIT, WsClient};

pub struct RoomClient {
    pub ws: WsClient,
    /// The `config` frame's data on connect.
    pub config: Value,
    /// The `profile` frame's data on connect.
    pub profile: Value,
}

impl RoomClient {
    /// Connects to `room` on `base` with `cookie`; panics if refused.
    pub async fn open(base: &str, room: &str, cookie: &str) -> Self {
        let path = format!("/websocket?room={room}");
        let mut ws = WsClient::connect_path(base, &path, Some(cookie), None)
            .await
            .expect("room upgrade");
        let config = ws.next_json().await;
        assert_eq!(config["type"], "config", "{config}");
        let profile = ws.next_json().await;
        assert_eq!(profile["type"], "profile", "{profile}");
        Self {
            ws,
            config: config["data"].clone(),
            profile: profile["data"].clone(),
        }
    }

    pub async fn send(&mut self, ty: &str, data: Value) {
        self.ws.send_json(json!({"type": ty, "data": data})).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send_text(text.to_owned()).await;
    }

    /// The next frame, whatever it is.
    pub async fn next(&mut self) -> Value {
        self.ws.next_json().await
    }

    /// The next frame, which must be of type `ty`; returns its data.
    pub async fn next_of(&mut self, ty: &str) -> Value {
        let v = self.next().await;
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        v["data"].clone()
    }

    /// Skips frames until one matches `pred` (within `within`); returns it.
    pub async fn wait_for_within(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.ws.try_next_json(left).await {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!("no frame matching {what} within {within:?}"),
            }
        }
    }

    /// Skips frames until one matches `pred` (within the usual wait).
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(WAIT, what, pred).await
    }

    /// The next frame is an error with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let data = self.next_of("error").await;
        assert_eq!(data["code"], code, "{data}");
        assert!(
            data["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{data}"
        );
        data
    }

    /// The connection is open and answers (`ping` → `pong`).
    pub async fn assert_open(&mut self) {
        self.send("ping", Value::Null).await;
        self.wait_for("pong", |v| v["type"] == "pong").await;
    }

    /// Fails if a frame matching `pred` arrives within `wait` (others, such
    /// as a repeated current value, may).
    pub async fn none_within(&mut self, wait: Duration, what: &str, pred: impl Fn(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.ws.try_next_json(left).await {
                Some(v) => assert!(!pred(&v), "{what}: {v}"),
                None => return,
            }
        }
    }

    /// True when no frame arrives within `wait`.
    pub async fn stays_quiet(&mut self, wait: Duration) -> bool {
        self.ws.stays_quiet(wait).await
    }

    /// Subscribes to `what`.
    pub async fn subscribe(&mut self, what: &str) {
        self.send("subscribe", json!(what)).await;
    }
}
