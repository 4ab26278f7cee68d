//! Alert kinds (SPEC §8): the eight that come from EventSub, `donation`
//! from the alert API, and custom kinds that an app names itself.

use std::fmt;

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `channel.follow`.
    Follow,
    /// `channel.subscribe` (not a gift).
    Subscribe,
    /// `channel.subscription.message`.
    Resub,
    /// `channel.subscription.gift`.
    Gift,
    /// `channel.cheer` (`amount` = bits).
    Cheer,
    /// `channel.raid`, to the raided channel (`amount` = viewers).
    Raid,
    /// A channel-points custom reward redemption.
    Redemption,
    /// `channel.hype_train.begin`.
    HypeTrain,
    /// A donation from the alert API.
    Donation,
    /// Any other kind an app posts with its own `text`.
    Custom(String),
}

/// Why a kind name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kind must be 1 to {MAX_KIND_CHARS} of a-z, 0-9 and _, starting with a letter")]
pub struct KindError;

/// Longest custom kind name.
pub const MAX_KIND_CHARS: usize = 32;

impl Kind {
    /// The kinds that have settings, in the order pages and `settings` list them.
    pub const KNOWN: [Kind; 9] = [
        Kind::Follow,
        Kind::Subscribe,
        Kind::Resub,
        Kind::Gift,
        Kind::Cheer,
        Kind::Raid,
        Kind::Redemption,
        Kind::HypeTrain,
        Kind::Donation,
    ];

    /// A known kind by name, or a custom one.
    ///
    /// # Errors
    /// [`KindError`] for a name outside `[a-z][a-z0-9_]{0,31}`.
    pub fn parse(raw: &str) -> Result<Self, KindError> {
        if let Some(k) = Self::known(raw) {
            return Ok(k);
        }
        let mut bytes = raw.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if first_ok && rest_ok && raw.len() <= MAX_KIND_CHARS {
            Ok(Self::Custom(raw.to_owned()))
        } else {
            Err(KindError)
        }
    }

    /// One of the kinds with settings, by name.
    pub fn known(raw: &str) -> Option<Self> {
        Self::KNOWN.into_iter().find(|k| k.as_str() == raw)
    }

    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Follow => "follow",
            Self::Subscribe => "subscribe",
            Self::Resub => "resub",
            Self::Gift => "gift",
            Self::Cheer => "cheer",
            Self::Raid => "raid",
            Self::Redemption => "redemption",
            Self::HypeTrain => "hype_train",
            Self::Donation => "donation",
            Self::Custom(name) => name,
        }
    }

    /// The metrics label: custom kinds share one, so that apps cannot grow
    /// the label set without bound.
    pub fn metric_label(&self) -> &str {
        match self {
            Self::Custom(_) => "custom",
            known => known.as_str(),
        }
    }

    /// Whether alerts of this kind carry an `amount` that `min_amount` filters.
    pub fn has_amount(&self) -> bool {
        matches!(
            self,
            Self::Gift | Self::Cheer | Self::Raid | Self::Donation | Self::Custom(_)
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_round_trip() {
        for k in Kind::KNOWN {
            assert_eq!(Kind::parse(k.as_str()), Ok(k.clone()));
        }
    }

    #[test]
    fn custom_kinds_follow_the_name_rule() {
        assert_eq!(
            Kind::parse("merch_sale"),
            Ok(Kind::Custom("merch_sale".into()))
        );
        for bad in ["", "Merch", "1st", "a-b", "a b", &"x".repeat(33)] {
            assert_eq!(Kind::parse(bad), Err(KindError), "{bad:?}");
        }
        assert_eq!(Kind::parse("merch").unwrap().metric_label(), "custom");
    }
}
