//! What happens to an EventSub message once a transport has delivered and
//! authenticated it (SPEC §4 steps 4–7), the same for both transports: the
//! webhook (`webhook`, after its signature and timestamp checks) and the
//! EventSub WebSocket. The challenge echo; or de-duplication by message id
//! (shared across instances in Redis mode), then the revocation or the
//! notification: translated, routed and published. The two transports
//! differ only in how the bytes arrive.
//!
//! De-duplication (`broker::claim`): the message id is leased for the
//! attempt, and marked done only after everything it publishes is stored.
//! An id that is done is a duplicate (2xx, nothing published); an id that
//! another attempt holds is `InFlight` (409, so that Twitch delivers it
//! again; never 2xx, as that attempt may still fail). Every step of an
//! attempt must be safe to run again under the same message id, because a
//! failed or cut-off attempt is retried whole: publishes go through
//! `Broker::publish_once` keyed by the message id (see [`Delivery::key`]),
//! so a retry after an ambiguous Redis timeout does not publish twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::broker::{BrokerError, Claim};
use crate::domain::{ChannelName, ChannelNameError, MessageDraft, Source};
use crate::eventsub::envelope::{MessageType, Notification, Revocation, Verification};
use crate::eventsub::translate;
use crate::state::AppState;

/// The longest a notification waits for its frames to be written (when
/// the sockets are behind).
const INGEST_SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// Dedupe namespace of EventSub message ids (both transports share it).
pub const DEDUPE_NAMESPACE: &str = "webhook";
/// The value a processed message id's claim holds.
const PROCESSED: &str = "done";

/// One authenticated EventSub message, as its transport delivered it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The message id: opaque, never parsed (TWITCH.md §1.1).
    pub message_id: &'a str,
    /// What kind of message it is.
    pub kind: MessageType,
    /// When Twitch sent it (the message's `at`, SPEC §7.13).
    pub at: DateTime<Utc>,
    /// `{"subscription", "event"}`, `{"subscription", "challenge"}` or
    /// `{"subscription"}`: the webhook body, or the WebSocket `payload`.
    pub payload: &'a [u8],
}

impl Delivery<'_> {
    /// The idempotency key of everything this delivery causes (publishes
    /// here; any step added to an attempt keys its effects the same way).
    pub fn key(&self) -> String {
        format!("{DEDUPE_NAMESPACE}:{}", self.message_id)
    }
}

/// What became of a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A verification: echo this challenge (webhook only).
    Challenge(String),
    /// Handled (published, or nothing to publish); the label says how,
    /// for `eventsub_bridge_webhooks_total{outcome}`.
    Done(&'static str),
}

