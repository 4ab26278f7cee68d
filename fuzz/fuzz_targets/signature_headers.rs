//! The signature and timestamp headers (`eventsub::signature`): any
//! secret, message id, timestamp, body and signature header (split at
//! the first four `\n`) verify only when the header is the body's HMAC,
//! what `sign` makes always verifies, and `check_timestamp` never panics
//! and accepts only times inside its window.
#![no_main]

use std::time::Duration;

use chrono::{DateTime, Utc};
use eventsub_bridge::eventsub::signature::{
    check_timestamp, sign, sign_websub, verify, verify_websub,
};
use libfuzzer_sys::fuzz_target;

const MAX_AGE: Duration = Duration::from_secs(600);
const MAX_SKEW: Duration = Duration::from_secs(60);

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(5, |b| *b == b'\n');
    let secret = parts.next().unwrap_or_default();
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let ts = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();

    let good = sign(secret, &id, &ts, body);
    assert_eq!(verify(secret, &id, &ts, body, &good), Ok(()));
    if verify(secret, &id, &ts, body, &header).is_ok() {
        // Hex may come in either case.
        assert_eq!(header.to_ascii_lowercase(), good);
    }
    let good = sign_websub(secret, body);
    assert_eq!(verify_websub(secret, body, &good), Ok(()));
    if verify_websub(secret, body, &header).is_ok() {
        assert_eq!(header.to_ascii_lowercase(), good);
    }

    let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    if let Ok(at) = check_timestamp(&ts, now, MAX_AGE, MAX_SKEW) {
        let age = now.signed_duration_since(at);
        assert!(age <= chrono::Duration::from_std(MAX_AGE).unwrap_or_default());
        assert!(-age <= chrono::Duration::from_std(MAX_SKEW).unwrap_or_default());
    }
});
