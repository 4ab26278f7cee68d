//! `GET /ws`: checks the session and the `Origin`, then answers the
//! handshake for the viewer protocol (`ws::viewer`); the server's upgrade
//! hook gives the socket to its task.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::current_user;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::handshake::{accept, check_origin};
use crate::ws::viewer::Viewer;

/// `GET /ws`.
pub async fn get_ws(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = current_user(&session).ok_or(ApiError::Unauthorized(
        "sign in first: /ws needs a session cookie",
    ))?;
    check_origin(&req, &state)?;
    accept(&req, &state, Viewer::new(user))
}
