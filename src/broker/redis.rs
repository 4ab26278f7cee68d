//! The Redis broker (SPEC §6): many instances act as one.
//!
//! Per channel a Redis stream `{prefix}:ch:{channel}` holds the history; its
//! entry ids are the message ids. A publish is one Lua script, `XADD … MAXLEN
//! ~ HISTORY_LEN` plus `PUBLISH {prefix}:ch:{channel} "<id> <body>"`, so every
//! instance hears every message in id order. Each instance holds one pub/sub
//! connection, owned by the listener task, with one `SUBSCRIBE` per channel
//! that has at least one local viewer (never one per viewer); the local
//! fan-out is the shared in-memory [`Hub`].
//!
//! Exactly-once to viewers that stay connected: the listener remembers, per
//! subscribed channel, the last id it delivered. A channel is first
//! subscribed, then caught up with `XRANGE` after that id, and only then is
//! it "synced"; pub/sub messages at or below the last delivered id are
//! duplicates of the catch-up and are dropped. After the pub/sub connection
//! breaks, the listener reconnects with backoff and repeats this for every
//! active channel, so what was published meanwhile arrives once.
//!
//! Commands (publish, history, claims, the health `PING`) go through a
//! reconnecting multiplexed [`ConnectionManager`], each under
//! `limits.broker_timeout`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Client, Script, Value};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Limits;
use crate::domain::{ChannelName, Envelope, MessageDraft, MessageId};
use crate::metrics::Metrics;

use super::claim::Lease;
use super::dedupe::ClaimState;
use super::hub::{ConnId, Hub, Subscriber};
use super::topics::{TopicListener, TopicWatch, Topics};
use super::{BrokerError, Replay};

/// XADD + PUBLISH in one step, so a message that is stored is also announced
/// (and the announcement carries the id Redis gave it).
const PUBLISH_SCRIPT: &str = r"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[2])
return id
";

/// `publish_once`: the same, unless the marker `KEYS[2]` says this key was
/// published to this channel already; then that id. One script, so a retry
/// after an ambiguous failure (the first ran in Redis, its answer was lost)
/// cannot publish twice. Returns `{id, 1}` when it published, `{id, 0}` not.
const PUBLISH_ONCE_SCRIPT: &str = r"
local seen = redis.call('GET', KEYS[2])
if seen then return {seen, 0} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[2])
redis.call('SET', KEYS[2], id, 'PX', ARGV[3])
return {id, 1}
";

/// Leases a free claim (`SET NX PX`), or returns what holds it.
const CLAIM_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
";

/// Frees a claim only if this attempt's lease still holds it.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Prefix of a leased claim's value (`lease:<token>`); anything else is the
/// value a completed claim holds.
const LEASE_PREFIX: &str = "lease:";
/// What versions before leases stored while processing: treated as a lease.
const LEGACY_PENDING: &str = "pending";
/// Entries read per `XRANGE` page when catching up or replaying.
const RANGE_PAGE: usize = 500;
/// How often the command connection is pinged for `/readyz`.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// `/readyz` is ready only if a `PING` succeeded this recently.
const READY_WINDOW: Duration = Duration::from_secs(3);
/// First and largest pause between pub/sub reconnect attempts.
/// The longest a publish waits for its message to reach this instance's
/// own viewers (it is stored by then).
const LOCAL_DELIVERY_LIMIT: Duration = Duration::from_secs(1);
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Redis key names, all under one prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    /// The stream (and pub/sub channel) of a channel.
    fn channel(&self, channel: &ChannelName) -> String {
        format!("{}:ch:{}", self.prefix, channel)
    }

    /// The channel named by a pub/sub channel name.
    fn channel_of(&self, pubsub_channel: &str) -> Option<ChannelName> {
        let rest = pubsub_channel.strip_prefix(self.prefix.as_str())?;
        let name = rest.strip_prefix(":ch:")?;
        ChannelName::parse(name).ok()
    }

    fn claim(&self, namespace: &str, key: &str) -> String {
        format!("{}:claim:{namespace}:{key}", self.prefix)
    }

    /// The marker of a `publish_once` key on a channel.
    fn published(&self, key: &str, channel: &ChannelName) -> String {
        format!("{}:pub:{key}:{channel}", self.prefix)
    }

    /// The pub/sub channel of a topic.
    fn topic(&self, topic: &str) -> String {
        format!("{}:t:{topic}", self.prefix)
    }

    /// The topic named by a pub/sub channel name.
    fn topic_of<'a>(&self, pubsub_channel: &'a str) -> Option<&'a str> {
        pubsub_channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":t:")
    }
}

