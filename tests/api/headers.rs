//! Security headers and HTTP details (issue 13, item 6): a CSP on every
//! page, `nosniff` everywhere, `no-referrer` where the URL carries a key,
//! `HEAD` wherever `GET` is routed, a new session id at sign-in, `Secure`
//! cookies under an https `PUBLIC_URL`.

use reqwest::Method;
use reqwest::header::HeaderMap;

use crate::helpers::{TestApp, spawn_app};

const STREAMER: &str = "teststreamer";

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The pages a signed-in streamer sees, and an error page.
async fn pages(app: &TestApp) -> Vec<String> {
    let key = app.overlay_key(STREAMER).await;
    vec![
        "/".to_owned(),
        "/dashboard".to_owned(),
        format!("/watch/{STREAMER}"),
        format!("/rooms/{STREAMER}"),
        format!("/overlay/{STREAMER}?key={key}"),
        "/pick?streamer=no+way".to_owned(),
    ]
}

#[actix_web::test]
async fn every_page_has_a_csp_its_scripts_can_run_under() {
    let app = spawn_app(|_| {}).await;
    app.login_as(STREAMER).await;
    for path in pages(&app).await {
        let r = app.client.get(app.url(&path)).send().await.unwrap();
        let h = r.headers().clone();
        assert!(
            header(&h, "content-type").starts_with("text/html"),
            "{path} is a page"
        );
        assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{path}");
        let csp = header(&h, "content-security-policy");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("style-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        if path.starts_with("/overlay/") {
            // OBS and web studios must be able to load it, framed or not.
            assert!(csp.contains("frame-ancestors *"), "{path}: {csp}");
            assert_eq!(header(&h, "referrer-policy"), "no-referrer", "{path}");
        } else {
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        }
        if path.starts_with("/watch/") {
            assert!(
                csp.contains("frame-src https://player.twitch.tv https://www.twitch.tv/embed/;"),
                "{path}: {csp}"
            );
        } else {
            assert!(csp.contains("frame-src 'none'"), "{path}: {csp}");
        }
        // Nothing inline that this CSP would block.
        let html = r.text().await.unwrap();
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "{path}: inline script {tag}");
        }
        assert!(!html.contains(" style="), "{path}: inline style attribute");
        assert!(!html.contains("<style"), "{path}: inline style element");
        assert!(!html.contains(" onclick="), "{path}: inline handler");
        assert!(!html.contains("javascript:"), "{path}: javascript: URL");
    }
}

#[actix_web::test]
async fn nosniff_is_on_every_response_not_only_pages() {
    let app = spawn_app(|_| {}).await;
    for path in [
        "/healthz",
        "/static/feed.js",
        "/static/style.css",
        "/api/channels/teststreamer/history",
        "/nowhere",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            header(r.headers(), "x-content-type-options"),
            "nosniff",
            "{path} ({})",
            r.status()
        );
    }
}

#[actix_web::test]
async fn head_is_answered_wherever_get_is() {
    let app = spawn_app(|_| {}).await;
    app.login_as(STREAMER).await;
    let mut paths = pages(&app).await;
    paths.extend(
        [
            "/healthz",
            "/readyz",
            "/metrics",
            "/static/style.css",
            "/static/feed.js",
            "/static/overlay.js",
            "/static/room.js",
            "/api/channels/teststreamer/history",
            "/api/alerts/teststreamer/sources",
            "/nowhere",
        ]
        .map(str::to_owned),
    );
    for path in &paths {
        let get = app.client.get(app.url(path)).send().await.unwrap();
        let head = app
            .client
            .request(Method::HEAD, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            header(head.headers(), "content-type"),
            header(get.headers(), "content-type"),
            "HEAD {path}"
        );
        assert_eq!(
            header(head.headers(), "content-security-policy"),
            header(get.headers(), "content-security-policy"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path}: no body"
        );
    }
    // A page is 200 on HEAD, not 404.
    let r = app
        .client
        .request(Method::HEAD, app.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An SSE stream answers HEAD with its headers and ends, rather than
    // streaming nothing forever (the client gives up after 10 s).
    let r = app
        .client
        .request(Method::HEAD, app.url("/api/channels/teststreamer/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "content-type"), "text/event-stream");
    assert!(r.bytes().await.unwrap().is_empty());
}

/// `name=value` of the session cookie a response sets.
fn session_cookie(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("esb_session="))
        .expect("a session cookie is set")
        .to_owned();
    set.split(';').next().unwrap().to_owned()
}

async fn sign_in(app: &TestApp, login: &str, cookie: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client
        .post(app.url("/auth/local"))
        .form(&[("login", login)]);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 302, "sign-in as {login}");
    r
}

async fn history_status(app: &TestApp, cookie: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/api/channels/teststreamer/history"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn sign_in_gives_a_new_session_id_and_the_planted_one_stays_out() {
    let app = spawn_app(|_| {}).await;
    // The attacker's own valid session id, planted in the victim's browser.
    let planted = session_cookie(&sign_in(&app, "attacker", None).await);
    assert_eq!(history_status(&app, &planted).await, 200);
    let victim = session_cookie(&sign_in(&app, "victim", Some(&planted)).await);
    assert_ne!(victim, planted, "a new session id at sign-in");
    assert_eq!(history_status(&app, &victim).await, 200);
    assert_eq!(
        history_status(&app, &planted).await,
        401,
        "the planted id no longer names a session (not the victim's)"
    );
}

#[actix_web::test]
async fn cookies_are_secure_under_an_https_public_url_only() {
    let https =
        spawn_app(|s| s.public_url = url::Url::parse("https://bridge.example.com").unwrap()).await;
    let r = sign_in(&https, "viewer", None).await;
    let set = header(r.headers(), "set-cookie");
    assert!(set.contains("; Secure"), "https PUBLIC_URL: {set}");
    assert!(set.contains("HttpOnly"), "{set}");
    let http = spawn_app(|_| {}).await;
    let r = sign_in(&http, "viewer", None).await;
    let set = header(r.headers(), "set-cookie");
    assert!(!set.contains("Secure"), "http PUBLIC_URL: {set}");
}
