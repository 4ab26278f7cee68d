//! One writer per worker thread for its WebSocket connections. A
//! connection with newly pending frames is put on the list once; the
//! flusher writes each listed connection's pending bytes with one system
//! call, and yields to the worker's other tasks every [`CHUNK`]
//! connections, so publishes that arrive meanwhile add to outboxes that are
//! still waiting instead of waking each connection. Under load a viewer's
//! write then carries many frames; when idle the list is empty and the
//! task sleeps.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Connections written between two yields to the worker's other tasks.
pub const CHUNK: usize = 64;

/// A connection with frames waiting to be written (`ws::conn::Conn`).
pub trait Pending: Send + Sync {
    /// Writes what is pending, as far as the socket takes it, without
    /// waiting.
    fn flush(&self);
}

/// The list of connections with frames to write, and its writer's wake-up.
#[derive(Default)]
pub struct Flusher {
    dirty: Mutex<Vec<Arc<dyn Pending>>>,
    wake: Notify,
    /// False once the writing task is gone (its runtime stopped).
    alive: AtomicBool,
}

thread_local! {
    static LOCAL: RefCell<Option<Arc<Flusher>>> = const { RefCell::new(None) };
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher")
            .field("dirty", &self.dirty.lock().len())
            .finish_non_exhaustive()
    }
}

impl Flusher {
    /// This worker's flusher, started on first use. Must be called on an
    /// actix worker (it spawns the writing task there).
    pub fn local() -> Arc<Self> {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            if let Some(f) = local.as_ref().filter(|f| f.alive.load(Ordering::Acquire)) {
                return f.clone();
            }
            let flusher = Arc::new(Self::default());
            flusher.alive.store(true, Ordering::Release);
            actix_web::rt::spawn(flusher.clone().run());
            *local = Some(flusher.clone());
            flusher
        })
    }

    /// Lists `conn` (the caller makes sure it is listed once).
    pub fn mark(&self, conn: Arc<dyn Pending>) {
        let first = {
            let mut dirty = self.dirty.lock();
            dirty.push(conn);
            dirty.len() == 1
        };
        if first {
            self.wake.notify_one();
        }
    }

    async fn run(self: Arc<Self>) {
        /// Marks the flusher dead when the task is dropped with its runtime.
        struct Alive<'a>(&'a AtomicBool);
        impl Drop for Alive<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _alive = Alive(&self.alive);
        let mut batch = Vec::new();
        loop {
            self.wake.notified().await;
            loop {
                std::mem::swap(&mut *self.dirty.lock(), &mut batch);
                if batch.is_empty() {
                    break;
                }
                for (n, conn) in batch.drain(..).enumerate() {
                    conn.flush();
                    if (n + 1) % CHUNK == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                tokio::task::yield_now().await;
            }
        }
    }
}
