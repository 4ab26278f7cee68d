//! A legacy WebSub notification body (`webhook::websub_drafts`): any bytes
//! give messages or a `WebhookError`, never a panic; a body that parses
//! gives one message per item of `data` (one when it is empty), each with
//! a sentence.
#![no_main]

use chrono::{DateTime, Utc};
use eventsub_bridge::domain::ChannelName;
use eventsub_bridge::webhook::websub_drafts;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(channel) = ChannelName::parse("teststreamer") else {
        return;
    };
    let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let Ok(drafts) = websub_drafts(&channel, data, now) else {
        return;
    };
    let items = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v["data"].as_array().map(Vec::len))
        .unwrap_or_default();
    assert_eq!(drafts.len(), items.max(1));
    for d in &drafts {
        assert!(!d.text.is_empty());
        assert!(serde_json::from_str::<Value>(d.data.get()).is_ok());
    }
});