/// Why a delivery could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("body is not valid JSON for a {kind}: {source}")]
    InvalidJson {
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Channel(#[from] ChannelNameError),
    /// Another attempt holds this message id (`broker::claim`).
    #[error("this message is still being processed; deliver it again")]
    InFlight,
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl IngestError {
    /// The metrics outcome label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "rejected_body",
            Self::Channel(_) => "rejected_channel",
            Self::InFlight => "in_flight",
            Self::Broker(_) => "broker_unavailable",
        }
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
    kind: &'static str,
) -> Result<T, IngestError> {
    serde_json::from_slice(body).map_err(|source| IngestError::InvalidJson { kind, source })
}

/// Steps 4 to 7 of SPEC §4 for one authenticated delivery.
///
/// # Errors
/// [`IngestError`] naming the failed rule, or `InFlight`; then the message
/// id is not marked processed, so that Twitch's retry is.
#[tracing::instrument(skip_all, fields(message_id = %delivery.message_id))]
pub async fn ingest(state: &AppState, delivery: Delivery<'_>) -> Result<Outcome, IngestError> {
    // Step 5: a challenge is echoed whenever it comes; it publishes nothing.
    if delivery.kind == MessageType::Verification {
        return verification(delivery.payload);
    }
    let limits = &state.settings.limits;
    // Step 4: at most once per message id, across instances in Redis mode.
    let attempt = match state
        .broker
        .claim(DEDUPE_NAMESPACE, delivery.message_id, limits.claim_lease)
        .await?
    {
        Claim::New(attempt) => attempt,
        Claim::InFlight => return Err(IngestError::InFlight),
        Claim::Done(_) => {
            tracing::info!("duplicate EventSub message acknowledged");
            return Ok(Outcome::Done("duplicate"));
        }
    };
    // An error drops `attempt`, which frees the id for Twitch's retry.
    let outcome = if delivery.kind == MessageType::Revocation {
        revocation(state, &delivery).await?
    } else {
        notification(state, &delivery).await?
    };
    // Only now is the message a duplicate for its resends (SPEC §4 step 7:
    // a 2xx only after it was published).
    attempt.complete(PROCESSED, limits.dedupe_window).await?;
    // Published (stored and queued) by now. While the sockets are behind
    // (a flusher pass in progress) the answer waits for the frames to be
    // written, as a publish's does (backpressure, issue 14); otherwise the
    // next pass writes them and the webhook does not wait for it. The id
    // is done before this wait, so a resend meanwhile is a duplicate.
    state.flushers.settle_if_behind(INGEST_SETTLE_LIMIT).await;
    Ok(outcome)
}

/// Publishes `draft` once per delivery and channel.
async fn publish(
    state: &AppState,
    delivery: &Delivery<'_>,
    draft: MessageDraft,
) -> Result<(), IngestError> {
    // Remembered as long as the message id itself.
    let window = state.settings.limits.dedupe_window;
    state
        .broker
        .publish_once(draft, &delivery.key(), window)
        .await?;
    Ok(())
}

fn verification(body: &[u8]) -> Result<Outcome, IngestError> {
    let v: Verification = parse(body, "verification")?;
    tracing::info!(subscription_type = %v.subscription.sub_type, "challenge answered");
    Ok(Outcome::Challenge(v.challenge))
}

/// The channels a set of broadcaster ids route to, through the registry.
fn route_by_ids(state: &AppState, ids: &[String]) -> Vec<ChannelName> {
    let mut out: Vec<ChannelName> = Vec::new();
    for id in ids {
        if let Some(name) = state.registry.login_for(id) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

async fn revocation(state: &AppState, delivery: &Delivery<'_>) -> Result<Outcome, IngestError> {
    let r: Revocation = parse(delivery.payload, "revocation")?;
    let sub = &r.subscription;
    // SPEC §4 step 6: the subscription is marked revoked, routable or not.
    // The registry tracks webhook subscriptions; a WebSocket one's status
    // is its socket's (`twitch::eventsub_ws`).
    let on_socket = sub
        .transport
        .as_ref()
        .is_some_and(|t| t.method == "websocket");
    if let (Some(twitch), false) = (&state.twitch, on_socket) {
        twitch.subscriptions.mark_revoked(sub);
    }
    // SPEC §8: `authorization_revoked` ends the streamer's alert grant.
    crate::twitch::alert_sources::on_revocation(state, sub).await;
    let channels = route_by_ids(state, &translate::condition_broadcaster_ids(&sub.condition));
    if channels.is_empty() {
        state.metrics.unroutable_events.inc();
        tracing::warn!(subscription_id = %sub.id, "revocation for an unknown broadcaster");
        return Ok(Outcome::Done("revocation_unroutable"));
    }
    let data = serde_json::to_string(sub)
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        .ok_or(IngestError::InvalidJson {
            kind: "revocation",
            source: serde::de::Error::custom("subscription does not serialize"),
        })?;
    for channel in channels {
        let text = format!(
            "Twitch revoked the {} subscription of {} ({})",
            sub.sub_type, channel, sub.status
        );
        let draft = MessageDraft {
            channel,
            event_type: "subscription.revoked".into(),
            version: "1".into(),
            source: Source::System,
            // SPEC §7.13: messages of the bridge carry their publish time.
            at: Utc::now(),
            text,
            data: data.clone(),
        };
        publish(state, delivery, draft).await?;
    }
    tracing::info!(subscription_id = %sub.id, reason = %sub.status, "subscription revoked");
    Ok(Outcome::Done("revocation"))
}

async fn notification(state: &AppState, delivery: &Delivery<'_>) -> Result<Outcome, IngestError> {
    let n: Notification = parse(delivery.payload, "notification")?;
    let event: Value =
        serde_json::from_str(n.event.get()).map_err(|source| IngestError::InvalidJson {
            kind: "notification",
            source,
        })?;
    let sub = &n.subscription;
    for (id, login) in translate::learned_broadcasters(&event) {
        state.registry.learn(&id, &login);
    }
    let logins = translate::route_logins(&sub.sub_type, &event);
    let channels = if logins.is_empty() {
        route_by_ids(state, &translate::condition_broadcaster_ids(&sub.condition))
    } else {
        logins
            .iter()
            .map(|l| ChannelName::parse(l))
            .collect::<Result<Vec<_>, _>>()?
    };
    if channels.is_empty() {
        state.metrics.unroutable_events.inc();
        tracing::warn!(subscription_type = %sub.sub_type, "notification for an unknown broadcaster");
        return Ok(Outcome::Done("unroutable"));
    }
    let text = translate::sentence(&sub.sub_type, &event);
    for channel in &channels {
        let draft = MessageDraft {
            channel: channel.clone(),
            event_type: sub.sub_type.clone(),
            version: sub.version.clone(),
            source: Source::Eventsub,
            at: delivery.at,
            text: text.clone(),
            data: n.event.clone(),
        };
        publish(state, delivery, draft).await?;
    }
    // SPEC §8: at most one alert per accepted notification, idempotent by
    // message id, so a retry after a failure here does not queue twice.
    state
        .alerts
        .from_notification(delivery.message_id, &sub.sub_type, &event, &channels)
        .await?;
    tracing::info!(subscription_type = %sub.sub_type, "notification published");
    Ok(Outcome::Done("accepted"))
}
