//! What a streamer's EventSub socket is doing, for `/readyz`, the
//! dashboard's alert sources, and the metrics: its state, session, the
//! subscriptions made on it, reconnects and the last message's time. The
//! socket's task writes it; readers take a copy. In Redis mode the holder
//! also stores it in Redis (`store`), so that every instance can show it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::domain::ChannelName;

/// The socket's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketState {
    /// Opening the socket, waiting for the welcome.
    Connecting,
    /// Welcomed; creating the subscriptions.
    Subscribing,
    /// Subscribed and receiving.
    Connected,
    /// Moving to Twitch's `reconnect_url`.
    Reconnecting,
    /// Waiting before the next attempt after a failure.
    Backoff,
    /// Not running (grant revoked, lease lost, shutdown).
    Stopped,
}

/// One subscription made (or tried) on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketSubscription {
    /// The subscription type.
    #[serde(rename = "type")]
    pub sub_type: String,
    /// Its id once created.
    pub id: Option<String>,
    /// `enabled`, a revocation reason, `missing_scope`, `error`,
    /// `pending`, or `websocket_disconnected` while no socket holds it.
    pub status: String,
    /// Why creating it failed.
    pub error: Option<String>,
}

/// A copy of the socket's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketStatus {
    /// The streamer's channel.
    pub channel: ChannelName,
    /// The instance that holds the socket.
    pub instance: String,
    /// The state.
    pub state: SocketState,
    /// The EventSub session (not secret, but only shown to the streamer).
    pub session_id: Option<String>,
    /// `keepalive_timeout_seconds` of the session.
    pub keepalive_timeout_seconds: Option<u64>,
    /// Unix ms of the session's welcome.
    pub connected_at_ms: Option<i64>,
    /// Unix ms of the last message (any type).
    pub last_message_at_ms: Option<i64>,
    /// Sockets replaced since the holder started.
    pub reconnects: u64,
    /// Why the last socket ended (`keepalive_timeout`, `close_4003 …`).
    pub last_error: Option<String>,
    /// The subscriptions of the session.
    pub subscriptions: Vec<SocketSubscription>,
}

impl SocketStatus {
    /// A fresh status for a socket about to connect.
    pub fn new(channel: ChannelName, instance: &str) -> Self {
        Self {
            channel,
            instance: instance.to_owned(),
            state: SocketState::Connecting,
            session_id: None,
            keepalive_timeout_seconds: None,
            connected_at_ms: None,
            last_message_at_ms: None,
            reconnects: 0,
            last_error: None,
            subscriptions: Vec::new(),
        }
    }

    /// True while subscribed and receiving.
    pub fn is_connected(&self) -> bool {
        self.state == SocketState::Connected
    }

    /// How long ago the last message came, if any came.
    pub fn last_message_age(&self) -> Option<Duration> {
        let at = self.last_message_at_ms?;
        let age = Utc::now().timestamp_millis().saturating_sub(at);
        Some(Duration::from_millis(u64::try_from(age).unwrap_or(0)))
    }

    /// The subscription of `sub_type`: (id, status) once known, and the
    /// error of its last attempt.
    pub fn subscription(&self, sub_type: &str) -> (Option<(String, String)>, Option<String>) {
        let Some(s) = self.subscriptions.iter().find(|s| s.sub_type == sub_type) else {
            return (None, None);
        };
        let status = if self.is_connected() || s.status != "enabled" {
            s.status.clone()
        } else {
            // TWITCH.md §12: a socket that closed disabled its subscriptions.
            "websocket_disconnected".to_owned()
        };
        (s.id.clone().map(|id| (id, status)), s.error.clone())
    }

    /// The `/readyz` view: no session id.
    pub fn public_view(&self) -> serde_json::Value {
        serde_json::json!({
            "channel": self.channel,
            "state": self.state,
            "connected": self.is_connected(),
            "reconnects": self.reconnects,
            "last_message_age_s": self.last_message_age().map(|d| d.as_secs_f64()),
            "subscriptions": self
                .subscriptions
                .iter()
                .filter(|s| s.status == "enabled")
                .count(),
        })
    }
}

/// The live status of a socket this instance runs.
#[derive(Debug, Clone)]
pub struct StatusCell(Arc<Mutex<SocketStatus>>);

impl StatusCell {
    /// A cell holding `status`.
    pub fn new(status: SocketStatus) -> Self {
        Self(Arc::new(Mutex::new(status)))
    }

    /// A copy of the status now.
    pub fn get(&self) -> SocketStatus {
        self.0.lock().clone()
    }

    /// Changes the status.
    pub fn update(&self, change: impl FnOnce(&mut SocketStatus)) {
        change(&mut self.0.lock());
    }

    /// Notes that a message arrived now.
    pub fn touch(&self) {
        self.0.lock().last_message_at_ms = Some(Utc::now().timestamp_millis());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_socket_shows_its_enabled_subscriptions_as_disconnected() {
        let mut s = SocketStatus::new(ChannelName::parse("teststreamer").unwrap(), "i1");
        s.subscriptions.push(SocketSubscription {
            sub_type: "channel.cheer".into(),
            id: Some("sub-1".into()),
            status: "enabled".into(),
            error: None,
        });
        s.state = SocketState::Connected;
        assert_eq!(
            s.subscription("channel.cheer").0,
            Some(("sub-1".into(), "enabled".into()))
        );
        s.state = SocketState::Backoff;
        assert_eq!(
            s.subscription("channel.cheer").0,
            Some(("sub-1".into(), "websocket_disconnected".into()))
        );
        assert_eq!(s.subscription("channel.follow"), (None, None));
        let view = s.public_view();
        assert!(view.get("session_id").is_none());
        assert_eq!(view["connected"], false);
    }
}
