//! One room's state as the memory store keeps it, and the rules every store
//! follows (the Redis store's Lua scripts do the same; one behaviour suite,
//! `tests/api/room_store.rs`, runs against both): the config, polls and
//! ephemeral polls (one vote per viewer, moved by voting again), counters
//! (exact decimals), presence (connections per viewer: the count is the
//! distinct viewers) and profiles. Every change bumps the room's version,
//! which orders updates for coalescing. Pure: time is an argument.
//!
//! Bounds: [`MAX_POLLS`] polls of each kind and [`MAX_COUNTERS`] counters
//! per room (the least recently used goes when a new one would pass it),
//! [`MAX_ANSWERS`] answers per poll (a new answer past it is refused), and
//! profiles of viewers who left are kept for [`PROFILE_TTL`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::amount::Amount;
use super::event::{RoomEvent, Stats};
use super::frame::{PollKind, RoomError};
use super::profile::{Properties, ViewerId};

/// Polls of each kind a room keeps.
pub const MAX_POLLS: usize = 100;
/// Distinct answers one poll takes.
pub const MAX_ANSWERS: usize = 100;
/// Counters a room keeps.
pub const MAX_COUNTERS: usize = 100;
/// How long the profile of a viewer who left is kept.
pub const PROFILE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a room looks for expired profiles.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Poll {
    tally: Stats,
    votes: HashMap<ViewerId, String>,
    /// The room version of its last vote (least recently used goes first).
    used: u64,
}

#[derive(Debug)]
struct Counter {
    value: Amount,
    used: u64,
}

#[derive(Debug)]
struct Profile {
    props: Properties,
    /// When its viewer's last connection left (None while connected).
    idle_since: Option<Instant>,
}

/// One room's state in memory.
#[derive(Debug, Default)]
pub struct RoomData {
    version: u64,
    config: String,
    polls: HashMap<String, Poll>,
    ephemeral: HashMap<String, Poll>,
    counters: HashMap<String, Counter>,
    /// Open connections per viewer.
    viewers: HashMap<ViewerId, u32>,
    profiles: HashMap<ViewerId, Profile>,
    /// Relaying connections per event type.
    relays: HashMap<String, u32>,
    last_sweep: Option<Instant>,
}

impl RoomData {
    fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    fn polls_mut(&mut self, kind: PollKind) -> &mut HashMap<String, Poll> {
        match kind {
            PollKind::Poll => &mut self.polls,
            PollKind::Ephemeral => &mut self.ephemeral,
        }
    }

    fn polls(&self, kind: PollKind) -> &HashMap<String, Poll> {
        match kind {
            PollKind::Poll => &self.polls,
            PollKind::Ephemeral => &self.ephemeral,
        }
    }

    /// An empty room whose versions start above `version`.
    pub fn starting_at(version: u64) -> Self {
        Self {
            version,
            ..Self::default()
        }
    }

