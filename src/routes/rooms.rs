//! `GET /websocket?room=NAME` (SPEC §9): session (401), `Origin` (403) and
//! the room name (400) are checked in that order; then the viewer joins the
//! room and the handshake is answered for the room protocol
//! (`rooms::socket`).

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::auth::current_user;
use crate::domain::ChannelName;
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
