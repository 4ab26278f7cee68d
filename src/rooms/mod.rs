//! Interactive rooms (SPEC §9): every channel has a room with chat, polls,
//! ephemeral polls, counters, presence, a config string, admin broadcasts
//! and relays, spoken with the Pact realtime server's frames over
//! `GET /websocket?room=NAME`, with the signed-in viewer as identity.
//!
//! Built on the socket layer and the broker, not inside them:
//! - `frame`: the Pact frame codec (client frames parsed, server frames
//!   written once); `amount`: counters' exact decimals; `signing`: the
//!   `authenticate` key; `profile`: a viewer's room id, suffix and
//!   properties; `state`: one room's rules and its in-memory state.
//! - `store`: [`RoomStore`] {Memory, Redis}: where state lives and every
//!   change is made (Redis: one Lua script each, shared across instances).
//! - `event`: [`RoomEvent`], what members must hear, and its wire form on
//!   the room's topic (`broker::topics`) between instances.
//! - `room`: one room on this instance: members, their subscriptions,
//!   relays, and `coalesce`'s slots (at most 10 updates a second per poll,
//!   counter and presence; the last one always sent).
//! - `socket`: the connection's `ws::session::Protocol`.
//!
//! Flow: a client frame → `socket` parses it and asks the store → the
//! store changes the state and makes the event (memory: returned; Redis:
//! published by the script on the room's topic, heard by every instance) →
//! `Room::apply` writes the frame once and queues it on each receiving
//! member's outbox (coalesced for stats, counters and presence).

pub mod amount;
pub mod coalesce;
pub mod event;
pub mod frame;
pub mod metrics;
pub mod profile;
pub mod room;
pub mod signing;
pub mod socket;
pub mod state;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use secrecy::SecretString;

use crate::broker::{Broker, BrokerError, TopicListener};
use crate::config::Settings;
use crate::domain::{ChannelName, User};
use crate::metrics::Metrics;

pub use event::RoomEvent;
pub use room::Room;
pub use socket::RoomSocket;
pub use store::RoomStore;

use self::frame::PollKind;
use self::metrics::RoomMetrics;
use self::profile::Viewer;
use self::room::SlotKey;

/// Most subscriptions one room connection holds (as `/ws` channels, SPEC §5).
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// The room's topic (`broker::topics`): `room:<channel>`.
pub fn topic_of(room: &ChannelName) -> String {
    format!("room:{room}")
}

#[derive(Debug)]
struct Entry {
    room: Arc<Room>,
    /// Connections (and joins under way) holding the room.
    holders: usize,
}

/// The rooms with members on this instance, and the store behind them.
pub struct Rooms {
    store: RoomStore,
    broker: Arc<Broker>,
    open: Mutex<HashMap<ChannelName, Entry>>,
    metrics: Arc<RoomMetrics>,
    signing_key: Option<SecretString>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("store", &self.store)
            .field("open", &self.open.lock().len())
            .finish_non_exhaustive()
    }
}

/// A hold on a room: while any exists the room stays open here. Dropped
/// by the connection (after its leave reached the store).
#[derive(Debug)]
pub struct Ticket {
    rooms: Arc<Rooms>,
    room: Arc<Room>,
}

impl Ticket {
    /// The room held.
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.rooms.open.lock();
        let channel = self.room.channel();
        if let Some(entry) = open.get_mut(channel) {
            entry.holders = entry.holders.saturating_sub(1);
            if entry.holders == 0 {
                open.remove(channel);
            }
        }
    }
}

/// Hears the room's topic (Redis mode).
struct Listener {
    room: Weak<Room>,
    rooms: Weak<Rooms>,
}

impl TopicListener for Listener {
    fn on_message(&self, payload: &[u8]) {
        let Some(room) = self.room.upgrade() else {
            return;
        };
        match RoomEvent::decode(payload) {
            Ok(event) => room.apply(event),
            Err(e) => tracing::warn!(error = %e, room = %room.channel(), "room event dropped"),
        }
    }

