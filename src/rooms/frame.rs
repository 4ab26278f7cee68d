//! The Pact frame codec (SPEC §9): JSON `{"type", "data"}` in both
//! directions. Client frames are parsed here into typed values (a bad frame
//! is a [`RoomError`] naming the rule); server frames are written here, each
//! once, so that a fan-out sends the same text to every member. Pure: no
//! state, no I/O.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::amount::Amount;
use super::profile::Properties;

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 500;
/// Longest poll id, answer, counter id, event name or relay type, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest subscription (`kind:id`), in characters.
pub const MAX_INTEREST_CHARS: usize = 2 * MAX_NAME_CHARS + 1;
/// The counter a `counter` frame without an `id` changes (as Pact does).
pub const DEFAULT_COUNTER: &str = "default";

/// The error codes of SPEC §9, plus `unavailable` (the store could not be
/// reached; as `/ws` answers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Not JSON.
    BadJson,
    /// A type that is neither known nor relayed.
    UnknownType,
    /// A known type whose data breaks a rule.
    Invalid,
    /// An admin frame from a non-admin.
    Forbidden,
    /// A failed `authenticate`.
    Unauthorized,
    /// Over the rate limit.
    RateLimited,
    /// The store could not be reached; retry.
    Unavailable,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::UnknownType => "unknown_type",
            Self::Invalid => "invalid",
            Self::Forbidden => "forbidden",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A frame the server refuses: answered with an `error` frame, the
/// connection stays open and nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RoomError {
    /// The code sent.
    pub code: ErrorCode,
    /// What was wrong, for a human.
    pub message: String,
}

impl RoomError {
    /// An error with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An `invalid` error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }

    /// The `error` frame.
    pub fn to_frame(&self) -> String {
        error(self.code, &self.message)
    }
}

/// Polls that last, or ephemeral polls whose votes leave with the voter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollKind {
    /// `poll`.
    Poll,
    /// `ephemeralPoll`.
    Ephemeral,
}

impl PollKind {
    /// The frame type and subscription kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Ephemeral => "ephemeralPoll",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "poll" => Some(Self::Poll),
            "ephemeralPoll" => Some(Self::Ephemeral),
            _ => None,
        }
    }
}

/// A subscription: a kind (`chat`, `poll`, any event name) and optionally
/// one id of it (`poll:ID`). Split at the first `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interest {
    text: Box<str>,
    colon: Option<usize>,
}

impl Interest {
    /// Parses `kind` or `kind:id`.
    ///
    /// # Errors
    /// `invalid` for an empty kind or a name over [`MAX_INTEREST_CHARS`].
    pub fn parse(text: &str) -> Result<Self, RoomError> {
        if text.chars().count() > MAX_INTEREST_CHARS {
            return Err(RoomError::invalid(format!(
                "subscriptions are at most {MAX_INTEREST_CHARS} characters"
            )));
        }
        // `poll:` is `poll` (the Pact server reads an empty id as "all").
        let text = match text.find(':') {
            Some(c) if c + 1 == text.len() => &text[..c],
            _ => text,
        };
        let colon = text.find(':');
        if colon == Some(0) || text.is_empty() {
            return Err(RoomError::invalid(
                "a subscription names a kind: chat, poll:ID, …",
            ));
        }
        Ok(Self {
            text: text.into(),
            colon,
        })
    }

    /// The subscription as written (`poll:abc`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The kind (`poll`).
    pub fn kind(&self) -> &str {
        self.colon.map_or(&self.text, |c| &self.text[..c])
    }

    /// The id after the first `:`, if any.
    pub fn id(&self) -> Option<&str> {
        self.colon.map(|c| &self.text[c + 1..])
    }
}

