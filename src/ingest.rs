//! What happens to an EventSub message once a transport has delivered and
//! authenticated it (SPEC §4 steps 4–7), the same for both transports: the
//! webhook (`webhook`, after its signature and timestamp checks) and the
//! EventSub WebSocket. De-duplication by message id (shared across
//! instances in Redis mode), then the challenge echo, the revocation or
//! the notification: translated, routed and published. The two transports
//! differ only in how the bytes arrive.

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::broker::{BrokerError, Claim};
use crate::domain::{ChannelName, ChannelNameError, MessageDraft, Source};
use crate::eventsub::envelope::{MessageType, Notification, Revocation, Verification};
use crate::eventsub::translate;
use crate::state::AppState;

/// Dedupe namespace of EventSub message ids (both transports share it).
pub const DEDUPE_NAMESPACE: &str = "webhook";

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
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl IngestError {
    /// The metrics outcome label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "rejected_body",
            Self::Channel(_) => "rejected_channel",
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
/// [`IngestError`] naming the failed rule; then the message id is left
/// unclaimed so that Twitch's retry is processed.
#[tracing::instrument(skip_all, fields(message_id = %delivery.message_id))]
pub async fn ingest(state: &AppState, delivery: Delivery<'_>) -> Result<Outcome, IngestError> {
    let limits = &state.settings.limits;
    // Step 4: at most once per message id, across instances in Redis mode.
    let claim = state
        .broker
        .claim(DEDUPE_NAMESPACE, delivery.message_id, limits.dedupe_window)
        .await?;
    if claim != Claim::New && delivery.kind != MessageType::Verification {
        tracing::info!("duplicate EventSub message acknowledged");
        return Ok(Outcome::Done("duplicate"));
    }
    let result = match delivery.kind {
        MessageType::Verification => verification(delivery.payload),
        MessageType::Revocation => revocation(state, delivery.payload).await,
        MessageType::Notification => {
            notification(state, delivery.message_id, delivery.payload, delivery.at).await
        }
    };
    if result.is_err() && claim == Claim::New {
        // Not processed: let Twitch's retry in (SPEC §4 step 7).
        state
            .broker
            .release(DEDUPE_NAMESPACE, delivery.message_id)
            .await;
    }
    result
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

async fn revocation(state: &AppState, body: &[u8]) -> Result<Outcome, IngestError> {
    let r: Revocation = parse(body, "revocation")?;
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
    crate::alert_sources::on_revocation(state, sub).await;
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
        state
            .broker
            .publish(MessageDraft {
                channel,
                event_type: "subscription.revoked".into(),
                version: "1".into(),
                source: Source::System,
                // SPEC §7.13: messages of the bridge carry their publish time.
                at: Utc::now(),
                text,
                data: data.clone(),
            })
            .await?;
    }
    tracing::info!(subscription_id = %sub.id, reason = %sub.status, "subscription revoked");
    Ok(Outcome::Done("revocation"))
}

async fn notification(
    state: &AppState,
    message_id: &str,
    body: &[u8],
    at: DateTime<Utc>,
) -> Result<Outcome, IngestError> {
    let n: Notification = parse(body, "notification")?;
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
        state
            .broker
            .publish(MessageDraft {
                channel: channel.clone(),
                event_type: sub.sub_type.clone(),
                version: sub.version.clone(),
                source: Source::Eventsub,
                at,
                text: text.clone(),
                data: n.event.clone(),
            })
            .await?;
    }
    // SPEC §8: at most one alert per accepted notification, idempotent by
    // message id, so a retry after a failure here does not queue twice.
    state
        .alerts
        .from_notification(message_id, &sub.sub_type, &event, &channels)
        .await?;
    // Answered once the frames are written (backpressure, issue 14).
    state.flushers.settle().await;
    tracing::info!(subscription_type = %sub.sub_type, "notification published");
    Ok(Outcome::Done("accepted"))
}
