//! The memory room store: each room's [`RoomData`] behind its own lock. A
//! room's entry is dropped once it holds nothing (no config, poll, counter,
//! viewer or profile), so rooms only visited cost nothing afterwards.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::domain::ChannelName;
use crate::rooms::amount::Amount;
use crate::rooms::event::Stats;
use crate::rooms::frame::PollKind;
use crate::rooms::profile::{Properties, ViewerId};
use crate::rooms::state::RoomData;

use super::{Checked, Done, Snapshot};

/// Every room's state in this process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rooms: Mutex<HashMap<ChannelName, Arc<Mutex<RoomData>>>>,
    /// The highest version of any room dropped so far: a room created again
    /// starts above it, so its versions never go back.
    dropped: AtomicU64,
}

impl MemoryStore {
    fn room(&self, room: &ChannelName) -> Arc<Mutex<RoomData>> {
        self.rooms
            .lock()
            .entry(room.clone())
            .or_insert_with(|| {
                Arc::new(Mutex::new(RoomData::starting_at(
                    self.dropped.load(Ordering::Relaxed),
                )))
            })
            .clone()
    }

    /// Runs `f` on the room's state, then drops the entry if it is empty.
    fn with<T>(&self, room: &ChannelName, f: impl FnOnce(&mut RoomData) -> T) -> T {
        let data = self.room(room);
        let (out, empty) = {
            let mut d = data.lock();
            let out = f(&mut d);
            (out, d.is_empty())
        };
        if empty {
            let mut rooms = self.rooms.lock();
            if let Some(d) = rooms.get(room) {
                let d = d.lock();
                if d.is_empty() {
                    self.dropped.fetch_max(d.version(), Ordering::Relaxed);
                    drop(d);
                    rooms.remove(room);
                }
            }
        }
        out
    }

    /// Reads without creating the room.
    fn read<T>(&self, room: &ChannelName, f: impl FnOnce(&RoomData) -> T) -> T {
        let data = self.rooms.lock().get(room).cloned();
        match data {
            Some(d) => f(&d.lock()),
            None => f(&RoomData::default()),
        }
    }

    /// See [`super::RoomStore::config`].
    pub fn config(&self, room: &ChannelName) -> Snapshot<String> {
        self.read(room, |d| Snapshot {
            v: d.version(),
            value: d.config().to_owned(),
        })
    }

    /// See [`super::RoomStore::set_config`].
    pub fn set_config(&self, room: &ChannelName, value: &str) -> Done<()> {
        let event = self.with(room, |d| d.set_config(value));
        Done::new((), vec![event])
    }

    /// See [`super::RoomStore::join`].
    pub fn join(&self, room: &ChannelName, viewer: &ViewerId) -> Done<Properties> {
        let (props, events) = self.with(room, |d| d.join(viewer, Instant::now()));
        Done::new(props, events)
    }

    /// See [`super::RoomStore::leave`].
    pub fn leave(&self, room: &ChannelName, viewer: &ViewerId) -> Done<()> {
        let events = self.with(room, |d| d.leave(viewer, Instant::now()));
        Done::new((), events)
    }

    /// See [`super::RoomStore::login`].
    pub fn login(
        &self,
        room: &ChannelName,
        viewer: &ViewerId,
        patch: &Properties,
    ) -> Done<Checked<(Properties, u64)>> {
        match self.with(room, |d| d.login(viewer, patch)) {
            Ok((props, event)) => {
                let v = match &event {
                    crate::rooms::event::RoomEvent::Profile { v, .. } => *v,
                    _ => 0,
                };
                Done::new(Ok((props, v)), vec![event])
            }
            Err(e) => Done::new(Err(e), Vec::new()),
        }
    }

    /// See [`super::RoomStore::vote`].
    pub fn vote(
        &self,
        room: &ChannelName,
        kind: PollKind,
        id: &str,
        viewer: &ViewerId,
        answer: &str,
    ) -> Done<Checked<()>> {
        match self.with(room, |d| d.vote(kind, id, viewer, answer)) {
            Ok(event) => Done::new(Ok(()), event.into_iter().collect()),
            Err(e) => Done::new(Err(e), Vec::new()),
        }
    }

    /// See [`super::RoomStore::add`].
    pub fn add(&self, room: &ChannelName, id: &str, delta: Amount) -> Done<Checked<Amount>> {
        match self.with(room, |d| d.add(id, delta)) {
            Ok((value, event)) => Done::new(Ok(value), vec![event]),
            Err(e) => Done::new(Err(e), Vec::new()),
        }
    }

    /// See [`super::RoomStore::polls`].
    pub fn polls(
        &self,
        room: &ChannelName,
        kind: PollKind,
        id: Option<&str>,
    ) -> Snapshot<Vec<(String, Stats)>> {
        self.read(room, |d| Snapshot {
            v: d.version(),
            value: d.poll_stats(kind, id),
        })
    }

    /// See [`super::RoomStore::counters`].
    pub fn counters(
        &self,
        room: &ChannelName,
        id: Option<&str>,
    ) -> Snapshot<Vec<(String, String)>> {
        self.read(room, |d| Snapshot {
            v: d.version(),
            value: d.counter_values(id),
        })
    }

    /// See [`super::RoomStore::presence`].
    pub fn presence(&self, room: &ChannelName) -> Snapshot<u64> {
        self.read(room, |d| Snapshot {
            v: d.version(),
            value: d.presence(),
        })
    }

    /// See [`super::RoomStore::relay`].
    pub fn relay(&self, room: &ChannelName, event: &str, delta: i32) -> Done<()> {
        let event = self.with(room, |d| d.relay(event, delta));
        Done::new((), event.into_iter().collect())
    }

    /// See [`super::RoomStore::relay_types`].
    pub fn relay_types(&self, room: &ChannelName) -> Vec<String> {
        self.read(room, RoomData::relay_types)
    }
}
