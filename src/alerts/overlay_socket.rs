//! The overlay's WebSocket protocol (SPEC §8) on top of the socket layer:
//! the `welcome` and the alert in flight on open (`overlays::Membership`),
//! then `ack` and `ping` from the overlay. Everything else the overlay
//! gets comes from its group's doorbells. Dropping the protocol leaves the
//! group, however the connection ends.

use std::sync::Arc;

use serde::Deserialize;

use crate::state::AppState;
use crate::ws::conn::Conn;
use crate::ws::session::Protocol;

use super::Alerts;
use super::overlays::Membership;

/// An overlay frame that could not be acted on; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverlayOpError {
    #[error("{0}")]
    BadJson(String),
    #[error("unknown op `{0}`: expected ack or ping")]
    UnknownOp(String),
    #[error("ack needs the alert's `id`")]
    MissingId,
    #[error("the alert queue is unavailable right now; ack again shortly")]
    Unavailable,
    #[error("more than {0} frames a second: this frame was ignored")]
    RateLimited(usize),
}

impl OverlayOpError {
    /// The error code (SPEC §5's, plus `invalid` and `unavailable`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadJson(_) => "bad_json",
            Self::UnknownOp(_) => "unknown_op",
            Self::MissingId => "invalid",
            Self::Unavailable => "unavailable",
            Self::RateLimited(_) => "rate_limited",
        }
    }

    /// The `{"op":"error"}` frame.
    pub fn to_frame(&self) -> String {
        serde_json::json!({"op": "error", "code": self.code(), "message": self.to_string()})
            .to_string()
    }
}

/// What an overlay sends.
#[derive(Debug, PartialEq, Eq)]
pub enum OverlayOp {
    /// The alert `id` was shown for its duration.
    Ack(String),
    /// Answered with `pong`.
    Ping,
}

impl OverlayOp {
    /// Parses one text frame.
    ///
    /// # Errors
    /// The [`OverlayOpError`] to send back.
    pub fn parse(text: &str) -> Result<Self, OverlayOpError> {
        #[derive(Deserialize)]
        struct Raw {
            op: Option<String>,
            id: Option<serde_json::Value>,
        }
        let raw: Raw =
            serde_json::from_str(text).map_err(|e| OverlayOpError::BadJson(e.to_string()))?;
        match raw.op.as_deref() {
            Some("ack") => match raw.id {
                Some(serde_json::Value::String(id)) if !id.is_empty() && id.len() <= 100 => {
                    Ok(Self::Ack(id))
                }
                _ => Err(OverlayOpError::MissingId),
            },
            Some("ping") => Ok(Self::Ping),
            Some(other) => Err(OverlayOpError::UnknownOp(other.chars().take(50).collect())),
            None => Err(OverlayOpError::UnknownOp(String::new())),
        }
    }
}

/// One overlay connection.
pub struct OverlaySocket {
    alerts: Arc<Alerts>,
    membership: Membership,
    /// The key generation it was opened with.
    keygen: u64,
}

impl OverlaySocket {
    /// The protocol for an overlay of `membership`'s channel whose key has
    /// generation `keygen`.
    pub fn new(alerts: Arc<Alerts>, membership: Membership, keygen: u64) -> Self {
        Self {
            alerts,
            membership,
            keygen,
        }
    }
}

impl Protocol for OverlaySocket {
    fn open(&mut self, _state: &AppState, conn: &Arc<Conn>) {
        self.membership.attach(conn, self.keygen);
    }

    async fn text(&mut self, _state: &AppState, conn: &Arc<Conn>, text: &str) {
        let result = match OverlayOp::parse(text) {
            Ok(OverlayOp::Ping) => {
                let _ = conn.push_text(r#"{"op":"pong"}"#);
                Ok(())
            }
            Ok(OverlayOp::Ack(id)) => self
                .alerts
                .ack(self.membership.channel(), &id)
                .await
                .map(|_| ())
                .map_err(|e| {
                    tracing::warn!(error = %e, "overlay ack failed");
                    OverlayOpError::Unavailable
                }),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // On overflow the session closes with 4008.
            let _ = conn.push_text(&e.to_frame());
        }
    }

    fn rate_limited(&self, limit: usize) -> String {
        OverlayOpError::RateLimited(limit).to_frame()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn ops_parse_and_bad_frames_get_codes() {
        assert_eq!(
            OverlayOp::parse(r#"{"op":"ack","id":"abc"}"#),
            Ok(OverlayOp::Ack("abc".into()))
        );
        assert_eq!(OverlayOp::parse(r#"{"op":"ping"}"#), Ok(OverlayOp::Ping));
        assert_eq!(OverlayOp::parse("nope").unwrap_err().code(), "bad_json");
        assert_eq!(
            OverlayOp::parse(r#"{"op":"x"}"#).unwrap_err().code(),
            "unknown_op"
        );
        assert_eq!(
            OverlayOp::parse(r#"{"op":"ack"}"#).unwrap_err().code(),
            "invalid"
        );
        assert_eq!(
            OverlayOp::parse(r#"{"op":"ack","id":5}"#)
                .unwrap_err()
                .code(),
            "invalid"
        );
    }

    fn error_frame_is_json(e: &OverlayOpError) -> Result<(), TestCaseError> {
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
            if let Err(e) = OverlayOp::parse(&text) {
                error_frame_is_json(&e)?;
            }
        }

        #[test]
        fn an_ack_keeps_an_id_of_1_to_100_bytes_and_nothing_else(
            op in prop_oneof![Just("ack".to_owned()), Just("ping".to_owned()), "\\PC{0,10}"],
            id in prop_oneof![
                "\\PC{0,120}".prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                Just(Value::Null),
            ],
        ) {
            let text = json!({"op": op, "id": id}).to_string();
            match OverlayOp::parse(&text) {
                Ok(OverlayOp::Ack(got)) => {
                    prop_assert_eq!(Some(got.as_str()), id.as_str());
                    prop_assert!((1..=100).contains(&got.len()));
                }
                Ok(OverlayOp::Ping) => prop_assert_eq!(op, "ping"),
                Err(e) => error_frame_is_json(&e)?,
            }
        }
    }
}
