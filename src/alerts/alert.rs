//! The alert (SPEC §8): what the overlay shows, with its exact `amount`.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::ChannelName;

use super::kind::Kind;

/// An exact, non-negative decimal: bits, viewers, a gift count or money.
/// Kept as the decimal it was written as (`"10.50"` stays `"10.50"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(Decimal);

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a decimal number written as a string, like \"10.50\"")]
    NotANumber,
    #[error("must not be negative")]
    Negative,
    #[error("must be greater than 0")]
    Zero,
    #[error("has too many digits")]
    TooLong,
}

/// Most characters an amount may be written with.
const MAX_AMOUNT_CHARS: usize = 24;

impl Amount {
    /// Parses a decimal like `10.50` or `100` (no exponent, no sign but `-`,
    /// which is refused), zero allowed.
    ///
    /// # Errors
    /// [`AmountError`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, AmountError> {
        let raw = raw.trim();
        if raw.len() > MAX_AMOUNT_CHARS {
            return Err(AmountError::TooLong);
        }
        let digits_ok = !raw.is_empty()
            && raw
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
            && raw.bytes().filter(|b| *b == b'.').count() <= 1
            && raw.bytes().any(|b| b.is_ascii_digit());
        if !digits_ok {
            return Err(AmountError::NotANumber);
        }
        let d = Decimal::from_str(raw).map_err(|_| AmountError::NotANumber)?;
        if d.is_sign_negative() && !d.is_zero() {
            return Err(AmountError::Negative);
        }
        Ok(Self(d.abs()))
    }

    /// Like [`Amount::parse`], and more than zero (a donation).
    ///
    /// # Errors
    /// [`AmountError`] naming the rule.
    pub fn parse_positive(raw: &str) -> Result<Self, AmountError> {
        let a = Self::parse(raw)?;
        if a.0.is_zero() {
            return Err(AmountError::Zero);
        }
        Ok(a)
    }

    /// A whole number (bits, viewers).
    pub fn from_u64(n: u64) -> Self {
        Self(Decimal::from(n))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// One alert, as the overlay, the queue and the API see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id (acks name it).
    pub id: String,
    /// The streamer's channel.
    pub channel: ChannelName,
    /// What it is about.
    pub kind: Kind,
    /// The rendered sentence.
    pub text: String,
    /// Who did it.
    pub user: Option<String>,
    /// Bits, viewers, subs gifted or money.
    pub amount: Option<Amount>,
    /// ISO 4217 code with a money amount.
    pub currency: Option<String>,
    /// What the user wrote.
    pub message: Option<String>,
    /// How long the overlay shows it.
    pub duration_ms: u32,
    /// When it was queued.
    #[serde(with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// Sent by the dashboard's test button.
    pub test: bool,
    /// A replayed copy of an earlier alert.
    pub replay: bool,
    /// The event as its source sent it.
    pub data: Value,
}

/// How an alert left the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// An overlay acked it when its duration was over.
    Shown,
    /// The streamer skipped it.
    Skipped,
}

/// An alert in the `recent` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentAlert {
    /// How it ended.
    pub outcome: Outcome,
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
}

/// A fresh alert id.
pub fn new_alert_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};

    pub fn serialize<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
    use serde::Deserialize as _;
}

/// `at` as the alert JSON writes it.
pub fn format_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_decimals() {
        assert_eq!(Amount::parse("10.50").unwrap().to_string(), "10.50");
        assert_eq!(Amount::parse("0").unwrap().to_string(), "0");
        assert!(Amount::parse("0.1").unwrap() < Amount::parse("0.10000001").unwrap());
        assert_eq!(Amount::parse("-1"), Err(AmountError::Negative));
        for bad in ["", "ten", "1e3", "1.2.3", ".", "+5", "NaN", "１"] {
            assert_eq!(Amount::parse(bad), Err(AmountError::NotANumber), "{bad:?}");
        }
        assert_eq!(Amount::parse_positive("0.00"), Err(AmountError::Zero));
        assert_eq!(Amount::parse(&"9".repeat(40)), Err(AmountError::TooLong));
    }

    #[test]
    fn an_alert_round_trips_through_json() {
        let alert = Alert {
            id: new_alert_id(),
            channel: ChannelName::parse("teststreamer").unwrap(),
            kind: Kind::Donation,
            text: "Ana donated 10.50 BRL".into(),
            user: Some("Ana".into()),
            amount: Some(Amount::parse("10.50").unwrap()),
            currency: Some("BRL".into()),
            message: Some("good luck!".into()),
            duration_ms: 8000,
            at: Utc::now(),
            test: false,
            replay: false,
            data: serde_json::json!({"order": 1}),
        };
        let json = serde_json::to_string(&alert).unwrap();
        assert!(json.contains(r#""amount":"10.50""#), "{json}");
        let back: Alert = serde_json::from_str(&json).unwrap();
        assert_eq!(back.amount, alert.amount);
        let recent = RecentAlert {
            outcome: Outcome::Skipped,
            alert: back,
        };
        let json = serde_json::to_string(&recent).unwrap();
        let back: RecentAlert = serde_json::from_str(&json).unwrap();
        assert_eq!(back.outcome, Outcome::Skipped);
    }
}
