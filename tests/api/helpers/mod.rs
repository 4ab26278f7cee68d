//! `spawn_app` and `TestApp`: a real server on 127.0.0.1:0 with short limits,
//! plus intent methods (sign in, post a signed notification, open /ws).

pub mod fake_eventsub_ws;
pub mod fake_twitch;
pub mod overlay;
pub mod raw_ws;
pub mod room_client;
pub mod ws_client;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use eventsub_bridge::cli::ServeArgs;
use eventsub_bridge::config::Settings;
use eventsub_bridge::eventsub::signature;
use eventsub_bridge::startup::Application;
use eventsub_bridge::state::AppState;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use room_client::RoomClient;
pub use ws_client::WsClient;

/// The publish token every test app has.
pub const PUBLISH_TOKEN: &str = "test-publish-token-0123456789";
/// The EventSub secret every test app has.
pub const SECRET: &str = "test-eventsub-secret";

/// A running server. Dropping it stops the server.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub state: web::Data<AppState>,
    pub shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Test settings: loopback port 0, one worker, short timings.
pub fn test_settings() -> Settings {
    let mut s = Settings::from_args(ServeArgs {
        bind: Some("127.0.0.1:0".into()),
        eventsub_secret: Some(SECRET.into()),
        publish_token: Some(PUBLISH_TOKEN.into()),
        ..Default::default()
    })
    .expect("test settings");
    s.workers = 1;
    s.limits.ping_interval = Duration::from_secs(30);
    s.limits.idle_timeout = Duration::from_secs(90);
    s.limits.sse_keepalive = Duration::from_secs(15);
    s.redis_prefix = format!("esbtest:{}", uuid::Uuid::new_v4().simple());
    s
}

/// Starts a server with the default test settings changed by `change`.
pub async fn spawn_app(change: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    change(&mut settings);
    spawn_with(settings).await
}

/// Starts a server with exactly these settings (bind is forced to port 0
/// unless it already names a port).
pub async fn spawn_with(settings: Settings) -> TestApp {
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone())
        .await
        .expect("application builds");
    let addr = app.local_addr();
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let app = TestApp {
        addr,
        base: format!("http://{addr}"),
        client,
        jar,
        state,
        shutdown,
    };
    app.wait_healthy().await;
    app
}

