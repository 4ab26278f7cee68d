//! Twitch login against the fake Twitch (SPEC §4, §7.12, §7.14; TWITCH.md §4).

use std::time::Duration;

use crate::helpers::fake_twitch::{CLIENT_ID, CLIENT_SECRET, Endpoint, Failure, spawn_twitch_app};
use crate::helpers::spawn_app;

#[actix_web::test]
async fn twitch_login_signs_in_with_the_helix_user_and_keeps_tokens_on_the_server() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let page = app.get_text("/").await;
    assert!(page.contains("href=\"/auth/login\""), "{page}");
    assert!(!page.contains("Local mode"));

    let state = app.start_twitch_login(&fake).await;
    let code = fake.issue_code("viewer42");
    let r = app
        .twitch_callback(&format!(
            "code={code}&scope=user%3Aread%3Aemail&state={state}"
        ))
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/");
    for cookie in r.headers().get_all("set-cookie") {
        let c = cookie.to_str().unwrap();
        assert!(
            !c.contains("user-token") && !c.contains("refresh-token"),
            "{c}"
        );
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
    }
    let page = app.get_text("/").await;
    assert!(page.contains("Pick a streamer"), "{page}");
    assert!(page.contains("Viewer42"), "display name from Helix");
    assert!(
        !page.contains("user-token"),
        "the token never reaches the browser"
    );

    // TWITCH.md §4: client credentials in the form body, with the redirect URI.
    let forms = fake.token_forms();
    let exchange = forms
        .iter()
        .find(|f| f.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .expect("a code exchange");
    assert_eq!(exchange["client_id"], CLIENT_ID);
    assert_eq!(exchange["client_secret"], CLIENT_SECRET);
    assert_eq!(exchange["code"], code);
    assert_eq!(
        exchange["redirect_uri"],
        "http://localhost:8080/auth/callback"
    );
    assert_eq!(fake.calls(Endpoint::Validate), 1, "validated at login");

    let mut ws = crate::helpers::WsClient::connect(&app.base, app.cookie_header().as_deref(), None)
        .await
        .unwrap();
    let welcome = ws.next_json().await;
    assert_eq!(welcome["op"], "welcome");
    assert_eq!(welcome["user"]["id"], "2042");
    assert_eq!(welcome["user"]["login"], "viewer42");
    assert_eq!(welcome["user"]["display_name"], "Viewer42");
}

#[actix_web::test]
async fn a_missing_or_wrong_state_is_400_with_a_clear_page() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let _state = app.start_twitch_login(&fake).await;
    let code = fake.issue_code("viewer42");
    let r = app.twitch_callback(&format!("code={code}")).await;
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("no state"));
    let r = app
        .twitch_callback(&format!("code={code}&state=not-the-state"))
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not one this browser started")
    );
    assert!(!app.get_text("/").await.contains("Pick a streamer"));
    assert_eq!(
        fake.calls(Endpoint::Token),
        1,
        "only the app token at start: no code was exchanged"
    );
}

#[actix_web::test]
async fn a_state_works_once_and_only_in_the_browser_that_started_it() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let state = app.start_twitch_login(&fake).await;
    // Another browser (no cookie) presents this browser's state.
    let other = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let code = fake.issue_code("viewer42");
    let r = other
        .get(app.url(&format!("/auth/callback?code={code}&state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "state is bound to the browser");
    // The right browser succeeds once…
    let code = fake.issue_code("viewer42");
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 302);
    // …and the same state is refused the second time.
    let code = fake.issue_code("viewer42");
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 400, "state is single use");
}

#[actix_web::test]
async fn an_expired_state_is_400() {
    let (app, fake) =
        spawn_twitch_app(|s| s.limits.oauth_state_ttl = Duration::from_millis(50)).await;
    let state = app.start_twitch_login(&fake).await;
    // The state's age is the point of this test, so real time must pass.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let code = fake.issue_code("viewer42");
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("expired"));
}

#[actix_web::test]
async fn access_denied_returns_home_with_the_reason() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let state = app.start_twitch_login(&fake).await;
    let r = app
        .twitch_callback(&format!(
            "error=access_denied&error_description=The+user+denied+you+access&state={state}"
        ))
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/?error=access_denied");
    let page = app.get_text("/?error=access_denied").await;
    assert!(page.contains("You declined the Twitch login"), "{page}");
    // The attempt's state was consumed.
    let code = fake.issue_code("viewer42");
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 400);
}

#[actix_web::test]
async fn a_failed_code_exchange_is_a_502_page_and_no_session() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    let state = app.start_twitch_login(&fake).await;
    let r = app
        .twitch_callback(&format!("code=never-issued&state={state}"))
        .await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("Twitch login failed"), "{body}");
    assert!(!body.contains(CLIENT_SECRET));
    assert!(!app.get_text("/").await.contains("Pick a streamer"));
    // Helix /users failing after a good exchange is a failure too.
    let state = app.start_twitch_login(&fake).await;
    fake.fail_next(Endpoint::Users, Failure::Status(503), 4);
    let code = fake.issue_code("viewer42");
    let r = app
        .twitch_callback(&format!("code={code}&state={state}"))
        .await;
    assert_eq!(r.status(), 502);
    assert!(!app.get_text("/").await.contains("Pick a streamer"));
}

#[actix_web::test]
async fn twitch_login_routes_are_404_in_local_mode() {
    let app = spawn_app(|_| {}).await;
    for path in ["/auth/login", "/auth/callback?code=x&state=y"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[actix_web::test]
async fn a_session_whose_token_no_longer_validates_is_ended() {
    let (app, fake) =
        spawn_twitch_app(|s| s.limits.token_revalidate_interval = Duration::ZERO).await;
    app.twitch_login(&fake, "viewer42").await;
    assert!(app.get_text("/").await.contains("Pick a streamer"));
    // The viewer disconnects the app on Twitch: validate 401, refresh refused.
    fake.revoke_user_tokens(false);
    assert!(
        !app.get_text("/").await.contains("Pick a streamer"),
        "session ended"
    );
    let r = app
        .client
        .get(app.url("/api/channels/teststreamer/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[actix_web::test]
async fn an_expired_user_token_is_refreshed_and_the_session_kept() {
    let (app, fake) =
        spawn_twitch_app(|s| s.limits.token_revalidate_interval = Duration::ZERO).await;
    app.twitch_login(&fake, "viewer42").await;
    fake.revoke_user_tokens(true);
    assert!(app.get_text("/").await.contains("Pick a streamer"));
    let refreshes = fake
        .token_forms()
        .iter()
        .filter(|f| f.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count();
    assert_eq!(refreshes, 1);
    // The refreshed token is stored: the next check validates it directly.
    assert!(app.get_text("/").await.contains("Pick a streamer"));
    let refreshes_after = fake
        .token_forms()
        .iter()
        .filter(|f| f.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count();
    assert_eq!(refreshes_after, 1);
}

#[actix_web::test]
async fn validation_waits_an_hour_between_checks() {
    let (app, fake) = spawn_twitch_app(|_| {}).await;
    app.twitch_login(&fake, "viewer42").await;
    for _ in 0..3 {
        assert!(app.get_text("/").await.contains("Pick a streamer"));
    }
    assert_eq!(fake.calls(Endpoint::Validate), 1, "only at login");
}
