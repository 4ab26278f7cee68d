//! The WebSocket protocol (SPEC §5): client ops parsed from text frames,
//! server frames, and the error codes. Pure; `session` drives it.

use serde::{Deserialize, Serialize};

use crate::domain::{ChannelName, MessageId, User};

/// A parsed client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// Subscribe, optionally replaying after `since`.
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// Replay after this id.
        since: Option<MessageId>,
    },
    /// Stop receiving a channel.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// Answered with `pong`.
    Ping,
}

/// A client frame that could not be acted on; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("{0}")]
    BadJson(String),
    #[error("unknown op `{0}`: expected subscribe, unsubscribe or ping")]
    UnknownOp(String),
    #[error("{0}")]
    InvalidChannel(String),
    #[error("at most {0} channels per connection")]
    TooManyChannels(usize),
    #[error("more than {0} frames a second: this frame was ignored")]
    RateLimited(usize),
}

impl ProtocolError {
    /// The SPEC §5 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadJson(_) => "bad_json",
            Self::UnknownOp(_) => "unknown_op",
            Self::InvalidChannel(_) => "invalid_channel",
            Self::TooManyChannels(_) => "too_many_channels",
            Self::RateLimited(_) => "rate_limited",
        }
    }

    /// The `{"op":"error"}` frame for this error.
    pub fn to_frame(&self) -> String {
        ServerOp::Error {
            code: self.code(),
            message: self.to_string(),
        }
        .to_json()
    }
}

#[derive(Deserialize)]
struct RawOp {
    op: Option<String>,
    channel: Option<String>,
    since: Option<String>,
}

fn channel(raw: Option<String>) -> Result<ChannelName, ProtocolError> {
    let raw = raw.ok_or_else(|| ProtocolError::InvalidChannel("channel is required".into()))?;
    ChannelName::parse(&raw).map_err(|e| ProtocolError::InvalidChannel(e.to_string()))
}

impl ClientOp {
    /// Parses one text frame.
    ///
    /// # Errors
    /// The [`ProtocolError`] to send back.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let raw: RawOp = serde_json::from_str(text)
            .map_err(|e| ProtocolError::BadJson(format!("frame is not a JSON op object: {e}")))?;
        match raw.op.as_deref() {
            Some("subscribe") => {
                let since = raw
                    .since
                    .filter(|s| !s.is_empty())
                    .map(|s| MessageId::parse(&s))
                    .transpose()
                    .map_err(|e| ProtocolError::BadJson(format!("since: {e}")))?;
                Ok(Self::Subscribe {
                    channel: channel(raw.channel)?,
                    since,
                })
            }
            Some("unsubscribe") => Ok(Self::Unsubscribe {
                channel: channel(raw.channel)?,
            }),
            Some("ping") => Ok(Self::Ping),
            Some(other) => Err(ProtocolError::UnknownOp(other.chars().take(40).collect())),
            None => Err(ProtocolError::UnknownOp(String::new())),
        }
    }
}

/// A server frame (except `event`, which is pre-serialized in the envelope).
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ServerOp<'a> {
    /// First frame of every connection.
    Welcome {
        /// Who this is.
        user: &'a User,
    },
    /// A subscribe succeeded.
    Subscribed {
        /// The channel.
        channel: &'a str,
        /// How many replayed messages follow.
        replayed: usize,
        /// Whether messages may be missing.
        gap: bool,
    },
    /// An unsubscribe succeeded.
    Unsubscribed {
        /// The channel.
        channel: &'a str,
    },
    /// Answer to `ping`.
    Pong,
    /// A frame could not be acted on.
    Error {
        /// SPEC §5 code.
        code: &'a str,
        /// What was wrong.
        message: String,
    },
}

