//! `AppState`: everything a handler needs, built once by `startup` and
//! shared with `web::Data` (no global state).

use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::alerts::Alerts;
use crate::broker::Broker;
use crate::config::EventSubTransport;
use crate::config::Settings;
use crate::eventsub::registry::BroadcasterRegistry;
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::twitch::Twitch;
use crate::twitch::eventsub_ws::EventSubSockets;
use crate::twitch::helix::HelixError;
use crate::ws::flusher::Flushers;

/// Shared application state.
pub struct AppState {
    /// Validated configuration.
    pub settings: Arc<Settings>,
    /// The message broker.
    pub broker: Arc<Broker>,
    /// Broadcaster id ↔ login.
    pub registry: Arc<BroadcasterRegistry>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// One permit per open WebSocket or SSE connection (`MAX_CONNECTIONS`).
    pub connections: Arc<Semaphore>,
    /// Cancelled when the server stops; connection loops end on it.
    pub shutdown: CancellationToken,
    /// Helix, OAuth and the subscription registry; `None` in local mode.
    pub twitch: Option<Arc<Twitch>>,
    /// Interactive rooms (SPEC §9).
    pub rooms: Arc<Rooms>,
    /// The EventSub socket supervisor (Twitch mode, WebSocket transport;
    /// set once at start, after the state is shared).
    pub eventsub_ws: OnceLock<Arc<EventSubSockets>>,
    /// Alert queues and open overlays (SPEC §8).
    pub alerts: Arc<Alerts>,
    /// Every worker's WebSocket writer; publishes and webhooks wait on
    /// them while they are behind ([`Flushers::settle_if_behind`]).
    pub flushers: Flushers,
    next_conn_id: AtomicU64,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        settings: Arc<Settings>,
        broker: Arc<Broker>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Self {
        let max = settings.limits.max_connections.min(Semaphore::MAX_PERMITS);
        let rooms = Rooms::new(broker.clone(), &settings, &metrics);
        let alerts = Arc::new(Alerts::new(broker.clone(), &settings.limits, &metrics));
        Self {
            alerts,
            settings,
            broker,
            registry: Arc::new(BroadcasterRegistry::default()),
            metrics,
            connections: Arc::new(Semaphore::new(max)),
            shutdown,
            twitch: None,
            rooms,
            eventsub_ws: OnceLock::new(),
            flushers: Flushers::default(),
            next_conn_id: AtomicU64::new(1),
        }
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}

impl AppState {
    /// Adds the Twitch clients when the settings are in Twitch mode.
    ///
    /// # Errors
    /// [`HelixError`] when the HTTP client cannot be built.
    pub fn with_twitch(mut self) -> Result<Self, HelixError> {
        self.twitch =
            Twitch::from_settings(&self.settings, self.registry.clone(), self.broker.clone())?
                .map(Arc::new);
        Ok(self)
    }

    /// Called when a viewer opens `/watch/{streamer}`: in Twitch mode with
    /// webhooks, makes sure the streamer's `EVENT_TYPES` subscriptions
    /// exist, in the background (one Helix round per streamer at a time).
    /// With the WebSocket transport (SPEC §10) no webhook subscription is
    /// made: a streamer who has not connected alerts gets the `system`
    /// notice instead. In local mode there is no Twitch to ask.
    pub fn on_watch(&self, streamer: &crate::domain::ChannelName) {
        let Some(t) = &self.twitch else {
            return;
        };
        match self.settings.eventsub_transport {
            EventSubTransport::Webhook => t.subscriptions.ensure_on_watch(streamer),
            EventSubTransport::WebSocket => {
                if let Some(ws) = self.eventsub_ws.get() {
                    ws.on_watch(self, streamer);
                }
            }
        }
    }
}
