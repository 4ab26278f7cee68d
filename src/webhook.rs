//! The EventSub webhook transport (SPEC §4 steps 1–3: headers → signature →
//! timestamp; steps 4–7 are `ingest`, shared with the EventSub WebSocket)
//! and the legacy WebSub callback. `WebhookError` says which rule failed;
//! `error.rs` turns it into a status.

use chrono::Utc;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::broker::{BrokerError, Claim};
use crate::domain::{ChannelName, ChannelNameError, MessageDraft, Source};
use crate::error::ApiError;
use crate::eventsub::envelope::MessageType;
use crate::eventsub::signature::{self, SignatureError, TimestampError};
use crate::eventsub::translate;
use crate::ingest::{DEDUPE_NAMESPACE, Delivery, IngestError, Outcome, ingest};
use crate::state::AppState;

/// The headers of an EventSub request, as received.
#[derive(Debug, Clone)]
pub struct WebhookHeaders {
    /// `Twitch-Eventsub-Message-Id`: opaque, never parsed.
    pub message_id: String,
    /// `Twitch-Eventsub-Message-Timestamp`, signed exactly as received.
    pub timestamp: String,
    /// `Twitch-Eventsub-Message-Signature`.
    pub signature: String,
    /// `Twitch-Eventsub-Message-Type`.
    pub message_type: String,
}