impl ServerOp<'_> {
    /// The frame text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"op":"error","code":"internal","message":"serialization failed"}"#.to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn subscribe_with_since_parses_and_lower_cases() {
        assert_eq!(
            ClientOp::parse(r#"{"op":"subscribe","channel":"TestStreamer","since":"5-1"}"#),
            Ok(ClientOp::Subscribe {
                channel: ChannelName::parse("teststreamer").unwrap(),
                since: Some(MessageId::new(5, 1)),
            })
        );
    }

    #[test]
    fn each_bad_frame_gets_its_code() {
        let code = |t: &str| ClientOp::parse(t).unwrap_err().code();
        assert_eq!(code("not json"), "bad_json");
        assert_eq!(code("[1,2]"), "bad_json");
        assert_eq!(code(r#"{"op":"dance"}"#), "unknown_op");
        assert_eq!(code(r#"{"channel":"x"}"#), "unknown_op");
        assert_eq!(
            code(r#"{"op":"subscribe","channel":"bad name"}"#),
            "invalid_channel"
        );
        assert_eq!(code(r#"{"op":"subscribe"}"#), "invalid_channel");
        assert_eq!(
            code(r#"{"op":"subscribe","channel":"ok","since":"x"}"#),
            "bad_json"
        );
    }

    #[test]
    fn server_frames_have_the_spec_shape() {
        assert_eq!(ServerOp::Pong.to_json(), r#"{"op":"pong"}"#);
        assert_eq!(
            ServerOp::Subscribed {
                channel: "a",
                replayed: 3,
                gap: false
            }
            .to_json(),
            r#"{"op":"subscribed","channel":"a","replayed":3,"gap":false}"#
        );
        let e: serde_json::Value =
            serde_json::from_str(&ProtocolError::RateLimited(20).to_frame()).unwrap();
        assert_eq!(e["op"], "error");
        assert_eq!(e["code"], "rate_limited");
    }

    /// The error frame sent back for `e` is JSON carrying its code.
    fn error_frame_is_json(e: &ProtocolError) -> Result<(), TestCaseError> {
        let v: Value =
            serde_json::from_str(&e.to_frame()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&v["op"], "error");
        prop_assert_eq!(&v["code"], e.code());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_is_an_op_or_an_error_frame(text in "\\PC{0,200}") {
            if let Err(e) = ClientOp::parse(&text) {
                error_frame_is_json(&e)?;
            }
        }

        #[test]
        fn any_op_object_is_an_op_or_an_error_frame(
            op in prop_oneof![Just("subscribe".to_owned()), Just("unsubscribe".to_owned()), Just("ping".to_owned()), "\\PC{0,10}"],
            channel in proptest::option::of("[a-zA-Z0-9_ ]{0,30}|\\PC{0,10}"),
            since in proptest::option::of("[0-9]{0,22}-[0-9]{0,22}|\\PC{0,10}"),
        ) {
            let text = json!({"op": op, "channel": channel, "since": since}).to_string();
            match ClientOp::parse(&text) {
                Ok(ClientOp::Subscribe { channel: c, since: s }) => {
                    prop_assert_eq!(Some(c.as_str().to_owned()), channel.map(|c| c.to_lowercase()));
                    prop_assert_eq!(s.map(|s| s.to_string()), since.filter(|s| !s.is_empty()).map(|s| MessageId::parse(&s).unwrap().to_string()));
                }
                Ok(ClientOp::Unsubscribe { channel: c }) => prop_assert_eq!(Some(c.as_str().to_owned()), channel.map(|c| c.to_lowercase())),
                Ok(ClientOp::Ping) => prop_assert_eq!(op, "ping"),
                Err(e) => error_frame_is_json(&e)?,
            }
        }

        #[test]
        fn a_subscribe_reads_back_its_channel_and_since(channel in "[a-z0-9_]{1,25}", ms in any::<u64>(), seq in any::<u64>()) {
            let since = MessageId::new(ms, seq);
            let text = json!({"op": "subscribe", "channel": channel, "since": since.to_string()}).to_string();
            prop_assert_eq!(
                ClientOp::parse(&text),
                Ok(ClientOp::Subscribe { channel: ChannelName::parse(&channel).unwrap(), since: Some(since) })
            );
        }
    }
}
