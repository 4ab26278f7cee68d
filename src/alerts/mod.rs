//! Alert overlays for OBS (SPEC §8), on top of the broker and the socket
//! layer. A streamer's alerts wait in one queue per channel; the head is
//! in flight to every open overlay of the channel, on every instance, and
//! the next goes only after an overlay acks the head (or the streamer
//! skips it).
//!
//! - `kind`, `alert`, `template`, `settings`: the alert model, its exact
//!   amounts, the per-kind settings and the text templates.
//! - `sources`: EventSub events and API bodies → alert drafts.
//! - `queue`: one channel's queue as a state machine (memory mode);
//!   `store`: the store enum {Memory, Redis} (Redis: Lua scripts, see
//!   `docs/alerts.md`); `doorbell`: what a change tells the overlays.
//! - `overlays`: this instance's open overlays, by channel, fed by the
//!   doorbell topic; `overlay_socket`: the overlay's WebSocket protocol.
//! - `metrics`: enqueued, shown, dropped, queue depth, overlays.
//!
//! This module ([`Alerts`]) is the front the routes and `ingest` use:
//! filters, rendering, ids and metrics around the store.

pub mod alert;
pub mod doorbell;
pub mod kind;
mod log_limit;
pub mod metrics;
pub mod overlay_socket;
pub mod overlays;
pub mod queue;
pub mod settings;
pub mod sources;
pub mod store;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::broker::{Broker, BrokerError};
use crate::config::Limits;
use crate::domain::ChannelName;
use crate::eventsub::samples;

use self::alert::{Alert, new_alert_id};
use self::kind::Kind;
use self::metrics::{AlertMetrics, DropReason};
use self::overlays::Overlays;
use self::queue::QueueState;
use self::settings::Settings;
use self::sources::Draft;
use self::store::{AlertStore, Enqueued, OverlayKey, SourceKey};

/// Where an alert comes from: decides filters, flags and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An EventSub notification: filtered; dropped (and counted) when full.
    EventSub,
    /// `POST /api/alerts/{channel}`: filtered; 429 when full.
    Api,
    /// The dashboard's test button: not filtered, `"test": true`.
    Test,
    /// A replay of a recent alert: not filtered, to the front, `"replay": true`.
    Replay,
}

/// What became of a submitted alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Queued with this id.
    Queued(String),
    /// Its source was queued before, under this id; nothing was queued.
    Duplicate(String),
    /// Its kind's settings filtered it out.
    Filtered(DropReason),
    /// The waiting queue is full.
    Full,
}

