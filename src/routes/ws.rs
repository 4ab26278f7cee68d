//! `GET /ws`: checks the session, the `Origin` and the connection cap, then
//! upgrades and hands the socket to `ws::session`.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::current_user;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::outbox::{Outbox, OutboxBody};

/// `GET /ws`.
pub async fn get_ws(
    req: HttpRequest,
    body: web::Payload,
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
    let permit = state.connections.clone().try_acquire_owned().map_err(|_| {
        state.metrics.rejected_connections.inc();
        ApiError::AtCapacity("this instance is at MAX_CONNECTIONS")
    })?;
    let (response, ws_session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    // Room for a full replay on top of the live queue.
    let limits = &state.settings.limits;
    let outbox = Outbox::new(limits.outbound_queue + limits.history_len.get() + 16);
    let response = response
        .map_body(|_, control| OutboxBody::new(control, outbox.clone()))
        .map_into_boxed_body();
    let max = state.settings.limits.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    actix_web::rt::spawn(crate::ws::session::run(
        state.clone(),
        user,
        ws_session,
        stream,
        outbox,
        permit,
    ));
    Ok(response)
}
