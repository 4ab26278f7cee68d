//! Who holds which streamer's EventSub socket (SPEC §10, Redis mode:
//! exactly one instance at a time) and the holder's status for the others.
//!
//! A lease is `{prefix}:esws:lease:{channel}` = the holder's instance id,
//! with an expiry: taken with `SET NX PX`, renewed by the holder only while
//! it still holds it (a compare-and-`PEXPIRE` script), released by it only
//! (compare-and-`DEL`). A holder that dies stops renewing, the key expires,
//! and another instance's next look takes it. The holder's status is
//! `{prefix}:esws:status:{channel}` (JSON), expiring with three lease
//! lifetimes so that a dead holder's status disappears. In memory mode
//! there is one instance: it always holds every lease, and statuses are
//! only local.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::broker::{Broker, BrokerError};
use crate::domain::ChannelName;

use super::status::SocketStatus;

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Leases and statuses.
pub enum SocketStore {
    /// One instance: every lease is ours.
    Memory,
    /// Shared by every instance.
    Redis {
        /// The command connection.
        conn: ConnectionManager,
        /// Key prefix.
        prefix: String,
        /// Timeout of every call.
        timeout: Duration,
    },
}

impl std::fmt::Debug for SocketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "SocketStore::Memory",
            Self::Redis { .. } => "SocketStore::Redis",
        })
    }
}

impl SocketStore {
    /// In Redis when the broker is Redis.
    pub fn new(broker: &Broker) -> Self {
        match broker.redis() {
            Some(r) => {
                let (conn, prefix, timeout) = r.store();
                Self::Redis {
                    conn,
                    prefix: prefix.to_owned(),
                    timeout,
                }
            }
            None => Self::Memory,
        }
    }

    async fn query<T: redis::FromRedisValue>(
        conn: &ConnectionManager,
        timeout: Duration,
        cmd: &redis::Cmd,
    ) -> Result<T, BrokerError> {
        let mut conn = conn.clone();
        tokio::time::timeout(timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| BrokerError::Timeout)?
            .map_err(|e| BrokerError::Unavailable(e.to_string()))
    }

    /// Takes the lease of `channel` for `instance` if nobody holds it.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be asked.
    pub async fn acquire(
        &self,
        channel: &ChannelName,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        let Self::Redis {
            conn,
            prefix,
            timeout,
        } = self
        else {
            return Ok(true);
        };
        let ok: Option<String> = Self::query(
            conn,
            *timeout,
            redis::cmd("SET")
                .arg(format!("{prefix}:esws:lease:{channel}"))
                .arg(instance)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64),
        )
        .await?;
        Ok(ok.is_some())
    }

    /// Extends the lease while `instance` still holds it; false once it
    /// does not.
    ///
    /// # Errors
    /// [`BrokerError`] when Redis cannot be asked.
    pub async fn renew(
        &self,
        channel: &ChannelName,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        let Self::Redis {
            conn,
            prefix,
            timeout,
        } = self
        else {
            return Ok(true);
        };
        let mut c = conn.clone();
        let renewed: i64 = tokio::time::timeout(
            *timeout,
            redis::Script::new(RENEW)
                .key(format!("{prefix}:esws:lease:{channel}"))
                .arg(instance)
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut c),
        )
        .await
        .map_err(|_| BrokerError::Timeout)?
        .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        Ok(renewed == 1)
    }

    /// Gives the lease up if `instance` holds it (best effort: an expiry
    /// frees it anyway).
    pub async fn release(&self, channel: &ChannelName, instance: &str) {
        let Self::Redis {
            conn,
            prefix,
            timeout,
        } = self
        else {
            return;
        };
        let mut c = conn.clone();
        let result = tokio::time::timeout(
            *timeout,
            redis::Script::new(RELEASE)
                .key(format!("{prefix}:esws:lease:{channel}"))
                .arg(instance)
                .invoke_async::<i64>(&mut c),
        )
        .await;
        if !matches!(result, Ok(Ok(_))) {
            tracing::warn!(%channel, "could not release the EventSub socket lease; it expires");
        }
        let _: Result<i64, _> = Self::query(
            conn,
            *timeout,
            redis::cmd("DEL").arg(format!("{prefix}:esws:status:{channel}")),
        )
        .await;
    }

    /// Stores the holder's status for the other instances (Redis only).
    pub async fn put_status(&self, status: &SocketStatus, ttl: Duration) {
        let Self::Redis {
            conn,
            prefix,
            timeout,
        } = self
        else {
            return;
        };
        let Ok(json) = serde_json::to_string(status) else {
            return;
        };
        let result: Result<(), _> = Self::query(
            conn,
            *timeout,
            redis::cmd("SET")
                .arg(format!("{prefix}:esws:status:{}", status.channel))
                .arg(json)
                .arg("PX")
                .arg(ttl.as_millis() as u64),
        )
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not store the EventSub socket status");
        }
    }

    /// The status another instance stored, if any.
    pub async fn status(&self, channel: &ChannelName) -> Option<SocketStatus> {
        let Self::Redis {
            conn,
            prefix,
            timeout,
        } = self
        else {
            return None;
        };
        let raw: Option<String> = Self::query(
            conn,
            *timeout,
            redis::cmd("GET").arg(format!("{prefix}:esws:status:{channel}")),
        )
        .await
        .ok()?;
        serde_json::from_str(&raw?).ok()
    }
}
