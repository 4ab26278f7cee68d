//! The viewer protocol of `/ws` (SPEC §5) on top of the socket layer: the
//! welcome, then `subscribe` (with replay after `since`), `unsubscribe`
//! and `ping`. A connection's channels live in its `Conn` (the hub's inbox
//! for them); dropping the protocol leaves them all, so a connection that
//! ends any way at all leaves no subscriber behind.

use std::sync::Arc;

use crate::broker::{Broker, Subscriber};
use crate::domain::User;
use crate::state::AppState;

use super::conn::{Conn, GoLive};
use super::protocol::{ClientOp, ProtocolError, ServerOp};
use super::session::Protocol;

/// One viewer connection's protocol state.
pub struct Viewer {
    /// Who signed in; taken by the welcome. Boxed: the protocol lives in
    /// every connection's task, the user only until the welcome.
    user: Option<Box<User>>,
    /// Set once open: the channels to leave on drop.
    joined: Option<(Arc<Broker>, Arc<Conn>)>,
}

impl Viewer {
    /// The protocol for a viewer signed in as `user`.
    pub fn new(user: User) -> Self {
        Self {
            user: Some(Box::new(user)),
            joined: None,
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Some((broker, conn)) = self.joined.take() {
            conn.close();
            for channel in conn.channels() {
                broker.unsubscribe(&channel, conn.id());
            }
        }
    }
}

impl Protocol for Viewer {
    fn open(&mut self, state: &AppState, conn: &Arc<Conn>) {
        self.joined = Some((state.broker.clone(), conn.clone()));
        if let Some(user) = self.user.take() {
            let _ = conn.push_text(&ServerOp::Welcome { user: &user }.to_json());
        }
    }

    async fn text(&mut self, state: &AppState, conn: &Arc<Conn>, text: &str) {
        if let Err(e) = handle_op(state, conn, text).await {
            // On overflow the session closes with 4008.
            let _ = conn.push_text(&e.to_frame());
        }
    }

    fn rate_limited(&self, limit: usize) -> String {
        ProtocolError::RateLimited(limit).to_frame()
    }
}

async fn handle_op(state: &AppState, conn: &Arc<Conn>, text: &str) -> Result<(), ProtocolError> {
    match ClientOp::parse(text)? {
        ClientOp::Ping => {
            let _ = conn.push_text(&ServerOp::Pong.to_json());
        }
        ClientOp::Unsubscribe { channel } => {
            if conn.leave(&channel) {
                state.broker.unsubscribe(&channel, conn.id());
            }
            let frame = ServerOp::Unsubscribed {
                channel: channel.as_str(),
            }
            .to_json();
            let _ = conn.push_text(&frame);
        }
        ClientOp::Subscribe { channel, since } => {
            let max = state.settings.limits.max_channels_per_connection;
            if !conn.has_channel(&channel) && conn.channel_count() >= max {
                return Err(ProtocolError::TooManyChannels(max));
            }
            // Live messages wait behind the replay until it is queued.
            conn.begin(&channel);
            let sub = Subscriber::new(conn.id(), conn.clone());
            let replay = match state.broker.subscribe(&channel, since, sub).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, channel = %channel, "subscribe failed");
                    // Registered or not, a failed replay must not go live silently.
                    state.broker.unsubscribe(&channel, conn.id());
                    conn.leave(&channel);
                    let frame = ServerOp::Error {
                        code: "unavailable",
                        message: "history is unavailable right now; retry shortly".into(),
                    }
                    .to_json();
                    let _ = conn.push_text(&frame);
                    return Ok(());
                }
            };
            // Live messages up to the last replayed id are duplicates; with no
            // replay and no gap, `since` itself is the floor.
            let floor = replay.last_id().or(if replay.gap { None } else { since });
            let head = ServerOp::Subscribed {
                channel: channel.as_str(),
                replayed: replay.messages.len(),
                gap: since.is_some() && replay.gap,
            }
            .to_json();
            match conn.go_live(&channel, floor, &head, &replay.messages) {
                // On overflow the session closes with 4008.
                GoLive::Queued | GoLive::Overflow => {}
                GoLive::Gone => state.broker.unsubscribe(&channel, conn.id()),
            }
        }
    }
    Ok(())
}
