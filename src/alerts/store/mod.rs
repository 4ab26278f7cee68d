//! Where a channel's alert state lives: an enum over the in-memory store
//! (the process's life) and the Redis store (shared by every instance,
//! survives restarts). Both apply the rules of `alerts::queue` and ring the
//! channel's doorbell (`alerts::doorbell`) after every change; one
//! behaviour test suite runs against both (`tests/api/alert_store.rs`).

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{Broker, BrokerError};
use crate::domain::ChannelName;

use super::alert::Alert;
use super::doorbell::Doorbell;
use super::queue::QueueState;
use super::settings::Settings;

pub use self::redis::RedisStore;
pub use memory::MemoryStore;

/// Makes an enqueue idempotent: the first enqueue under `key` within `ttl`
/// records its alert id, and a repeat gets that id back without queuing
/// again (an EventSub message id, an `Idempotency-Key`).
#[derive(Debug, Clone)]
pub struct SourceKey {
    /// `evt:<message id>` or `api:<Idempotency-Key>`.
    pub key: String,
    /// How long it is remembered.
    pub ttl: Duration,
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued (or straight in flight); `waiting` alerts wait now.
    Queued {
        /// Waiting alerts after this one was added.
        waiting: usize,
    },
    /// Its source key was seen before: nothing queued, the first alert's id.
    Duplicate(String),
    /// The waiting queue is at its cap: nothing queued.
    Full,
}

/// The overlay key of a channel and its generation (bumped per new key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayKey {
    /// The secret in the overlay URL.
    pub key: String,
    /// Its generation.
    pub generation: u64,
}

/// A fresh overlay key: 32 random bytes, URL-safe.
pub fn fresh_key() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// A channel's alert store.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one store per process, held in an Arc: the size is paid once"
)]
pub enum AlertStore {
    /// In this process.
    Memory(MemoryStore),
    /// In Redis, shared by every instance.
    Redis(RedisStore),
}

impl AlertStore {
    /// The store that matches the broker: Redis when the broker is.
    pub fn for_broker(broker: Arc<Broker>) -> Self {
        match broker.redis() {
            Some(redis) => Self::Redis(RedisStore::new(redis)),
            None => Self::Memory(MemoryStore::new(broker)),
        }
    }

    /// Whether the state lives only as long as this process.
    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Memory(_))
    }

    /// Queues `alert` (at the front for a replay) unless `cap` wait or its
    /// source key was seen.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached: nothing was queued.
    pub async fn enqueue(
        &self,
        alert: &Alert,
        front: bool,
        source: Option<&SourceKey>,
        cap: usize,
    ) -> Result<Enqueued, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.enqueue(alert, front, source, cap).await),
            Self::Redis(s) => s.enqueue(alert, front, source, cap).await,
        }
    }

    /// An overlay's ack of `id`; true when it moved the queue on.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn ack(&self, channel: &ChannelName, id: &str) -> Result<bool, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.ack(channel, id).await),
            Self::Redis(s) => s.ack(channel, id).await,
        }
    }

    /// Ends the alert in flight; its id, if there was one.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn skip(&self, channel: &ChannelName) -> Result<Option<String>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.skip(channel).await),
            Self::Redis(s) => s.skip(channel).await,
        }
    }

    /// Pauses or resumes.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn set_paused(&self, channel: &ChannelName, paused: bool) -> Result<(), BrokerError> {
        match self {
            Self::Memory(s) => {
                s.set_paused(channel, paused).await;
                Ok(())
            }
            Self::Redis(s) => s.set_paused(channel, paused).await,
        }
    }

    /// Empties the waiting queue; how many were dropped.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn clear(&self, channel: &ChannelName) -> Result<usize, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.clear(channel)),
            Self::Redis(s) => s.clear(channel).await,
        }
    }

    /// The channel's settings (defaults when never saved).
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn settings(&self, channel: &ChannelName) -> Result<Settings, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.settings(channel)),
            Self::Redis(s) => s.settings(channel).await,
        }
    }

    /// Replaces the settings and tells the overlays.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn put_settings(
        &self,
        channel: &ChannelName,
        settings: Settings,
    ) -> Result<(), BrokerError> {
        match self {
            Self::Memory(s) => {
                s.put_settings(channel, settings).await;
                Ok(())
            }
            Self::Redis(s) => s.put_settings(channel, &settings).await,
        }
    }

    /// The overlay key, if one was made.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn key(&self, channel: &ChannelName) -> Result<Option<OverlayKey>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.key(channel)),
            Self::Redis(s) => s.key(channel).await,
        }
    }

    /// The overlay key, made now if there is none.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn ensure_key(&self, channel: &ChannelName) -> Result<OverlayKey, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.ensure_key(channel)),
            Self::Redis(s) => s.ensure_key(channel).await,
        }
    }

    /// A new overlay key; overlays opened with the old one are closed.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn rotate_key(&self, channel: &ChannelName) -> Result<OverlayKey, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.rotate_key(channel).await),
            Self::Redis(s) => s.rotate_key(channel).await,
        }
    }

    /// Settings, pause, in flight, waiting and recent alerts.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn state(&self, channel: &ChannelName) -> Result<QueueState, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.state(channel)),
            Self::Redis(s) => s.state(channel).await,
        }
    }

    /// A recent alert by id.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn recent_alert(
        &self,
        channel: &ChannelName,
        id: &str,
    ) -> Result<Option<Alert>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.recent_alert(channel, id)),
            Self::Redis(s) => s.recent_alert(channel, id).await,
        }
    }

    /// The overlay view now, with the settings (an overlay group's first
    /// read, and its re-read after a missed doorbell).
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn view(&self, channel: &ChannelName) -> Result<Doorbell, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.view(channel)),
            Self::Redis(s) => s.view(channel).await,
        }
    }
}
