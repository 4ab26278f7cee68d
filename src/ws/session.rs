//! One WebSocket connection's task, on the socket itself once the upgrade
//! handed it over (`ws::upgrade`), whatever protocol it speaks: client
//! frames in (RFC 6455 framing by `reader`, the rate limit of SPEC §7.2),
//! the rest of the outbox written when a full socket drains (otherwise the
//! worker's flusher writes), server pings, the idle timeout, and the
//! closes of SPEC §7.18 (1001 shutdown, 1002 a frame RFC 6455 forbids,
//! 1003 binary, 1007 not UTF-8, 1008 idle, 1009 oversize, 4008 overflow,
//! the client's own close code echoed, and whatever a protocol ends a
//! connection with). What the text frames mean is the connection's
//! [`Protocol`]: the viewer protocol of `/ws` (`ws::viewer`), the alert
//! overlay's, a room's.

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

use crate::state::AppState;

use super::conn::{Conn, Flushed};
use super::rate::RateLimiter;
use super::reader::{FrameReader, Incoming};

/// Close code for a viewer that could not keep up (SPEC §5).
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// How long a close may wait behind queued frames, and then for the
/// viewer's own close, before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the viewer to answer our close before dropping.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What a WebSocket connection speaks on top of the transport: its first
/// frames, and what each client text message does. A protocol pushes its
/// replies and error frames into the connection's outbox itself, and
/// leaves whatever it joined (channels, a room, an overlay list) when it is
/// dropped, which happens however the connection ends.
pub trait Protocol: 'static {
    /// Queues the first frames (a welcome); called once, before any read.
    fn open(&mut self, state: &AppState, conn: &Arc<Conn>);

    /// Handles one client text message (valid UTF-8, within the rate limit).
    fn text(&mut self, state: &AppState, conn: &Arc<Conn>, text: &str) -> impl Future<Output = ()>;

    /// The error frame for a message over the rate limit of `limit` a window.
    fn rate_limited(&self, limit: usize) -> String;
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

/// Marks the connection closed however its task ends, so that nothing is
/// queued for it any more.
struct Closed<'a>(&'a Conn);

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.0.close();
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

/// Runs a connection speaking `protocol` until it closes.
pub async fn run<P: Protocol>(
    state: Data<AppState>,
    permit: OwnedSemaphorePermit,
    mut protocol: P,
    io: TcpStream,
    early: BytesMut,
) {
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
        Some((io, state.flushers.local())),
    );
    let Some(io) = conn.io() else { return };
    let closed = Closed(&conn);
    let mut reader = FrameReader::new(early, limits.max_frame_bytes);
    let mut rate = RateLimiter::default();
    // One timer for both the next ping and the idle deadline.
    let mut next_ping = Instant::now() + limits.ping_interval;
    let mut idle_at = Instant::now() + limits.idle_timeout;
    let timer = sleep_until(next_ping.min(idle_at).into());
    tokio::pin!(timer);
    let shutdown = state.shutdown.cancelled();
    tokio::pin!(shutdown);

    protocol.open(&state, &conn);
    // Frames that came in the same packet as the upgrade request. Not
    // kept past the loop's start: every variable that lives across the
    // loop's waits is part of every connection's task.
    let early = if reader.has_buffered() {
        match Box::pin(read_messages(
            &state,
            &conn,
            &mut protocol,
            &mut reader,
            &mut rate,
        ))
        .await
        {
            Reading::End(ending) => Some(ending),
            Reading::Quiet | Reading::Heard => None,
        }
    } else {
        None
    };

    let ending = if let Some(ending) = early {
        ending
    } else {
        loop {
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
            if let Some((code, description)) = conn.ended() {
                break Ending::new(CloseCode::Other(code), description);
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
                    match Box::pin(read_messages(
                        &state,
                        &conn,
                        &mut protocol,
                        &mut reader,
                        &mut rate,
                    ))
                    .await
                    {
                        Reading::Quiet => {}
                        Reading::Heard => {
                            idle_at = Instant::now() + limits.idle_timeout;
                            timer.as_mut().reset(next_ping.min(idle_at).into());
                        }
                        Reading::End(ending) => break ending,
                    }
                }
            }
        }
    };
    Box::pin(close(&conn, io, ending)).await;
    drop(closed);
    drop(protocol);
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

async fn read_messages<P: Protocol>(
    state: &AppState,
    conn: &Arc<Conn>,
    protocol: &mut P,
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
            // SPEC §7.3, §7.18: 1009 for a payload over the limit, 1007
            // for text that is not UTF-8, 1002 for a frame RFC 6455 forbids.
            Err(e) => {
                tracing::debug!(error = %e, "client frame refused");
                return Reading::End(Ending::new(CloseCode::from(e.close_code()), e.reason()));
            }
        };
        heard = true;
        match message {
            Incoming::Text(text) => {
                let window = state.settings.limits.rate_window;
                if rate.allow(Instant::now(), limit, window) {
                    // Boxed: an op's future may be large and is short-lived.
                    Box::pin(protocol.text(state, conn, &text)).await;
                } else {
                    // On overflow the loop closes with 4008.
                    let _ = conn.push_text(&protocol.rate_limited(limit));
                }
            }
            Incoming::Ping(bytes) => conn.push_control(OpCode::Pong, &bytes),
            Incoming::Pong => {}
            // RFC 6455 §5.5.1: echo the client's code (1000 when it sent none).
            Incoming::Close(code) => {
                let code = code.map_or(CloseCode::Normal, CloseCode::from);
                return Reading::End(Ending::new(code, ""));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::broker::{Broker, MemoryBroker};
    use crate::cli::ServeArgs;
    use crate::config::Settings;
    use crate::domain::User;
    use crate::metrics::Metrics;
    use crate::ws::viewer::Viewer;

    /// Every viewer's task holds this future for as long as it is
    /// connected: it is most of an idle connection's memory (issue 14:
    /// at most 2,000 bytes per idle subscribed viewer in all).
    #[tokio::test]
    async fn a_viewer_connection_task_stays_small() {
        let settings = Arc::new(Settings::from_args(ServeArgs::default()).unwrap());
        let metrics = Metrics::new();
        let broker = Arc::new(Broker::Memory(MemoryBroker::new(10, 10, metrics.clone())));
        let state = Data::new(AppState::new(
            settings,
            broker,
            metrics,
            CancellationToken::new(),
        ));
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let io = TcpStream::from_std(server).unwrap();
        let user = User {
            id: "local:viewer".into(),
            login: "viewer".into(),
            display_name: "viewer".into(),
        };
        let task = run(state, permit, Viewer::new(user), io, BytesMut::new());
        let size = std::mem::size_of_val(&task);
        eprintln!("viewer connection future: {size} bytes");
        assert!(size <= 832, "the connection future grew to {size} bytes");
        drop(task);
        drop(client);
    }
}