    fn on_resync(&self) {
        let (Some(room), Some(rooms)) = (self.room.upgrade(), self.rooms.upgrade()) else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { rooms.resync(&room).await });
        }
    }
}

impl Rooms {
    /// The rooms of an instance using `broker` (its Redis, in Redis mode).
    pub fn new(broker: Arc<Broker>, settings: &Settings, metrics: &Metrics) -> Arc<Self> {
        let store = match broker.redis() {
            Some(redis) => {
                let instance = uuid::Uuid::new_v4().simple().to_string();
                RoomStore::Redis(store::RedisStore::new(redis, &instance))
            }
            None => RoomStore::Memory(store::MemoryStore::default()),
        };
        Arc::new(Self {
            store,
            broker,
            open: Mutex::new(HashMap::new()),
            metrics: Arc::new(RoomMetrics::new(metrics)),
            signing_key: settings.room_signing_key.clone(),
        })
    }

    /// The store.
    pub fn store(&self) -> &RoomStore {
        &self.store
    }

    /// `user` opens a connection to `channel` (written `url_name` in the
    /// URL): the room is opened here if needed (in Redis mode its topic is
    /// subscribed), the viewer joins its presence, and the protocol for the
    /// connection is returned.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached (503).
    pub async fn connect(
        self: &Arc<Self>,
        channel: &ChannelName,
        url_name: &str,
        user: &User,
    ) -> Result<RoomSocket, BrokerError> {
        let ticket = self.enter(channel);
        self.ready(ticket.room()).await?;
        let viewer = Viewer::new(channel, user);
        let joined = self.store.join(channel, &viewer.id).await?;
        self.deliver(ticket.room(), joined.events);
        let admin = user.login == channel.as_str();
        // From here on, dropping the socket leaves the presence again.
        let socket = RoomSocket::new(
            self.clone(),
            ticket,
            viewer,
            url_name.to_owned(),
            admin,
            joined.value,
        );
        let config = self.store.config(channel).await?;
        socket.room().note_config(config.v, config.value);
        Ok(socket)
    }

    /// Holds the room of `channel`, opening it here if needed.
    fn enter(self: &Arc<Self>, channel: &ChannelName) -> Ticket {
        let mut open = self.open.lock();
        let entry = open.entry(channel.clone()).or_insert_with(|| {
            let room = Room::new(channel.clone(), self.metrics.clone());
            if !self.store.is_memory() {
                self.spawn_heartbeat(&room);
            }
            Entry { room, holders: 0 }
        });
        entry.holders += 1;
        Ticket {
            rooms: self.clone(),
            room: entry.room.clone(),
        }
    }

    /// Redis mode: subscribes the room's topic once (then reads the relay
    /// types, which the topic announces changes of).
    async fn ready(self: &Arc<Self>, room: &Arc<Room>) -> Result<(), BrokerError> {
        if self.store.is_memory() {
            return Ok(());
        }
        room.watch_cell()
            .get_or_try_init(|| async {
                let listener = Arc::new(Listener {
                    room: Arc::downgrade(room),
                    rooms: Arc::downgrade(self),
                });
                let watch = self
                    .broker
                    .watch_topic(&topic_of(room.channel()), listener)
                    .await?;
                let types = self.store.relay_types(room.channel()).await?;
                room.note_relay_types(types);
                Ok::<_, BrokerError>(watch)
            })
            .await?;
        Ok(())
    }

    /// Renews this instance's presence in the room every
    /// `store::redis::HEARTBEAT`, for as long as the room is open here.
    fn spawn_heartbeat(self: &Arc<Self>, room: &Arc<Room>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (room, rooms) = (Arc::downgrade(room), Arc::downgrade(self));
        rt.spawn(async move {
            let mut tick = tokio::time::interval(store::redis::HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (Some(room), Some(rooms)) = (room.upgrade(), rooms.upgrade()) else {
                    return;
                };
                rooms.heartbeat(&room).await;
            }
        });
    }

