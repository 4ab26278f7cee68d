//! Broker behaviour, written once and run against both brokers: the memory
//! broker and the Redis broker on the shared Redis (which must be running).

use std::num::NonZeroUsize;
use std::time::Duration;

use chrono::Utc;
use std::sync::Arc;

use eventsub_bridge::broker::{
    Broker, Claim, MemoryBroker, RedisBroker, Subscriber, TopicListener,
};
use eventsub_bridge::config::Limits;
use eventsub_bridge::domain::{ChannelName, Envelope, MessageDraft, MessageId, Source};
use eventsub_bridge::metrics::Metrics;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::redis_server::{cleanup, require_shared_redis, unique_prefix};

/// Messages kept per channel in these tests.
const HISTORY_LEN: usize = 5;
const WAIT: Duration = Duration::from_secs(5);

/// A broker under test, and how to clean up after it.
pub struct TestBroker {
    pub broker: Broker,
    redis: Option<(String, String)>,
}

impl TestBroker {
    async fn cleanup(self) {
        if let Some((url, prefix)) = &self.redis {
            cleanup(url, prefix).await;
        }
    }
}

fn limits(history_len: usize) -> Limits {
    Limits {
        history_len: NonZeroUsize::new(history_len).unwrap(),
        broker_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

pub async fn memory_broker() -> TestBroker {
    let l = limits(HISTORY_LEN);
    TestBroker {
        broker: Broker::Memory(MemoryBroker::new(l.history_len.get(), 1000, Metrics::new())),
        redis: None,
    }
}

/// A Redis broker on `url` under `prefix` keeping `history_len` messages
/// per channel, once it is ready.
pub async fn redis_broker_at(url: &str, prefix: &str, history_len: usize) -> Broker {
    let broker = RedisBroker::connect(
        url,
        prefix,
        &limits(history_len),
        Metrics::new(),
        CancellationToken::new(),
    )
    .await
    .expect("RedisBroker::connect");
    // The server starts it on its first worker; here, on the test's runtime.
    broker.start_listener();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !broker.is_ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis broker not ready within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Broker::Redis(broker)
}

pub async fn redis_broker() -> TestBroker {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    TestBroker {
        broker: redis_broker_at(url, &prefix, HISTORY_LEN).await,
        redis: Some((url.to_owned(), prefix)),
    }
}

pub fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

pub fn draft(channel: &ChannelName, n: usize) -> MessageDraft {
    MessageDraft {
        channel: channel.clone(),
        event_type: "test.event".into(),
        version: "1".into(),
        source: Source::Publish,
        at: Utc::now(),
        text: format!("message {n}"),
        data: RawValue::from_string(format!(r#"{{"n":{n}}}"#)).unwrap(),
    }
}

pub async fn publish_n(broker: &Broker, ch: &ChannelName, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(broker.publish(draft(ch, i)).await.unwrap().id());
    }
    ids
}

pub struct Viewer {
    pub rx: mpsc::Receiver<Envelope>,
    pub overflow: CancellationToken,
}

pub fn viewer(conn: u64) -> (Subscriber, Viewer) {
    let (tx, rx) = mpsc::channel(1024);
    let overflow = CancellationToken::new();
    (
        Subscriber::queue(
            conn,
            tx,
            overflow.clone(),
            prometheus::IntCounter::new("slow", "slow").unwrap(),
        ),
        Viewer { rx, overflow },
    )
}

impl Viewer {
    pub async fn next(&mut self) -> Envelope {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no message within 5 s")
            .expect("queue closed")
    }

    /// Nothing more arrives within `within`.
    pub async fn assert_quiet(&mut self, within: Duration) {
        if let Ok(Some(env)) = tokio::time::timeout(within, self.rx.recv()).await {
            panic!("unexpected message {}", env.json());
        }
    }
}

fn ids(envs: &[Envelope]) -> Vec<MessageId> {
    envs.iter().map(Envelope::id).collect()
}

async fn ids_increase_in_publish_order(t: TestBroker) {
    let ch = channel("idorder");
    let ids = publish_n(&t.broker, &ch, 20).await;
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    t.cleanup().await;
}

async fn history_is_oldest_first_limited_and_after_since(t: TestBroker) {
    let ch = channel("history");
    assert!(t.broker.history(&ch, None, 10).await.unwrap().is_empty());
    let ids = publish_n(&t.broker, &ch, 12).await;
    let newest = t.broker.history(&ch, None, HISTORY_LEN).await.unwrap();
    assert_eq!(self::ids(&newest), ids[7..].to_vec());
    let newest3 = t.broker.history(&ch, None, 3).await.unwrap();
    assert_eq!(self::ids(&newest3), ids[9..].to_vec());
    let after = t.broker.history(&ch, Some(ids[8]), 2).await.unwrap();
    assert_eq!(self::ids(&after), ids[9..11].to_vec());
    let none_after = t.broker.history(&ch, Some(ids[11]), 5).await.unwrap();
    assert!(none_after.is_empty());
    let body: serde_json::Value = serde_json::from_str(newest[0].json()).unwrap();
    assert_eq!(body["id"], ids[7].to_string());
    assert_eq!(body["data"]["n"], 7);
    t.cleanup().await;
}

async fn replay_after_a_retained_id_has_no_gap(t: TestBroker) {
    let ch = channel("replay");
    let ids = publish_n(&t.broker, &ch, 8).await;
    let (sub, _viewer) = viewer(1);
    let replay = t.broker.subscribe(&ch, Some(ids[5]), sub).await.unwrap();
    assert!(!replay.gap);
    assert_eq!(self::ids(&replay.messages), ids[6..].to_vec());
    let (sub, _viewer2) = viewer(2);
    let replay = t.broker.subscribe(&ch, Some(ids[7]), sub).await.unwrap();
    assert!(!replay.gap);
    assert!(replay.messages.is_empty());
    t.cleanup().await;
}

async fn replay_after_an_unknown_id_reports_a_gap(t: TestBroker) {
    let ch = channel("replaygap");
    let ids = publish_n(&t.broker, &ch, 12).await;
    let (sub, _viewer) = viewer(1);
    let replay = t
        .broker
        .subscribe(&ch, Some(MessageId::new(1, 0)), sub)
        .await
        .unwrap();
    assert!(replay.gap);
    let got = self::ids(&replay.messages);
    // At least HISTORY_LEN are retained (exactly that many in memory).
    assert!(got.len() >= HISTORY_LEN, "{got:?}");
    assert!(got.ends_with(&ids[7..]), "{got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    t.cleanup().await;
}

async fn subscribe_then_publish_delivers_each_message_once_in_order(t: TestBroker) {
    let ch = channel("live");
    let (sub, mut v) = viewer(1);
    let replay = t.broker.subscribe(&ch, None, sub).await.unwrap();
    assert!(replay.messages.is_empty() && !replay.gap);
    let ids = publish_n(&t.broker, &ch, 5).await;
    for id in &ids {
        assert_eq!(v.next().await.id(), *id);
    }
    v.assert_quiet(Duration::from_millis(200)).await;
    assert!(!v.overflow.is_cancelled());
    t.cleanup().await;
}

async fn unsubscribed_viewers_receive_nothing(t: TestBroker) {
    let ch = channel("leave");
    let (sub, mut v) = viewer(1);
    let (sub2, mut stays) = viewer(2);
    t.broker.subscribe(&ch, None, sub).await.unwrap();
    t.broker.subscribe(&ch, None, sub2).await.unwrap();
    t.broker.unsubscribe(&ch, 1);
    let ids = publish_n(&t.broker, &ch, 2).await;
    assert_eq!(stays.next().await.id(), ids[0]);
    assert_eq!(stays.next().await.id(), ids[1]);
    v.assert_quiet(Duration::from_millis(200)).await;
    t.cleanup().await;
}

fn is_new(claim: &Claim<'_>) -> bool {
    matches!(claim, Claim::New(_))
}

fn is_in_flight(claim: &Claim<'_>) -> bool {
    matches!(claim, Claim::InFlight)
}

fn done_value(claim: &Claim<'_>) -> Option<String> {
    match claim {
        Claim::Done(v) => Some(v.clone()),
        _ => None,
    }
}

async fn a_claim_is_in_flight_until_completed_then_done_with_its_value(t: TestBroker) {
    let (lease, window) = (Duration::from_secs(60), Duration::from_secs(60));
    let b = &t.broker;
    let Claim::New(attempt) = b.claim("webhook", "abc", lease).await.unwrap() else {
        panic!("a free key is new");
    };
    assert!(is_in_flight(
        &b.claim("webhook", "abc", lease).await.unwrap()
    ));
    // Namespaces are separate.
    assert!(is_new(&b.claim("idem", "abc", lease).await.unwrap()));
    attempt.complete("17-0", window).await.unwrap();
    assert_eq!(
        done_value(&b.claim("webhook", "abc", lease).await.unwrap()).as_deref(),
        Some("17-0")
    );
    t.cleanup().await;
}

async fn a_dropped_attempt_frees_its_key(t: TestBroker) {
    let lease = Duration::from_secs(60);
    let b = &t.broker;
    let first = b.claim("webhook", "dropped", lease).await.unwrap();
    assert!(is_new(&first));
    drop(first);
    // The release runs in the background (a dropped request cannot wait).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let claim = b.claim("webhook", "dropped", lease).await.unwrap();
        if is_new(&claim) {
            break;
        }
        assert!(is_in_flight(&claim));
        assert!(tokio::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.cleanup().await;
}

async fn a_lease_runs_out_and_its_late_release_frees_nothing(t: TestBroker) {
    let b = &t.broker;
    let stale = b
        .claim("webhook", "exp", Duration::from_millis(50))
        .await
        .unwrap();
    assert!(is_new(&stale));
    tokio::time::sleep(Duration::from_millis(120)).await;
    let current = b
        .claim("webhook", "exp", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(is_new(&current), "a lease that ran out frees the key");
    // The first attempt gives up late: the key stays with the second.
    drop(stale);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(is_in_flight(
        &b.claim("webhook", "exp", Duration::from_secs(60))
            .await
            .unwrap()
    ));
    drop(current);
    t.cleanup().await;
}

async fn publish_once_publishes_a_key_once_per_channel(t: TestBroker) {
    let b = &t.broker;
    let window = Duration::from_secs(60);
    let (to, from) = (channel("raided"), channel("raider"));
    let first = b
        .publish_once(draft(&to, 1), "webhook:m1", window)
        .await
        .unwrap();
    // The retry of the same delivery (e.g. after a timeout) publishes nothing.
    let again = b
        .publish_once(draft(&to, 1), "webhook:m1", window)
        .await
        .unwrap();
    assert_eq!(first, again);
    // The same key on another channel (a raid goes to both) is its own.
    let other = b
        .publish_once(draft(&from, 1), "webhook:m1", window)
        .await
        .unwrap();
    let next = b
        .publish_once(draft(&to, 2), "webhook:m2", window)
        .await
        .unwrap();
    assert!(next > first);
    assert_eq!(
        ids(&b.history(&to, None, 10).await.unwrap()),
        vec![first, next]
    );
    assert_eq!(ids(&b.history(&from, None, 10).await.unwrap()), vec![other]);
    t.cleanup().await;
}

/// A topic listener that forwards what it hears.
pub struct TopicProbe(pub mpsc::UnboundedSender<String>);

impl TopicListener for TopicProbe {
    fn on_message(&self, payload: &[u8]) {
        let _ = self.0.send(String::from_utf8_lossy(payload).into_owned());
    }
    fn on_resync(&self) {
        let _ = self.0.send("<resync>".into());
    }
}

pub fn topic_probe() -> (Arc<TopicProbe>, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(TopicProbe(tx)), rx)
}

async fn topic_messages_reach_watchers_until_they_stop_watching(t: TestBroker) {
    let (probe, mut heard) = topic_probe();
    let watch = t
        .broker
        .watch_topic("alerts:somechannel", probe)
        .await
        .unwrap();
    t.broker
        .publish_topic("alerts:somechannel", b"changed")
        .await
        .unwrap();
    t.broker
        .publish_topic("alerts:other", b"not theirs")
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, heard.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "changed");
    drop(watch);
    t.broker
        .publish_topic("alerts:somechannel", b"after")
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), heard.recv())
            .await
            .map_or(true, |m| m.is_none()),
        "nothing after the watch is dropped"
    );
    t.cleanup().await;
}

async fn the_broker_is_ready(t: TestBroker) {
    assert!(t.broker.is_ready().await);
    t.cleanup().await;
}

macro_rules! on_both_brokers {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::memory_broker().await).await;
                }
            )*
        }
        mod redis_backed {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::redis_broker().await).await;
                }
            )*
        }
    };
}

on_both_brokers!(
    ids_increase_in_publish_order,
    history_is_oldest_first_limited_and_after_since,
    replay_after_a_retained_id_has_no_gap,
    replay_after_an_unknown_id_reports_a_gap,
    subscribe_then_publish_delivers_each_message_once_in_order,
    unsubscribed_viewers_receive_nothing,
    a_claim_is_in_flight_until_completed_then_done_with_its_value,
    a_dropped_attempt_frees_its_key,
    a_lease_runs_out_and_its_late_release_frees_nothing,
    publish_once_publishes_a_key_once_per_channel,
    the_broker_is_ready,
    topic_messages_reach_watchers_until_they_stop_watching,
);