/// A client frame as it arrived: its type and raw data.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// The frame type.
    #[serde(rename = "type", borrow)]
    pub ty: Option<Cow<'a, str>>,
    /// The data, exactly as sent (`None` when missing or `null`).
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// Parses the outer `{"type", "data"}`.
    ///
    /// # Errors
    /// `bad_json` for text that is not a JSON object, `invalid` without a
    /// string `type`.
    pub fn parse(text: &'a str) -> Result<Self, RoomError> {
        let env: Self = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                RoomError::invalid("frames are {\"type\": string, \"data\": …}")
            } else {
                RoomError::new(ErrorCode::BadJson, format!("not a JSON object: {e}"))
            }
        })?;
        if env.ty.as_deref().is_none_or(str::is_empty) {
            return Err(RoomError::invalid("frames need a string \"type\""));
        }
        Ok(env)
    }

    /// The frame type (non-empty after [`Envelope::parse`]).
    pub fn ty(&self) -> &str {
        self.ty.as_deref().unwrap_or("")
    }

    /// The data as JSON text (`null` when missing).
    pub fn data_text(&self) -> &str {
        self.data.map_or("null", RawValue::get)
    }

    /// The typed frame.
    ///
    /// # Errors
    /// `invalid` naming the rule the data breaks.
    pub fn frame(&self) -> Result<ClientFrame, RoomError> {
        let data = self.data;
        Ok(match self.ty() {
            "login" => ClientFrame::Login(Properties::parse_patch(data)?),
            "profile" => ClientFrame::Profile,
            "subscribe" => ClientFrame::Subscribe(Interest::parse(&string(data, "subscribe")?)?),
            "unsubscribe" => {
                ClientFrame::Unsubscribe(Interest::parse(&string(data, "unsubscribe")?)?)
            }
            "chat" => {
                let text = string(data, "chat")?;
                let chars = text.chars().count();
                if chars == 0 || chars > MAX_CHAT_CHARS {
                    return Err(RoomError::invalid(format!(
                        "chat messages are 1 to {MAX_CHAT_CHARS} characters"
                    )));
                }
                ClientFrame::Chat(text)
            }
            ty @ ("poll" | "ephemeralPoll") => {
                let kind = PollKind::parse(ty).unwrap_or(PollKind::Poll);
                let vote: VoteData = object(data, ty)?;
                ClientFrame::Vote {
                    kind,
                    id: name(vote.id, "id")?,
                    answer: name(vote.answer, "answer")?,
                }
            }
            "counter" => counter(data)?,
            "config" => ClientFrame::Config(string(data, "config")?),
            "broadcast" => {
                let b: BroadcastData = object(data, "broadcast")?;
                let event = match b.ty.as_deref() {
                    Some(t) if !t.is_empty() && t.chars().count() <= MAX_NAME_CHARS => t.to_owned(),
                    _ => {
                        return Err(RoomError::invalid(format!(
                            "broadcast needs a \"type\" of 1 to {MAX_NAME_CHARS} characters"
                        )));
                    }
                };
                let to = match b.to {
                    None => None,
                    Some(to) => Some(Interest::parse(&to)?),
                };
                ClientFrame::Broadcast {
                    event,
                    data: b
                        .data
                        .map_or_else(|| "null".to_owned(), |d| d.get().to_owned()),
                    to,
                }
            }
            "authenticate" => {
                let a: AuthData = object(data, "authenticate")?;
                let ts_text = a.ts.map(|t| scalar_text(t).to_owned()).unwrap_or_default();
                let ts_ms = ts_text
                    .parse::<i64>()
                    .map_err(|_| RoomError::invalid("ts is Unix time in milliseconds"))?;
                let key = a
                    .key
                    .ok_or_else(|| RoomError::invalid("authenticate needs a \"key\""))?;
                ClientFrame::Authenticate {
                    ts_text,
                    ts_ms,
                    key: key.into_owned(),
                }
            }
            "relay" => ClientFrame::Relay(event_name(&string(data, "relay")?)?),
            "deleteRelay" => ClientFrame::DeleteRelay(match data {
                None => None,
                Some(_) => Some(event_name(&string(data, "deleteRelay")?)?),
            }),
            "ping" => ClientFrame::Ping,
            "close" => ClientFrame::Close,
            _ => ClientFrame::Other,
        })
    }
}

/// What a client frame asks for.
#[derive(Debug)]
pub enum ClientFrame {
    /// Merge these properties into the viewer's profile.
    Login(Properties),
    /// Send the profile.
    Profile,
    /// Start receiving a kind (or one id of it).
    Subscribe(Interest),
    /// Stop receiving it.
    Unsubscribe(Interest),
    /// A chat message.
    Chat(String),
    /// A vote in a poll or an ephemeral poll.
    Vote {
        /// Which polls.
        kind: PollKind,
        /// The poll.
        id: String,
        /// The answer.
        answer: String,
    },
    /// Add to a counter.
    Counter {
        /// The counter.
        id: String,
        /// What to add.
        value: Amount,
    },
    /// Set the room's config (admin).
    Config(String),
    /// Send a frame to the room or to subscribers of `to` (admin).
    Broadcast {
        /// The frame type sent.
        event: String,
        /// The frame data as JSON text.
        data: String,
        /// Only subscribers of this.
        to: Option<Interest>,
    },
    /// Become admin.
    Authenticate {
        /// `ts` as sent (signed as text).
        ts_text: String,
        /// `ts` in milliseconds.
        ts_ms: i64,
        /// The hex key.
        key: String,
    },
    /// Receive viewers' frames of this type (admin).
    Relay(String),
    /// Stop relaying this type, or every type (admin).
    DeleteRelay(Option<String>),
    /// Answered with `pong` (Pact clients' keep-alive).
    Ping,
    /// Closes the connection normally (as the Pact server does).
    Close,
    /// Any other type: relayed when an admin relays it, else `unknown_type`.
    Other,
}

