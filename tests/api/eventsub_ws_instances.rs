//! SPEC §10 in Redis mode: exactly one instance holds a streamer's EventSub
//! socket (a lease in Redis); when the holder stops or dies another takes
//! the socket over within 30 s, and every notification reaches viewers
//! exactly once. The crash test runs the real binary twice on a private
//! `redis-server` and kills the holder with SIGKILL.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::eventsub_ws::{SOCKET_TYPES, assert_client_behaved, subscribed_session, ws_settings};
use crate::helpers::fake_twitch::{ADMIN_TOKEN, CLIENT_ID, CLIENT_SECRET, FakeTwitch, eventually};
use crate::helpers::{TestApp, WsClient, spawn_app};
use crate::redis_server::{RedisServer, cleanup, require_shared_redis, unique_prefix};

fn cheer(bits: u64) -> Value {
    json!({"is_anonymous": false, "user_id": "2042", "user_login": "viewer42", "user_name": "Viewer42",
           "broadcaster_user_id": "1001", "broadcaster_user_login": "teststreamer",
           "broadcaster_user_name": "TestStreamer", "message": "", "bits": bits})
}

fn cheer_text(bits: u64) -> String {
    let unit = if bits == 1 { "bit" } else { "bits" };
    format!("Viewer42 cheered {bits} {unit} to TestStreamer")
}

async fn holds_socket(app: &TestApp) -> bool {
    app.readyz_body().await["eventsub"]["sockets"]
        .as_array()
        .is_some_and(|s| !s.is_empty())
}

async fn expect_cheers(ws: &mut WsClient, bits: impl IntoIterator<Item = u64>) {
    for b in bits {
        let ev = ws.expect_op("event").await;
        assert_eq!(ev["message"]["text"], cheer_text(b), "{ev}");
    }
    assert!(
        ws.stays_quiet(Duration::from_millis(500)).await,
        "nothing twice"
    );
}