/// What the webhook answers on success.
#[derive(Debug)]
pub enum WebhookReply {
    /// 200 text/plain with the challenge.
    Challenge(String),
    /// 204.
    NoContent,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {0} is not valid text")]
    BadHeader(&'static str),
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Timestamp(#[from] TimestampError),
    #[error("unknown message type `{0}`")]
    UnknownMessageType(String),
    #[error("body is not valid JSON for a {kind}: {source}")]
    InvalidJson {
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Channel(#[from] ChannelNameError),
    #[error("missing query parameter channel")]
    MissingChannel,
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl WebhookError {
    /// The metrics outcome label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) | Self::BadHeader(_) => "rejected_headers",
            Self::Signature(_) => "rejected_signature",
            Self::Timestamp(_) => "rejected_timestamp",
            Self::UnknownMessageType(_) | Self::InvalidJson { .. } | Self::MissingChannel => {
                "rejected_body"
            }
            Self::Channel(_) => "rejected_channel",
            Self::Broker(_) => "broker_unavailable",
            Self::Ingest(e) => e.outcome(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::MissingHeader(_) | WebhookError::BadHeader(_) => {
                Self::bad_request("missing_header", e.to_string())
            }
            WebhookError::Signature(_) => Self::Forbidden(format!("invalid signature: {e}")),
            WebhookError::Timestamp(_) => Self::Forbidden(format!("rejected timestamp: {e}")),
            WebhookError::UnknownMessageType(_) => {
                Self::bad_request("unknown_message_type", e.to_string())
            }
            WebhookError::InvalidJson { .. } => Self::bad_request("invalid_json", e.to_string()),
            WebhookError::Channel(c) => c.into(),
            WebhookError::MissingChannel => Self::bad_request("invalid_channel", e.to_string()),
            WebhookError::Broker(b) => b.into(),
            WebhookError::Ingest(IngestError::InvalidJson { .. }) => {
                Self::bad_request("invalid_json", e.to_string())
            }
            WebhookError::Ingest(IngestError::Channel(c)) => c.into(),
            WebhookError::Ingest(IngestError::InFlight) => {
                Self::Conflict("this message is still being processed; deliver it again")
            }
            WebhookError::Ingest(IngestError::Broker(b)) => b.into(),
        }
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
    kind: &'static str,
) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|source| WebhookError::InvalidJson { kind, source })
}

/// Steps 2 and 3 of SPEC §4 for one request whose headers are present, then
/// the transport-independent steps 4 to 7 (`ingest`).
///
/// # Errors
/// [`WebhookError`] naming the failed rule; a broker failure leaves the
/// message id unclaimed so that Twitch's retry is processed.
#[tracing::instrument(skip_all, fields(message_id = %headers.message_id, message_type = %headers.message_type))]
pub async fn handle_eventsub(
    state: &AppState,
    headers: &WebhookHeaders,
    body: &[u8],
) -> Result<WebhookReply, WebhookError> {
    let limits = &state.settings.limits;
    // Step 2: signature over the raw header strings and body.
    signature::verify(
        state.settings.eventsub_secret.expose().as_bytes(),
        &headers.message_id,
        &headers.timestamp,
        body,
        &headers.signature,
    )?;
    // Step 3: freshness.
    let at = signature::check_timestamp(
        &headers.timestamp,
        Utc::now(),
        limits.max_timestamp_age,
        limits.max_timestamp_skew,
    )?;
    let kind = MessageType::parse(&headers.message_type)
        .ok_or_else(|| WebhookError::UnknownMessageType(headers.message_type.clone()))?;
    let delivery = Delivery {
        message_id: &headers.message_id,
        kind,
        at,
        payload: body,
    };
    match ingest(state, delivery).await? {
        Outcome::Challenge(challenge) => {
            state.metrics.webhook("challenge");
            Ok(WebhookReply::Challenge(challenge))
        }
        Outcome::Done(outcome) => {
            state.metrics.webhook(outcome);
            Ok(WebhookReply::NoContent)
        }
    }
}

/// A legacy WebSub notification: `X-Hub-Signature` over the body, each item
/// of `data` published as `stream.changed` (SPEC §4, §7.7).
///
/// # Errors
/// [`WebhookError`] naming the failed rule.
pub async fn handle_websub(
    state: &AppState,
    channel: Option<&str>,
    signature_header: Option<&str>,
    notification_id: Option<&str>,
    body: &[u8],
) -> Result<WebhookReply, WebhookError> {
    let sig = signature_header.ok_or(WebhookError::Signature(SignatureError::Malformed))?;
    signature::verify_websub(
        state.settings.eventsub_secret.expose().as_bytes(),
        body,
        sig,
    )?;
    let channel = ChannelName::parse(channel.ok_or(WebhookError::MissingChannel)?)?;
    #[derive(serde::Deserialize)]
    struct Items {
        data: Vec<Box<RawValue>>,
    }
    let items: Items = parse(body, "WebSub notification")?;
    let limits = &state.settings.limits;
    let claim_key = notification_id.map(|id| format!("websub:{id}"));
    let attempt = match &claim_key {
        None => None,
        Some(key) => match state
            .broker
            .claim(DEDUPE_NAMESPACE, key, limits.claim_lease)
            .await?
        {
            Claim::New(attempt) => Some(attempt),
            Claim::InFlight => return Err(WebhookError::Ingest(IngestError::InFlight)),
            Claim::Done(_) => {
                state.metrics.webhook("duplicate");
                return Ok(WebhookReply::NoContent);
            }
        },
    };
    let now = Utc::now();
    let drafts: Vec<MessageDraft> = if items.data.is_empty() {
        vec![MessageDraft {
            channel: channel.clone(),
            event_type: "stream.changed".into(),
            version: "1".into(),
            source: Source::Websub,
            at: now,
            text: translate::websub_stream_changed_sentence(channel.as_str(), None),
            data: RawValue::from_string("{}".into()).map_err(|source| {
                WebhookError::InvalidJson {
                    kind: "WebSub notification",
                    source,
                }
            })?,
        }]
    } else {
        let mut out = Vec::with_capacity(items.data.len());
        for item in items.data {
            let value: Value =
                serde_json::from_str(item.get()).map_err(|source| WebhookError::InvalidJson {
                    kind: "WebSub notification",
                    source,
                })?;
            out.push(MessageDraft {
                channel: channel.clone(),
                event_type: "stream.changed".into(),
                version: "1".into(),
                source: Source::Websub,
                at: now,
                text: translate::websub_stream_changed_sentence(channel.as_str(), Some(&value)),
                data: item,
            });
        }
        out
    };
    // An error drops `attempt`, which frees the id for the retry; items
    // published before it are not published again (`publish_once`).
    for (n, draft) in drafts.into_iter().enumerate() {
        match &claim_key {
            Some(key) => {
                let key = format!("{DEDUPE_NAMESPACE}:{key}:{n}");
                state
                    .broker
                    .publish_once(draft, &key, limits.dedupe_window)
                    .await?;
            }
            None => {
                state.broker.publish(draft).await?;
            }
        }
    }
    if let Some(attempt) = attempt {
        attempt.complete("done", limits.dedupe_window).await?;
    }
    state.metrics.webhook("websub");
    Ok(WebhookReply::NoContent)
}
