//! The pure rules of a signed webhook (SPEC §4 steps 2–3, TWITCH.md §1.3,
//! §1.5): HMAC-SHA256 over id + timestamp + raw body, compared in constant
//! time, and the timestamp window. No I/O here.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of every signature header value.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be sha256= followed by 64 hex characters")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp is not RFC 3339")]
    Malformed,
    #[error("timestamp is more than {0} seconds old")]
    TooOld(u64),
    #[error("timestamp is more than {0} seconds in the future")]
    InFuture(u64),
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable_key())
}

#[expect(clippy::panic, reason = "HMAC-SHA256 takes keys of every length")]
fn unreachable_key() -> HmacSha256 {
    panic!("HMAC rejected a key")
}

/// `sha256=<hex>` of id + timestamp + body, as Twitch signs a notification.
pub fn sign(secret: &[u8], message_id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(message_id.as_bytes());
    m.update(timestamp.as_bytes());
    m.update(body);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(m.finalize().into_bytes())
    )
}

/// `sha256=<hex>` of the body alone, as legacy WebSub signs (`X-Hub-Signature`).
pub fn sign_websub(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(m.finalize().into_bytes())
    )
}

fn decode(header: &str) -> Result<Vec<u8>, SignatureError> {
    let hex_part = header
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(SignatureError::Malformed)?;
    if hex_part.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    hex::decode(hex_part).map_err(|_| SignatureError::Malformed)
}