    async fn heartbeat(&self, room: &Room) {
        let sync = room.take_dirty().then(|| room.local_presence());
        let result = match self.store.heartbeat(room.channel(), sync.as_ref()).await {
            Ok(true) if sync.is_none() => {
                tracing::info!(room = %room.channel(), "this instance had been reaped from the room: re-syncing");
                let sync = room.local_presence();
                self.store.heartbeat(room.channel(), Some(&sync)).await
            }
            other => other,
        };
        if let Err(e) = result {
            room.mark_dirty();
            tracing::warn!(error = %e, room = %room.channel(), "room heartbeat failed");
        }
    }

    /// After this instance's topic subscription was down: re-syncs its
    /// presence and re-reads everything the topic may have announced.
    async fn resync(&self, room: &Arc<Room>) {
        room.mark_dirty();
        room.reset_versions();
        if let Err(e) = self.reload(room).await {
            tracing::warn!(error = %e, room = %room.channel(), "room resync failed");
        }
    }

    async fn reload(&self, room: &Arc<Room>) -> Result<(), BrokerError> {
        let channel = room.channel();
        let config = self.store.config(channel).await?;
        room.apply(RoomEvent::Config {
            v: config.v,
            value: config.value,
        });
        let presence = self.store.presence(channel).await?;
        room.apply(RoomEvent::Presence {
            v: presence.v,
            count: presence.value,
        });
        for kind in [PollKind::Poll, PollKind::Ephemeral] {
            let polls = self.store.polls(channel, kind, None).await?;
            for (id, stats) in polls.value {
                room.apply(RoomEvent::Poll {
                    v: polls.v,
                    kind,
                    id,
                    stats,
                });
            }
        }
        let counters = self.store.counters(channel, None).await?;
        for (id, value) in counters.value {
            room.apply(RoomEvent::Counter {
                v: counters.v,
                id,
                value,
            });
        }
        room.note_relay_types(self.store.relay_types(channel).await?);
        Ok(())
    }

    /// Hands events a memory-store change made to the room (Redis-mode
    /// changes arrive on the topic instead, and return none).
    pub(crate) fn deliver(&self, room: &Room, events: Vec<RoomEvent>) {
        for event in events {
            room.apply(event);
        }
    }

    /// Sends a chat, broadcast or relayed frame to the room on every
    /// instance.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be reached.
    pub(crate) async fn send(&self, room: &Room, event: RoomEvent) -> Result<(), BrokerError> {
        if self.store.is_memory() {
            room.apply(event);
            return Ok(());
        }
        self.broker
            .publish_topic(&topic_of(room.channel()), event.encode().as_bytes())
            .await
    }

    /// The current value for a fresh subscription of `kind` (and `id`),
    /// sent to `conn` unless something newer reached it already.
    pub(crate) async fn snapshot(
        &self,
        room: &Room,
        conn: &crate::ws::conn::Conn,
        kind: &str,
        id: Option<&str>,
    ) -> Result<(), BrokerError> {
        let channel = room.channel();
        if let Some(poll_kind) = PollKind::parse(kind) {
            let polls = self.store.polls(channel, poll_kind, id).await?;
            for (pid, stats) in polls.value {
                let text = frame::poll_stats(poll_kind, &pid, &stats);
                room.push_snapshot(conn, &SlotKey::Poll(poll_kind, pid), polls.v, &text);
            }
        } else if kind == "counter" {
            let counters = self.store.counters(channel, id).await?;
            for (cid, value) in counters.value {
                let text = frame::counter_value(&cid, &value);
                room.push_snapshot(conn, &SlotKey::Counter(cid), counters.v, &text);
            }
        } else if kind == "presence" {
            let p = self.store.presence(channel).await?;
            room.push_snapshot(conn, &SlotKey::Presence, p.v, &frame::presence(p.value));
        }
        Ok(())
    }

    /// The room admin signing key (`ROOM_SIGNING_KEY`).
    pub(crate) fn signing_key(&self) -> Option<&SecretString> {
        self.signing_key.as_ref()
    }

    /// Metric handles.
    pub(crate) fn metrics(&self) -> &RoomMetrics {
        &self.metrics
    }
}
