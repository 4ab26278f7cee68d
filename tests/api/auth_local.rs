//! Local sign-in, logout, and the pages (SPEC §4, §7.14).

use crate::helpers::spawn_app;

#[actix_web::test]
async fn local_sign_in_sets_an_http_only_lax_cookie_and_shows_the_picker() {
    let app = spawn_app(|_| {}).await;
    let home = app.get_text("/").await;
    assert!(home.contains("Local mode"), "clearly marked local sign-in");
    let r = app
        .client
        .post(app.url("/auth/local"))
        .form(&[("login", "Viewer42")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "http PUBLIC_URL: no Secure flag"
    );
    let home = app.get_text("/").await;
    assert!(home.contains("Pick a streamer"));
}

#[actix_web::test]
async fn a_bad_local_login_is_400_and_auth_local_is_404_outside_local_mode() {
    let app = spawn_app(|_| {}).await;
    let r = app
        .client
        .post(app.url("/auth/local"))
        .form(&[("login", "not valid!")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_login");
}

#[actix_web::test]
async fn logout_ends_the_session_and_a_copied_cookie_stops_working() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer42").await;
    let copied = app.cookie_header().unwrap();
    assert_eq!(app.history("teststreamer", "").await.len(), 0);
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let fresh = reqwest::Client::new();
    let r = fresh
        .get(app.url("/api/channels/teststreamer/history"))
        .header("Cookie", copied)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the old cookie no longer names a session");
}

#[actix_web::test]
async fn watch_needs_a_login_and_embeds_player_and_chat_with_the_parent() {
    let app =
        spawn_app(|s| s.public_url = url::Url::parse("https://bridge.example.com").unwrap()).await;
    let r = app
        .client
        .get(app.url("/watch/teststreamer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/");
    app.login_as("viewer").await;
    // https PUBLIC_URL → Secure cookie, which reqwest will not send over http.
    let app2 = spawn_app(|_| {}).await;
    app2.login_as("viewer").await;
    let page = app2
        .client
        .get(app2.url("/watch/TestStreamer"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("https://player.twitch.tv/?channel=teststreamer&amp;parent=localhost")
            || page.contains("https://player.twitch.tv/?channel=teststreamer&parent=localhost"),
        "{page}"
    );
    assert!(page.contains("https://www.twitch.tv/embed/teststreamer/chat?parent=localhost"));
    assert!(page.contains("/static/feed.js"));
    let r = app2
        .client
        .get(app2.url("/watch/bad%20name"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[actix_web::test]
async fn the_picker_explains_a_bad_name() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let r = app
        .client
        .get(app.url("/pick?streamer=no+way"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("is not a Twitch login"));
    let r = app
        .client
        .get(app.url("/pick?streamer=TestStreamer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/watch/teststreamer");
}
