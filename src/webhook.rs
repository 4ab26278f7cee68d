//! The EventSub webhook transport (SPEC §4 steps 1–3: headers → signature →
//! timestamp; steps 4–7 are `ingest`, shared with the EventSub WebSocket)
//! and the legacy WebSub callback. `WebhookError` says which rule failed;
//! `error.rs` turns it into a status.

use chrono::{DateTime, Utc};
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
    let drafts = websub_drafts(&channel, body, Utc::now())?;
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

/// The messages of a WebSub notification body `{"data": [...]}` for
/// `channel`: a `stream.changed` per item of `data` (the item as its
/// data), or one without data when `data` is empty (the stream went
/// offline). Pure: the body comes from the internet and is fuzzed.
///
/// # Errors
/// [`WebhookError::InvalidJson`] for a body of another shape.
pub fn websub_drafts(
    channel: &ChannelName,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<MessageDraft>, WebhookError> {
    #[derive(serde::Deserialize)]
    struct Items {
        data: Vec<Box<RawValue>>,
    }
    let invalid = |source| WebhookError::InvalidJson {
        kind: "WebSub notification",
        source,
    };
    let items: Items = parse(body, "WebSub notification")?;
    let draft = |text: String, data: Box<RawValue>| MessageDraft {
        channel: channel.clone(),
        event_type: "stream.changed".into(),
        version: "1".into(),
        source: Source::Websub,
        at: now,
        text,
        data,
    };
    if items.data.is_empty() {
        let text = translate::websub_stream_changed_sentence(channel.as_str(), None);
        let data = RawValue::from_string("{}".into()).map_err(invalid)?;
        return Ok(vec![draft(text, data)]);
    }
    items
        .data
        .into_iter()
        .map(|item| {
            let value: Value = serde_json::from_str(item.get()).map_err(invalid)?;
            let text = translate::websub_stream_changed_sentence(channel.as_str(), Some(&value));
            Ok(draft(text, item))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn channel() -> ChannelName {
        ChannelName::parse("teststreamer").unwrap()
    }

    #[test]
    fn websub_items_become_stream_changed_messages() {
        let now = Utc::now();
        let body = json!({"data": [
            {"user_name": "TestStreamer", "title": "Speedruns", "game_name": "Celeste"},
            {"user_login": "teststreamer"},
        ]});
        let drafts = websub_drafts(&channel(), body.to_string().as_bytes(), now).unwrap();
        let texts: Vec<&str> = drafts.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "TestStreamer is live: Speedruns (Celeste)",
                "teststreamer is live"
            ]
        );
        assert!(drafts.iter().all(|d| d.event_type == "stream.changed"
            && d.source == Source::Websub
            && d.at == now));
        assert_eq!(drafts[1].data.get(), r#"{"user_login":"teststreamer"}"#);
    }

    #[test]
    fn empty_websub_data_is_one_offline_message_and_other_shapes_are_refused() {
        let drafts = websub_drafts(&channel(), br#"{"data":[]}"#, Utc::now()).unwrap();
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].text, "teststreamer went offline");
        assert_eq!(drafts[0].data.get(), "{}");
        for bad in [
            &b""[..],
            b"[]",
            br#"{"data":{}}"#,
            br#"{"data":null}"#,
            b"\xff",
        ] {
            assert!(
                matches!(
                    websub_drafts(&channel(), bad, Utc::now()),
                    Err(WebhookError::InvalidJson { .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_websub_body_is_messages_or_invalid_json(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            match websub_drafts(&channel(), &body, Utc::now()) {
                Ok(drafts) => prop_assert!(!drafts.is_empty()),
                Err(e) => {
                    let invalid = matches!(e, WebhookError::InvalidJson { .. });
                    prop_assert!(invalid, "{}", e);
                }
            }
        }

        #[test]
        fn each_websub_item_is_one_message_with_the_item_as_data(
            items in proptest::collection::vec(prop_oneof![
                Just(json!(null)),
                "\\PC{0,20}".prop_map(|s| json!(s)),
                (proptest::option::of("\\PC{0,20}"), proptest::option::of("\\PC{0,20}"), proptest::option::of(any::<i64>()))
                    .prop_map(|(name, title, viewers)| json!({"user_name": name, "title": title, "viewer_count": viewers})),
            ], 1..6),
        ) {
            let body = json!({"data": items}).to_string();
            let drafts = websub_drafts(&channel(), body.as_bytes(), Utc::now()).unwrap();
            prop_assert_eq!(drafts.len(), items.len());
            for (draft, item) in drafts.iter().zip(&items) {
                prop_assert!(!draft.text.is_empty());
                prop_assert_eq!(&serde_json::from_str::<Value>(draft.data.get()).unwrap(), item);
            }
        }
    }
}
