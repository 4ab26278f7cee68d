//! The room store's behaviour, written once and run against both stores:
//! memory, and Redis (a real Redis, with a unique key prefix). Plus the
//! Redis store's Lua decimal arithmetic held to `rooms::amount`'s answers.

use std::sync::Arc;

use eventsub_bridge::broker::{Broker, RedisBroker};
use eventsub_bridge::config::Limits;
use eventsub_bridge::domain::ChannelName;
use eventsub_bridge::metrics::Metrics;
use eventsub_bridge::rooms::amount::Amount;
use eventsub_bridge::rooms::event::Stats;
use eventsub_bridge::rooms::frame::PollKind;
use eventsub_bridge::rooms::profile::{Properties, ViewerId};
use eventsub_bridge::rooms::state::{MAX_ANSWERS, MAX_POLLS};
use eventsub_bridge::rooms::store::{LocalPresence, MemoryStore, RedisStore, RoomStore};
use serde_json::json;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::redis_server::{cleanup, require_shared_redis, unique_prefix};

/// A store, and what keeps its Redis broker alive.
struct Subject {
    store: RoomStore,
    _broker: Option<Arc<Broker>>,
    cleanup: Option<(String, String)>,
}

impl Subject {
    async fn done(self) {
        if let Some((url, prefix)) = self.cleanup {
            cleanup(&url, &prefix).await;
        }
    }
}

fn memory() -> Subject {
    Subject {
        store: RoomStore::Memory(MemoryStore::default()),
        _broker: None,
        cleanup: None,
    }
}

async fn redis_broker(url: &str, prefix: &str) -> Arc<Broker> {
    let broker = RedisBroker::connect(
        url,
        prefix,
        &Limits::default(),
        Metrics::new(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    Arc::new(Broker::Redis(broker))
}

async fn redis_on(url: &str, prefix: &str, instance: &str) -> Subject {
    let broker = redis_broker(url, prefix).await;
    let store = RoomStore::Redis(RedisStore::new(broker.redis().unwrap(), instance));
    Subject {
        store,
        _broker: Some(broker),
        cleanup: Some((url.to_owned(), prefix.to_owned())),
    }
}

async fn redis() -> Subject {
    let url = require_shared_redis().await;
    redis_on(url, &unique_prefix(), "instance-a").await
}

fn room() -> ChannelName {
    ChannelName::parse("storeroom").unwrap()
}

fn viewer(n: u32) -> ViewerId {
    ViewerId::from_stored(&format!("0000000{n}-aaaa-bbbb-cccc-dddddddddddd"))
}

fn props(v: serde_json::Value) -> Properties {
    let raw = RawValue::from_string(v.to_string()).unwrap();
    Properties::parse_patch(Some(&raw)).unwrap()
}

async fn stats(s: &RoomStore, kind: PollKind, id: &str) -> Stats {
    s.polls(&room(), kind, Some(id))
        .await
        .unwrap()
        .value
        .pop()
        .map(|(_, st)| st)
        .unwrap_or_default()
}

async fn add(
    s: &RoomStore,
    id: &str,
    v: &str,
) -> Result<Amount, eventsub_bridge::rooms::frame::RoomError> {
    s.add(&room(), id, Amount::parse(v).unwrap())
        .await
        .unwrap()
        .value
}

async fn counter(s: &RoomStore, id: &str) -> Option<String> {
    s.counters(&room(), Some(id))
        .await
        .unwrap()
        .value
        .pop()
        .map(|(_, v)| v)
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[actix_web::test]
                async fn $name() {
                    let s = super::memory();
                    super::$name(&s.store).await;
                    s.done().await;
                }
            )*
        }
        mod redis_store {
            $(
                #[actix_web::test]
                async fn $name() {
                    let s = super::redis().await;
                    super::$name(&s.store).await;
                    s.done().await;
                }
            )*
        }
    };
}

on_both_stores!(
    config_starts_empty_and_keeps_what_was_set,
    one_vote_per_viewer_and_voting_again_moves_it,
    ephemeral_votes_need_presence_and_leave_with_the_last_connection,
    presence_counts_distinct_viewers,
    counters_add_exact_decimals_and_refuse_overflow,
    login_merges_properties_and_refuses_more_than_4_kib,
    polls_are_bounded,
    relay_types_follow_relaying_connections,
    versions_only_grow,
);

