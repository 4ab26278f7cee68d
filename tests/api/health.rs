//! `/healthz`, `/readyz`, `/metrics`.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn health_ready_and_metrics_answer() {
    let app = spawn_app(|_| {}).await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.post_follow("teststreamer", "v").await;
    let text = app.get_text("/metrics").await;
    for name in [
        "eventsub_bridge_connections",
        "eventsub_bridge_channel_subscriptions",
        "eventsub_bridge_webhooks_total{outcome=\"accepted\"} 1",
        "eventsub_bridge_messages_published_total 1",
        "eventsub_bridge_deliveries_total",
        "eventsub_bridge_slow_consumers_total",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}
