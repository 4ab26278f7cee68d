//! "Connect alerts" in Twitch mode (SPEC §8; TWITCH.md §3–5): `/auth/connect`
//! asks for the alert scopes with a state of its own, the grant is kept
//! server-side for the streamer's channel, the alert kinds' webhook
//! subscriptions are made, the grant is refreshed and validated, a revoked
//! grant shows as revoked, and `/api/alerts/{channel}/sources` says all of
//! it to the streamer or an admin.

use std::collections::HashMap;
use std::time::Duration;

use eventsub_bridge::config::{EventSubTransport, Settings};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::fake_twitch::{
    ADMIN_TOKEN, Endpoint, FakeTwitch, eventually, spawn_twitch_app,
};
use crate::helpers::{SignedWebhook, TestApp, spawn_app};
use crate::redis_server::{cleanup, require_shared_redis, unique_prefix};

const ALERT_SCOPES: [&str; 5] = [
    "moderator:read:followers",
    "channel:read:subscriptions",
    "bits:read",
    "channel:read:redemptions",
    "channel:read:hype_train",
];

const ALERT_TYPES: [&str; 8] = [
    "channel.follow",
    "channel.subscribe",
    "channel.subscription.message",
    "channel.subscription.gift",
    "channel.cheer",
    "channel.raid",
    "channel.channel_points_custom_reward_redemption.add",
    "channel.hype_train.begin",
];

fn webhook_mode(s: &mut Settings) {
    s.eventsub_transport = EventSubTransport::Webhook;
}

impl TestApp {
    /// `GET /auth/connect` → the authorize URL it redirects to.
    async fn start_connect(&self) -> String {
        let r = self
            .client
            .get(self.url("/auth/connect"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "/auth/connect redirects");
        r.headers()["location"].to_str().unwrap().to_owned()
    }

    /// The whole "connect alerts" as `login` (signed in already), granting
    /// every scope asked for; asserts it went back to the dashboard.
    async fn connect_alerts(&self, fake: &FakeTwitch, login: &str) {
        let location = self.start_connect().await;
        let (code, state) = fake.authorize(&location, login);
        let r = self
            .twitch_callback(&format!("code={code}&state={state}"))
            .await;
        assert_eq!(r.status(), 302, "{:?}", r.text().await);
        assert_eq!(r.headers()["location"], "/dashboard");
    }

    async fn sources_as(&self, channel: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .get(self.url(&format!("/api/alerts/{channel}/sources")));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send().await.unwrap()
    }

    /// The sources view, read with the admin token.
    async fn sources(&self, channel: &str) -> Value {
        let r = self.sources_as(channel, Some(ADMIN_TOKEN)).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

fn source<'a>(view: &'a Value, kind: &str) -> &'a Value {
    view["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no source {kind} in {view}"))
}

