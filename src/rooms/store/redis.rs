//! The Redis room store: one room across every instance. Every change is
//! one Lua script (`lua/*.lua`, each prefixed with `lua/common.lua`) that
//! changes the state and publishes the event on the room's topic in the
//! same step, so an accepted change is always announced and instances hear
//! changes in the order Redis made them. Keys, their bounds and the
//! presence heartbeats are described in `docs/redis.md` ("Rooms").
//!
//! Presence survives a crash as follows: each instance counts its
//! connections per viewer in its own hash and renews its mark in the room
//! every [`HEARTBEAT`]; any instance's heartbeat reaps instances whose mark
//! is older than [`DEAD_AFTER`] (their connections, and with a viewer's
//! last one their ephemeral votes), all within 30 seconds of a crash.
//! Counters are exact decimals added on digit strings in Lua.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Script, Value};
use serde::Deserialize;

use crate::broker::{BrokerError, RedisBroker};
use crate::domain::ChannelName;
use crate::rooms::amount::{Amount, MAX_DIGITS};
use crate::rooms::event::Stats;
use crate::rooms::frame::{PollKind, RoomError};
use crate::rooms::profile::{Properties, ViewerId};
use crate::rooms::state::{MAX_ANSWERS, MAX_COUNTERS, MAX_POLLS, PROFILE_TTL};

use super::{Checked, Done, LocalPresence, Snapshot};

/// How often an instance renews its mark in each room it has members in.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// An instance whose mark is older than this is reaped (a crash is cleared
/// within `DEAD_AFTER + HEARTBEAT`, well within SPEC §9's 30 seconds).
pub const DEAD_AFTER: Duration = Duration::from_secs(10);
/// Compare-and-set attempts of a `login` before giving up.
const LOGIN_ATTEMPTS: usize = 8;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// The scripts, loaded once per process (`EVALSHA`, `EVAL` on a miss).
struct Scripts {
    join: Script,
    leave: Script,
    login: Script,
    vote: Script,
    counter: Script,
    config: Script,
    relay: Script,
    read: Script,
    heartbeat: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            join: script!("join.lua"),
            leave: script!("leave.lua"),
            login: script!("login.lua"),
            vote: script!("vote.lua"),
            counter: script!("counter.lua"),
            config: script!("config.lua"),
            relay: script!("relay.lua"),
            read: script!("read.lua"),
            heartbeat: script!("heartbeat.lua"),
        }
    }
}

/// Room state in Redis.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// The pub/sub channel of topic `room:<channel>` is this plus the topic.
    topic_base: String,
    /// This process, in presence and relay records.
    instance: String,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// What `read.lua` answers.
#[derive(Debug, Deserialize)]
struct Read {
    v: u64,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    items: Option<serde_json::Value>,
    #[serde(default)]
    types: Option<serde_json::Value>,
}

