//! Where alerts come from: EventSub notifications of the SPEC §8 kinds
//! (mapped here from the event's fields) and the alert API's body
//! (`POST /api/alerts/{channel}`: a donation or a custom alert), parsed
//! with an error naming the field.

use serde_json::Value;

use super::alert::Amount;
use super::kind::Kind;
use super::template::Fields;

/// Longest `user`.
pub const MAX_USER_CHARS: usize = 100;
/// Longest `message`.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Longest custom `text`.
pub const MAX_TEXT_CHARS: usize = 500;

/// An alert before the queue gives it an id, a text and a duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// What it is about.
    pub kind: Kind,
    /// The placeholder values (and `user`, `currency`, `message`).
    pub fields: Fields,
    /// The amount `min_amount` filters on.
    pub amount: Option<Amount>,
    /// A text of its own (custom kinds); otherwise the template renders one.
    pub text: Option<String>,
    /// A duration of its own (custom kinds); otherwise the kind's setting.
    pub duration_ms: Option<u32>,
    /// The event or body it came from.
    pub data: Value,
}

fn s(event: &Value, key: &str) -> Option<String> {
    match event.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn display(event: &Value, prefix: &str) -> Option<String> {
    s(event, &format!("{prefix}_name")).or_else(|| s(event, &format!("{prefix}_login")))
}

fn who(event: &Value) -> Option<String> {
    if event.get("is_anonymous").and_then(Value::as_bool) == Some(true) {
        return Some("Anonymous".into());
    }
    display(event, "user").or_else(|| Some("Anonymous".into()))
}

fn whole(event: &Value, key: &str) -> Option<Amount> {
    event.get(key).and_then(Value::as_u64).map(Amount::from_u64)
}

/// The EventSub type that is a channel-points redemption.
const REDEMPTION: &str = "channel.channel_points_custom_reward_redemption.add";

/// The alert an EventSub notification makes, if its type is one of the
/// SPEC §8 kinds; for a raid, also the raided channel's login (the alert
/// goes there only).
pub fn from_event(sub_type: &str, event: &Value) -> Option<(Draft, Option<String>)> {
    let mut fields = Fields::default();
    let mut amount = None;
    let mut to = None;
    let kind = match sub_type {
        "channel.follow" => {
            fields.user = display(event, "user");
            Kind::Follow
        }
        "channel.subscribe" => {
            if event.get("is_gift").and_then(Value::as_bool) == Some(true) {
                return None;
            }
            fields.user = display(event, "user");
            Kind::Subscribe
        }
        "channel.subscription.message" => {
            fields.user = display(event, "user");
            fields.months = s(event, "cumulative_months");
            fields.message = event
                .pointer("/message/text")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            Kind::Resub
        }
        "channel.subscription.gift" => {
            fields.user = who(event);
            fields.count = s(event, "total");
            amount = whole(event, "total");
            Kind::Gift
        }
        "channel.cheer" => {
            fields.user = who(event);
            amount = whole(event, "bits");
            fields.message = s(event, "message");
            Kind::Cheer
        }
        "channel.raid" => {
            fields.user = display(event, "from_broadcaster_user");
            fields.viewers = s(event, "viewers");
            amount = whole(event, "viewers");
            to = Some(s(event, "to_broadcaster_user_login")?);
            Kind::Raid
        }
        REDEMPTION => {
            fields.user = display(event, "user");
            fields.reward = event
                .pointer("/reward/title")
                .and_then(Value::as_str)
                .map(str::to_owned);
            fields.message = s(event, "user_input");
            Kind::Redemption
        }
        "channel.hype_train.begin" => {
            fields.count = s(event, "level");
            Kind::HypeTrain
        }
        _ => return None,
    };
    fields.amount = amount.map(|a| a.to_string());
    Some((
        Draft {
            kind,
            fields,
            amount,
            text: None,
            duration_ms: None,
            data: event.clone(),
        },
        to,
    ))
}

/// The EventSub type whose sample a test alert of `kind` uses.
pub fn sample_type(kind: &Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Follow => "channel.follow",
        Kind::Subscribe => "channel.subscribe",
        Kind::Resub => "channel.subscription.message",
        Kind::Gift => "channel.subscription.gift",
        Kind::Cheer => "channel.cheer",
        Kind::Raid => "channel.raid",
        Kind::Redemption => REDEMPTION,
        Kind::HypeTrain => "channel.hype_train.begin",
        Kind::Donation | Kind::Custom(_) => return None,
    })
}