    /// The room's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether the room holds nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.config.is_empty()
            && self.polls.is_empty()
            && self.ephemeral.is_empty()
            && self.counters.is_empty()
            && self.viewers.is_empty()
            && self.profiles.is_empty()
            && self.relays.is_empty()
    }

    /// The config.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Sets the config.
    pub fn set_config(&mut self, value: &str) -> RoomEvent {
        value.clone_into(&mut self.config);
        RoomEvent::Config {
            v: self.bump(),
            value: value.to_owned(),
        }
    }

    /// A connection of `viewer` joined: returns its properties, and the
    /// presence event when the viewer is new to the room.
    pub fn join(&mut self, viewer: &ViewerId, now: Instant) -> (Properties, Vec<RoomEvent>) {
        self.sweep(now);
        let conns = self.viewers.entry(viewer.clone()).or_default();
        *conns += 1;
        let first = *conns == 1;
        let profile = self.profiles.entry(viewer.clone()).or_insert(Profile {
            props: Properties::default(),
            idle_since: None,
        });
        profile.idle_since = None;
        let props = profile.props.clone();
        let mut events = Vec::new();
        if first {
            events.push(self.presence_event());
        }
        (props, events)
    }

    /// A connection of `viewer` left; with its last one, its ephemeral
    /// votes go and the count drops.
    pub fn leave(&mut self, viewer: &ViewerId, now: Instant) -> Vec<RoomEvent> {
        let Some(conns) = self.viewers.get_mut(viewer) else {
            return Vec::new();
        };
        *conns = conns.saturating_sub(1);
        if *conns > 0 {
            return Vec::new();
        }
        self.viewers.remove(viewer);
        if let Some(p) = self.profiles.get_mut(viewer) {
            p.idle_since = Some(now);
        }
        let mut events = Vec::new();
        let ids: Vec<String> = self
            .ephemeral
            .iter()
            .filter(|(_, p)| p.votes.contains_key(viewer))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let v = self.bump();
            if let Some(poll) = self.ephemeral.get_mut(&id) {
                unvote(poll, viewer);
                events.push(RoomEvent::Poll {
                    v,
                    kind: PollKind::Ephemeral,
                    id,
                    stats: poll.tally.clone(),
                });
            }
        }
        events.push(self.presence_event());
        events
    }

    fn presence_event(&mut self) -> RoomEvent {
        RoomEvent::Presence {
            v: self.bump(),
            count: self.viewers.len() as u64,
        }
    }

    /// Distinct viewers present.
    pub fn presence(&self) -> u64 {
        self.viewers.len() as u64
    }

    /// Drops the profiles of viewers gone for longer than [`PROFILE_TTL`].
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.profiles.retain(|_, p| {
            p.idle_since
                .is_none_or(|t| now.saturating_duration_since(t) < PROFILE_TTL)
        });
    }

    /// Merges `patch` into the viewer's properties.
    ///
    /// # Errors
    /// `invalid` when the result is over 4 KiB; nothing changes.
    pub fn login(
        &mut self,
        viewer: &ViewerId,
        patch: &Properties,
    ) -> Result<(Properties, RoomEvent), RoomError> {
        let current = self
            .profiles
            .get(viewer)
            .map(|p| p.props.clone())
            .unwrap_or_default();
        let merged = current.merged(patch)?;
        let v = self.bump();
        let idle_since = (!self.viewers.contains_key(viewer)).then(Instant::now);
        self.profiles.insert(
            viewer.clone(),
            Profile {
                props: merged.clone(),
                idle_since,
            },
        );
        let event = RoomEvent::Profile {
            v,
            viewer: viewer.clone(),
            props: merged.clone(),
        };
        Ok((merged, event))
    }

    /// `viewer` votes `answer` in poll `id` (created by its first vote; a
    /// second vote moves the first). Nothing changes and no event is made
    /// when the vote is already that answer.
    ///
    /// # Errors
    /// `invalid` for a new answer past [`MAX_ANSWERS`], or an ephemeral vote
    /// from a viewer who is not present.
    pub fn vote(
        &mut self,
        kind: PollKind,
        id: &str,
        viewer: &ViewerId,
        answer: &str,
    ) -> Result<Option<RoomEvent>, RoomError> {
        if kind == PollKind::Ephemeral && !self.viewers.contains_key(viewer) {
            return Err(RoomError::invalid(
                "ephemeral votes are for viewers in the room",
            ));
        }
        let polls = self.polls(kind);
        if let Some(poll) = polls.get(id) {
            if poll.votes.get(viewer).map(String::as_str) == Some(answer) {
                return Ok(None);
            }
            if !poll.tally.contains_key(answer) && poll.tally.len() >= MAX_ANSWERS {
                return Err(RoomError::invalid(format!(
                    "a poll takes at most {MAX_ANSWERS} different answers"
                )));
            }
        } else if polls.len() >= MAX_POLLS {
            let oldest = polls
                .iter()
                .min_by_key(|(_, p)| p.used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.polls_mut(kind).remove(&oldest);
            }
        }
        let v = self.bump();
        let poll = self.polls_mut(kind).entry(id.to_owned()).or_default();
        unvote(poll, viewer);
        poll.votes.insert(viewer.clone(), answer.to_owned());
        *poll.tally.entry(answer.to_owned()).or_default() += 1;
        poll.used = v;
        Ok(Some(RoomEvent::Poll {
            v,
            kind,
            id: id.to_owned(),
            stats: poll.tally.clone(),
        }))
    }

    /// The stats of poll `id`, or of every poll of `kind`.
    pub fn poll_stats(&self, kind: PollKind, id: Option<&str>) -> Vec<(String, Stats)> {
        self.polls(kind)
            .iter()
            .filter(|(pid, _)| id.is_none_or(|id| id == pid.as_str()))
            .map(|(pid, p)| (pid.clone(), p.tally.clone()))
            .collect()
    }

    /// Adds `delta` to counter `id` (created at 0).
    ///
    /// # Errors
    /// `invalid` when the sum needs more than 28 digits; nothing changes.
    pub fn add(&mut self, id: &str, delta: Amount) -> Result<(Amount, RoomEvent), RoomError> {
        let current = self.counters.get(id).map_or(Amount::ZERO, |c| c.value);
        let value = current
            .checked_add(delta)
            .map_err(|e| RoomError::invalid(format!("counter {id}: {e}")))?;
        if !self.counters.contains_key(id) && self.counters.len() >= MAX_COUNTERS {
            let oldest = self
                .counters
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.counters.remove(&oldest);
            }
        }
        let v = self.bump();
        self.counters
            .insert(id.to_owned(), Counter { value, used: v });
        Ok((
            value,
            RoomEvent::Counter {
                v,
                id: id.to_owned(),
                value: value.to_string(),
            },
        ))
    }

    /// The value of counter `id`, or of every counter.
    pub fn counter_values(&self, id: Option<&str>) -> Vec<(String, String)> {
        self.counters
            .iter()
            .filter(|(cid, _)| id.is_none_or(|id| id == cid.as_str()))
            .map(|(cid, c)| (cid.clone(), c.value.to_string()))
            .collect()
    }

    /// One more (`delta` 1) or one fewer (-1) connection relays `event`;
    /// returns the relays event when the set of relayed types changed.
    pub fn relay(&mut self, event: &str, delta: i32) -> Option<RoomEvent> {
        let before = self.relays.contains_key(event);
        let n = self.relays.entry(event.to_owned()).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.relays.remove(event);
        }
        (before != self.relays.contains_key(event)).then(|| RoomEvent::Relays {
            types: self.relay_types(),
        })
    }

    /// The event types relayed in the room.
    pub fn relay_types(&self) -> Vec<String> {
        let mut t: Vec<String> = self.relays.keys().cloned().collect();
        t.sort();
        t
    }
}

