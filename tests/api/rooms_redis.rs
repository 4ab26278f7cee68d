//! SPEC §9 in Redis mode: one room across instances (chat and broadcasts
//! everywhere; one poll tally, one counter value, one config, one presence
//! count), config, polls and counters surviving restarts, and the presence
//! and ephemeral votes of an instance killed with SIGKILL (the real binary)
//! gone within 30 seconds.

use std::process::Stdio;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{RoomClient, TestApp, local_cookie, spawn_app};
use crate::redis_server::{RedisServer, cleanup, require_shared_redis, unique_prefix};

const ROOM: &str = "teststreamer";

/// An instance on `url` under `prefix`.
async fn instance(url: &str, prefix: &str) -> TestApp {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    spawn_app(move |s| {
        s.redis_url = Some(SecretString::from(url));
        s.redis_prefix = prefix;
    })
    .await
}

async fn pair() -> (TestApp, TestApp, String) {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let a = instance(url, &prefix).await;
    let b = instance(url, &prefix).await;
    (a, b, prefix)
}

#[actix_web::test]
async fn chat_broadcasts_and_config_reach_every_instance() {
    let (a, b, prefix) = pair().await;
    let on_a = a.login_cookie("viewer1").await;
    let on_b = b.login_cookie("viewer2").await;
    let streamer = b.login_cookie(ROOM).await;
    let mut va = a.room(ROOM, &on_a).await;
    let mut vb = b.room(ROOM, &on_b).await;
    let mut s = b.room(ROOM, &streamer).await;
    va.send("login", json!({"name": "Ann", "_secret": 1})).await;
    va.next_of("profile").await;
    va.subscribe("chat").await;
    vb.subscribe("chat").await;
    va.assert_open().await;
    vb.assert_open().await;

    va.send("chat", json!("from a")).await;
    let on_other = vb.next_of("chat").await;
    assert_eq!(on_other["message"], "from a");
    assert_eq!(on_other["user"]["properties"], json!({"name": "Ann"}));
    assert_eq!(va.next_of("chat").await["message"], "from a");

    s.send("broadcast", json!({"type": "hello", "data": {"n": 1}}))
        .await;
    assert_eq!(va.next().await, json!({"type": "hello", "data": {"n": 1}}));
    assert_eq!(vb.next().await, json!({"type": "hello", "data": {"n": 1}}));
    assert_eq!(s.next().await, json!({"type": "hello", "data": {"n": 1}}));

    s.send("config", json!("shared")).await;
    assert_eq!(va.next_of("config").await, json!("shared"));
    assert_eq!(vb.next_of("config").await, json!("shared"));
    let late = a.room(ROOM, &on_a).await;
    assert_eq!(late.config, json!("shared"));

    // A relay on A hears viewers on B.
    let admin_on_a = a.login_cookie(ROOM).await;
    let mut admin = a.room(ROOM, &admin_on_a).await;
    admin.send("relay", json!("move")).await;
    admin.assert_open().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        vb.send("move", json!({"x": 1})).await;
        let reply = vb.ws.try_next_json(Duration::from_millis(200)).await;
        match reply {
            None => break,
            Some(e) if e["data"]["code"] == "unknown_type" => {
                // B has not heard of the relay yet.
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the relay reached B"
                );
            }
            Some(other) => panic!("unexpected {other}"),
        }
    }
    let relayed = admin
        .wait_for("relay:move", |v| v["type"] == "relay:move")
        .await;
    assert_eq!(relayed["data"]["user"]["login"], "viewer2");
    drop((a, b));
    cleanup(require_shared_redis().await, &prefix).await;
}

#[actix_web::test]
async fn one_tally_one_counter_and_one_presence_count_across_instances() {
    let (a, b, prefix) = pair().await;
    let viewer = a.login_cookie("viewer1").await;
    let viewer_on_b = b.login_cookie("viewer1").await;
    let other = b.login_cookie("viewer2").await;
    let mut tab_a = a.room(ROOM, &viewer).await;
    let mut tab_b = b.room(ROOM, &viewer_on_b).await;
    assert_eq!(
        tab_a.profile["id"], tab_b.profile["id"],
        "the same viewer on both instances"
    );
    let mut watcher = b.room(ROOM, &other).await;
    watcher.subscribe("presence").await;
    watcher.subscribe("poll:fav").await;
    watcher.subscribe("counter:sum").await;
    assert_eq!(watcher.next_of("presence").await, json!({"count": 2}));

    // One vote per viewer, whichever instance it comes through.
    tab_a
        .send("poll", json!({"id": "fav", "answer": "Red"}))
        .await;
    watcher
        .wait_for("Red", |v| v["data"]["stats"] == json!({"Red": 1}))
        .await;
    tab_b
        .send("poll", json!({"id": "fav", "answer": "Blue"}))
        .await;
    watcher
        .wait_for("moved", |v| v["data"]["stats"] == json!({"Blue": 1}))
        .await;

    tab_a
        .send("counter", json!({"id": "sum", "value": 0.1}))
        .await;
    tab_b
        .send("counter", json!({"id": "sum", "value": "0.2"}))
        .await;
    watcher
        .wait_for("0.3", |v| v["data"]["value"] == "0.3")
        .await;

    // Ephemeral votes leave with the viewer's last connection, on any instance.
    watcher.subscribe("ephemeralPoll:e").await;
    tab_a
        .send("ephemeralPoll", json!({"id": "e", "answer": "x"}))
        .await;
    watcher
        .wait_for("x", |v| v["data"]["stats"] == json!({"x": 1}))
        .await;
    drop(tab_a);
    // The vote stays while the viewer is still on B. The room may send its
    // tally again (the subscription's snapshot and the vote's update both
    // arrive; a resync re-sends current values), but never without the vote.
    watcher
        .none_within(Duration::from_millis(300), "still on B", |v| {
            v["type"] == "ephemeralPoll" && v["data"]["stats"] == json!({})
        })
        .await;
    drop(tab_b);
    watcher
        .wait_for("vote gone", |v| v["data"]["stats"] == json!({}))
        .await;
    watcher
        .wait_for("1 viewer", |v| v["data"] == json!({"count": 1}))
        .await;
    drop((a, b));
    cleanup(require_shared_redis().await, &prefix).await;
}

