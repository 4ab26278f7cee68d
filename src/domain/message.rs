//! The message every channel carries (SPEC §3): a `MessageDraft` before the
//! broker gives it an id, an `Envelope` after — serialized once, shared by
//! every delivery.

use std::sync::Arc;

use actix_http::ws::{OpCode, Parser};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{ChannelName, MessageId};

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An EventSub webhook notification.
    Eventsub,
    /// A legacy WebSub notification.
    Websub,
    /// `POST /api/publish`.
    Publish,
    /// The bridge itself (e.g. `subscription.revoked`).
    System,
}

/// A message before it has an id: everything but `id`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageDraft {
    /// Destination channel.
    pub channel: ChannelName,
    /// The event type, e.g. `channel.follow`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Subscription version for EventSub messages, `"1"` otherwise (SPEC §7.13).
    pub version: String,
    /// Origin of the message.
    pub source: Source,
    /// EventSub message timestamp, or publish time (SPEC §7.13).
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// One human sentence.
    pub text: String,
    /// The event as it was sent, untouched.
    pub data: Box<RawValue>,
}

fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

impl MessageDraft {
    /// The draft as JSON without its id: `{"channel":…}`. This is what the
    /// Redis stream stores; [`Envelope::from_parts`] adds the id.
    ///
    /// # Errors
    /// Only if serde_json fails, which it does not for these field types.
    pub fn to_body(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// A published message, serialized once (SPEC §3). Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Envelope(Arc<EnvelopeInner>);

#[derive(Debug)]
struct EnvelopeInner {
    id: MessageId,
    channel: ChannelName,
    event_type: String,
    /// The message JSON, `{"id":…,"channel":…}`.
    json: ByteString,
    /// The WebSocket text frame as it goes on the wire, its payload
    /// `{"op":"event","message":<json>}`. Encoded once: every viewer's
    /// outbox shares it instead of copying it (issue 14).
    wire: Bytes,
}

/// `payload` as one unmasked, final text frame, server to client, as
/// actix-http encodes it (RFC 6455 §5.2), in a buffer of its own that
/// many outboxes can share.
pub fn text_frame(payload: &str) -> Bytes {
    // The header is at most 10 bytes.
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    Parser::write_message(&mut out, payload.as_bytes(), OpCode::Text, true, false);
    out.freeze()
}

/// Why a stored message body could not become an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("stored message is not a JSON object")]
    NotAnObject,
    #[error("stored message is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored message names an invalid channel")]
    Channel(#[from] super::ChannelNameError),
}

#[derive(serde::Deserialize)]
struct BodyHead {
    channel: String,
    #[serde(rename = "type")]
    event_type: String,
}

impl Envelope {
    /// Builds the envelope of a draft that got `id`.
    ///
    /// # Errors
    /// Only if the draft does not serialize.
    pub fn new(id: MessageId, draft: &MessageDraft) -> Result<Self, serde_json::Error> {
        let body = draft.to_body()?;
        Ok(Self::assemble(
            id,
            draft.channel.clone(),
            draft.event_type.clone(),
            &body,
        ))
    }

    /// Rebuilds an envelope from an id and a body made by [`MessageDraft::to_body`].
    ///
    /// # Errors
    /// When the body is not such a JSON object.
    pub fn from_parts(id: MessageId, body: &str) -> Result<Self, EnvelopeError> {
        if !body.starts_with('{') {
            return Err(EnvelopeError::NotAnObject);
        }
        let head: BodyHead = serde_json::from_str(body)?;
        let channel = ChannelName::parse(&head.channel)?;
        Ok(Self::assemble(id, channel, head.event_type, body))
    }

    fn assemble(id: MessageId, channel: ChannelName, event_type: String, body: &str) -> Self {
        // body is `{"channel":…}`; splice the id in front of its first field.
        let rest = body.get(1..).unwrap_or("}");
        let json = format!("{{\"id\":\"{id}\",{rest}");
        let frame = format!("{{\"op\":\"event\",\"message\":{json}}}");
        Self(Arc::new(EnvelopeInner {
            id,
            channel,
            event_type,
            json: ByteString::from(json),
            wire: text_frame(&frame),
        }))
    }

    /// The message id.
    pub fn id(&self) -> MessageId {
        self.0.id
    }

    /// The channel it was published to.
    pub fn channel(&self) -> &ChannelName {
        &self.0.channel
    }

    /// The message type.
    pub fn event_type(&self) -> &str {
        &self.0.event_type
    }

    /// The message as JSON.
    pub fn json(&self) -> &ByteString {
        &self.0.json
    }

    /// The `event` frame's payload: `wire` past its header (2 bytes, or
    /// 4 or 10 with a 16- or 64-bit length).
    #[cfg(test)]
    fn frame(&self) -> &str {
        let header = match self.0.wire[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        std::str::from_utf8(&self.0.wire[header..]).unwrap_or_default()
    }

    /// The `event` frame encoded for the wire, header included (shared:
    /// cloning it does not copy).
    pub fn wire(&self) -> &Bytes {
        &self.0.wire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> MessageDraft {
        MessageDraft {
            channel: ChannelName::parse("teststreamer").unwrap(),
            event_type: "channel.follow".into(),
            version: "2".into(),
            source: Source::Eventsub,
            at: DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            text: "viewer42 followed teststreamer".into(),
            data: RawValue::from_string(r#"{"user_login":"viewer42"}"#.into()).unwrap(),
        }
    }

    #[test]
    fn envelope_json_has_the_spec_shape_in_order() {
        let env = Envelope::new(MessageId::new(1763884800000, 0), &draft()).unwrap();
        assert_eq!(
            env.json().as_ref() as &str,
            r#"{"id":"1763884800000-0","channel":"teststreamer","type":"channel.follow","version":"2","source":"eventsub","at":"2026-11-23T08:00:00Z","text":"viewer42 followed teststreamer","data":{"user_login":"viewer42"}}"#
        );
        let frame: serde_json::Value = serde_json::from_str(env.frame()).unwrap();
        assert_eq!(frame["op"], "event");
        assert_eq!(frame["message"]["id"], "1763884800000-0");
    }

    #[test]
    fn the_wire_frame_is_what_actix_http_encodes() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = "x".repeat(len);
            let mut expected = BytesMut::new();
            Parser::write_message(&mut expected, payload.as_bytes(), OpCode::Text, true, false);
            assert_eq!(text_frame(&payload), expected.freeze(), "length {len}");
        }
        let env = Envelope::new(MessageId::new(1, 0), &draft()).unwrap();
        assert_eq!(env.wire(), &text_frame(env.frame()));
        assert!(env.wire().ends_with(env.frame().as_bytes()));
    }

    #[test]
    fn stored_bodies_rebuild_the_same_envelope() {
        let d = draft();
        let id = MessageId::new(5, 1);
        let a = Envelope::new(id, &d).unwrap();
        let b = Envelope::from_parts(id, &d.to_body().unwrap()).unwrap();
        assert_eq!(a.json(), b.json());
        assert_eq!(b.event_type(), "channel.follow");
        assert!(Envelope::from_parts(id, "[]").is_err());
    }
}
