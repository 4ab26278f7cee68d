//! One writer per worker thread for its WebSocket connections. A
//! connection with newly pending frames is put on the list once; the
//! flusher writes each listed connection's pending bytes with one system
//! call, and yields to the worker's other tasks every [`CHUNK`]
//! connections, so publishes that arrive meanwhile add to outboxes that are
//! still waiting instead of waking each connection. Under load a viewer's
//! write then carries many frames; when idle the list is empty and the
//! task sleeps.
//!
//! Each time the flusher takes the list is a *pass*.
//! [`Flushers::settle_if_behind`] lets a publisher wait for the flusher
//! when it is behind: for the pass in progress. So a publisher is never
//! more than one pass ahead of the sockets, publishers cannot queue
//! messages faster than the sockets take them, and the backlog (and with
//! it every viewer's latency) stays bounded under overload (issue 14).
//! Waiting only for the pass in progress, not also for the next one that
//! writes the frames queued behind it, lets each pass carry about one frame
//! per publisher into every socket write: measured flat out, 25 frames per
//! write instead of 18 and 15–25 % more deliveries a second, at the same
//! latency. A flusher that is keeping up (no pass in progress) is not
//! waited for at all: the next pass writes what was queued, and answering
//! the publisher at once keeps more publishes in flight (flat out 9–17 %
//! more deliveries a second, same p99).

use std::cell::RefCell;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Connections written between two yields to the worker's other tasks.
pub const CHUNK: usize = 64;

/// A connection with frames waiting to be written (`ws::conn::Conn`).
pub trait Pending: Send + Sync {
    /// Writes what is pending, as far as the socket takes it, without
    /// waiting.
    fn flush(&self);
}

/// The list of connections to write and the number of passes that took it.
#[derive(Default)]
struct Dirty {
    list: Vec<Arc<dyn Pending>>,
    /// Passes started (each took a non-empty list).
    taken: u64,
}

/// The list of connections with frames to write, and its writer's wake-up.
#[derive(Default)]
pub struct Flusher {
    dirty: Mutex<Dirty>,
    wake: Notify,
    /// Passes finished; never ahead of `Dirty::taken`.
    done: AtomicU64,
    /// Wakes the publishers waiting in [`Flusher::written`] after each pass.
    passed: Notify,
    /// False once the writing task is gone (its runtime stopped).
    alive: AtomicBool,
}

