//! `MessageId`: `<milliseconds>-<sequence>`, strictly increasing per channel
//! (SPEC §3). The same form as Redis stream ids, so both brokers share it.

use std::fmt;
use std::str::FromStr;

/// A message id; ordered by milliseconds, then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    ms: u64,
    seq: u64,
}

/// Why a message id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message id must look like <milliseconds>-<sequence>, e.g. 1763884800000-0")]
pub struct MessageIdError;

impl MessageId {
    /// The smallest id; every real id is after it.
    pub const ZERO: Self = Self { ms: 0, seq: 0 };

    /// An id from its parts.
    pub fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The next id after `self` for a publish at `now_ms`: keeps ids strictly
    /// increasing even when the clock stands still or goes back.
    pub fn next(self, now_ms: u64) -> Self {
        if now_ms > self.ms {
            Self { ms: now_ms, seq: 0 }
        } else {
            Self {
                ms: self.ms,
                seq: self.seq.saturating_add(1),
            }
        }
    }

    /// Parses `<ms>-<seq>` (both decimal, no sign).
    ///
    /// # Errors
    /// [`MessageIdError`] when the text is not of that form.
    pub fn parse(raw: &str) -> Result<Self, MessageIdError> {
        let (ms, seq) = raw.split_once('-').ok_or(MessageIdError)?;
        let digits = |s: &str| -> Result<u64, MessageIdError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MessageIdError);
            }
            s.parse().map_err(|_| MessageIdError)
        };
        Ok(Self {
            ms: digits(ms)?,
            seq: digits(seq)?,
        })
    }

    /// The milliseconds part.
    pub fn ms(self) -> u64 {
        self.ms
    }
}

impl FromStr for MessageId {
    type Err = MessageIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl serde::Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_order_by_milliseconds_then_sequence() {
        let a = MessageId::parse("1763884800000-0").unwrap();
        let b = MessageId::parse("1763884800000-1").unwrap();
        let c = MessageId::parse("1763884800001-0").unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn next_stays_increasing_when_the_clock_goes_back() {
        let a = MessageId::new(1000, 5);
        assert_eq!(a.next(999), MessageId::new(1000, 6));
        assert_eq!(a.next(1000), MessageId::new(1000, 6));
        assert_eq!(a.next(1001), MessageId::new(1001, 0));
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "1", "-1", "1-", "a-1", "1-b", "+1-2", "1-2-3", " 1-2"] {
            assert!(MessageId::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(ms: u64, seq: u64) {
            let id = MessageId::new(ms, seq);
            prop_assert_eq!(MessageId::parse(&id.to_string()).unwrap(), id);
        }

        #[test]
        fn next_is_always_greater(ms in 0u64..u64::MAX, seq in 0u64..u64::MAX, now: u64) {
            let id = MessageId::new(ms, seq);
            prop_assert!(id.next(now) > id);
        }
    }
}
