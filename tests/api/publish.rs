//! SPEC §4: the publish API.

use serde_json::{Value, json};

use crate::helpers::{PUBLISH_TOKEN, spawn_app};

#[actix_web::test]
async fn publish_is_404_while_disabled() {
    let app = spawn_app(|s| s.publish_token = None).await;
    let r = app
        .client
        .post(app.url("/api/publish"))
        .bearer_auth(PUBLISH_TOKEN)
        .json(&json!({"channel":"a","type":"t","data":{}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[actix_web::test]
async fn publish_needs_the_right_bearer_token() {
    let app = spawn_app(|_| {}).await;
    let body = json!({"channel":"teststreamer","type":"t","data":{}});
    let none = app
        .client
        .post(app.url("/api/publish"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let wrong = app
        .client
        .post(app.url("/api/publish"))
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let basic = app
        .client
        .post(app.url("/api/publish"))
        .header("Authorization", format!("Basic {PUBLISH_TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[actix_web::test]
async fn a_publish_is_202_with_an_id_and_reaches_history() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let r = app
        .client
        .post(app.url("/api/publish"))
        .bearer_auth(PUBLISH_TOKEN)
        .json(&json!({"channel":"TestStreamer","type":"overlay.alert","data":{"x":[1,2]},"text":"Hello chat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let h = app.history("teststreamer", "").await;
    assert_eq!(h[0]["id"], id.as_str());
    assert_eq!(h[0]["source"], "publish");
    assert_eq!(h[0]["version"], "1");
    assert_eq!(h[0]["text"], "Hello chat");
    assert_eq!(h[0]["data"], json!({"x":[1,2]}));
}

#[actix_web::test]
async fn bad_channels_and_bodies_are_400_naming_the_problem() {
    let app = spawn_app(|_| {}).await;
    for (body, code) in [
        (
            json!({"channel":"bad name","type":"t","data":{}}).to_string(),
            "invalid_channel",
        ),
        (
            json!({"channel":"","type":"t","data":{}}).to_string(),
            "invalid_channel",
        ),
        (
            json!({"channel":"ok","data":{}}).to_string(),
            "invalid_body",
        ),
        (
            json!({"channel":"ok","type":"","data":{}}).to_string(),
            "invalid_body",
        ),
        (
            json!({"channel":"ok","type":"t"}).to_string(),
            "invalid_body",
        ),
        ("{oops".to_owned(), "invalid_body"),
    ] {
        let r = app
            .client
            .post(app.url("/api/publish"))
            .bearer_auth(PUBLISH_TOKEN)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], code, "{body}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
}

#[actix_web::test]
async fn a_repeated_idempotency_key_returns_the_first_id_and_publishes_once() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let send = || {
        app.client
            .post(app.url("/api/publish"))
            .bearer_auth(PUBLISH_TOKEN)
            .header("Idempotency-Key", "order-1234")
            .json(&json!({"channel":"teststreamer","type":"t","data":{}}))
            .send()
    };
    let a: Value = send().await.unwrap().json().await.unwrap();
    let b = send().await.unwrap();
    assert_eq!(b.status(), 202);
    let b: Value = b.json().await.unwrap();
    assert_eq!(a["id"], b["id"]);
    assert_eq!(app.history("teststreamer", "").await.len(), 1);
}

#[actix_web::test]
async fn the_token_is_checked_before_the_body() {
    let app = spawn_app(|_| {}).await;
    let r = app
        .client
        .post(app.url("/api/publish"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let off = spawn_app(|s| s.publish_token = None).await;
    let r = off
        .client
        .post(off.url("/api/publish"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