thread_local! {
    static LOCAL: RefCell<Option<Arc<Flusher>>> = const { RefCell::new(None) };
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dirty = self.dirty.lock();
        f.debug_struct("Flusher")
            .field("dirty", &dirty.list.len())
            .field("taken", &dirty.taken)
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Flusher {
    /// Lists `conn` (the caller makes sure it is listed once).
    pub fn mark(&self, conn: Arc<dyn Pending>) {
        let first = {
            let mut dirty = self.dirty.lock();
            dirty.list.push(conn);
            dirty.list.len() == 1
        };
        if first {
            self.wake.notify_one();
        }
    }

    /// Whether a pass is in progress (the flusher is behind: it yielded
    /// in the middle of a long list), and the pass a publisher waits for:
    /// the one in progress, or else the next one when connections are
    /// listed (it writes them), or else none (the last pass, done).
    fn progress(&self) -> (bool, u64) {
        let dirty = self.dirty.lock();
        let busy = self.done.load(Ordering::Acquire) < dirty.taken;
        if busy {
            // What it queued behind the pass in progress goes out in the
            // next pass, right after: the publisher is at most one pass
            // ahead of the sockets.
            return (true, dirty.taken);
        }
        (false, dirty.taken + u64::from(!dirty.list.is_empty()))
    }

    /// Waits until pass `target` is over (or the flusher is gone).
    async fn written(&self, target: u64) {
        loop {
            let mut passed = pin!(self.passed.notified());
            passed.as_mut().enable();
            if self.done.load(Ordering::Acquire) >= target || !self.alive.load(Ordering::Acquire) {
                return;
            }
            passed.await;
        }
    }

    async fn run(self: Arc<Self>) {
        /// Marks the flusher dead when the task is dropped with its runtime,
        /// and lets its waiting publishers go.
        struct Alive<'a>(&'a Flusher);
        impl Drop for Alive<'_> {
            fn drop(&mut self) {
                self.0.alive.store(false, Ordering::Release);
                self.0.passed.notify_waiters();
            }
        }
        let _alive = Alive(&self);
        let mut batch = Vec::new();
        loop {
            self.wake.notified().await;
            loop {
                let pass = {
                    let mut dirty = self.dirty.lock();
                    std::mem::swap(&mut dirty.list, &mut batch);
                    if batch.is_empty() {
                        break;
                    }
                    dirty.taken += 1;
                    dirty.taken
                };
                for (n, conn) in batch.drain(..).enumerate() {
                    conn.flush();
                    if (n + 1) % CHUNK == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                self.done.store(pass, Ordering::Release);
                self.passed.notify_waiters();
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Every worker's flusher: each worker starts its own on first use, and
/// publishers wait on all of them ([`Flushers::settle`]).
#[derive(Debug, Default)]
pub struct Flushers {
    all: Mutex<Vec<Weak<Flusher>>>,
}

impl Flushers {
    /// This worker's flusher, started on first use. Must be called on an
    /// actix worker (it spawns the writing task there).
    pub fn local(&self) -> Arc<Flusher> {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            if let Some(f) = local.as_ref().filter(|f| f.alive.load(Ordering::Acquire)) {
                self.register(f);
                return f.clone();
            }
            let flusher = Arc::new(Flusher::default());
            flusher.alive.store(true, Ordering::Release);
            actix_web::rt::spawn(flusher.clone().run());
            self.register(&flusher);
            *local = Some(flusher.clone());
            flusher
        })
    }

    /// Adds `flusher` to the set unless it is in it (a thread's flusher may
    /// serve several servers in tests).
    fn register(&self, flusher: &Arc<Flusher>) {
        let mut all = self.all.lock();
        if all
            .iter()
            .any(|f| std::ptr::eq(f.as_ptr(), Arc::as_ptr(flusher)))
        {
            return;
        }
        all.retain(|f| f.strong_count() > 0);
        all.push(Arc::downgrade(flusher));
    }

    /// Waits for every worker's flusher: for its pass in progress if it is
    /// behind, or else for the next pass when it has connections listed (the
    /// pass that writes what the caller queued), at most `limit`: after it
    /// the publish is answered anyway (its message is stored and queued).
    /// Returns whether the wait ended in time. Tests wait here for what
    /// they queued to be written.
    #[cfg(test)]
    pub async fn settle(&self, limit: Duration) -> bool {
        self.wait(limit, false).await
    }

    /// Waits for every flusher that is behind (a pass in progress, so its
    /// sockets already hold a backlog) to end that pass, at most `limit`:
    /// after it the caller is answered anyway (its message is stored and
    /// queued). Returns whether the wait ended in time. A publish and a
    /// webhook wait here before they are answered: that is the backpressure
    /// that keeps publishers from queuing faster than the sockets take it
    /// (at most one pass ahead), so a flood into a big channel is held back
    /// by the sockets. A flusher that is keeping up writes what the caller
    /// queued in its next pass, right after, without the caller waiting
    /// for it (waiting for that pass cost a round of the event loop per
    /// request and kept fewer publishes in flight, issue 14).
    pub async fn settle_if_behind(&self, limit: Duration) -> bool {
        self.wait(limit, true).await
    }

    async fn wait(&self, limit: Duration, only_behind: bool) -> bool {
        let waits: Vec<(Arc<Flusher>, u64)> = {
            let all = self.all.lock();
            all.iter()
                .filter_map(Weak::upgrade)
                .filter_map(|f| {
                    let (busy, target) = f.progress();
                    let pending = f.done.load(Ordering::Acquire) < target;
                    (pending && (busy || !only_behind)).then_some((f, target))
                })
                .collect()
        };
        if waits.is_empty() {
            return true;
        }
        let deadline = Instant::now() + limit;
        for (flusher, target) in waits {
            if tokio::time::timeout_at(deadline, flusher.written(target))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const LIMIT: Duration = Duration::from_secs(5);

    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Pending for Counted {
        fn flush(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn settle_waits_for_the_pass_that_writes_what_was_queued() {
        tokio::task::LocalSet::new()
            .run_until(settle_writes_what_was_queued())
            .await;
    }

    async fn settle_writes_what_was_queued() {
        let flushers = Flushers::default();
        assert!(
            flushers.settle(LIMIT).await,
            "no flusher: nothing to wait for"
        );
        let flusher = flushers.local();
        let conn = Arc::new(Counted::default());
        flusher.mark(conn.clone());
        assert!(flushers.settle(LIMIT).await);
        assert_eq!(
            conn.0.load(Ordering::Relaxed),
            1,
            "written before settle returned"
        );
        // Nothing listed: settling is immediate and writes nothing.
        assert!(flushers.settle(LIMIT).await);
        assert_eq!(conn.0.load(Ordering::Relaxed), 1);
        let many: Vec<Arc<Counted>> = (0..3 * CHUNK).map(|_| Arc::default()).collect();
        for c in &many {
            flusher.mark(c.clone());
        }
        assert!(flushers.settle(LIMIT).await);
        assert!(many.iter().all(|c| c.0.load(Ordering::Relaxed) == 1));
    }

    #[tokio::test]
    async fn settle_if_behind_waits_only_for_a_pass_in_progress() {
        tokio::task::LocalSet::new()
            .run_until(settle_if_behind_cases())
            .await;
    }

    async fn settle_if_behind_cases() {
        let flushers = Flushers::default();
        let flusher = flushers.local();
        let conn = Arc::new(Counted::default());
        flusher.mark(conn.clone());
        // Keeping up: nothing in progress, the next pass writes it.
        assert!(flushers.settle_if_behind(LIMIT).await);
        assert_eq!(conn.0.load(Ordering::Relaxed), 0, "not waited for");
        assert!(flushers.settle(LIMIT).await);
        assert_eq!(conn.0.load(Ordering::Relaxed), 1);
        // Behind: a pass yields in the middle of a long list; a caller
        // that queues meanwhile waits for that pass to end, and the next
        // pass writes what it queued.
        let many: Vec<Arc<Counted>> = (0..3 * CHUNK).map(|_| Arc::default()).collect();
        for c in &many {
            flusher.mark(c.clone());
        }
        let first = many[0].clone();
        let waiter = async {
            // Once the pass is under way (the first chunk written).
            while first.0.load(Ordering::Relaxed) == 0 {
                tokio::task::yield_now().await;
            }
            assert!(flusher.progress().0, "a pass is in progress");
            flusher.mark(conn.clone());
            assert!(flushers.settle_if_behind(LIMIT).await);
            assert!(
                many.iter().all(|c| c.0.load(Ordering::Relaxed) == 1),
                "the pass in progress was over before it returned"
            );
            // Not busy now, and listed: the next settle waits for the pass
            // that writes it.
            assert!(!flusher.progress().0);
            assert!(flushers.settle(LIMIT).await);
            assert_eq!(
                conn.0.load(Ordering::Relaxed),
                2,
                "written by the next pass"
            );
        };
        waiter.await;
    }

    #[test]
    fn the_target_is_the_pass_in_progress_or_else_the_next() {
        let flusher = Flusher::default();
        assert_eq!(flusher.progress().1, 0, "idle, nothing listed");
        flusher.mark(Arc::new(Counted::default()));
        assert_eq!(flusher.progress().1, 1, "the next pass takes the list");
        flusher.dirty.lock().list.clear();
        flusher.dirty.lock().taken = 1;
        assert_eq!(flusher.progress(), (true, 1), "pass 1 is in progress");
        flusher.mark(Arc::new(Counted::default()));
        assert_eq!(
            flusher.progress(),
            (true, 1),
            "listed behind pass 1: still only pass 1 is waited for"
        );
        flusher.dirty.lock().list.clear();
        flusher.done.store(1, Ordering::Release);
        assert_eq!(flusher.progress(), (false, 1), "pass 1 is over");
    }
}
