//! The room metrics (`eventsub_bridge_rooms_open`, `_room_members`,
//! `_room_frames_in_total{type}`, `_room_frames_out_total{type}`,
//! `_room_coalesced_total`) with their label values resolved once, so a
//! fan-out counts its frames with one addition.

use std::collections::HashMap;

use prometheus::{IntCounter, IntGauge};

use crate::metrics::Metrics;

/// Frame types counted by name; any other is `other`.
const IN_TYPES: [&str; 16] = [
    "login",
    "profile",
    "subscribe",
    "unsubscribe",
    "chat",
    "poll",
    "ephemeralPoll",
    "counter",
    "config",
    "broadcast",
    "authenticate",
    "relay",
    "deleteRelay",
    "ping",
    "close",
    "other",
];
const OUT_TYPES: [&str; 12] = [
    "config",
    "profile",
    "chat",
    "poll",
    "ephemeralPoll",
    "counter",
    "presence",
    "broadcast",
    "relay",
    "error",
    "pong",
    "other",
];

/// Room metric handles.
#[derive(Debug)]
pub struct RoomMetrics {
    /// Rooms with members on this instance.
    pub rooms_open: IntGauge,
    /// Room connections on this instance.
    pub members: IntGauge,
    /// Updates replaced before they were sent.
    pub coalesced: IntCounter,
    frames_in: HashMap<&'static str, IntCounter>,
    frames_out: HashMap<&'static str, IntCounter>,
}

impl RoomMetrics {
    /// The handles of `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        let resolve = |vec: &prometheus::IntCounterVec, types: &[&'static str]| {
            types
                .iter()
                .map(|t| (*t, vec.with_label_values(&[*t])))
                .collect()
        };
        let m = &metrics.rooms;
        Self {
            rooms_open: m.open.clone(),
            members: m.members.clone(),
            coalesced: m.coalesced.clone(),
            frames_in: resolve(&m.frames_in, &IN_TYPES),
            frames_out: resolve(&m.frames_out, &OUT_TYPES),
        }
    }

    /// Counts one received frame of type `ty`.
    pub fn received(&self, ty: &str) {
        if let Some(c) = self
            .frames_in
            .get(ty)
            .or_else(|| self.frames_in.get("other"))
        {
            c.inc();
        }
    }

    /// Counts `n` frames of type `ty` queued to members.
    pub fn out(&self, ty: &str, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(c) = self
            .frames_out
            .get(ty)
            .or_else(|| self.frames_out.get("other"))
        {
            c.inc_by(n as u64);
        }
    }
}
