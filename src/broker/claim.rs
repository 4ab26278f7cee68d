//! Claims: at most one attempt at a time works on a key (a webhook message
//! id, a publish `Idempotency-Key`), across instances in Redis mode, and a
//! key counts as seen only once an attempt *completed* it.
//!
//! A claim is a short lease, not a verdict: a call to Redis may time out on
//! our side and still run there later (a stalled Redis runs what it was
//! sent when it resumes), so a lease whose owner vanished must free the key
//! by itself within seconds. While a lease holds, others are told "in
//! flight" (answered 409, never 2xx, so Twitch or the client retries); a
//! completed key answers with the value it was completed with for the whole
//! de-duplication window. Whatever an attempt did before it failed must be
//! safe to do again: publishes go through `Broker::publish_once`.

use std::time::Duration;

use super::{Broker, BrokerError};

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim<'a> {
    /// Free: this attempt holds the key until its lease ends. Complete it
    /// when the work is done; dropping it frees the key for a retry.
    New(Attempt<'a>),
    /// Another attempt holds the key now (or died within its lease).
    InFlight,
    /// Completed within the window; the value it was completed with.
    Done(String),
}

/// The lease of one attempt on one key.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub(crate) namespace: String,
    pub(crate) key: String,
    /// Tells this attempt's lease from a later one on the same key.
    pub(crate) token: u64,
}

/// An attempt holding a key. Dropped without [`Attempt::complete`] (an
/// error, or the request was cancelled), it releases the key in the
/// background; if even that fails, the lease runs out by itself.
#[derive(Debug)]
pub struct Attempt<'a> {
    broker: &'a Broker,
    /// `None` once completed.
    lease: Option<Lease>,
}

impl<'a> Attempt<'a> {
    pub(crate) fn new(broker: &'a Broker, lease: Lease) -> Self {
        Self {
            broker,
            lease: Some(lease),
        }
    }

    /// Marks the key done with `value` for `window`: later claims get
    /// [`Claim::Done`].
    ///
    /// # Errors
    /// [`BrokerError`] when it cannot be recorded; the key is then released.
    pub async fn complete(mut self, value: &str, window: Duration) -> Result<(), BrokerError> {
        if let Some(lease) = &self.lease {
            self.broker.complete(lease, value, window).await?;
        }
        self.lease = None;
        Ok(())
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.broker.release_detached(lease);
        }
    }
}
