//! One WebSocket connection's loop (actorless actix-ws): client frames in,
//! the connection's bounded queue drained into its `Outbox`, server pings,
//! the idle timeout, and the two closing cases of SPEC §5 (1009 oversize,
//! 4008 overflow).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Duration, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, ConnId, Subscriber};
use crate::domain::{ChannelName, Envelope, MessageId, User};
use crate::metrics::Metrics;
use crate::state::AppState;

use super::outbox::Outbox;
use super::protocol::{ClientOp, ProtocolError, ServerOp};
use super::rate::RateLimiter;

/// Most queued messages moved to the outbox per wake-up before other work
/// gets a turn.
const MAX_BATCH: usize = 256;
/// Close code for a viewer that could not keep up (SPEC §5).
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// How long a close may wait behind queued frames before the connection is
/// simply dropped (a stalled reader never drains them).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The channels of one connection; dropping it leaves them all, so a
/// connection that ends any way at all leaves no subscriber behind.
struct Subscriptions {
    broker: Arc<Broker>,
    conn: ConnId,
    /// channel → the last replayed id (live messages up to it are duplicates).
    channels: HashMap<ChannelName, Option<MessageId>>,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for channel in self.channels.keys() {
            self.broker.unsubscribe(channel, self.conn);
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

enum Flow {
    Continue,
    Stop,
}

/// Queues a frame; a full outbox means the viewer cannot keep up (counted
/// here; the hub counts the overflows of the queue in front of it).
fn send(outbox: &Outbox, text: &str, overflow: &CancellationToken, metrics: &Metrics) -> Flow {
    if overflow.is_cancelled() {
        return Flow::Stop;
    }
    if outbox.push_text(text.as_bytes()).is_err() {
        metrics.slow_consumers.inc();
        overflow.cancel();
        return Flow::Stop;
    }
    Flow::Continue
}

async fn close(session: Session, code: CloseCode, description: &str) {
    let reason = CloseReason {
        code,
        description: Some(description.to_owned()),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.close(Some(reason))).await;
}

/// Runs a connection until it closes. `permit` holds its `MAX_CONNECTIONS` slot.
#[tracing::instrument(skip_all, fields(user = %user.login))]
pub async fn run(
    state: actix_web::web::Data<AppState>,
    user: User,
    mut session: Session,
    mut stream: AggregatedMessageStream,
    outbox: Arc<Outbox>,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    let _gauge = ConnectionGauge::new(&state.metrics.connections);
    let limits = state.settings.limits.clone();
    let conn = state.next_conn_id();
    let (tx, mut rx) = mpsc::channel::<Envelope>(limits.outbound_queue);
    let overflow = CancellationToken::new();
    let mut subs = Subscriptions {
        broker: state.broker.clone(),
        conn,
        channels: HashMap::new(),
    };
    let mut rate = RateLimiter::new(limits.rate_limit_frames, limits.rate_window);
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.tick().await;
    let idle = sleep_until((Instant::now() + limits.idle_timeout).into());
    tokio::pin!(idle);

    if let Flow::Stop = send(
        &outbox,
        &ServerOp::Welcome { user: &user }.to_json(),
        &overflow,
        &state.metrics,
    ) {
        return;
    }

    loop {
        tokio::select! {
            biased;
            () = state.shutdown.cancelled() => {
                close(session, CloseCode::Away, "server shutting down").await;
                return;
            }
            () = overflow.cancelled() => {
                tracing::info!("slow consumer closed");
                // What is still queued is dropped: the viewer resumes with `since`.
                outbox.clear();
                close(session, CloseCode::Other(CLOSE_SLOW_CONSUMER), "slow consumer: reconnect with since").await;
                return;
            }
            msg = stream.recv() => {
                let Some(msg) = msg else { return };
                idle.as_mut().reset((Instant::now() + limits.idle_timeout).into());
                match msg {
                    Ok(AggregatedMessage::Text(text)) => {
                        let reply = if rate.allow(Instant::now()) {
                            handle_op(&state, &mut subs, &tx, &overflow, &text, &outbox).await
                        } else {
                            Err(ProtocolError::RateLimited(limits.rate_limit_frames))
                        };
                        if let Err(e) = reply {
                            // On overflow the next turn of the loop closes with 4008.
                            let _ = send(&outbox, &e.to_frame(), &overflow, &state.metrics);
                        }
                    }
                    Ok(AggregatedMessage::Binary(_)) => {
                        let e = if rate.allow(Instant::now()) {
                            ProtocolError::BadJson("binary frames are not supported: send JSON text".into())
                        } else {
                            ProtocolError::RateLimited(limits.rate_limit_frames)
                        };
                        let _ = send(&outbox, &e.to_frame(), &overflow, &state.metrics);
                    }
                    Ok(AggregatedMessage::Ping(bytes)) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Ok(AggregatedMessage::Pong(_)) => {}
                    Ok(AggregatedMessage::Close(_)) => {
                        close(session, CloseCode::Normal, "bye").await;
                        return;
                    }
                    Err(e) => {
                        // SPEC §7.3: a payload over the limit closes with 1009.
                        let oversize = matches!(e, actix_ws::ProtocolError::Overflow)
                            || e.to_string().contains("maximum continuation size");
                        if oversize {
                            close(session, CloseCode::Size, "message too big").await;
                        } else {
                            tracing::debug!(error = %e, "protocol error");
                            close(session, CloseCode::Protocol, "protocol error").await;
                        }
                        return;
                    }
                }
            }
            Some(env) = rx.recv() => {
                // Drain what is already queued in one go: one wake-up writes a
                // batch, and the frames coalesce into fewer socket writes.
                let mut next = Some(env);
                let mut batch = 0;
                while let Some(env) = next.take() {
                    // Skip messages of channels left since, and duplicates of a replay.
                    let wanted = match subs.channels.get(env.channel()) {
                        Some(Some(after)) => env.id() > *after,
                        Some(None) => true,
                        None => false,
                    };
                    if wanted {
                        if let Flow::Stop = send(&outbox, env.frame(), &overflow, &state.metrics) {
                            // The next turn of the loop closes with 4008.
                            break;
                        }
                    }
                    batch += 1;
                    if batch < MAX_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
            }
            _ = ping.tick() => {
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
            () = &mut idle => {
                close(session, CloseCode::Policy, "idle timeout").await;
                return;
            }
        }
    }
}

async fn handle_op(
    state: &AppState,
    subs: &mut Subscriptions,
    tx: &mpsc::Sender<Envelope>,
    overflow: &CancellationToken,
    text: &str,
    outbox: &Outbox,
) -> Result<(), ProtocolError> {
    match ClientOp::parse(text)? {
        ClientOp::Ping => {
            let _ = send(outbox, &ServerOp::Pong.to_json(), overflow, &state.metrics);
        }
        ClientOp::Unsubscribe { channel } => {
            if subs.channels.remove(&channel).is_some() {
                state.broker.unsubscribe(&channel, subs.conn);
            }
            let frame = ServerOp::Unsubscribed {
                channel: channel.as_str(),
            }
            .to_json();
            let _ = send(outbox, &frame, overflow, &state.metrics);
        }
        ClientOp::Subscribe { channel, since } => {
            let max = state.settings.limits.max_channels_per_connection;
            if !subs.channels.contains_key(&channel) && subs.channels.len() >= max {
                return Err(ProtocolError::TooManyChannels(max));
            }
            let sub = Subscriber::new(subs.conn, tx.clone(), overflow.clone());
            let replay = match state.broker.subscribe(&channel, since, sub).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, channel = %channel, "subscribe failed");
                    // Registered or not, a failed replay must not go live silently.
                    state.broker.unsubscribe(&channel, subs.conn);
                    subs.channels.remove(&channel);
                    let frame = ServerOp::Error {
                        code: "unavailable",
                        message: "history is unavailable right now; retry shortly".into(),
                    }
                    .to_json();
                    let _ = send(outbox, &frame, overflow, &state.metrics);
                    return Ok(());
                }
            };
            // Live messages up to the last replayed id are duplicates; with no
            // replay and no gap, `since` itself is the floor.
            let floor = replay.last_id().or(if replay.gap { None } else { since });
            subs.channels.insert(channel.clone(), floor);
            let head = ServerOp::Subscribed {
                channel: channel.as_str(),
                replayed: replay.messages.len(),
                gap: since.is_some() && replay.gap,
            }
            .to_json();
            if let Flow::Stop = send(outbox, &head, overflow, &state.metrics) {
                return Ok(());
            }
            for env in &replay.messages {
                if let Flow::Stop = send(outbox, env.frame(), overflow, &state.metrics) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}