/// A body field that breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InputError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub rule: String,
}

fn refuse(field: &'static str, rule: impl Into<String>) -> InputError {
    InputError {
        field,
        rule: rule.into(),
    }
}

fn text_field(
    body: &serde_json::Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, InputError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => {
            let t = t.trim();
            if t.chars().count() > max {
                Err(refuse(field, format!("must be at most {max} characters")))
            } else if t.is_empty() {
                Ok(None)
            } else {
                Ok(Some(t.to_owned()))
            }
        }
        Some(_) => Err(refuse(field, "must be a string")),
    }
}

/// Parses the body of `POST /api/alerts/{channel}`: `{"kind": "donation",
/// "user", "amount", "currency", "message"}`, or any other kind with
/// `text` (and optionally `user`, `amount`, `currency`, `message`,
/// `duration_ms`).
///
/// # Errors
/// [`InputError`] naming the first field that breaks its rule.
pub fn from_api(body: &Value) -> Result<Draft, InputError> {
    let Value::Object(map) = body else {
        return Err(refuse("body", "must be a JSON object"));
    };
    const FIELDS: [&str; 7] = [
        "kind",
        "user",
        "amount",
        "currency",
        "message",
        "text",
        "duration_ms",
    ];
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(InputError {
            field: "body",
            rule: format!(
                "`{}` is not a field (kind, user, amount, currency, message, text, duration_ms)",
                unknown.chars().take(50).collect::<String>()
            ),
        });
    }
    let kind = match map.get("kind") {
        Some(Value::String(k)) => Kind::parse(k).map_err(|e| refuse("kind", e.to_string()))?,
        Some(_) => return Err(refuse("kind", "must be a string")),
        None => return Err(refuse("kind", "is required")),
    };
    let user = text_field(map, "user", MAX_USER_CHARS)?;
    let message = text_field(map, "message", MAX_MESSAGE_CHARS)?;
    let text = text_field(map, "text", MAX_TEXT_CHARS)?;
    let amount = match map.get("amount") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            if kind == Kind::Donation {
                Amount::parse_positive(raw)
            } else {
                Amount::parse(raw)
            }
            .map_err(|e| refuse("amount", e.to_string()))?,
        ),
        Some(_) => {
            return Err(refuse(
                "amount",
                "must be a decimal number written as a string, like \"10.50\"",
            ));
        }
    };
    let currency = match map.get("currency") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(_) => {
            return Err(refuse(
                "currency",
                "must be a three-letter ISO 4217 code, like \"USD\"",
            ));
        }
    };
    if currency.is_some() && amount.is_none() {
        return Err(refuse("amount", "is required with a currency"));
    }
    let duration_ms = match map.get("duration_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| super::settings::DURATION_MS.contains(n))
                .ok_or_else(|| {
                    refuse(
                        "duration_ms",
                        "must be a whole number of milliseconds from 1000 to 60000",
                    )
                })?,
        ),
    };
    if kind == Kind::Donation {
        if user.is_none() {
            return Err(refuse(
                "user",
                "is required for a donation (1 to 100 characters)",
            ));
        }
        if amount.is_none() {
            return Err(refuse("amount", "is required for a donation"));
        }
        if currency.is_none() {
            return Err(refuse("currency", "is required for a donation"));
        }
        if text.is_some() {
            return Err(refuse(
                "text",
                "a donation's text comes from its template: leave it out",
            ));
        }
    } else if text.is_none() {
        return Err(refuse(
            "text",
            "is required for a custom alert (1 to 500 characters)",
        ));
    }
    if kind == Kind::Donation && duration_ms.is_some() {
        return Err(refuse(
            "duration_ms",
            "a donation's duration comes from its settings: leave it out",
        ));
    }
    let fields = Fields {
        user,
        amount: amount.map(|a| a.to_string()),
        currency,
        message,
        ..Fields::default()
    };
    Ok(Draft {
        kind,
        fields,
        amount,
        text,
        duration_ms,
        data: body.clone(),
    })
}

