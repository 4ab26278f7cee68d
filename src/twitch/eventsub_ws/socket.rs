//! One streamer's EventSub WebSocket (SPEC §10, TWITCH.md §12), run by
//! the instance that holds its lease: connect, read the welcome, create
//! the subscriptions on the session with the streamer's user token (at
//! once, well within Twitch's 10 seconds), then read until something ends
//! the socket, and start again with backoff and jitter.
//!
//! - Every notification and revocation goes to the socket's `deliver`
//!   queue (then `ingest`, shared with the webhook); keepalives only prove
//!   the socket alive.
//! - Keepalive watchdog: no message for the session's
//!   `keepalive_timeout_seconds` plus `ws_keepalive_margin` → the socket is
//!   replaced (new socket, subscriptions created again).
//! - `session_reconnect`: a second socket to `reconnect_url`; the old one
//!   is read until the new one's welcome, then closed. Subscriptions carry
//!   over; messages that arrive on both are one message id, so `ingest`
//!   publishes them once. At most two sockets per streamer are ever open,
//!   within Twitch's three per user.
//! - Close codes 4000–4007 (and a dropped connection) end the socket; the
//!   next one comes after an exponential, jittered backoff, which a
//!   successful subscription resets.
//! - The client only ever reads: tungstenite answers Twitch's pings with
//!   pongs, and the only frame the bridge sends is the close of a socket it
//!   leaves (TWITCH.md §12: anything else is closed with 4001).
//! - A 401 from Helix refreshes the grant once; a grant that cannot be
//!   refreshed is revoked and ends the socket for good.

use std::time::Duration;

use actix_web::web;
use futures_util::StreamExt;
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::domain::ChannelName;
use crate::eventsub::envelope::{MessageType, Revocation};
use crate::eventsub::websocket::{Frame, Session, parse};
use crate::state::AppState;
use crate::twitch::Twitch;
use crate::twitch::grants::GrantError;
use crate::twitch::helix::{Created, HelixError};
use crate::twitch::subscriptions::{condition_for, scope_for, version_for};

use super::deliver::{DeliverySender, Queued};
use super::status::{SocketState, SocketSubscription, StatusCell};

/// Twitch's limit of enabled subscriptions per socket (TWITCH.md §12).
pub const MAX_SUBSCRIPTIONS_PER_SOCKET: usize = 300;
/// Largest message accepted from Twitch (as the webhook's body limit).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// How long the new socket of a `session_reconnect` may take (Twitch
/// closes the old one with 4004 after 30 s).
const RECONNECT_GRACE: Duration = Duration::from_secs(30);
/// How long closing a socket may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Twitch's default keepalive, used until a welcome says otherwise.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What came off a socket.
enum Incoming {
    Text(String),
    /// A close frame: its code, if any, and reason.
    Closed(Option<u16>, String),
    /// The connection failed or ended without a close frame.
    Lost(String),
}

/// Why a socket ended.
enum Ended {
    /// Cancelled (shutdown, lease lost) or the grant is gone: stop.
    Stop,
    /// Start again after a backoff; the reason labels the metric.
    Retry(String),
}

/// One open socket and when it last heard from Twitch.
struct Conn {
    ws: Ws,
    keepalive: Duration,
    last_message: Instant,
}

