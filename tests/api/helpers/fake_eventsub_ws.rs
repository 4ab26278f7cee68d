//! A fake EventSub WebSocket server (TWITCH.md §12), wired to the fake
//! Helix of `fake_twitch`: Helix creates WebSocket subscriptions only on a
//! session that is open here, and a notification goes to the session that
//! holds the subscription now.
//!
//! Each connection gets a session and a `session_welcome`, then
//! `session_keepalive`s while nothing else is sent, and WebSocket pings it
//! must answer (else 4002). Like Twitch it closes a connection with 4001
//! when the client sends anything but pongs and a close, with 4003 when no
//! subscription was created within the unused timeout (10 s, tests may
//! shrink it), and disables a closed session's subscriptions
//! (`websocket_disconnected`). A connection to the `reconnect_url` of a
//! `session_reconnect` takes the old session's subscriptions over at its
//! welcome. Tests drive it: notifications (and resends of the same id),
//! silence, `session_reconnect`, revocations, closes with a code; every
//! close is recorded.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::fake_twitch::FakeTwitch;

/// Twitch's limit of enabled subscriptions per session.
pub const MAX_SUBS_PER_SESSION: usize = 300;

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// What a test tells a session to do.
#[derive(Debug)]
enum Cmd {
    Send(String),
    Close(u16),
    Silence,
}

/// A recorded close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsClose {
    pub session: String,
    /// The close code (client closes too; `None` when the TCP connection
    /// just ended).
    pub code: Option<u16>,
    /// True when the server (Twitch) closed it.
    pub by_server: bool,
}

#[derive(Debug)]
struct Session {
    tx: mpsc::UnboundedSender<Cmd>,
    open: bool,
    welcomed: bool,
    /// The user whose token created subscriptions on it.
    user: Option<String>,
    subscribed: bool,
    reconnect_from: Option<String>,
}

/// The WebSocket side of the fake's state.
#[derive(Debug)]
pub struct WsState {
    sessions: HashMap<String, Session>,
    closes: Vec<WsClose>,
    /// message id → (subscription id, frame), for resends.
    sent: HashMap<String, (String, String)>,
    base_url: Option<String>,
    pub keepalive_secs: u64,
    pub unused_timeout: Duration,
    pub ping_every: Duration,
    /// Most sessions of one user open (and welcomed) at once.
    pub max_open_per_user: HashMap<String, usize>,
}

impl Default for WsState {
    fn default() -> Self {
        Self {
            sessions: HashMap::new(),
            closes: Vec::new(),
            sent: HashMap::new(),
            base_url: None,
            keepalive_secs: 10,
            unused_timeout: Duration::from_secs(10),
            ping_every: Duration::from_secs(1),
            max_open_per_user: HashMap::new(),
        }
    }
}

impl WsState {
    /// True for an open, welcomed session.
    pub fn is_live(&self, session: &str) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.open && s.welcomed)
    }

    /// A subscription was created on `session` with `user`'s token.
    pub fn note_subscribed(&mut self, session: &str, user: &str) {
        if let Some(s) = self.sessions.get_mut(session) {
            s.subscribed = true;
            s.user = Some(user.to_owned());
        }
        let open = self
            .sessions
            .values()
            .filter(|s| s.open && s.user.as_deref() == Some(user))
            .count();
        let max = self.max_open_per_user.entry(user.to_owned()).or_default();
        *max = (*max).max(open);
    }
}

fn frame(message_type: &str, extra_meta: Value, payload: Value) -> (String, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let mut metadata = json!({
        "message_id": id, "message_type": message_type, "message_timestamp": now_rfc3339()
    });
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), extra_meta.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    let text = json!({"metadata": metadata, "payload": payload}).to_string();
    (id, text)
}

fn session_json(
    id: &str,
    status: &str,
    keepalive: Option<u64>,
    reconnect_url: Option<String>,
) -> Value {
    json!({"session": {
        "id": id, "status": status, "connected_at": now_rfc3339(),
        "keepalive_timeout_seconds": keepalive, "reconnect_url": reconnect_url, "recovery_url": null
    }})
}