/// A channel this instance listens to, as the listener task sees it.
#[derive(Debug, Default)]
struct Live {
    /// The last id delivered to local viewers (None: the stream was empty).
    last: Option<MessageId>,
    /// Subscribed on the current pub/sub connection and caught up.
    synced: bool,
}

/// State shared by the broker, its listener and its pinger.
#[derive(Debug)]
struct Shared {
    hub: Hub,
    /// Topics watched on this instance (`broker::topics`).
    topics: Arc<Topics>,
    /// Topics subscribed on the current pub/sub connection. Only the
    /// listener writes it.
    topics_synced: Mutex<HashSet<String>>,
    /// Channels with a Redis subscription. Only the listener writes it.
    /// Lock order: `live`, then a hub channel.
    live: Mutex<HashMap<ChannelName, Live>>,
    /// Wakes the listener to (un)subscribe after the hub changed.
    wake: Notify,
    /// Wakes publishers waiting for their message to reach this
    /// instance's viewers ([`RedisBroker::publish`]).
    delivered: Notify,
    /// Bumped whenever a channel becomes synced or the connection drops.
    synced: watch::Sender<u64>,
    /// The pub/sub connection is up and every active channel is synced.
    pubsub_up: AtomicBool,
    /// When a `PING` on the command connection last succeeded.
    last_pong: Mutex<Option<Instant>>,
    metrics: Metrics,
}

impl Shared {
    fn is_synced(&self, channel: &ChannelName) -> bool {
        self.live.lock().get(channel).is_some_and(|l| l.synced)
    }

    fn bump(&self) {
        self.synced.send_modify(|n| *n = n.wrapping_add(1));
        // A channel caught up or the connection broke: publishers waiting
        // for their message here look again.
        self.delivered.notify_waiters();
    }

    /// The pub/sub connection is gone: un-ready, and every channel must
    /// catch up from its stream when it is back.
    fn pubsub_down(&self) {
        self.pubsub_up.store(false, Ordering::Release);
        for live in self.live.lock().values_mut() {
            live.synced = false;
        }
        self.topics_synced.lock().clear();
        self.bump();
    }
}

/// The broker of one instance among many sharing a Redis.
pub struct RedisBroker {
    conn: ConnectionManager,
    keys: Keys,
    shared: Arc<Shared>,
    publish: Script,
    publish_once: Script,
    claim: Script,
    release: Script,
    /// Timeout of every Redis call.
    timeout: Duration,
    /// `MAXLEN ~` of each stream: at least this many are kept (SPEC §7.4).
    history_len: usize,
    /// Cancelled on drop: ends the listener and the pinger.
    stop: CancellationToken,
    /// The pub/sub listener, started by [`RedisBroker::start_listener`].
    listener: Listener,
    /// Whether a listener task is running.
    listening: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: show only the prefix.
        f.debug_struct("RedisBroker")
            .field("prefix", &self.keys.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn unavailable(e: &redis::RedisError) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

/// Runs `fut` under `limit`, mapping Redis errors.
async fn timed<T>(
    limit: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(&e)),
        Err(_) => Err(BrokerError::Timeout),
    }
}

