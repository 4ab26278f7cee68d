//! Ready-made EventSub bodies for the `trigger` and `verify-subscription` subcommands.
//!
//! One realistic notification per known type lives in `samples/<type>.json` (key order and
//! field sets as TWITCH.md §1.2 and §5), compiled in. Each sample is written for the
//! broadcaster `teststreamer` (id `12345678`) at the instant [`SAMPLE_TIME`];
//! [`notification`] re-aims a copy at another channel and moves its timestamps to now, so
//! the bodies this module hands out go through the same webhook path as Twitch's.
//!
//! The returned values are `serde_json::Value`s: without serde_json's `preserve_order`
//! feature, serializing them writes object keys in alphabetical order, which Twitch's
//! own order does not depend on.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// The broadcaster every sample is written for.
const SAMPLE_LOGIN: &str = "teststreamer";
/// `SAMPLE_LOGIN`'s display name in the samples.
const SAMPLE_NAME: &str = "TestStreamer";
/// `SAMPLE_LOGIN`'s user id in the samples (event and condition).
const SAMPLE_BROADCASTER_ID: &str = "12345678";
/// The instant the samples take as "now"; later timestamps (a poll's `ends_at`) keep their
/// distance from it.
pub const SAMPLE_TIME: &str = "2026-11-23T08:00:00.123456789Z";

/// `(type, version, body)`, in the order [`known_types`] lists them.
const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "stream.online",
        "1",
        include_str!("../../samples/stream.online.json"),
    ),
    (
        "stream.offline",
        "1",
        include_str!("../../samples/stream.offline.json"),
    ),
    (
        "channel.update",
        "2",
        include_str!("../../samples/channel.update.json"),
    ),
    (
        "channel.follow",
        "2",
        include_str!("../../samples/channel.follow.json"),
    ),
    (
        "channel.subscribe",
        "1",
        include_str!("../../samples/channel.subscribe.json"),
    ),
    (
        "channel.subscription.gift",
        "1",
        include_str!("../../samples/channel.subscription.gift.json"),
    ),
    (
        "channel.subscription.message",
        "1",
        include_str!("../../samples/channel.subscription.message.json"),
    ),
    (
        "channel.cheer",
        "1",
        include_str!("../../samples/channel.cheer.json"),
    ),
    (
        "channel.raid",
        "1",
        include_str!("../../samples/channel.raid.json"),
    ),
    (
        "channel.channel_points_custom_reward_redemption.add",
        "1",
        include_str!("../../samples/channel.channel_points_custom_reward_redemption.add.json"),
    ),
    (
        "channel.poll.begin",
        "1",
        include_str!("../../samples/channel.poll.begin.json"),
    ),
    (
        "channel.poll.progress",
        "1",
        include_str!("../../samples/channel.poll.progress.json"),
    ),
    (
        "channel.poll.end",
        "1",
        include_str!("../../samples/channel.poll.end.json"),
    ),
    (
        "channel.prediction.begin",
        "1",
        include_str!("../../samples/channel.prediction.begin.json"),
    ),
    (
        "channel.prediction.progress",
        "1",
        include_str!("../../samples/channel.prediction.progress.json"),
    ),
    (
        "channel.prediction.lock",
        "1",
        include_str!("../../samples/channel.prediction.lock.json"),
    ),
    (
        "channel.prediction.end",
        "1",
        include_str!("../../samples/channel.prediction.end.json"),
    ),
    (
        "channel.hype_train.begin",
        "2",
        include_str!("../../samples/channel.hype_train.begin.json"),
    ),
    (
        "channel.hype_train.progress",
        "2",
        include_str!("../../samples/channel.hype_train.progress.json"),
    ),
    (
        "channel.hype_train.end",
        "2",
        include_str!("../../samples/channel.hype_train.end.json"),
    ),
    (
        "channel.ban",
        "1",
        include_str!("../../samples/channel.ban.json"),
    ),
    (
        "channel.chat.message",
        "1",
        include_str!("../../samples/channel.chat.message.json"),
    ),
];

