//! One room as this instance holds it while it has members here: the
//! member connections, who subscribed to what (an index from subscription
//! to connections, so a poll update or a targeted broadcast costs its
//! subscribers, not the room), the admins relaying each event type, each
//! local viewer's properties (what chat shows), and one coalescing slot per
//! poll, counter and the presence count. [`Room::apply`] is where every
//! [`RoomEvent`] arrives, from the memory store directly or from the room's
//! topic in Redis mode, and the only place frames are fanned out: each
//! frame is written once and the same text is queued on every receiving
//! connection's outbox (`ws::conn`), never waiting on one.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use crate::broker::{ConnId, TopicWatch};
use crate::domain::{ChannelName, text_frame};
use crate::ws::conn::Conn;

use super::coalesce::{Offered, Slot};
use super::event::RoomEvent;
use super::frame::{self, Interest, PollKind, RoomError};
use super::metrics::RoomMetrics;
use super::profile::{Properties, ViewerId};
use super::store::LocalPresence;

/// Slots kept before idle ones are forgotten (polls and counters a room
/// keeps, twice, plus presence).
const MAX_SLOTS: usize = 4 * super::state::MAX_POLLS + 2 * super::state::MAX_COUNTERS + 1;

/// What a coalescing slot carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SlotKey {
    /// A poll's stats.
    Poll(PollKind, String),
    /// A counter's value.
    Counter(String),
    /// The room's presence count.
    Presence,
}

impl SlotKey {
    /// The subscription kind and id its frames go to.
    fn target(&self) -> (&str, Option<&str>) {
        match self {
            Self::Poll(kind, id) => (kind.as_str(), Some(id)),
            Self::Counter(id) => ("counter", Some(id)),
            Self::Presence => ("presence", None),
        }
    }
}

#[derive(Debug)]
struct Member {
    conn: Arc<Conn>,
    viewer: ViewerId,
    interests: Vec<Interest>,
    relays: Vec<String>,
}

#[derive(Debug)]
struct LocalViewer {
    /// This viewer's connections on this instance.
    conns: u32,
    props: Properties,
    /// The room version of `props`.
    v: u64,
}

type Conns = HashMap<ConnId, Arc<Conn>>;

#[derive(Debug, Default)]
struct Local {
    members: HashMap<ConnId, Member>,
    /// Subscription (`chat`, `poll`, `poll:ID`, …) → its connections.
    interests: HashMap<Box<str>, Conns>,
    /// Event type → local admins relaying it.
    relaying: HashMap<String, Conns>,
    /// Event types relayed anywhere in the room.
    relay_types: HashSet<String>,
    viewers: HashMap<ViewerId, LocalViewer>,
    slots: HashMap<SlotKey, Slot>,
    /// The newest config seen and its version.
    config: (u64, String),
    /// When the next coalescing flush is scheduled.
    flush_at: Option<Instant>,
}

/// One room on this instance.
pub struct Room {
    channel: ChannelName,
    local: Mutex<Local>,
    metrics: Arc<RoomMetrics>,
    me: Weak<Room>,
    /// Redis mode: this instance's subscription to the room's topic.
    watch: tokio::sync::OnceCell<TopicWatch>,
    /// This instance's presence or relays in the store may be off (a
    /// failed call, a reap): the next heartbeat re-syncs them.
    dirty: AtomicBool,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.metrics.rooms_open.dec();
    }
}

impl Room {
    /// An empty room for `channel`.
    pub fn new(channel: ChannelName, metrics: Arc<RoomMetrics>) -> Arc<Self> {
        metrics.rooms_open.inc();
        Arc::new_cyclic(|me| Self {
            channel,
            local: Mutex::new(Local::default()),
            metrics,
            me: me.clone(),
            watch: tokio::sync::OnceCell::new(),
            dirty: AtomicBool::new(false),
        })
    }

    /// The room's channel.
    pub fn channel(&self) -> &ChannelName {
        &self.channel
    }

    /// The topic subscription cell (Redis mode).
    pub(super) fn watch_cell(&self) -> &tokio::sync::OnceCell<TopicWatch> {
        &self.watch
    }

