//! The EventSub WebSocket transport's messages (TWITCH.md §12): every text
//! frame is `{"metadata": {...}, "payload": {...}}`. The metadata says
//! what it is (`session_welcome`, `session_keepalive`, `notification`,
//! `session_reconnect`, `revocation`); a notification's or revocation's
//! payload is the same `{"subscription", "event"}` / `{"subscription"}`
//! body a webhook carries, so it goes to `ingest` unchanged. Pure parsing.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::eventsub::envelope::MessageType;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not the JSON shape of TWITCH.md §12.
    #[error("not an EventSub WebSocket message: {0}")]
    Json(#[from] serde_json::Error),
    /// `message_timestamp` is not RFC 3339.
    #[error("message_timestamp `{0}` is not an RFC 3339 time")]
    Timestamp(String),
}

#[derive(Debug, Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow)]
    metadata: Metadata<'a>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    message_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    message_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    message_timestamp: std::borrow::Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
struct SessionPayload {
    session: Session,
}

/// The `session` object of a welcome or reconnect message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    /// The id to create subscriptions with (`transport.session_id`).
    pub id: String,
    /// `connected` or `reconnecting`.
    #[serde(default)]
    pub status: String,
    /// Silence longer than this (plus a margin) means the socket is lost;
    /// `null` in a reconnect message.
    #[serde(default)]
    pub keepalive_timeout_seconds: Option<u64>,
    /// Where to reconnect (a `session_reconnect` only).
    #[serde(default)]
    pub reconnect_url: Option<String>,
}

/// One frame from the EventSub WebSocket.
#[derive(Debug)]
pub enum Frame<'a> {
    /// The first message of a connection.
    Welcome(Session),
    /// Nothing happened; the connection is alive.
    Keepalive,
    /// Connect to `session.reconnect_url`; the subscriptions move with it.
    Reconnect(Session),
    /// An event or a revocation, for `ingest`.
    Delivery {
        /// The message id (a resend keeps it).
        message_id: std::borrow::Cow<'a, str>,
        /// `Notification` or `Revocation`.
        kind: MessageType,
        /// When Twitch sent it.
        at: DateTime<Utc>,
        /// `{"subscription", "event"}` or `{"subscription"}`.
        payload: &'a RawValue,
    },
    /// A message type this bridge does not know (logged, ignored).
    Other(String),
}

