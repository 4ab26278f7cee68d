//! `/healthz`, `/readyz` and `/metrics`.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// `GET /healthz`: 200 while the process runs.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while the broker is reachable, 503 otherwise.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.broker.is_ready().await {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "unavailable", "message": "broker unreachable"}))
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