impl Conn {
    async fn open(url: &Url, timeout: Duration) -> Result<Self, String> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connect =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true);
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok((ws, _))) => Ok(Self {
                ws,
                keepalive: DEFAULT_KEEPALIVE,
                last_message: Instant::now(),
            }),
            Ok(Err(e)) => Err(format!("connect failed: {e}")),
            Err(_) => Err("connect timed out".into()),
        }
    }

    async fn next(&mut self) -> Incoming {
        loop {
            match self.ws.next().await {
                None => return Incoming::Lost("the connection ended".into()),
                Some(Err(e)) => return Incoming::Lost(e.to_string()),
                Some(Ok(Message::Text(t))) => {
                    self.last_message = Instant::now();
                    return Incoming::Text(t.as_str().to_owned());
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Incoming::Closed(Some(u16::from(f.code)), f.reason.to_string()),
                        None => Incoming::Closed(None, String::new()),
                    };
                }
                // Pings are answered by tungstenite on the next read.
                Some(Ok(_)) => {}
            }
        }
    }

    /// When silence means the socket is lost.
    fn deadline(&self, margin: Duration) -> Instant {
        self.last_message + self.keepalive + margin
    }

    /// Reads until the welcome.
    async fn welcome(&mut self, timeout: Duration) -> Result<Session, String> {
        let read = async {
            loop {
                match self.next().await {
                    Incoming::Text(t) => match parse(&t) {
                        Ok(Frame::Welcome(s)) => return Ok(s),
                        Ok(_) => continue,
                        Err(e) => return Err(format!("bad first message: {e}")),
                    },
                    Incoming::Closed(code, reason) => {
                        return Err(close_reason(code, &reason));
                    }
                    Incoming::Lost(e) => return Err(format!("network_error: {e}")),
                }
            }
        };
        let session = tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| "welcome_timeout".to_owned())??;
        if let Some(s) = session.keepalive_timeout_seconds.filter(|s| *s > 0) {
            self.keepalive = Duration::from_secs(s);
        }
        Ok(session)
    }

    /// Closes the socket normally (the only frame the client sends).
    async fn close(mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.close(Some(frame))).await;
    }
}

/// The metric label and log text of a close (TWITCH.md §12).
fn close_reason(code: Option<u16>, reason: &str) -> String {
    let what = match code {
        Some(4000) => "internal server error",
        Some(4001) => "client sent inbound traffic",
        Some(4002) => "client failed ping-pong",
        Some(4003) => "connection unused",
        Some(4004) => "reconnect grace time expired",
        Some(4005) => "network timeout",
        Some(4006) => "network error",
        Some(4007) => "invalid reconnect",
        Some(_) => "closed",
        None => "closed without a code",
    };
    match code {
        Some(c) if reason.is_empty() => format!("close_{c}: {what}"),
        Some(c) => format!("close_{c}: {what} ({reason})"),
        None => what.to_owned(),
    }
}

/// The metric label of an end reason: the part before `:`.
fn label(reason: &str) -> &str {
    reason.split(':').next().unwrap_or(reason)
}

/// What one subscription round did.
enum Subscribed {
    /// Done; true when at least one subscription is enabled.
    Done(bool),
    /// The grant is gone: stop the socket.
    GrantGone,
}

/// Runs one streamer's socket until cancelled or the grant is gone.
pub struct Runner {
    /// The application (for `ingest`, settings, metrics).
    pub state: web::Data<AppState>,
    /// Helix and the grants.
    pub twitch: std::sync::Arc<Twitch>,
    /// The streamer.
    pub channel: ChannelName,
    /// What the socket is doing.
    pub status: StatusCell,
    /// Stops the socket.
    pub cancel: CancellationToken,
    /// Rung when the streamer's grant changed (new scopes): subscribe what
    /// is missing.
    pub grant_changed: std::sync::Arc<Notify>,
    /// The ingest queue.
    pub deliver: DeliverySender,
    /// `TWITCH_EVENTSUB_WS_URL`.
    pub base_url: Url,
    /// The types to subscribe (`EVENT_TYPES` and the alert kinds).
    pub types: Vec<String>,
}

