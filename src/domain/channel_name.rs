//! `ChannelName`: a streamer login used as a channel name (SPEC §3).
//!
//! Lower-cased before validation (SPEC §7.11), so `testBroadcaster` from the
//! Twitch CLI routes to `testbroadcaster`.

use std::fmt;

/// Longest Twitch login (TWITCH.md §8).
pub const MAX_LOGIN_CHARS: usize = 25;

/// A validated channel name: 1 to 25 of `a-z 0-9 _`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ChannelName(String);

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
        let lower = raw.to_ascii_lowercase();
        if !lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ChannelNameError::InvalidCharacter);
        }
        Ok(Self(lower))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
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
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
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
