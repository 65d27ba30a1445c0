//! The messages that connection threads and the router exchange.
//!
//! Connection threads send [`Event`]s into the router's bounded inbox; the router
//! answers with [`Outgoing`] packets into each connection's bounded [`Outbox`]. These two
//! channels are the only link between them: no broker state is shared.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, RecvError, Sender, TryRecvError};

use super::connection::Closer;
use super::hooks::{ClientInfo, DisconnectReason};
use crate::protocol::{Connect, Packet, Publish, Subscribe};

/// Identifies one network connection for the life of the broker. A client that
/// reconnects gets a new one, so the router can tell late events of a connection it
/// already closed (after a takeover, say) from those of the current one.
pub(crate) type ConnectionId = u64;

/// What the router sends to a connection: a packet for its writer thread to encode
/// and write. A PUBLISH shares its topic and payload buffers with every other
/// subscriber's copy; only the fixed header and packet identifier differ.
pub(crate) type Outgoing = Packet;

/// QoS 0 messages are put in a connection's outbox only while it holds fewer than
/// this many packets and [`OUTBOX_QOS0_BYTES`] of payload; beyond, they are dropped
/// and counted.
pub(crate) const OUTBOX_QOS0_SLOTS: usize = 8192;

/// Payload bytes beyond which a connection's outbox takes no more QoS 0 messages, so
/// a client that stops reading holds at most this much (plus its inflight window).
pub(crate) const OUTBOX_QOS0_BYTES: usize = 8 * 1024 * 1024;

/// Room kept in every outbox for acknowledgements and other replies. A client that
/// leaves this many replies unread has stopped reading and is disconnected
/// [MQTT-4.8.0-2].
pub(crate) const OUTBOX_REPLY_RESERVE: usize = 128;

/// The capacity of a connection's outbox: QoS 0 slots, the inflight window (QoS 1/2
/// PUBLISH and PUBREL packets, bounded by the session), and the reply reserve.
pub(crate) fn outbox_capacity(max_inflight: usize) -> usize {
    OUTBOX_QOS0_SLOTS + max_inflight.max(1) + OUTBOX_REPLY_RESERVE
}

/// The router's end of a connection's outbox: a channel plus a count of the payload
/// bytes in it, which the writer decreases as it takes packets out.
///
/// The channel is crossbeam's linked-block flavour, which allocates as it fills,
/// rather than its array flavour, which would allocate (and touch) every slot up
/// front: some 200 KiB per connection at this capacity, idle or not. The bound is
/// enforced here instead, which is exact because the router is the only sender.
#[derive(Debug)]
pub(crate) struct Outbox {
    sender: Sender<Outgoing>,
    capacity: usize,
    bytes: Arc<AtomicUsize>,
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
    bytes: Arc<AtomicUsize>,
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
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            sender,
            capacity: outbox_capacity(max_inflight),
            bytes: bytes.clone(),
        },
        OutboxReceiver { receiver, bytes },
    )
}

impl Outbox {
    /// Queues a packet without waiting. On failure the packet is dropped.
    pub(crate) fn try_send(&self, packet: Outgoing) -> Result<(), SendFailure> {
        if self.sender.len() >= self.capacity {
            return Err(SendFailure::Full);
        }
        let len = payload_len(&packet);
        // Counted before the send, so the writer never subtracts what was not added.
        self.bytes.fetch_add(len, Ordering::Relaxed);
        match self.sender.try_send(packet) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                // An unbounded channel only refuses when its receiver is gone.
                Err(SendFailure::Gone)
            }
        }
    }

    /// Whether a QoS 0 message may still be queued.
    pub(crate) fn has_qos0_room(&self) -> bool {
        self.sender.len() < OUTBOX_QOS0_SLOTS
            && self.bytes.load(Ordering::Relaxed) < OUTBOX_QOS0_BYTES
    }
}

impl OutboxReceiver {
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

    fn taken(&self, packet: &Outgoing) {
        self.bytes.fetch_sub(payload_len(packet), Ordering::Relaxed);
    }
}

/// A client whose CONNECT was accepted by its connection thread.
#[derive(Debug)]
pub(crate) struct NewConnection {
    pub(crate) id: ConnectionId,
    /// The CONNECT, with the client identifier filled in when the client sent none
    /// and the password removed.
    pub(crate) connect: Connect,
    pub(crate) client: ClientInfo,
    pub(crate) outbox: Outbox,
    pub(crate) closer: Closer,
    /// An inline client of the embedding program: authorization hooks are skipped.
    pub(crate) trusted: bool,
}

/// What a connection thread tells the router.
#[derive(Debug)]
pub(crate) enum Event {
    /// A client connected (its CONNECT passed every check on its own thread).
    Connect(Box<NewConnection>),
    /// A PUBLISH arrived; `authorized` is the hooks' verdict on its topic.
    Publish {
        connection: ConnectionId,
        publish: Publish,
        authorized: bool,
    },
    /// A SUBSCRIBE arrived; `authorized` has the hooks' verdict for each filter.
    Subscribe {
        connection: ConnectionId,
        subscribe: Subscribe,
        authorized: Vec<bool>,
    },
    /// Any other packet a client may send after CONNECT: PUBACK, PUBREC, PUBREL,
    /// PUBCOMP, UNSUBSCRIBE, PINGREQ.
    Packet {
        connection: ConnectionId,
        packet: Packet,
    },
    /// The connection ended.
    Disconnect {
        connection: ConnectionId,
        reason: DisconnectReason,
    },
    /// The embedding program publishes a message (`Broker::publish`): routed like a
    /// client's, with no acknowledgement and no authorization check.
    InlinePublish(Publish),
    /// The broker is stopping: disconnect everyone, save, and return.
    Shutdown,
}
