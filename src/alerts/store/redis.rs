//! The Redis alert store: every instance shares it, and it survives
//! restarts of all of them. Each change is one Lua script (`lua/`), so it
//! is atomic across instances: exactly one alert is in flight per channel,
//! whichever instance enqueues, acks or skips. The script also PUBLISHes
//! the doorbell on the channel's topic, in the same step as the change, so
//! overlays on every instance hear every change in order. Keys and their
//! bounds: `docs/alerts.md`.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Script};

use crate::broker::{BrokerError, RedisBroker};
use crate::domain::ChannelName;

use super::super::alert::{Alert, RecentAlert};
use super::super::doorbell::{Doorbell, raw, topic};
use super::super::queue::{QueueState, RECENT_LEN};
use super::super::settings::Settings;
use super::{Enqueued, OverlayKey, SourceKey, fresh_key};

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// `HMGET paused flight settings`, the waiting list, the recent list.
type StateReply = (
    (Option<String>, Option<String>, Option<String>),
    Vec<String>,
    Vec<String>,
);
/// `HMGET rev flight paused keygen srev settings`.
type ViewReply = (
    Option<u64>,
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<u64>,
    Option<String>,
);

/// The scripts, loaded once per process (`EVALSHA`, `EVAL` on a miss).
struct Scripts {
    enqueue: Script,
    ack: Script,
    skip: Script,
    pause: Script,
    clear: Script,
    settings: Script,
    key: Script,
}

/// Alert state in Redis.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// `{prefix}:t:alerts:` — the broker's topic channels of alerts.
    topic_prefix: String,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn corrupt(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Corrupt(format!("alert state: {e}"))
}

async fn timed<T>(
    limit: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BrokerError::Unavailable(e.to_string())),
        Err(_) => Err(BrokerError::Timeout),
    }
}

