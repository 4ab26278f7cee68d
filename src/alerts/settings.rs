//! Per-kind alert settings (SPEC §8): `enabled`, `duration_ms`,
//! `min_amount`, `template`, `sound`. One object keyed by kind, the same
//! in the API, the overlay's `welcome` and its `settings` op. Parsed by
//! hand from JSON so that every refusal names its field
//! (`cheer.duration_ms`).

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use super::alert::Amount;
use super::kind::Kind;
use super::template::Template;

/// Shortest and longest time an alert is shown.
pub const DURATION_MS: std::ops::RangeInclusive<u32> = 1_000..=60_000;
/// Default time on screen.
pub const DEFAULT_DURATION_MS: u32 = 8_000;

/// One kind's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSettings {
    /// Disabled kinds never enter the queue.
    pub enabled: bool,
    /// Time on screen, within [`DURATION_MS`].
    pub duration_ms: u32,
    /// Events with a smaller `amount` never enter the queue.
    pub min_amount: Option<Amount>,
    /// Renders the alert's `text`.
    pub template: Template,
    /// The overlay plays a short tone.
    pub sound: bool,
}

/// A settings field that breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct SettingsError {
    /// `kind.field`, or the kind alone.
    pub field: String,
    /// What is wrong with it.
    pub rule: String,
}

fn refuse(field: impl Into<String>, rule: impl Into<String>) -> SettingsError {
    SettingsError {
        field: field.into(),
        rule: rule.into(),
    }
}

fn default_template(kind: &Kind) -> &'static str {
    match kind {
        Kind::Follow => "{user} just followed!",
        Kind::Subscribe => "{user} just subscribed!",
        Kind::Resub => "{user} resubscribed for {months} months!",
        Kind::Gift => "{user} gifted {count} subs!",
        Kind::Cheer => "{user} cheered {amount} bits!",
        Kind::Raid => "{user} is raiding with {viewers} viewers!",
        Kind::Redemption => "{user} redeemed {reward}",
        Kind::HypeTrain => "A hype train has started!",
        Kind::Donation => "{user} donated {amount} {currency}",
        Kind::Custom(_) => "{message}",
    }
}

impl KindSettings {
    /// SPEC §8 defaults: enabled for follow, subscribe, resub, gift, cheer,
    /// raid and donation (and custom kinds, which an app posts on purpose).
    pub fn default_for(kind: &Kind) -> Self {
        Self {
            enabled: !matches!(kind, Kind::Redemption | Kind::HypeTrain),
            duration_ms: DEFAULT_DURATION_MS,
            min_amount: None,
            template: Template::parse(default_template(kind))
                .unwrap_or_else(|_| Template::parse("{user}").unwrap_or_else(|_| unreachable())),
            sound: true,
        }
    }

    /// Parses one kind's object; missing fields take their defaults.
    fn parse(kind: &Kind, value: &Value) -> Result<Self, SettingsError> {
        let name = kind.as_str();
        let Value::Object(fields) = value else {
            return Err(refuse(name, "must be an object"));
        };
        let mut s = Self::default_for(kind);
        for (field, v) in fields {
            let path = format!("{name}.{field}");
            match field.as_str() {
                "enabled" => {
                    s.enabled = v
                        .as_bool()
                        .ok_or_else(|| refuse(&path, "must be true or false"))?
                }
                "sound" => {
                    s.sound = v
                        .as_bool()
                        .ok_or_else(|| refuse(&path, "must be true or false"))?
                }
                "duration_ms" => {
                    s.duration_ms = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| DURATION_MS.contains(n))
                        .ok_or_else(|| {
                            refuse(
                                &path,
                                format!(
                                    "must be a whole number of milliseconds from {} to {}",
                                    DURATION_MS.start(),
                                    DURATION_MS.end()
                                ),
                            )
                        })?;
                }
                "min_amount" => {
                    s.min_amount = match v {
                        Value::Null => None,
                        Value::String(raw) if raw.trim().is_empty() => None,
                        Value::String(raw) => {
                            Some(Amount::parse(raw).map_err(|e| refuse(&path, e.to_string()))?)
                        }
                        // JSON numbers print as their shortest exact form ("0.1").
                        Value::Number(n) => Some(
                            Amount::parse(&n.to_string())
                                .map_err(|e| refuse(&path, e.to_string()))?,
                        ),
                        _ => {
                            return Err(refuse(
                                &path,
                                "must be a decimal string like \"100\", or null",
                            ));
                        }
                    };
                    if s.min_amount.is_some() && !kind.has_amount() {
                        return Err(refuse(
                            &path,
                            format!("{name} alerts have no amount: leave it null"),
                        ));
                    }
                }
                "template" => {
                    let raw = v
                        .as_str()
                        .ok_or_else(|| refuse(&path, "must be a string"))?;
                    s.template = Template::parse(raw).map_err(|e| refuse(&path, e.to_string()))?;
                }
                _ => {
                    return Err(refuse(
                        &path,
                        "is not a setting (enabled, duration_ms, min_amount, template, sound)",
                    ));
                }
            }
        }
        Ok(s)
    }
}

