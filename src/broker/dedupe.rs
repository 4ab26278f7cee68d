//! In-memory claims for webhook message ids and publish idempotency keys,
//! and the memory broker's publish markers: a key is either *leased* (an
//! attempt is working on it, for a few seconds) or *done* (processed, with
//! a value, for the de-duplication window). Entries expire, and the map
//! never holds more than its capacity (the oldest go first), so a flood of
//! unique ids cannot exhaust memory.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// What a claim found, as a store reports it (`broker::claim` wraps it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimState {
    /// Free: the caller holds the lease with this token now.
    New(u64),
    /// Another attempt holds an unexpired lease.
    InFlight,
    /// Processed; the value it was completed with.
    Done(String),
}

#[derive(Debug)]
enum Held {
    /// Leased to the attempt with this token.
    Lease(u64),
    /// Completed with this value.
    Done(String),
}

#[derive(Debug)]
struct Entry {
    expiry: Instant,
    generation: u64,
    held: Held,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// (expiry, generation, key) in insertion order; rows whose generation
    /// no longer matches their entry are stale and skipped.
    order: VecDeque<(Instant, u64, String)>,
    generation: u64,
}

impl Inner {
    fn insert(
        &mut self,
        key: &str,
        ttl: Duration,
        held: impl FnOnce(u64) -> Held,
        now: Instant,
    ) -> u64 {
        self.generation += 1;
        let generation = self.generation;
        let expiry = now + ttl;
        self.entries.insert(
            key.to_owned(),
            Entry {
                expiry,
                generation,
                held: held(generation),
            },
        );
        self.order.push_back((expiry, generation, key.to_owned()));
        generation
    }

    fn live(&self, key: &str, now: Instant) -> Option<&Held> {
        self.entries
            .get(key)
            .filter(|e| e.expiry > now)
            .map(|e| &e.held)
    }
}

/// Bounded, expiring claim store.
#[derive(Debug)]
pub struct DedupeStore {
    inner: Mutex<Inner>,
    /// Most live keys kept.
    capacity: usize,
}

impl DedupeStore {
    /// A store holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// Claims `key`: a free (or expired) key is leased to the caller for
    /// `lease`; a leased one is in flight; a done one reports its value.
    pub(crate) fn claim(&self, key: &str, lease: Duration) -> ClaimState {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        self.make_room(&mut inner, now);
        match inner.live(key, now) {
            Some(Held::Lease(_)) => return ClaimState::InFlight,
            Some(Held::Done(v)) => return ClaimState::Done(v.clone()),
            None => {}
        }
        ClaimState::New(inner.insert(key, lease, Held::Lease, now))
    }

    /// Marks `key` done with `value` for `window`, whoever holds it.
    pub fn complete(&self, key: &str, value: &str, window: Duration) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        if !inner.entries.contains_key(key) {
            self.make_room(&mut inner, now);
        }
        inner.insert(key, window, |_| Held::Done(value.to_owned()), now);
    }

    /// Frees `key` if the lease with `token` still holds it, so a retry is
    /// processed at once.
    pub fn release(&self, key: &str, token: u64) {
        let mut inner = self.inner.lock();
        if inner
            .entries
            .get(key)
            .is_some_and(|e| matches!(e.held, Held::Lease(t) if t == token))
        {
            inner.entries.remove(key);
        }
    }

    /// The value of a done key.
    pub fn done_value(&self, key: &str) -> Option<String> {
        match self.inner.lock().live(key, Instant::now()) {
            Some(Held::Done(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Live keys.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired rows, then the oldest keys until one more fits.
    fn make_room(&self, inner: &mut Inner, now: Instant) {
        while let Some((expiry, generation, _)) = inner.order.front() {
            if *expiry > now {
                break;
            }
            let generation = *generation;
            if let Some((_, _, key)) = inner.order.pop_front() {
                if inner
                    .entries
                    .get(&key)
                    .is_some_and(|e| e.generation == generation)
                {
                    inner.entries.remove(&key);
                }
            }
        }
        while inner.entries.len() >= self.capacity {
            let Some((_, generation, old)) = inner.order.pop_front() else {
                break;
            };
            if inner
                .entries
                .get(&old)
                .is_some_and(|e| e.generation == generation)
            {
                inner.entries.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);
    const WINDOW: Duration = Duration::from_secs(600);

    fn token(state: ClaimState) -> u64 {
        match state {
            ClaimState::New(t) => t,
            other => panic!("expected New, got {other:?}"),
        }
    }

    #[test]
    fn a_leased_key_is_in_flight_until_it_is_done() {
        let s = DedupeStore::new(10);
        token(s.claim("a", LEASE));
        assert_eq!(s.claim("a", LEASE), ClaimState::InFlight);
        s.complete("a", "1-0", WINDOW);
        assert_eq!(s.claim("a", LEASE), ClaimState::Done("1-0".into()));
        assert_eq!(s.done_value("a").as_deref(), Some("1-0"));
    }

    #[test]
    fn expired_leases_and_released_keys_are_new_again() {
        let s = DedupeStore::new(10);
        token(s.claim("a", Duration::ZERO));
        let t = token(s.claim("a", LEASE));
        s.release("a", t);
        token(s.claim("a", LEASE));
    }

    #[test]
    fn only_the_holder_of_the_lease_releases_it() {
        let s = DedupeStore::new(10);
        let old = token(s.claim("a", Duration::ZERO));
        let current = token(s.claim("a", LEASE));
        // The first attempt's lease lapsed; its late release frees nothing.
        s.release("a", old);
        assert_eq!(s.claim("a", LEASE), ClaimState::InFlight);
        s.complete("a", "done", WINDOW);
        s.release("a", current);
        assert_eq!(s.claim("a", LEASE), ClaimState::Done("done".into()));
    }

    #[test]
    fn a_flood_of_unique_ids_stays_within_capacity() {
        let s = DedupeStore::new(1000);
        for i in 0..100_000 {
            let key = format!("id-{i}");
            token(s.claim(&key, LEASE));
            s.complete(&key, "done", WINDOW);
        }
        assert_eq!(s.len(), 1000);
        // The newest are still remembered.
        assert_eq!(s.claim("id-99999", LEASE), ClaimState::Done("done".into()));
    }
}
