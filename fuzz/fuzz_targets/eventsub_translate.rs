//! `eventsub::translate` on any JSON event under each known type (the
//! first input byte picks it; past the list, the type is unknown): the
//! sentence, routing and the broadcasters it names never panic, and a
//! sentence is never empty. Also the WebSub sentence of the same value.
#![no_main]

use eventsub_bridge::eventsub::translate::{self, KNOWN_TYPES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(event) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let ty = KNOWN_TYPES
        .get(usize::from(pick))
        .copied()
        .unwrap_or("channel.unknown_type");
    assert!(!translate::sentence(ty, &event).is_empty());
    let _ = translate::route_logins(ty, &event);
    let _ = translate::learned_broadcasters(&event);
    let _ = translate::condition_broadcaster_ids(&event);
    assert!(!translate::websub_stream_changed_sentence("teststreamer", Some(&event)).is_empty());
});
