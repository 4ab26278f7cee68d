//! The open overlays of this instance, grouped by channel. A group watches
//! its channel's doorbell topic (`alerts:{channel}`) while it has members
//! and keeps the overlay view (head alert, pause, settings, key
//! generation) that the doorbells describe; each doorbell newer than the
//! view is turned into frames for the members: `alert` when the head
//! changed, `skip`, `paused`/`resumed`, `settings`, and a close with 4001
//! for overlays whose key was replaced. A doorbell that arrives out of
//! order is ignored (`rev`); a missed settings change, or a pub/sub
//! reconnect, makes the group re-read the view from the store.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde_json::value::RawValue;

use crate::broker::{Broker, BrokerError, TopicListener, TopicWatch};
use crate::domain::ChannelName;
use crate::ws::conn::Conn;

use super::doorbell::{Doorbell, topic};
use super::store::AlertStore;

/// Close code for an overlay whose key was replaced (SPEC §8).
pub const CLOSE_KEY_REPLACED: u16 = 4001;

/// Every group of this instance.
pub struct Overlays {
    groups: Mutex<HashMap<ChannelName, Arc<Group>>>,
    broker: Arc<Broker>,
    store: Arc<AlertStore>,
    /// Open overlay sockets on this instance.
    open: prometheus::IntGauge,
}

impl std::fmt::Debug for Overlays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlays")
            .field("channels", &self.groups.lock().len())
            .finish_non_exhaustive()
    }
}

/// What the members of a group were last told.
#[derive(Default)]
struct View {
    /// Whether a first read has set the view.
    known: bool,
    rev: u64,
    head_id: Option<String>,
    /// `{"op":"alert","alert":…}` of the head, built once for every member.
    head_frame: Option<Arc<str>>,
    paused: bool,
    keygen: u64,
    srev: u64,
    settings: Option<Box<RawValue>>,
}

struct Member {
    id: u64,
    conn: Arc<Conn>,
    keygen: u64,
}

#[derive(Default)]
struct GroupState {
    view: View,
    members: Vec<Member>,
    /// Memberships, attached or not (the group lives while any exists).
    refs: usize,
    next_id: u64,
}

/// The overlays of one channel on this instance.
pub struct Group {
    channel: ChannelName,
    state: Mutex<GroupState>,
    /// Serializes the first read; holds the topic watch once it is live.
    watch: tokio::sync::Mutex<Option<TopicWatch>>,
    store: Arc<AlertStore>,
}

/// A place in a group, taken before the handshake is answered; leaving
/// it (drop) detaches the overlay, and the last one out removes the group
/// and its topic watch.
pub struct Membership {
    overlays: Arc<Overlays>,
    group: Arc<Group>,
    id: u64,
    attached: bool,
}

struct Listener(Weak<Group>);

impl TopicListener for Listener {
    fn on_message(&self, payload: &[u8]) {
        if let Some(group) = self.0.upgrade() {
            match serde_json::from_slice::<Doorbell>(payload) {
                Ok(bell) => group.apply(bell, false),
                Err(e) => {
                    tracing::warn!(error = %e, channel = %group.channel, "unreadable alert doorbell")
                }
            }
        }
    }

    fn on_resync(&self) {
        if let Some(group) = self.0.upgrade() {
            group.reread();
        }
    }
}