async fn all_sources_enabled(app: &TestApp, channel: &str) -> bool {
    let view = app.sources(channel).await;
    view["sources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "enabled")
}

#[actix_web::test]
async fn connect_and_sources_are_404_in_local_mode() {
    let app = spawn_app(|_| {}).await;
    app.login_as("teststreamer").await;
    let r = app
        .client
        .get(app.url("/auth/connect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.sources_as("teststreamer", None).await.status(), 404);
    // The dashboard has no alert sources to show.
    let page = app.get_text("/dashboard").await;
    assert!(page.contains(r#"data-channel="teststreamer""#));
    assert!(!page.contains(r#"id="alert-sources""#), "{page}");
}

#[actix_web::test]
async fn connect_needs_a_signed_in_user() {
    let (app, _fake) = spawn_twitch_app(webhook_mode).await;
    let r = app
        .client
        .get(app.url("/auth/connect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/");
}

#[actix_web::test]
async fn connect_asks_for_the_alert_scopes_and_subscribes_the_alert_kinds() {
    let (app, fake) = spawn_twitch_app(webhook_mode).await;
    app.twitch_login(&fake, "teststreamer").await;
    let location = app.start_connect().await;
    let q: HashMap<String, String> = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut asked: Vec<&str> = q["scope"].split(' ').collect();
    asked.sort_unstable();
    let mut want = ALERT_SCOPES.to_vec();
    want.sort_unstable();
    assert_eq!(asked, want, "exactly the alert scopes");
    assert_eq!(q["force_verify"], "true");
    assert_eq!(q["redirect_uri"], "http://localhost:8080/auth/callback");

    let (code, state) = fake.authorize(&location, "teststreamer");
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/dashboard");
    for cookie in r.headers().get_all("set-cookie") {
        let c = cookie.to_str().unwrap();
        assert!(
            !c.contains("user-token") && !c.contains("refresh-token"),
            "{c}"
        );
    }

    eventually("every alert kind subscribed", || {
        let subs = fake.subscriptions();
        async move {
            ALERT_TYPES.iter().all(|t| {
                subs.iter()
                    .any(|s| s["type"] == *t && s["status"] == "enabled")
            })
        }
    })
    .await;
    let subs = fake.subscriptions();
    let of = |t: &str| subs.iter().find(|s| s["type"] == t).unwrap().clone();
    assert_eq!(
        of("channel.follow")["condition"],
        json!({"broadcaster_user_id": "1001", "moderator_user_id": "1001"})
    );
    assert_eq!(of("channel.follow")["version"], "2");
    assert_eq!(
        of("channel.raid")["condition"],
        json!({"to_broadcaster_user_id": "1001"})
    );
    assert_eq!(of("channel.hype_train.begin")["version"], "2");
    for t in ALERT_TYPES {
        let s = of(t);
        assert_eq!(s["transport"]["method"], "webhook");
        assert_eq!(
            s["transport"]["callback"],
            "http://localhost:8080/api/callback"
        );
    }

    // The streamer's own session sees the status; the token never shows.
    let r = app.sources_as("teststreamer", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let text = r.text().await.unwrap();
    assert!(!text.contains("user-token") && !text.contains("refresh-token"));
    let view: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(view["transport"], "webhook");
    assert_eq!(view["grant"]["status"], "connected");
    assert_eq!(view["grant"]["missing_scopes"], json!([]));
    assert_eq!(view["connect_url"], "/auth/connect");
    for t in ALERT_TYPES {
        let s = view["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == t)
            .unwrap();
        assert_eq!(s["status"], "enabled", "{s}");
        assert!(s["subscription_id"].is_string(), "{s}");
    }
    assert_eq!(source(&view, "raid")["scope"], Value::Null);
    assert_eq!(source(&view, "cheer")["scope"], "bits:read");
    assert_eq!(
        view["socket"],
        Value::Null,
        "no socket on the webhook transport"
    );

    // The dashboard in Twitch mode has the section and "Connect alerts".
    let page = app.get_text("/dashboard").await;
    assert!(page.contains(r#"id="alert-sources""#), "{page}");
    assert!(page.contains(r#"id="connect-alerts" href="/auth/connect""#));
}

#[actix_web::test]
async fn a_connect_state_is_single_use_and_bound_to_its_browser() {
    let (app, fake) = spawn_twitch_app(webhook_mode).await;
    app.twitch_login(&fake, "teststreamer").await;
    let location = app.start_connect().await;
    let (code, state) = fake.authorize(&location, "teststreamer");

    // Another browser cannot use it.
    let other = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = other
        .get(app.url(&format!("/auth/callback?code={code}&state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 302);
    let code2 = fake.issue_code_with_scopes("teststreamer", &ALERT_SCOPES);
    let r = app
        .twitch_callback(&format!("code={code2}&state={state}"))
        .await;
    assert_eq!(r.status(), 400, "a used state is refused");
}

#[actix_web::test]
async fn connect_state_expires_after_its_ttl() {
    let (app, fake) = spawn_twitch_app(|s| {
        webhook_mode(s);
        s.limits.oauth_state_ttl = Duration::from_millis(200);
    })
    .await;
    app.twitch_login(&fake, "teststreamer").await;
    let location = app.start_connect().await;
    let (code, state) = fake.authorize(&location, "teststreamer");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("expired"));
}

#[actix_web::test]
async fn connecting_another_twitch_account_is_refused() {
    let (app, fake) = spawn_twitch_app(webhook_mode).await;
    app.twitch_login(&fake, "teststreamer").await;
    let location = app.start_connect().await;
    let (code, state) = fake.authorize(&location, "otherstreamer");
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("signed in as teststreamer"), "{page}");
    assert_eq!(
        app.sources("teststreamer").await["grant"]["status"],
        "not_connected"
    );
    assert_eq!(
        app.sources("otherstreamer").await["grant"]["status"],
        "not_connected"
    );
    assert_eq!(fake.calls(Endpoint::CreateSub), 0);
}

#[actix_web::test]
async fn declining_connect_returns_to_the_dashboard_with_the_reason() {
    let (app, fake) = spawn_twitch_app(webhook_mode).await;
    app.twitch_login(&fake, "teststreamer").await;
    let location = app.start_connect().await;
    let (_code, state) = fake.authorize(&location, "teststreamer");
    let r = app
        .twitch_callback(&format!(
            "error=access_denied&error_description=The+user+denied+you+access&state={state}"
        ))
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/dashboard?error=access_denied");
    assert_eq!(
        app.sources("teststreamer").await["grant"]["status"],
        "not_connected"
    );
}

#[actix_web::test]
async fn a_grant_without_a_scope_shows_the_kinds_twitch_refused() {
    let (app, fake) = spawn_twitch_app(webhook_mode).await;
    app.twitch_login(&fake, "teststreamer").await;
    let location = app.start_connect().await;
    let state: HashMap<String, String> = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    // The streamer granted only bits: Helix refuses the others with 403.
    let code = fake.issue_code_with_scopes("teststreamer", &["bits:read"]);
    let r = app
        .twitch_callback(&format!("code={code}&state={}", state["state"]))
        .await;
    assert_eq!(r.status(), 302);
    eventually("cheer enabled and follow refused", || {
        let app = &app;
        async move {
            let view = app.sources("teststreamer").await;
            source(&view, "cheer")["status"] == "enabled"
                && source(&view, "follow")["error"].is_string()
                && source(&view, "raid")["status"] == "enabled"
        }
    })
    .await;
    let view = app.sources("teststreamer").await;
    let follow = source(&view, "follow");
    assert_eq!(follow["status"], "missing_scope");
    assert!(
        follow["error"].as_str().unwrap().contains("403"),
        "{follow}"
    );
    assert!(
        view["grant"]["missing_scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("moderator:read:followers"))
    );
    // The failure is reported in the channel too (SPEC §7.21).
    app.login_as_twitch_viewer(&fake).await;
    let history = app.history("teststreamer", "").await;
    assert!(
        history
            .iter()
            .any(|m| m["type"] == "subscription.error" && m["source"] == "system"),
        "{history:?}"
    );
}

impl TestApp {
    async fn login_as_twitch_viewer(&self, fake: &FakeTwitch) {
        self.twitch_login(fake, "viewer42").await;
    }
}

#[actix_web::test]
async fn sources_are_for_the_streamer_or_an_admin() {
    let (app, fake) = spawn_twitch_app(webhook_mode).await;
    assert_eq!(app.sources_as("teststreamer", None).await.status(), 401);
    app.twitch_login(&fake, "viewer42").await;
    let r = app.sources_as("teststreamer", None).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert_eq!(
        app.sources_as("teststreamer", Some("wrong-token"))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.sources_as("teststreamer", Some(ADMIN_TOKEN))
            .await
            .status(),
        200
    );
    assert_eq!(app.sources_as("viewer42", None).await.status(), 200);
    let r = app.sources_as("Not A Channel", Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status(), 400);
}

#[actix_web::test]
async fn the_hourly_check_refreshes_an_expired_grant_and_revokes_a_dead_one() {
    let (app, fake) = spawn_twitch_app(|s| {
        webhook_mode(s);
        s.limits.token_revalidate_interval = Duration::from_millis(300);
    })
    .await;
    app.twitch_login(&fake, "teststreamer").await;
    app.connect_alerts(&fake, "teststreamer").await;
    let refreshes = |fake: &FakeTwitch| {
        fake.token_forms()
            .iter()
            .filter(|f| f.get("grant_type").map(String::as_str) == Some("refresh_token"))
            .count()
    };
    let before = refreshes(&fake);

    // TWITCH.md §4: an expired token is refreshed, and the grant stays.
    fake.expire_user_tokens("teststreamer");
    eventually("the grant refreshed", || {
        let n = refreshes(&fake);
        async move { n > before }
    })
    .await;
    let view = app.sources("teststreamer").await;
    assert_eq!(view["grant"]["status"], "connected", "{view}");

    // The streamer disconnected the app: refresh refused → revoked.
    fake.revoke_grant("teststreamer");
    eventually("the grant revoked", || {
        let app = &app;
        async move { app.sources("teststreamer").await["grant"]["status"] == "revoked" }
    })
    .await;
    let view = app.sources("teststreamer").await;
    assert_eq!(view["grant"]["revoked_reason"], "refresh_refused");
    assert!(view["grant"]["revoked_at"].is_string());
}

#[actix_web::test]
async fn an_authorization_revoked_revocation_marks_the_grant_revoked() {
    let (app, fake) = spawn_twitch_app(webhook_mode).await;
    app.twitch_login(&fake, "teststreamer").await;
    app.connect_alerts(&fake, "teststreamer").await;
    eventually("alert kinds subscribed", || {
        all_sources_enabled(&app, "teststreamer")
    })
    .await;

    let revoked = fake.revoke_grant("teststreamer");
    let cheer = revoked
        .iter()
        .find(|s| s["type"] == "channel.cheer")
        .unwrap()
        .clone();
    let body = json!({"subscription": cheer}).to_string();
    let r = app
        .send_webhook(&SignedWebhook::new(
            "revocation",
            "channel.cheer",
            "1",
            body,
        ))
        .await;
    assert_eq!(r.status(), 204);
    let view = app.sources("teststreamer").await;
    assert_eq!(view["grant"]["status"], "revoked");
    assert_eq!(view["grant"]["revoked_reason"], "authorization_revoked");
    assert_eq!(source(&view, "cheer")["status"], "authorization_revoked");
    // A raid needs no grant: its subscription is still enabled.
    assert_eq!(source(&view, "raid")["status"], "enabled");
}

#[actix_web::test]
async fn in_redis_mode_a_grant_made_on_one_instance_is_seen_on_another() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let fake = FakeTwitch::start().await;
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (url, prefix) = (url.to_owned(), prefix.clone());
        apps.push(
            spawn_app(|s| {
                fake.configure(s);
                s.redis_url = Some(SecretString::from(url));
                s.redis_prefix = prefix;
                webhook_mode(s);
            })
            .await,
        );
    }
    let (a, b) = (&apps[0], &apps[1]);
    a.twitch_login(&fake, "teststreamer").await;
    a.connect_alerts(&fake, "teststreamer").await;
    let view = b.sources("teststreamer").await;
    assert_eq!(view["grant"]["status"], "connected", "{view}");
    eventually("B sees the subscriptions A made", || {
        all_sources_enabled(b, "teststreamer")
    })
    .await;
    cleanup(url, &prefix).await;
}
