//! The broker: publish (also idempotently, under a key), subscribe with
//! replay, history, and claims for webhook ids and idempotency keys
//! (`claim`). An enum over its two implementations (memory, Redis) so
//! handlers stay free of `dyn` and one behaviour suite runs against both.

pub mod claim;
pub mod dedupe;
pub mod hub;
pub mod memory;
pub mod redis;
pub mod topics;

use std::time::Duration;

use crate::domain::{ChannelName, Envelope, MessageDraft, MessageId};

pub use self::redis::RedisBroker;
use claim::Lease;
pub use claim::{Attempt, Claim};
use dedupe::ClaimState;
pub use hub::{ConnId, Inbox, Offer, Subscriber};
pub use memory::MemoryBroker;
pub use topics::{TopicListener, TopicWatch};

/// Why the broker could not do what was asked. Never a client's fault.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The backing store cannot be reached.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// A call took longer than its timeout.
    #[error("broker call timed out")]
    Timeout,
    /// Stored data could not be read back.
    #[error("broker data is corrupt: {0}")]
    Corrupt(String),
}

/// What a subscribe replays before going live.
#[derive(Debug, Default)]
pub struct Replay {
    /// Retained messages after `since`, oldest first.
    pub messages: Vec<Envelope>,
    /// True when messages may be missing between `since` and the replay
    /// (SPEC §5): the `since` message itself is no longer retained.
    pub gap: bool,
}

impl Replay {
    /// The last replayed id: live messages up to it are duplicates.
    pub fn last_id(&self) -> Option<MessageId> {
        self.messages.last().map(Envelope::id)
    }
}

/// Builds a replay from retained messages (oldest first).
pub(crate) fn replay_after(
    retained: impl Iterator<Item = Envelope>,
    since: MessageId,
    limit: usize,
) -> Replay {
    let mut found = false;
    let mut messages = Vec::new();
    for env in retained {
        if env.id() == since {
            found = true;
        } else if env.id() > since && messages.len() < limit {
            messages.push(env);
        }
    }
    Replay {
        messages,
        gap: !found,
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// The broker this instance uses.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one broker per process, held in an Arc: the size is paid once"
)]
pub enum Broker {
    /// One process, in memory.
    Memory(MemoryBroker),
    /// Many instances sharing one Redis (SPEC §6).
    Redis(RedisBroker),
}

impl Broker {
    /// Publishes a message: assigns its id, retains it, fans it out.
    ///
    /// # Errors
    /// [`BrokerError`] when the message could not be stored; then nothing was published.
    #[tracing::instrument(skip_all, fields(channel = %draft.channel, event_type = %draft.event_type))]
    pub async fn publish(&self, draft: MessageDraft) -> Result<Envelope, BrokerError> {
        match self {
            Self::Memory(b) => b.publish(&draft),
            Self::Redis(b) => b.publish(&draft).await,
        }
    }

    /// Called on each HTTP worker thread as it starts: in Redis mode the
    /// first one starts the pub/sub listener, so that messages are handed
    /// to viewers on the thread that writes their sockets.
    pub fn on_worker_start(&self) {
        if let Self::Redis(b) = self {
            b.start_listener();
        }
    }

    /// Registers `sub` on `channel` and returns what to replay after `since`.
    ///
    /// # Errors
    /// [`BrokerError`] when history cannot be read.
    pub async fn subscribe(
        &self,
        channel: &ChannelName,
        since: Option<MessageId>,
        sub: Subscriber,
    ) -> Result<Replay, BrokerError> {
        match self {
            Self::Memory(b) => Ok(b.subscribe(channel, since, sub)),
            Self::Redis(b) => b.subscribe(channel, since, sub).await,
        }
    }

    /// Removes a connection from a channel. Not async, so `Drop` guards can call it.
    pub fn unsubscribe(&self, channel: &ChannelName, conn: ConnId) {
        match self {
            Self::Memory(b) => b.unsubscribe(channel, conn),
            Self::Redis(b) => b.unsubscribe(channel, conn),
        }
    }