impl RedisStore {
    /// A store on the broker's Redis connection and key prefix.
    pub fn new(broker: &RedisBroker) -> Self {
        let (conn, prefix, timeout) = broker.store();
        Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
            topic_prefix: broker.topic_channel(&topic("")),
            scripts: Scripts {
                enqueue: script!("enqueue.lua"),
                ack: script!("ack.lua"),
                skip: script!("skip.lua"),
                pause: script!("pause.lua"),
                clear: script!("clear.lua"),
                settings: script!("settings.lua"),
                key: script!("key.lua"),
            },
        }
    }

    /// The channel's base key.
    fn base(&self, channel: &ChannelName) -> String {
        format!("{}:al:{channel}", self.prefix)
    }

    async fn run<T: FromRedisValue>(
        &self,
        script: &Script,
        channel: &ChannelName,
        extra_key: Option<&str>,
        args: &[&str],
    ) -> Result<T, BrokerError> {
        let mut inv = script.key(self.base(channel));
        if let Some(k) = extra_key {
            inv.key(k);
        }
        inv.arg(format!("{}{channel}", self.topic_prefix));
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        timed(self.timeout, inv.invoke_async(&mut conn)).await
    }

    /// See [`super::AlertStore::enqueue`].
    pub async fn enqueue(
        &self,
        alert: &Alert,
        front: bool,
        source: Option<&SourceKey>,
        cap: usize,
    ) -> Result<Enqueued, BrokerError> {
        let json = serde_json::to_string(alert).map_err(corrupt)?;
        let src = source.map_or_else(String::new, |s| {
            format!("{}:src:{}", self.base(&alert.channel), s.key)
        });
        let ttl = source.map_or(1, |s| {
            u64::try_from(s.ttl.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        let reply: Vec<String> = self
            .run(
                &self.scripts.enqueue,
                &alert.channel,
                Some(&src),
                &[
                    &json,
                    &alert.id,
                    if front { "1" } else { "0" },
                    &cap.to_string(),
                    &ttl.to_string(),
                ],
            )
            .await?;
        match reply.as_slice() {
            [status, value] if status == "ok" => Ok(Enqueued::Queued {
                waiting: value.parse().unwrap_or(0),
            }),
            [status, id] if status == "dup" => Ok(Enqueued::Duplicate(id.clone())),
            [status, _] if status == "full" => Ok(Enqueued::Full),
            other => Err(corrupt(format!("enqueue answered {other:?}"))),
        }
    }

    /// See [`super::AlertStore::ack`].
    pub async fn ack(&self, channel: &ChannelName, id: &str) -> Result<bool, BrokerError> {
        let moved: i64 = self.run(&self.scripts.ack, channel, None, &[id]).await?;
        Ok(moved == 1)
    }

    /// See [`super::AlertStore::skip`].
    pub async fn skip(&self, channel: &ChannelName) -> Result<Option<String>, BrokerError> {
        let id: String = self.run(&self.scripts.skip, channel, None, &[]).await?;
        Ok((!id.is_empty()).then_some(id))
    }

    /// See [`super::AlertStore::set_paused`].
    pub async fn set_paused(&self, channel: &ChannelName, paused: bool) -> Result<(), BrokerError> {
        let _: i64 = self
            .run(
                &self.scripts.pause,
                channel,
                None,
                &[if paused { "1" } else { "0" }],
            )
            .await?;
        Ok(())
    }

    /// See [`super::AlertStore::clear`].
    pub async fn clear(&self, channel: &ChannelName) -> Result<usize, BrokerError> {
        let n: i64 = self.run(&self.scripts.clear, channel, None, &[]).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// See [`super::AlertStore::settings`].
    pub async fn settings(&self, channel: &ChannelName) -> Result<Settings, BrokerError> {
        let mut conn = self.conn.clone();
        let json: Option<String> = timed(
            self.timeout,
            redis::cmd("HGET")
                .arg(self.base(channel))
                .arg("settings")
                .query_async(&mut conn),
        )
        .await?;
        Ok(Settings::from_stored(json.as_deref()))
    }

    /// See [`super::AlertStore::put_settings`].
    pub async fn put_settings(
        &self,
        channel: &ChannelName,
        settings: &Settings,
    ) -> Result<(), BrokerError> {
        let _: i64 = self
            .run(
                &self.scripts.settings,
                channel,
                None,
                &[&settings.to_json()],
            )
            .await?;
        Ok(())
    }

    async fn run_key(
        &self,
        channel: &ChannelName,
        replace: bool,
    ) -> Result<OverlayKey, BrokerError> {
        let (key, generation): (String, u64) = self
            .run(
                &self.scripts.key,
                channel,
                None,
                &[&fresh_key(), if replace { "1" } else { "0" }],
            )
            .await?;
        Ok(OverlayKey { key, generation })
    }

    /// See [`super::AlertStore::key`].
    pub async fn key(&self, channel: &ChannelName) -> Result<Option<OverlayKey>, BrokerError> {
        let mut conn = self.conn.clone();
        let (key, generation): (Option<String>, Option<u64>) = timed(
            self.timeout,
            redis::cmd("HMGET")
                .arg(self.base(channel))
                .arg("key")
                .arg("keygen")
                .query_async(&mut conn),
        )
        .await?;
        Ok(key.map(|key| OverlayKey {
            key,
            generation: generation.unwrap_or(0),
        }))
    }

    /// See [`super::AlertStore::ensure_key`].
    pub async fn ensure_key(&self, channel: &ChannelName) -> Result<OverlayKey, BrokerError> {
        self.run_key(channel, false).await
    }

    /// See [`super::AlertStore::rotate_key`].
    pub async fn rotate_key(&self, channel: &ChannelName) -> Result<OverlayKey, BrokerError> {
        self.run_key(channel, true).await
    }

    /// See [`super::AlertStore::state`].
    pub async fn state(&self, channel: &ChannelName) -> Result<QueueState, BrokerError> {
        let base = self.base(channel);
        let mut conn = self.conn.clone();
        let ((paused, flight, settings), queued, recent): StateReply = timed(
            self.timeout,
            redis::pipe()
                .atomic()
                .cmd("HMGET")
                .arg(&base)
                .arg("paused")
                .arg("flight")
                .arg("settings")
                .cmd("LRANGE")
                .arg(format!("{base}:q"))
                .arg(0)
                .arg(-1)
                .cmd("LRANGE")
                .arg(format!("{base}:r"))
                .arg(0)
                .arg(RECENT_LEN - 1)
                .query_async(&mut conn),
        )
        .await?;
        let alert = |j: &String| serde_json::from_str::<Alert>(j).map_err(corrupt);
        Ok(QueueState {
            settings: Settings::from_stored(settings.as_deref()),
            paused: paused.as_deref() == Some("1"),
            in_flight: flight.as_ref().map(alert).transpose()?,
            queued: queued.iter().map(alert).collect::<Result<_, _>>()?,
            recent: recent
                .iter()
                .map(|j| serde_json::from_str::<RecentAlert>(j).map_err(corrupt))
                .collect::<Result<_, _>>()?,
        })
    }

    /// See [`super::AlertStore::recent_alert`].
    pub async fn recent_alert(
        &self,
        channel: &ChannelName,
        id: &str,
    ) -> Result<Option<Alert>, BrokerError> {
        let mut conn = self.conn.clone();
        let recent: Vec<String> = timed(
            self.timeout,
            redis::cmd("LRANGE")
                .arg(format!("{}:r", self.base(channel)))
                .arg(0)
                .arg(RECENT_LEN - 1)
                .query_async(&mut conn),
        )
        .await?;
        for j in recent {
            let r: RecentAlert = serde_json::from_str(&j).map_err(corrupt)?;
            if r.alert.id == id {
                return Ok(Some(r.alert));
            }
        }
        Ok(None)
    }

    /// See [`super::AlertStore::view`].
    pub async fn view(&self, channel: &ChannelName) -> Result<Doorbell, BrokerError> {
        let mut conn = self.conn.clone();
        let (rev, flight, paused, keygen, srev, settings): ViewReply = timed(
            self.timeout,
            redis::cmd("HMGET")
                .arg(self.base(channel))
                .arg("rev")
                .arg("flight")
                .arg("paused")
                .arg("keygen")
                .arg("srev")
                .arg("settings")
                .query_async(&mut conn),
        )
        .await?;
        Ok(Doorbell {
            rev: rev.unwrap_or(0),
            head: flight.and_then(raw),
            paused: paused.as_deref() == Some("1"),
            keygen: keygen.unwrap_or(0),
            srev: srev.unwrap_or(0),
            settings: raw(Settings::from_stored(settings.as_deref()).to_json()),
            skip: None,
        })
    }
}
