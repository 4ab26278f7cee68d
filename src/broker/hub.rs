//! Local fan-out: for each channel, the viewers on this instance and (in
//! memory mode) the retained history. Both brokers deliver through it, so a
//! published message reaches each local viewer as one non-blocking `offer`
//! to its inbox (a WebSocket's outbox, an SSE stream's queue) — the
//! publisher never waits on a viewer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::{ChannelName, Envelope, MessageId};
use crate::metrics::Metrics;

/// Identifies one viewer connection.
pub type ConnId = u64;

/// What became of one message offered to a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued for the viewer.
    Taken,
    /// Not for this viewer (a channel it is leaving, a duplicate of its replay).
    Skipped,
    /// The viewer cannot keep up: it is closed (WebSocket 4008, SSE ends)
    /// and dropped here. The inbox counts it in `slow_consumers`.
    Overflow,
    /// The viewer is gone: dropped here.
    Closed,
}

/// A viewer connection's inbox, as the hub sees it: it takes a message
/// without waiting, or says why not.
pub trait Inbox: Send + Sync + std::fmt::Debug {
    /// Offers `env` (a message of one of the viewer's channels).
    fn offer(&self, env: &Envelope) -> Offer;
}

/// One viewer connection on one channel.
#[derive(Debug, Clone)]
pub struct Subscriber {
    conn: ConnId,
    inbox: Arc<dyn Inbox>,
}

impl Subscriber {
    /// A subscriber delivering into `inbox`.
    pub fn new(conn: ConnId, inbox: Arc<dyn Inbox>) -> Self {
        Self { conn, inbox }
    }

    /// A subscriber feeding the bounded queue `tx`; a full queue cancels
    /// `overflow` and counts in `slow`.
    pub fn queue(
        conn: ConnId,
        tx: mpsc::Sender<Envelope>,
        overflow: CancellationToken,
        slow: IntCounter,
    ) -> Self {
        Self::new(conn, Arc::new(QueueInbox { tx, overflow, slow }))
    }
}

/// A bounded queue read by its own task (Server-Sent Events).
#[derive(Debug)]
struct QueueInbox {
    tx: mpsc::Sender<Envelope>,
    /// Cancelled when the queue overflowed; the stream then ends.
    overflow: CancellationToken,
    slow: IntCounter,
}

impl Inbox for QueueInbox {
    fn offer(&self, env: &Envelope) -> Offer {
        match self.tx.try_send(env.clone()) {
            Ok(()) => Offer::Taken,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.cancel();
                self.slow.inc();
                Offer::Overflow
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }
}

/// One channel's local state. Lock order: the hub's map, then a channel.
#[derive(Debug, Default)]
pub struct ChannelState {
    /// Local viewers.
    pub subscribers: Vec<Subscriber>,
    /// Retained messages, oldest first (memory mode only).
    pub history: VecDeque<Envelope>,
    /// The last id given out on this channel (memory mode only).
    pub last_id: Option<MessageId>,
}

impl ChannelState {
    /// Hands `env` to every local viewer; overflowing viewers are cancelled
    /// and dropped, closed ones are dropped. Returns the deliveries made.
    pub fn deliver(&mut self, env: &Envelope, metrics: &Metrics) -> usize {
        let mut delivered = 0;
        let mut dropped = 0;
        self.subscribers.retain(|sub| match sub.inbox.offer(env) {
            Offer::Taken => {
                delivered += 1;
                true
            }
            Offer::Skipped => true,
            Offer::Overflow | Offer::Closed => {
                dropped += 1;
                false
            }
        });
        metrics.deliveries.inc_by(delivered as u64);
        metrics.channel_subscriptions.sub(dropped);
        delivered
    }

    /// Adds a viewer (replacing an older entry of the same connection).
    pub fn add(&mut self, sub: Subscriber, metrics: &Metrics) {
        if let Some(existing) = self.subscribers.iter_mut().find(|s| s.conn == sub.conn) {
            *existing = sub;
        } else {
            self.subscribers.push(sub);
            metrics.channel_subscriptions.inc();
        }
    }
}

/// Every channel with local state.
#[derive(Debug, Default)]
pub struct Hub {
    channels: RwLock<HashMap<ChannelName, Arc<Mutex<ChannelState>>>>,
}

impl Hub {
    /// The state of `channel`, created on first use.
    pub fn channel(&self, channel: &ChannelName) -> Arc<Mutex<ChannelState>> {
        if let Some(state) = self.channels.read().get(channel) {
            return state.clone();
        }
        self.channels
            .write()
            .entry(channel.clone())
            .or_default()
            .clone()
    }

    /// The state of `channel` if it exists.
    pub fn existing(&self, channel: &ChannelName) -> Option<Arc<Mutex<ChannelState>>> {
        self.channels.read().get(channel).cloned()
    }

    /// Removes `conn` from `channel`. Returns true when the channel has no
    /// local viewer left (Redis mode then drops its subscription).
    pub fn remove(
        &self,
        channel: &ChannelName,
        conn: ConnId,
        keep_empty: bool,
        metrics: &Metrics,
    ) -> bool {
        let Some(state) = self.existing(channel) else {
            return true;
        };
        let empty = {
            let mut st = state.lock();
            let before = st.subscribers.len();
            st.subscribers.retain(|s| s.conn != conn);
            if st.subscribers.len() < before {
                metrics.channel_subscriptions.dec();
            }
            st.subscribers.is_empty()
        };
        if empty && !keep_empty {
            let mut map = self.channels.write();
            if let Some(state) = map.get(channel) {
                if state.lock().subscribers.is_empty() {
                    map.remove(channel);
                }
            }
        }
        empty
    }

    /// The channels that have at least one local viewer.
    pub fn active_channels(&self) -> Vec<ChannelName> {
        self.channels
            .read()
            .iter()
            .filter(|(_, st)| !st.lock().subscribers.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }
}