impl Runner {
    /// Connects, and reconnects, until cancelled or the grant is gone.
    pub async fn run(self) {
        let limits = &self.state.settings.limits;
        let mut failures: u32 = 0;
        loop {
            if failures > 0 {
                let wait = backoff(limits.ws_backoff_min, limits.ws_backoff_max, failures);
                self.status.update(|s| s.state = SocketState::Backoff);
                tokio::select! {
                    () = self.cancel.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
            match self.one_socket(&mut failures).await {
                Ended::Stop => break,
                Ended::Retry(reason) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(channel = %self.channel, %reason, "EventSub socket ended; reconnecting");
                    self.count_reconnect(label(&reason));
                    self.status.update(|s| {
                        s.reconnects += 1;
                        s.last_error = Some(reason);
                    });
                }
            }
        }
        self.status.update(|s| s.state = SocketState::Stopped);
        self.set_connected(false);
    }

    fn count_reconnect(&self, reason: &str) {
        self.state
            .metrics
            .eventsub_ws
            .reconnects
            .with_label_values(&[self.channel.as_str(), reason])
            .inc();
    }

    fn set_connected(&self, up: bool) {
        self.state
            .metrics
            .eventsub_ws
            .connected
            .with_label_values(&[self.channel.as_str()])
            .set(i64::from(up));
    }

    /// One socket from connect to its end (following `session_reconnect`s).
    async fn one_socket(&self, failures: &mut u32) -> Ended {
        let limits = &self.state.settings.limits;
        self.status.update(|s| {
            s.state = SocketState::Connecting;
            s.session_id = None;
        });
        let mut conn = match Conn::open(&self.base_url, limits.twitch_timeout).await {
            Ok(c) => c,
            Err(e) => return Ended::Retry(format!("connect_error: {e}")),
        };
        let session = match conn.welcome(limits.ws_welcome_timeout).await {
            Ok(s) => s,
            Err(e) => return Ended::Retry(e),
        };
        tracing::info!(channel = %self.channel, keepalive_s = conn.keepalive.as_secs(), "EventSub socket welcomed");
        self.on_welcome(&session, conn.keepalive, false);
        let mut session_id = session.id;
        // TWITCH.md §12: subscribe within 10 s of the welcome, so at once,
        // while reading (pings must be answered meanwhile).
        let mut round = Some(Box::pin(self.subscribe(session_id.clone())));
        loop {
            let deadline = conn.deadline(limits.ws_keepalive_margin);
            tokio::select! {
                () = self.cancel.cancelled() => {
                    conn.close().await;
                    return Ended::Stop;
                }
                done = async {
                    match round.as_mut() {
                        Some(r) => Some(r.await),
                        None => None,
                    }
                }, if round.is_some() => {
                    round = None;
                    match done {
                        Some(Subscribed::GrantGone) => {
                            conn.close().await;
                            return Ended::Stop;
                        }
                        Some(Subscribed::Done(any)) => {
                            if any {
                                *failures = 0;
                            }
                            self.status.update(|s| s.state = SocketState::Connected);
                            self.set_connected(any);
                        }
                        None => {}
                    }
                }
                () = self.grant_changed.notified(), if round.is_none() => {
                    round = Some(Box::pin(self.subscribe(session_id.clone())));
                }
                () = tokio::time::sleep_until(deadline) => {
                    self.set_connected(false);
                    // Replaced at once: a lost socket is not the server's fault.
                    *failures = 0;
                    let silent = conn.keepalive + limits.ws_keepalive_margin;
                    conn.close().await;
                    return Ended::Retry(format!(
                        "keepalive_timeout: nothing for {} ms",
                        silent.as_millis()
                    ));
                }
                incoming = conn.next() => match incoming {
                    Incoming::Text(text) => {
                        if let Some(url) = self.on_text(&text) {
                            self.count_reconnect("session_reconnect");
                            match self.switch(conn, &url).await {
                                Ok((new_conn, session)) => {
                                    conn = new_conn;
                                    session_id = session.id.clone();
                                    self.on_welcome(&session, conn.keepalive, true);
                                }
                                Err(ended) => {
                                    self.set_connected(false);
                                    return ended;
                                }
                            }
                        }
                    }
                    Incoming::Closed(code, reason) => {
                        self.set_connected(false);
                        return Ended::Retry(close_reason(code, &reason));
                    }
                    Incoming::Lost(e) => {
                        self.set_connected(false);
                        return Ended::Retry(format!("network_error: {e}"));
                    }
                },
            }
        }
    }

    fn on_welcome(&self, session: &Session, keepalive: Duration, carried_over: bool) {
        let now = chrono::Utc::now().timestamp_millis();
        self.status.update(|s| {
            s.session_id = Some(session.id.clone());
            s.keepalive_timeout_seconds = Some(keepalive.as_secs());
            s.connected_at_ms = Some(now);
            s.last_message_at_ms = Some(now);
            if carried_over {
                // The subscriptions moved with the session (TWITCH.md §12).
                s.state = SocketState::Connected;
            } else {
                s.state = SocketState::Subscribing;
                s.subscriptions.clear();
            }
        });
    }

    /// Handles one text frame; returns the URL of a `session_reconnect`.
    fn on_text(&self, text: &str) -> Option<Url> {
        self.status.touch();
        let frame = match parse(text) {
            Ok(f) => f,
            Err(e) => {
                self.state
                    .metrics
                    .eventsub_ws
                    .messages
                    .with_label_values(&["invalid"])
                    .inc();
                tracing::warn!(channel = %self.channel, error = %e, "unreadable EventSub WebSocket message");
                return None;
            }
        };
        match frame {
            Frame::Keepalive | Frame::Welcome(_) => None,
            Frame::Delivery {
                message_id,
                kind,
                at,
                payload,
            } => {
                if kind == MessageType::Revocation {
                    // The dashboard shows the subscription's new status.
                    if let Ok(r) = serde_json::from_str::<Revocation>(payload.get()) {
                        let s = r.subscription;
                        self.record(&s.sub_type, Some(s.id), &s.status, None);
                    }
                }
                self.deliver.push(Queued {
                    message_id: message_id.into_owned(),
                    kind,
                    at,
                    payload: payload.get().to_owned(),
                });
                None
            }
            Frame::Reconnect(session) => {
                let url = session
                    .reconnect_url
                    .as_deref()
                    .and_then(|u| Url::parse(u).ok())
                    .filter(|u| matches!(u.scheme(), "ws" | "wss"));
                if url.is_none() {
                    tracing::warn!(channel = %self.channel, "session_reconnect without a usable URL; ignored (Twitch closes with 4007 or 4004)");
                }
                url
            }
            Frame::Other(kind) => {
                tracing::info!(channel = %self.channel, %kind, "unknown EventSub WebSocket message type");
                None
            }
        }
    }

    /// `session_reconnect`: opens the new socket, reads the old one until
    /// the new welcome, then closes the old one.
    async fn switch(&self, mut old: Conn, url: &Url) -> Result<(Conn, Session), Ended> {
        let limits = &self.state.settings.limits;
        self.status.update(|s| s.state = SocketState::Reconnecting);
        tracing::info!(channel = %self.channel, "EventSub session_reconnect: moving to the new socket");
        let opening = async {
            let mut conn = Conn::open(url, limits.twitch_timeout).await?;
            let session = conn.welcome(limits.ws_welcome_timeout).await?;
            Ok::<_, String>((conn, session))
        };
        tokio::pin!(opening);
        let grace = tokio::time::sleep(RECONNECT_GRACE);
        tokio::pin!(grace);
        let mut old_open = true;
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => {
                    old.close().await;
                    return Err(Ended::Stop);
                }
                () = &mut grace => {
                    old.close().await;
                    return Err(Ended::Retry("reconnect_timeout: no welcome on the new socket".into()));
                }
                opened = &mut opening => {
                    return match opened {
                        Ok((conn, session)) => {
                            if old_open {
                                old.close().await;
                            }
                            Ok((conn, session))
                        }
                        Err(e) => {
                            old.close().await;
                            Err(Ended::Retry(format!("reconnect_failed: {e}")))
                        }
                    };
                }
                incoming = old.next(), if old_open => match incoming {
                    // A second reconnect on the old socket is moot now.
                    Incoming::Text(text) => {
                        let _ = self.on_text(&text);
                    }
                    Incoming::Closed(..) | Incoming::Lost(_) => old_open = false,
                },
            }
        }
    }

    /// Creates what is not yet enabled on this session.
    async fn subscribe(&self, session_id: String) -> Subscribed {
        let grants = &self.twitch.grants;
        let mut grant = match grants.access_token(&self.channel).await {
            Ok(g) => g,
            Err(GrantError::NotConnected(_) | GrantError::Revoked { .. }) => {
                return Subscribed::GrantGone;
            }
            Err(e) => {
                tracing::warn!(channel = %self.channel, error = %e, "cannot read the grant; subscribing later");
                return Subscribed::Done(false);
            }
        };
        let enabled_before = self.status.get().subscriptions;
        for (n, sub_type) in self.types.iter().enumerate() {
            let already = enabled_before
                .iter()
                .any(|s| &s.sub_type == sub_type && s.status == "enabled");
            if already {
                continue;
            }
            if n >= MAX_SUBSCRIPTIONS_PER_SOCKET {
                self.record(
                    sub_type,
                    None,
                    "error",
                    Some(format!(
                        "more than {MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions on one socket"
                    )),
                );
                continue;
            }
            if let Some(scope) = scope_for(sub_type) {
                if !grant.has_scope(scope) {
                    self.record(sub_type, None, "missing_scope", None);
                    continue;
                }
            }
            let condition = condition_for(sub_type, &grant.user_id);
            let mut refreshed = false;
            loop {
                let result = self
                    .twitch
                    .helix
                    .create_websocket_subscription(
                        &grant.access_token(),
                        sub_type,
                        version_for(sub_type),
                        &condition,
                        &session_id,
                    )
                    .await;
                match result {
                    Ok(Created::New(sub, _)) => {
                        self.record(sub_type, Some(sub.id), &sub.status, None);
                    }
                    Ok(Created::Existing(_)) => {
                        self.record(sub_type, None, "enabled", None);
                    }
                    Err(HelixError::Unauthorized(_)) if !refreshed => {
                        refreshed = true;
                        match grants
                            .refresh_after_401(&self.channel, &grant.access_token())
                            .await
                        {
                            Ok(g) => {
                                grant = g;
                                continue;
                            }
                            Err(GrantError::Revoked { .. } | GrantError::NotConnected(_)) => {
                                return Subscribed::GrantGone;
                            }
                            Err(e) => {
                                self.record(sub_type, None, "error", Some(e.to_string()));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(channel = %self.channel, sub_type, error = %e, "could not subscribe on the EventSub socket");
                        self.record(sub_type, None, "error", Some(e.to_string()));
                    }
                }
                break;
            }
        }
        let any = self
            .status
            .get()
            .subscriptions
            .iter()
            .any(|s| s.status == "enabled");
        tracing::info!(channel = %self.channel, any_enabled = any, "EventSub socket subscriptions made");
        Subscribed::Done(any)
    }

    fn record(&self, sub_type: &str, id: Option<String>, status: &str, error: Option<String>) {
        self.status.update(|s| {
            let entry = SocketSubscription {
                sub_type: sub_type.to_owned(),
                id,
                status: status.to_owned(),
                error,
            };
            match s.subscriptions.iter_mut().find(|x| x.sub_type == sub_type) {
                Some(x) => *x = entry,
                None => s.subscriptions.push(entry),
            }
        });
    }
}

/// `min · 2^(failures-1)`, at most `max`, with full jitter in its upper half
/// so that many sockets do not retry in step.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base = min.saturating_mul(1u32 << exp).min(max);
    let half = base.as_millis() as u64 / 2;
    let jitter = rand::rng().random_range(0..=half);
    Duration::from_millis(half + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_named_as_twitch_documents() {
        assert_eq!(
            close_reason(Some(4003), ""),
            "close_4003: connection unused"
        );
        assert_eq!(
            close_reason(Some(4001), "x"),
            "close_4001: client sent inbound traffic (x)"
        );
        assert_eq!(label("close_4007: invalid reconnect"), "close_4007");
        assert_eq!(label("keepalive_timeout: nothing"), "keepalive_timeout");
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let min = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for _ in 0..100 {
            let first = backoff(min, max, 1);
            assert!(first >= Duration::from_millis(500) && first <= min);
            let late = backoff(min, max, 30);
            assert!(late >= Duration::from_secs(30) && late <= max);
        }
        assert!(backoff(min, max, 4) >= Duration::from_secs(4));
    }
}