#[expect(
    clippy::panic,
    reason = "the default templates are constants checked by a unit test"
)]
fn unreachable() -> Template {
    panic!("default template does not parse")
}

impl Serialize for KindSettings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("enabled", &self.enabled)?;
        m.serialize_entry("duration_ms", &self.duration_ms)?;
        m.serialize_entry("min_amount", &self.min_amount)?;
        m.serialize_entry("template", self.template.as_str())?;
        m.serialize_entry("sound", &self.sound)?;
        m.end()
    }
}

/// Every known kind's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings(Vec<(Kind, KindSettings)>);

impl Default for Settings {
    fn default() -> Self {
        Self(
            Kind::KNOWN
                .iter()
                .map(|k| (k.clone(), KindSettings::default_for(k)))
                .collect(),
        )
    }
}

impl Settings {
    /// Parses a whole settings object: keys are known kinds; a kind left
    /// out gets its defaults, as does a field left out.
    ///
    /// # Errors
    /// [`SettingsError`] naming the first field that breaks its rule.
    pub fn parse(value: &Value) -> Result<Self, SettingsError> {
        let Value::Object(map) = value else {
            return Err(refuse("settings", "must be an object keyed by kind"));
        };
        Self::from_map(map)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self, SettingsError> {
        for key in map.keys() {
            if Kind::known(key).is_none() {
                return Err(refuse(
                    key.clone(),
                    "is not an alert kind with settings (follow, subscribe, resub, gift, cheer, raid, redemption, hype_train, donation)",
                ));
            }
        }
        let mut out = Vec::with_capacity(Kind::KNOWN.len());
        for kind in Kind::KNOWN {
            let s = match map.get(kind.as_str()) {
                Some(v) => KindSettings::parse(&kind, v)?,
                None => KindSettings::default_for(&kind),
            };
            out.push((kind, s));
        }
        Ok(Self(out))
    }

    /// The settings of `kind`; custom kinds get the defaults.
    pub fn get(&self, kind: &Kind) -> KindSettings {
        self.0
            .iter()
            .find(|(k, _)| k == kind)
            .map_or_else(|| KindSettings::default_for(kind), |(_, s)| s.clone())
    }

    /// As JSON text (what the stores keep and the overlay gets).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Reads stored settings back; anything unreadable falls back to the
    /// defaults (stored settings were checked when saved).
    pub fn from_stored(json: Option<&str>) -> Self {
        json.and_then(|j| serde_json::from_str::<Value>(j).ok())
            .and_then(|v| Self::parse(&v).ok())
            .unwrap_or_default()
    }
}

impl Serialize for Settings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k.as_str(), v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let s = Settings::default();
        for k in Kind::KNOWN {
            let ks = s.get(&k);
            assert_eq!(ks.duration_ms, 8000);
            assert_eq!(
                ks.enabled,
                !matches!(k, Kind::Redemption | Kind::HypeTrain),
                "{k}"
            );
        }
        // Every default template parses (unreachable() never runs).
        let back = Settings::parse(&serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn partial_settings_fill_in_defaults() {
        let s = Settings::parse(&json!({"cheer": {"min_amount": "100", "sound": false}})).unwrap();
        let cheer = s.get(&Kind::Cheer);
        assert_eq!(cheer.min_amount, Some(Amount::parse("100").unwrap()));
        assert!(!cheer.sound);
        assert_eq!(cheer.duration_ms, 8000);
        assert_eq!(
            s.get(&Kind::Follow),
            KindSettings::default_for(&Kind::Follow)
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (json!([]), "settings"),
            (json!({"nope": {}}), "nope"),
            (json!({"follow": 3}), "follow"),
            (json!({"follow": {"enabled": "yes"}}), "follow.enabled"),
            (json!({"follow": {"sound": 1}}), "follow.sound"),
            (
                json!({"follow": {"duration_ms": 999}}),
                "follow.duration_ms",
            ),
            (
                json!({"follow": {"duration_ms": 60001}}),
                "follow.duration_ms",
            ),
            (
                json!({"follow": {"duration_ms": 1.5}}),
                "follow.duration_ms",
            ),
            (json!({"cheer": {"min_amount": "-1"}}), "cheer.min_amount"),
            (json!({"cheer": {"min_amount": "lots"}}), "cheer.min_amount"),
            (json!({"cheer": {"min_amount": true}}), "cheer.min_amount"),
            (json!({"follow": {"min_amount": "5"}}), "follow.min_amount"),
            (json!({"raid": {"template": "{viewer}"}}), "raid.template"),
            (json!({"raid": {"template": 5}}), "raid.template"),
            (json!({"raid": {"colour": "red"}}), "raid.colour"),
        ];
        for (value, field) in cases {
            let e = Settings::parse(&value).unwrap_err();
            assert_eq!(e.field, field, "{value}: {e}");
        }
    }

    #[test]
    fn numbers_are_taken_as_exact_decimals() {
        let s = Settings::parse(&json!({"donation": {"min_amount": 0.1}})).unwrap();
        assert_eq!(
            s.get(&Kind::Donation).min_amount.unwrap().to_string(),
            "0.1"
        );
    }
}
