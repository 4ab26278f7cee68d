//! The in-memory broker (the default): history and fan-out live in the
//! `Hub`, ids come from the channel's last id and the clock, and webhook ids,
//! idempotency keys and publish markers live in bounded `DedupeStore`s.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{ChannelName, Envelope, MessageDraft, MessageId};
use crate::metrics::Metrics;

use super::dedupe::{ClaimState, DedupeStore};
use super::hub::{ConnId, Hub, Subscriber};
use super::topics::{TopicListener, TopicWatch, Topics};
use super::{BrokerError, Replay, now_ms, replay_after};

/// One process's broker.
#[derive(Debug)]
pub struct MemoryBroker {
    hub: Hub,
    topics: Arc<Topics>,
    claims: DedupeStore,
    /// `publish_once` keys (key + channel) → the id they were published with.
    published: DedupeStore,
    /// Messages kept per channel: exactly this many (SPEC §7.4).
    history_len: usize,
    metrics: Metrics,
}

impl MemoryBroker {
    /// A broker keeping `history_len` messages per channel and at most
    /// `claim_capacity` dedupe keys.
    pub fn new(history_len: usize, claim_capacity: usize, metrics: Metrics) -> Self {
        Self {
            hub: Hub::default(),
            topics: Arc::new(Topics::default()),
            claims: DedupeStore::new(claim_capacity),
            published: DedupeStore::new(claim_capacity),
            history_len,
            metrics,
        }
    }

    /// Adds `listener` to `topic` (in one process, live at once).
    pub fn watch_topic(&self, topic: &str, listener: Arc<dyn TopicListener>) -> TopicWatch {
        let (id, _) = self.topics.add(topic, listener);
        TopicWatch::new(self.topics.clone(), topic, id)
    }

    /// Calls the listeners of `topic` with `payload`, on this task.
    pub fn publish_topic(&self, topic: &str, payload: &[u8]) {
        self.topics.deliver(topic, payload);
    }

    /// Assigns the next id, retains and fans out. Never fails in memory.
    pub fn publish(&self, draft: &MessageDraft) -> Result<Envelope, BrokerError> {
        let state = self.hub.channel(&draft.channel);
        let mut st = state.lock();
        let id = st.last_id.unwrap_or(MessageId::ZERO).next(now_ms());
        let env = Envelope::new(id, draft).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        st.last_id = Some(id);
        st.history.push_back(env.clone());
        while st.history.len() > self.history_len {
            st.history.pop_front();
        }
        self.metrics.messages_published.inc();
        st.deliver(&env, &self.metrics);
        Ok(env)
    }

    /// Replays after `since` and registers `sub`, atomically, so nothing
    /// falls between the two.
    pub fn subscribe(
        &self,
        channel: &ChannelName,
        since: Option<MessageId>,
        sub: Subscriber,
    ) -> Replay {
        let state = self.hub.channel(channel);
        let mut st = state.lock();
        let replay = match since {
            None => Replay::default(),
            Some(since) => replay_after(st.history.iter().cloned(), since, usize::MAX),
        };
        st.add(sub, &self.metrics);
        replay
    }

    /// Removes a viewer from a channel.
    pub fn unsubscribe(&self, channel: &ChannelName, conn: ConnId) {
        // History lives in the channel state, so it stays even when empty.
        self.hub.remove(channel, conn, true, &self.metrics);
    }

    /// Up to `limit` retained messages after `since` (or the newest), oldest first.
    pub fn history(
        &self,
        channel: &ChannelName,
        since: Option<MessageId>,
        limit: usize,
    ) -> Vec<Envelope> {
        let Some(state) = self.hub.existing(channel) else {
            return Vec::new();
        };
        let st = state.lock();
        match since {
            Some(since) => st
                .history
                .iter()
                .filter(|e| e.id() > since)
                .take(limit)
                .cloned()
                .collect(),
            None => {
                let skip = st.history.len().saturating_sub(limit);
                st.history.iter().skip(skip).cloned().collect()
            }
        }
    }

    /// Publishes `draft` unless `key` was already published to its
    /// channel within `window`; either way returns the message's id. In one
    /// process a publish is never ambiguous, but an attempt is retried
    /// whole (after it failed past its first channel, or was cut off), and
    /// must not publish again what it already published.
    ///
    /// # Errors
    /// [`BrokerError::Corrupt`] when the message cannot be serialized.
    pub fn publish_once(
        &self,
        draft: &MessageDraft,
        key: &str,
        window: Duration,
    ) -> Result<MessageId, BrokerError> {
        let marker = format!("{key}\n{}", draft.channel);
        if let Some(id) = self.published.done_value(&marker) {
            return MessageId::parse(&id).map_err(|e| BrokerError::Corrupt(e.to_string()));
        }
        let id = self.publish(draft)?.id();
        self.published.complete(&marker, &id.to_string(), window);
        Ok(id)
    }

    /// See [`DedupeStore::claim`].
    pub(crate) fn claim(&self, key: &str, lease: Duration) -> ClaimState {
        self.claims.claim(key, lease)
    }

    /// See [`DedupeStore::complete`].
    pub fn complete(&self, key: &str, value: &str, window: Duration) {
        self.claims.complete(key, value, window);
    }

    /// See [`DedupeStore::release`].
    pub fn release(&self, key: &str, token: u64) {
        self.claims.release(key, token);
    }
}
