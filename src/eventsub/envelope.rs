//! Serde types for the EventSub webhook bodies (TWITCH.md §1.2). Only what
//! the bridge reads is typed; `event` is kept as the raw JSON Twitch sent so
//! `data` passes through untouched.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The `Twitch-Eventsub-Message-Type` header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// An event.
    Notification,
    /// The challenge after a subscription is created.
    Verification,
    /// The subscription ended.
    Revocation,
}

impl MessageType {
    /// Parses the header value; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "notification" => Some(Self::Notification),
            "webhook_callback_verification" => Some(Self::Verification),
            "revocation" => Some(Self::Revocation),
            _ => None,
        }
    }
}

/// The `subscription` object of every webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Subscription id.
    pub id: String,
    /// `enabled`, or the revocation reason.
    pub status: String,
    /// Subscription type, e.g. `channel.follow`.
    #[serde(rename = "type")]
    pub sub_type: String,
    /// Subscription version.
    pub version: String,
    /// The condition, e.g. `{"broadcaster_user_id":"…"}`.
    #[serde(default)]
    pub condition: Value,
    /// Cost against `max_total_cost`.
    #[serde(default)]
    pub cost: u64,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Where events go; the secret is never echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

/// A subscription's `transport`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transport {
    /// `webhook`, `websocket` or `conduit`.
    pub method: String,
    /// The webhook callback URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// The EventSub WebSocket session (WebSocket transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl Subscription {
    /// The webhook callback, if it is a webhook subscription.
    pub fn callback(&self) -> Option<&str> {
        self.transport.as_ref().and_then(|t| t.callback.as_deref())
    }
}

/// A `notification` body.
#[derive(Debug, Deserialize)]
pub struct Notification {
    /// The subscription it belongs to.
    pub subscription: Subscription,
    /// The event exactly as sent.
    pub event: Box<RawValue>,
}

/// A `webhook_callback_verification` body.
#[derive(Debug, Deserialize)]
pub struct Verification {
    /// The subscription being verified.
    pub subscription: Subscription,
    /// The string to echo.
    pub challenge: String,
}

/// A `revocation` body.
#[derive(Debug, Deserialize)]
pub struct Revocation {
    /// The ended subscription; `status` holds the reason.
    pub subscription: Subscription,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_body_is_an_envelope_or_an_error(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = serde_json::from_slice::<Notification>(&body);
            let _ = serde_json::from_slice::<Verification>(&body);
            let _ = serde_json::from_slice::<Revocation>(&body);
        }

        #[test]
        fn a_subscription_reads_back_as_sent(
            id in "\\PC{0,20}",
            status in "\\PC{0,20}",
            ty in "\\PC{0,30}",
            version in "\\PC{0,3}",
            cost in any::<u64>(),
            method in "\\PC{0,10}",
            callback in proptest::option::of("\\PC{0,30}"),
        ) {
            let sub = json!({
                "id": id, "status": status, "type": ty, "version": version, "cost": cost,
                "condition": {"broadcaster_user_id": "1"},
                "transport": {"method": method, "callback": callback},
            });
            let body = json!({"subscription": sub, "event": {"a": 1}}).to_string();
            let n: Notification = serde_json::from_str(&body).unwrap();
            prop_assert_eq!(&n.subscription.sub_type, &ty);
            prop_assert_eq!(n.subscription.callback(), callback.as_deref());
            prop_assert_eq!(n.event.get(), r#"{"a":1}"#);
            // A revocation's subscription is published re-serialized.
            let again: Subscription = serde_json::from_str(&serde_json::to_string(&n.subscription).unwrap()).unwrap();
            prop_assert_eq!(again, n.subscription);
        }
    }
}
