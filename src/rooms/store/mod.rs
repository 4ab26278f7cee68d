//! Where room state lives: an enum over its two implementations, memory
//! (one process) and Redis (a room spans instances; config, polls and
//! counters survive restarts). Both follow the rules of `rooms::state`;
//! `tests/api/room_store.rs` runs one behaviour suite against both.
//!
//! Every change returns the events members must hear about: the memory
//! store returns them for the local room; the Redis store's scripts have
//! published them on the room's topic already (so it returns none), and
//! every instance, this one included, hears them there.

pub mod memory;
pub mod redis;

use crate::broker::BrokerError;
use crate::domain::ChannelName;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

use super::amount::Amount;
use super::event::{RoomEvent, Stats};
use super::frame::{PollKind, RoomError};
use super::profile::{Properties, ViewerId};

/// A change's result and the events it made.
#[derive(Debug)]
pub struct Done<T> {
    /// The result.
    pub value: T,
    /// Events for the local room (memory mode only).
    pub events: Vec<RoomEvent>,
}

impl<T> Done<T> {
    fn new(value: T, events: Vec<RoomEvent>) -> Self {
        Self { value, events }
    }
}

/// A read, with the room's version at the time of reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<T> {
    /// The room's version when read.
    pub v: u64,
    /// What was read.
    pub value: T,
}

/// A change the store refused (the frame's `invalid` error), or done.
pub type Checked<T> = Result<T, RoomError>;

/// What a viewer's connections on this instance and its relays look like,
/// for a full re-sync of this instance's presence in Redis.
#[derive(Debug, Default, Clone)]
pub struct LocalPresence {
    /// Open connections per viewer.
    pub viewers: Vec<(ViewerId, u32)>,
    /// Relaying connections per event type.
    pub relays: Vec<(String, u32)>,
}

/// The room store this instance uses.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one store per process, inside `Rooms`: the size is paid once"
)]
pub enum RoomStore {
    /// One process.
    Memory(MemoryStore),
    /// Shared by every instance on one Redis.
    Redis(RedisStore),
}

impl RoomStore {
    /// Whether events are returned for local delivery (memory mode) rather
    /// than published on the room's topic (Redis mode).
    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Memory(_))
    }

    /// The room's config (`""` when never set).
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn config(&self, room: &ChannelName) -> Result<Snapshot<String>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.config(room)),
            Self::Redis(s) => s.config(room).await,
        }
    }

    /// Sets the room's config.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached; nothing changed.
    pub async fn set_config(
        &self,
        room: &ChannelName,
        value: &str,
    ) -> Result<Done<()>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.set_config(room, value)),
            Self::Redis(s) => s.set_config(room, value).await,
        }
    }

    /// A connection of `viewer` joins: presence, and the viewer's properties.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn join(
        &self,
        room: &ChannelName,
        viewer: &ViewerId,
    ) -> Result<Done<Properties>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.join(room, viewer)),
            Self::Redis(s) => s.join(room, viewer).await,
        }
    }

    /// A connection of `viewer` left; its last one takes its ephemeral
    /// votes and its presence along.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn leave(
        &self,
        room: &ChannelName,
        viewer: &ViewerId,
    ) -> Result<Done<()>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.leave(room, viewer)),
            Self::Redis(s) => s.leave(room, viewer).await,
        }
    }

    /// Merges `patch` into the viewer's properties; returns them and the
    /// room's version after the change.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn login(
        &self,
        room: &ChannelName,
        viewer: &ViewerId,
        patch: &Properties,
    ) -> Result<Done<Checked<(Properties, u64)>>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.login(room, viewer, patch)),
            Self::Redis(s) => s.login(room, viewer, patch).await,
        }
    }

    /// `viewer` votes `answer` in poll `id`.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn vote(
        &self,
        room: &ChannelName,
        kind: PollKind,
        id: &str,
        viewer: &ViewerId,
        answer: &str,
    ) -> Result<Done<Checked<()>>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.vote(room, kind, id, viewer, answer)),
            Self::Redis(s) => s.vote(room, kind, id, viewer, answer).await,
        }
    }

    /// Adds `delta` to counter `id`; returns the new value.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn add(
        &self,
        room: &ChannelName,
        id: &str,
        delta: Amount,
    ) -> Result<Done<Checked<Amount>>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.add(room, id, delta)),
            Self::Redis(s) => s.add(room, id, delta).await,
        }
    }

    /// The stats of poll `id` of `kind`, or of all of them.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn polls(
        &self,
        room: &ChannelName,
        kind: PollKind,
        id: Option<&str>,
    ) -> Result<Snapshot<Vec<(String, Stats)>>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.polls(room, kind, id)),
            Self::Redis(s) => s.polls(room, kind, id).await,
        }
    }

    /// The value of counter `id`, or of all of them.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn counters(
        &self,
        room: &ChannelName,
        id: Option<&str>,
    ) -> Result<Snapshot<Vec<(String, String)>>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.counters(room, id)),
            Self::Redis(s) => s.counters(room, id).await,
        }
    }

    /// Distinct viewers in the room.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn presence(&self, room: &ChannelName) -> Result<Snapshot<u64>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.presence(room)),
            Self::Redis(s) => s.presence(room).await,
        }
    }

    /// One more (`delta` 1) or one fewer (-1) connection relays `event`.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn relay(
        &self,
        room: &ChannelName,
        event: &str,
        delta: i32,
    ) -> Result<Done<()>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.relay(room, event, delta)),
            Self::Redis(s) => s.relay(room, event, delta).await,
        }
    }

    /// The event types relayed anywhere in the room.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn relay_types(&self, room: &ChannelName) -> Result<Vec<String>, BrokerError> {
        match self {
            Self::Memory(s) => Ok(s.relay_types(room)),
            Self::Redis(s) => s.relay_types(room).await,
        }
    }

    /// Redis mode: marks this instance alive in the room, reaps instances
    /// that stopped doing so, and with `sync` sets this instance's presence
    /// and relays to exactly that. Returns true when this instance had been
    /// reaped (the caller then syncs). Memory mode: nothing to do.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn heartbeat(
        &self,
        room: &ChannelName,
        sync: Option<&LocalPresence>,
    ) -> Result<bool, BrokerError> {
        match self {
            Self::Memory(_) => Ok(false),
            Self::Redis(s) => s.heartbeat(room, sync).await,
        }
    }
}