    /// Marks the store's view of this instance as possibly off.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Takes the dirty mark.
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Adds a member connection of `viewer`: it gets the config at once
    /// (under the same lock as later config changes, so it misses none).
    pub fn add_member(&self, conn: &Arc<Conn>, viewer: &ViewerId, props: Properties) {
        let mut local = self.local.lock();
        let entry = local
            .viewers
            .entry(viewer.clone())
            .or_insert_with(|| LocalViewer {
                conns: 0,
                props,
                v: 0,
            });
        entry.conns += 1;
        local.members.insert(
            conn.id(),
            Member {
                conn: conn.clone(),
                viewer: viewer.clone(),
                interests: Vec::new(),
                relays: Vec::new(),
            },
        );
        let _ = conn.push_text(&frame::config(&local.config.1));
        self.metrics.members.inc();
        self.metrics.out("config", 1);
    }

    /// Removes a member; returns the event types it was relaying.
    pub fn remove_member(&self, conn: ConnId) -> Vec<String> {
        let mut local = self.local.lock();
        let Some(member) = local.members.remove(&conn) else {
            return Vec::new();
        };
        self.metrics.members.dec();
        for interest in &member.interests {
            remove_from(&mut local.interests, interest.as_str(), conn);
        }
        for event in &member.relays {
            remove_from(&mut local.relaying, event, conn);
        }
        if let Some(v) = local.viewers.get_mut(&member.viewer) {
            v.conns = v.conns.saturating_sub(1);
            if v.conns == 0 {
                local.viewers.remove(&member.viewer);
            }
        }
        member.relays
    }

    /// Whether the room has no member here.
    pub fn is_empty(&self) -> bool {
        self.local.lock().members.is_empty()
    }

    /// Keeps `value` as the config if it is newer than the one held.
    pub fn note_config(&self, v: u64, value: String) {
        let mut local = self.local.lock();
        if v >= local.config.0 {
            local.config = (v, value);
        }
    }

    /// Replaces the room-wide set of relayed event types.
    pub fn note_relay_types(&self, types: Vec<String>) {
        self.local.lock().relay_types = types.into_iter().collect();
    }

    /// A local viewer's properties.
    pub fn props(&self, viewer: &ViewerId) -> Properties {
        self.local
            .lock()
            .viewers
            .get(viewer)
            .map(|v| v.props.clone())
            .unwrap_or_default()
    }

    /// Keeps a local viewer's properties if they are newer than those held.
    pub fn note_props(&self, viewer: &ViewerId, props: Properties, v: u64) {
        if let Some(lv) = self.local.lock().viewers.get_mut(viewer) {
            if v >= lv.v {
                lv.props = props;
                lv.v = v;
            }
        }
    }

    /// Subscribes member `conn` to `interest`.
    ///
    /// # Errors
    /// `invalid` past `max` subscriptions.
    pub fn subscribe(
        &self,
        conn: ConnId,
        interest: &Interest,
        max: usize,
    ) -> Result<(), RoomError> {
        let mut local = self.local.lock();
        let Some(member) = local.members.get_mut(&conn) else {
            return Ok(());
        };
        if member.interests.contains(interest) {
            return Ok(());
        }
        if member.interests.len() >= max {
            return Err(RoomError::invalid(format!(
                "a connection has at most {max} subscriptions"
            )));
        }
        member.interests.push(interest.clone());
        let c = member.conn.clone();
        local
            .interests
            .entry(interest.as_str().into())
            .or_default()
            .insert(conn, c);
        Ok(())
    }

    /// Unsubscribes member `conn` from `interest`; a bare kind also drops
    /// its `kind:ID` subscriptions.
    pub fn unsubscribe(&self, conn: ConnId, interest: &Interest) {
        let mut local = self.local.lock();
        let Some(member) = local.members.get_mut(&conn) else {
            return;
        };
        let bare = interest.id().is_none();
        let mut gone = Vec::new();
        member.interests.retain(|i| {
            let drop = i == interest || (bare && i.kind() == interest.kind());
            if drop {
                gone.push(i.clone());
            }
            !drop
        });
        for i in gone {
            remove_from(&mut local.interests, i.as_str(), conn);
        }
    }

