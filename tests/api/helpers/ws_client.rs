//! A real WebSocket client for tests, with timed waits (never a bare sleep).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct WsClient {
    pub inner: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

/// What the server answered an upgrade with, when it refused.
pub fn refused_status(e: &Error) -> Option<u16> {
    match e {
        Error::Http(resp) => Some(resp.status().as_u16()),
        _ => None,
    }
}

impl WsClient {
    pub async fn connect(
        base: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, Error> {
        Self::connect_path(base, "/ws", cookie, origin).await
    }

    /// Opens the WebSocket at `path` (with its query) on `base`.
    pub async fn connect_path(
        base: &str,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, Error> {
        let url = format!("{}{path}", base.replacen("http", "ws", 1));
        let mut req = url.into_client_request()?;
        if let Some(c) = cookie {
            req.headers_mut().insert("Cookie", c.parse().unwrap());
        }
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        let (inner, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Self { inner })
    }

    pub async fn send_json(&mut self, v: Value) {
        self.inner.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, t: String) {
        self.inner.send(Message::text(t)).await.unwrap();
    }

    /// The next text frame as JSON (control frames skipped), within WAIT.
    pub async fn next_json(&mut self) -> Value {
        self.try_next_json(WAIT)
            .await
            .expect("a JSON frame within the wait")
    }

    /// The next text frame within `wait`, or None.
    pub async fn try_next_json(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()??;
            match msg {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Message::Close(c)) => panic!("closed: {c:?}"),
                Ok(_) => continue,
                Err(e) => panic!("ws error: {e}"),
            }
        }
    }

    /// Waits for the next frame of `op`, failing on any other text frame.
    pub async fn expect_op(&mut self, op: &str) -> Value {
        let v = self.next_json().await;
        assert_eq!(v["op"], op, "expected {op}, got {v}");
        v
    }

    /// Subscribes and returns the `subscribed` frame.
    pub async fn subscribe(&mut self, channel: &str, since: Option<&str>) -> Value {
        let mut op = serde_json::json!({"op": "subscribe", "channel": channel});
        if let Some(s) = since {
            op["since"] = Value::String(s.into());
        }
        self.send_json(op).await;
        self.expect_op("subscribed").await
    }

    /// Reads until the server closes; returns the close code (skips data frames).
    pub async fn close_code(&mut self, wait: Duration) -> Option<CloseCode> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return None,
                Ok(None) => return None,
                Ok(Some(Ok(Message::Close(c)))) => return c.map(|f| f.code),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) => return None,
            }
        }
    }

    /// True when no text frame arrives within `wait`.
    pub async fn stays_quiet(&mut self, wait: Duration) -> bool {
        self.try_next_json(wait).await.is_none()
    }
}