impl FakeTwitch {
    /// Starts the EventSub WebSocket server; returns the URL for
    /// `TWITCH_EVENTSUB_WS_URL`.
    pub async fn start_eventsub_ws(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        self.state.lock().unwrap().ws.base_url = Some(url.clone());
        let state = self.state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(state.clone(), stream));
            }
        });
        url
    }

    /// Changes the server's timings (keepalive seconds in welcomes, the
    /// unused-connection timeout, the ping interval).
    pub fn set_ws_timings(
        &self,
        keepalive_secs: u64,
        unused_timeout: Duration,
        ping_every: Duration,
    ) {
        let mut st = self.state.lock().unwrap();
        st.ws.keepalive_secs = keepalive_secs;
        st.ws.unused_timeout = unused_timeout;
        st.ws.ping_every = ping_every;
    }

    /// The open session holding `login`'s enabled subscriptions, if any.
    pub fn ws_session_of(&self, login: &str) -> Option<String> {
        let st = self.state.lock().unwrap();
        let id = self.user_id(login);
        st.subs
            .iter()
            .filter(|s| s["transport"]["method"] == "websocket" && s["status"] == "enabled")
            .filter(|s| {
                s["condition"]
                    .as_object()
                    .is_some_and(|o| o.values().any(|v| v == id.as_str()))
            })
            .filter_map(|s| s["transport"]["session_id"].as_str())
            .find(|sid| st.ws.is_live(sid))
            .map(str::to_owned)
    }

    /// The enabled WebSocket subscriptions on `session`.
    pub fn ws_subscriptions(&self, session: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .subs
            .iter()
            .filter(|s| s["transport"]["session_id"] == session && s["status"] == "enabled")
            .cloned()
            .collect()
    }

    /// Every session ever opened, with whether it is still open.
    pub fn ws_sessions(&self) -> Vec<(String, bool)> {
        self.state
            .lock()
            .unwrap()
            .ws
            .sessions
            .iter()
            .map(|(id, s)| (id.clone(), s.open))
            .collect()
    }

    /// Every close so far.
    pub fn ws_closes(&self) -> Vec<WsClose> {
        self.state.lock().unwrap().ws.closes.clone()
    }

    /// How often the server closed a session with `code`.
    pub fn ws_server_closes(&self, code: u16) -> usize {
        self.ws_closes()
            .iter()
            .filter(|c| c.by_server && c.code == Some(code))
            .count()
    }

    /// Most sessions `login` had open at once.
    pub fn ws_max_open(&self, login: &str) -> usize {
        let id = self.user_id(login);
        let st = self.state.lock().unwrap();
        st.ws.max_open_per_user.get(&id).copied().unwrap_or(0)
    }

    fn user_id(&self, login: &str) -> String {
        super::fake_twitch::USERS
            .iter()
            .find(|u| u.1 == login)
            .map(|u| u.0.to_owned())
            .expect("a known fake user")
    }

    fn send(&self, session: &str, cmd: Cmd) -> bool {
        let st = self.state.lock().unwrap();
        st.ws
            .sessions
            .get(session)
            .filter(|s| s.open)
            .is_some_and(|s| s.tx.send(cmd).is_ok())
    }

    /// Sends a notification of `sub_type` with `event` to the session that
    /// holds the enabled subscription of that type for the event's
    /// broadcaster; returns the message id (None when nobody holds one).
    pub fn ws_notify(&self, sub_type: &str, event: Value) -> Option<String> {
        let broadcaster = event["broadcaster_user_id"]
            .as_str()
            .or_else(|| event["to_broadcaster_user_id"].as_str())
            .unwrap_or("")
            .to_owned();
        let (session, text, id, sub_id) = {
            let st = self.state.lock().unwrap();
            let sub = st.subs.iter().find(|s| {
                s["type"] == sub_type
                    && s["status"] == "enabled"
                    && s["transport"]["method"] == "websocket"
                    && s["condition"]
                        .as_object()
                        .is_some_and(|o| o.values().any(|v| v == broadcaster.as_str()))
            })?;
            let session = sub["transport"]["session_id"].as_str()?.to_owned();
            let (id, text) = frame(
                "notification",
                json!({"subscription_type": sub_type, "subscription_version": sub["version"]}),
                json!({"subscription": sub, "event": event}),
            );
            (session, text, id, sub["id"].as_str()?.to_owned())
        };
        self.state
            .lock()
            .unwrap()
            .ws
            .sent
            .insert(id.clone(), (sub_id, text.clone()));
        self.send(&session, Cmd::Send(text)).then_some(id)
    }

    /// Sends a notification sent before again, unchanged (same message id),
    /// to the session that holds its subscription now.
    pub fn ws_resend(&self, message_id: &str) -> bool {
        let (session, text) = {
            let st = self.state.lock().unwrap();
            let Some((sub_id, text)) = st.ws.sent.get(message_id).cloned() else {
                return false;
            };
            let Some(session) = st
                .subs
                .iter()
                .find(|s| s["id"] == sub_id.as_str())
                .and_then(|s| s["transport"]["session_id"].as_str())
                .map(str::to_owned)
            else {
                return false;
            };
            (session, text)
        };
        self.send(&session, Cmd::Send(text))
    }

    /// The session stops sending anything (keepalives and pings too).
    pub fn ws_silence(&self, session: &str) -> bool {
        self.send(session, Cmd::Silence)
    }

    /// Sends `session_reconnect` with a URL that takes the session over.
    pub fn ws_reconnect(&self, session: &str) -> bool {
        let base = self.state.lock().unwrap().ws.base_url.clone().unwrap();
        let url = format!("{base}?reconnect={session}");
        let (_, text) = frame(
            "session_reconnect",
            json!({}),
            session_json(session, "reconnecting", None, Some(url)),
        );
        self.send(session, Cmd::Send(text))
    }

    /// Twitch closes the session with `code`.
    pub fn ws_close(&self, session: &str, code: u16) -> bool {
        self.send(session, Cmd::Close(code))
    }

    /// Revokes `login`'s enabled WebSocket subscription of `sub_type` with
    /// `reason` and sends the revocation; returns the subscription.
    pub fn ws_revoke(&self, login: &str, sub_type: &str, reason: &str) -> Option<Value> {
        let id = self.user_id(login);
        let (session, text, sub) = {
            let mut st = self.state.lock().unwrap();
            let sub = st.subs.iter_mut().find(|s| {
                s["type"] == sub_type
                    && s["status"] == "enabled"
                    && s["transport"]["method"] == "websocket"
                    && s["condition"]
                        .as_object()
                        .is_some_and(|o| o.values().any(|v| v == id.as_str()))
            })?;
            sub["status"] = json!(reason);
            let sub = sub.clone();
            let session = sub["transport"]["session_id"].as_str()?.to_owned();
            let (_, text) = frame(
                "revocation",
                json!({"subscription_type": sub_type, "subscription_version": sub["version"]}),
                json!({"subscription": sub}),
            );
            (session, text, sub)
        };
        self.send(&session, Cmd::Send(text)).then_some(sub)
    }
}