/// The sample donation a test alert shows.
pub fn sample_donation() -> Draft {
    let body = serde_json::json!({
        "kind": "donation", "user": "TestDonor", "amount": "5.00", "currency": "USD",
        "message": "This is a test donation"
    });
    // The sample is valid; a failure here would be caught by the unit test.
    from_api(&body).unwrap_or(Draft {
        kind: Kind::Donation,
        fields: Fields::default(),
        amount: None,
        text: None,
        duration_ms: None,
        data: body,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::eventsub::samples;

    #[test]
    fn every_alert_kind_has_a_sample_that_maps_to_it() {
        for kind in Kind::KNOWN {
            let Some(t) = sample_type(&kind) else {
                assert_eq!(sample_donation().kind, Kind::Donation);
                continue;
            };
            let body = samples::notification(t, "teststreamer", chrono::Utc::now()).unwrap();
            let (draft, _) = from_event(t, &body["event"]).unwrap();
            assert_eq!(draft.kind, kind, "{t}");
        }
    }

    #[test]
    fn amounts_and_fields_come_from_the_event() {
        let body =
            samples::notification("channel.cheer", "teststreamer", chrono::Utc::now()).unwrap();
        let (d, to) = from_event("channel.cheer", &body["event"]).unwrap();
        assert_eq!(d.amount.unwrap().to_string(), "100");
        assert_eq!(d.fields.user.as_deref(), Some("Viewer42"));
        assert_eq!(to, None);
        let body =
            samples::notification("channel.raid", "teststreamer", chrono::Utc::now()).unwrap();
        let (d, to) = from_event("channel.raid", &body["event"]).unwrap();
        assert_eq!(to.as_deref(), Some("teststreamer"));
        assert_eq!(d.fields.viewers.as_deref(), Some("42"));
    }

    #[test]
    fn gifted_subs_and_other_types_make_no_alert() {
        assert!(
            from_event(
                "channel.subscribe",
                &json!({"is_gift": true, "user_name": "x"})
            )
            .is_none()
        );
        assert!(from_event("stream.online", &json!({})).is_none());
        let (d, _) =
            from_event("channel.cheer", &json!({"is_anonymous": true, "bits": 5})).unwrap();
        assert_eq!(d.fields.user.as_deref(), Some("Anonymous"));
    }

    #[test]
    fn every_api_field_wrong_in_turn_is_named() {
        let good = json!({"kind": "donation", "user": "Ana", "amount": "10.50", "currency": "brl", "message": "good luck!"});
        let d = from_api(&good).unwrap();
        assert_eq!(d.fields.currency.as_deref(), Some("BRL"));
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "body"),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "1", "currency": "USD", "extra": 1}),
                "body",
            ),
            (json!({"user": "Ana"}), "kind"),
            (json!({"kind": 5}), "kind"),
            (json!({"kind": "Bad Kind!"}), "kind"),
            (
                json!({"kind": "donation", "amount": "1", "currency": "USD"}),
                "user",
            ),
            (
                json!({"kind": "donation", "user": 5, "amount": "1", "currency": "USD"}),
                "user",
            ),
            (
                json!({"kind": "donation", "user": "x".repeat(101), "amount": "1", "currency": "USD"}),
                "user",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "currency": "USD"}),
                "amount",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "-5", "currency": "USD"}),
                "amount",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "ten", "currency": "USD"}),
                "amount",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": 10, "currency": "USD"}),
                "amount",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "0", "currency": "USD"}),
                "amount",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "1"}),
                "currency",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "1", "currency": "US"}),
                "currency",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "1", "currency": "USD", "message": "x".repeat(10_240)}),
                "message",
            ),
            (
                json!({"kind": "donation", "user": "Ana", "amount": "1", "currency": "USD", "message": 5}),
                "message",
            ),
            (json!({"kind": "merch"}), "text"),
            (json!({"kind": "merch", "text": "x".repeat(501)}), "text"),
            (
                json!({"kind": "merch", "text": "hi", "duration_ms": 5}),
                "duration_ms",
            ),
        ];
        for (body, field) in cases {
            let e = from_api(&body).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
        }
    }
}
