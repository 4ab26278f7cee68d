//! The room protocol of `GET /websocket?room=NAME` (SPEC §9) on the socket
//! layer: on open the room's config and the viewer's profile (as the Pact
//! server sends them), then one client frame at a time. Bad frames get an
//! `error` frame and change nothing; the connection stays open. The
//! streamer of the channel is admin from the start; others become admin
//! with `authenticate`. Dropping the protocol (however the connection
//! ends) leaves the room: subscriptions and relays here at once, presence
//! in the store right after.

use std::sync::Arc;

use serde::Serialize;

use crate::state::AppState;
use crate::ws::conn::Conn;
use crate::ws::session::Protocol;

use super::event::RoomEvent;
use super::frame::{self, ClientFrame, Envelope, ErrorCode, RoomError};
use super::profile::{MemberView, Properties, Viewer};
use super::signing;
use super::{MAX_SUBSCRIPTIONS, Room, Rooms, Ticket};

/// Close code for a client's own `close` frame.
const CLOSE_NORMAL: u16 = 1000;

/// One room connection's protocol state (boxed: it lives in the
/// connection's task).
pub struct RoomSocket(Box<Inner>);

struct Inner {
    rooms: Arc<Rooms>,
    room: Arc<Room>,
    /// Holds the room open here; taken by `Drop`'s leave.
    ticket: Option<Ticket>,
    viewer: Viewer,
    /// The room name as written in the URL (`authenticate` signs it).
    url_name: String,
    admin: bool,
    /// The viewer's properties as joined, until `open` hands them to the room.
    props: Option<Properties>,
    /// Set by `open`.
    conn: Option<Arc<Conn>>,
}

impl RoomSocket {
    pub(super) fn new(
        rooms: Arc<Rooms>,
        ticket: Ticket,
        viewer: Viewer,
        url_name: String,
        admin: bool,
        props: Properties,
    ) -> Self {
        Self(Box::new(Inner {
            rooms,
            room: ticket.room().clone(),
            ticket: Some(ticket),
            viewer,
            url_name,
            admin,
            props: Some(props),
            conn: None,
        }))
    }

    /// The room.
    pub(super) fn room(&self) -> &Arc<Room> {
        &self.0.room
    }
}

impl Inner {
    fn room(&self) -> &Arc<Room> {
        &self.room
    }

    fn profile_frame(&self) -> String {
        let props = self.room().props(&self.viewer.id);
        frame::write(
            "profile",
            MemberView::private(&self.viewer, &props, self.admin),
        )
    }

    fn push(&self, conn: &Conn, ty: &str, text: &str) {
        // On overflow the session closes with 4008.
        let _ = conn.push_text(text);
        self.rooms.metrics().out(ty, 1);
    }

    fn require_admin(&self, what: &str) -> Result<(), RoomError> {
        if self.admin {
            Ok(())
        } else {
            Err(RoomError::new(
                ErrorCode::Forbidden,
                format!("{what} is for room admins: the streamer, or after authenticate"),
            ))
        }
    }

