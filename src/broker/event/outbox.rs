//! A connection's outbox: the bounded queue from the router to its writer thread.
//!
//! A network connection's writer thread runs only while there is something to
//! write: the outbox wakes it ([`Wake`]) after each packet put in, and when the
//! router drops the outbox, so that the writer can say goodbye and close.
//!
//! The router `try_send`s into it and never waits; the writer (or an inline
//! subscription) takes packets out. Besides the packets, the two ends share a count
//! of payload bytes, which decides when QoS 0 messages are dropped
//! ([`Qos0Room`]) and when the publishers that crowd the outbox are paused until it
//! has drained.
//!
//! The channel keeps a block of slots (some 2.7 KiB) from its first packet for as
//! long as it lives, which for ten thousand quiet clients would be a sixth of the
//! broker's memory. So a writer that finds the outbox empty after a quiet spell
//! swaps the channel for a new one, which allocates no block until a packet comes
//! ([`OutboxReceiver::renew`]).

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, Sender, TryRecvError};
use parking_lot::Mutex;

use super::{ConnectionId, Event, Inbox};
use crate::protocol::Packet;

/// What the router sends to a connection: a packet for its writer thread to encode
/// and write. A PUBLISH shares its topic and payload buffers with every other
/// subscriber's copy; only the fixed header and packet identifier differ.
pub(crate) type Outgoing = Packet;

/// QoS 0 messages are put in a connection's outbox only while it holds fewer than
/// this many packets and [`OUTBOX_QOS0_BYTES`] of payload; beyond, they are dropped
/// and counted.
///
/// Publishers are paused long before (see [`OUTBOX_CROWDED_SLOTS`]); the room above
/// that mark takes what paused publishers still had on the way:
/// [`READER_QUEUE_LIMIT`](super::READER_QUEUE_LIMIT) messages each, for a hundred
/// publishers at once.
pub(crate) const OUTBOX_QOS0_SLOTS: usize = 32 * 1024;

/// Payload bytes beyond which a connection's outbox takes no more QoS 0 messages, so
/// a client that stops reading holds at most this much (plus its inflight window).
pub(crate) const OUTBOX_QOS0_BYTES: usize = 8 * 1024 * 1024;

/// An outbox holding this many packets, or [`OUTBOX_CROWDED_BYTES`] of payload, is
/// *crowded*: the publishers whose QoS 0 messages go into it are paused until it has
/// drained, so that it fills no further while its writer keeps working.
pub(crate) const OUTBOX_CROWDED_SLOTS: usize = 4096;
const OUTBOX_CROWDED_BYTES: usize = 1024 * 1024;

/// A crowded outbox has *drained* once it is back below half its crowded mark, which
/// still leaves its writer thousands of packets to write while paused publishers
/// start again.
const OUTBOX_DRAINED_SLOTS: usize = OUTBOX_CROWDED_SLOTS / 2;
const OUTBOX_DRAINED_BYTES: usize = OUTBOX_CROWDED_BYTES / 2;

/// Room kept in every outbox for acknowledgements and other replies. A client that
/// leaves this many replies unread has stopped reading and is disconnected
/// [MQTT-4.8.0-2].
pub(crate) const OUTBOX_REPLY_RESERVE: usize = 128;

/// The capacity of a connection's outbox: QoS 0 slots, the inflight window (QoS 1/2
/// PUBLISH and PUBREL packets, bounded by the session), and the reply reserve.
pub(crate) fn outbox_capacity(max_inflight: usize) -> usize {
    OUTBOX_QOS0_SLOTS + max_inflight.max(1) + OUTBOX_REPLY_RESERVE
}

