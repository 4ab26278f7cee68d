//! The HTTP server's upgrade hook. actix-http hands every `Connection:
//! Upgrade` request here together with its socket. The request still goes
//! through the application (sessions, the route's checks, error bodies);
//! when a WebSocket route accepts it, its response carries a [`Handoff`]
//! and the socket leaves the HTTP layer for `ws::session`, keeping neither actix-http's
//! per-connection buffers nor its dispatcher. Any other answer is written
//! out as is and the connection is closed.

use std::rc::Rc;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, Request, Response, StatusCode};
use actix_web::dev::Service;
use actix_web::rt::net::TcpStream;
use futures_util::SinkExt;

use super::handshake::Handoff;

/// Serves one upgrade request with the application service `app`.
///
/// # Errors
/// Never: a viewer that goes away while the answer is written is only logged.
pub async fn serve<S, B>(
    app: Rc<S>,
    req: Request,
    framed: Framed<TcpStream, Codec>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request>,
    S::Response: Into<Response<B>>,
    S::Error: Into<Response<BoxBody>>,
    B: MessageBody + 'static,
{
    let res: Response<BoxBody> = match app.call(req).await {
        Ok(res) => res.into().map_into_boxed_body(),
        Err(res) => res.into(),
    };
    if let Err(e) = answer(res, framed).await {
        tracing::debug!(error = %e, "upgrade answer not written");
    }
    Ok(())
}

/// Hands the socket over on a WebSocket route's 101; writes any other answer and ends.
async fn answer(
    res: Response<BoxBody>,
    mut framed: Framed<TcpStream, Codec>,
) -> std::io::Result<()> {
    let (mut head, body) = res.into_parts();
    if head.status() == StatusCode::SWITCHING_PROTOCOLS {
        let handoff = head.extensions_mut().remove::<Handoff>();
        if let Some(handoff) = handoff {
            framed.send(Message::Item((head, BodySize::None))).await?;
            let parts = framed.into_parts();
            handoff.start(parts.io, parts.read_buf);
            return Ok(());
        }
    }
    // Not upgraded: the answer (401, 403, 503, 404…) and then the end.
    head.head_mut().set_connection_type(ConnectionType::Close);
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "upgrade response body failed");
            return Ok(());
        }
    };
    let size = bytes.size();
    framed.send(Message::Item((head, size))).await?;
    if !bytes.is_empty() {
        framed.send(Message::Chunk(Some(bytes))).await?;
    }
    framed.send(Message::Chunk(None)).await?;
    Ok(())
}
