//! A viewer's text frame on `/ws` (`ws::protocol::ClientOp::parse`): any
//! text is an op or a `ProtocolError`, never a panic, and the error frame
//! sent back is JSON with its code.
#![no_main]

use eventsub_bridge::ws::protocol::ClientOp;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = ClientOp::parse(text) {
        let frame: Value = serde_json::from_str(&e.to_frame()).unwrap_or_default();
        assert_eq!(frame["code"], e.code());
    }
});