/// The least time between two renewals of one outbox's channel by the router
/// (see [`OutboxReceiver::renew_if_due`]).
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// The router's end of a connection's outbox: a channel plus a count of the payload
/// bytes in it, which the writer decreases as it takes packets out.
///
/// The channel is crossbeam's linked-block flavour, which allocates as it fills,
/// rather than its array flavour, which would allocate (and touch) every slot up
/// front: some 200 KiB per connection at this capacity, idle or not. The bound is
/// enforced here instead, which is exact because the router is the only sender.
pub(crate) struct Outbox {
    capacity: usize,
    shared: Arc<OutboxShared>,
    /// Who takes the packets out, told there is work: a network connection's
    /// writer; none for an inline subscription, which takes them itself.
    waker: Option<Arc<dyn Wake>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The receiving end's alarm clock: [`Outbox`] calls [`wake`](Wake::wake) after
/// each packet it takes in, and [`closed`](Wake::closed) once it is dropped.
pub(crate) trait Wake: Send + Sync {
    /// There are packets to write.
    fn wake(&self);
    /// The router dropped the outbox: write what is left, and close.
    fn closed(&self);
}

/// What the two ends of an outbox share.
#[derive(Debug)]
struct OutboxShared {
    /// The channel's sending end: here rather than in [`Outbox`] so that the
    /// receiving end can swap the channel for a new one ([`OutboxReceiver::renew`]).
    /// The router locks it to send, and a writer only to renew, which it does
    /// after a quiet spell: the lock is as good as never contended. `None` once
    /// the router has dropped the outbox.
    sender: Mutex<Option<Sender<Outgoing>>>,
    /// Packets queued, kept beside the channel so that the router reads it
    /// without the lock and without a channel's walk over its indices.
    packets: AtomicUsize,
    /// Payload bytes queued.
    bytes: AtomicUsize,
    /// The receiving end has gone: what is counted will never be taken.
    receiver_gone: AtomicBool,
    /// The router waits to hear that this outbox drained (see
    /// [`Outbox::watch_for_drain`]); the receiving end reports it once.
    watched: AtomicBool,
    /// The router dropped its end: no more packets will come.
    closed: AtomicBool,
}

/// Room for QoS 0 messages in an outbox (see [`Outbox::qos0_room`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qos0Room {
    /// Below the crowded mark.
    Free,
    /// At or above [`OUTBOX_CROWDED_SLOTS`]: take it, and pause its publisher.
    Crowded,
    /// At [`OUTBOX_QOS0_SLOTS`] or [`OUTBOX_QOS0_BYTES`]: drop it.
    Full,
}

/// Why [`Outbox::try_send`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// The outbox is full: the client is not reading.
    Full,
    /// The writer has gone: the connection is closing.
    Gone,
}

/// The writer's end of an outbox.
#[derive(Debug)]
pub(crate) struct OutboxReceiver {
    receiver: Receiver<Outgoing>,
    shared: Arc<OutboxShared>,
    /// When the channel was last renewed by [`renew_if_due`](Self::renew_if_due).
    renewed_at: Option<Instant>,
}

fn payload_len(packet: &Outgoing) -> usize {
    match packet {
        Packet::Publish(publish) => publish.payload.len(),
        _ => 0,
    }
}

/// An outbox for a connection whose session may have `max_inflight` messages in
/// flight.
pub(crate) fn outbox(max_inflight: usize) -> (Outbox, OutboxReceiver) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let shared = Arc::new(OutboxShared {
        sender: Mutex::new(Some(sender)),
        packets: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        receiver_gone: AtomicBool::new(false),
        watched: AtomicBool::new(false),
        closed: AtomicBool::new(false),
    });
    (
        Outbox {
            capacity: outbox_capacity(max_inflight),
            shared: shared.clone(),
            waker: None,
        },
        OutboxReceiver {
            receiver,
            shared,
            renewed_at: None,
        },
    )
}

/// Whether an outbox holding `len` packets and `bytes` payload bytes is back below
/// the drained mark.
fn is_drained(len: usize, bytes: usize) -> bool {
    len < OUTBOX_DRAINED_SLOTS && bytes < OUTBOX_DRAINED_BYTES
}

impl Outbox {
    /// Has `waker` told of every packet put in, and of the end.
    pub(crate) fn with_waker(mut self, waker: Arc<dyn Wake>) -> Outbox {
        self.waker = Some(waker);
        self
    }