    /// Member `conn` relays `event`; true when it did not already.
    pub fn add_relay(&self, conn: ConnId, event: &str) -> bool {
        let mut local = self.local.lock();
        let Some(member) = local.members.get_mut(&conn) else {
            return false;
        };
        if member.relays.iter().any(|r| r == event) {
            return false;
        }
        member.relays.push(event.to_owned());
        let c = member.conn.clone();
        local
            .relaying
            .entry(event.to_owned())
            .or_default()
            .insert(conn, c);
        true
    }

    /// Member `conn` stops relaying `event` (every type with `None`);
    /// returns the types it stopped relaying.
    pub fn remove_relays(&self, conn: ConnId, event: Option<&str>) -> Vec<String> {
        let mut local = self.local.lock();
        let Some(member) = local.members.get_mut(&conn) else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        member.relays.retain(|r| {
            let drop = event.is_none_or(|e| e == r);
            if drop {
                gone.push(r.clone());
            }
            !drop
        });
        for r in &gone {
            remove_from(&mut local.relaying, r, conn);
        }
        gone
    }

    /// Whether some admin anywhere in the room relays `event`.
    pub fn is_relayed(&self, event: &str) -> bool {
        self.local.lock().relay_types.contains(event)
    }

    /// This instance's connections per viewer and relays per type, for a
    /// re-sync of the store.
    pub fn local_presence(&self) -> LocalPresence {
        let local = self.local.lock();
        LocalPresence {
            viewers: local
                .viewers
                .iter()
                .map(|(id, v)| (id.clone(), v.conns))
                .collect(),
            relays: local
                .relaying
                .iter()
                .map(|(event, conns)| {
                    (
                        event.clone(),
                        u32::try_from(conns.len()).unwrap_or(u32::MAX),
                    )
                })
                .collect(),
        }
    }

    /// Forgets the versions seen (after the topic was down: the store may
    /// have restarted its numbering); the caller then applies fresh reads.
    pub fn reset_versions(&self) {
        let mut local = self.local.lock();
        local.config.0 = 0;
        for slot in local.slots.values_mut() {
            slot.reset_version();
        }
        for v in local.viewers.values_mut() {
            v.v = 0;
        }
    }

    /// Sends a current value read from the store to one member that just
    /// subscribed, unless a newer one already went (or waits to go) to it.
    pub fn push_snapshot(&self, conn: &Conn, key: &SlotKey, v: u64, frame: &str) {
        let local = self.local.lock();
        let seen = local.slots.get(key).map_or(0, Slot::version);
        if v >= seen {
            let _ = conn.push_text(frame);
            self.metrics.out(key.target().0, 1);
        }
    }

    /// Fans out what happened in the room to the members here.
    pub fn apply(&self, event: RoomEvent) {
        let mut local = self.local.lock();
        match event {
            RoomEvent::Config { v, value } => {
                if v < local.config.0 {
                    return;
                }
                let wire = text_frame(&frame::config(&value));
                local.config = (v, value);
                for m in local.members.values() {
                    let _ = m.conn.push_encoded(&wire);
                }
                self.metrics.out("config", local.members.len());
            }
            RoomEvent::Poll { v, kind, id, stats } => {
                let text = frame::poll_stats(kind, &id, &stats);
                self.offer(&mut local, SlotKey::Poll(kind, id), v, text);
            }
            RoomEvent::Counter { v, id, value } => {
                let text = frame::counter_value(&id, &value);
                self.offer(&mut local, SlotKey::Counter(id), v, text);
            }
            RoomEvent::Presence { v, count } => {
                self.offer(&mut local, SlotKey::Presence, v, frame::presence(count));
            }
            RoomEvent::Profile { v, viewer, props } => {
                if let Some(lv) = local.viewers.get_mut(&viewer) {
                    if v >= lv.v {
                        lv.props = props;
                        lv.v = v;
                    }
                }
            }
            RoomEvent::Relays { types } => {
                local.relay_types = types.into_iter().collect();
            }
            RoomEvent::Chat { frame } => {
                let n = deliver(&local, "chat", None, &frame);
                self.metrics.out("chat", n);
            }
            RoomEvent::Broadcast { to, frame } => {
                let n = match &to {
                    Some(to) => deliver(&local, to.kind(), to.id(), &frame),
                    None => {
                        let wire = text_frame(&frame);
                        for m in local.members.values() {
                            let _ = m.conn.push_encoded(&wire);
                        }
                        local.members.len()
                    }
                };
                self.metrics.out("broadcast", n);
            }
            RoomEvent::Relay { event, frame } => {
                if let Some(admins) = local.relaying.get(&event) {
                    let wire = text_frame(&frame);
                    for c in admins.values() {
                        let _ = c.push_encoded(&wire);
                    }
                    self.metrics.out("relay", admins.len());
                }
            }
        }
    }

