//! The Helix client and the subscription registry against the fake Twitch:
//! ensure-on-watch, 401/409/429/5xx, reconciliation, revocation, cost, and
//! the admin API (SPEC §4, §7.9; TWITCH.md §3).

use serde_json::{Value, json};

use crate::helpers::fake_twitch::{
    ADMIN_TOKEN, CLIENT_ID, CLIENT_SECRET, Endpoint, Failure, FakeTwitch, eventually,
    spawn_twitch_app,
};
use crate::helpers::{SignedWebhook, TestApp, spawn_with, test_settings};

const CALLBACK: &str = "http://localhost:8080/api/callback";

async fn admin_post(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/subscriptions"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn watch(app: &TestApp, streamer: &str) -> reqwest::StatusCode {
    app.client
        .get(app.url(&format!("/watch/{streamer}")))
        .send()
        .await
        .unwrap()
        .status()
}

fn of_type<'a>(subs: &'a [Value], t: &str) -> Vec<&'a Value> {
    subs.iter().filter(|s| s["type"] == t).collect()
}

#[actix_web::test]
async fn many_viewers_at_once_cause_one_helix_round_per_streamer() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    app.twitch_login(&fake, "viewer42").await;
    fake.expect(Endpoint::Users, 1).await;
    fake.expect(Endpoint::CreateSub, 4).await;
    let hits: Vec<_> = (0..25).map(|_| watch(&app, "teststreamer")).collect();
    for status in futures_util::future::join_all(hits).await {
        assert_eq!(status, 200, "the page never waits for Helix");
    }
    eventually("four subscriptions on Twitch", || {
        let n = fake.subscriptions().len();
        async move { n == 4 }
    })
    .await;
    // Once they exist, watching again asks Helix nothing.
    for _ in 0..5 {
        assert_eq!(watch(&app, "TestStreamer").await, 200);
    }
    fake.verify().await;

    let subs = fake.subscriptions();
    for s in &subs {
        assert_eq!(s["transport"]["callback"], CALLBACK);
    }
    assert_eq!(
        of_type(&subs, "stream.online")[0]["condition"],
        json!({"broadcaster_user_id": "1001"})
    );
    assert_eq!(of_type(&subs, "channel.update")[0]["version"], "2");
    assert_eq!(
        of_type(&subs, "channel.raid")[0]["condition"],
        json!({"to_broadcaster_user_id": "1001"})
    );
    assert_eq!(of_type(&subs, "stream.offline").len(), 1);
}

#[actix_web::test]
async fn an_ensure_failure_shows_in_the_feed_as_a_system_message() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    app.twitch_login(&fake, "viewer42").await;
    let mut ws = app.ws_connect().await;
    ws.subscribe("teststreamer", None).await;
    // Every attempt fails with 503: retried, then surfaced in the feed.
    fake.fail_next(Endpoint::Users, Failure::Status(503), 4);
    assert_eq!(watch(&app, "teststreamer").await, 200);
    let frame = ws.expect_op("event").await;
    let m = &frame["message"];
    assert_eq!(m["type"], "subscription.error");
    assert_eq!(m["source"], "system");
    assert!(m["text"].as_str().unwrap().contains("teststreamer"), "{m}");
    assert_eq!(fake.calls(Endpoint::Users), 1 + 4, "login + 4 attempts");

    // An unknown login says so.
    ws.subscribe("ghoststreamer", None).await;
    assert_eq!(watch(&app, "ghoststreamer").await, 200);
    let frame = ws.expect_op("event").await;
    assert_eq!(frame["message"]["channel"], "ghoststreamer");
    assert!(
        frame["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Twitch has no user named ghoststreamer")
    );
}

