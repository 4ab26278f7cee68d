//! `GET /api/channels/{name}/events`: Server-Sent Events. The same broker
//! subscription as a WebSocket viewer (bounded queue, replay, overflow ends
//! the stream), written as `id:` / `event:` / `data:` records.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, ConnId, Replay};
use crate::domain::{ChannelName, Envelope, MessageId};

/// Leaves the channel and frees the connection slot when the stream drops.
struct SseGuard {
    broker: Arc<Broker>,
    channel: ChannelName,
    conn: ConnId,
    _permit: OwnedSemaphorePermit,
    gauge: prometheus::IntGauge,
}

impl Drop for SseGuard {
    fn drop(&mut self) {
        self.broker.unsubscribe(&self.channel, self.conn);
        self.gauge.dec();
    }
}

/// Everything one SSE stream owns.
pub struct SseStream {
    /// Replayed messages not yet written, oldest first.
    replay: std::vec::IntoIter<Envelope>,
    /// Live messages up to this id duplicate the replay.
    after: Option<MessageId>,
    rx: mpsc::Receiver<Envelope>,
    overflow: CancellationToken,
    shutdown: CancellationToken,
    keepalive: Duration,
    /// Held for its `Drop`: leaves the channel and frees the slot.
    _guard: SseGuard,
}

impl SseStream {
    /// A stream for a registered subscription.
    #[expect(clippy::too_many_arguments, reason = "one constructor, called once")]
    pub fn new(
        broker: Arc<Broker>,
        channel: ChannelName,
        conn: ConnId,
        replay: Replay,
        rx: mpsc::Receiver<Envelope>,
        overflow: CancellationToken,
        shutdown: CancellationToken,
        keepalive: Duration,
        permit: OwnedSemaphorePermit,
        gauge: prometheus::IntGauge,
    ) -> Self {
        gauge.inc();
        let after = replay.last_id();
        Self {
            replay: replay.messages.into_iter(),
            after,
            rx,
            overflow,
            shutdown,
            keepalive,
            _guard: SseGuard {
                broker,
                channel,
                conn,
                _permit: permit,
                gauge,
            },
        }
    }

    /// The response body: replay, then live records and keep-alive comments.
    pub fn into_body(self) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> {
        futures_util::stream::unfold(self, |mut s| async move {
            if let Some(env) = s.replay.next() {
                return Some((Ok(record(&env)), s));
            }
            loop {
                let keepalive = tokio::time::sleep(s.keepalive);
                tokio::select! {
                    biased;
                    () = s.shutdown.cancelled() => return None,
                    () = s.overflow.cancelled() => return None,
                    env = s.rx.recv() => {
                        let env = env?;
                        if s.after.is_some_and(|after| env.id() <= after) {
                            continue;
                        }
                        return Some((Ok(record(&env)), s));
                    }
                    () = keepalive => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s)),
                }
            }
        })
    }
}

fn record(env: &Envelope) -> Bytes {
    let json: &str = env.json();
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        env.id(),
        env.event_type(),
        json
    ))
}
