//! Redis-only broker behaviour: several brokers sharing one Redis, and what
//! viewers that stay connected see when the pub/sub connection or Redis
//! itself goes away and comes back. Outages use a private `redis-server`.

use std::collections::HashSet;
use std::time::Duration;

use eventsub_bridge::broker::Claim;
use eventsub_bridge::domain::MessageId;

use crate::broker_behaviour::{channel, draft, publish_n, redis_broker_at, viewer};
use crate::redis_server::{RedisServer, cleanup, require_shared_redis, unique_prefix};

async fn wait_until(what: &str, within: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn brokers_sharing_a_prefix_deliver_and_retain_each_others_messages() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = redis_broker_at(url, &prefix, 100).await;
    let b = redis_broker_at(url, &prefix, 100).await;
    let ch = channel("shared");
    let (sub_a, mut on_a) = viewer(1);
    let (sub_b, mut on_b) = viewer(1);
    a.subscribe(&ch, None, sub_a).await.unwrap();
    b.subscribe(&ch, None, sub_b).await.unwrap();
    let from_b = publish_n(&b, &ch, 3).await;
    let from_a = publish_n(&a, &ch, 3).await;
    let all: Vec<MessageId> = from_b.iter().chain(&from_a).copied().collect();
    for id in &all {
        assert_eq!(on_a.next().await.id(), *id);
        assert_eq!(on_b.next().await.id(), *id);
    }
    on_a.assert_quiet(Duration::from_millis(200)).await;
    let history: Vec<MessageId> = a
        .history(&ch, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    assert_eq!(history, all);
    cleanup(url, &prefix).await;
}

#[tokio::test]
async fn a_viewer_that_stays_gets_every_message_once_across_pubsub_disconnects() {
    // Retention (1000) covers what is published while the listener is away.
    let mut server = RedisServer::start().await;
    let prefix = unique_prefix();
    let listener = redis_broker_at(&server.url(), &prefix, 1000).await;
    let publisher = redis_broker_at(&server.url(), &prefix, 1000).await;
    let ch = channel("flaky");
    let (sub, mut v) = viewer(1);
    listener.subscribe(&ch, None, sub).await.unwrap();

    let killer = {
        let url = server.url();
        tokio::spawn(async move {
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(60)).await;
                // Drops every pub/sub connection; the commands connection stays.
                let _: redis::Value = redis::cmd("CLIENT")
                    .arg(&["KILL", "TYPE", "pubsub"][..])
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        })
    };
    let mut published = Vec::new();
    for i in 0..300 {
        published.push(publisher.publish(draft(&ch, i)).await.unwrap().id());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    killer.await.unwrap();
    let mut got = Vec::new();
    while got.len() < published.len() {
        got.push(v.next().await.id());
    }
    v.assert_quiet(Duration::from_millis(300)).await;
    assert_eq!(got, published, "in order, each exactly once");
    server.stop().await;
}

#[tokio::test]
async fn topics_cross_instances_and_resync_after_the_pubsub_connection_breaks() {
    let server = RedisServer::start().await;
    let prefix = unique_prefix();
    let a = redis_broker_at(&server.url(), &prefix, 10).await;
    let b = redis_broker_at(&server.url(), &prefix, 10).await;
    let (probe, mut heard) = crate::broker_behaviour::topic_probe();
    let _watch = b.watch_topic("rooms:x", probe).await.unwrap();
    a.publish_topic("rooms:x", b"one").await.unwrap();
    let next = async |heard: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(5), heard.recv())
            .await
            .expect("a topic message within 5 s")
            .unwrap()
    };
    assert_eq!(next(&mut heard).await, "one");
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        next(&mut heard).await,
        "<resync>",
        "a new subscription tells the listener to re-read its state"
    );
    a.publish_topic("rooms:x", b"two").await.unwrap();
    assert_eq!(next(&mut heard).await, "two");
}

