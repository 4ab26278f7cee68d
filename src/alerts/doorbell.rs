//! The doorbell: what a change to a channel's alert queue tells the
//! overlays of every instance (SPEC §8: the head goes to every open
//! overlay). It travels on the broker topic `alerts:{channel}` and carries
//! the whole overlay view (the head, pause, key generation, settings
//! revision), not a delta, so that a listener can apply the newest one it
//! got and ignore older ones: `rev` orders them. Settings travel only when
//! they changed; a listener whose settings revision falls behind re-reads
//! the view from the store (as it does after a pub/sub reconnect).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The broker topic of a channel's alerts.
pub fn topic(channel: &str) -> String {
    format!("alerts:{channel}")
}

/// The overlay view of a channel after a change.
#[derive(Debug, Serialize, Deserialize)]
pub struct Doorbell {
    /// Bumped by every change of the channel's alert state.
    pub rev: u64,
    /// The alert in flight (the head), as its JSON.
    pub head: Option<Box<RawValue>>,
    /// Whether the queue is paused.
    pub paused: bool,
    /// The overlay key's generation: overlays opened with an older one
    /// are closed with 4001.
    pub keygen: u64,
    /// Bumped by every settings change.
    pub srev: u64,
    /// The settings, when this change set them (or on a full read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Box<RawValue>>,
    /// The id of an alert the streamer skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

impl Doorbell {
    /// As the bytes a topic carries.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The head alert's id.
    pub fn head_id(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        self.head
            .as_ref()
            .and_then(|h| serde_json::from_str::<Id>(h.get()).ok())
            .map(|i| i.id)
    }
}

/// A JSON text as a raw value (for text we serialized ourselves).
pub fn raw(json: String) -> Option<Box<RawValue>> {
    RawValue::from_string(json).ok()
}
