//! [`RoomEvent`]: what happened in a room that members must hear about, and
//! its form on the wire between instances (Redis mode). In memory mode the
//! store hands events straight to the local room; in Redis mode they travel
//! on the room's topic (`broker::topics`): the store's Lua scripts publish
//! the stateful ones (config, poll stats, counter values, presence,
//! profiles, relay types) in the same step as the change, and chat,
//! broadcasts and relayed frames are published by the instance that
//! received them, as the finished frame, so that no other instance
//! serializes them again.
//!
//! Wire form: a JSON header (`{"k": kind, …}`), then, for events that
//! carry a finished frame, a newline and the frame.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::frame::{Interest, PollKind};
use super::profile::{Properties, ViewerId};

/// A poll's answers and their vote counts.
pub type Stats = BTreeMap<String, u64>;

/// Something members of a room must hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// The config changed (`v`: the room's version after the change).
    Config {
        /// Room version.
        v: u64,
        /// The new config.
        value: String,
    },
    /// A poll's stats changed.
    Poll {
        /// Room version.
        v: u64,
        /// Poll or ephemeral poll.
        kind: PollKind,
        /// The poll.
        id: String,
        /// Answer → votes.
        stats: Stats,
    },
    /// A counter's value changed.
    Counter {
        /// Room version.
        v: u64,
        /// The counter.
        id: String,
        /// The value, a decimal string.
        value: String,
    },
    /// The number of distinct viewers in the room changed.
    Presence {
        /// Room version.
        v: u64,
        /// Distinct viewers.
        count: u64,
    },
    /// A viewer's properties changed (instances refresh what chat shows).
    Profile {
        /// Room version.
        v: u64,
        /// Whose.
        viewer: ViewerId,
        /// All of them.
        props: Properties,
    },
    /// The set of event types some admin in the room relays changed.
    Relays {
        /// The types relayed anywhere in the room.
        types: Vec<String>,
    },
    /// A chat frame for `chat` subscribers.
    Chat {
        /// The finished frame.
        frame: String,
    },
    /// An admin's broadcast: to everyone, or to subscribers of `to`.
    Broadcast {
        /// Only subscribers of this.
        to: Option<Interest>,
        /// The finished frame.
        frame: String,
    },
    /// A viewer's frame for the admins relaying `event`.
    Relay {
        /// The relayed type.
        event: String,
        /// The finished `relay:*` frame.
        frame: String,
    },
}

/// The header of an event on the wire. `types` is a list, but Lua's cjson
/// writes an empty list as `{}`, so either is read.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stats: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    viewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    props: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    types: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
}

impl Header {
    fn new(k: &str) -> Self {
        Self {
            k: k.to_owned(),
            v: None,
            kind: None,
            id: None,
            stats: None,
            value: None,
            count: None,
            viewer: None,
            props: None,
            types: None,
            to: None,
            event: None,
        }
    }
}

/// Why a payload from the topic could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable room event: {0}")]
pub struct EventError(String);

fn missing(what: &str) -> EventError {
    EventError(format!("no {what}"))
}

impl RoomEvent {
    /// The wire form of an event this instance publishes (chat, broadcast,
    /// relay; the stateful ones come from the store's Lua, but are written
    /// the same way).
    pub fn encode(&self) -> String {
        let (header, frame) = match self {
            Self::Chat { frame } => (Header::new("chat"), Some(frame)),
            Self::Broadcast { to, frame } => {
                let mut h = Header::new("broadcast");
                h.to = to.as_ref().map(|t| t.as_str().to_owned());
                (h, Some(frame))
            }
            Self::Relay { event, frame } => {
                let mut h = Header::new("relay");
                h.event = Some(event.clone());
                (h, Some(frame))
            }
            Self::Config { v, value } => {
                let mut h = Header::new("config");
                h.v = Some(*v);
                h.value = Some(value.clone());
                (h, None)
            }
            Self::Poll { v, kind, id, stats } => {
                let mut h = Header::new("poll");
                h.v = Some(*v);
                h.kind = Some(kind.as_str().to_owned());
                h.id = Some(id.clone());
                h.stats = serde_json::to_value(stats).ok();
                (h, None)
            }
            Self::Counter { v, id, value } => {
                let mut h = Header::new("counter");
                h.v = Some(*v);
                h.id = Some(id.clone());
                h.value = Some(value.clone());
                (h, None)
            }
            Self::Presence { v, count } => {
                let mut h = Header::new("presence");
                h.v = Some(*v);
                h.count = Some(*count);
                (h, None)
            }
            Self::Profile { v, viewer, props } => {
                let mut h = Header::new("profile");
                h.v = Some(*v);
                h.viewer = Some(viewer.as_str().to_owned());
                h.props = Some(props.to_json());
                (h, None)
            }
            Self::Relays { types } => {
                let mut h = Header::new("relays");
                h.types = serde_json::to_value(types).ok();
                (h, None)
            }
        };
        let mut out = serde_json::to_string(&header).unwrap_or_default();
        if let Some(frame) = frame {
            out.push('\n');
            out.push_str(frame);
        }
        out
    }

