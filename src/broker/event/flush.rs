//! Writes the router makes itself, at the end of each batch.
//!
//! Most connections, most of the time, have no writer thread: what the router
//! puts in their outbox during a batch is written by the router, once the batch is
//! handled, with one send that does not wait. Only what the socket does not take
//! goes to a writer thread. A message then crosses two threads (the publisher's
//! reader, the router) instead of three, and no thread is woken to write it.
//!
//! The outbox's receiving end asks for this ([`PendingWrites::push`]) when a packet
//! comes in and no writer thread runs; the router calls
//! [`PendingWrites::flush`] after each batch.
//!
//! The router writes only with time to spare, and to a few connections at a
//! time; the rest goes to writer threads. Writing every socket itself would make
//! the router, the one thread every message crosses, do the work that writer
//! threads do side by side on other cores, and gather fewer packets into each
//! write. So:
//!
//! - events waiting in the inbox (the router is the busiest thread): every
//!   connection gets its writer thread;
//! - more than [`MAX_DIRECT_CONNECTIONS`] connections to write (a message fanned
//!   out to a hundred subscribers): each gets its writer thread;
//! - otherwise the router writes everything: it had nothing else to do.
//!
//! Measured with `wren-bench compare` (2 cores, shared with the load): writing
//! every connection itself halved fan-out to a hundred subscribers; writing up to
//! 64 packets a batch while events waited cost QoS 1 1 → 1 a third of its rate.
//! With these bounds p50 latency at 1,000 msg/s fell by a fifth to a third, and
//! QoS 1 and fan-out throughput ran at 0.65–1.25× writer threads alone from run
//! to run, a spread as wide as this machine's noise (README, Performance).

use std::sync::Arc;

use parking_lot::Mutex;

use super::ConnectionId;

/// Beyond this many connections to write at the end of a batch, the router
/// writes to none of them itself (see the module documentation).
pub(crate) const MAX_DIRECT_CONNECTIONS: usize = 8;

/// A connection whose pending packets the router can write.
pub(crate) trait Flush: Send + Sync {
    /// With `write`, writes what is waiting without blocking and hands what the
    /// socket did not take to a writer thread; without, hands all of it to a
    /// writer thread. Returns the connection if its outbox has drained since the
    /// router asked to hear of it (see `Outbox::watch_for_drain`).
    fn flush(&self, write: bool) -> Option<ConnectionId>;
}

/// The connections with packets for the router to write, in the order they
/// asked. Touched by the router thread only (the outbox wakes its receiving end
/// from the router's `try_send`), so the lock is never contended.
#[derive(Default)]
pub(crate) struct PendingWrites {
    queue: Mutex<Vec<Arc<dyn Flush>>>,
}

impl std::fmt::Debug for PendingWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWrites")
            .field("len", &self.queue.lock().len())
            .finish()
    }
}

impl PendingWrites {
    /// Asks the router to write `connection`'s packets at the end of its batch.
    /// The caller makes sure it asks once until flushed.
    pub(crate) fn push(&self, connection: Arc<dyn Flush>) {
        self.queue.lock().push(connection);
    }

    /// Writes the pending connections' packets (`write`), or hands them to
    /// writer threads (always, when more than [`MAX_DIRECT_CONNECTIONS`] wait);
    /// returns the connections whose outbox has drained for a watching router.
    pub(crate) fn flush(&self, write: bool) -> Vec<ConnectionId> {
        let mut pending = std::mem::take(&mut *self.queue.lock());
        let write = write && pending.len() <= MAX_DIRECT_CONNECTIONS;
        let drained = pending.iter().filter_map(|c| c.flush(write)).collect();
        // The queue's memory serves the next batch: nothing is pushed while the
        // router flushes (writing starts no wake).
        pending.clear();
        let mut queue = self.queue.lock();
        if queue.is_empty() {
            *queue = pending;
        }
        drained
    }

    /// Whether connections wait to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }
}