    fn offer(&self, local: &mut Local, key: SlotKey, v: u64, text: String) {
        let now = Instant::now();
        if local.slots.len() >= MAX_SLOTS && !local.slots.contains_key(&key) {
            local
                .slots
                .retain(|k, s| *k == SlotKey::Presence || !s.idle(now));
        }
        let slot = local.slots.entry(key.clone()).or_default();
        match slot.offer(v, text.into(), now) {
            Offered::Send(text) => self.send_slot(local, &key, &text),
            Offered::Wait(at) => self.schedule(local, at),
            Offered::Replaced => self.metrics.coalesced.inc(),
            Offered::Stale => {}
        }
    }

    fn send_slot(&self, local: &Local, key: &SlotKey, text: &str) {
        let (kind, id) = key.target();
        let n = deliver(local, kind, id, text);
        self.metrics.out(kind, n);
    }

    /// Makes sure a flush runs at `at` (or earlier).
    fn schedule(&self, local: &mut Local, at: Instant) {
        if local.flush_at.is_some_and(|t| t <= at) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        local.flush_at = Some(at);
        let me = self.me.clone();
        rt.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            if let Some(room) = me.upgrade() {
                room.flush();
            }
        });
    }

    /// Sends every coalesced value whose time has come.
    fn flush(&self) {
        let mut local = self.local.lock();
        let now = Instant::now();
        local.flush_at = None;
        let due: Vec<(SlotKey, Arc<str>)> = local
            .slots
            .iter_mut()
            .filter_map(|(k, s)| s.due(now).map(|text| (k.clone(), text)))
            .collect();
        for (key, text) in due {
            self.send_slot(&local, &key, &text);
        }
        if let Some(next) = local.slots.values().filter_map(Slot::deadline).min() {
            self.schedule(&mut local, next);
        }
    }
}

/// Queues `text` for the subscribers of `kind` and of `kind:id` (once
/// each), encoded once (when there is one) and shared by their outboxes.
fn deliver(local: &Local, kind: &str, id: Option<&str>, text: &str) -> usize {
    let mut n = 0;
    let wire = OnceCell::new();
    let wire = || wire.get_or_init(|| text_frame(text));
    let bare = local.interests.get(kind);
    if let Some(conns) = bare {
        for c in conns.values() {
            let _ = c.push_encoded(wire());
        }
        n += conns.len();
    }
    if let Some(id) = id {
        let key = format!("{kind}:{id}");
        if let Some(conns) = local.interests.get(key.as_str()) {
            for (cid, c) in conns {
                if bare.is_some_and(|b| b.contains_key(cid)) {
                    continue;
                }
                let _ = c.push_encoded(wire());
                n += 1;
            }
        }
    }
    n
}

fn remove_from<K>(map: &mut HashMap<K, Conns>, key: &str, conn: ConnId)
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
{
    if let Some(conns) = map.get_mut(key) {
        conns.remove(&conn);
        if conns.is_empty() {
            map.remove(key);
        }
    }
}