async fn config_starts_empty_and_keeps_what_was_set(s: &RoomStore) {
    assert_eq!(s.config(&room()).await.unwrap().value, "");
    s.set_config(&room(), "{\"a\":1}").await.unwrap();
    assert_eq!(s.config(&room()).await.unwrap().value, "{\"a\":1}");
}

async fn one_vote_per_viewer_and_voting_again_moves_it(s: &RoomStore) {
    let r = room();
    s.vote(&r, PollKind::Poll, "p", &viewer(1), "a")
        .await
        .unwrap()
        .value
        .unwrap();
    s.vote(&r, PollKind::Poll, "p", &viewer(1), "a")
        .await
        .unwrap()
        .value
        .unwrap();
    s.vote(&r, PollKind::Poll, "p", &viewer(2), "a")
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(
        stats(s, PollKind::Poll, "p").await,
        [("a".to_owned(), 2)].into()
    );
    s.vote(&r, PollKind::Poll, "p", &viewer(1), "b")
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(
        stats(s, PollKind::Poll, "p").await,
        [("a".to_owned(), 1), ("b".to_owned(), 1)].into()
    );
    // Votes of long polls stay when the viewer leaves.
    s.join(&r, &viewer(1)).await.unwrap();
    s.leave(&r, &viewer(1)).await.unwrap();
    assert_eq!(stats(s, PollKind::Poll, "p").await.len(), 2);
    let all = s.polls(&r, PollKind::Poll, None).await.unwrap().value;
    assert_eq!(all.len(), 1);
}

async fn ephemeral_votes_need_presence_and_leave_with_the_last_connection(s: &RoomStore) {
    let r = room();
    let refused = s
        .vote(&r, PollKind::Ephemeral, "e", &viewer(1), "x")
        .await
        .unwrap()
        .value;
    assert!(refused.is_err(), "not in the room");
    s.join(&r, &viewer(1)).await.unwrap();
    s.join(&r, &viewer(1)).await.unwrap();
    s.join(&r, &viewer(2)).await.unwrap();
    s.vote(&r, PollKind::Ephemeral, "e", &viewer(1), "x")
        .await
        .unwrap()
        .value
        .unwrap();
    s.vote(&r, PollKind::Ephemeral, "e", &viewer(2), "x")
        .await
        .unwrap()
        .value
        .unwrap();
    s.leave(&r, &viewer(1)).await.unwrap();
    assert_eq!(stats(s, PollKind::Ephemeral, "e").await.get("x"), Some(&2));
    s.leave(&r, &viewer(1)).await.unwrap();
    assert_eq!(stats(s, PollKind::Ephemeral, "e").await.get("x"), Some(&1));
    s.leave(&r, &viewer(2)).await.unwrap();
    assert_eq!(stats(s, PollKind::Ephemeral, "e").await, Stats::new());
}

async fn presence_counts_distinct_viewers(s: &RoomStore) {
    let r = room();
    assert_eq!(s.presence(&r).await.unwrap().value, 0);
    s.join(&r, &viewer(1)).await.unwrap();
    s.join(&r, &viewer(1)).await.unwrap();
    s.join(&r, &viewer(2)).await.unwrap();
    assert_eq!(s.presence(&r).await.unwrap().value, 2);
    s.leave(&r, &viewer(1)).await.unwrap();
    assert_eq!(s.presence(&r).await.unwrap().value, 2);
    s.leave(&r, &viewer(1)).await.unwrap();
    // A leave too many changes nothing.
    s.leave(&r, &viewer(1)).await.unwrap();
    assert_eq!(s.presence(&r).await.unwrap().value, 1);
}

