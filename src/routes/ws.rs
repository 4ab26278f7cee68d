//! `GET /ws`: checks the session, the `Origin` and the connection cap, then
//! answers the handshake. The answer carries a `Handoff`: the server's
//! upgrade hook (`ws::upgrade`) sends the 101 and gives the socket to
//! `ws::session`.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::current_user;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::session::Handoff;

/// `GET /ws`.
pub async fn get_ws(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = current_user(&session).ok_or(ApiError::Unauthorized(
        "sign in first: /ws needs a session cookie",
    ))?;
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) {
        let allowed = state.settings.allowed_origin();
        if origin.to_str().ok() != Some(allowed.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "WebSocket Origin must be {allowed}"
            )));
        }
    }
    let mut handshake = actix_http::ws::handshake(req.head())
        .map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    let permit = state.connections.clone().try_acquire_owned().map_err(|_| {
        state.metrics.rejected_connections.inc();
        ApiError::AtCapacity("this instance is at MAX_CONNECTIONS")
    })?;
    let mut response = HttpResponse::from(handshake.finish()).map_into_boxed_body();
    response.extensions_mut().insert(Handoff {
        state: state.clone(),
        user,
        permit,
    });
    Ok(response)
}
