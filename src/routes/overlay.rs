//! The OBS overlay (SPEC §8): `GET /overlay/{channel}?key=K`, a
//! transparent page with no login and no cookie, and its WebSocket
//! `GET /overlay/{channel}/ws?key=K` (the `Origin` rule of `/ws`). A wrong
//! or old key, or a channel without alerts, gets the same 401, which says
//! nothing about the channel.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::alerts::overlay_socket::OverlaySocket;
use crate::domain::ChannelName;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::handshake::{accept, check_origin};

const WRONG_KEY: &str = "this overlay link is not valid: copy it again from the dashboard";

/// `?key=`.
#[derive(Debug, Deserialize)]
pub struct KeyQuery {
    key: Option<String>,
}

#[derive(Template)]
#[template(path = "overlay.html")]
struct OverlayPage<'a> {
    channel: &'a str,
}

/// The channel and key generation, or the one 401.
async fn authenticate(
    state: &AppState,
    path: &str,
    query: &KeyQuery,
) -> Result<(ChannelName, u64), ApiError> {
    let wrong = || ApiError::Unauthorized(WRONG_KEY);
    let channel = ChannelName::parse(path).map_err(|_| wrong())?;
    let key = query
        .key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(wrong)?;
    let generation = state
        .alerts
        .check_key(&channel, key)
        .await?
        .ok_or_else(wrong)?;
    Ok((channel, generation))
}

/// `GET /overlay/{channel}?key=K`.
pub async fn get_overlay(
    path: web::Path<String>,
    query: web::Query<KeyQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (channel, _) = authenticate(&state, &path, &query).await?;
    let body = OverlayPage {
        channel: channel.as_str(),
    }
    .render()
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        // The key is in the URL: `routes::headers` adds `Referrer-Policy:
        // no-referrer` (and the page says it too).
        .body(body))
}

/// `GET /overlay/{channel}/ws?key=K`.
pub async fn get_overlay_ws(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<KeyQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state)?;
    let (channel, generation) = authenticate(&state, &path, &query).await?;
    let membership = state.alerts.overlays().join(&channel).await?;
    let protocol = OverlaySocket::new(state.alerts.clone(), membership, generation);
    accept(&req, &state, protocol)
}

/// `GET /static/overlay.js` (compiled in).
pub async fn get_overlay_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(include_str!("../../static/overlay.js"))
}

/// `GET /static/overlay.css` (compiled in).
pub async fn get_overlay_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(include_str!("../../static/overlay.css"))
}
