//! One WebSocket connection's task, on the socket itself once the upgrade
//! handed it over (`ws::upgrade`): client frames in, the rest of the outbox
//! written when a full socket drains (otherwise the worker's flusher
//! writes), server pings, the idle timeout, and the closes of SPEC §5 (1001
//! shutdown, 1008 idle, 1009 oversize, 4008 overflow).

use std::io;
use std::sync::Arc;
use std::time::Instant;

use actix_http::ws::{CloseCode, CloseReason, OpCode};
use actix_web::rt::net::TcpStream;
use actix_web::web::Data;
use bytes::BytesMut;
use tokio::io::{Interest, Ready};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Duration, sleep_until, timeout};

use crate::broker::{Broker, Subscriber};
use crate::domain::User;
use crate::state::AppState;

use super::conn::{Conn, Flushed, GoLive};
use super::flusher::Flusher;
use super::protocol::{ClientOp, ProtocolError, ServerOp};
use super::rate::RateLimiter;
use super::reader::{FrameReader, Incoming, ReadError};

/// Close code for a viewer that could not keep up (SPEC §5).
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// How long a close may wait behind queued frames, and then for the
/// viewer's own close, before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the viewer to answer our close before dropping.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What `/ws` hands to the socket's task after a successful handshake.
pub struct Handoff {
    /// The shared state.
    pub state: Data<AppState>,
    /// Who signed in.
    pub user: User,
    /// The connection's `MAX_CONNECTIONS` slot.
    pub permit: OwnedSemaphorePermit,
}

/// The channels of one connection; dropping it leaves them all, so a
/// connection that ends any way at all leaves no subscriber behind.
struct Subscriptions {
    broker: Arc<Broker>,
    conn: Arc<Conn>,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.conn.close();
        for channel in self.conn.channels() {
            self.broker.unsubscribe(&channel, self.conn.id());
        }
    }
}

/// Counts a connection in the gauge for as long as it lives.
struct ConnectionGauge(prometheus::IntGauge);

