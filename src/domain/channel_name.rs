//! `ChannelName`: a streamer login used as a channel name (SPEC §3).
//!
//! Lower-cased before validation (SPEC §7.11), so `testBroadcaster` from the
//! Twitch CLI routes to `testbroadcaster`.

use std::fmt;

/// Longest Twitch login (TWITCH.md §8).
pub const MAX_LOGIN_CHARS: usize = 25;

/// A validated channel name: 1 to 25 of `a-z 0-9 _`. Held inline, without
/// an allocation: every connection, subscription and message carries one,
/// and the hub compares them for every delivery.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChannelName {
    len: u8,
    /// The name's bytes, then zeros.
    bytes: [u8; MAX_LOGIN_CHARS],
}

/// Which rule a channel name broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name is longer than {MAX_LOGIN_CHARS} characters")]
    TooLong,
    #[error("channel name may only contain a-z, 0-9 and _")]
    InvalidCharacter,
}

impl ChannelName {
    /// Lower-cases `raw` and checks the login rules.
    ///
    /// # Errors
    /// The rule the name breaks.
    pub fn parse(raw: &str) -> Result<Self, ChannelNameError> {
        if raw.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if raw.len() > MAX_LOGIN_CHARS {
            return Err(ChannelNameError::TooLong);
        }
        let mut bytes = [0u8; MAX_LOGIN_CHARS];
        for (slot, b) in bytes.iter_mut().zip(raw.bytes()) {
            let b = b.to_ascii_lowercase();
            if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(ChannelNameError::InvalidCharacter);
            }
            *slot = b;
        }
        let len = u8::try_from(raw.len()).map_err(|_| ChannelNameError::TooLong)?;
        Ok(Self { len, bytes })
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        // ASCII by construction, so never the empty fallback.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChannelName").field(&self.as_str()).finish()
    }
}

impl PartialOrd for ChannelName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ChannelName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl serde::Serialize for ChannelName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Stored names are validated again when read back.
impl<'de> serde::Deserialize<'de> for ChannelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mixed_case_logins_are_lower_cased() {
        assert_eq!(
            ChannelName::parse("testBroadcaster").unwrap().as_str(),
            "testbroadcaster"
        );
    }

    #[test]
    fn empty_too_long_and_bad_characters_are_rejected() {
        assert_eq!(ChannelName::parse(""), Err(ChannelNameError::Empty));
        assert_eq!(
            ChannelName::parse(&"a".repeat(26)),
            Err(ChannelNameError::TooLong)
        );
        assert!(ChannelName::parse(&"a".repeat(25)).is_ok());
        for bad in ["a b", "a-b", "é", "a/b", "../x", "a.b"] {
            assert_eq!(
                ChannelName::parse(bad),
                Err(ChannelNameError::InvalidCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_compare_and_print_as_their_strings() {
        let a = ChannelName::parse("ab").unwrap();
        let abc = ChannelName::parse("abc").unwrap();
        let b = ChannelName::parse("b").unwrap();
        assert!(a < abc && abc < b);
        assert_eq!(a, ChannelName::parse("AB").unwrap());
        assert_eq!(format!("{abc}"), "abc");
        assert_eq!(format!("{abc:?}"), "ChannelName(\"abc\")");
        assert_eq!(serde_json::to_string(&abc).unwrap(), "\"abc\"");
    }

    proptest! {
        #[test]
        fn every_valid_login_round_trips(s in "[a-zA-Z0-9_]{1,25}") {
            let name = ChannelName::parse(&s).unwrap();
            prop_assert_eq!(name.as_str(), s.to_ascii_lowercase());
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = ChannelName::parse(&s);
        }
    }
}
