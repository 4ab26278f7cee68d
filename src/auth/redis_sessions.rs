//! Sessions in Redis (SPEC §7.14, Redis mode): one string key per session,
//! `{prefix}:session:{key}`, holding the session state as JSON and expiring
//! with the session's TTL, so any instance can read a session another one
//! wrote, and logout on one instance ends it everywhere.

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionManager;

use crate::broker::redis::millis;

type State = HashMap<String, String>;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisSessionError {
    /// Redis answered with an error or the connection failed.
    #[error("session store unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// The call took longer than its timeout.
    #[error("session store call timed out")]
    Timeout,
    /// A stored session is not valid JSON.
    #[error("stored session is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The Redis session store; cloning shares the connection.
#[derive(Clone)]
pub struct RedisSessions {
    conn: ConnectionManager,
    prefix: String,
    /// Timeout of every call.
    timeout: Duration,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// A store under `prefix`, each call limited to `timeout`.
    pub fn new(conn: ConnectionManager, prefix: &str, timeout: Duration) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
        }
    }

    fn key(&self, session_key: &str) -> String {
        format!("{}:session:{session_key}", self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, RedisSessionError> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| RedisSessionError::Timeout)?
            .map_err(RedisSessionError::from)
    }

    /// The state of a live session.
    ///
    /// # Errors
    /// [`RedisSessionError`] when Redis fails or the state is corrupt.
    pub async fn load(&self, session_key: &str) -> Result<Option<State>, RedisSessionError> {
        let raw: Option<String> = self
            .query(redis::cmd("GET").arg(self.key(session_key)))
            .await?;
        raw.map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(RedisSessionError::from)
    }

    /// Writes a session; with `only_new` it must not exist yet, otherwise it
    /// must still exist. Returns whether it was written.
    ///
    /// # Errors
    /// [`RedisSessionError`] when Redis fails.
    pub async fn put(
        &self,
        session_key: &str,
        state: &State,
        ttl: Duration,
        only_new: bool,
    ) -> Result<bool, RedisSessionError> {
        let json = serde_json::to_string(state)?;
        let reply: Value = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(session_key))
                    .arg(json)
                    .arg(if only_new { "NX" } else { "XX" })
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(!matches!(reply, Value::Nil))
    }

    /// Extends a session's life.
    ///
    /// # Errors
    /// [`RedisSessionError`] when Redis fails.
    pub async fn touch(&self, session_key: &str, ttl: Duration) -> Result<(), RedisSessionError> {
        let _: i64 = self
            .query(
                redis::cmd("PEXPIRE")
                    .arg(self.key(session_key))
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(())
    }

    /// Deletes a session.
    ///
    /// # Errors
    /// [`RedisSessionError`] when Redis fails.
    pub async fn delete(&self, session_key: &str) -> Result<(), RedisSessionError> {
        let _: i64 = self
            .query(redis::cmd("DEL").arg(self.key(session_key)))
            .await?;
        Ok(())
    }
}