/// Reads one text frame.
///
/// # Errors
/// [`FrameError`] when it is not the documented shape.
pub fn parse(text: &str) -> Result<Frame<'_>, FrameError> {
    let raw: RawFrame<'_> = serde_json::from_str(text)?;
    let payload = raw.payload;
    let session = |p: Option<&RawValue>| -> Result<Session, FrameError> {
        let p = p
            .ok_or_else(|| serde::de::Error::custom("payload is missing"))
            .map_err(FrameError::Json)?;
        Ok(serde_json::from_str::<SessionPayload>(p.get())?.session)
    };
    Ok(match raw.metadata.message_type.as_ref() {
        "session_welcome" => Frame::Welcome(session(payload)?),
        "session_keepalive" => Frame::Keepalive,
        "session_reconnect" => Frame::Reconnect(session(payload)?),
        kind @ ("notification" | "revocation") => {
            let at = DateTime::parse_from_rfc3339(&raw.metadata.message_timestamp)
                .map_err(|_| FrameError::Timestamp(raw.metadata.message_timestamp.to_string()))?
                .with_timezone(&Utc);
            Frame::Delivery {
                message_id: raw.metadata.message_id,
                kind: if kind == "notification" {
                    MessageType::Notification
                } else {
                    MessageType::Revocation
                },
                at,
                payload: payload
                    .ok_or_else(|| serde::de::Error::custom("payload is missing"))
                    .map_err(FrameError::Json)?,
            }
        }
        other => Frame::Other(other.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_welcome_gives_the_session_and_its_keepalive() {
        let text = r#"{"metadata":{"message_id":"96a3f3b5-5dec-4eed-908e-e11ee657416c",
            "message_type":"session_welcome","message_timestamp":"2023-07-19T14:56:51.634234626Z"},
            "payload":{"session":{"id":"AQoQILE98gtqShGmLD7AM6yJThAB","status":"connected",
            "connected_at":"2023-07-19T14:56:51.616329898Z","keepalive_timeout_seconds":10,
            "reconnect_url":null,"recovery_url":null}}}"#;
        let Frame::Welcome(s) = parse(text).unwrap() else {
            panic!("a welcome");
        };
        assert_eq!(s.id, "AQoQILE98gtqShGmLD7AM6yJThAB");
        assert_eq!(s.keepalive_timeout_seconds, Some(10));
        assert_eq!(s.reconnect_url, None);
    }

    #[test]
    fn a_reconnect_carries_its_url() {
        let text = r#"{"metadata":{"message_id":"84c1e79a","message_type":"session_reconnect",
            "message_timestamp":"2022-11-18T09:10:11.634234626Z"},"payload":{"session":{
            "id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB","status":"reconnecting","keepalive_timeout_seconds":null,
            "reconnect_url":"wss://eventsub.wss.twitch.tv?...","connected_at":"2022-11-16T10:11:12.634234626Z"}}}"#;
        let Frame::Reconnect(s) = parse(text).unwrap() else {
            panic!("a reconnect");
        };
        assert_eq!(s.status, "reconnecting");
        assert_eq!(
            s.reconnect_url.as_deref(),
            Some("wss://eventsub.wss.twitch.tv?...")
        );
    }

    #[test]
    fn a_notification_keeps_its_payload_for_ingest() {
        let text = r#"{"metadata":{"message_id":"befa7b53-d79d-478f-86b9-120f112b044e",
            "message_type":"notification","message_timestamp":"2022-11-16T10:11:12.464757833Z",
            "subscription_type":"channel.follow","subscription_version":"2"},
            "payload":{"subscription":{"id":"f1c2a387","status":"enabled","type":"channel.follow",
            "version":"2","cost":0,"condition":{"broadcaster_user_id":"12826"},
            "transport":{"method":"websocket","session_id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB"},
            "created_at":"2022-11-16T10:11:12.464757833Z"},"event":{"user_id":"1337"}}}"#;
        let Frame::Delivery {
            message_id,
            kind,
            at,
            payload,
        } = parse(text).unwrap()
        else {
            panic!("a delivery");
        };
        assert_eq!(message_id, "befa7b53-d79d-478f-86b9-120f112b044e");
        assert_eq!(kind, MessageType::Notification);
        assert_eq!(at.timestamp_subsec_nanos(), 464_757_833);
        let n: crate::eventsub::envelope::Notification =
            serde_json::from_str(payload.get()).unwrap();
        assert_eq!(n.subscription.sub_type, "channel.follow");
        assert_eq!(
            n.subscription
                .transport
                .and_then(|t| t.session_id)
                .as_deref(),
            Some("AQoQexAWVYKSTIu4ec_2VAxyuhAB")
        );
    }

    #[test]
    fn keepalives_revocations_and_unknown_types_are_told_apart() {
        let keepalive = r#"{"metadata":{"message_id":"a","message_type":"session_keepalive",
            "message_timestamp":"2023-07-19T10:11:12.634234626Z"},"payload":{}}"#;
        assert!(matches!(parse(keepalive).unwrap(), Frame::Keepalive));
        let revocation = r#"{"metadata":{"message_id":"b","message_type":"revocation",
            "message_timestamp":"2023-07-19T10:11:12Z","subscription_type":"channel.follow",
            "subscription_version":"2"},"payload":{"subscription":{"id":"x",
            "status":"authorization_revoked","type":"channel.follow","version":"2","cost":0,
            "condition":{"broadcaster_user_id":"1"},"transport":{"method":"websocket",
            "session_id":"s"},"created_at":"2023-07-19T10:11:12Z"}}}"#;
        assert!(matches!(
            parse(revocation).unwrap(),
            Frame::Delivery {
                kind: MessageType::Revocation,
                ..
            }
        ));
        let other = r#"{"metadata":{"message_id":"c","message_type":"session_party",
            "message_timestamp":"2023-07-19T10:11:12Z"},"payload":{}}"#;
        assert!(matches!(parse(other).unwrap(), Frame::Other(t) if t == "session_party"));
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"metadata":{"message_id":"d","message_type":"notification","message_timestamp":"yesterday"},"payload":{}}"#).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_is_a_frame_or_an_error(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn any_metadata_and_payload_is_a_frame_or_an_error(
            message_type in prop_oneof![
                Just("session_welcome"), Just("session_keepalive"), Just("session_reconnect"),
                Just("notification"), Just("revocation"), Just("session_party"),
            ],
            timestamp in prop_oneof![Just("2023-07-19T10:11:12.634234626Z".to_owned()), "\\PC{0,30}"],
            payload in prop_oneof![
                Just(Value::Null),
                Just(json!({})),
                "\\PC{0,20}".prop_map(Value::from),
                (proptest::option::of("\\PC{0,20}"), proptest::option::of(any::<i64>()), proptest::option::of("\\PC{0,20}"))
                    .prop_map(|(id, keepalive, url)| json!({"session": {"id": id, "keepalive_timeout_seconds": keepalive, "reconnect_url": url}})),
                Just(json!({"subscription": {}, "event": {}})),
            ],
        ) {
            let text = json!({
                "metadata": {"message_id": "m", "message_type": message_type, "message_timestamp": timestamp},
                "payload": payload,
            }).to_string();
            match parse(&text) {
                Ok(Frame::Welcome(s) | Frame::Reconnect(s)) => {
                    prop_assert!(message_type == "session_welcome" || message_type == "session_reconnect");
                    prop_assert_eq!(Some(s.id.as_str()), payload["session"]["id"].as_str());
                }
                Ok(Frame::Delivery { kind, at, .. }) => {
                    prop_assert_eq!(kind, if message_type == "notification" { MessageType::Notification } else { MessageType::Revocation });
                    prop_assert_eq!(Ok(at), DateTime::parse_from_rfc3339(&timestamp).map(|t| t.with_timezone(&Utc)));
                }
                Ok(Frame::Keepalive) => prop_assert_eq!(message_type, "session_keepalive"),
                Ok(Frame::Other(t)) => prop_assert_eq!(t, message_type),
                Err(_) => {}
            }
        }
    }
}
