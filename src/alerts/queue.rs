//! One channel's alert queue as a state machine (SPEC §8), in memory: the
//! waiting alerts (first in, first out), the one in flight, the pause
//! flag, the last 50 alerts shown or skipped, the settings and the overlay
//! key. Every change bumps `rev` and yields the [`Doorbell`] that tells the
//! overlays. The Redis store runs the same rules as Lua scripts
//! (`store::redis`); the behaviour tests hold both to them.
//!
//! Rules: the head moves into flight when nothing is in flight and the
//! queue is not paused; it leaves on an ack of its id or a skip, and the
//! next moves up. At most `cap` wait, not counting the one in flight.

use std::collections::VecDeque;
use std::sync::Arc;

use super::alert::{Alert, Outcome, RecentAlert};
use super::doorbell::{Doorbell, raw};
use super::settings::Settings;

/// Alerts kept in `recent`.
pub const RECENT_LEN: usize = 50;

/// The waiting queue is at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A channel's alert state.
#[derive(Debug, Default)]
pub struct ChannelQueue {
    rev: u64,
    paused: bool,
    in_flight: Option<Arc<Alert>>,
    waiting: VecDeque<Arc<Alert>>,
    recent: VecDeque<(Outcome, Arc<Alert>)>,
    settings: Settings,
    srev: u64,
    key: Option<String>,
    keygen: u64,
}

/// Everything the alert API's `GET` shows.
#[derive(Debug, Clone)]
pub struct QueueState {
    /// The settings.
    pub settings: Settings,
    /// Whether paused.
    pub paused: bool,
    /// The head, if one is in flight.
    pub in_flight: Option<Alert>,
    /// Waiting, first out first.
    pub queued: Vec<Alert>,
    /// Shown or skipped, newest first.
    pub recent: Vec<RecentAlert>,
}

impl ChannelQueue {
    /// The overlay view now; `skip` names a skipped alert, settings are
    /// included when asked for.
    pub fn doorbell(&self, skip: Option<String>, with_settings: bool) -> Doorbell {
        Doorbell {
            rev: self.rev,
            head: self
                .in_flight
                .as_ref()
                .and_then(|a| serde_json::to_string(a.as_ref()).ok())
                .and_then(raw),
            paused: self.paused,
            keygen: self.keygen,
            srev: self.srev,
            settings: with_settings
                .then(|| raw(self.settings.to_json()))
                .flatten(),
            skip,
        }
    }

    fn changed(&mut self) {
        self.rev += 1;
    }

    fn promote(&mut self) {
        if self.in_flight.is_none() && !self.paused {
            self.in_flight = self.waiting.pop_front();
        }
    }

    fn retire(&mut self, outcome: Outcome) -> Option<Arc<Alert>> {
        let done = self.in_flight.take()?;
        self.recent.push_front((outcome, done.clone()));
        self.recent.truncate(RECENT_LEN);
        self.promote();
        self.changed();
        Some(done)
    }

    /// Queues `alert` at the back (or the front, for a replay); it goes
    /// straight into flight when nothing is there and not paused. Returns
    /// the number waiting afterwards.
    ///
    /// # Errors
    /// [`Full`] when `cap` alerts wait already.
    pub fn enqueue(&mut self, alert: Alert, front: bool, cap: usize) -> Result<usize, Full> {
        let must_wait = self.in_flight.is_some() || self.paused || !self.waiting.is_empty();
        if must_wait && self.waiting.len() >= cap {
            return Err(Full);
        }
        let alert = Arc::new(alert);
        if front {
            self.waiting.push_front(alert);
        } else {
            self.waiting.push_back(alert);
        }
        self.promote();
        self.changed();
        Ok(self.waiting.len())
    }

    /// An ack of `id`: moves the queue on when `id` is in flight; any other
    /// id changes nothing.
    pub fn ack(&mut self, id: &str) -> bool {
        if self.in_flight.as_ref().is_some_and(|a| a.id == id) {
            self.retire(Outcome::Shown);
            true
        } else {
            false
        }
    }

    /// Ends the alert in flight at once; returns its id.
    pub fn skip(&mut self) -> Option<String> {
        self.retire(Outcome::Skipped).map(|a| a.id.clone())
    }

    /// Pauses or resumes; false when it already was so.
    pub fn set_paused(&mut self, paused: bool) -> bool {
        if self.paused == paused {
            return false;
        }
        self.paused = paused;
        self.promote();
        self.changed();
        true
    }