    async fn handle(&mut self, conn: &Arc<Conn>, env: &Envelope<'_>) -> Result<(), RoomError> {
        let frame = env.frame()?;
        let rooms = self.rooms.clone();
        let room = self.room().clone();
        let channel = room.channel();
        let store = rooms.store();
        match frame {
            ClientFrame::Login(patch) => {
                let done = store.login(channel, &self.viewer.id, &patch).await?;
                rooms.deliver(&room, done.events);
                let (props, v) = done.value?;
                room.note_props(&self.viewer.id, props, v);
                self.push(conn, "profile", &self.profile_frame());
            }
            ClientFrame::Profile => self.push(conn, "profile", &self.profile_frame()),
            ClientFrame::Subscribe(interest) => {
                room.subscribe(conn.id(), &interest, MAX_SUBSCRIPTIONS)?;
                rooms
                    .snapshot(&room, conn, interest.kind(), interest.id())
                    .await?;
            }
            ClientFrame::Unsubscribe(interest) => room.unsubscribe(conn.id(), &interest),
            ClientFrame::Chat(message) => {
                #[derive(Serialize)]
                struct Chat<'a> {
                    message: &'a str,
                    user: MemberView<'a>,
                }
                let props = room.props(&self.viewer.id);
                let user = MemberView::public(&self.viewer, &props);
                let text = frame::write(
                    "chat",
                    Chat {
                        message: &message,
                        user,
                    },
                );
                rooms.send(&room, RoomEvent::Chat { frame: text }).await?;
            }
            ClientFrame::Vote { kind, id, answer } => {
                let done = store
                    .vote(channel, kind, &id, &self.viewer.id, &answer)
                    .await?;
                rooms.deliver(&room, done.events);
                done.value?;
            }
            ClientFrame::Counter { id, value } => {
                let done = store.add(channel, &id, value).await?;
                rooms.deliver(&room, done.events);
                done.value?;
            }
            ClientFrame::Config(value) => {
                self.require_admin("config")?;
                let done = store.set_config(channel, &value).await?;
                rooms.deliver(&room, done.events);
            }
            ClientFrame::Broadcast { event, data, to } => {
                self.require_admin("broadcast")?;
                let text = frame::write_raw(&event, &data);
                rooms
                    .send(&room, RoomEvent::Broadcast { to, frame: text })
                    .await?;
            }
            ClientFrame::Authenticate {
                ts_text,
                ts_ms,
                key,
            } => {
                let now = chrono::Utc::now().timestamp_millis();
                signing::verify(
                    rooms.signing_key(),
                    &self.url_name,
                    &ts_text,
                    ts_ms,
                    &key,
                    now,
                )
                .map_err(|e| RoomError::new(ErrorCode::Unauthorized, e.to_string()))?;
                self.admin = true;
                self.push(conn, "profile", &self.profile_frame());
            }
            ClientFrame::Relay(event) => {
                self.require_admin("relay")?;
                if room.add_relay(conn.id(), &event) {
                    match store.relay(channel, &event, 1).await {
                        Ok(done) => rooms.deliver(&room, done.events),
                        Err(e) => {
                            room.remove_relays(conn.id(), Some(&event));
                            return Err(e.into());
                        }
                    }
                }
            }
            ClientFrame::DeleteRelay(event) => {
                self.require_admin("deleteRelay")?;
                for gone in room.remove_relays(conn.id(), event.as_deref()) {
                    match store.relay(channel, &gone, -1).await {
                        Ok(done) => rooms.deliver(&room, done.events),
                        // The next heartbeat re-syncs this instance's relays.
                        Err(_) => room.mark_dirty(),
                    }
                }
            }
            ClientFrame::Ping => self.push(conn, "pong", &frame::pong()),
            ClientFrame::Close => conn.end(CLOSE_NORMAL),
            ClientFrame::Other => {
                if !room.is_relayed(env.ty()) {
                    return Err(RoomError::new(
                        ErrorCode::UnknownType,
                        format!(
                            "unknown type {:?}: not a room frame, and no admin relays it",
                            env.ty()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Relays the frame to the admins relaying its type (SPEC §9 `relay`),
    /// with the sender's full profile. `authenticate` is never relayed: its
    /// key is the sender's secret.
    async fn relay(&self, env: &Envelope<'_>) -> Result<(), RoomError> {
        let ty = env.ty();
        let room = self.room();
        if ty == "authenticate" || !room.is_relayed(ty) {
            return Ok(());
        }
        #[derive(Serialize)]
        struct Relayed<'a> {
            #[serde(rename = "type")]
            ty: &'a str,
            data: &'a serde_json::value::RawValue,
            user: MemberView<'a>,
        }
        let props = room.props(&self.viewer.id);
        let null = serde_json::value::RawValue::NULL;
        let text = frame::write(
            &format!("relay:{ty}"),
            Relayed {
                ty,
                data: env.data.unwrap_or(null),
                user: MemberView::private(&self.viewer, &props, self.admin),
            },
        );
        let event = RoomEvent::Relay {
            event: ty.to_owned(),
            frame: text,
        };
        self.rooms.send(room, event).await?;
        Ok(())
    }
}

impl From<crate::broker::BrokerError> for RoomError {
    fn from(e: crate::broker::BrokerError) -> Self {
        tracing::warn!(error = %e, "room store unavailable");
        Self::new(
            ErrorCode::Unavailable,
            "the room is unavailable right now; retry shortly",
        )
    }
}

impl Drop for RoomSocket {
    fn drop(&mut self) {
        let Some(ticket) = self.0.ticket.take() else {
            return;
        };
        let relays = match &self.0.conn {
            Some(conn) => {
                conn.close();
                ticket.room().remove_member(conn.id())
            }
            None => Vec::new(),
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let rooms = self.0.rooms.clone();
        let viewer = self.0.viewer.id.clone();
        rt.spawn(async move {
            let room = ticket.room();
            let channel = room.channel();
            for event in relays {
                match rooms.store().relay(channel, &event, -1).await {
                    Ok(done) => rooms.deliver(room, done.events),
                    Err(_) => room.mark_dirty(),
                }
            }
            match rooms.store().leave(channel, &viewer).await {
                Ok(done) => rooms.deliver(room, done.events),
                Err(e) => {
                    // The next heartbeat re-syncs this instance's presence;
                    // if this instance dies first, others reap it.
                    room.mark_dirty();
                    tracing::warn!(error = %e, room = %channel, "room leave failed");
                }
            }
            drop(ticket);
        });
    }
}

impl Protocol for RoomSocket {
    fn open(&mut self, _state: &AppState, conn: &Arc<Conn>) {
        let inner = &mut self.0;
        inner.conn = Some(conn.clone());
        let props = inner.props.take().unwrap_or_default();
        inner.room().add_member(conn, &inner.viewer.id, props);
        inner.push(conn, "profile", &inner.profile_frame());
    }

    async fn text(&mut self, _state: &AppState, conn: &Arc<Conn>, text: &str) {
        let inner = &mut self.0;
        let env = match Envelope::parse(text) {
            Ok(env) => env,
            Err(e) => {
                inner.rooms.metrics().received("other");
                inner.push(conn, "error", &e.to_frame());
                return;
            }
        };
        inner.rooms.metrics().received(env.ty());
        let result = match inner.handle(conn, &env).await {
            Ok(()) => inner.relay(&env).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            inner.push(conn, "error", &e.to_frame());
        }
    }

    fn rate_limited(&self, limit: usize) -> String {
        self.0.rooms.metrics().out("error", 1);
        frame::error(
            ErrorCode::RateLimited,
            &format!("more than {limit} frames a second: this one was dropped"),
        )
    }
}