#[derive(Deserialize)]
struct VoteData<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    answer: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CounterData<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct BroadcastData<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AuthData<'a> {
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
}

fn string(data: Option<&RawValue>, ty: &str) -> Result<String, RoomError> {
    data.and_then(|d| serde_json::from_str::<String>(d.get()).ok())
        .ok_or_else(|| RoomError::invalid(format!("{ty} data is a string")))
}

fn object<'a, T: Deserialize<'a>>(data: Option<&'a RawValue>, ty: &str) -> Result<T, RoomError> {
    data.and_then(|d| serde_json::from_str::<T>(d.get()).ok())
        .ok_or_else(|| {
            RoomError::invalid(format!(
                "{ty} data is an object with the fields SPEC §9 names"
            ))
        })
}

/// A JSON string's content, or a number's text.
fn scalar(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Some(text.to_owned())
    } else {
        None
    }
}

/// The text of a string or number without quotes (for `ts`).
fn scalar_text(raw: &RawValue) -> &str {
    raw.get().trim_matches('"')
}

/// A poll id, answer or counter id: a string or number, 1 to
/// [`MAX_NAME_CHARS`] characters.
fn name(raw: Option<&RawValue>, field: &str) -> Result<String, RoomError> {
    raw.and_then(scalar)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_NAME_CHARS)
        .ok_or_else(|| {
            RoomError::invalid(format!(
                "{field} is a string or number of 1 to {MAX_NAME_CHARS} characters"
            ))
        })
}

fn event_name(s: &str) -> Result<String, RoomError> {
    if s.is_empty() || s.chars().count() > MAX_NAME_CHARS {
        return Err(RoomError::invalid(format!(
            "event names are 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(s.to_owned())
}

/// `counter`: `{id?, value?}`; no data at all adds 1 to `default`, as the
/// Pact server does.
fn counter(data: Option<&RawValue>) -> Result<ClientFrame, RoomError> {
    let Some(raw) = data else {
        return Ok(ClientFrame::Counter {
            id: DEFAULT_COUNTER.to_owned(),
            value: Amount::ONE,
        });
    };
    let c: CounterData = serde_json::from_str(raw.get())
        .map_err(|_| RoomError::invalid("counter data is an object {\"id\", \"value\"}"))?;
    let id = match c.id {
        None => DEFAULT_COUNTER.to_owned(),
        Some(_) => name(c.id, "id")?,
    };
    let value = match c.value {
        None => Amount::ONE,
        Some(v) => {
            let text = scalar(v).ok_or_else(|| {
                RoomError::invalid(
                    "counter values are numbers or decimal strings such as \"17.75\"",
                )
            })?;
            Amount::parse(&text).map_err(|e| RoomError::invalid(e.to_string()))?
        }
    };
    Ok(ClientFrame::Counter { id, value })
}

#[derive(Serialize)]
struct Out<'a, T: Serialize> {
    #[serde(rename = "type")]
    ty: &'a str,
    data: T,
}

/// `{"type": ty, "data": data}` as text.
pub fn write<T: Serialize>(ty: &str, data: T) -> String {
    serde_json::to_string(&Out { ty, data }).unwrap_or_default()
}

/// `{"type": ty, "data": <raw JSON>}`: `data_json` is valid JSON text.
pub fn write_raw(ty: &str, data_json: &str) -> String {
    match RawValue::from_string(data_json.to_owned()) {
        Ok(raw) => write(ty, raw),
        Err(_) => write(ty, ()),
    }
}

/// `{"type":"error","data":{"code","message"}}`.
pub fn error(code: ErrorCode, message: &str) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        code: &'a str,
        message: &'a str,
    }
    write(
        "error",
        Data {
            code: code.as_str(),
            message,
        },
    )
}

/// `{"type":"config","data":"…"}`.
pub fn config(value: &str) -> String {
    write("config", value)
}

/// `{"type":"presence","data":{"count"}}`.
pub fn presence(count: u64) -> String {
    #[derive(Serialize)]
    struct Data {
        count: u64,
    }
    write("presence", Data { count })
}

/// `{"type":"counter","data":{"id","value"}}` with the value as a decimal string.
pub fn counter_value(id: &str, value: &str) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        id: &'a str,
        value: &'a str,
    }
    write("counter", Data { id, value })
}

