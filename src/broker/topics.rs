//! Topics: notifications between instances for features that keep their
//! state in the store (alerts, rooms, the EventSub socket leases), not in
//! a channel's history. A feature watches a topic with a listener; a
//! publish reaches every listener of the topic on every instance, this one
//! included. In memory mode a publish calls the local listeners at once;
//! in Redis mode it is a `PUBLISH {prefix}:t:{topic}`, and each instance
//! holds one pub/sub subscription per watched topic on the broker's one
//! pub/sub connection (the same one channels use).
//!
//! Pub/sub is at most once: a message published while an instance's
//! subscription is down is lost to it. So a topic carries hints ("the
//! queue changed"), never the only copy of state, and after every
//! (re)subscription the listener's [`TopicListener::on_resync`] runs, so
//! that it re-reads whatever the messages describe.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use tokio::sync::Notify;

/// Receives a topic's messages. Called from the broker's listener (or, in
/// memory mode, from the publisher's task): must not block.
pub trait TopicListener: Send + Sync + 'static {
    /// A message published on the topic by any instance.
    fn on_message(&self, payload: &[u8]);

    /// This instance's subscription to the topic was established again
    /// after it had been down: messages may have been missed meanwhile.
    fn on_resync(&self);
}

type Listeners = Vec<(u64, Arc<dyn TopicListener>)>;

/// The topics watched on this instance and their listeners.
#[derive(Default)]
pub struct Topics {
    map: RwLock<HashMap<String, Listeners>>,
    next: AtomicU64,
    /// Wakes the Redis listener after a topic gained its first or lost its
    /// last local listener.
    pub(super) changed: Notify,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics")
            .field("topics", &self.map.read().len())
            .finish_non_exhaustive()
    }
}

impl Topics {
    /// Adds `listener` to `topic`; returns its id and whether it is the
    /// topic's first local listener.
    pub(super) fn add(&self, topic: &str, listener: Arc<dyn TopicListener>) -> (u64, bool) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut map = self.map.write();
        let listeners = map.entry(topic.to_owned()).or_default();
        listeners.push((id, listener));
        let first = listeners.len() == 1;
        drop(map);
        if first {
            self.changed.notify_one();
        }
        (id, first)
    }

    /// Removes listener `id` from `topic`.
    pub(super) fn remove(&self, topic: &str, id: u64) {
        let mut map = self.map.write();
        let Some(listeners) = map.get_mut(topic) else {
            return;
        };
        listeners.retain(|(i, _)| *i != id);
        if listeners.is_empty() {
            map.remove(topic);
            drop(map);
            self.changed.notify_one();
        }
    }

    /// Calls every local listener of `topic` with `payload`.
    pub(super) fn deliver(&self, topic: &str, payload: &[u8]) {
        for listener in self.listeners(topic) {
            listener.on_message(payload);
        }
    }

    /// Tells every local listener of `topic` to re-read its state.
    pub(super) fn resync(&self, topic: &str) {
        for listener in self.listeners(topic) {
            listener.on_resync();
        }
    }

    /// Whether `topic` has a local listener.
    pub(super) fn is_active(&self, topic: &str) -> bool {
        self.map.read().contains_key(topic)
    }

    /// The topics with at least one local listener.
    pub(super) fn active(&self) -> Vec<String> {
        self.map.read().keys().cloned().collect()
    }

    fn listeners(&self, topic: &str) -> Vec<Arc<dyn TopicListener>> {
        // Cloned out so that a listener may watch or drop topics itself.
        self.map
            .read()
            .get(topic)
            .map(|l| l.iter().map(|(_, l)| l.clone()).collect())
            .unwrap_or_default()
    }
}

/// A listener's place on a topic; dropping it stops the listener (and, for
/// the topic's last local listener in Redis mode, the subscription).
pub struct TopicWatch {
    topics: Arc<Topics>,
    topic: String,
    id: u64,
}

impl TopicWatch {
    pub(super) fn new(topics: Arc<Topics>, topic: &str, id: u64) -> Self {
        Self {
            topics,
            topic: topic.to_owned(),
            id,
        }
    }

    /// The topic watched.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl std::fmt::Debug for TopicWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicWatch")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Drop for TopicWatch {
    fn drop(&mut self) {
        self.topics.remove(&self.topic, self.id);
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl TopicListener for Recorder {
        fn on_message(&self, payload: &[u8]) {
            self.0
                .lock()
                .push(String::from_utf8_lossy(payload).into_owned());
        }
        fn on_resync(&self) {
            self.0.lock().push("resync".into());
        }
    }

    #[test]
    fn listeners_get_their_topics_messages_until_their_watch_drops() {
        let topics = Arc::new(Topics::default());
        let a = Arc::new(Recorder::default());
        let b = Arc::new(Recorder::default());
        let (id_a, first) = topics.add("alerts:x", a.clone());
        assert!(first);
        let (id_b, first) = topics.add("alerts:x", b.clone());
        assert!(!first);
        let watch_a = TopicWatch::new(topics.clone(), "alerts:x", id_a);
        let _watch_b = TopicWatch::new(topics.clone(), "alerts:x", id_b);
        topics.deliver("alerts:x", b"one");
        topics.deliver("alerts:y", b"not theirs");
        topics.resync("alerts:x");
        drop(watch_a);
        topics.deliver("alerts:x", b"two");
        assert_eq!(*a.0.lock(), ["one", "resync"]);
        assert_eq!(*b.0.lock(), ["one", "resync", "two"]);
        assert_eq!(topics.active(), ["alerts:x"]);
        drop(_watch_b);
        assert!(topics.active().is_empty());
    }
}