fn unvote(poll: &mut Poll, viewer: &ViewerId) {
    if let Some(old) = poll.votes.remove(viewer) {
        if let Some(n) = poll.tally.get_mut(&old) {
            *n -= 1;
            if *n == 0 {
                poll.tally.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(n: u32) -> ViewerId {
        ViewerId::from_stored(&format!("viewer-{n}"))
    }

    fn stats(room: &RoomData, kind: PollKind, id: &str) -> Stats {
        room.poll_stats(kind, Some(id))
            .pop()
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    #[test]
    fn one_vote_per_viewer_and_voting_again_moves_it() {
        let mut room = RoomData::default();
        let now = Instant::now();
        room.join(&viewer(1), now);
        room.vote(PollKind::Poll, "p", &viewer(1), "a").unwrap();
        room.vote(PollKind::Poll, "p", &viewer(2), "a").unwrap();
        assert_eq!(
            room.vote(PollKind::Poll, "p", &viewer(1), "a").unwrap(),
            None,
            "the same vote again changes nothing"
        );
        room.vote(PollKind::Poll, "p", &viewer(1), "b").unwrap();
        assert_eq!(
            stats(&room, PollKind::Poll, "p"),
            [("a".into(), 1), ("b".into(), 1)].into()
        );
    }

    #[test]
    fn ephemeral_votes_leave_with_the_last_connection() {
        let mut room = RoomData::default();
        let now = Instant::now();
        room.join(&viewer(1), now);
        room.join(&viewer(1), now);
        room.vote(PollKind::Ephemeral, "e", &viewer(1), "x")
            .unwrap();
        assert!(
            room.vote(PollKind::Ephemeral, "e", &viewer(9), "x")
                .is_err(),
            "not present"
        );
        assert!(
            room.leave(&viewer(1), now).is_empty(),
            "one tab is still open"
        );
        assert_eq!(stats(&room, PollKind::Ephemeral, "e").get("x"), Some(&1));
        let events = room.leave(&viewer(1), now);
        assert_eq!(stats(&room, PollKind::Ephemeral, "e"), Stats::new());
        assert!(matches!(events[0], RoomEvent::Poll { ref stats, .. } if stats.is_empty()));
        assert!(matches!(events[1], RoomEvent::Presence { count: 0, .. }));
    }

    #[test]
    fn presence_counts_distinct_viewers() {
        let mut room = RoomData::default();
        let now = Instant::now();
        let (_, e) = room.join(&viewer(1), now);
        assert!(matches!(e[..], [RoomEvent::Presence { count: 1, .. }]));
        let (_, e) = room.join(&viewer(1), now);
        assert!(e.is_empty());
        room.join(&viewer(2), now);
        assert_eq!(room.presence(), 2);
    }

    #[test]
    fn versions_only_grow() {
        let mut room = RoomData::default();
        let a = room.set_config("a");
        let b = room.add("c", Amount::ONE).unwrap().1;
        let (RoomEvent::Config { v: va, .. }, RoomEvent::Counter { v: vb, .. }) = (a, b) else {
            panic!()
        };
        assert!(vb > va);
    }

    #[test]
    fn the_least_recently_used_poll_makes_room_and_answers_are_capped() {
        let mut room = RoomData::default();
        for i in 0..MAX_POLLS {
            room.vote(PollKind::Poll, &format!("p{i}"), &viewer(1), "a")
                .unwrap();
        }
        room.vote(PollKind::Poll, "p0", &viewer(2), "a").unwrap();
        room.vote(PollKind::Poll, "new", &viewer(1), "a").unwrap();
        assert_eq!(room.poll_stats(PollKind::Poll, None).len(), MAX_POLLS);
        assert!(
            room.poll_stats(PollKind::Poll, Some("p1")).is_empty(),
            "p1 was least recently used"
        );
        assert!(!room.poll_stats(PollKind::Poll, Some("p0")).is_empty());
        for i in 0..MAX_ANSWERS {
            room.vote(PollKind::Poll, "wide", &viewer(i as u32), &format!("a{i}"))
                .unwrap();
        }
        assert!(
            room.vote(PollKind::Poll, "wide", &viewer(999), "one too many")
                .is_err()
        );
        assert!(
            room.vote(PollKind::Poll, "wide", &viewer(999), "a0")
                .is_ok()
        );
    }

    #[test]
    fn counters_are_exact_and_refuse_overflow() {
        let mut room = RoomData::default();
        room.add("c", Amount::parse("0.1").unwrap()).unwrap();
        let (v, _) = room.add("c", Amount::parse("0.2").unwrap()).unwrap();
        assert_eq!(v.to_string(), "0.3");
        room.add("big", Amount::parse(&"9".repeat(28)).unwrap())
            .unwrap();
        assert!(room.add("big", Amount::ONE).is_err());
        assert_eq!(room.counter_values(Some("big"))[0].1, "9".repeat(28));
    }

    #[test]
    fn relay_types_follow_their_relaying_connections() {
        let mut room = RoomData::default();
        assert!(room.relay("report", 1).is_some());
        assert!(room.relay("report", 1).is_none());
        assert!(room.relay("report", -1).is_none());
        assert_eq!(room.relay_types(), ["report"]);
        assert!(room.relay("report", -1).is_some());
        assert!(room.relay_types().is_empty());
    }
}
