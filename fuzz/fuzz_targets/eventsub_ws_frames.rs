//! A text frame from Twitch's EventSub WebSocket
//! (`eventsub::websocket::parse`): any text is a frame or a `FrameError`,
//! never a panic; a delivery's payload goes on to the envelope it names.
#![no_main]

use eventsub_bridge::eventsub::envelope::{MessageType, Notification, Revocation};
use eventsub_bridge::eventsub::websocket::{Frame, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(Frame::Delivery { kind, payload, .. }) => match kind {
            MessageType::Revocation => {
                let _ = serde_json::from_str::<Revocation>(payload.get());
            }
            _ => {
                let _ = serde_json::from_str::<Notification>(payload.get());
            }
        },
        Ok(Frame::Welcome(s) | Frame::Reconnect(s)) => {
            let _ = s
                .keepalive_timeout_seconds
                .map(std::time::Duration::from_secs);
        }
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
