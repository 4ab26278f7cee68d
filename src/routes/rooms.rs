//! Rooms over HTTP (SPEC §9): `GET /websocket?room=NAME`, where session
//! (401), `Origin` (403) and the room name (400) are checked in that order,
//! then the viewer joins the room and the handshake is answered for the
//! room protocol (`rooms::socket`); the streamer's room page
//! `GET /rooms/{channel}`; and the pages' scripts and styles.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::current_user;
use crate::domain::{ChannelName, User};
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::handshake::{accept, check_origin};

/// `?room=` (other parameters, such as a Pact client's `session`, are ignored).
#[derive(Debug, Deserialize)]
pub struct RoomQuery {
    room: Option<String>,
}

/// `GET /websocket?room=NAME`.
pub async fn get_websocket(
    req: HttpRequest,
    session: Session,
    query: web::Query<RoomQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = current_user(&session).ok_or(ApiError::Unauthorized(
        "sign in first: rooms need a session cookie",
    ))?;
    check_origin(&req, &state)?;
    let url_name = query.room.as_deref().unwrap_or("");
    let channel = ChannelName::parse(url_name)?;
    // Not a WebSocket request: 400 before anyone joins the room.
    actix_http::ws::verify_handshake(req.head())
        .map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    let socket = state.rooms.connect(&channel, url_name, &user).await?;
    accept(&req, &state, socket)
}

#[derive(Template)]
#[template(path = "rooms.html")]
struct RoomPage<'a> {
    user: &'a User,
    channel: &'a str,
}

/// `GET /rooms/{channel}`: the streamer's room page (config, polls,
/// counters, broadcasts). Login required (302 to `/`); only the streamer of
/// the channel (403 for anyone else).
pub async fn get_room_page(
    path: web::Path<String>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let Some(user) = current_user(&session) else {
        return Ok(HttpResponse::Found()
            .insert_header(("Location", "/"))
            .finish());
    };
    let channel = ChannelName::parse(&path)?;
    if user.login != channel.as_str() {
        return Err(ApiError::Forbidden(format!(
            "only {channel} runs this room; yours is /rooms/{}",
            user.login
        )));
    }
    let body = RoomPage {
        user: &user,
        channel: channel.as_str(),
    }
    .render()
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(body)
}

/// `GET /static/room.js` (compiled in): the room socket and poll view, and
/// the watch page's room panel.
pub async fn get_room_js() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/room.js"),
    )
}

/// `GET /static/room-admin.js` (compiled in): the streamer's room page.
pub async fn get_room_admin_js() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/room-admin.js"),
    )
}

/// `GET /static/rooms.css` (compiled in).
pub async fn get_rooms_css() -> HttpResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/rooms.css"),
    )
}