fn record_close(
    state: &std::sync::Mutex<super::fake_twitch::State>,
    session: &str,
    code: Option<u16>,
    by_server: bool,
) {
    let mut st = state.lock().unwrap();
    st.ws.closes.push(WsClose {
        session: session.to_owned(),
        code,
        by_server,
    });
}

/// One connection, from the handshake to its end.
#[expect(
    clippy::result_large_err,
    reason = "the handshake callback's signature is tungstenite's"
)]
async fn serve(
    state: std::sync::Arc<std::sync::Mutex<super::fake_twitch::State>>,
    stream: TcpStream,
) {
    let mut uri = String::new();
    let ws = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
        uri = req.uri().to_string();
        Ok(resp)
    })
    .await;
    let Ok(ws) = ws else {
        return;
    };
    let reconnect_from = uri
        .split_once("reconnect=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or("").to_owned());
    let (mut sink, mut incoming) = ws.split();
    let id = {
        let mut st = state.lock().unwrap();
        format!("fake-session-{}", st.next("s"))
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (keepalive, unused, ping_every) = {
        let mut st = state.lock().unwrap();
        st.ws.sessions.insert(
            id.clone(),
            Session {
                tx,
                open: true,
                welcomed: false,
                user: None,
                subscribed: false,
                reconnect_from: reconnect_from.clone(),
            },
        );
        (st.ws.keepalive_secs, st.ws.unused_timeout, st.ws.ping_every)
    };
    let (_, welcome) = frame(
        "session_welcome",
        json!({}),
        session_json(&id, "connected", Some(keepalive), None),
    );
    {
        let mut st = state.lock().unwrap();
        if let Some(s) = st.ws.sessions.get_mut(&id) {
            s.welcomed = true;
        }
        // A reconnect: the old session's subscriptions move here.
        if let Some(old) = &reconnect_from {
            let user = st.ws.sessions.get(old).and_then(|s| s.user.clone());
            for sub in st.subs.iter_mut() {
                if sub["transport"]["session_id"] == old.as_str() && sub["status"] == "enabled" {
                    sub["transport"]["session_id"] = json!(id);
                }
            }
            if let Some(s) = st.ws.sessions.get_mut(&id) {
                s.subscribed = true;
                s.user = user.clone();
            }
            if let Some(user) = user {
                st.ws.note_subscribed(&id, &user);
            }
        }
    }
    // Subscriptions moved before the welcome leaves, so that a client that
    // closes the old session on it loses none.
    if sink.send(Message::text(welcome)).await.is_err() {
        end(&state, &id, None, false);
        return;
    }
    let keepalive = Duration::from_secs(keepalive.max(1));
    let mut next_keepalive = tokio::time::Instant::now() + keepalive;
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    let unused_at = tokio::time::Instant::now() + unused;
    let mut awaiting_pong = false;
    let mut silent = false;
    let close = |code: u16| {
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        }))
    };
    let subscribed = |state: &std::sync::Mutex<super::fake_twitch::State>| {
        state
            .lock()
            .unwrap()
            .ws
            .sessions
            .get(&id)
            .is_some_and(|s| s.subscribed)
    };
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(text)) => {
                    next_keepalive = tokio::time::Instant::now() + keepalive;
                    if sink.send(Message::text(text)).await.is_err() {
                        end(&state, &id, None, false);
                        return;
                    }
                }
                Some(Cmd::Close(code)) => {
                    let _ = sink.send(close(code)).await;
                    end(&state, &id, Some(code), true);
                    return;
                }
                Some(Cmd::Silence) => silent = true,
                None => return,
            },
            () = tokio::time::sleep_until(next_keepalive), if !silent => {
                next_keepalive = tokio::time::Instant::now() + keepalive;
                let (_, text) = frame("session_keepalive", json!({}), json!({}));
                if sink.send(Message::text(text)).await.is_err() {
                    end(&state, &id, None, false);
                    return;
                }
            }
            () = tokio::time::sleep_until(next_ping), if !silent => {
                next_ping = tokio::time::Instant::now() + ping_every;
                if awaiting_pong {
                    let _ = sink.send(close(4002)).await;
                    end(&state, &id, Some(4002), true);
                    return;
                }
                awaiting_pong = true;
                if sink.send(Message::Ping(b"ping".to_vec().into())).await.is_err() {
                    end(&state, &id, None, false);
                    return;
                }
            }
            () = tokio::time::sleep_until(unused_at), if !subscribed(&state) => {
                if !subscribed(&state) {
                    let _ = sink.send(close(4003)).await;
                    end(&state, &id, Some(4003), true);
                    return;
                }
            }
            msg = incoming.next() => match msg {
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code));
                    let _ = sink.send(Message::Close(None)).await;
                    end(&state, &id, code, false);
                    return;
                }
                Some(Ok(_)) => {
                    // TWITCH.md §12: a client may only send pongs.
                    let _ = sink.send(close(4001)).await;
                    end(&state, &id, Some(4001), true);
                    return;
                }
                Some(Err(_)) | None => {
                    end(&state, &id, None, false);
                    return;
                }
            },
        }
    }
}

/// A session ended: its subscriptions are disabled (TWITCH.md §12).
fn end(
    state: &std::sync::Mutex<super::fake_twitch::State>,
    id: &str,
    code: Option<u16>,
    by_server: bool,
) {
    {
        let mut st = state.lock().unwrap();
        if let Some(s) = st.ws.sessions.get_mut(id) {
            s.open = false;
        }
        for sub in st.subs.iter_mut() {
            if sub["transport"]["session_id"] == id && sub["status"] == "enabled" {
                sub["status"] = json!("websocket_disconnected");
            }
        }
    }
    record_close(state, id, code, by_server);
}
