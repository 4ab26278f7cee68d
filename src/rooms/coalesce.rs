//! Coalescing (SPEC §9): a poll's stats, a counter's value and a room's
//! presence count go out at most once per [`MIN_INTERVAL`] (10 a second),
//! and the last value always goes out. One [`Slot`] per poll, counter and
//! room presence on each instance: an update that arrives within the
//! interval replaces the one waiting, and the waiting one is sent when the
//! interval is over. Every update carries the room's version (monotonic in
//! the store), so an update older than one already seen, as a snapshot
//! read before a newer change can be, is dropped. Pure: the clock is an
//! argument; the room schedules the flushes.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest time between two updates of one slot.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What to do with an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Send it now.
    Send(Arc<str>),
    /// It waits; flush the slot at this time.
    Wait(Instant),
    /// It replaced a waiting one (counted as coalesced); the flush is
    /// already scheduled.
    Replaced,
    /// Older than what was seen: dropped.
    Stale,
}

/// One coalesced value.
#[derive(Debug, Default)]
pub struct Slot {
    /// The newest version seen.
    version: u64,
    /// When this slot last sent.
    last_sent: Option<Instant>,
    /// The newest frame not yet sent.
    pending: Option<Arc<str>>,
}

impl Slot {
    /// The newest version seen.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Offers the update of `version` carried by `frame`, at `now`.
    pub fn offer(&mut self, version: u64, frame: Arc<str>, now: Instant) -> Offered {
        if version < self.version {
            return Offered::Stale;
        }
        self.version = version;
        if self.pending.is_some() {
            self.pending = Some(frame);
            return Offered::Replaced;
        }
        match self.last_sent {
            Some(t) if now < t + MIN_INTERVAL => {
                self.pending = Some(frame);
                Offered::Wait(t + MIN_INTERVAL)
            }
            _ => {
                self.last_sent = Some(now);
                Offered::Send(frame)
            }
        }
    }

    /// The waiting frame, once its time has come (then it counts as sent).
    pub fn due(&mut self, now: Instant) -> Option<Arc<str>> {
        let due = self.deadline().is_some_and(|d| now >= d);
        if !due {
            return None;
        }
        self.last_sent = Some(now);
        self.pending.take()
    }

    /// When the waiting frame is due, if one waits.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref()?;
        Some(
            self.last_sent
                .map_or_else(Instant::now, |t| t + MIN_INTERVAL),
        )
    }

    /// Whether the slot can be forgotten: nothing waits and it has not
    /// sent for a while (a later update is then sent at once anyway).
    pub fn idle(&self, now: Instant) -> bool {
        self.pending.is_none() && self.last_sent.is_none_or(|t| now >= t + MIN_INTERVAL)
    }

    /// Forgets the version (after a resync, the store may have restarted
    /// its numbering).
    pub fn reset_version(&mut self) {
        self.version = 0;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn f(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn the_first_update_goes_at_once_and_later_ones_wait_their_turn() {
        let t0 = Instant::now();
        let mut slot = Slot::default();
        assert_eq!(slot.offer(1, f("a"), t0), Offered::Send(f("a")));
        let at = t0 + MIN_INTERVAL;
        assert_eq!(
            slot.offer(2, f("b"), t0 + Duration::from_millis(10)),
            Offered::Wait(at)
        );
        assert_eq!(
            slot.offer(3, f("c"), t0 + Duration::from_millis(20)),
            Offered::Replaced
        );
        assert_eq!(slot.due(t0 + Duration::from_millis(50)), None, "not yet");
        assert_eq!(slot.due(at), Some(f("c")), "the last value");
        assert_eq!(slot.deadline(), None);
        // After a quiet interval the next one goes at once again.
        assert_eq!(
            slot.offer(4, f("d"), at + MIN_INTERVAL),
            Offered::Send(f("d"))
        );
    }

    #[test]
    fn older_versions_are_dropped() {
        let t0 = Instant::now();
        let mut slot = Slot::default();
        assert_eq!(slot.offer(5, f("new"), t0), Offered::Send(f("new")));
        assert_eq!(slot.offer(4, f("old"), t0 + MIN_INTERVAL), Offered::Stale);
        assert_eq!(
            slot.offer(5, f("same"), t0 + MIN_INTERVAL),
            Offered::Send(f("same"))
        );
        slot.reset_version();
        assert_eq!(slot.version(), 0);
        assert!(matches!(
            slot.offer(1, f("after resync"), t0 + 3 * MIN_INTERVAL),
            Offered::Send(_)
        ));
    }

    proptest! {
        /// Whatever the timing: at most one send per interval, and the last
        /// update is what was sent last.
        #[test]
        fn rate_is_bounded_and_the_last_value_is_sent(gaps in prop::collection::vec(0u64..250, 1..60)) {
            let t0 = Instant::now();
            let mut slot = Slot::default();
            let mut now = t0;
            let mut sent: Vec<(Instant, Arc<str>)> = Vec::new();
            let mut deadline: Option<Instant> = None;
            let flush = |slot: &mut Slot, until: Instant, deadline: &mut Option<Instant>, sent: &mut Vec<(Instant, Arc<str>)>| {
                if let Some(d) = *deadline {
                    if d <= until {
                        if let Some(fr) = slot.due(d) { sent.push((d, fr)); }
                        *deadline = slot.deadline();
                    }
                }
            };
            for (i, gap) in gaps.iter().enumerate() {
                now += Duration::from_millis(*gap);
                flush(&mut slot, now, &mut deadline, &mut sent);
                let frame: Arc<str> = i.to_string().into();
                match slot.offer(i as u64 + 1, frame, now) {
                    Offered::Send(fr) => sent.push((now, fr)),
                    Offered::Wait(at) => deadline = Some(at),
                    Offered::Replaced => {}
                    Offered::Stale => prop_assert!(false, "versions only grow"),
                }
            }
            flush(&mut slot, now + MIN_INTERVAL, &mut deadline, &mut sent);
            let last = (gaps.len() - 1).to_string();
            prop_assert_eq!(sent.last().map(|(_, f)| f.to_string()), Some(last));
            for pair in sent.windows(2) {
                prop_assert!(pair[1].0 >= pair[0].0 + MIN_INTERVAL);
            }
        }
    }
}
