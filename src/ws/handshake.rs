//! Accepting a WebSocket handshake, for any protocol: the `Origin` rule
//! (SPEC §4: `PUBLIC_URL`'s origin when a browser sends one), the
//! `MAX_CONNECTIONS` cap shared by every socket (503), and the 101 answer
//! carrying a [`Handoff`] that the server's upgrade hook (`ws::upgrade`)
//! uses to start the connection's task on the raw socket.

use actix_web::rt::net::TcpStream;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use bytes::BytesMut;

use crate::error::ApiError;
use crate::state::AppState;

use super::session::{self, Protocol};

/// What an accepted handshake hands to the upgrade hook: it starts the
/// connection's task on the socket (and the bytes that came with the
/// request).
pub struct Handoff(Box<dyn FnOnce(TcpStream, BytesMut)>);

impl Handoff {
    /// Starts the connection's task on the current worker.
    pub fn start(self, io: TcpStream, early: BytesMut) {
        (self.0)(io, early);
    }
}

/// 403 unless the request's `Origin`, when it sends one, is `PUBLIC_URL`'s.
///
/// # Errors
/// [`ApiError::Forbidden`] naming the allowed origin.
pub fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) {
        let allowed = state.settings.allowed_origin();
        if origin.to_str().ok() != Some(allowed.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "WebSocket Origin must be {allowed}"
            )));
        }
    }
    Ok(())
}

/// Answers the handshake of `req` for a connection that will speak
/// `protocol`: 101 with the handoff, or 400 (not a WebSocket request) or
/// 503 (`MAX_CONNECTIONS` reached). Authentication and the `Origin` are
/// the caller's.
///
/// # Errors
/// [`ApiError`] with the status above.
pub fn accept<P: Protocol>(
    req: &HttpRequest,
    state: &Data<AppState>,
    protocol: P,
) -> Result<HttpResponse, ApiError> {
    let mut handshake = actix_http::ws::handshake(req.head())
        .map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    let permit = state.connections.clone().try_acquire_owned().map_err(|_| {
        state.metrics.rejected_connections.inc();
        ApiError::AtCapacity("this instance is at MAX_CONNECTIONS")
    })?;
    let state = state.clone();
    let handoff = Handoff(Box::new(move |io, early| {
        actix_web::rt::spawn(session::run(state, permit, protocol, io, early));
    }));
    let mut response = HttpResponse::from(handshake.finish()).map_into_boxed_body();
    response.extensions_mut().insert(handoff);
    Ok(response)
}