#[tokio::test]
async fn readiness_and_publishing_follow_redis_down_and_up_while_viewers_stay() {
    let mut server = RedisServer::start().await;
    let prefix = unique_prefix();
    let broker = redis_broker_at(&server.url(), &prefix, 1000).await;
    let ch = channel("outage");
    let (sub, mut v) = viewer(1);
    broker.subscribe(&ch, None, sub).await.unwrap();
    let before = broker.publish(draft(&ch, 0)).await.unwrap().id();
    assert_eq!(v.next().await.id(), before);

    server.stop().await;
    wait_until(
        "un-ready after Redis stopped",
        Duration::from_secs(5),
        async || !broker.is_ready().await,
    )
    .await;
    assert!(broker.publish(draft(&ch, 1)).await.is_err());
    assert!(
        broker
            .claim("webhook", "x", Duration::from_secs(60))
            .await
            .is_err()
    );

    server.restart().await;
    // SPEC §7.16: back within 10 s.
    wait_until(
        "ready after Redis restarted",
        Duration::from_secs(10),
        async || broker.is_ready().await,
    )
    .await;
    let mut after = HashSet::new();
    for i in 2..5 {
        after.insert(broker.publish(draft(&ch, i)).await.unwrap().id());
    }
    for _ in 0..3 {
        let id = v.next().await.id();
        assert!(after.remove(&id), "unexpected or repeated {id}");
        assert!(id > before);
    }
    v.assert_quiet(Duration::from_millis(200)).await;
    assert!(!v.overflow.is_cancelled(), "the viewer stayed connected");
    server.stop().await;
}

#[tokio::test]
async fn a_listener_that_died_with_its_runtime_is_started_again_by_the_next_worker() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let broker = std::sync::Arc::new(redis_broker_at(url, &prefix, 100).await);
    let ch = channel("restart");
    // A "worker" thread starts the listener on its own runtime; the broker of
    // redis_broker_at already runs one here, so this start is refused.
    let b = broker.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { b.on_worker_start() });
    })
    .join()
    .unwrap();
    assert!(
        broker.is_ready().await,
        "the running listener was left alone"
    );

    // Now the listener lives on a runtime that then stops.
    let url2 = url.to_owned();
    let prefix2 = prefix.clone();
    let orphan = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let broker = redis_broker_at(&url2, &prefix2, 100).await;
            // Its listener runs on this runtime, which ends with the thread.
            broker
        })
    })
    .join()
    .unwrap();
    // At once: not only when its pinger (also on that runtime) goes stale.
    wait_until(
        "un-ready once its runtime is gone",
        Duration::from_millis(500),
        async || !orphan.is_ready().await,
    )
    .await;
    // The next worker start brings it back, and it delivers.
    orphan.on_worker_start();
    wait_until("ready again", Duration::from_secs(5), async || {
        orphan.is_ready().await
    })
    .await;
    let (sub, mut on) = viewer(7);
    orphan.subscribe(&ch, None, sub).await.unwrap();
    let ids = publish_n(&broker, &ch, 2).await;
    for id in ids {
        assert_eq!(on.next().await.id(), id);
    }
    cleanup(url, &prefix).await;
}

/// A stalled Redis (`SIGSTOP`) runs what it was sent when it resumes, after
/// our calls timed out: the publish and the claim of the attempt that got a
/// 503 happen anyway. The retry must neither publish twice nor be taken
/// for a duplicate (issue 13's outage bug).
#[tokio::test]
async fn calls_that_timed_out_in_a_stalled_redis_neither_repeat_nor_block_the_retry() {
    let mut server = RedisServer::start().await;
    let prefix = unique_prefix();
    let broker = redis_broker_at(&server.url(), &prefix, 100).await;
    let ch = channel("stalled");
    let lease = Duration::from_secs(2);
    let window = Duration::from_secs(60);

    server.pause().await;
    let published = broker
        .publish_once(draft(&ch, 1), "webhook:m1", window)
        .await;
    assert!(published.is_err(), "a stalled Redis times out");
    let claimed = broker.claim("webhook", "m1", lease).await;
    assert!(claimed.is_err(), "a stalled Redis times out");
    server.resume().await;
    wait_until("ready after SIGCONT", Duration::from_secs(10), async || {
        broker.is_ready().await
    })
    .await;

    // The claim that ran late is a lease, not a verdict: it is in flight,
    // never done, and frees the id once its lease runs out.
    let claim = broker.claim("webhook", "m1", lease).await.unwrap();
    assert!(
        !matches!(claim, Claim::Done(_)),
        "an attempt that never completed is not a duplicate"
    );
    drop(claim);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let attempt = loop {
        match broker.claim("webhook", "m1", lease).await.unwrap() {
            Claim::New(attempt) => break attempt,
            Claim::InFlight => {}
            Claim::Done(v) => panic!("never completed, yet done with {v}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The publish that ran late is not repeated by the retry.
    let id = broker
        .publish_once(draft(&ch, 1), "webhook:m1", window)
        .await
        .unwrap();
    attempt.complete("done", window).await.unwrap();
    let history = broker.history(&ch, None, 10).await.unwrap();
    assert_eq!(history.len(), 1, "published once");
    assert_eq!(history[0].id(), id);
    server.stop().await;
}