impl ConnectionGauge {
    fn new(g: &prometheus::IntGauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What woke the connection.
enum Wake {
    Shutdown,
    Io(io::Result<Ready>),
    Signalled,
    Timer,
}

/// How a connection ends.
struct Ending {
    code: CloseCode,
    description: &'static str,
    /// Drop what is still queued (an overflowed viewer resumes with `since`).
    drop_pending: bool,
}

impl Ending {
    fn new(code: CloseCode, description: &'static str) -> Self {
        Self {
            code,
            description,
            drop_pending: false,
        }
    }
}

/// Reads once; `Ok(false)` at the end of the stream.
fn read(io: &TcpStream, reader: &mut FrameReader) -> io::Result<bool> {
    match io.try_read_buf(reader.buf_for_read()) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

/// Queues the close frame, writes everything out, then waits briefly for
/// the viewer to close its side (dropping a socket with unread bytes would
/// reset it, and the viewer could miss the close frame).
async fn close(conn: &Conn, io: &TcpStream, ending: Ending) {
    let reason = CloseReason {
        code: ending.code,
        description: Some(ending.description.to_owned()),
    };
    conn.push_close(reason, ending.drop_pending);
    let written = timeout(CLOSE_TIMEOUT, async {
        loop {
            match conn.flush() {
                Flushed::Done => return true,
                Flushed::Blocked => {
                    if io.writable().await.is_err() {
                        return false;
                    }
                }
                Flushed::Failed => return false,
            }
        }
    })
    .await;
    if written != Ok(true) {
        return;
    }
    let _ = socket2::SockRef::from(io).shutdown(std::net::Shutdown::Write);
    let _ = timeout(CLOSE_LINGER, async {
        let mut sink = [0u8; 1024];
        loop {
            if io.readable().await.is_err() {
                return;
            }
            match io.try_read(&mut sink) {
                Ok(0) => return,
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return,
                _ => {}
            }
        }
    })
    .await;
}

/// Runs a connection until it closes.
pub async fn run(handoff: Handoff, io: TcpStream, early: BytesMut) {
    let Handoff {
        state,
        user,
        permit,
    } = handoff;
    let _permit = permit;
    let _gauge = ConnectionGauge::new(&state.metrics.connections);
    // Borrowed, not cloned: everything held across an await is part of
    // every connection's task.
    let limits = &state.settings.limits;
    // Room for a full replay on top of the live queue.
    let max_frames = limits.outbound_queue + limits.history_len.get() + 16;
    let conn = Conn::new(
        state.next_conn_id(),
        max_frames,
        state.metrics.slow_consumers.clone(),
        Some((io, Flusher::local())),
    );
    let Some(io) = conn.io() else { return };
    let subs = Subscriptions {
        broker: state.broker.clone(),
        conn: conn.clone(),
    };
    let mut reader = FrameReader::new(early, limits.max_frame_bytes);
    let mut rate = RateLimiter::new(limits.rate_limit_frames, limits.rate_window);
    // One timer for both the next ping and the idle deadline.
    let mut next_ping = Instant::now() + limits.ping_interval;
    let mut idle_at = Instant::now() + limits.idle_timeout;
    let timer = sleep_until(next_ping.min(idle_at).into());
    tokio::pin!(timer);
    let shutdown = state.shutdown.cancelled();
    tokio::pin!(shutdown);

    let _ = conn.push_text(&ServerOp::Welcome { user: &user }.to_json());
    drop(user);
    // Frames that came in the same packet as the upgrade request.
    let mut early = if reader.has_buffered() {
        match Box::pin(read_messages(&state, &conn, &mut reader, &mut rate)).await {
            Reading::End(ending) => Some(ending),
            Reading::Quiet | Reading::Heard => None,
        }
    } else {
        None
    };

    let ending = loop {
        if let Some(ending) = early.take() {
            break ending;
        }
        if conn.failed() {
            return;
        }
        if conn.overflowed() {
            tracing::info!(conn = conn.id(), "slow consumer closed");
            break Ending {
                drop_pending: true,
                ..Ending::new(
                    CloseCode::Other(CLOSE_SLOW_CONSUMER),
                    "slow consumer: reconnect with since",
                )
            };
        }
        // One readiness wait for both directions (each wait is 150 bytes of
        // every connection's task); writable only matters while blocked.
        let interest = if conn.blocked() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let wake = tokio::select! {
            biased;
            () = &mut shutdown => Wake::Shutdown,
            r = io.ready(interest) => Wake::Io(r),
            () = conn.notified() => Wake::Signalled,
            () = &mut timer => Wake::Timer,
        };
        match wake {
            Wake::Shutdown => break Ending::new(CloseCode::Away, "server shutting down"),
            Wake::Timer => {
                let now = Instant::now();
                if now >= idle_at {
                    break Ending::new(CloseCode::Policy, "idle timeout");
                }
                if now >= next_ping {
                    conn.push_control(OpCode::Ping, b"");
                    next_ping = now + limits.ping_interval;
                }
                timer.as_mut().reset(next_ping.min(idle_at).into());
            }
            Wake::Signalled => {}
            Wake::Io(Err(_)) => return,
            Wake::Io(Ok(ready)) => {
                if ready.is_writable() && conn.blocked() {
                    // The socket drained: write the rest here (the flusher
                    // skips a blocked connection).
                    let _ = conn.flush();
                }
                if !(ready.is_readable() || ready.is_read_closed()) {
                    continue;
                }
                match read(io, &mut reader) {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return,
                }
                // Boxed: reading is rare and its future is large; the
                // connection's own future stays small.
                match Box::pin(read_messages(&state, &conn, &mut reader, &mut rate)).await {
                    Reading::Quiet => {}
                    Reading::Heard => {
                        idle_at = Instant::now() + limits.idle_timeout;
                        timer.as_mut().reset(next_ping.min(idle_at).into());
                    }
                    Reading::End(ending) => break ending,
                }
            }
        }
    };
    Box::pin(close(&conn, io, ending)).await;
    drop(subs);
}

/// What reading the buffered client frames came to.
enum Reading {
    /// No whole message yet.
    Quiet,
    /// At least one message was handled.
    Heard,
    /// The connection must close.
    End(Ending),
}

async fn read_messages(
    state: &AppState,
    conn: &Arc<Conn>,
    reader: &mut FrameReader,
    rate: &mut RateLimiter,
) -> Reading {
    let limit = state.settings.limits.rate_limit_frames;
    let mut heard = false;
    loop {
        let message = match reader.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => {
                return if heard {
                    Reading::Heard
                } else {
                    Reading::Quiet
                };
            }
            // SPEC §7.3: a payload over the limit closes with 1009.
            Err(ReadError::TooBig) => {
                return Reading::End(Ending::new(CloseCode::Size, "message too big"));
            }
            Err(ReadError::Protocol(e)) => {
                tracing::debug!(error = %e, "protocol error");
                return Reading::End(Ending::new(CloseCode::Protocol, "protocol error"));
            }
        };
        heard = true;
        match message {
            Incoming::Text(bytes) => {
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    return Reading::End(Ending::new(CloseCode::Invalid, "text is not UTF-8"));
                };
                let reply = if rate.allow(Instant::now()) {
                    // Boxed: a subscribe's future is large and short-lived.
                    Box::pin(handle_op(state, conn, text)).await
                } else {
                    Err(ProtocolError::RateLimited(limit))
                };
                if let Err(e) = reply {
                    // On overflow the loop closes with 4008.
                    let _ = conn.push_text(&e.to_frame());
                }
            }
            Incoming::Binary => {
                let e = if rate.allow(Instant::now()) {
                    ProtocolError::BadJson("binary frames are not supported: send JSON text".into())
                } else {
                    ProtocolError::RateLimited(limit)
                };
                let _ = conn.push_text(&e.to_frame());
            }
            Incoming::Ping(bytes) => conn.push_control(OpCode::Pong, &bytes),
            Incoming::Pong => {}
            Incoming::Close => return Reading::End(Ending::new(CloseCode::Normal, "bye")),
        }
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
                // On overflow the loop closes with 4008.
                GoLive::Queued | GoLive::Overflow => {}
                GoLive::Gone => state.broker.unsubscribe(&channel, conn.id()),
            }
        }
    }
    Ok(())
}