async fn counters_add_exact_decimals_and_refuse_overflow(s: &RoomStore) {
    let r = room();
    assert_eq!(counter(s, "c").await, None);
    add(s, "c", "0.1").await.unwrap();
    assert_eq!(add(s, "c", "0.2").await.unwrap().to_string(), "0.3");
    add(s, "d", "17.75").await.unwrap();
    assert_eq!(add(s, "d", "-15.14").await.unwrap().to_string(), "2.61");
    assert_eq!(add(s, "d", "-2.61").await.unwrap().to_string(), "0");
    add(s, "big", &"9".repeat(28)).await.unwrap();
    assert!(add(s, "big", "1").await.is_err());
    assert_eq!(counter(s, "big").await.unwrap(), "9".repeat(28));
    assert_eq!(counter(s, "c").await.unwrap(), "0.3");
    let all = s.counters(&r, None).await.unwrap().value;
    assert_eq!(all.len(), 3);
}

async fn login_merges_properties_and_refuses_more_than_4_kib(s: &RoomStore) {
    let r = room();
    let joined = s.join(&r, &viewer(1)).await.unwrap().value;
    assert!(joined.is_empty());
    let (p, _) = s
        .login(&r, &viewer(1), &props(json!({"name": "a", "x": 1})))
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(p, props(json!({"name": "a", "x": 1})));
    let (p, _) = s
        .login(&r, &viewer(1), &props(json!({"x": null, "_p": true})))
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(p, props(json!({"name": "a", "_p": true})));
    let too_big = s
        .login(&r, &viewer(1), &props(json!({"big": "x".repeat(4096)})))
        .await
        .unwrap()
        .value;
    assert!(too_big.is_err());
    // A new connection of the viewer gets the properties back.
    let again = s.join(&r, &viewer(1)).await.unwrap().value;
    assert_eq!(again, props(json!({"name": "a", "_p": true})));
}

async fn polls_are_bounded(s: &RoomStore) {
    let r = room();
    for i in 0..MAX_POLLS {
        s.vote(&r, PollKind::Poll, &format!("p{i}"), &viewer(1), "a")
            .await
            .unwrap()
            .value
            .unwrap();
    }
    // p0 used again; the next new poll pushes out p1, the least recently used.
    s.vote(&r, PollKind::Poll, "p0", &viewer(2), "a")
        .await
        .unwrap()
        .value
        .unwrap();
    s.vote(&r, PollKind::Poll, "new", &viewer(1), "a")
        .await
        .unwrap()
        .value
        .unwrap();
    let all = s.polls(&r, PollKind::Poll, None).await.unwrap().value;
    assert_eq!(all.len(), MAX_POLLS);
    assert!(all.iter().all(|(id, _)| id != "p1"));
    assert!(all.iter().any(|(id, _)| id == "p0"));
    for i in 0..MAX_ANSWERS {
        s.vote(
            &r,
            PollKind::Poll,
            "wide",
            &viewer(i as u32),
            &format!("a{i}"),
        )
        .await
        .unwrap()
        .value
        .unwrap();
    }
    let refused = s
        .vote(&r, PollKind::Poll, "wide", &viewer(9999), "one too many")
        .await
        .unwrap()
        .value;
    assert!(refused.is_err());
}

async fn relay_types_follow_relaying_connections(s: &RoomStore) {
    let r = room();
    s.join(&r, &viewer(1)).await.unwrap();
    s.relay(&r, "report", 1).await.unwrap();
    s.relay(&r, "report", 1).await.unwrap();
    s.relay(&r, "move", 1).await.unwrap();
    assert_eq!(s.relay_types(&r).await.unwrap(), ["move", "report"]);
    s.relay(&r, "report", -1).await.unwrap();
    s.relay(&r, "move", -1).await.unwrap();
    assert_eq!(s.relay_types(&r).await.unwrap(), ["report"]);
}

async fn versions_only_grow(s: &RoomStore) {
    let r = room();
    let v0 = s.config(&r).await.unwrap().v;
    s.set_config(&r, "a").await.unwrap();
    let v1 = s.config(&r).await.unwrap().v;
    s.add(&r, "c", Amount::ONE).await.unwrap();
    let v2 = s.counters(&r, None).await.unwrap().v;
    s.join(&r, &viewer(1)).await.unwrap();
    let v3 = s.presence(&r).await.unwrap().v;
    assert!(v0 < v1 && v1 < v2 && v2 < v3, "{v0} {v1} {v2} {v3}");
}

