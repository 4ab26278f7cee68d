//! An EventSub webhook body (`eventsub::envelope`) as `ingest` reads it:
//! the typed envelope of each message type, then the event through
//! `eventsub::translate` (routing, the sentence, the broadcasters it
//! names), and every routed login through `ChannelName::parse`. Nothing
//! may panic.
#![no_main]

use eventsub_bridge::domain::ChannelName;
use eventsub_bridge::eventsub::envelope::{MessageType, Notification, Revocation, Verification};
use eventsub_bridge::eventsub::translate;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = serde_json::from_slice::<Notification>(data) {
        if let Ok(event) = serde_json::from_str::<Value>(n.event.get()) {
            let sub = &n.subscription;
            let _ = translate::learned_broadcasters(&event);
            for login in translate::route_logins(&sub.sub_type, &event) {
                let _ = ChannelName::parse(&login);
            }
            let _ = translate::condition_broadcaster_ids(&sub.condition);
            let _ = translate::sentence(&sub.sub_type, &event);
        }
    }
    if let Ok(r) = serde_json::from_slice::<Revocation>(data) {
        let _ = translate::condition_broadcaster_ids(&r.subscription.condition);
        // A revocation's subscription is published as the message data.
        let again =
            serde_json::to_string(&r.subscription).map(|s| serde_json::from_str::<Value>(&s));
        assert!(matches!(again, Ok(Ok(_))), "a subscription re-serializes");
    }
    let _ = serde_json::from_slice::<Verification>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = MessageType::parse(text);
    }
});