    /// Queues a packet without waiting. On failure the packet is dropped.
    pub(crate) fn try_send(&self, packet: Outgoing) -> Result<(), SendFailure> {
        let sent = {
            let sender = self.shared.sender.lock();
            let Some(sender) = sender.as_ref() else {
                return Err(SendFailure::Gone);
            };
            if self.shared.receiver_gone.load(Ordering::Relaxed) {
                return Err(SendFailure::Gone);
            }
            if self.len() >= self.capacity {
                return Err(SendFailure::Full);
            }
            let len = payload_len(&packet);
            // Counted before the send, so the writer never subtracts what was not
            // added.
            self.shared.packets.fetch_add(1, Ordering::Relaxed);
            self.shared.bytes.fetch_add(len, Ordering::Relaxed);
            let sent = sender.try_send(packet);
            if sent.is_err() {
                self.shared.packets.fetch_sub(1, Ordering::Relaxed);
                self.shared.bytes.fetch_sub(len, Ordering::Relaxed);
            }
            sent
        };
        match sent {
            Ok(()) => {
                if let Some(waker) = &self.waker {
                    waker.wake();
                }
                Ok(())
            }
            // An unbounded channel only refuses when its receiver is gone.
            Err(_) => Err(SendFailure::Gone),
        }
    }

    /// Packets queued.
    fn len(&self) -> usize {
        self.shared.packets.load(Ordering::Relaxed)
    }

    /// How much room is left for QoS 0 messages. Asked for every QoS 0 delivery.
    pub(crate) fn qos0_room(&self) -> Qos0Room {
        let len = self.len();
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        if len >= OUTBOX_QOS0_SLOTS || bytes >= OUTBOX_QOS0_BYTES {
            Qos0Room::Full
        } else if len >= OUTBOX_CROWDED_SLOTS || bytes >= OUTBOX_CROWDED_BYTES {
            Qos0Room::Crowded
        } else {
            Qos0Room::Free
        }
    }

    /// Asks the receiving end to report (once) when the outbox has drained. Returns
    /// `false` when it has drained already and no report will come.
    pub(crate) fn watch_for_drain(&self) -> bool {
        self.shared.watched.store(true, Ordering::SeqCst);
        // Pairs with the fence in `OutboxReceiver::drained`: either the receiver
        // sees the flag, or this sees the packets it has taken.
        fence(Ordering::SeqCst);
        let drained = is_drained(self.len(), self.shared.bytes.load(Ordering::Relaxed));
        // Taking the flag back means the receiver has not claimed the report.
        !(drained && self.shared.watched.swap(false, Ordering::SeqCst))
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Set before the wake, and read after the receiving end's own flag (see
        // `OutboxReceiver::has_work`): a writer about to rest either sees it or is
        // woken.
        self.shared.closed.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.take() {
            waker.closed();
        }
        // The receiving end sees the channel end once it has taken what is left.
        drop(self.shared.sender.lock().take());
    }
}

impl OutboxReceiver {
    /// Whether there is anything for the receiving end to do: packets waiting, or
    /// the router has dropped its end. Read by a writer before it stops for lack
    /// of work, after it has said it is stopping.
    pub(crate) fn has_work(&self) -> bool {
        fence(Ordering::SeqCst);
        !self.receiver.is_empty() || self.shared.closed.load(Ordering::SeqCst)
    }

    /// Waits for the next packet; an error once the router dropped the outbox.
    pub(crate) fn recv(&self) -> Result<Outgoing, RecvError> {
        let packet = self.receiver.recv()?;
        self.taken(&packet);
        Ok(packet)
    }

    /// The next packet if one is waiting.
    pub(crate) fn recv_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Outgoing, crossbeam_channel::RecvTimeoutError> {
        let packet = self.receiver.recv_timeout(timeout)?;
        self.taken(&packet);
        Ok(packet)
    }

    pub(crate) fn try_recv(&self) -> Result<Outgoing, TryRecvError> {
        let packet = self.receiver.try_recv()?;
        self.taken(&packet);
        Ok(packet)
    }

    /// Swaps the channel, empty, for a new one, which holds no block of slots
    /// until a packet comes: the old one's memory goes. Nothing is lost: the swap
    /// happens under the sending end's lock, only while the channel is empty, and
    /// not once the router has dropped its end. True if it was swapped.
    ///
    /// For a writer that has gone quiet: a channel renewed on every packet would
    /// allocate its block on every packet.
    pub(crate) fn renew(&mut self) -> bool {
        let mut sender = self.shared.sender.lock();
        if sender.is_none() || !self.receiver.is_empty() {
            return false;
        }
        let (new_sender, new_receiver) = crossbeam_channel::unbounded();
        *sender = Some(new_sender);
        self.receiver = new_receiver;
        true
    }

