//! The messages that connection threads and the router exchange.
//!
//! Connection threads send [`Event`]s into the router's bounded [`Inbox`]; the router
//! answers with [`Outgoing`] packets into each connection's bounded [`Outbox`]. These two
//! channels are the only link between them: no broker state is shared.
//!
//! The inbox is bounded twice: in events, by its channel, and in bytes, by an
//! [`InboxBudget`] that every event's [`cost`](Event::cost) is taken from before it
//! is sent and given back once the router has handled it.
//!
//! - `outbox.rs`: a connection's [`Outbox`], from the router to its writer thread.
//! - `flush.rs`: the [`PendingWrites`] the router makes itself after each batch.
//! - `gate.rs`: the [`ReadGate`] that paces a connection's reader.
//! - `inbox.rs`: the router's [`Inbox`] and its [`InboxBudget`].

mod flush;
mod gate;
mod inbox;
mod outbox;

use std::sync::Arc;

pub(crate) use flush::{Flush, PendingWrites};
pub(crate) use gate::{ReadGate, HANDLED_REPORT_EVERY};
pub(crate) use inbox::{Inbox, InboxBudget};
pub(crate) use outbox::{outbox, Outbox, OutboxReceiver, Qos0Room, SendFailure, Wake};
// Named by the documentation of the broker and the router, and by their tests.
#[allow(unused_imports)]
pub(crate) use {
    gate::READER_QUEUE_LIMIT,
    outbox::{Outgoing, OUTBOX_CROWDED_SLOTS, OUTBOX_QOS0_SLOTS, OUTBOX_REPLY_RESERVE},
};

use super::hooks::{ClientInfo, DisconnectReason};
use crate::protocol::{
    Connect, Packet, PacketId, Properties, Publish, Subscribe, SubscribeFilter, TopicFilter,
    Unsubscribe,
};

/// Identifies one network connection for the life of the broker. A client that
/// reconnects gets a new one, so the router can tell late events of a connection it
/// already closed (after a takeover, say) from those of the current one.
pub(crate) type ConnectionId = u64;
/// Closes a connection's socket from another thread (the router, or the listener at
/// shutdown): the transport's [`Closer`](crate::transport::Closer), detached for
/// inline clients. Shutting the socket down wakes its reader and writer, which then
/// exit.
pub(crate) use crate::transport::Closer;

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
    /// Pauses the connection's reader; never closed for an inline client.
    pub(crate) gate: Arc<ReadGate>,
    /// An inline client of the embedding program: authorization hooks are skipped.
    pub(crate) trusted: bool,
    /// MQTT 5: what the connection's thread has to say in the CONNACK (server keep
    /// alive, assigned client identifier, authentication method and data); the
    /// router adds the broker's own properties.
    pub(crate) connack: Option<Box<Properties>>,
}

/// A step of a QoS 1 or QoS 2 exchange, as a client sends it after CONNECT: each
/// carries the packet identifier of the message it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the packets' names in the specification
pub(crate) enum Ack {
    /// PUBACK: the client has a QoS 1 message the broker sent it.
    PubAck(PacketId),
    /// PUBREC: the client has a QoS 2 message the broker sent it.
    PubRec(PacketId),
    /// MQTT 5 PUBREC with an error code: the client refuses a QoS 2 message the
    /// broker sent it, which ends that exchange.
    PubRecRefused(PacketId),
    /// PUBREL: the client releases a QoS 2 message it sent the broker.
    PubRel(PacketId),
    /// PUBCOMP: the client has completed a QoS 2 exchange the broker began.
    PubComp(PacketId),
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
    /// An UNSUBSCRIBE arrived, without the filters too deep to have been subscribed.
    Unsubscribe {
        connection: ConnectionId,
        unsubscribe: Unsubscribe,
    },
    /// A PUBACK, PUBREC, PUBREL or PUBCOMP arrived.
    Ack { connection: ConnectionId, ack: Ack },
    /// A PINGREQ arrived.
    PingReq { connection: ConnectionId },
    /// The connection ended. `session_expiry` is the Session Expiry Interval an
    /// MQTT 5 DISCONNECT set, if it set one.
    Disconnect {
        connection: ConnectionId,
        reason: DisconnectReason,
        session_expiry: Option<u32>,
    },
    /// A packet for the client that its connection thread made (the AUTH of a
    /// re-authentication): sent in order with the router's own.
    Send {
        connection: ConnectionId,
        packet: Packet,
    },
    /// A connection's outbox has drained after the router asked to hear of it
    /// ([`Outbox::watch_for_drain`]): publishers paused for it may go on.
    Drained { connection: ConnectionId },
    /// The embedding program publishes a message (`Broker::publish`): routed like a
    /// client's, with no acknowledgement and no authorization check.
    InlinePublish(Publish),
    /// An inline session of the embedding program publishes
    /// (`InlineSession::publish`): routed as that session's own message, so that
    /// its subscriptions with No Local do not receive it; no acknowledgement and no
    /// authorization check.
    SessionPublish {
        connection: ConnectionId,
        publish: Publish,
    },
    /// An inline session asks how many messages its session holds: `reply` gets
    /// (queued, inflight), or nothing if the session is gone.
    SessionQuery {
        connection: ConnectionId,
        reply: crossbeam_channel::Sender<(usize, usize)>,
    },
    /// An inline session asks for the filters its session is subscribed to.
    SessionFilters {
        connection: ConnectionId,
        reply: crossbeam_channel::Sender<Vec<TopicFilter>>,
    },
    /// The broker is stopping: disconnect everyone, save, and return.
    Shutdown,
}