fn corrupt(what: impl std::fmt::Display) -> BrokerError {
    BrokerError::Corrupt(format!("room state: {what}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisStore {
    /// A store on `broker`'s command connection, for instance `instance`.
    pub fn new(broker: &RedisBroker, instance: &str) -> Self {
        let (conn, prefix, timeout) = broker.store();
        Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
            topic_base: broker.topic_channel(""),
            instance: instance.to_owned(),
            scripts: Scripts::new(),
        }
    }

    /// `{prefix}:room:{<channel>}`: every key of the room starts with it
    /// (and shares its hash tag).
    fn base(&self, room: &ChannelName) -> String {
        format!("{}:room:{{{}}}", self.prefix, room)
    }

    /// The pub/sub channel of the room's topic (`super::super::topic_of`).
    fn topic(&self, room: &ChannelName) -> String {
        format!("{}{}", self.topic_base, crate::rooms::topic_of(room))
    }

    /// Runs `script` for `room` with `args` after the topic.
    async fn run<T: FromRedisValue>(
        &self,
        script: &Script,
        room: &ChannelName,
        args: &[&str],
    ) -> Result<T, BrokerError> {
        let mut inv = script.key(self.base(room));
        inv.arg(self.topic(room));
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(BrokerError::Unavailable(e.to_string())),
            Err(_) => Err(BrokerError::Timeout),
        }
    }

    async fn read(
        &self,
        room: &ChannelName,
        what: &str,
        id: Option<&str>,
    ) -> Result<Read, BrokerError> {
        let json: String = self
            .run(&self.scripts.read, room, &[what, id.unwrap_or("")])
            .await?;
        serde_json::from_str(&json).map_err(corrupt)
    }

    /// See [`super::RoomStore::config`].
    pub async fn config(&self, room: &ChannelName) -> Result<Snapshot<String>, BrokerError> {
        let r = self.read(room, "config", None).await?;
        Ok(Snapshot {
            v: r.v,
            value: r.value.unwrap_or_default(),
        })
    }

    /// See [`super::RoomStore::set_config`].
    pub async fn set_config(
        &self,
        room: &ChannelName,
        value: &str,
    ) -> Result<Done<()>, BrokerError> {
        let _: i64 = self.run(&self.scripts.config, room, &[value]).await?;
        Ok(Done::new((), Vec::new()))
    }

    /// See [`super::RoomStore::join`].
    pub async fn join(
        &self,
        room: &ChannelName,
        viewer: &ViewerId,
    ) -> Result<Done<Properties>, BrokerError> {
        let ttl = millis(PROFILE_TTL).to_string();
        let props: String = self
            .run(
                &self.scripts.join,
                room,
                &[&self.instance, viewer.as_str(), &ttl],
            )
            .await?;
        let props = Properties::from_json(&props).map_err(corrupt)?;
        Ok(Done::new(props, Vec::new()))
    }

    /// See [`super::RoomStore::leave`].
    pub async fn leave(
        &self,
        room: &ChannelName,
        viewer: &ViewerId,
    ) -> Result<Done<()>, BrokerError> {
        let ttl = millis(PROFILE_TTL).to_string();
        let _: i64 = self
            .run(
                &self.scripts.leave,
                room,
                &[&self.instance, viewer.as_str(), &ttl],
            )
            .await?;
        Ok(Done::new((), Vec::new()))
    }

    /// See [`super::RoomStore::login`]: read, merge here (JSON values keep
    /// their exact text, which Lua's cjson would not), then compare-and-set.
    pub async fn login(
        &self,
        room: &ChannelName,
        viewer: &ViewerId,
        patch: &Properties,
    ) -> Result<Done<Checked<(Properties, u64)>>, BrokerError> {
        let key = format!("{}:prof:{}", self.base(room), viewer);
        let mut conn = self.conn.clone();
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let get = get.query_async::<Option<String>>(&mut conn);
        let mut current = match tokio::time::timeout(self.timeout, get).await {
            Ok(Ok(v)) => v.unwrap_or_default(),
            Ok(Err(e)) => return Err(BrokerError::Unavailable(e.to_string())),
            Err(_) => return Err(BrokerError::Timeout),
        };
        let ttl = millis(PROFILE_TTL).to_string();
        for _ in 0..LOGIN_ATTEMPTS {
            let props = Properties::from_json(&current).map_err(corrupt)?;
            let merged = match props.merged(patch) {
                Ok(m) => m,
                Err(e) => return Ok(Done::new(Err(e), Vec::new())),
            };
            let new = merged.to_json();
            let (ok, out): (i64, Value) = self
                .run(
                    &self.scripts.login,
                    room,
                    &[viewer.as_str(), &current, &new, &ttl],
                )
                .await?;
            if ok == 1 {
                let v = u64::from_redis_value(out).map_err(corrupt)?;
                return Ok(Done::new(Ok((merged, v)), Vec::new()));
            }
            current = String::from_redis_value(out).map_err(corrupt)?;
        }
        Err(BrokerError::Unavailable(
            "properties kept changing under this login".into(),
        ))
    }

    /// See [`super::RoomStore::vote`].
    pub async fn vote(
        &self,
        room: &ChannelName,
        kind: PollKind,
        id: &str,
        viewer: &ViewerId,
        answer: &str,
    ) -> Result<Done<Checked<()>>, BrokerError> {
        let (max_polls, max_answers) = (MAX_POLLS.to_string(), MAX_ANSWERS.to_string());
        let outcome: String = self
            .run(
                &self.scripts.vote,
                room,
                &[
                    kind.as_str(),
                    id,
                    viewer.as_str(),
                    answer,
                    &max_polls,
                    &max_answers,
                ],
            )
            .await?;
        let checked = match outcome.as_str() {
            "ok" | "same" => Ok(()),
            "absent" => Err(RoomError::invalid(
                "ephemeral votes are for viewers in the room",
            )),
            "answers" => Err(RoomError::invalid(format!(
                "a poll takes at most {MAX_ANSWERS} different answers"
            ))),
            other => return Err(corrupt(format!("vote answered {other}"))),
        };
        Ok(Done::new(checked, Vec::new()))
    }

    /// See [`super::RoomStore::add`].
    pub async fn add(
        &self,
        room: &ChannelName,
        id: &str,
        delta: Amount,
    ) -> Result<Done<Checked<Amount>>, BrokerError> {
        let (max_counters, max_digits) = (MAX_COUNTERS.to_string(), MAX_DIGITS.to_string());
        let delta = delta.to_string();
        let reply: Vec<String> = self
            .run(
                &self.scripts.counter,
                room,
                &[id, &delta, &max_counters, &max_digits],
            )
            .await?;
        let checked = match reply.as_slice() {
            [ok, value] if ok == "ok" => Ok(Amount::parse(value).map_err(corrupt)?),
            [range] if range == "range" => Err(RoomError::invalid(format!(
                "counter {id}: counter values have at most {MAX_DIGITS} digits"
            ))),
            other => return Err(corrupt(format!("counter answered {other:?}"))),
        };
        Ok(Done::new(checked, Vec::new()))
    }

    /// See [`super::RoomStore::polls`].
    pub async fn polls(
        &self,
        room: &ChannelName,
        kind: PollKind,
        id: Option<&str>,
    ) -> Result<Snapshot<Vec<(String, Stats)>>, BrokerError> {
        let r = self.read(room, kind.as_str(), id).await?;
        let items: BTreeMap<String, serde_json::Value> = items(r.items)?;
        let value = items
            .into_iter()
            .map(|(id, stats)| {
                let stats = match stats {
                    serde_json::Value::Object(m) => m
                        .into_iter()
                        .filter_map(|(k, n)| Some((k, n.as_f64()? as u64)))
                        .filter(|(_, n)| *n > 0)
                        .collect(),
                    _ => Stats::new(),
                };
                (id, stats)
            })
            .collect();
        Ok(Snapshot { v: r.v, value })
    }

    /// See [`super::RoomStore::counters`].
    pub async fn counters(
        &self,
        room: &ChannelName,
        id: Option<&str>,
    ) -> Result<Snapshot<Vec<(String, String)>>, BrokerError> {
        let r = self.read(room, "counter", id).await?;
        let items: BTreeMap<String, String> = items(r.items)?;
        Ok(Snapshot {
            v: r.v,
            value: items.into_iter().collect(),
        })
    }

    /// See [`super::RoomStore::presence`].
    pub async fn presence(&self, room: &ChannelName) -> Result<Snapshot<u64>, BrokerError> {
        let r = self.read(room, "presence", None).await?;
        Ok(Snapshot {
            v: r.v,
            value: r.count.unwrap_or(0),
        })
    }

    /// See [`super::RoomStore::relay`].
    pub async fn relay(
        &self,
        room: &ChannelName,
        event: &str,
        delta: i32,
    ) -> Result<Done<()>, BrokerError> {
        let delta = delta.to_string();
        let _: i64 = self
            .run(&self.scripts.relay, room, &[&self.instance, event, &delta])
            .await?;
        Ok(Done::new((), Vec::new()))
    }

    /// See [`super::RoomStore::relay_types`].
    pub async fn relay_types(&self, room: &ChannelName) -> Result<Vec<String>, BrokerError> {
        let r = self.read(room, "relays", None).await?;
        Ok(match r.types {
            Some(serde_json::Value::Array(a)) => a
                .into_iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
    }

    /// See [`super::RoomStore::heartbeat`].
    pub async fn heartbeat(
        &self,
        room: &ChannelName,
        sync: Option<&LocalPresence>,
    ) -> Result<bool, BrokerError> {
        let mut args: Vec<String> = vec![
            self.instance.clone(),
            millis(DEAD_AFTER).to_string(),
            millis(PROFILE_TTL).to_string(),
        ];
        match sync {
            None => args.push("-1".into()),
            Some(local) => {
                args.push(local.viewers.len().to_string());
                for (viewer, n) in &local.viewers {
                    args.push(viewer.as_str().to_owned());
                    args.push(n.to_string());
                }
                args.push(local.relays.len().to_string());
                for (event, n) in &local.relays {
                    args.push(event.clone());
                    args.push(n.to_string());
                }
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let missing: i64 = self.run(&self.scripts.heartbeat, room, &args).await?;
        Ok(missing == 1)
    }
}

/// `items` of a read: an object (cjson writes an empty one as `{}`, never `[]`).
fn items<T: serde::de::DeserializeOwned + Default>(
    v: Option<serde_json::Value>,
) -> Result<T, BrokerError> {
    match v {
        None => Ok(T::default()),
        Some(serde_json::Value::Array(a)) if a.is_empty() => Ok(T::default()),
        Some(v) => serde_json::from_value(v).map_err(corrupt),
    }
}