#[actix_web::test]
async fn one_instance_holds_the_socket_and_another_takes_it_over_when_it_stops() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let fake = FakeTwitch::start().await;
    fake.set_ws_timings(1, Duration::from_secs(10), Duration::from_millis(200));
    let ws_url = fake.start_eventsub_ws().await;
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (url, prefix, ws_url) = (url.to_owned(), prefix.clone(), ws_url.clone());
        apps.push(Some(
            spawn_app(|s| {
                fake.configure(s);
                ws_settings(s, &ws_url);
                s.redis_url = Some(SecretString::from(url));
                s.redis_prefix = prefix;
                s.limits.ws_lease_ttl = Duration::from_millis(1500);
            })
            .await,
        ));
    }
    let a = apps[0].as_ref().unwrap();
    a.connect_streamer(&fake, "teststreamer").await;
    let first = subscribed_session(&fake, "teststreamer", None).await;
    // Exactly one holder, for a while.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        let mut holders = 0;
        for app in apps.iter().flatten() {
            holders += usize::from(holds_socket(app).await);
        }
        assert_eq!(holders, 1, "exactly one instance holds the socket");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fake.ws_max_open("teststreamer"), 1);
    let holder = if holds_socket(apps[0].as_ref().unwrap()).await {
        0
    } else {
        1
    };
    let other = 1 - holder;
    // The other instance shows the holder's socket too (from Redis).
    eventually("the holder's status in Redis", || {
        let app = apps[other].as_ref().unwrap();
        async move {
            let v: Value = app
                .client
                .get(app.url("/api/alerts/teststreamer/sources"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["socket"]["state"] == "connected"
        }
    })
    .await;

    let survivor = apps[other].as_ref().unwrap();
    survivor.twitch_login(&fake, "viewer42").await;
    let mut ws = survivor.ws_connect().await;
    ws.subscribe("teststreamer", None).await;
    for b in 1..=3 {
        fake.ws_notify("channel.cheer", cheer(b)).unwrap();
    }
    expect_cheers(&mut ws, 1..=3).await;

    // The holder stops: its lease is released, the other takes over.
    apps[holder] = None;
    let second = subscribed_session(&fake, "teststreamer", Some(&first)).await;
    assert_ne!(first, second);
    let survivor = apps[other].as_ref().unwrap();
    eventually("the survivor holds the socket", || holds_socket(survivor)).await;
    for b in 4..=6 {
        fake.ws_notify("channel.cheer", cheer(b)).unwrap();
    }
    expect_cheers(&mut ws, 4..=6).await;
    assert_eq!(fake.ws_subscriptions(&second).len(), SOCKET_TYPES);
    assert_client_behaved(&fake);
    cleanup(url, &prefix).await;
}

/// A real `eventsub-bridge` process.
struct Bridge {
    child: Child,
    base: String,
    client: reqwest::Client,
    jar: Arc<Jar>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Bridge {
    async fn start(redis: &str, fake: &FakeTwitch, ws_url: &str) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_eventsub-bridge"))
            .arg("serve")
            .env_clear()
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("EVENTSUB_SECRET", "instances-eventsub-secret")
            .env("TWITCH_CLIENT_ID", CLIENT_ID)
            .env("TWITCH_CLIENT_SECRET", CLIENT_SECRET)
            .env("TWITCH_AUTH_URL", fake.auth_url())
            .env("TWITCH_API_URL", fake.api_url())
            .env("TWITCH_EVENTSUB_WS_URL", ws_url)
            .env("EVENTSUB_TRANSPORT", "websocket")
            .env("REDIS_URL", redis)
            .env("SESSION_KEY", "ab".repeat(64))
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the bridge binary starts");
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let bridge = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client,
            jar,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = bridge.client.get(bridge.url("/readyz")).send().await {
                if r.status() == 200 {
                    return bridge;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bridge on {port} did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn holds_socket(&self) -> bool {
        let Ok(r) = self.client.get(self.url("/readyz")).send().await else {
            return false;
        };
        let body: Value = r.json().await.unwrap_or_default();
        body["eventsub"]["sockets"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    }

    async fn login(&self, fake: &FakeTwitch, login: &str) {
        let r = self
            .client
            .get(self.url("/auth/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let (code, state) = fake.authorize(r.headers()["location"].to_str().unwrap(), login);
        let r = self
            .client
            .get(self.url(&format!("/auth/callback?code={code}&state={state}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "login");
    }

    async fn connect_alerts(&self, fake: &FakeTwitch, login: &str) {
        self.login(fake, login).await;
        let r = self
            .client
            .get(self.url("/auth/connect"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let (code, state) = fake.authorize(r.headers()["location"].to_str().unwrap(), login);
        let r = self
            .client
            .get(self.url(&format!("/auth/callback?code={code}&state={state}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/dashboard", "connect");
    }

    async fn viewer(&self, fake: &FakeTwitch) -> WsClient {
        self.login(fake, "viewer42").await;
        let url = reqwest::Url::parse(&self.base).unwrap();
        let cookie = self
            .jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned());
        let mut ws = WsClient::connect(&self.base, cookie.as_deref(), None)
            .await
            .unwrap();
        assert_eq!(ws.next_json().await["op"], "welcome");
        ws.subscribe("teststreamer", None).await;
        ws
    }
}

#[actix_web::test]
async fn when_the_holder_is_killed_another_instance_takes_the_socket_over_within_30_s() {
    let redis = RedisServer::start().await;
    let fake = FakeTwitch::start().await;
    fake.set_ws_timings(1, Duration::from_secs(10), Duration::from_millis(500));
    let ws_url = fake.start_eventsub_ws().await;
    let mut bridges = [
        Bridge::start(&redis.url(), &fake, &ws_url).await,
        Bridge::start(&redis.url(), &fake, &ws_url).await,
    ];
    bridges[0].connect_alerts(&fake, "teststreamer").await;
    let first = subscribed_session(&fake, "teststreamer", None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let holder = loop {
        let a = bridges[0].holds_socket().await;
        let b = bridges[1].holds_socket().await;
        if a != b {
            break usize::from(b);
        }
        assert!(tokio::time::Instant::now() < deadline, "no single holder");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let other = 1 - holder;
    let mut viewers = vec![
        bridges[0].viewer(&fake).await,
        bridges[1].viewer(&fake).await,
    ];
    for b in 1..=3 {
        fake.ws_notify("channel.cheer", cheer(b)).unwrap();
    }
    for ws in &mut viewers {
        expect_cheers(ws, 1..=3).await;
    }

    bridges[holder].child.start_kill().unwrap();
    let _ = bridges[holder].child.wait().await;
    let killed_at = tokio::time::Instant::now();
    let deadline = killed_at + Duration::from_secs(30);
    let second = loop {
        if let Some(s) = fake.ws_session_of("teststreamer") {
            if s != first && fake.ws_subscriptions(&s).len() == SOCKET_TYPES {
                break s;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody took the socket over within 30 s: {:?}",
            fake.ws_closes()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = killed_at.elapsed();
    eprintln!("socket taken over {} ms after SIGKILL", took.as_millis());
    assert!(bridges[other].holds_socket().await);
    assert_ne!(first, second);
    for b in 4..=8 {
        fake.ws_notify("channel.cheer", cheer(b)).unwrap();
    }
    expect_cheers(&mut viewers[other], 4..=8).await;
    assert!(fake.ws_max_open("teststreamer") <= 2);
    assert_client_behaved(&fake);
}

/// SIGTERM drains: the holder's viewer gets 1001, the process exits 0 and
/// its lease is gone from Redis at exit (released, not left to expire), so
/// the other instance takes the socket over at its next look.
#[actix_web::test]
async fn a_holder_stopped_with_sigterm_releases_its_lease_before_it_exits() {
    let redis = RedisServer::start().await;
    let fake = FakeTwitch::start().await;
    fake.set_ws_timings(1, Duration::from_secs(10), Duration::from_millis(500));
    let ws_url = fake.start_eventsub_ws().await;
    let mut bridges = [
        Bridge::start(&redis.url(), &fake, &ws_url).await,
        Bridge::start(&redis.url(), &fake, &ws_url).await,
    ];
    bridges[0].connect_alerts(&fake, "teststreamer").await;
    let first = subscribed_session(&fake, "teststreamer", None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let holder = loop {
        let a = bridges[0].holds_socket().await;
        let b = bridges[1].holds_socket().await;
        if a != b {
            break usize::from(b);
        }
        assert!(tokio::time::Instant::now() < deadline, "no single holder");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let lease = "esb:esws:lease:teststreamer";
    let held_by: Option<String> = redis::cmd("GET")
        .arg(lease)
        .query_async(&mut conn)
        .await
        .unwrap();
    let held_by = held_by.expect("the holder's lease is in Redis");
    let mut viewer = bridges[holder].viewer(&fake).await;

    let pid = bridges[holder].child.id().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    assert_eq!(
        viewer.close_code(Duration::from_secs(5)).await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away)
    );
    let status = tokio::time::timeout(Duration::from_secs(12), bridges[holder].child.wait())
        .await
        .expect("exits within the drain bound")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // Released by the holder before it exited (or already retaken by the
    // other instance): never still the stopped holder's.
    let now: Option<String> = redis::cmd("GET")
        .arg(lease)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_ne!(
        now.as_deref(),
        Some(held_by.as_str()),
        "the lease was released"
    );
    let other = &bridges[1 - holder];
    let second = subscribed_session(&fake, "teststreamer", Some(&first)).await;
    assert_ne!(first, second);
    eventually("the survivor holds the socket", || other.holds_socket()).await;
    assert_client_behaved(&fake);
}
