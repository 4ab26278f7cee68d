//! EventSub over Twitch's WebSocket transport (SPEC §10; TWITCH.md §12),
//! for a bridge without a public https URL (`EVENTSUB_TRANSPORT=websocket`).
//!
//! One socket per streamer who connected alerts, opened with that
//! streamer's user token. [`EventSubSockets`] is the supervisor: it looks at
//! the grants at start, whenever the `grants` topic rings, and every
//! `ws_lease_poll`; for each working grant whose socket nobody holds it
//! takes the lease (`store`; in memory mode it always has it) and starts
//! the socket (`socket::Runner`) with its ingest queue (`deliver`); a
//! socket whose grant is revoked, or whose lease this instance lost, is
//! stopped. The lease is renewed every third of `ws_lease_ttl`; when the
//! renewals fail for two thirds of it the socket is closed before another
//! instance may take it, so two instances never both hold a streamer's
//! socket for long, and one that dies is replaced within `ws_lease_ttl +
//! ws_lease_poll` (20 s by default, SPEC: 30).
//!
//! The socket's state (`status`) is on `/readyz`, in the metrics and, for
//! the streamer, in the dashboard's alert sources. Channels that viewers
//! pick but whose streamer has not connected get a `system` message
//! (`subscription.error`) saying their events need the webhook transport,
//! at most once per `ensure_retry_after`; no webhook subscription is made
//! in this mode.

pub mod deliver;
pub mod socket;
pub mod status;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::web;
use chrono::Utc;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::TopicListener;
use crate::config::{EventSubTransport, Limits};
use crate::domain::{ChannelName, MessageDraft, Source};
use crate::state::AppState;
use crate::twitch::Twitch;
use crate::twitch::grants::{GRANTS_TOPIC, Grant};
use crate::twitch::subscriptions::ERROR_EVENT_TYPE;

use socket::Runner;
use status::{SocketStatus, StatusCell};
use store::SocketStore;

/// Most channels remembered for the "needs the webhook transport" notice.
const MAX_NOTICES: usize = 100_000;

/// A socket this instance runs.
struct Held {
    cancel: CancellationToken,
    status: StatusCell,
    grant_changed: Arc<Notify>,
    /// The grant the socket subscribed with (connect time, scopes): a new
    /// one rings `grant_changed`.
    grant_seen: (i64, Vec<String>),
}

/// The supervisor of this instance's EventSub sockets.
pub struct EventSubSockets {
    instance: String,
    store: SocketStore,
    held: Mutex<HashMap<ChannelName, Held>>,
    wake: Arc<Notify>,
    notices: Mutex<HashMap<ChannelName, Instant>>,
    /// The supervisor and every socket's lease keeper: shutdown waits for
    /// them, so that leases are released before the process exits.
    tasks: TaskTracker,
}

impl std::fmt::Debug for EventSubSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubSockets")
            .field("instance", &self.instance)
            .field("held", &self.held.lock().len())
            .finish_non_exhaustive()
    }
}

/// Rings the supervisor when the `grants` topic does.
struct Wake(Arc<Notify>);

impl TopicListener for Wake {
    fn on_message(&self, _payload: &[u8]) {
        self.0.notify_one();
    }
    fn on_resync(&self) {
        self.0.notify_one();
    }
}

impl EventSubSockets {
    /// Starts the supervisor when the server is in Twitch mode with the
    /// WebSocket transport; `None` otherwise.
    pub fn start(state: &web::Data<AppState>) -> Option<Arc<Self>> {
        if state.settings.eventsub_transport != EventSubTransport::WebSocket {
            return None;
        }
        let twitch = state.twitch.clone()?;
        let this = Arc::new(Self {
            instance: uuid::Uuid::new_v4().simple().to_string(),
            store: SocketStore::new(&state.broker),
            held: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            notices: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
        });
        this.tasks
            .spawn(Arc::clone(&this).supervise(state.clone(), twitch));
        Some(this)
    }