/// The alerts of every channel.
pub struct Alerts {
    store: Arc<AlertStore>,
    overlays: Arc<Overlays>,
    metrics: AlertMetrics,
    /// `ALERT_QUEUE_LEN`.
    queue_len: usize,
    /// How long EventSub message ids are remembered.
    dedupe_window: Duration,
    /// How long `Idempotency-Key`s are remembered.
    idempotency_window: Duration,
    /// Logs a full queue at most once a second (a flood drops one alert
    /// per webhook; `metrics` counts each).
    full_log: log_limit::LogLimit,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Alerts {
    /// Alerts kept where the broker keeps messages (Redis or memory).
    pub fn new(broker: Arc<Broker>, limits: &Limits, metrics: &crate::metrics::Metrics) -> Self {
        let metrics = AlertMetrics::new(metrics);
        let store = Arc::new(AlertStore::for_broker(broker.clone()));
        let overlays = Arc::new(Overlays::new(
            broker,
            store.clone(),
            metrics.overlays.clone(),
        ));
        Self {
            store,
            overlays,
            metrics,
            queue_len: limits.alert_queue_len.get(),
            dedupe_window: limits.dedupe_window,
            idempotency_window: limits.idempotency_window,
            full_log: log_limit::LogLimit::default(),
        }
    }

    /// The store (tests and the behaviour suite reach it through here).
    pub fn store(&self) -> &AlertStore {
        &self.store
    }

    /// This instance's open overlays.
    pub fn overlays(&self) -> &Arc<Overlays> {
        &self.overlays
    }

    /// Whether alerts live only as long as this process (memory mode).
    pub fn is_memory(&self) -> bool {
        self.store.is_memory()
    }

    /// The source key of an `Idempotency-Key` of the alert API.
    pub fn api_source(&self, idempotency_key: &str) -> SourceKey {
        SourceKey {
            key: format!("api:{idempotency_key}"),
            ttl: self.idempotency_window,
        }
    }

    /// Filters, renders and queues `draft` for `channel`.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached: nothing was queued.
    pub async fn submit(
        &self,
        channel: &ChannelName,
        draft: Draft,
        origin: Origin,
        source: Option<&SourceKey>,
    ) -> Result<Submitted, BrokerError> {
        let settings = self.store.settings(channel).await?;
        let ks = settings.get(&draft.kind);
        if matches!(origin, Origin::EventSub | Origin::Api) {
            let reason = if !ks.enabled {
                Some(DropReason::Disabled)
            } else if matches!((draft.amount, ks.min_amount), (Some(a), Some(min)) if a < min) {
                Some(DropReason::BelowMinAmount)
            } else {
                None
            };
            if let Some(reason) = reason {
                self.metrics.drop_one(reason);
                return Ok(Submitted::Filtered(reason));
            }
        }
        let alert = Alert {
            id: new_alert_id(),
            channel: channel.clone(),
            text: draft
                .text
                .unwrap_or_else(|| ks.template.render(&draft.fields)),
            user: draft.fields.user,
            amount: draft.amount,
            currency: draft.fields.currency,
            message: draft.fields.message,
            duration_ms: draft.duration_ms.unwrap_or(ks.duration_ms),
            at: Utc::now(),
            test: origin == Origin::Test,
            replay: origin == Origin::Replay,
            data: draft.data,
            kind: draft.kind,
        };
        self.queue(alert, origin, source).await
    }

    async fn queue(
        &self,
        alert: Alert,
        origin: Origin,
        source: Option<&SourceKey>,
    ) -> Result<Submitted, BrokerError> {
        let front = origin == Origin::Replay;
        match self
            .store
            .enqueue(&alert, front, source, self.queue_len)
            .await?
        {
            Enqueued::Queued { waiting } => {
                self.metrics
                    .enqueued
                    .with_label_values(&[alert.kind.metric_label()])
                    .inc();
                #[expect(clippy::cast_precision_loss, reason = "a queue depth")]
                self.metrics.queue_depth.observe(waiting as f64);
                tracing::info!(channel = %alert.channel, kind = %alert.kind, id = %alert.id, waiting, "alert queued");
                Ok(Submitted::Queued(alert.id))
            }
            Enqueued::Duplicate(id) => Ok(Submitted::Duplicate(id)),
            Enqueued::Full => {
                if origin == Origin::EventSub {
                    self.metrics.drop_one(DropReason::QueueFull);
                    if let Some(held) = self.full_log.allow() {
                        tracing::warn!(channel = %alert.channel, kind = %alert.kind, more_since_last_line = held, "alert queue full: alert dropped");
                    }
                }
                Ok(Submitted::Full)
            }
        }
    }

    /// The alert an accepted EventSub notification makes (SPEC §8): at
    /// most one, idempotent by message id; a raid goes to the raided
    /// channel only, anything else to the channel it was routed to.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached (then the webhook
    /// answers 503 and Twitch delivers it again).
    pub async fn from_notification(
        &self,
        message_id: &str,
        sub_type: &str,
        event: &Value,
        routed: &[ChannelName],
    ) -> Result<(), BrokerError> {
        let Some((draft, raided)) = sources::from_event(sub_type, event) else {
            return Ok(());
        };
        let channel = match raided {
            Some(login) => match ChannelName::parse(&login) {
                Ok(c) => c,
                Err(_) => return Ok(()),
            },
            None => match routed.first() {
                Some(c) => c.clone(),
                None => return Ok(()),
            },
        };
        let source = SourceKey {
            key: format!("evt:{message_id}"),
            ttl: self.dedupe_window,
        };
        self.submit(&channel, draft, Origin::EventSub, Some(&source))
            .await
            .map(|_| ())
    }

    /// A sample alert of `kind` with `"test": true`; `None` for a kind
    /// without a sample (custom kinds).
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn test(
        &self,
        channel: &ChannelName,
        kind: &Kind,
    ) -> Result<Option<Submitted>, BrokerError> {
        let draft = match sources::sample_type(kind) {
            Some(t) => samples::notification(t, channel.as_str(), Utc::now())
                .and_then(|body| sources::from_event(t, &body["event"]))
                .map(|(d, _)| d),
            None if *kind == Kind::Donation => Some(sources::sample_donation()),
            None => None,
        };
        let Some(draft) = draft else {
            return Ok(None);
        };
        self.submit(channel, draft, Origin::Test, None)
            .await
            .map(Some)
    }

    /// A copy of recent alert `id` with a new id and `"replay": true`, at
    /// the front of the waiting queue; `None` when `id` is not recent.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn replay(
        &self,
        channel: &ChannelName,
        id: &str,
    ) -> Result<Option<Submitted>, BrokerError> {
        let Some(mut alert) = self.store.recent_alert(channel, id).await? else {
            return Ok(None);
        };
        alert.id = new_alert_id();
        alert.replay = true;
        alert.at = Utc::now();
        self.queue(alert, Origin::Replay, None).await.map(Some)
    }