    /// Retained messages (SPEC §7.4).
    ///
    /// # Errors
    /// [`BrokerError`] when history cannot be read.
    pub async fn history(
        &self,
        channel: &ChannelName,
        since: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Envelope>, BrokerError> {
        match self {
            Self::Memory(b) => Ok(b.history(channel, since, limit)),
            Self::Redis(b) => b.history(channel, since, limit).await,
        }
    }

    /// Publishes `draft` at most once per `key` and channel within
    /// `window`, and returns its id (the first publish's id on a repeat).
    /// A retry after an ambiguous failure (Redis ran the publish, the
    /// answer never came back) therefore does not publish twice.
    ///
    /// # Errors
    /// [`BrokerError`] when the message could not be stored; it may still
    /// have been (Redis mode), and then the retry returns its id.
    #[tracing::instrument(skip_all, fields(channel = %draft.channel, event_type = %draft.event_type))]
    pub async fn publish_once(
        &self,
        draft: MessageDraft,
        key: &str,
        window: Duration,
    ) -> Result<MessageId, BrokerError> {
        match self {
            Self::Memory(b) => b.publish_once(&draft, key, window),
            Self::Redis(b) => b.publish_once(&draft, key, window).await,
        }
    }

    /// Claims `key` in `namespace` (across instances in Redis mode): when
    /// it is free, the caller's attempt holds it for `lease` (`claim`).
    ///
    /// # Errors
    /// [`BrokerError`] when the claim cannot be read or recorded. A claim
    /// that timed out may still be recorded later: then its lease runs out.
    pub async fn claim(
        &self,
        namespace: &str,
        key: &str,
        lease: Duration,
    ) -> Result<Claim<'_>, BrokerError> {
        let state = match self {
            Self::Memory(b) => Ok(b.claim(&format!("{namespace}:{key}"), lease)),
            Self::Redis(b) => b.claim(namespace, key, lease).await,
        }?;
        Ok(match state {
            ClaimState::New(token) => Claim::New(Attempt::new(
                self,
                Lease {
                    namespace: namespace.to_owned(),
                    key: key.to_owned(),
                    token,
                },
            )),
            ClaimState::InFlight => Claim::InFlight,
            ClaimState::Done(value) => Claim::Done(value),
        })
    }

    /// Marks a leased key done (`Attempt::complete`).
    async fn complete(
        &self,
        lease: &Lease,
        value: &str,
        window: Duration,
    ) -> Result<(), BrokerError> {
        match self {
            Self::Memory(b) => {
                b.complete(&format!("{}:{}", lease.namespace, lease.key), value, window);
                Ok(())
            }
            Self::Redis(b) => b.complete(lease, value, window).await,
        }
    }

    /// Frees a leased key, without waiting (`Attempt`'s drop).
    fn release_detached(&self, lease: Lease) {
        match self {
            Self::Memory(b) => {
                b.release(&format!("{}:{}", lease.namespace, lease.key), lease.token)
            }
            Self::Redis(b) => b.release_detached(lease),
        }
    }

    /// Adds `listener` to `topic` (`broker::topics`); returns once the
    /// instance's subscription is live, so that state read afterwards is
    /// not older than the next message.
    ///
    /// # Errors
    /// [`BrokerError`] when the subscription cannot be made (Redis down).
    pub async fn watch_topic(
        &self,
        topic: &str,
        listener: std::sync::Arc<dyn TopicListener>,
    ) -> Result<TopicWatch, BrokerError> {
        match self {
            Self::Memory(b) => Ok(b.watch_topic(topic, listener)),
            Self::Redis(b) => b.watch_topic(topic, listener).await,
        }
    }

    /// Sends `payload` to every listener of `topic` on every instance.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be reached.
    pub async fn publish_topic(&self, topic: &str, payload: &[u8]) -> Result<(), BrokerError> {
        match self {
            Self::Memory(b) => {
                b.publish_topic(topic, payload);
                Ok(())
            }
            Self::Redis(b) => b.publish_topic(topic, payload).await,
        }
    }

    /// The Redis broker, for features that keep their own state in Redis.
    pub fn redis(&self) -> Option<&RedisBroker> {
        match self {
            Self::Memory(_) => None,
            Self::Redis(b) => Some(b),
        }
    }

    /// True while the broker can take messages.
    pub async fn is_ready(&self) -> bool {
        match self {
            Self::Memory(_) => true,
            Self::Redis(b) => b.is_ready(),
        }
    }
}