    /// Returns once the supervisor and every socket have stopped (after
    /// shutdown) and their leases are released.
    pub async fn stopped(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// This instance's id (the lease holder's name).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    async fn supervise(self: Arc<Self>, state: web::Data<AppState>, twitch: Arc<Twitch>) {
        let limits = state.settings.limits.clone();
        let shutdown = state.shutdown.clone();
        let mut watch = None;
        loop {
            if watch.is_none() {
                match state
                    .broker
                    .watch_topic(GRANTS_TOPIC, Arc::new(Wake(self.wake.clone())))
                    .await
                {
                    Ok(w) => watch = Some(w),
                    Err(e) => tracing::warn!(error = %e, "cannot watch grant changes yet"),
                }
            }
            self.scan(&state, &twitch, &limits).await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(limits.ws_lease_poll) => {}
            }
        }
        for held in self.held.lock().values() {
            held.cancel.cancel();
        }
    }

    /// One look at the grants: start what is ours to hold, stop what is not.
    async fn scan(
        self: &Arc<Self>,
        state: &web::Data<AppState>,
        twitch: &Arc<Twitch>,
        limits: &Limits,
    ) {
        let channels = match twitch.grants.channels().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the grants; EventSub sockets unchanged");
                return;
            }
        };
        for channel in channels {
            let grant = match twitch.grants.get(&channel).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "cannot read a grant");
                    continue;
                }
            };
            let working = grant.filter(Grant::is_active);
            let start = {
                let mut held = self.held.lock();
                match (held.get_mut(&channel), working) {
                    (Some(h), None) => {
                        tracing::info!(%channel, "grant revoked or gone: stopping its EventSub socket");
                        h.cancel.cancel();
                        None
                    }
                    (Some(h), Some(g)) => {
                        let seen = (g.connected_at, g.scopes.clone());
                        if h.grant_seen != seen {
                            h.grant_seen = seen;
                            h.grant_changed.notify_one();
                        }
                        None
                    }
                    (None, working) => working,
                }
            };
            let Some(grant) = start else {
                continue;
            };
            match self
                .store
                .acquire(&channel, &self.instance, limits.ws_lease_ttl)
                .await
            {
                Ok(true) => self.hold(state, twitch, channel, &grant),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "cannot take the EventSub socket lease");
                }
            }
        }
    }

    /// Starts the socket of `channel` (its lease is ours) and the task that
    /// keeps the lease while it runs.
    fn hold(
        self: &Arc<Self>,
        state: &web::Data<AppState>,
        twitch: &Arc<Twitch>,
        channel: ChannelName,
        grant: &Grant,
    ) {
        let cancel = state.shutdown.child_token();
        let status = StatusCell::new(SocketStatus::new(channel.clone(), &self.instance));
        let grant_changed = Arc::new(Notify::new());
        self.held.lock().insert(
            channel.clone(),
            Held {
                cancel: cancel.clone(),
                status: status.clone(),
                grant_changed: grant_changed.clone(),
                grant_seen: (grant.connected_at, grant.scopes.clone()),
            },
        );
        let mut types: Vec<String> = state.settings.event_types.clone();
        for t in crate::twitch::alert_sources::alert_types() {
            if !types.iter().any(|x| x == t) {
                types.push(t.to_owned());
            }
        }
        let runner = Runner {
            state: state.clone(),
            twitch: twitch.clone(),
            channel: channel.clone(),
            status: status.clone(),
            cancel: cancel.clone(),
            grant_changed,
            deliver: deliver::spawn(state.clone(), channel.clone(), state.shutdown.clone()),
            base_url: state.settings.twitch_eventsub_ws_url.clone(),
            types,
        };
        tracing::info!(%channel, instance = %self.instance, "holding the streamer's EventSub socket");
        let this = Arc::clone(self);
        let limits = state.settings.limits.clone();
        let metrics = state.metrics.clone();
        self.tasks.spawn(async move {
            let mut running = tokio::spawn(runner.run());
            let renew_every = limits.ws_lease_ttl / 3;
            let give_up_after = limits.ws_lease_ttl * 2 / 3;
            let mut last_renewed = Instant::now();
            loop {
                tokio::select! {
                    _ = &mut running => break,
                    () = tokio::time::sleep(renew_every) => {
                        match this.store.renew(&channel, &this.instance, limits.ws_lease_ttl).await {
                            Ok(true) => {
                                last_renewed = Instant::now();
                                this.store.put_status(&status.get(), limits.ws_lease_ttl * 3).await;
                            }
                            Ok(false) => {
                                tracing::warn!(%channel, "EventSub socket lease lost; closing the socket");
                                cancel.cancel();
                            }
                            Err(e) if last_renewed.elapsed() >= give_up_after => {
                                tracing::warn!(%channel, error = %e, "cannot renew the EventSub socket lease; closing the socket before it expires");
                                cancel.cancel();
                            }
                            Err(e) => {
                                tracing::warn!(%channel, error = %e, "cannot renew the EventSub socket lease yet");
                            }
                        }
                    }
                }
            }
            this.held.lock().remove(&channel);
            this.store.release(&channel, &this.instance).await;
            let _ = metrics
                .eventsub_ws
                .last_message_age
                .remove_label_values(&[channel.as_str()]);
            // Someone else (or this instance, later) may take it now.
            this.wake.notify_one();
        });
    }

    /// The socket state of `channel`: this instance's, or (Redis mode) the
    /// holder's as it stored it.
    pub async fn status_of(&self, channel: &ChannelName) -> Option<SocketStatus> {
        let local = self.held.lock().get(channel).map(|h| h.status.get());
        match local {
            Some(s) => Some(s),
            None => self.store.status(channel).await,
        }
    }

    /// The sockets this instance holds.
    pub fn local_statuses(&self) -> Vec<SocketStatus> {
        let mut out: Vec<SocketStatus> =
            self.held.lock().values().map(|h| h.status.get()).collect();
        out.sort_by(|a, b| a.channel.cmp(&b.channel));
        out
    }

    /// `/readyz`'s `eventsub` object: the sockets this instance holds.
    pub fn readyz_view(&self) -> Value {
        json!({
            "transport": "websocket",
            "instance": self.instance,
            "sockets": self.local_statuses().iter().map(SocketStatus::public_view).collect::<Vec<_>>(),
        })
    }

    /// Sets the last-message-age gauges (called before `/metrics` renders).
    pub fn refresh_metrics(&self, metrics: &crate::metrics::Metrics) {
        for s in self.local_statuses() {
            if let Some(age) = s.last_message_age() {
                metrics
                    .eventsub_ws
                    .last_message_age
                    .with_label_values(&[s.channel.as_str()])
                    .set(age.as_secs_f64());
            }
        }
    }

    /// A viewer picked `streamer` (SPEC §10): without a working grant, its
    /// events cannot come over this transport; say so in the channel (at
    /// most once per `ensure_retry_after`). No webhook subscription is made.
    pub fn on_watch(&self, state: &AppState, streamer: &ChannelName) {
        let Some(twitch) = state.twitch.clone() else {
            return;
        };
        let retry_after = state.settings.limits.ensure_retry_after;
        {
            let mut notices = self.notices.lock();
            if notices
                .get(streamer)
                .is_some_and(|at| at.elapsed() < retry_after)
            {
                return;
            }
            if notices.len() >= MAX_NOTICES {
                notices.retain(|_, at| at.elapsed() < retry_after);
                if notices.len() >= MAX_NOTICES {
                    return;
                }
            }
            notices.insert(streamer.clone(), Instant::now());
        }
        let broker = state.broker.clone();
        let streamer = streamer.clone();
        tokio::spawn(async move {
            match twitch.grants.get(&streamer).await {
                Ok(Some(g)) if g.is_active() => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(channel = %streamer, error = %e, "cannot read the grant");
                    return;
                }
            }
            publish_needs_webhook(&broker, &streamer).await;
        });
    }
}

/// The `system` message of SPEC §10 for a channel whose streamer has not
/// connected alerts.
async fn publish_needs_webhook(broker: &crate::broker::Broker, streamer: &ChannelName) {
    let text = format!(
        "No events for {streamer} yet: this bridge receives EventSub over WebSocket (no public https URL), \
         which needs {streamer} to connect alerts here; other channels' events need the webhook transport"
    );
    let data = json!({
        "streamer": streamer.as_str(),
        "type": null,
        "error": "the streamer has not connected alerts, and without a public https PUBLIC_URL there is no webhook transport",
        "transport": "websocket",
    });
    let Ok(data) = RawValue::from_string(data.to_string()) else {
        return;
    };
    let draft = MessageDraft {
        channel: streamer.clone(),
        event_type: ERROR_EVENT_TYPE.into(),
        version: "1".into(),
        source: Source::System,
        at: Utc::now(),
        text,
        data,
    };
    if let Err(e) = broker.publish(draft).await {
        tracing::warn!(channel = %streamer, error = %e, "could not publish the transport notice");
    }
}
