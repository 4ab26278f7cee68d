//! Sliding-window frame limiter (SPEC §7.2): at most N acted-on frames in
//! any window.

use std::time::{Duration, Instant};

/// Timestamps of the frames acted on within the last window. The limits
/// come with each call (they are the settings'): every connection's task
/// holds one of these, so it holds nothing else.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Oldest first; at most `max` instants. Grown one slot at a time and
    /// given back once empty: most viewers send a frame or two (a
    /// subscribe) and then only read.
    recent: Vec<Instant>,
}

impl RateLimiter {
    /// True (and counted) when a frame at `now` may be acted on, at most
    /// `max` frames being allowed per `window`.
    pub fn allow(&mut self, now: Instant, max: usize, window: Duration) -> bool {
        let expired = self
            .recent
            .iter()
            .take_while(|t| now.duration_since(**t) >= window)
            .count();
        if expired == self.recent.len() {
            self.recent = Vec::new();
        } else {
            self.recent.drain(..expired);
        }
        if self.recent.len() < max {
            self.recent.reserve_exact(1);
            self.recent.push(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_frames_pass_and_the_twenty_first_in_the_window_does_not() {
        let mut r = RateLimiter::default();
        let allow = |r: &mut RateLimiter, t| r.allow(t, 20, Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(allow(&mut r, t0 + Duration::from_millis(i * 10)));
        }
        assert!(!allow(&mut r, t0 + Duration::from_millis(500)));
        // One second after the first frame, one slot frees up.
        assert!(allow(&mut r, t0 + Duration::from_millis(1000)));
        assert!(!allow(&mut r, t0 + Duration::from_millis(1001)));
    }

    #[test]
    fn refused_frames_do_not_extend_the_window() {
        let mut r = RateLimiter::default();
        let allow = |r: &mut RateLimiter, t| r.allow(t, 2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(allow(&mut r, t0));
        assert!(allow(&mut r, t0));
        for i in 1..10 {
            assert!(!allow(&mut r, t0 + Duration::from_millis(i * 50)));
        }
        assert!(allow(&mut r, t0 + Duration::from_secs(1)));
        assert!(allow(&mut r, t0 + Duration::from_secs(3)));
        assert_eq!(r.recent.len(), 1, "the expired slots were given back");
    }
}