/// `SAMPLES`' types, kept in step by a test.
const KNOWN_TYPES: &[&str] = &[
    "stream.online",
    "stream.offline",
    "channel.update",
    "channel.follow",
    "channel.subscribe",
    "channel.subscription.gift",
    "channel.subscription.message",
    "channel.cheer",
    "channel.raid",
    "channel.channel_points_custom_reward_redemption.add",
    "channel.poll.begin",
    "channel.poll.progress",
    "channel.poll.end",
    "channel.prediction.begin",
    "channel.prediction.progress",
    "channel.prediction.lock",
    "channel.prediction.end",
    "channel.hype_train.begin",
    "channel.hype_train.progress",
    "channel.hype_train.end",
    "channel.ban",
    "channel.chat.message",
];

/// Every type `trigger` can send, in a stable order.
pub fn known_types() -> &'static [&'static str] {
    KNOWN_TYPES
}

/// A ready-to-send notification body for `event_type` aimed at `channel` (a lower-case login): the broadcaster login/name
/// (for channel.raid: the raided `to_broadcaster_*`, and condition.to_broadcaster_user_id) set to that channel,
/// a fresh subscription id (uuid v4), and every timestamp field (created_at, started_at, followed_at, …) set to `now`
/// in RFC 3339 with nanoseconds. None for an unknown type.
///
/// The display name becomes `channel` too, and the broadcaster id (in the event and the
/// condition) becomes an 8-digit id derived from `channel`, so that events for different
/// channels never teach the registry one id for two logins. Timestamps that lie after the
/// sample's "now" (`ends_at`, `locks_at`, `expires_at`, …) keep their distance from `now`.
pub fn notification(event_type: &str, channel: &str, now: DateTime<Utc>) -> Option<Value> {
    let (_, _, body) = SAMPLES.iter().find(|(t, _, _)| *t == event_type)?;
    let mut body: Value = serde_json::from_str(body).ok()?;
    let sample_time = DateTime::parse_from_rfc3339(SAMPLE_TIME).ok()?;
    let shift = now.signed_duration_since(sample_time);
    let names = Renames {
        login: channel,
        id: &broadcaster_id(channel),
        shift,
        now,
    };
    names.apply(&mut body, None);
    if let Some(subscription) = body.get_mut("subscription") {
        subscription["id"] = Value::String(Uuid::new_v4().to_string());
    }
    Some(body)
}

/// The subscription version of a known type ("1", "2").
pub fn version(event_type: &str) -> Option<&'static str> {
    SAMPLES
        .iter()
        .find(|(t, _, _)| *t == event_type)
        .map(|(_, version, _)| *version)
}

/// A `webhook_callback_verification` body with a `challenge` and the given callback URL.
///
/// The subscription is a `channel.follow` v2 for `teststreamer`, as twitch-cli's
/// `verify-subscription` would send it (TWITCH.md §1.2, §9).
pub fn verification(challenge: &str, callback: &str, now: DateTime<Utc>) -> Value {
    json!({
        "subscription": {
            "id": Uuid::new_v4().to_string(),
            "status": "webhook_callback_verification_pending",
            "type": "channel.follow",
            "version": "2",
            "condition": {
                "broadcaster_user_id": SAMPLE_BROADCASTER_ID,
                "moderator_user_id": SAMPLE_BROADCASTER_ID,
            },
            "transport": {"method": "webhook", "callback": callback},
            "created_at": rfc3339(now),
            "cost": 0,
        },
        "challenge": challenge,
    })
}

/// RFC 3339 with nanoseconds, as Twitch and twitch-cli write timestamps.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A stable, fake 8-digit user id for `channel` (FNV-1a), never the sample's own id.
fn broadcaster_id(channel: &str) -> String {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = channel.bytes().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    let id = 10_000_000 + hash % 90_000_000;
    if id.to_string() == SAMPLE_BROADCASTER_ID {
        // One channel in 90 million; any other id will do.
        return "10000000".to_owned();
    }
    id.to_string()
}