/// Checks an EventSub signature header in constant time.
///
/// # Errors
/// [`SignatureError`] when it is malformed or does not match.
pub fn verify(
    secret: &[u8],
    message_id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> Result<(), SignatureError> {
    let expected = decode(header)?;
    let mut m = mac(secret);
    m.update(message_id.as_bytes());
    m.update(timestamp.as_bytes());
    m.update(body);
    m.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks a legacy WebSub `X-Hub-Signature` in constant time.
///
/// # Errors
/// [`SignatureError`] when it is malformed or does not match.
pub fn verify_websub(secret: &[u8], body: &[u8], header: &str) -> Result<(), SignatureError> {
    let expected = decode(header)?;
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Parses an RFC 3339 timestamp with 0 to 9 fractional digits and checks
/// it lies within `max_age` before and `max_skew` after `now`.
///
/// # Errors
/// [`TimestampError`] naming the failed rule.
pub fn check_timestamp(
    raw: &str,
    now: DateTime<Utc>,
    max_age: Duration,
    max_skew: Duration,
) -> Result<DateTime<Utc>, TimestampError> {
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| TimestampError::Malformed)?
        .with_timezone(&Utc);
    let age = now.signed_duration_since(at);
    let max_age_c = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    let max_skew_c = chrono::Duration::from_std(max_skew).unwrap_or(chrono::Duration::MAX);
    if age > max_age_c {
        return Err(TimestampError::TooOld(max_age.as_secs()));
    }
    if -age > max_skew_c {
        return Err(TimestampError::InFuture(max_skew.as_secs()));
    }
    Ok(at)
}

/// `now` as Twitch writes timestamps: RFC 3339, UTC, nanoseconds.
pub fn timestamp_now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TA_BODY: &str = r#"{"subscription":{"id":"ae2ff348-e102-16be-a3eb-6830c1bf38d2","status":"enabled","type":"channel.follow","version":"1","condition":{"broadcaster_user_id":"44429626"},"transport":{"method":"webhook","callback":"null"},"created_at":"2021-02-19T23:47:00.7621315Z"},"event":{"user_id":"28408015","user_login":"testFromUser","user_name":"testFromUser","broadcaster_user_id":"44429626","broadcaster_user_login":"44429626","broadcaster_user_name":"testBroadcaster"}}"#;
    const TA_SIG: &str = "sha256=d10f5bd9474b7ac7bd7105eb79c2d52768b4d0cd2a135982c3bf5a1d59a78823";

    #[test]
    fn twitch_api_known_answer_vector_verifies() {
        // TWITCH.md §2 vector 1 (twitch_api's verify_request test).
        let id = "ae2ff348-e102-16be-a3eb-6830c1bf38d2";
        let ts = "2021-02-19T23:47:00.8091512Z";
        assert_eq!(sign(b"secretabcd", id, ts, TA_BODY.as_bytes()), TA_SIG);
        assert_eq!(
            verify(b"secretabcd", id, ts, TA_BODY.as_bytes(), TA_SIG),
            Ok(())
        );
    }

    #[test]
    fn a_changed_byte_anywhere_is_a_mismatch() {
        let id = "ae2ff348-e102-16be-a3eb-6830c1bf38d2";
        let ts = "2021-02-19T23:47:00.8091512Z";
        let body = TA_BODY.as_bytes();
        assert_eq!(
            verify(b"secretabcE", id, ts, body, TA_SIG),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed as received: a reformatted one fails.
        assert_eq!(
            verify(
                b"secretabcd",
                id,
                "2021-02-19T23:47:00.809151200Z",
                body,
                TA_SIG
            ),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(b"secretabcd", id, ts, &tampered, TA_SIG),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_signature_headers_are_refused() {
        for bad in ["", "sha256=", "sha1=abcd", "sha256=zz", &TA_SIG[..70]] {
            assert_eq!(
                verify(b"k", "i", "t", b"b", bad),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn websub_production_vector_verifies() {
        // TWITCH.md §2, legacy WebSub capture.
        let sig = "sha256=8257877fcf26869e76e7e6591fdb41203699e5527c09ac1cd5fdc1aa6868e626";
        assert_eq!(sign_websub(b"wR8FRvoKebeV", br#"{"data":[]}"#), sig);
        assert_eq!(
            verify_websub(b"wR8FRvoKebeV", br#"{"data":[]}"#, sig),
            Ok(())
        );
        assert!(verify_websub(b"wR8FRvoKebeW", br#"{"data":[]}"#, sig).is_err());
    }

    #[test]
    fn timestamps_with_zero_to_nine_fraction_digits_parse() {
        let now = DateTime::parse_from_rfc3339("2023-03-09T04:45:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ten = Duration::from_secs(600);
        let one = Duration::from_secs(60);
        for ts in [
            "2023-03-09T04:44:48Z",
            "2023-03-09T04:44:48.0Z",
            "2023-03-09T04:44:48.8091512Z",
            "2023-03-09T04:44:48.062323705Z",
        ] {
            assert!(check_timestamp(ts, now, ten, one).is_ok(), "{ts}");
        }
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_at_the_edges() {
        let now = DateTime::parse_from_rfc3339("2023-03-09T04:45:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ten = Duration::from_secs(600);
        let one = Duration::from_secs(60);
        assert!(check_timestamp("2023-03-09T04:35:00Z", now, ten, one).is_ok());
        assert_eq!(
            check_timestamp("2023-03-09T04:34:59.999Z", now, ten, one),
            Err(TimestampError::TooOld(600))
        );
        assert!(check_timestamp("2023-03-09T04:46:00Z", now, ten, one).is_ok());
        assert_eq!(
            check_timestamp("2023-03-09T04:46:00.001Z", now, ten, one),
            Err(TimestampError::InFuture(60))
        );
        assert_eq!(
            check_timestamp("yesterday", now, ten, one),
            Err(TimestampError::Malformed)
        );
    }

    /// Flips one bit of byte `at % len` of `bytes` (nothing for empty).
    fn flip(bytes: &mut [u8], at: usize, bit: u8) {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] ^= 1 << (bit % 8);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn verify_accepts_what_it_signs_and_no_one_byte_change(
            secret in proptest::collection::vec(any::<u8>(), 0..80),
            id in "[ -~]{0,40}",
            ts in "[ -~]{0,40}",
            body in proptest::collection::vec(any::<u8>(), 0..300),
            which in 0usize..5,
            at in any::<usize>(),
            bit in any::<u8>(),
        ) {
            let header = sign(&secret, &id, &ts, &body);
            prop_assert_eq!(verify(&secret, &id, &ts, &body, &header), Ok(()));
            prop_assert_eq!(verify(&secret, &id, &ts, &body, &header.to_uppercase().replace("SHA256=", "sha256=")), Ok(()));
            let (mut s, mut i, mut t, mut b) = (secret.clone(), id.clone().into_bytes(), ts.clone().into_bytes(), body.clone());
            let mut h = header.clone().into_bytes();
            match which {
                0 => flip(&mut s, at, bit),
                1 => flip(&mut i, at, bit),
                2 => flip(&mut t, at, bit),
                3 => flip(&mut b, at, bit),
                // A hex digit of the signature, to another hex digit.
                _ => {
                    let j = SIGNATURE_PREFIX.len() + at % 64;
                    h[j] = if h[j] == b'0' { b'1' } else { b'0' };
                }
            }
            let changed = s != secret || i != id.as_bytes() || t != ts.as_bytes() || b != body || h != header.as_bytes();
            prop_assume!(changed);
            // A flipped bit may leave UTF-8: then the header is not text at all.
            let (Ok(i), Ok(t), Ok(h)) = (String::from_utf8(i), String::from_utf8(t), String::from_utf8(h)) else {
                return Ok(());
            };
            prop_assert!(verify(&s, &i, &t, &b, &h).is_err());
        }

        #[test]
        fn websub_verify_accepts_what_it_signs_and_no_one_byte_change(
            secret in proptest::collection::vec(any::<u8>(), 0..80),
            body in proptest::collection::vec(any::<u8>(), 1..300),
            at in any::<usize>(),
            bit in any::<u8>(),
        ) {
            let header = sign_websub(&secret, &body);
            prop_assert_eq!(verify_websub(&secret, &body, &header), Ok(()));
            let mut b = body.clone();
            flip(&mut b, at, bit);
            prop_assert_eq!(verify_websub(&secret, &b, &header), Err(SignatureError::Mismatch));
        }

        #[test]
        fn any_signature_header_is_refused_or_is_the_signature(header in "\\PC{0,80}", body in "\\PC{0,40}") {
            let good = sign(b"k", "i", "t", body.as_bytes());
            if verify(b"k", "i", "t", body.as_bytes(), &header).is_ok() {
                prop_assert_eq!(header.to_ascii_lowercase(), good);
            }
        }

        #[test]
        fn check_timestamp_never_panics_and_keeps_its_window(raw in "\\PC{0,40}", secs in any::<i64>(), nanos in 0u32..1_000_000_000) {
            let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
            let window = |raw: &str| check_timestamp(raw, now, Duration::from_secs(600), Duration::from_secs(60));
            if let Ok(at) = window(&raw) {
                let age = now.signed_duration_since(at);
                prop_assert!(age <= chrono::Duration::seconds(600) && -age <= chrono::Duration::seconds(60));
            }
            // Any representable instant, in Twitch's format.
            if let Some(at) = DateTime::from_timestamp(secs % 400_000_000_000, nanos) {
                let raw = at.to_rfc3339_opts(SecondsFormat::Nanos, true);
                let age = now.signed_duration_since(at);
                let inside = age <= chrono::Duration::seconds(600) && -age <= chrono::Duration::seconds(60);
                match window(&raw) {
                    Ok(parsed) => prop_assert!(inside && parsed == at, "{raw}"),
                    Err(TimestampError::Malformed) => prop_assert!(at.format("%Y").to_string().len() != 4, "{raw}"),
                    Err(_) => prop_assert!(!inside, "{raw}"),
                }
            }
        }

        #[test]
        fn timestamps_near_now_are_accepted_exactly_inside_the_window(offset_ms in -700_000i64..700_000) {
            let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
            let at = now - chrono::Duration::milliseconds(offset_ms);
            let raw = at.to_rfc3339_opts(SecondsFormat::Millis, true);
            let got = check_timestamp(&raw, now, Duration::from_secs(600), Duration::from_secs(60));
            if offset_ms > 600_000 {
                prop_assert_eq!(got, Err(TimestampError::TooOld(600)));
            } else if offset_ms < -60_000 {
                prop_assert_eq!(got, Err(TimestampError::InFuture(60)));
            } else {
                prop_assert_eq!(got, Ok(at));
            }
        }
    }
}
