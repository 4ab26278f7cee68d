//! Sliding-window frame limiter (SPEC §7.2): at most N acted-on frames in
//! any window.

use std::time::{Duration, Instant};

/// Timestamps of the frames acted on within the last window.
#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    /// Oldest first; at most `max` instants. Grown one slot at a time and
    /// given back once empty: every connection holds one, and most send a
    /// frame or two (a subscribe) and then only read.
    recent: Vec<Instant>,
    max: usize,
}

impl RateLimiter {
    /// At most `max` frames per `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            window,
            recent: Vec::new(),
            max,
        }
    }

    /// True (and counted) when a frame at `now` may be acted on.
    pub fn allow(&mut self, now: Instant) -> bool {
        let expired = self
            .recent
            .iter()
            .take_while(|t| now.duration_since(**t) >= self.window)
            .count();
        if expired == self.recent.len() {
            self.recent = Vec::new();
        } else {
            self.recent.drain(..expired);
        }
        if self.recent.len() < self.max {
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
        let mut r = RateLimiter::new(20, Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(r.allow(t0 + Duration::from_millis(i * 10)));
        }
        assert!(!r.allow(t0 + Duration::from_millis(500)));
        // One second after the first frame, one slot frees up.
        assert!(r.allow(t0 + Duration::from_millis(1000)));
        assert!(!r.allow(t0 + Duration::from_millis(1001)));
    }

    #[test]
    fn refused_frames_do_not_extend_the_window() {
        let mut r = RateLimiter::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(r.allow(t0));
        assert!(r.allow(t0));
        for i in 1..10 {
            assert!(!r.allow(t0 + Duration::from_millis(i * 50)));
        }
        assert!(r.allow(t0 + Duration::from_secs(1)));
    }
}