impl Event {
    /// Roughly how many bytes this event holds while it waits in the router's
    /// inbox: the event itself plus what it points to (topic and payload, filters,
    /// client identifier and will). Senders take it from the [`InboxBudget`] and the
    /// router gives it back, both from the same event, so the two always agree.
    ///
    /// [`Event::Shutdown`] costs nothing: the router also makes one up itself when
    /// every sender has gone, and gives back what that costs.
    pub(crate) fn cost(&self) -> usize {
        let held = match self {
            Event::Publish { publish, .. }
            | Event::InlinePublish(publish)
            | Event::SessionPublish { publish, .. } => {
                publish.topic.as_str().len() + publish.payload.len()
            }
            Event::Subscribe {
                subscribe,
                authorized,
                ..
            } => {
                subscribe
                    .filters
                    .iter()
                    .map(|entry| size_of::<SubscribeFilter>() + entry.filter.as_str().len())
                    .sum::<usize>()
                    + authorized.len()
            }
            Event::Unsubscribe { unsubscribe, .. } => unsubscribe
                .filters
                .iter()
                .map(|filter| size_of::<TopicFilter>() + filter.as_str().len())
                .sum(),
            Event::Connect(new) => {
                let connect = &new.connect;
                size_of::<NewConnection>()
                    + connect.client_id.len()
                    + connect.username.as_ref().map_or(0, String::len)
                    + connect
                        .password
                        .as_ref()
                        .map_or(0, |password| password.len())
                    + connect
                        .will
                        .as_ref()
                        .map_or(0, |will| will.topic.as_str().len() + will.payload.len())
            }
            Event::Shutdown => return 0,
            Event::Send { .. } | Event::SessionQuery { .. } | Event::SessionFilters { .. } => 0,
            Event::Ack { .. }
            | Event::PingReq { .. }
            | Event::Disconnect { .. }
            | Event::Drained { .. } => 0,
        };
        size_of::<Event>() + held
    }
}

#[cfg(test)]
impl Event {
    /// The event a connection's reader sends for `packet`, for tests that drive the
    /// router with packets: UNSUBSCRIBE, PUBACK, PUBREC, PUBREL, PUBCOMP or PINGREQ.
    pub(crate) fn from_packet(connection: ConnectionId, packet: Packet) -> Event {
        let ack = match packet {
            Packet::Unsubscribe(unsubscribe) => {
                return Event::Unsubscribe {
                    connection,
                    unsubscribe,
                }
            }
            Packet::PingReq => return Event::PingReq { connection },
            Packet::PubAck(ack) => Ack::PubAck(ack.packet_id),
            Packet::PubRec(ack) => Ack::PubRec(ack.packet_id),
            Packet::PubRel(ack) => Ack::PubRel(ack.packet_id),
            Packet::PubComp(ack) => Ack::PubComp(ack.packet_id),
            other => panic!("{other} has an event of its own, or none"),
        };
        Event::Ack { connection, ack }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PacketId, QoS, TopicName};

    #[test]
    fn an_event_costs_what_it_holds() {
        let publish = |payload: usize| Event::Publish {
            connection: 1,
            publish: Publish::new(
                TopicName::new("a/b").unwrap(),
                vec![0u8; payload],
                QoS::AtMostOnce,
                false,
            ),
            authorized: true,
        };
        assert_eq!(publish(1000).cost() - publish(0).cost(), 1000);
        let subscribe = |filters: usize| Event::Subscribe {
            connection: 1,
            subscribe: Subscribe {
                packet_id: PacketId::MIN,
                filters: (0..filters)
                    .map(|_| {
                        SubscribeFilter::new(
                            TopicFilter::new("x".repeat(100)).unwrap(),
                            QoS::AtMostOnce,
                        )
                    })
                    .collect(),
                properties: None,
            },
            authorized: vec![true; filters],
        };
        assert!(subscribe(10).cost() >= size_of::<Event>() + 10 * 100);
        assert!(subscribe(10).cost() > subscribe(1).cost());
        assert_eq!(Event::Shutdown.cost(), 0);
        assert_eq!(Event::Drained { connection: 1 }.cost(), size_of::<Event>());
    }
}