    /// Empties the waiting queue (the alert in flight stays); returns how
    /// many were dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.waiting.len();
        self.waiting.clear();
        if n > 0 {
            self.changed();
        }
        n
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replaces the settings.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
        self.srev += 1;
        self.changed();
    }

    /// The overlay key and its generation, if one was made.
    pub fn key(&self) -> Option<(String, u64)> {
        self.key.clone().map(|k| (k, self.keygen))
    }

    /// The key, made with `fresh` when there is none yet.
    pub fn ensure_key(&mut self, fresh: impl FnOnce() -> String) -> (String, u64) {
        if self.key.is_none() {
            self.key = Some(fresh());
            self.keygen += 1;
        }
        (self.key.clone().unwrap_or_default(), self.keygen)
    }

    /// Replaces the key; overlays opened with the old one are closed.
    pub fn rotate_key(&mut self, key: String) -> (String, u64) {
        self.key = Some(key.clone());
        self.keygen += 1;
        self.changed();
        (key, self.keygen)
    }

    /// A recent alert by id.
    pub fn recent_alert(&self, id: &str) -> Option<Alert> {
        self.recent
            .iter()
            .find(|(_, a)| a.id == id)
            .map(|(_, a)| a.as_ref().clone())
    }

    /// What the API's `GET` shows.
    pub fn state(&self) -> QueueState {
        QueueState {
            settings: self.settings.clone(),
            paused: self.paused,
            in_flight: self.in_flight.as_deref().cloned(),
            queued: self.waiting.iter().map(|a| a.as_ref().clone()).collect(),
            recent: self
                .recent
                .iter()
                .map(|(outcome, a)| RecentAlert {
                    outcome: *outcome,
                    alert: a.as_ref().clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::alerts::kind::Kind;
    use crate::domain::ChannelName;

    fn alert(id: &str) -> Alert {
        Alert {
            id: id.into(),
            channel: ChannelName::parse("c").unwrap(),
            kind: Kind::Follow,
            text: id.into(),
            user: None,
            amount: None,
            currency: None,
            message: None,
            duration_ms: 1000,
            at: Utc::now(),
            test: false,
            replay: false,
            data: serde_json::Value::Null,
        }
    }

    fn head(q: &ChannelQueue) -> Option<String> {
        q.doorbell(None, false).head_id()
    }

    #[test]
    fn one_in_flight_and_the_next_only_after_its_ack() {
        let mut q = ChannelQueue::default();
        q.enqueue(alert("a"), false, 10).unwrap();
        q.enqueue(alert("b"), false, 10).unwrap();
        q.enqueue(alert("c"), false, 10).unwrap();
        assert_eq!(head(&q).as_deref(), Some("a"));
        // Acks of waiting or unknown alerts change nothing.
        assert!(!q.ack("b"));
        assert!(!q.ack("zzz"));
        assert_eq!(head(&q).as_deref(), Some("a"));
        assert!(q.ack("a"));
        assert!(!q.ack("a"), "a later ack of the same alert is ignored");
        assert_eq!(head(&q).as_deref(), Some("b"));
        assert_eq!(q.skip().as_deref(), Some("b"));
        assert_eq!(head(&q).as_deref(), Some("c"));
        let recent: Vec<_> = q
            .state()
            .recent
            .iter()
            .map(|r| (r.outcome, r.alert.id.clone()))
            .collect();
        assert_eq!(
            recent,
            [(Outcome::Skipped, "b".into()), (Outcome::Shown, "a".into())]
        );
    }

    #[test]
    fn the_cap_counts_waiting_alerts_only() {
        let mut q = ChannelQueue::default();
        q.enqueue(alert("a"), false, 2).unwrap();
        assert_eq!(q.enqueue(alert("b"), false, 2), Ok(1));
        assert_eq!(q.enqueue(alert("c"), false, 2), Ok(2));
        assert_eq!(q.enqueue(alert("d"), false, 2), Err(Full));
        assert_eq!(q.state().queued.len(), 2);
    }

    #[test]
    fn pause_finishes_the_alert_on_screen_and_sends_nothing_new() {
        let mut q = ChannelQueue::default();
        q.enqueue(alert("a"), false, 10).unwrap();
        q.enqueue(alert("b"), false, 10).unwrap();
        assert!(q.set_paused(true));
        assert!(!q.set_paused(true));
        assert_eq!(head(&q).as_deref(), Some("a"));
        q.ack("a");
        assert_eq!(head(&q), None);
        q.enqueue(alert("c"), false, 10).unwrap();
        assert_eq!(head(&q), None);
        q.set_paused(false);
        assert_eq!(head(&q).as_deref(), Some("b"));
    }

    #[test]
    fn a_replay_goes_to_the_front_and_clear_keeps_the_head() {
        let mut q = ChannelQueue::default();
        q.enqueue(alert("a"), false, 10).unwrap();
        q.enqueue(alert("b"), false, 10).unwrap();
        q.enqueue(alert("r"), true, 10).unwrap();
        q.ack("a");
        assert_eq!(head(&q).as_deref(), Some("r"));
        q.enqueue(alert("c"), false, 10).unwrap();
        assert_eq!(q.clear(), 2);
        assert_eq!(head(&q).as_deref(), Some("r"));
        q.ack("r");
        assert_eq!(head(&q), None);
    }

    #[test]
    fn recent_keeps_the_last_fifty() {
        let mut q = ChannelQueue::default();
        for i in 0..60 {
            q.enqueue(alert(&i.to_string()), false, 100).unwrap();
            q.ack(&i.to_string());
        }
        let recent = q.state().recent;
        assert_eq!(recent.len(), RECENT_LEN);
        assert_eq!(recent[0].alert.id, "59");
    }

    #[test]
    fn every_change_bumps_the_revision() {
        let mut q = ChannelQueue::default();
        let r0 = q.doorbell(None, false).rev;
        q.enqueue(alert("a"), false, 10).unwrap();
        let r1 = q.doorbell(None, false).rev;
        q.ack("a");
        let r2 = q.doorbell(None, false).rev;
        q.rotate_key("k".into());
        let r3 = q.doorbell(None, false).rev;
        assert!(r0 < r1 && r1 < r2 && r2 < r3);
    }
}