#[actix_web::test]
async fn a_refused_app_token_is_refreshed_once_then_the_401_is_surfaced() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let app_grants = |fake: &FakeTwitch| {
        fake.token_forms()
            .iter()
            .filter(|f| f["grant_type"] == "client_credentials")
            .count()
    };
    assert_eq!(app_grants(&fake), 1, "fetched once at start and cached");
    // Twitch invalidates the cached token: one 401, a new token, success.
    fake.revoke_app_tokens();
    let r = admin_post(
        &app,
        json!({"streamer": "teststreamer", "types": ["stream.online"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(app_grants(&fake), 2);
    // 401 even with the fresh token: surfaced as 502, not retried forever.
    fake.fail_next(Endpoint::ListSubs, Failure::Unauthorized, 2);
    let r = app
        .client
        .get(app.url("/api/subscriptions"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(app_grants(&fake), 3);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "bad_gateway");
}

#[actix_web::test]
async fn a_409_adopts_the_existing_subscription() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    // Created behind the registry's back (e.g. by another instance).
    let existing = fake.seed_subscription(
        "stream.online",
        json!({"broadcaster_user_id": "1001"}),
        "enabled",
        CALLBACK,
    );
    let r = admin_post(
        &app,
        json!({"streamer": "teststreamer", "types": ["stream.online"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"][0]["id"], existing.as_str());
    assert_eq!(fake.subscriptions().len(), 1, "nothing duplicated");
    let list = app.admin_list().await;
    assert_eq!(list["data"][0]["id"], existing.as_str());
}

#[actix_web::test]
async fn a_429_waits_for_the_ratelimit_reset_and_retries() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    fake.fail_next(
        Endpoint::CreateSub,
        Failure::RateLimited { reset_in_secs: 1 },
        1,
    );
    let r = admin_post(
        &app,
        json!({"streamer": "teststreamer", "types": ["stream.online"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(fake.calls(Endpoint::CreateSub), 2);
    assert_eq!(fake.subscriptions().len(), 1);
}

#[actix_web::test]
async fn a_5xx_is_retried_then_surfaced_as_502() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    fake.fail_next(Endpoint::CreateSub, Failure::Status(503), 2);
    let r = admin_post(
        &app,
        json!({"streamer": "teststreamer", "types": ["stream.online"]}),
    )
    .await;
    assert_eq!(r.status(), 201, "two 503s then success");
    assert_eq!(fake.calls(Endpoint::CreateSub), 3);
    // More failures than retries (3): the error reaches the caller.
    fake.fail_next(Endpoint::CreateSub, Failure::Status(500), 4);
    let r = admin_post(
        &app,
        json!({"streamer": "teststreamer", "types": ["stream.offline"]}),
    )
    .await;
    assert_eq!(r.status(), 502);
    assert_eq!(fake.calls(Endpoint::CreateSub), 3 + 4);
    // A 4xx other than 401/409/429 is not retried.
    fake.fail_next(Endpoint::CreateSub, Failure::Status(400), 1);
    let r = admin_post(
        &app,
        json!({"streamer": "teststreamer", "types": ["stream.offline"]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "twitch_rejected");
    assert_eq!(fake.calls(Endpoint::CreateSub), 3 + 4 + 1);
}

#[actix_web::test]
async fn reconciliation_at_start_adopts_live_subscriptions_and_deletes_failed_ones() {
    let fake = FakeTwitch::start().await;
    fake.set_page_size(2);
    let live = fake.seed_subscription(
        "stream.online",
        json!({"broadcaster_user_id": "1001"}),
        "enabled",
        CALLBACK,
    );
    let pending = fake.seed_subscription(
        "stream.offline",
        json!({"broadcaster_user_id": "1001"}),
        "webhook_callback_verification_pending",
        CALLBACK,
    );
    let failed = fake.seed_subscription(
        "channel.update",
        json!({"broadcaster_user_id": "1001"}),
        "webhook_callback_verification_failed",
        CALLBACK,
    );
    let foreign = fake.seed_subscription(
        "stream.online",
        json!({"broadcaster_user_id": "1002"}),
        "notification_failures_exceeded",
        "https://elsewhere.example/callback",
    );
    let mut settings = test_settings();
    fake.configure(&mut settings);
    let app = spawn_with(settings).await;
    let subs = app.state.twitch.as_ref().unwrap().subscriptions.clone();
    eventually("reconciled", || {
        let done = subs.is_reconciled();
        async move { done }
    })
    .await;

    let ids: Vec<String> = fake
        .subscriptions()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!ids.contains(&failed), "our failed subscription is deleted");
    assert!(ids.contains(&foreign), "other callbacks are left alone");
    assert!(ids.contains(&live) && ids.contains(&pending));
    assert_eq!(fake.calls(Endpoint::ListSubs), 2, "both pages of 2 read");
    assert_eq!(
        app.state.registry.login_for("1001").unwrap().as_str(),
        "teststreamer",
        "login learned from Helix for routing"
    );
    let list = app.admin_list().await;
    let listed: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{list}");
    assert!(listed.contains(&live.as_str()) && listed.contains(&pending.as_str()));

    // Watching now only creates what is missing.
    app.twitch_login(&fake, "viewer42").await;
    assert_eq!(watch(&app, "teststreamer").await, 200);
    eventually("the two missing types", || {
        let n = fake.calls(Endpoint::CreateSub);
        async move { n == 2 }
    })
    .await;
    let created: Vec<String> = fake
        .subscriptions()
        .iter()
        .filter(|s| {
            s["condition"]["broadcaster_user_id"] == "1001"
                || s["condition"]["to_broadcaster_user_id"] == "1001"
        })
        .map(|s| s["type"].as_str().unwrap().to_owned())
        .collect();
    for t in [
        "stream.online",
        "stream.offline",
        "channel.update",
        "channel.raid",
    ] {
        assert_eq!(created.iter().filter(|c| *c == t).count(), 1, "{t}");
    }
}

#[actix_web::test]
async fn a_revocation_marks_the_subscription_revoked_and_tells_the_channel() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let r = admin_post(
        &app,
        json!({"streamer": "teststreamer", "types": ["stream.online"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let sub = r.json::<Value>().await.unwrap()["data"][0].clone();
    let mut revoked = sub.clone();
    revoked["status"] = json!("authorization_revoked");
    revoked["transport"] = json!({"method": "webhook", "callback": CALLBACK});
    let body = json!({ "subscription": revoked }).to_string();
    let r = app
        .send_webhook(&SignedWebhook::new(
            "revocation",
            "stream.online",
            "1",
            body,
        ))
        .await;
    assert_eq!(r.status(), 204);

    let list = app.admin_list().await;
    let entry = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sub["id"])
        .unwrap()
        .clone();
    assert_eq!(
        entry["status"], "authorization_revoked",
        "even though Helix still lists it"
    );

    // Routed by the broadcaster id Helix taught the registry.
    app.twitch_login(&fake, "viewer42").await;
    let history = app.history("teststreamer", "").await;
    let last = history.last().unwrap();
    assert_eq!(last["type"], "subscription.revoked");
    assert_eq!(last["source"], "system");
}

#[actix_web::test]
async fn the_cost_limit_stops_new_subscriptions_and_says_so() {
    let fake = FakeTwitch::start().await;
    fake.set_max_total_cost(2);
    let mut settings = test_settings();
    fake.configure(&mut settings);
    let app = spawn_with(settings).await;
    let subs = app.state.twitch.as_ref().unwrap().subscriptions.clone();
    eventually("reconciled", || {
        let done = subs.is_reconciled();
        async move { done }
    })
    .await;
    app.twitch_login(&fake, "viewer42").await;
    let mut ws = app.ws_connect().await;
    ws.subscribe("teststreamer", None).await;
    assert_eq!(watch(&app, "teststreamer").await, 200);
    let mut errors = Vec::new();
    while errors.len() < 2 {
        let frame = ws.expect_op("event").await;
        errors.push(frame["message"]["text"].as_str().unwrap().to_owned());
    }
    assert!(
        errors.iter().all(|e| e.contains("cost limit")),
        "{errors:?}"
    );
    assert_eq!(fake.subscriptions().len(), 2);
    let list = app.admin_list().await;
    assert_eq!(list["total_cost"], 2);
    assert_eq!(list["max_total_cost"], 2);
}

#[actix_web::test]
async fn the_admin_api_needs_its_token_and_answers_the_spec_shapes() {
    let (off, _fake_off) = spawn_twitch_app(|s| s.admin_token = None).await;
    let r = off
        .client
        .get(off.url("/api/subscriptions"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "off while ADMIN_TOKEN is unset");

    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let r = app
        .client
        .get(app.url("/api/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/api/subscriptions"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = admin_post(&app, json!({"streamer": "TestStreamer"})).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        created["data"].as_array().unwrap().len(),
        4,
        "EVENT_TYPES by default"
    );
    let list = app.admin_list().await;
    assert_eq!(list["total"], 4);
    assert_eq!(list["total_cost"], 4);
    assert_eq!(list["max_total_cost"], 10_000);
    for s in list["data"].as_array().unwrap() {
        for key in [
            "id",
            "type",
            "version",
            "status",
            "condition",
            "cost",
            "created_at",
        ] {
            assert!(s.get(key).is_some(), "{key} in {s}");
        }
    }
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let delete = |id: String| {
        app.client
            .delete(app.url(&format!("/api/subscriptions/{id}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    assert_eq!(delete(id.clone()).await.unwrap().status(), 204);
    assert_eq!(fake.subscriptions().len(), 3);
    assert_eq!(delete(id).await.unwrap().status(), 404, "unknown id");
    assert_eq!(app.admin_list().await["total"], 3);

    for (body, code) in [
        (json!({"streamer": "not a login"}), "invalid_channel"),
        (json!({"streamer": "ghoststreamer"}), "unknown_streamer"),
        (
            json!({"streamer": "teststreamer", "types": ["Not A Type"]}),
            "invalid_type",
        ),
        (
            json!({"streamer": "teststreamer", "types": []}),
            "invalid_type",
        ),
    ] {
        let r = admin_post(&app, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code, "{body}");
    }
    // Comma-separated types work too.
    let r = admin_post(
        &app,
        json!({"streamer": "otherstreamer", "types": "stream.online,stream.offline"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[actix_web::test]
async fn the_subscriptions_cli_lists_creates_and_deletes_through_helix() {
    let fake = FakeTwitch::start().await;
    let seeded = fake.seed_subscription(
        "stream.online",
        json!({"broadcaster_user_id": "1002"}),
        "enabled",
        CALLBACK,
    );
    let run = |args: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventsub-bridge"));
        c.arg("subscriptions")
            .args(args)
            .env_clear()
            .env("TWITCH_CLIENT_ID", CLIENT_ID)
            .env("TWITCH_CLIENT_SECRET", CLIENT_SECRET)
            .env("TWITCH_AUTH_URL", fake.auth_url())
            .env("TWITCH_API_URL", fake.api_url())
            .env("EVENTSUB_SECRET", "cli-eventsub-secret")
            .env("RUST_LOG", "off");
        async move { c.output().await.unwrap() }
    };
    let out = run(&["list"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&seeded) && text.contains("1 subscriptions"),
        "{text}"
    );
    assert!(!text.contains(CLIENT_SECRET));

    let out = run(&[
        "create",
        "teststreamer",
        "--types",
        "stream.online,channel.raid",
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fake.subscriptions().len(), 3);
    let out = run(&["delete", &seeded]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fake.subscriptions().len(), 2);
    let out = run(&["delete", &seeded]).await;
    assert!(!out.status.success(), "unknown id fails");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no subscription"));
}