/// Signs in locally as `login` on the server at `base` with a client of its
/// own; returns the session's `Cookie` header.
pub async fn local_cookie(base: &str, login: &str) -> String {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{base}/auth/local"))
        .form(&[("login", login)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "local sign-in");
    let url = reqwest::Url::parse(base).unwrap();
    jar.cookies(&url).unwrap().to_str().unwrap().to_owned()
}

/// A signed EventSub request, ready to send or to tamper with.
#[derive(Debug, Clone)]
pub struct SignedWebhook {
    pub message_id: String,
    pub timestamp: String,
    pub signature: String,
    pub message_type: String,
    pub sub_type: String,
    pub version: String,
    pub body: String,
}

impl SignedWebhook {
    pub fn new(message_type: &str, sub_type: &str, version: &str, body: String) -> Self {
        let message_id = uuid::Uuid::new_v4().to_string();
        let timestamp = signature::timestamp_now();
        Self::at(
            message_type,
            sub_type,
            version,
            body,
            &message_id,
            &timestamp,
        )
    }

    pub fn at(
        message_type: &str,
        sub_type: &str,
        version: &str,
        body: String,
        message_id: &str,
        timestamp: &str,
    ) -> Self {
        let signature = signature::sign(SECRET.as_bytes(), message_id, timestamp, body.as_bytes());
        Self {
            message_id: message_id.into(),
            timestamp: timestamp.into(),
            signature,
            message_type: message_type.into(),
            sub_type: sub_type.into(),
            version: version.into(),
            body,
        }
    }
}

impl SignedWebhook {
    /// Twitch's resend: the same id and body, a new timestamp.
    pub fn resent(&self) -> Self {
        Self::at(
            &self.message_type,
            &self.sub_type,
            &self.version,
            self.body.clone(),
            &self.message_id,
            &signature::timestamp_now(),
        )
    }
}

/// A `notification` body for `sub_type` with `event`.
pub fn notification_body(sub_type: &str, version: &str, condition: Value, event: Value) -> String {
    json!({
        "subscription": {
            "id": uuid::Uuid::new_v4().to_string(),
            "status": "enabled",
            "type": sub_type,
            "version": version,
            "condition": condition,
            "transport": {"method": "webhook", "callback": "https://example.com/api/callback"},
            "created_at": "2026-11-23T08:00:00.123456789Z",
            "cost": 0
        },
        "event": event
    })
    .to_string()
}

/// A channel.follow v2 event.
pub fn follow_event(channel: &str, broadcaster_id: &str, follower: &str) -> Value {
    json!({
        "user_id": "1234", "user_login": follower, "user_name": follower,
        "broadcaster_user_id": broadcaster_id, "broadcaster_user_login": channel,
        "broadcaster_user_name": channel, "followed_at": "2026-11-23T08:00:00Z"
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn wait_healthy(&self) {
        for _ in 0..100 {
            if let Ok(r) = self.client.get(self.url("/healthz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not become healthy");
    }

    /// Sends a prepared webhook as is.
    pub async fn send_webhook(&self, w: &SignedWebhook) -> reqwest::Response {
        self.client
            .post(self.url("/api/callback"))
            .header("Content-Type", "application/json")
            .header("Twitch-Eventsub-Message-Id", &w.message_id)
            .header("Twitch-Eventsub-Message-Timestamp", &w.timestamp)
            .header("Twitch-Eventsub-Message-Signature", &w.signature)
            .header("Twitch-Eventsub-Message-Type", &w.message_type)
            .header("Twitch-Eventsub-Subscription-Type", &w.sub_type)
            .header("Twitch-Eventsub-Subscription-Version", &w.version)
            .header("Twitch-Eventsub-Message-Retry", "0")
            .body(w.body.clone())
            .send()
            .await
            .expect("webhook request")
    }

    /// Posts a signed notification of `sub_type` carrying `event`.
    pub async fn post_notification(
        &self,
        sub_type: &str,
        version: &str,
        event: Value,
    ) -> reqwest::Response {
        let condition = json!({"broadcaster_user_id": event.get("broadcaster_user_id").cloned().unwrap_or(json!(""))});
        let body = notification_body(sub_type, version, condition, event);
        self.send_webhook(&SignedWebhook::new("notification", sub_type, version, body))
            .await
    }

    /// Posts a follow to `channel`.
    pub async fn post_follow(&self, channel: &str, follower: &str) -> reqwest::Response {
        self.post_notification(
            "channel.follow",
            "2",
            follow_event(channel, "4242", follower),
        )
        .await
    }

    /// Signs in locally as `login` (this client's cookie jar keeps the session).
    pub async fn login_as(&self, login: &str) {
        let r = self
            .client
            .post(self.url("/auth/local"))
            .form(&[("login", login)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "local sign-in");
    }

    /// Signs in locally as `login` with a client of its own; returns the
    /// session's `Cookie` header (one per viewer, for several viewers).
    pub async fn login_cookie(&self, login: &str) -> String {
        local_cookie(&self.base, login).await
    }

    /// Opens `room` signed in with `cookie`.
    pub async fn room(&self, room: &str, cookie: &str) -> RoomClient {
        RoomClient::open(&self.base, room, cookie).await
    }

    /// The `Cookie` header this client would send.
    pub fn cookie_header(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Opens `/ws` with this client's session and reads the welcome.
    pub async fn ws_connect(&self) -> WsClient {
        let mut ws = WsClient::connect(&self.base, self.cookie_header().as_deref(), None)
            .await
            .expect("ws upgrade");
        let welcome = ws.next_json().await;
        assert_eq!(welcome["op"], "welcome", "{welcome}");
        ws
    }

    /// Publishes via the API and returns the id.
    pub async fn publish(&self, channel: &str, event_type: &str, data: Value) -> String {
        let r = self
            .client
            .post(self.url("/api/publish"))
            .bearer_auth(PUBLISH_TOKEN)
            .json(&json!({"channel": channel, "type": event_type, "data": data}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The channel's history (signed-in client needed).
    pub async fn history(&self, channel: &str, query: &str) -> Vec<Value> {
        let r = self
            .client
            .get(self.url(&format!("/api/channels/{channel}/history{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "history");
        r.json().await.unwrap()
    }

    /// The body of `GET path` with this client's cookies.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A metric's value from /metrics (sum over label sets matching `filter`).
    pub async fn metric(&self, name: &str, filter: &str) -> f64 {
        let text = self.get_text("/metrics").await;
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}