    /// An overlay's ack.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn ack(&self, channel: &ChannelName, id: &str) -> Result<bool, BrokerError> {
        let moved = self.store.ack(channel, id).await?;
        if moved {
            self.metrics.shown.inc();
        }
        Ok(moved)
    }

    /// Ends the alert on screen at once.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn skip(&self, channel: &ChannelName) -> Result<(), BrokerError> {
        if self.store.skip(channel).await?.is_some() {
            self.metrics.skipped.inc();
        }
        Ok(())
    }

    /// Pauses (nothing new is sent) or resumes.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn set_paused(&self, channel: &ChannelName, paused: bool) -> Result<(), BrokerError> {
        self.store.set_paused(channel, paused).await
    }

    /// Empties the waiting queue.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn clear(&self, channel: &ChannelName) -> Result<(), BrokerError> {
        let n = self.store.clear(channel).await?;
        self.metrics
            .dropped
            .with_label_values(&[DropReason::Cleared.as_str()])
            .inc_by(u64::try_from(n).unwrap_or(0));
        Ok(())
    }

    /// Replaces the settings and pushes them to the overlays.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn put_settings(
        &self,
        channel: &ChannelName,
        settings: Settings,
    ) -> Result<(), BrokerError> {
        self.store.put_settings(channel, settings).await
    }

    /// Everything the dashboard shows.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn state(&self, channel: &ChannelName) -> Result<QueueState, BrokerError> {
        self.store.state(channel).await
    }

    /// The overlay key, made on first use.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn ensure_key(&self, channel: &ChannelName) -> Result<OverlayKey, BrokerError> {
        self.store.ensure_key(channel).await
    }

    /// A new overlay key; overlays opened with the old one close with 4001.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn rotate_key(&self, channel: &ChannelName) -> Result<OverlayKey, BrokerError> {
        self.store.rotate_key(channel).await
    }

    /// The key generation when `given` is the channel's overlay key
    /// (compared in constant time); `None` for a wrong key, or a channel
    /// without one.
    ///
    /// # Errors
    /// [`BrokerError`] when the store cannot be reached.
    pub async fn check_key(
        &self,
        channel: &ChannelName,
        given: &str,
    ) -> Result<Option<u64>, BrokerError> {
        let Some(key) = self.store.key(channel).await? else {
            return Ok(None);
        };
        let same: bool = digest(given).ct_eq(&digest(&key.key)).into();
        Ok(same.then_some(key.generation))
    }
}
