//! `/healthz`, `/readyz` and `/metrics`.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// `GET /healthz`: 200 while the process runs.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while the broker is reachable, 503 otherwise. With
/// the EventSub WebSocket transport the body also has `eventsub`: the
/// sockets this instance holds, per streamer (SPEC §10).
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut body = if state.broker.is_ready().await {
        serde_json::json!({"status": "ready"})
    } else {
        serde_json::json!({"error": "unavailable", "message": "broker unreachable"})
    };
    if let Some(ws) = state.eventsub_ws.get() {
        body["eventsub"] = ws.readyz_view();
    }
    if body.get("status").is_some() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Some(ws) = state.eventsub_ws.get() {
        ws.refresh_metrics(&state.metrics);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