fn frame(op: &str) -> String {
    format!(r#"{{"op":"{op}"}}"#)
}

impl Group {
    /// Applies a view: `forced` for a full read (settings included), which
    /// may repeat the current revision.
    fn apply(self: &Arc<Self>, bell: Doorbell, forced: bool) {
        let mut st = self.state.lock();
        let view = &mut st.view;
        let stale = if forced {
            view.known && bell.rev < view.rev
        } else {
            !view.known || bell.rev <= view.rev
        };
        if stale {
            return;
        }
        let mut frames: Vec<Arc<str>> = Vec::new();
        let mut reread = false;
        if let Some(skipped) = &bell.skip {
            if view.head_id.as_ref() == Some(skipped) {
                frames.push(format!(r#"{{"op":"skip","id":{}}}"#, json_str(skipped)).into());
            }
        }
        if bell.paused != view.paused {
            view.paused = bell.paused;
            frames.push(frame(if bell.paused { "paused" } else { "resumed" }).into());
        }
        let head_id = bell.head_id();
        if head_id != view.head_id {
            view.head_frame = bell
                .head
                .as_ref()
                .map(|h| Arc::from(format!(r#"{{"op":"alert","alert":{}}}"#, h.get())));
            view.head_id = head_id;
            frames.extend(view.head_frame.clone());
        }
        if bell.srev != view.srev || forced {
            match bell.settings {
                Some(settings) => {
                    if bell.srev != view.srev && view.known {
                        frames.push(
                            format!(r#"{{"op":"settings","settings":{}}}"#, settings.get()).into(),
                        );
                    }
                    view.settings = Some(settings);
                    view.srev = bell.srev;
                }
                None => reread = true,
            }
        }
        view.rev = bell.rev;
        view.known = true;
        let keygen = bell.keygen.max(view.keygen);
        view.keygen = keygen;
        for m in &st.members {
            if m.keygen < keygen {
                m.conn.end(CLOSE_KEY_REPLACED);
                continue;
            }
            for f in &frames {
                // An overlay that cannot keep up is closed with 4008.
                let _ = m.conn.push_text(f);
            }
        }
        drop(st);
        if reread {
            self.reread();
        }
    }

    /// Reads the view again from the store, in the background.
    fn reread(self: &Arc<Self>) {
        let group = self.clone();
        tokio::spawn(async move {
            match group.store.view(&group.channel).await {
                Ok(bell) => group.apply(bell, true),
                Err(e) => {
                    tracing::warn!(error = %e, channel = %group.channel, "alert view not re-read")
                }
            }
        });
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Overlays {
    /// No overlays yet.
    pub fn new(broker: Arc<Broker>, store: Arc<AlertStore>, open: prometheus::IntGauge) -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            broker,
            store,
            open,
        }
    }

    /// Takes a place in `channel`'s group and makes sure the group watches
    /// its doorbell and knows the view.
    ///
    /// # Errors
    /// [`BrokerError`] when the topic or the view cannot be read (Redis
    /// down); the place is given back.
    pub async fn join(self: &Arc<Self>, channel: &ChannelName) -> Result<Membership, BrokerError> {
        let membership = {
            let mut groups = self.groups.lock();
            let group = groups
                .entry(channel.clone())
                .or_insert_with(|| {
                    Arc::new(Group {
                        channel: channel.clone(),
                        state: Mutex::new(GroupState::default()),
                        watch: tokio::sync::Mutex::new(None),
                        store: self.store.clone(),
                    })
                })
                .clone();
            let id = {
                let mut st = group.state.lock();
                st.refs += 1;
                st.next_id += 1;
                st.next_id
            };
            Membership {
                overlays: self.clone(),
                group,
                id,
                attached: false,
            }
        };
        let group = &membership.group;
        let mut watch = group.watch.lock().await;
        if watch.is_none() {
            let listener: Arc<dyn TopicListener> = Arc::new(Listener(Arc::downgrade(group)));
            let w = self
                .broker
                .watch_topic(&topic(channel.as_str()), listener)
                .await?;
            // Read after the watch is live: no change is missed in between.
            let view = self.store.view(channel).await?;
            group.apply(view, true);
            *watch = Some(w);
        }
        drop(watch);
        Ok(membership)
    }

    fn leave(&self, group: &Arc<Group>) {
        let mut groups = self.groups.lock();
        let mut st = group.state.lock();
        st.refs = st.refs.saturating_sub(1);
        if st.refs == 0
            && groups
                .get(&group.channel)
                .is_some_and(|g| Arc::ptr_eq(g, group))
        {
            groups.remove(&group.channel);
        }
    }

    /// Channels with an open overlay on this instance.
    pub fn channels(&self) -> usize {
        self.groups.lock().len()
    }
}

impl Membership {
    /// The channel.
    pub fn channel(&self) -> &ChannelName {
        &self.group.channel
    }

    /// Attaches the overlay's connection (opened with key generation
    /// `keygen`) and queues its first frames: the welcome, then the alert
    /// in flight. An overlay whose key was replaced meanwhile is closed
    /// with 4001 instead.
    pub fn attach(&mut self, conn: &Arc<Conn>, keygen: u64) {
        let mut st = self.group.state.lock();
        if keygen < st.view.keygen {
            conn.end(CLOSE_KEY_REPLACED);
            return;
        }
        let settings = st.view.settings.as_ref().map_or("{}", |s| s.get());
        let welcome = format!(
            r#"{{"op":"welcome","channel":{},"settings":{},"paused":{}}}"#,
            json_str(self.group.channel.as_str()),
            settings,
            st.view.paused
        );
        let _ = conn.push_text(&welcome);
        if let Some(head) = &st.view.head_frame {
            let _ = conn.push_text(head);
        }
        st.members.push(Member {
            id: self.id,
            conn: conn.clone(),
            keygen,
        });
        self.attached = true;
        self.overlays.open.inc();
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if self.attached {
            self.group.state.lock().members.retain(|m| m.id != self.id);
            self.overlays.open.dec();
        }
        self.overlays.leave(&self.group);
    }
}
