//! In-memory "seen before" store for webhook message ids and publish
//! idempotency keys: entries expire after their window, and the map never
//! holds more than its capacity (the oldest go first), so a flood of unique
//! ids cannot exhaust memory.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: the caller owns the key now.
    New,
    /// Seen within the window; the value stored for it, if any was set.
    Seen(Option<String>),
}

#[derive(Debug, Default)]
struct Inner {
    /// key → (expiry, generation, value)
    entries: HashMap<String, (Instant, u64, Option<String>)>,
    /// (expiry, generation, key) in insertion order; stale rows are skipped.
    order: VecDeque<(Instant, u64, String)>,
    generation: u64,
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

    /// Claims `key` for `ttl`: `New` the first time within the window.
    pub fn claim(&self, key: &str, ttl: Duration) -> Claim {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        Self::expire(&mut inner, now);
        if let Some((expiry, _, value)) = inner.entries.get(key) {
            if *expiry > now {
                return Claim::Seen(value.clone());
            }
        }
        while inner.entries.len() >= self.capacity {
            let Some((_, generation, old)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&old).is_some_and(|e| e.1 == generation) {
                inner.entries.remove(&old);
            }
        }
        inner.generation += 1;
        let generation = inner.generation;
        let expiry = now + ttl;
        inner
            .entries
            .insert(key.to_owned(), (expiry, generation, None));
        inner.order.push_back((expiry, generation, key.to_owned()));
        Claim::New
    }

    /// Stores `value` for a claimed key (e.g. the id a publish got).
    pub fn set_value(&self, key: &str, value: &str) {
        if let Some(entry) = self.inner.lock().entries.get_mut(key) {
            entry.2 = Some(value.to_owned());
        }
    }

    /// Forgets `key`, so a retry is processed again.
    pub fn release(&self, key: &str) {
        self.inner.lock().entries.remove(key);
    }

    /// Live keys.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(inner: &mut Inner, now: Instant) {
        while let Some((expiry, generation, _)) = inner.order.front() {
            if *expiry > now {
                break;
            }
            let (generation, key) = (*generation, inner.order.pop_front().map(|r| r.2));
            if let Some(key) = key {
                if inner.entries.get(&key).is_some_and(|e| e.1 == generation) {
                    inner.entries.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_new_once_within_its_window() {
        let s = DedupeStore::new(10);
        assert_eq!(s.claim("a", Duration::from_secs(60)), Claim::New);
        assert_eq!(s.claim("a", Duration::from_secs(60)), Claim::Seen(None));
        s.set_value("a", "1-0");
        assert_eq!(
            s.claim("a", Duration::from_secs(60)),
            Claim::Seen(Some("1-0".into()))
        );
    }

    #[test]
    fn expired_and_released_keys_are_new_again() {
        let s = DedupeStore::new(10);
        assert_eq!(s.claim("a", Duration::ZERO), Claim::New);
        assert_eq!(s.claim("a", Duration::from_secs(60)), Claim::New);
        s.release("a");
        assert_eq!(s.claim("a", Duration::from_secs(60)), Claim::New);
    }

    #[test]
    fn a_flood_of_unique_ids_stays_within_capacity() {
        let s = DedupeStore::new(1000);
        for i in 0..100_000 {
            s.claim(&format!("id-{i}"), Duration::from_secs(600));
        }
        assert_eq!(s.len(), 1000);
        // The newest are still remembered.
        assert_eq!(
            s.claim("id-99999", Duration::from_secs(600)),
            Claim::Seen(None)
        );
    }
}
