//! A room member's text frame (`rooms::frame`, the Pact codec): any text
//! is a typed frame or a `RoomError`, never a panic, and the error frame
//! sent back is JSON. Also any text as a subscription (`Interest`).
#![no_main]

use eventsub_bridge::rooms::frame::{Envelope, Interest};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = Envelope::parse(text).and_then(|env| env.frame());
    if let Err(e) = result {
        assert!(serde_json::from_str::<Value>(&e.to_frame()).is_ok());
    }
    if let Ok(interest) = Interest::parse(text) {
        assert!(!interest.kind().is_empty());
        assert!(interest.as_str().starts_with(interest.kind()));
    }
});
