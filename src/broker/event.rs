//! The messages that connection threads and the router exchange.
//!
//! Connection threads send [`Event`]s into the router's bounded inbox; the router
//! answers with [`Outgoing`] packets into each connection's bounded outbox. These two
//! channels are the only link between them: no broker state is shared.

use crossbeam_channel::Sender;

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
/// this many packets; beyond, they are dropped and counted.
pub(crate) const OUTBOX_QOS0_SLOTS: usize = 1024;

/// Room kept in every outbox for acknowledgements and other replies. A client that
/// leaves this many replies unread has stopped reading and is disconnected
/// [MQTT-4.8.0-2].
pub(crate) const OUTBOX_REPLY_RESERVE: usize = 128;

/// The capacity of a connection's outbox: QoS 0 slots, the inflight window (QoS 1/2
/// PUBLISH and PUBREL packets, bounded by the session), and the reply reserve.
pub(crate) fn outbox_capacity(max_inflight: usize) -> usize {
    OUTBOX_QOS0_SLOTS + max_inflight.max(1) + OUTBOX_REPLY_RESERVE
}

/// A client whose CONNECT was accepted by its connection thread.
#[derive(Debug)]
pub(crate) struct NewConnection {
    pub(crate) id: ConnectionId,
    /// The CONNECT, with the client identifier filled in when the client sent none
    /// and the password removed.
    pub(crate) connect: Connect,
    pub(crate) client: ClientInfo,
    pub(crate) outbox: Sender<Outgoing>,
    pub(crate) closer: Closer,
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
    /// The broker is stopping: disconnect everyone, save, and return.
    Shutdown,
}