/// What [`notification`] rewrites in a sample, applied to every value in the body.
struct Renames<'a> {
    login: &'a str,
    id: &'a str,
    shift: TimeDelta,
    now: DateTime<Utc>,
}

impl Renames<'_> {
    /// Rewrites `value` in place; `key` is the object key it sits under, if any.
    fn apply(&self, value: &mut Value, key: Option<&str>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.apply(v, Some(k));
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.apply(v, key);
                }
            }
            Value::String(s) => {
                if let Some(new) = self.rewrite(s, key) {
                    *s = new;
                }
            }
            _ => {}
        }
    }

    fn rewrite(&self, s: &str, key: Option<&str>) -> Option<String> {
        match s {
            SAMPLE_LOGIN | SAMPLE_NAME => Some(self.login.to_owned()),
            SAMPLE_BROADCASTER_ID => Some(self.id.to_owned()),
            _ if key.is_some_and(|k| k.ends_with("_at")) => {
                let at = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
                let moved = at.checked_add_signed(self.shift).unwrap_or(self.now);
                Some(rfc3339(moved))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2027-01-02T03:04:05.000000006Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parsed(body: &str) -> Value {
        serde_json::from_str(body).unwrap()
    }

    /// Every `"…_at"` string in `value`, with its key.
    fn timestamps(value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if let (true, Some(s)) = (k.ends_with("_at"), v.as_str()) {
                        out.push((k.clone(), s.to_owned()));
                    }
                    timestamps(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| timestamps(v, out)),
            _ => {}
        }
    }

    #[test]
    fn known_types_match_the_compiled_samples() {
        let sampled: Vec<&str> = SAMPLES.iter().map(|(t, _, _)| *t).collect();
        assert_eq!(sampled, known_types());
    }

    #[test]
    fn every_sample_parses_with_its_type_version_and_key_set() {
        for (event_type, version, body) in SAMPLES {
            let body = parsed(body);
            let subscription = &body["subscription"];
            assert_eq!(subscription["type"], *event_type);
            assert_eq!(subscription["version"], *version);
            assert_eq!(subscription["status"], "enabled");
            assert_eq!(subscription["transport"]["method"], "webhook");
            assert_eq!(subscription["created_at"], SAMPLE_TIME);
            assert!(subscription["condition"].is_object());
            assert!(body["event"].is_object(), "{event_type}");
            assert_eq!(body.as_object().map(serde_json::Map::len), Some(2));
        }
    }

    #[test]
    fn samples_keep_twitch_key_order() {
        for (event_type, _, body) in SAMPLES {
            let keys = [
                "\"id\"",
                "\"status\"",
                "\"type\"",
                "\"version\"",
                "\"condition\"",
                "\"transport\"",
                "\"created_at\"",
                "\"cost\"",
                "\"event\"",
            ];
            let positions: Vec<usize> = keys.iter().filter_map(|k| body.find(k)).collect();
            assert_eq!(positions.len(), keys.len(), "{event_type}");
            assert!(positions.is_sorted(), "{event_type}");
        }
    }

    #[test]
    fn every_sample_timestamp_is_at_or_after_the_sample_time() {
        let base = DateTime::parse_from_rfc3339(SAMPLE_TIME).unwrap();
        for (event_type, _, body) in SAMPLES {
            let mut found = Vec::new();
            timestamps(&parsed(body), &mut found);
            for (key, at) in found {
                let at = DateTime::parse_from_rfc3339(&at).unwrap();
                assert!(at >= base, "{event_type} {key}");
            }
        }
    }

    #[test]
    fn versions_are_twitchs_current_ones() {
        assert_eq!(version("channel.follow"), Some("2"));
        assert_eq!(version("channel.update"), Some("2"));
        assert_eq!(version("channel.hype_train.begin"), Some("2"));
        assert_eq!(version("channel.cheer"), Some("1"));
        assert_eq!(version("channel.shoutout.create"), None);
    }

    #[test]
    fn notification_for_an_unknown_type_is_none() {
        assert!(notification("channel.shoutout.create", "somebody", now()).is_none());
    }

    #[test]
    fn notification_is_aimed_at_the_channel_with_a_fresh_id_and_now() {
        for event_type in known_types() {
            let body = notification(event_type, "other_channel", now()).unwrap();
            let text = body.to_string();
            assert!(!text.contains(SAMPLE_LOGIN), "{event_type}: {text}");
            assert!(!text.contains(SAMPLE_NAME), "{event_type}");
            assert!(!text.contains(SAMPLE_BROADCASTER_ID), "{event_type}");

            let subscription = &body["subscription"];
            let id = subscription["id"].as_str().unwrap();
            assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 4);
            assert_eq!(subscription["created_at"], "2027-01-02T03:04:05.000000006Z");

            let mut found = Vec::new();
            timestamps(&body, &mut found);
            for (key, at) in found {
                let at = DateTime::parse_from_rfc3339(&at).unwrap();
                assert!(at >= now(), "{event_type} {key}");
            }
        }
    }

    #[test]
    fn notification_ids_differ_between_calls() {
        let a = notification("channel.follow", "a_channel", now()).unwrap();
        let b = notification("channel.follow", "a_channel", now()).unwrap();
        assert_ne!(a["subscription"]["id"], b["subscription"]["id"]);
    }

    #[test]
    fn notification_sets_login_name_and_id_consistently() {
        let body = notification("channel.follow", "viewer_friend", now()).unwrap();
        let event = &body["event"];
        assert_eq!(event["broadcaster_user_login"], "viewer_friend");
        assert_eq!(event["broadcaster_user_name"], "viewer_friend");
        assert_eq!(event["followed_at"], "2027-01-02T03:04:05.000000006Z");
        assert_eq!(event["user_login"], "viewer42");
        let id = event["broadcaster_user_id"].as_str().unwrap();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(body["subscription"]["condition"]["broadcaster_user_id"], id);
        assert_eq!(body["subscription"]["condition"]["moderator_user_id"], id);
    }

    #[test]
    fn raid_notification_changes_only_the_raided_side() {
        let body = notification("channel.raid", "raided_one", now()).unwrap();
        let event = &body["event"];
        assert_eq!(event["to_broadcaster_user_login"], "raided_one");
        assert_eq!(event["to_broadcaster_user_name"], "raided_one");
        assert_eq!(event["from_broadcaster_user_login"], "raidingstreamer");
        let condition = &body["subscription"]["condition"];
        assert_eq!(
            condition["to_broadcaster_user_id"],
            event["to_broadcaster_user_id"]
        );
        assert_eq!(condition["from_broadcaster_user_id"], "");
    }

    #[test]
    fn future_timestamps_keep_their_distance_from_now() {
        let body = notification("channel.poll.begin", "teststreamer", now()).unwrap();
        assert_eq!(
            body["event"]["started_at"],
            "2027-01-02T03:04:05.000000006Z"
        );
        assert_eq!(body["event"]["ends_at"], "2027-01-02T03:09:05.000000006Z");
    }

    #[test]
    fn notification_for_teststreamer_keeps_its_login() {
        let body = notification("stream.online", "teststreamer", now()).unwrap();
        assert_eq!(body["event"]["broadcaster_user_login"], "teststreamer");
    }

    #[test]
    fn derived_broadcaster_ids_are_stable_and_distinct() {
        assert_eq!(broadcaster_id("alpha"), broadcaster_id("alpha"));
        assert_ne!(broadcaster_id("alpha"), broadcaster_id("beta"));
    }

    #[test]
    fn verification_carries_the_challenge_and_callback() {
        let body = verification(
            "pogchamp-kappa-360noscope",
            "https://bridge.example/api/callback",
            now(),
        );
        assert_eq!(body["challenge"], "pogchamp-kappa-360noscope");
        let subscription = &body["subscription"];
        assert_eq!(
            subscription["status"],
            "webhook_callback_verification_pending"
        );
        assert_eq!(
            subscription["transport"]["callback"],
            "https://bridge.example/api/callback"
        );
        assert_eq!(subscription["created_at"], "2027-01-02T03:04:05.000000006Z");
        assert!(body.get("event").is_none());
    }
}