#[actix_web::test]
async fn config_polls_and_counters_survive_restarts() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    {
        let a = instance(url, &prefix).await;
        let streamer = a.login_cookie(ROOM).await;
        let mut s = a.room(ROOM, &streamer).await;
        s.send("config", json!("kept")).await;
        s.next_of("config").await;
        s.subscribe("counter:goal").await;
        s.send("poll", json!({"id": "p", "answer": "yes"})).await;
        s.send("counter", json!({"id": "goal", "value": "1442.78"}))
            .await;
        s.wait_for("counter", |v| v["type"] == "counter").await;
    }
    let c = instance(url, &prefix).await;
    let viewer = c.login_cookie("viewer1").await;
    let mut v = c.room(ROOM, &viewer).await;
    assert_eq!(v.config, json!("kept"));
    v.subscribe("poll:p").await;
    assert_eq!(
        v.next_of("poll").await,
        json!({"id": "p", "stats": {"yes": 1}})
    );
    v.subscribe("counter").await;
    assert_eq!(
        v.next_of("counter").await,
        json!({"id": "goal", "value": "1442.78"})
    );
    drop(c);
    cleanup(url, &prefix).await;
}

/// Starts the real binary on `redis_url` (key prefix `esb`, the default);
/// returns the child and its address, read from its "listening" log line.
async fn spawn_binary(redis_url: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventsub-bridge"))
        .arg("serve")
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env("REDIS_URL", redis_url)
        .env("EVENTSUB_SECRET", "rooms-kill-test-secret")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line
                .split("addr=")
                .nth(1)
                .filter(|_| line.contains("listening"))
            {
                let addr: String = rest
                    .chars()
                    .skip_while(|c| !c.is_ascii_digit())
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return addr;
            }
        }
        panic!("the binary ended before listening");
    })
    .await
    .expect("the binary listens within 20 s");
    // Keep draining its log so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"))
}

/// Waits until the binary at `base` is ready, then signs in as `login`.
async fn cookie_on(base: &str, login: &str) -> String {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    local_cookie(base, login).await
}

#[actix_web::test]
async fn presence_and_ephemeral_votes_of_a_killed_instance_are_gone_within_30_seconds() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let (mut killed, base) = spawn_binary(&url).await;
    let survivor = instance(&url, "esb").await;

    let on_killed = cookie_on(&base, "viewer1").await;
    let mut doomed = RoomClient::open(&base, ROOM, &on_killed).await;
    doomed
        .send("ephemeralPoll", json!({"id": "where", "answer": "here"}))
        .await;
    doomed
        .send("poll", json!({"id": "lasting", "answer": "yes"}))
        .await;
    doomed.assert_open().await;

    let watcher_cookie = survivor.login_cookie("viewer2").await;
    let mut watcher = survivor.room(ROOM, &watcher_cookie).await;
    watcher.subscribe("presence").await;
    watcher.subscribe("ephemeralPoll:where").await;
    watcher
        .wait_for("2 viewers", |v| v["data"] == json!({"count": 2}))
        .await;
    watcher
        .wait_for("the vote", |v| v["data"]["stats"] == json!({"here": 1}))
        .await;

    killed.start_kill().unwrap(); // SIGKILL: no clean-shutdown hook runs.
    killed.wait().await.unwrap();
    let killed_at = Instant::now();
    let within = Duration::from_secs(30);
    watcher
        .wait_for_within(within, "the vote gone", |v| {
            v["type"] == "ephemeralPoll" && v["data"]["stats"] == json!({})
        })
        .await;
    watcher
        .wait_for_within(within, "1 viewer", |v| v["data"] == json!({"count": 1}))
        .await;
    let took = killed_at.elapsed();
    assert!(took < within, "{took:?}");
    eprintln!("killed instance reaped after {took:?}");
    // The lasting poll is still there.
    watcher.subscribe("poll:lasting").await;
    watcher
        .wait_for("the lasting poll", |v| {
            v["data"]["stats"] == json!({"yes": 1})
        })
        .await;
    drop(survivor);
    redis.stop().await;
}
