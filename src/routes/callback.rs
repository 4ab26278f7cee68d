//! `/api/callback`: the EventSub webhook (POST) and the legacy WebSub
//! verification (GET). Thin: read the body within its limit, pick the
//! headers, hand over to `webhook`.

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::webhook::{self, WebhookError, WebhookHeaders, WebhookReply};

/// Reads the body, refusing more than `limit` bytes with 413 (SPEC §4 step 1).
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn header(headers: &HeaderMap, name: &'static str) -> Result<String, WebhookError> {
    let value = headers.get(name).ok_or(WebhookError::MissingHeader(name))?;
    let text = value.to_str().map_err(|_| WebhookError::BadHeader(name))?;
    Ok(text.to_owned())
}

fn eventsub_headers(headers: &HeaderMap) -> Result<WebhookHeaders, WebhookError> {
    Ok(WebhookHeaders {
        message_id: header(headers, "Twitch-Eventsub-Message-Id")?,
        timestamp: header(headers, "Twitch-Eventsub-Message-Timestamp")?,
        signature: header(headers, "Twitch-Eventsub-Message-Signature")?,
        message_type: header(headers, "Twitch-Eventsub-Message-Type")?,
    })
}

/// Query of a legacy WebSub POST.
#[derive(Debug, Deserialize)]
pub struct WebsubQuery {
    channel: Option<String>,
}

fn reply(r: WebhookReply) -> HttpResponse {
    match r {
        WebhookReply::Challenge(c) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(c),
        WebhookReply::NoContent => HttpResponse::NoContent().finish(),
    }
}

/// `POST /api/callback`.
#[tracing::instrument(skip_all)]
pub async fn post_callback(
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<WebsubQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.settings.limits.max_body_bytes;
    let body = match read_body(&req, payload, limit).await {
        Ok(b) => b,
        Err(e) => {
            state.metrics.webhook("rejected_size");
            return Err(e);
        }
    };
    let headers = req.headers();
    let is_websub = !headers.contains_key("Twitch-Eventsub-Message-Id")
        && (headers.contains_key("X-Hub-Signature") || query.channel.is_some());
    let result = if is_websub {
        let sig = headers.get("X-Hub-Signature").and_then(|v| v.to_str().ok());
        let id = headers
            .get("Twitch-Notification-Id")
            .and_then(|v| v.to_str().ok());
        webhook::handle_websub(&state, query.channel.as_deref(), sig, id, &body).await
    } else {
        match eventsub_headers(headers) {
            Ok(h) => webhook::handle_eventsub(&state, &h, &body).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(r) => Ok(reply(r)),
        Err(e) => {
            state.metrics.webhook(e.outcome());
            if !matches!(
                e,
                WebhookError::Broker(_)
                    | WebhookError::Ingest(crate::ingest::IngestError::Broker(_))
            ) {
                tracing::warn!(reason = %e, "webhook rejected");
            }
            Err(e.into())
        }
    }
}

/// Query of a legacy WebSub verification.
#[derive(Debug, Deserialize)]
pub struct HubQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /api/callback`: legacy WebSub verification (SPEC §4).
pub async fn get_callback(query: web::Query<HubQuery>) -> Result<HttpResponse, ApiError> {
    match (query.mode.as_deref(), query.challenge.as_deref()) {
        (Some("subscribe" | "unsubscribe"), Some(challenge)) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(challenge.to_owned())),
        (Some("denied"), _) => Ok(HttpResponse::Ok().finish()),
        (Some("subscribe" | "unsubscribe"), None) => Err(ApiError::bad_request(
            "invalid_query",
            "hub.challenge is required",
        )),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            "hub.mode must be subscribe, unsubscribe or denied",
        )),
    }
}