/// A TTL in whole milliseconds, at least 1 (`PX 0` is an error).
pub(crate) fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The envelopes of an `XRANGE` / `XREVRANGE` reply, in reply order.
fn envelopes(reply: StreamRangeReply) -> Result<Vec<Envelope>, BrokerError> {
    let corrupt = |what: &str| BrokerError::Corrupt(format!("stream entry: {what}"));
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let id = MessageId::parse(&entry.id).map_err(|_| corrupt("bad id"))?;
            let body: String = entry.get("m").ok_or_else(|| corrupt("no `m` field"))?;
            Envelope::from_parts(id, &body).map_err(|e| corrupt(&e.to_string()))
        })
        .collect()
}

/// `XRANGE key start + COUNT n`, every page, oldest first. The stream is
/// capped by `MAXLEN ~`, so this is bounded.
async fn range_all(
    conn: &mut ConnectionManager,
    key: &str,
    start: String,
    limit: Duration,
) -> Result<Vec<Envelope>, BrokerError> {
    let mut out: Vec<Envelope> = Vec::new();
    let mut start = start;
    loop {
        let reply = timed(limit, conn.xrange_count(key, &start, "+", RANGE_PAGE)).await?;
        let page = envelopes(reply)?;
        let full = page.len() == RANGE_PAGE;
        if let Some(last) = page.last() {
            start = format!("({}", last.id());
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

impl RedisBroker {
    /// Connects to `url` lazily and starts the pinger; the pub/sub listener
    /// starts with [`RedisBroker::start_listener`]. If Redis is down, the
    /// broker starts un-ready and keeps reconnecting. Must be called inside a
    /// Tokio runtime.
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] when `url` is not a usable Redis URL (the
    /// message never contains the URL, which may hold a password).
    pub async fn connect(
        url: &str,
        prefix: &str,
        limits: &Limits,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self, BrokerError> {
        let client = Client::open(url).map_err(|e| {
            BrokerError::Unavailable(format!(
                "REDIS_URL is not a usable Redis URL ({:?})",
                e.kind()
            ))
        })?;
        let timeout = limits.broker_timeout;
        // Few, short retries per reconnect cycle: the pinger starts a new
        // cycle every second, so recovery stays within SPEC §7.16's 10 s.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| unavailable(&e))?;
        let (synced, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            hub: Hub::default(),
            topics: Arc::new(Topics::default()),
            topics_synced: Mutex::new(HashSet::new()),
            live: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            delivered: Notify::new(),
            synced,
            pubsub_up: AtomicBool::new(false),
            last_pong: Mutex::new(None),
            metrics,
        });
        let stop = shutdown.child_token();
        let keys = Keys {
            prefix: prefix.to_owned(),
        };
        let listener = Listener {
            known_topics: HashSet::new(),
            client,
            conn: conn.clone(),
            keys: keys.clone(),
            shared: shared.clone(),
            timeout,
            stop: stop.clone(),
        };
        let broker = Self {
            conn,
            keys,
            shared,
            publish: Script::new(PUBLISH_SCRIPT),
            publish_once: Script::new(PUBLISH_ONCE_SCRIPT),
            claim: Script::new(CLAIM_SCRIPT),
            release: Script::new(RELEASE_SCRIPT),
            timeout,
            history_len: limits.history_len.get(),
            stop,
            listener,
            listening: Arc::new(AtomicBool::new(false)),
        };
        if let Err(e) = broker.ping().await {
            tracing::warn!(error = %e, "Redis is unreachable at start: serving un-ready and reconnecting");
        }
        tokio::spawn(pinger(
            broker.conn.clone(),
            broker.shared.clone(),
            timeout,
            broker.stop.clone(),
        ));
        Ok(broker)
    }

    /// Starts the pub/sub listener on the calling thread's runtime, unless
    /// one is running. The server calls it from each worker as it starts:
    /// the first worker delivers, on the thread that also writes its
    /// viewers' sockets, and a worker that replaces a dead one starts it
    /// again if it died with it. Until it runs, nothing is delivered.
    pub fn start_listener(&self) {
        if self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        /// When the task ends or is dropped with its runtime: un-ready, and
        /// free for the next `start_listener`.
        struct Running(Arc<AtomicBool>, Arc<Shared>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.1.pubsub_down();
                self.0.store(false, Ordering::Release);
            }
        }
        let running = Running(self.listening.clone(), self.shared.clone());
        let listener = self.listener.clone();
        tokio::spawn(async move {
            let _running = running;
            listener.run().await;
        });
    }

    /// A clone of the command connection (sessions share it).
    pub fn commands(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let _: String = timed(self.timeout, redis::cmd("PING").query_async(&mut conn)).await?;
        *self.shared.last_pong.lock() = Some(Instant::now());
        Ok(())
    }

    /// Stores and announces a message; Redis assigns its id.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot take it; then nothing was announced.
    pub async fn publish(&self, draft: &MessageDraft) -> Result<Envelope, BrokerError> {
        let body = draft
            .to_body()
            .map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        let key = self.keys.channel(&draft.channel);
        let mut conn = self.conn.clone();
        let id: String = timed(
            self.timeout,
            self.publish
                .key(&key)
                .arg(self.history_len)
                .arg(&body)
                .invoke_async(&mut conn),
        )
        .await?;
        let id = MessageId::parse(&id).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        let env =
            Envelope::from_parts(id, &body).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        self.shared.metrics.messages_published.inc();
        // As in memory mode, the publish is over once this instance's own
        // viewers have it: a publisher then waits for the fan-out it causes
        // and cannot outrun it (issue 14). Stored already, so the wait is
        // bounded and its end is not an error.
        let _ = tokio::time::timeout(
            LOCAL_DELIVERY_LIMIT,
            self.delivered_here(&draft.channel, id),
        )
        .await;
        Ok(env)
    }

    /// Returns once this instance's subscription has handed `id` of
    /// `channel` to the local viewers, or at once when it does not listen
    /// to `channel` (no local viewer) or is not synced (it will catch up).
    async fn delivered_here(&self, channel: &ChannelName, id: MessageId) {
        loop {
            let mut delivered = std::pin::pin!(self.shared.delivered.notified());
            delivered.as_mut().enable();
            let waiting = self
                .shared
                .live
                .lock()
                .get(channel)
                .is_some_and(|l| l.synced && l.last.is_none_or(|last| last < id));
            if !waiting {
                return;
            }
            delivered.await;
        }
    }

    /// Registers `sub`, waits until this instance's Redis subscription of
    /// the channel is live and caught up, then reads the replay. Live
    /// messages up to the replay's last id reach `sub` too; the viewer
    /// skips them (no gap, no duplicate).
    ///
    /// # Errors
    /// [`BrokerError`] when the subscription or the history is unavailable;
    /// the caller unsubscribes.
    pub async fn subscribe(
        &self,
        channel: &ChannelName,
        since: Option<MessageId>,
        sub: Subscriber,
    ) -> Result<Replay, BrokerError> {
        let mut changes = self.shared.synced.subscribe();
        self.shared
            .hub
            .channel(channel)
            .lock()
            .add(sub, &self.shared.metrics);
        if !self.shared.is_synced(channel) {
            self.shared.wake.notify_one();
            let wait = async {
                while !self.shared.is_synced(channel) {
                    if changes.changed().await.is_err() {
                        return Err(BrokerError::Unavailable("listener stopped".into()));
                    }
                }
                Ok(())
            };
            tokio::time::timeout(self.timeout, wait)
                .await
                .map_err(|_| BrokerError::Timeout)??;
        }
        match since {
            None => Ok(Replay::default()),
            Some(since) => self.replay(channel, since).await,
        }
    }

    /// Everything retained after `since`; `gap` unless `since` is retained.
    async fn replay(&self, channel: &ChannelName, since: MessageId) -> Result<Replay, BrokerError> {
        let mut conn = self.conn.clone();
        let retained = range_all(
            &mut conn,
            &self.keys.channel(channel),
            since.to_string(),
            self.timeout,
        )
        .await?;
        Ok(super::replay_after(retained.into_iter(), since, usize::MAX))
    }

    /// Removes a viewer; the listener drops the Redis subscription when it
    /// was the channel's last local viewer.
    pub fn unsubscribe(&self, channel: &ChannelName, conn: ConnId) {
        if self
            .shared
            .hub
            .remove(channel, conn, false, &self.shared.metrics)
        {
            self.shared.wake.notify_one();
        }
    }

    /// Up to `limit` retained messages after `since` (or the newest), oldest first.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be read.
    pub async fn history(
        &self,
        channel: &ChannelName,
        since: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Envelope>, BrokerError> {
        let key = self.keys.channel(channel);
        let mut conn = self.conn.clone();
        let limit = limit.max(1);
        match since {
            Some(since) => {
                let start = format!("({since}");
                envelopes(timed(self.timeout, conn.xrange_count(&key, start, "+", limit)).await?)
            }
            None => {
                let reply =
                    timed(self.timeout, conn.xrevrange_count(&key, "+", "-", limit)).await?;
                let mut newest_first = envelopes(reply)?;
                newest_first.reverse();
                Ok(newest_first)
            }
        }
    }

    /// Leases `key` in `namespace` for `lease` if it is free (`CLAIM_SCRIPT`).
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be reached. A timed-out claim may
    /// still run in Redis later: its lease then runs out by itself.
    pub(crate) async fn claim(
        &self,
        namespace: &str,
        key: &str,
        lease: Duration,
    ) -> Result<ClaimState, BrokerError> {
        let token: u64 = rand::random();
        let mut conn = self.conn.clone();
        let held: Option<String> = timed(
            self.timeout,
            self.claim
                .key(self.keys.claim(namespace, key))
                .arg(format!("{LEASE_PREFIX}{token}"))
                .arg(millis(lease))
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(match held {
            None => ClaimState::New(token),
            Some(v) if v.starts_with(LEASE_PREFIX) || v == LEGACY_PENDING => ClaimState::InFlight,
            Some(v) => ClaimState::Done(v),
        })
    }

    /// `SET key value PX window`: the claim is done, whoever leases it now.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be reached.
    pub(crate) async fn complete(
        &self,
        lease: &Lease,
        value: &str,
        window: Duration,
    ) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let _: Value = timed(
            self.timeout,
            redis::cmd("SET")
                .arg(self.keys.claim(&lease.namespace, &lease.key))
                .arg(value)
                .arg("PX")
                .arg(millis(window))
                .query_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    /// Frees the claim if `lease` still holds it (`RELEASE_SCRIPT`), in a
    /// task of its own so that a dropped request can do it. A failure is
    /// logged: the lease then runs out by itself.
    pub(crate) fn release_detached(&self, lease: Lease) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut conn = self.conn.clone();
        let script = self.release.clone();
        let key = self.keys.claim(&lease.namespace, &lease.key);
        let (timeout, metrics) = (self.timeout, self.shared.metrics.clone());
        runtime.spawn(async move {
            let res: Result<i64, _> = timed(
                timeout,
                script
                    .key(key)
                    .arg(format!("{LEASE_PREFIX}{}", lease.token))
                    .invoke_async(&mut conn),
            )
            .await;
            if let Err(e) = res {
                metrics.broker_errors.inc();
                tracing::warn!(error = %e, namespace = lease.namespace, "claim not released; its lease runs out by itself");
            }
        });
    }

    /// Stores and announces a message unless `key` was published to its
    /// channel within `window` (`PUBLISH_ONCE_SCRIPT`); returns the id.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot take it (it may still have run).
    pub async fn publish_once(
        &self,
        draft: &MessageDraft,
        key: &str,
        window: Duration,
    ) -> Result<MessageId, BrokerError> {
        let body = draft
            .to_body()
            .map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let (id, published): (String, u8) = timed(
            self.timeout,
            self.publish_once
                .key(self.keys.channel(&draft.channel))
                .key(self.keys.published(key, &draft.channel))
                .arg(self.history_len)
                .arg(&body)
                .arg(millis(window))
                .invoke_async(&mut conn),
        )
        .await?;
        let id = MessageId::parse(&id).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        if published == 1 {
            self.shared.metrics.messages_published.inc();
        }
        // As in `publish`: over once this instance's viewers have it.
        let _ = tokio::time::timeout(
            LOCAL_DELIVERY_LIMIT,
            self.delivered_here(&draft.channel, id),
        )
        .await;
        Ok(id)
    }

    /// Adds `listener` to `topic` and waits until this instance's
    /// subscription of it is live, so that the caller can read the state
    /// the topic announces changes of without missing one.
    ///
    /// # Errors
    /// [`BrokerError`] when the subscription cannot be made in time; the
    /// listener is removed again.
    pub async fn watch_topic(
        &self,
        topic: &str,
        listener: Arc<dyn TopicListener>,
    ) -> Result<TopicWatch, BrokerError> {
        let mut changes = self.shared.synced.subscribe();
        let (id, _) = self.shared.topics.add(topic, listener);
        let watch = TopicWatch::new(self.shared.topics.clone(), topic, id);
        let synced = || self.shared.topics_synced.lock().contains(topic);
        if !synced() {
            let wait = async {
                while !synced() {
                    if changes.changed().await.is_err() {
                        return Err(BrokerError::Unavailable("listener stopped".into()));
                    }
                }
                Ok(())
            };
            tokio::time::timeout(self.timeout, wait)
                .await
                .map_err(|_| BrokerError::Timeout)??;
        }
        Ok(watch)
    }

    /// `PUBLISH {prefix}:t:{topic} payload`: every instance's listeners of
    /// `topic` get `payload`.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be reached.
    pub async fn publish_topic(&self, topic: &str, payload: &[u8]) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let _: i64 = timed(
            self.timeout,
            redis::cmd("PUBLISH")
                .arg(self.keys.topic(topic))
                .arg(payload)
                .query_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    /// The command connection, the key prefix and the call timeout, for
    /// features that keep their own state in Redis (alerts, rooms).
    pub fn store(&self) -> (ConnectionManager, &str, Duration) {
        (self.conn.clone(), &self.keys.prefix, self.timeout)
    }

    /// The pub/sub channel of `topic`, for a feature's Lua script that
    /// publishes on a topic in the same step as its change.
    pub fn topic_channel(&self, topic: &str) -> String {
        self.keys.topic(topic)
    }

    /// A recent successful `PING` and a live pub/sub connection.
    pub fn is_ready(&self) -> bool {
        let pong_recent = self
            .shared
            .last_pong
            .lock()
            .is_some_and(|t| t.elapsed() < READY_WINDOW);
        pong_recent && self.shared.pubsub_up.load(Ordering::Acquire)
    }
}

/// Pings the command connection every second (readiness, and it makes the
/// connection manager reconnect even while no request comes in).
async fn pinger(
    mut conn: ConnectionManager,
    shared: Arc<Shared>,
    timeout: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(PING_INTERVAL);
    let mut was_up = true;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let res: Result<String, _> = timed(
            timeout.min(PING_INTERVAL),
            redis::cmd("PING").query_async(&mut conn),
        )
        .await;
        match res {
            Ok(_) => {
                *shared.last_pong.lock() = Some(Instant::now());
                if !was_up {
                    tracing::info!("Redis reachable again");
                }
                was_up = true;
            }
            Err(e) => {
                if was_up {
                    shared.metrics.broker_errors.inc();
                    tracing::warn!(error = %e, "Redis PING failed: not ready");
                }
                was_up = false;
            }
        }
    }
}

/// The task that owns the pub/sub connection.
#[derive(Clone)]
struct Listener {
    /// Topics subscribed on some connection before (and still watched):
    /// subscribing one again means a gap, so its listeners resync.
    known_topics: HashSet<String>,
    client: Client,
    /// For catch-up reads.
    conn: ConnectionManager,
    keys: Keys,
    shared: Arc<Shared>,
    timeout: Duration,
    stop: CancellationToken,
}

impl Listener {
    async fn run(mut self) {
        let mut backoff = RECONNECT_MIN;
        loop {
            let started = Instant::now();
            let result = self.connection().await;
            self.shared.pubsub_down();
            match result {
                Ok(()) => return,
                Err(e) => {
                    self.shared.metrics.broker_errors.inc();
                    tracing::warn!(error = %e, "Redis pub/sub connection lost: reconnecting");
                }
            }
            if started.elapsed() > RECONNECT_MAX * 2 {
                backoff = RECONNECT_MIN;
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
    }

    /// One pub/sub connection's life. `Ok` only when stopped.
    async fn connection(&mut self) -> Result<(), BrokerError> {
        let pubsub = timed(self.timeout, self.client.get_async_pubsub()).await?;
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed: HashSet<ChannelName> = HashSet::new();
        let mut topics: HashSet<String> = HashSet::new();
        self.reconcile(&mut sink, &mut subscribed).await?;
        self.reconcile_topics(&mut sink, &mut topics).await?;
        self.shared.pubsub_up.store(true, Ordering::Release);
        self.shared.bump();
        tracing::info!(channels = subscribed.len(), "Redis pub/sub connected");
        let mut ping = tokio::time::interval(PING_INTERVAL);
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Ok(()),
                msg = stream.next() => match msg {
                    Some(msg) => self.on_message(&msg),
                    None => return Err(BrokerError::Unavailable("pub/sub connection closed".into())),
                },
                () = self.shared.wake.notified() => self.reconcile(&mut sink, &mut subscribed).await?,
                () = self.shared.topics.changed.notified() => self.reconcile_topics(&mut sink, &mut topics).await?,
                _ = ping.tick() => {
                    // Finds half-open connections that would never end the stream.
                    let _: Value = timed(self.timeout, sink.ping()).await?;
                }
            }
        }
    }

    /// Subscribes channels that gained their first local viewer (and catches
    /// them up), unsubscribes those that lost their last.
    async fn reconcile(
        &mut self,
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<ChannelName>,
    ) -> Result<(), BrokerError> {
        let active: HashSet<ChannelName> = self.shared.hub.active_channels().into_iter().collect();
        let gone: Vec<ChannelName> = {
            let mut live = self.shared.live.lock();
            let mut gone = Vec::new();
            // Checked under the `live` lock: a viewer added after this check
            // finds no live entry and waits for the next reconcile.
            live.retain(|channel, _| {
                let has_viewers = self
                    .shared
                    .hub
                    .existing(channel)
                    .is_some_and(|st| !st.lock().subscribers.is_empty());
                if !has_viewers {
                    gone.push(channel.clone());
                }
                has_viewers
            });
            gone
        };
        for channel in gone {
            if subscribed.remove(&channel) {
                timed(self.timeout, sink.unsubscribe(self.keys.channel(&channel))).await?;
            }
        }
        for channel in active {
            if subscribed.contains(&channel) {
                continue;
            }
            let key = self.keys.channel(&channel);
            // The last id delivered before a reconnect, or the stream's top
            // now (read before SUBSCRIBE, so nothing falls between).
            let known = self.shared.live.lock().get(&channel).map(|l| l.last);
            let last = match known {
                Some(last) => last,
                None => self.top_id(&key).await?,
            };
            timed(self.timeout, sink.subscribe(&key)).await?;
            subscribed.insert(channel.clone());
            let last = self.catch_up(&channel, &key, last).await?;
            self.shared
                .live
                .lock()
                .insert(channel, Live { last, synced: true });
            self.shared.bump();
        }
        Ok(())
    }

    /// Subscribes the topics that gained their first local listener,
    /// unsubscribes those that lost their last. A topic subscribed again
    /// after the connection broke is resynced: its messages of the gap are
    /// lost.
    async fn reconcile_topics(
        &mut self,
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<String>,
    ) -> Result<(), BrokerError> {
        let active: HashSet<String> = self.shared.topics.active().into_iter().collect();
        let gone: Vec<String> = subscribed.difference(&active).cloned().collect();
        for topic in gone {
            timed(self.timeout, sink.unsubscribe(self.keys.topic(&topic))).await?;
            subscribed.remove(&topic);
            self.shared.topics_synced.lock().remove(&topic);
            // A listener added while the UNSUBSCRIBE was under way found
            // the topic synced and took its watch for live: what was
            // published until the next SUBSCRIBE is lost to it, so that
            // SUBSCRIBE must resync it like any other gap.
            if !self.shared.topics.is_active(&topic) {
                self.known_topics.remove(&topic);
            }
        }
        for topic in active {
            if subscribed.contains(&topic) {
                continue;
            }
            timed(self.timeout, sink.subscribe(self.keys.topic(&topic))).await?;
            subscribed.insert(topic.clone());
            self.shared.topics_synced.lock().insert(topic.clone());
            self.shared.bump();
            if !self.known_topics.insert(topic.clone()) {
                tracing::info!(topic, "topic subscribed again: resync");
                self.shared.topics.resync(&topic);
            }
        }
        Ok(())
    }

    async fn top_id(&mut self, key: &str) -> Result<Option<MessageId>, BrokerError> {
        let reply = timed(self.timeout, self.conn.xrevrange_count(key, "+", "-", 1)).await?;
        Ok(envelopes(reply)?.first().map(Envelope::id))
    }

    /// Delivers what the stream holds after `last`; returns the new last id.
    async fn catch_up(
        &mut self,
        channel: &ChannelName,
        key: &str,
        last: Option<MessageId>,
    ) -> Result<Option<MessageId>, BrokerError> {
        // From `last` inclusive, to see whether it is still retained.
        let start = last.map_or_else(|| "-".to_owned(), |id| id.to_string());
        let mut missed = range_all(&mut self.conn, key, start, self.timeout).await?;
        if let Some(last) = last {
            if missed.first().map(Envelope::id) == Some(last) {
                missed.remove(0);
            } else {
                // Trimmed past it (MAXLEN ~ HISTORY_LEN) or Redis lost its data.
                tracing::warn!(%channel, %last, "catch-up may have missed messages: the last delivered id is gone from the stream");
            }
        }
        if missed.is_empty() {
            return Ok(last);
        }
        tracing::info!(%channel, count = missed.len(), "caught up from the stream");
        let new_last = missed.last().map(Envelope::id);
        if let Some(state) = self.shared.hub.existing(channel) {
            let mut st = state.lock();
            for env in &missed {
                st.deliver(env, &self.shared.metrics);
            }
        }
        Ok(new_last.or(last))
    }

    /// One pub/sub message: a topic's payload, or a channel's `<id> <body>`.
    fn on_message(&self, msg: &redis::Msg) {
        let name = msg.get_channel_name();
        if let Some(topic) = self.keys.topic_of(name) {
            self.shared.topics.deliver(topic, msg.get_payload_bytes());
            return;
        }
        let Some(channel) = self.keys.channel_of(name) else {
            return;
        };
        let payload = msg.get_payload_bytes();
        let parsed = std::str::from_utf8(payload)
            .ok()
            .and_then(|p| p.split_once(' '))
            .and_then(|(id, body)| {
                let id = MessageId::parse(id).ok()?;
                Envelope::from_parts(id, body).ok()
            });
        let Some(env) = parsed else {
            tracing::warn!(%channel, "unreadable pub/sub message dropped");
            return;
        };
        {
            let mut live = self.shared.live.lock();
            let Some(state) = live.get_mut(&channel) else {
                return;
            };
            // At or below the last delivered id: already caught up from the stream.
            if state.last.is_some_and(|last| env.id() <= last) {
                return;
            }
            state.last = Some(env.id());
        }
        if let Some(state) = self.shared.hub.existing(&channel) {
            state.lock().deliver(&env, &self.shared.metrics);
        }
        self.shared.delivered.notify_waiters();
    }
}