    /// [`renew`](Self::renew)s unless this renewed less than [`RENEW_EVERY`] ago.
    /// For the router, which finds the outbox empty after nearly every write it
    /// makes for a resting connection: a busy connection then allocates a block
    /// once in a while rather than for every packet. A connection that goes quiet
    /// within [`RENEW_EVERY`] of a renewal keeps its block until the next write
    /// after that (a keep-alive's PINGRESP, say).
    pub(crate) fn renew_if_due(&mut self, now: Instant) -> bool {
        if self
            .renewed_at
            .is_some_and(|at| now.saturating_duration_since(at) < RENEW_EVERY)
        {
            return false;
        }
        let renewed = self.renew();
        if renewed {
            self.renewed_at = Some(now);
        }
        renewed
    }

    fn taken(&self, packet: &Outgoing) {
        self.shared.packets.fetch_sub(1, Ordering::Relaxed);
        self.shared
            .bytes
            .fetch_sub(payload_len(packet), Ordering::Relaxed);
    }

    /// Whether to tell the router that this outbox has drained: it asked to hear
    /// of it ([`Outbox::watch_for_drain`]) and the outbox is below the drained mark
    /// now. True at most once per request; the caller then sends [`Event::Drained`].
    pub(crate) fn drained(&self) -> bool {
        if !self.shared.watched.load(Ordering::Relaxed) {
            return false;
        }
        fence(Ordering::SeqCst);
        is_drained(
            self.shared.packets.load(Ordering::Relaxed),
            self.shared.bytes.load(Ordering::Relaxed),
        ) && self.shared.watched.swap(false, Ordering::SeqCst)
    }

    /// Sends the router [`Event::Drained`] for `connection` when
    /// [`drained`](Self::drained) says so. Called by whoever takes packets out: the
    /// writer after each write, an inline subscription after each packet.
    pub(crate) fn report_drained(&self, router: &Inbox, connection: ConnectionId) {
        if self.drained() {
            // Waits only for room in the router's inbox, which the router always
            // empties; fails only when the router has stopped.
            let _ = router.send(Event::Drained { connection });
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewed_outbox_loses_nothing_and_keeps_its_order() {
        let (outbox, mut receiver) = outbox(10);
        outbox.try_send(Packet::PingResp).unwrap();
        assert!(!receiver.renew(), "not while a packet waits");
        assert!(matches!(receiver.try_recv(), Ok(Packet::PingResp)));
        assert!(receiver.renew());
        outbox.try_send(Packet::PingReq).unwrap();
        outbox.try_send(Packet::PingResp).unwrap();
        assert!(receiver.has_work());
        assert!(matches!(receiver.try_recv(), Ok(Packet::PingReq)));
        assert!(matches!(receiver.recv(), Ok(Packet::PingResp)));
        assert_eq!(receiver.try_recv().unwrap_err(), TryRecvError::Empty);
    }

    #[test]
    fn the_end_is_seen_through_a_renewal_and_none_comes_after_it() {
        let (outbox, mut receiver) = outbox(10);
        assert!(receiver.renew());
        outbox.try_send(Packet::PingResp).unwrap();
        drop(outbox);
        assert!(receiver.has_work());
        assert!(matches!(receiver.recv(), Ok(Packet::PingResp)));
        assert_eq!(receiver.recv(), Err(RecvError));
        assert!(!receiver.renew(), "the router's end has gone");
        assert_eq!(receiver.try_recv().unwrap_err(), TryRecvError::Disconnected);
    }

    #[test]
    fn a_full_outbox_refuses_and_a_gone_receiver_is_said() {
        let (outbox, receiver) = outbox(1);
        for _ in 0..outbox.capacity {
            outbox.try_send(Packet::PingResp).unwrap();
        }
        assert_eq!(outbox.try_send(Packet::PingResp), Err(SendFailure::Full));
        drop(receiver);
        assert_eq!(outbox.try_send(Packet::PingResp), Err(SendFailure::Gone));
    }

    #[test]
    fn the_router_renews_at_most_once_in_a_while() {
        let (_outbox, mut receiver) = outbox(10);
        let now = Instant::now();
        assert!(receiver.renew_if_due(now));
        assert!(!receiver.renew_if_due(now + RENEW_EVERY / 2));
        assert!(receiver.renew_if_due(now + RENEW_EVERY));
    }
}
