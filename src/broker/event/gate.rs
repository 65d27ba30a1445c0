//! The gate a connection's reader passes after each message: how the router paces
//! a publisher without ever waiting itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The most PUBLISH messages one connection may have waiting in the router's inbox.
///
/// One fast publisher then cannot fill the inbox and delay everyone else's packets,
/// and a publisher the router pauses (see [`ReadGate`]) has at most this many
/// messages still on their way to the outbox it crowds.
pub(crate) const READER_QUEUE_LIMIT: u64 = 256;

/// The router tells a reader how many of its messages it has handled once every
/// this many, rather than touching memory the reader reads on every message.
pub(crate) const HANDLED_REPORT_EVERY: u64 = 16;

/// Paces a connection's reader. The reader passes the gate after each message it
/// hands the router, and waits there while
///
/// - the router has *closed* the gate: this client's messages crowd another client's
///   outbox, and the router opens the gate once that outbox drained; or
/// - this client already has [`READER_QUEUE_LIMIT`] messages waiting in the router's
///   inbox; it goes on once half of them are handled.
///
/// A waiting reader reads nothing more, so its client is slowed down by TCP, as a
/// publisher faster than the router always was. The router never waits here.
#[derive(Debug, Default)]
pub(crate) struct ReadGate {
    closed: AtomicBool,
    /// Set for good when the router is done with the connection: never wait again.
    released: AtomicBool,
    /// Messages of this connection the router has handled (as last reported).
    handled: AtomicU64,
    /// While the reader waits for handled messages: the count that lets it go.
    wake_at: AtomicU64,
    /// The reader is waiting (or about to): the router must wake it.
    waiting: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl ReadGate {
    /// Pauses the reader after the message it is handling.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Lets the reader go on.
    pub(crate) fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        self.wake();
    }

    /// The router is done with this connection: its reader never waits again.
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.closed.store(false, Ordering::SeqCst);
        self.wake();
    }

    /// Whether the gate is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The router has handled `handled` messages of this connection in all; called
    /// every [`HANDLED_REPORT_EVERY`] messages.
    pub(crate) fn handled(&self, handled: u64) {
        self.handled.store(handled, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) && handled >= self.wake_at.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    fn wake(&self) {
        // Taking the lock orders this with a reader between its last check and
        // its wait, so the wake-up cannot be lost.
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }

    fn must_wait(&self, sent: u64, limit: u64) -> bool {
        !self.released.load(Ordering::SeqCst)
            && (self.is_closed()
                || sent.saturating_sub(self.handled.load(Ordering::SeqCst)) >= limit)
    }

    /// Called by the reader after handing the router its `sent`th message: returns
    /// at once if the reader may go on, otherwise waits until it may, or until
    /// `longest` has passed.
    pub(crate) fn pass(&self, sent: u64, longest: Duration) {
        if !self.must_wait(sent, READER_QUEUE_LIMIT) {
            return;
        }
        let deadline = Instant::now() + longest;
        let mut guard = self.lock.lock();
        // Once waiting for handled messages, wait for half the limit, so that a
        // busy reader wakes once per many messages rather than once per message.
        self.wake_at.store(
            sent.saturating_sub(READER_QUEUE_LIMIT / 2),
            Ordering::SeqCst,
        );
        self.waiting.store(true, Ordering::SeqCst);
        while self.must_wait(sent, READER_QUEUE_LIMIT / 2 + 1) {
            if self.changed.wait_until(&mut guard, deadline).timed_out() {
                log::debug!("A paused reader goes on after {longest:?} without being let go.");
                break;
            }
        }
        self.waiting.store(false, Ordering::SeqCst);
    }
}
