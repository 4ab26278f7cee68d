//! Server-side session storage for actix-session (SPEC §7.14): the cookie
//! holds only a signed random session key; the state lives here, so logout
//! deletes it and an old copied cookie stops working.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use parking_lot::Mutex;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::redis_sessions::RedisSessions;

type State = HashMap<String, String>;

/// Most sessions kept in memory; past it the soonest to expire go first.
pub const MAX_MEMORY_SESSIONS: usize = 1_000_000;

/// In-memory sessions (one process).
#[derive(Debug, Default)]
pub struct MemorySessions {
    map: Mutex<HashMap<String, (State, Instant)>>,
}

impl MemorySessions {
    fn put(&self, key: &str, state: State, ttl: &Duration) {
        let expiry =
            Instant::now() + std::time::Duration::from_secs(ttl.whole_seconds().max(0) as u64);
        let mut map = self.map.lock();
        if map.len() >= MAX_MEMORY_SESSIONS && !map.contains_key(key) {
            let now = Instant::now();
            map.retain(|_, (_, exp)| *exp > now);
            if map.len() >= MAX_MEMORY_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (_, e))| *e)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(key.to_owned(), (state, expiry));
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where sessions are stored: in memory, or shared in Redis.
#[derive(Clone)]
pub enum SessionBackend {
    /// One process.
    Memory(Arc<MemorySessions>),
    /// Shared by every instance (Redis mode).
    Redis(RedisSessions),
}

/// actix-session's TTL as a std `Duration` (negative: zero).
fn std_ttl(ttl: &Duration) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(ttl.whole_seconds()).unwrap_or(0))
}

/// A fresh, unguessable session key (64 alphanumeric characters).
fn new_key() -> Result<SessionKey, anyhow::Error> {
    let key: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect();
    SessionKey::try_from(key).map_err(|e| anyhow::anyhow!("{e}"))
}

impl SessionStore for SessionBackend {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        match self {
            Self::Memory(m) => {
                let map = m.map.lock();
                Ok(map
                    .get(session_key.as_ref())
                    .filter(|(_, exp)| *exp > Instant::now())
                    .map(|(s, _)| s.clone()))
            }
            Self::Redis(r) => r
                .load(session_key.as_ref())
                .await
                .map_err(|e| LoadError::Other(e.into())),
        }
    }

    async fn save(&self, session_state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = new_key().map_err(SaveError::Other)?;
        match self {
            Self::Memory(m) => m.put(key.as_ref(), session_state, ttl),
            Self::Redis(r) => {
                r.put(key.as_ref(), &session_state, std_ttl(ttl), true)
                    .await
                    .map_err(|e| SaveError::Other(e.into()))?;
            }
        }
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        match self {
            Self::Memory(m) => {
                // Only a session that still exists may be updated; a deleted
                // one gets a new key (as actix-session's Redis store does).
                let exists = m.map.lock().contains_key(session_key.as_ref());
                if exists {
                    m.put(session_key.as_ref(), session_state, ttl);
                    Ok(session_key)
                } else {
                    let key = new_key().map_err(UpdateError::Other)?;
                    m.put(key.as_ref(), session_state, ttl);
                    Ok(key)
                }
            }
            Self::Redis(r) => {
                let ttl = std_ttl(ttl);
                let updated = r
                    .put(session_key.as_ref(), &session_state, ttl, false)
                    .await
                    .map_err(|e| UpdateError::Other(e.into()))?;
                if updated {
                    return Ok(session_key);
                }
                let key = new_key().map_err(UpdateError::Other)?;
                r.put(key.as_ref(), &session_state, ttl, true)
                    .await
                    .map_err(|e| UpdateError::Other(e.into()))?;
                Ok(key)
            }
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &Duration,
    ) -> Result<(), anyhow::Error> {
        match self {
            Self::Memory(m) => {
                let state = m
                    .map
                    .lock()
                    .get(session_key.as_ref())
                    .map(|(s, _)| s.clone());
                if let Some(state) = state {
                    m.put(session_key.as_ref(), state, ttl);
                }
                Ok(())
            }
            Self::Redis(r) => Ok(r.touch(session_key.as_ref(), std_ttl(ttl)).await?),
        }
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        match self {
            Self::Memory(m) => {
                m.map.lock().remove(session_key.as_ref());
                Ok(())
            }
            Self::Redis(r) => Ok(r.delete(session_key.as_ref()).await?),
        }
    }
}