/// `{"type":"poll"|"ephemeralPoll","data":{"id","stats"}}`.
pub fn poll_stats<S: Serialize>(kind: PollKind, id: &str, stats: &S) -> String {
    #[derive(Serialize)]
    struct Data<'a, S: Serialize> {
        id: &'a str,
        stats: &'a S,
    }
    write(kind.as_str(), Data { id, stats })
}

/// `{"type":"pong"}`.
pub fn pong() -> String {
    "{\"type\":\"pong\"}".to_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn parse(text: &str) -> Result<ClientFrame, RoomError> {
        Envelope::parse(text)?.frame()
    }

    fn code(text: &str) -> ErrorCode {
        parse(text).unwrap_err().code
    }

    #[test]
    fn every_known_type_parses() {
        assert!(matches!(
            parse(r#"{"type":"profile"}"#),
            Ok(ClientFrame::Profile)
        ));
        assert!(matches!(
            parse(r#"{"type":"login","data":{"name":"x","_secret":1}}"#),
            Ok(ClientFrame::Login(_))
        ));
        match parse(r#"{"type":"subscribe","data":"poll:fav:color"}"#) {
            Ok(ClientFrame::Subscribe(i)) => {
                assert_eq!(i.kind(), "poll");
                assert_eq!(i.id(), Some("fav:color"));
            }
            other => panic!("{other:?}"),
        }
        match parse(r#"{"type":"ephemeralPoll","data":{"id":7,"answer":"Red"}}"#) {
            Ok(ClientFrame::Vote { kind, id, answer }) => {
                assert_eq!(
                    (kind, id.as_str(), answer.as_str()),
                    (PollKind::Ephemeral, "7", "Red")
                );
            }
            other => panic!("{other:?}"),
        }
        match parse(r#"{"type":"counter","data":{"id":"order_subtotals","value":17.75}}"#) {
            Ok(ClientFrame::Counter { id, value }) => {
                assert_eq!(
                    (id.as_str(), value.to_string().as_str()),
                    ("order_subtotals", "17.75")
                );
            }
            other => panic!("{other:?}"),
        }
        match parse(
            r#"{"type":"broadcast","data":{"to":"weather","type":"forecast","data":[1,"a"]}}"#,
        ) {
            Ok(ClientFrame::Broadcast { event, data, to }) => {
                assert_eq!(event, "forecast");
                assert_eq!(data, r#"[1,"a"]"#);
                assert_eq!(to.unwrap().as_str(), "weather");
            }
            other => panic!("{other:?}"),
        }
        match parse(r#"{"type":"authenticate","data":{"ts":1631756233699,"key":"AB"}}"#) {
            Ok(ClientFrame::Authenticate {
                ts_text,
                ts_ms,
                key,
            }) => {
                assert_eq!(
                    (ts_text.as_str(), ts_ms, key.as_str()),
                    ("1631756233699", 1_631_756_233_699, "AB")
                );
            }
            other => panic!("{other:?}"),
        }
        match parse(r#"{"type":"authenticate","data":{"ts":"1631756233699","key":"ab"}}"#) {
            Ok(ClientFrame::Authenticate { ts_text, .. }) => assert_eq!(ts_text, "1631756233699"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse(r#"{"type":"relay","data":"report"}"#), Ok(ClientFrame::Relay(t)) if t == "report")
        );
        assert!(matches!(
            parse(r#"{"type":"deleteRelay"}"#),
            Ok(ClientFrame::DeleteRelay(None))
        ));
        assert!(
            matches!(parse(r#"{"type":"config","data":"{}"}"#), Ok(ClientFrame::Config(c)) if c == "{}")
        );
        assert!(matches!(
            parse(r#"{"type":"move","data":{"x":1}}"#),
            Ok(ClientFrame::Other)
        ));
    }

    #[test]
    fn a_counter_without_data_adds_one_to_default() {
        match parse(r#"{"type":"counter"}"#) {
            Ok(ClientFrame::Counter { id, value }) => {
                assert_eq!((id.as_str(), value), (DEFAULT_COUNTER, Amount::ONE));
            }
            other => panic!("{other:?}"),
        }
        match parse(r#"{"type":"counter","data":{"id":"x","value":"-15.14"}}"#) {
            Ok(ClientFrame::Counter { value, .. }) => assert_eq!(value.to_string(), "-15.14"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_frames_name_their_problem() {
        assert_eq!(code("{nope"), ErrorCode::BadJson);
        assert_eq!(code(""), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::Invalid);
        assert_eq!(code(r#"{"data":1}"#), ErrorCode::Invalid);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::Invalid);
        assert_eq!(code(r#"{"type":"chat","data":""}"#), ErrorCode::Invalid);
        assert_eq!(
            code(&json!({"type":"chat","data":"é".repeat(501)}).to_string()),
            ErrorCode::Invalid
        );
        assert!(parse(&json!({"type":"chat","data":"é".repeat(500)}).to_string()).is_ok());
        assert_eq!(
            code(r#"{"type":"chat","data":{"a":1}}"#),
            ErrorCode::Invalid
        );
        assert_eq!(
            code(r#"{"type":"counter","data":{"id":"x","value":"abc"}}"#),
            ErrorCode::Invalid
        );
        assert_eq!(
            code(r#"{"type":"counter","data":{"id":"x","value":true}}"#),
            ErrorCode::Invalid
        );
        assert_eq!(
            code(r#"{"type":"poll","data":{"id":"x"}}"#),
            ErrorCode::Invalid
        );
        assert_eq!(
            code(r#"{"type":"poll","data":{"id":"","answer":"a"}}"#),
            ErrorCode::Invalid
        );
        assert_eq!(
            code(r#"{"type":"subscribe","data":":x"}"#),
            ErrorCode::Invalid
        );
        assert_eq!(code(r#"{"type":"subscribe"}"#), ErrorCode::Invalid);
        assert_eq!(
            code(r#"{"type":"authenticate","data":{"ts":"soon","key":"ab"}}"#),
            ErrorCode::Invalid
        );
        assert_eq!(
            code(r#"{"type":"broadcast","data":{"data":1}}"#),
            ErrorCode::Invalid
        );
        assert_eq!(
            code(r#"{"type":"login","data":"name"}"#),
            ErrorCode::Invalid
        );
    }

    #[test]
    fn server_frames_are_type_and_data() {
        let v: Value = serde_json::from_str(&presence(3)).unwrap();
        assert_eq!(v, json!({"type":"presence","data":{"count":3}}));
        let v: Value = serde_json::from_str(&counter_value("c", "0.3")).unwrap();
        assert_eq!(v, json!({"type":"counter","data":{"id":"c","value":"0.3"}}));
        let v: Value = serde_json::from_str(&error(ErrorCode::Forbidden, "admins only")).unwrap();
        assert_eq!(
            v,
            json!({"type":"error","data":{"code":"forbidden","message":"admins only"}})
        );
        let v: Value = serde_json::from_str(&write_raw("whatsup", r#"[1,2,"abc"]"#)).unwrap();
        assert_eq!(v, json!({"type":"whatsup","data":[1,2,"abc"]}));
        let v: Value = serde_json::from_str(&config("{\"a\":1}")).unwrap();
        assert_eq!(v, json!({"type":"config","data":"{\"a\":1}"}));
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errors_without_panicking(s in "\\PC{0,200}") {
            if let Ok(env) = Envelope::parse(&s) {
                let _ = env.frame();
            }
        }

        #[test]
        fn any_typed_object_parses_or_errors(ty in "[a-zA-Z]{1,12}", data in "\\PC{0,40}") {
            let text = format!("{{\"type\":{},\"data\":{}}}", json!(ty), json!(data));
            let env = Envelope::parse(&text).unwrap();
            prop_assert_eq!(env.ty(), ty.as_str());
            let _ = env.frame();
        }

        #[test]
        fn interests_split_at_the_first_colon(kind in "[a-z]{1,10}", id in "[a-z:]{1,10}") {
            let i = Interest::parse(&format!("{kind}:{id}")).unwrap();
            prop_assert_eq!(i.kind(), kind.as_str());
            prop_assert_eq!(i.id(), Some(id.as_str()));
        }
    }
}
