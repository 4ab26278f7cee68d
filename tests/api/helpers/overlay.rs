//! Alert overlays for tests (SPEC §8): the streamer's API calls with the
//! same-origin header, the overlay key, and overlay sockets.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{PUBLISH_TOKEN, TestApp, WsClient};

impl TestApp {
    /// `PUBLIC_URL`'s origin (what the dashboard's own requests carry).
    pub fn origin(&self) -> String {
        self.state.settings.allowed_origin()
    }

    /// A session call to the alert API of `channel` (`path` after it),
    /// from the dashboard's origin.
    pub async fn alerts_call(
        &self,
        method: reqwest::Method,
        channel: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, self.url(&format!("/api/alerts/{channel}{path}")))
            .header("Origin", self.origin());
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// `GET /api/alerts/{channel}` as JSON (the streamer must be signed in).
    pub async fn alerts_state(&self, channel: &str) -> Value {
        let r = self
            .alerts_call(reqwest::Method::GET, channel, "", None)
            .await;
        assert_eq!(r.status(), 200, "GET alerts");
        r.json().await.unwrap()
    }

    /// The overlay key of `channel`, read from the overlay URL.
    pub async fn overlay_key(&self, channel: &str) -> String {
        let url = self.alerts_state(channel).await["overlay_url"]
            .as_str()
            .unwrap()
            .to_owned();
        url.split("key=").nth(1).unwrap().to_owned()
    }

    /// A session control (`pause`, `skip`, …); asserts 204.
    pub async fn alerts_control(&self, channel: &str, op: &str) {
        let r = self
            .alerts_call(reqwest::Method::POST, channel, &format!("/{op}"), None)
            .await;
        assert_eq!(r.status(), 204, "{op}");
    }

    /// `POST /api/alerts/{channel}` with the publish token.
    pub async fn post_alert(&self, channel: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/alerts/{channel}")))
            .bearer_auth(PUBLISH_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A donation; returns its id (asserts 202).
    pub async fn donate(&self, channel: &str, user: &str, amount: &str) -> String {
        let r = self
            .post_alert(
                channel,
                json!({"kind": "donation", "user": user, "amount": amount, "currency": "USD"}),
            )
            .await;
        assert_eq!(r.status(), 202, "donation");
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens an overlay socket; the upgrade's error when refused.
    pub async fn try_overlay(
        &self,
        channel: &str,
        key: &str,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let url = format!(
            "{}/overlay/{channel}/ws?key={key}",
            self.base.replacen("http", "ws", 1)
        );
        let req = url.into_client_request()?;
        let (inner, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(WsClient { inner })
    }

    /// Opens an overlay and reads its welcome.
    pub async fn overlay(&self, channel: &str, key: &str) -> (WsClient, Value) {
        let mut ws = self
            .try_overlay(channel, key)
            .await
            .expect("overlay upgrade");
        let welcome = ws.expect_op("welcome").await;
        (ws, welcome)
    }
}

impl WsClient {
    /// Waits for the next `alert` and returns the alert.
    pub async fn next_alert(&mut self) -> Value {
        self.expect_op("alert").await["alert"].clone()
    }

    /// Acks alert `id`.
    pub async fn ack(&mut self, id: &str) {
        self.send_json(json!({"op": "ack", "id": id})).await;
    }
}
