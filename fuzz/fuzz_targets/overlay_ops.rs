//! An overlay's text frame (`alerts::overlay_socket::OverlayOp::parse`):
//! any text is an op or an `OverlayOpError`, never a panic; an ack's id is
//! 1 to 100 bytes, and the error frame sent back is JSON with its code.
#![no_main]

use eventsub_bridge::alerts::overlay_socket::OverlayOp;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match OverlayOp::parse(text) {
        Ok(OverlayOp::Ack(id)) => assert!((1..=100).contains(&id.len())),
        Ok(OverlayOp::Ping) => {}
        Err(e) => {
            let frame: Value = serde_json::from_str(&e.to_frame()).unwrap_or_default();
            assert_eq!(frame["code"], e.code());
        }
    }
});
