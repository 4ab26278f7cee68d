//! At most one log line a second for an event that can repeat once per
//! request (a full alert queue during a follow flood drops every alert
//! after it): each occurrence is still counted in the metrics, but a flood
//! must not become a formatted line and a `write` per webhook.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Lets one log line through per second and counts the rest.
#[derive(Debug)]
pub struct LogLimit {
    start: Instant,
    /// The second (since `start`) of the last line let through, plus one;
    /// 0 before the first.
    last: AtomicU64,
    /// Occurrences held back since the last line let through.
    held: AtomicU64,
}

impl Default for LogLimit {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }
}

impl LogLimit {
    /// `Some(held back since the last line)` when a line may be logged now.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let second = now.saturating_duration_since(self.start).as_secs() + 1;
        if self.last.swap(second, Ordering::Relaxed) == second {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_line_a_second_and_the_rest_counted() {
        let limit = LogLimit::default();
        let t0 = limit.start;
        assert_eq!(limit.allow_at(t0), Some(0), "the first goes through");
        assert_eq!(limit.allow_at(t0 + Duration::from_millis(10)), None);
        assert_eq!(limit.allow_at(t0 + Duration::from_millis(990)), None);
        assert_eq!(
            limit.allow_at(t0 + Duration::from_millis(1_001)),
            Some(2),
            "the next second's first line says how many were held back"
        );
        assert_eq!(limit.allow_at(t0 + Duration::from_millis(1_500)), None);
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(5)), Some(1));
    }
}
