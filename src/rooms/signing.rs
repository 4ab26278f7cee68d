//! Room admin authentication (SPEC §9 `authenticate`): the key is the
//! lower-case hex SHA-256 of the room name as written in the URL, the
//! timestamp as sent (Unix milliseconds) and `ROOM_SIGNING_KEY`, and the
//! timestamp must be within five minutes of the server's clock. Pure: the
//! clock is an argument.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How far `ts` may be from the server's clock, either way.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// Why an `authenticate` failed (all answered `unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// `ROOM_SIGNING_KEY` is unset: nobody authenticates this way.
    #[error("room authentication is off on this server (ROOM_SIGNING_KEY is unset)")]
    Disabled,
    /// `ts` is more than five minutes away from now.
    #[error("ts is more than 5 minutes away from the server's clock")]
    Stale,
    /// The key does not match.
    #[error("the key does not match this room and ts")]
    WrongKey,
}

/// The expected key for `room` (as written in the URL), `ts` (as sent) and
/// the signing key.
pub fn expected_key(room: &str, ts: &str, signing_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(room.as_bytes());
    h.update(ts.as_bytes());
    h.update(signing_key.as_bytes());
    hex::encode(h.finalize())
}

/// Checks an `authenticate` frame's `ts` (its text and its value in
/// milliseconds) and `key` at `now_ms`.
///
/// # Errors
/// The [`SigningError`] that failed.
pub fn verify(
    signing_key: Option<&SecretString>,
    room: &str,
    ts_text: &str,
    ts_ms: i64,
    key: &str,
    now_ms: i64,
) -> Result<(), SigningError> {
    let signing_key = signing_key.ok_or(SigningError::Disabled)?;
    if ts_ms.abs_diff(now_ms) > MAX_SKEW_MS.unsigned_abs() {
        return Err(SigningError::Stale);
    }
    let expected = expected_key(room, ts_text, signing_key.expose_secret());
    let given = key.to_ascii_lowercase();
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(SigningError::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACT_KEY: &str = "89d88bb54565ea81c0d31c817eddba48c2fbbb0414fb4bb87c799bb2e824804a";

    fn key() -> SecretString {
        SecretString::from("deadbeef")
    }

    #[test]
    fn the_pact_documentation_example_verifies() {
        assert_eq!(
            expected_key("testRoom", "1631756233699", "deadbeef"),
            PACT_KEY
        );
        let now = 1_631_756_233_699 + 60_000;
        assert_eq!(
            verify(
                Some(&key()),
                "testRoom",
                "1631756233699",
                1_631_756_233_699,
                PACT_KEY,
                now
            ),
            Ok(())
        );
        // Upper-case hex is the same key.
        let upper = PACT_KEY.to_ascii_uppercase();
        assert!(
            verify(
                Some(&key()),
                "testRoom",
                "1631756233699",
                1_631_756_233_699,
                &upper,
                now
            )
            .is_ok()
        );
    }

    #[test]
    fn the_room_name_is_taken_as_written() {
        let now = 1_631_756_233_699;
        assert_eq!(
            verify(
                Some(&key()),
                "testroom",
                "1631756233699",
                now,
                PACT_KEY,
                now
            ),
            Err(SigningError::WrongKey)
        );
    }

    #[test]
    fn old_future_wrong_and_disabled_keys_fail() {
        let ts = 1_631_756_233_699;
        let five_min = 5 * 60 * 1000;
        let check = |now: i64| verify(Some(&key()), "testRoom", "1631756233699", ts, PACT_KEY, now);
        assert_eq!(check(ts + five_min), Ok(()));
        assert_eq!(check(ts - five_min), Ok(()));
        assert_eq!(check(ts + five_min + 1), Err(SigningError::Stale));
        assert_eq!(check(ts - five_min - 1), Err(SigningError::Stale));
        assert_eq!(
            verify(
                Some(&key()),
                "testRoom",
                "1631756233699",
                ts,
                &PACT_KEY.replace('8', "9"),
                ts
            ),
            Err(SigningError::WrongKey)
        );
        assert_eq!(
            verify(None, "testRoom", "1631756233699", ts, PACT_KEY, ts),
            Err(SigningError::Disabled)
        );
    }
}