    /// Reads an event from the topic.
    ///
    /// # Errors
    /// [`EventError`] for a payload this version cannot read.
    pub fn decode(payload: &[u8]) -> Result<Self, EventError> {
        let text = std::str::from_utf8(payload).map_err(|_| EventError("not UTF-8".into()))?;
        let (head, frame) = match text.split_once('\n') {
            Some((h, f)) => (h, Some(f.to_owned())),
            None => (text, None),
        };
        let h: Header = serde_json::from_str(head).map_err(|e| EventError(e.to_string()))?;
        let v = h.v.unwrap_or(0);
        Ok(match h.k.as_str() {
            "chat" => Self::Chat {
                frame: frame.ok_or_else(|| missing("frame"))?,
            },
            "broadcast" => Self::Broadcast {
                to: match h.to.as_deref() {
                    Some(t) => Some(Interest::parse(t).map_err(|e| EventError(e.message))?),
                    None => None,
                },
                frame: frame.ok_or_else(|| missing("frame"))?,
            },
            "relay" => Self::Relay {
                event: h.event.ok_or_else(|| missing("event"))?,
                frame: frame.ok_or_else(|| missing("frame"))?,
            },
            "config" => Self::Config {
                v,
                value: h.value.unwrap_or_default(),
            },
            "poll" => Self::Poll {
                v,
                kind: h
                    .kind
                    .as_deref()
                    .and_then(PollKind::parse)
                    .ok_or_else(|| missing("kind"))?,
                id: h.id.ok_or_else(|| missing("id"))?,
                stats: stats(h.stats)?,
            },
            "counter" => Self::Counter {
                v,
                id: h.id.ok_or_else(|| missing("id"))?,
                value: h.value.ok_or_else(|| missing("value"))?,
            },
            "presence" => Self::Presence {
                v,
                count: h.count.unwrap_or(0),
            },
            "profile" => Self::Profile {
                v,
                viewer: ViewerId::from_stored(&h.viewer.ok_or_else(|| missing("viewer"))?),
                props: Properties::from_json(&h.props.unwrap_or_default())
                    .map_err(|e| EventError(e.to_string()))?,
            },
            "relays" => Self::Relays {
                types: match h.types {
                    Some(serde_json::Value::Array(a)) => a
                        .into_iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                },
            },
            other => return Err(EventError(format!("unknown kind {other}"))),
        })
    }
}

/// Stats from JSON: an object of counts (cjson writes an empty one as `{}`
/// and may write a whole count as `3` or `3.0`).
fn stats(v: Option<serde_json::Value>) -> Result<Stats, EventError> {
    match v {
        None => Ok(Stats::new()),
        Some(serde_json::Value::Object(map)) => Ok(map
            .into_iter()
            .filter_map(|(k, n)| {
                let n = n.as_u64().or_else(|| n.as_f64().map(|f| f as u64))?;
                (n > 0).then_some((k, n))
            })
            .collect()),
        Some(serde_json::Value::Array(a)) if a.is_empty() => Ok(Stats::new()),
        Some(_) => Err(EventError("stats is not an object".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_wire() {
        let events = [
            RoomEvent::Chat {
                frame: r#"{"type":"chat","data":{"message":"a\nb"}}"#.into(),
            },
            RoomEvent::Broadcast {
                to: Some(Interest::parse("poll:x").unwrap()),
                frame: "{}".into(),
            },
            RoomEvent::Broadcast {
                to: None,
                frame: "{}".into(),
            },
            RoomEvent::Relay {
                event: "report".into(),
                frame: "{}".into(),
            },
            RoomEvent::Config {
                v: 3,
                value: "x\ny".into(),
            },
            RoomEvent::Poll {
                v: 4,
                kind: PollKind::Ephemeral,
                id: "fav".into(),
                stats: [("Red".to_owned(), 2)].into(),
            },
            RoomEvent::Counter {
                v: 5,
                id: "c".into(),
                value: "0.3".into(),
            },
            RoomEvent::Presence { v: 6, count: 2 },
            RoomEvent::Relays {
                types: vec!["report".into()],
            },
        ];
        for e in events {
            assert_eq!(RoomEvent::decode(e.encode().as_bytes()).unwrap(), e);
        }
    }

    #[test]
    fn what_lua_writes_is_read() {
        let e =
            RoomEvent::decode(br#"{"k":"poll","v":9,"kind":"poll","id":"p","stats":{}}"#).unwrap();
        assert_eq!(
            e,
            RoomEvent::Poll {
                v: 9,
                kind: PollKind::Poll,
                id: "p".into(),
                stats: Stats::new()
            }
        );
        let e = RoomEvent::decode(br#"{"k":"relays","types":{}}"#).unwrap();
        assert_eq!(e, RoomEvent::Relays { types: vec![] });
        assert!(RoomEvent::decode(b"{\"k\":\"nope\"}").is_err());
        assert!(RoomEvent::decode(b"not json").is_err());
    }
}