/// Two instances share a room: presence, and a crashed instance reaped by
/// the other's heartbeat (simulated here with a short-lived mark).
#[actix_web::test]
async fn an_instance_that_stops_heartbeating_is_reaped_with_its_viewers() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = redis_on(url, &prefix, "instance-a").await;
    let b = redis_on(url, &prefix, "instance-b").await;
    let r = room();
    a.store.join(&r, &viewer(1)).await.unwrap();
    a.store
        .vote(&r, PollKind::Ephemeral, "e", &viewer(1), "x")
        .await
        .unwrap()
        .value
        .unwrap();
    a.store.relay(&r, "report", 1).await.unwrap();
    b.store.join(&r, &viewer(2)).await.unwrap();
    b.store.join(&r, &viewer(1)).await.unwrap();
    assert_eq!(b.store.presence(&r).await.unwrap().value, 2);
    // B heartbeats; A is not yet stale.
    assert!(!b.store.heartbeat(&r, None).await.unwrap());
    assert_eq!(b.store.presence(&r).await.unwrap().value, 2);
    // Age A's mark past the deadline, as a crash would.
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}:room:{{storeroom}}:inst");
    let _: i64 = redis::cmd("ZADD")
        .arg(&key)
        .arg(0)
        .arg("instance-a")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!b.store.heartbeat(&r, None).await.unwrap());
    // Viewer 1 is still on B: present, and its ephemeral vote stays.
    assert_eq!(b.store.presence(&r).await.unwrap().value, 2);
    assert_eq!(
        stats(&b.store, PollKind::Ephemeral, "e").await.get("x"),
        Some(&1)
    );
    assert!(
        b.store.relay_types(&r).await.unwrap().is_empty(),
        "A's relays are gone"
    );
    // A comes back: its heartbeat finds its mark gone and re-syncs.
    assert!(a.store.heartbeat(&r, None).await.unwrap(), "A was reaped");
    let local = LocalPresence {
        viewers: vec![(viewer(3), 1)],
        relays: vec![("report".into(), 1)],
    };
    a.store.heartbeat(&r, Some(&local)).await.unwrap();
    assert_eq!(b.store.presence(&r).await.unwrap().value, 3);
    assert_eq!(b.store.relay_types(&r).await.unwrap(), ["report"]);
    // Viewer 1's last connection (on B) leaves: the vote goes.
    b.store.leave(&r, &viewer(1)).await.unwrap();
    assert_eq!(
        stats(&b.store, PollKind::Ephemeral, "e").await,
        Stats::new()
    );
    a.done().await;
    b.done().await;
}

/// Lua's digit-string addition gives the same answers as `Amount`.
#[actix_web::test]
async fn redis_counters_add_like_amount() {
    use rand::{Rng, SeedableRng};
    let s = redis().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let r = room();
    let mut expected = Amount::ZERO;
    let samples = [
        "0.1",
        "0.2",
        "-0.3",
        "17.75",
        "-15.14",
        "1e3",
        "-0.0001",
        "123456789.987654321",
        "-999999999999",
        "0.5",
        "-0.5",
    ];
    for i in 0..400 {
        let text = if i < samples.len() {
            samples[i].to_owned()
        } else {
            let int: i64 = rng.random_range(-1_000_000..1_000_000);
            let scale: u32 = rng.random_range(0..8);
            let frac: u64 = rng.random_range(0..10u64.pow(scale));
            if scale == 0 {
                int.to_string()
            } else {
                format!("{int}.{frac:0width$}", width = scale as usize)
            }
        };
        let delta = Amount::parse(&text).unwrap();
        let want = expected.checked_add(delta);
        let got = s.store.add(&r, "prop", delta).await.unwrap().value;
        match want {
            Ok(w) => {
                assert_eq!(
                    got.as_ref().map(ToString::to_string),
                    Ok(w.to_string()),
                    "after {text}"
                );
                expected = w;
            }
            Err(_) => assert!(got.is_err()),
        }
    }
    // Near the digit limit both refuse alike.
    let max = Amount::parse(&"9".repeat(27)).unwrap();
    let tiny = Amount::parse("0.1").unwrap();
    s.store.add(&r, "edge", max).await.unwrap().value.unwrap();
    let got = s.store.add(&r, "edge", tiny).await.unwrap().value;
    assert_eq!(got.is_ok(), max.checked_add(tiny).is_ok());
    s.done().await;
}
