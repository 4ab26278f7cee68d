//! The in-memory alert store: one [`ChannelQueue`] per channel, for the
//! life of the process. Source keys (idempotency) live in a bounded,
//! expiring map like the broker's webhook ids. After a change the doorbell
//! is rung through the broker's topics (a local call in memory mode).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::broker::Broker;
use crate::broker::dedupe::{ClaimState, DedupeStore};
use crate::domain::ChannelName;

use super::super::alert::Alert;
use super::super::doorbell::{Doorbell, topic};
use super::super::queue::{ChannelQueue, QueueState};
use super::super::settings::Settings;
use super::{Enqueued, OverlayKey, SourceKey, fresh_key};

/// Most source keys remembered at once (the oldest go first past it).
const SOURCE_CAPACITY: usize = 200_000;

/// Alert state of every channel, in this process.
pub struct MemoryStore {
    channels: RwLock<HashMap<ChannelName, Arc<Mutex<ChannelQueue>>>>,
    sources: DedupeStore,
    broker: Arc<Broker>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("channels", &self.channels.read().len())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store ringing doorbells through `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        Self {
            channels: RwLock::new(HashMap::new()),
            sources: DedupeStore::new(SOURCE_CAPACITY),
            broker,
        }
    }

    /// The channel's state, made when missing.
    fn channel(&self, channel: &ChannelName) -> Arc<Mutex<ChannelQueue>> {
        if let Some(q) = self.channels.read().get(channel) {
            return q.clone();
        }
        self.channels
            .write()
            .entry(channel.clone())
            .or_default()
            .clone()
    }

    /// The channel's state if it exists (reads never create one).
    fn existing(&self, channel: &ChannelName) -> Option<Arc<Mutex<ChannelQueue>>> {
        self.channels.read().get(channel).cloned()
    }

    async fn ring(&self, channel: &ChannelName, bell: Doorbell) {
        // Never fails in memory mode.
        let _ = self
            .broker
            .publish_topic(&topic(channel.as_str()), &bell.to_bytes())
            .await;
    }

    /// See [`super::AlertStore::enqueue`].
    pub async fn enqueue(
        &self,
        alert: &Alert,
        front: bool,
        source: Option<&SourceKey>,
        cap: usize,
    ) -> Enqueued {
        let q = self.channel(&alert.channel);
        let bell = {
            let mut q = q.lock();
            // Under the channel's lock: a repeat waits for the first.
            let source_key = source.map(|s| (format!("{}:{}", alert.channel, s.key), s.ttl));
            let mut lease = None;
            if let Some((key, ttl)) = &source_key {
                match self.sources.claim(key, *ttl) {
                    ClaimState::New(token) => lease = Some(token),
                    // Not while the lock is held: claim and completion are
                    // both under it.
                    ClaimState::InFlight => return Enqueued::Duplicate(String::new()),
                    ClaimState::Done(id) => return Enqueued::Duplicate(id),
                }
            }
            match q.enqueue(alert.clone(), front, cap) {
                Ok(waiting) => {
                    if let Some((key, ttl)) = &source_key {
                        self.sources.complete(key, &alert.id, *ttl);
                    }
                    (q.doorbell(None, false), waiting)
                }
                Err(_) => {
                    if let (Some((key, _)), Some(token)) = (&source_key, lease) {
                        self.sources.release(key, token);
                    }
                    return Enqueued::Full;
                }
            }
        };
        let (bell, waiting) = bell;
        self.ring(&alert.channel, bell).await;
        Enqueued::Queued { waiting }
    }

    /// See [`super::AlertStore::ack`].
    pub async fn ack(&self, channel: &ChannelName, id: &str) -> bool {
        let Some(q) = self.existing(channel) else {
            return false;
        };
        let bell = {
            let mut q = q.lock();
            if !q.ack(id) {
                return false;
            }
            q.doorbell(None, false)
        };
        self.ring(channel, bell).await;
        true
    }

    /// See [`super::AlertStore::skip`].
    pub async fn skip(&self, channel: &ChannelName) -> Option<String> {
        let q = self.existing(channel)?;
        let (id, bell) = {
            let mut q = q.lock();
            let id = q.skip()?;
            let bell = q.doorbell(Some(id.clone()), false);
            (id, bell)
        };
        self.ring(channel, bell).await;
        Some(id)
    }

    /// See [`super::AlertStore::set_paused`].
    pub async fn set_paused(&self, channel: &ChannelName, paused: bool) {
        let q = self.channel(channel);
        let bell = {
            let mut q = q.lock();
            if !q.set_paused(paused) {
                return;
            }
            q.doorbell(None, false)
        };
        self.ring(channel, bell).await;
    }

    /// See [`super::AlertStore::clear`].
    pub fn clear(&self, channel: &ChannelName) -> usize {
        self.existing(channel).map_or(0, |q| q.lock().clear())
    }

    /// See [`super::AlertStore::settings`].
    pub fn settings(&self, channel: &ChannelName) -> Settings {
        self.existing(channel)
            .map(|q| q.lock().settings().clone())
            .unwrap_or_default()
    }

    /// See [`super::AlertStore::put_settings`].
    pub async fn put_settings(&self, channel: &ChannelName, settings: Settings) {
        let q = self.channel(channel);
        let bell = {
            let mut q = q.lock();
            q.set_settings(settings);
            q.doorbell(None, true)
        };
        self.ring(channel, bell).await;
    }

    /// See [`super::AlertStore::key`].
    pub fn key(&self, channel: &ChannelName) -> Option<OverlayKey> {
        let (key, generation) = self.existing(channel)?.lock().key()?;
        Some(OverlayKey { key, generation })
    }

    /// See [`super::AlertStore::ensure_key`].
    pub fn ensure_key(&self, channel: &ChannelName) -> OverlayKey {
        let (key, generation) = self.channel(channel).lock().ensure_key(fresh_key);
        OverlayKey { key, generation }
    }

    /// See [`super::AlertStore::rotate_key`].
    pub async fn rotate_key(&self, channel: &ChannelName) -> OverlayKey {
        let q = self.channel(channel);
        let (key, bell) = {
            let mut q = q.lock();
            let (key, generation) = q.rotate_key(fresh_key());
            (OverlayKey { key, generation }, q.doorbell(None, false))
        };
        self.ring(channel, bell).await;
        key
    }

    /// See [`super::AlertStore::state`].
    pub fn state(&self, channel: &ChannelName) -> QueueState {
        self.existing(channel)
            .map_or_else(|| ChannelQueue::default().state(), |q| q.lock().state())
    }

    /// See [`super::AlertStore::recent_alert`].
    pub fn recent_alert(&self, channel: &ChannelName, id: &str) -> Option<Alert> {
        self.existing(channel)?.lock().recent_alert(id)
    }

    /// See [`super::AlertStore::view`].
    pub fn view(&self, channel: &ChannelName) -> Doorbell {
        self.existing(channel).map_or_else(
            || ChannelQueue::default().doorbell(None, true),
            |q| q.lock().doorbell(None, true),
        )
    }
}
