//! Publishing and subscribing from the program that embeds the broker, without a
//! network client.
//!
//! An inline subscription is a client of the router like any other: it has a
//! session, a connection id and an outbox, and it answers the QoS 1 and QoS 2
//! handshakes, so messages reach it with the same routing, retained-message and
//! QoS rules as network clients. Only the socket is missing. The embedding program
//! is trusted: inline publishes and subscriptions skip the authorization hooks.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TryRecvError};

use super::event::{
    outbox, Ack, Closer, ConnectionId, Event, Inbox, NewConnection, Outbox, OutboxReceiver,
};
use super::hooks::{ClientInfo, DisconnectReason};
use super::Error;
use crate::protocol::{
    Connect, Packet, PacketId, ProtocolVersion, Publish, QoS, Subscribe, SubscribeFilter,
    SubscribeReturnCode, TopicFilter,
};

/// How long [`Broker::subscribe`](super::Broker::subscribe) waits for the router.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The name inline clients are shown with in logs and to observing hooks.
pub(crate) const INLINE_LISTENER: &str = "inline";

/// Connects an inline client to the router: MQTT 3.1.1 without keep-alive,
/// persistent or not, trusted (no authorization hook is asked about it), with no
/// socket to close.
pub(crate) fn connect_inline(
    router: &Inbox,
    id: ConnectionId,
    client_id: &str,
    persistent: bool,
    outbox: Outbox,
) -> Result<(), Error> {
    let client = ClientInfo {
        client_id: client_id.to_owned(),
        username: None,
        remote_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        listener: INLINE_LISTENER.into(),
        protocol: ProtocolVersion::V3_1_1,
    };
    // MQTT 3.1.1's clean session 0 keeps the session for ever; MQTT 5 would
    // need a Session Expiry Interval to say the same.
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 0;
    connect.clean_session = !persistent;
    router
        .send(Event::Connect(Box::new(NewConnection {
            id,
            connect,
            client,
            outbox,
            closer: Closer::detached(),
            gate: Default::default(),
            trusted: true,
            connack: None,
        })))
        .map_err(|_| Error::Inline("the broker is shutting down".into()))
}

/// Messages matching an inline subscription, from
/// [`Broker::subscribe`](super::Broker::subscribe). Dropping it unsubscribes.
///
/// Iterate it, or take messages one at a time. The client's
/// [`wren::client::Subscription`](crate::client::Subscription) follows the same
/// contract:
///
/// - [`recv`](Self::recv) waits for the next message;
/// - [`recv_timeout`](Self::recv_timeout) waits at most so long, `Ok(None)` if
///   nothing came;
/// - [`try_recv`](Self::try_recv) never waits, `Ok(None)` if nothing is there yet;
/// - [`iter`](Self::iter), `&subscription` and `subscription` iterate, blocking,
///   and end when the subscription is closed.
///
/// Each fails with [`Error::Closed`] only once the subscription is closed: the
/// broker has stopped.
///
/// ```
/// use std::time::Duration;
/// use wren::Broker;
/// use wren::config::BrokerConfig;
/// use wren::protocol::QoS;
///
/// let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
/// let alerts = broker.subscribe("alerts/#", QoS::AtLeastOnce)?;
/// broker.publish("alerts/fire", "kitchen", QoS::AtLeastOnce, false)?;
/// let message = alerts.recv_timeout(Duration::from_secs(5))?.expect("a message");
/// assert_eq!(message.topic, "alerts/fire");
/// assert_eq!(&message.payload[..], b"kitchen");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Subscription {
    id: ConnectionId,
    router: Inbox,
    outbox: OutboxReceiver,
    granted: QoS,
}

impl Subscription {
    /// Connects an inline client and subscribes it; called by the broker.
    pub(crate) fn start(
        id: ConnectionId,
        router: Inbox,
        filter: TopicFilter,
        qos: QoS,
        max_inflight: usize,
    ) -> Result<Subscription, Error> {
        let client_id = format!("wren-inline-{id}");
        let (sender, outbox) = outbox(max_inflight);
        connect_inline(&router, id, &client_id, false, sender)?;
        let gone = || Error::Inline("the broker is shutting down".into());
        router
            .send(Event::Subscribe {
                connection: id,
                subscribe: Subscribe::new(PacketId::MIN, vec![SubscribeFilter::new(filter, qos)]),
                authorized: vec![true],
            })
            .map_err(|_| gone())?;
        let mut subscription = Subscription {
            id,
            router,
            outbox,
            granted: qos,
        };
        // CONNACK, then SUBACK; retained messages may follow at once and stay queued.
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match subscription.outbox.recv_timeout(left) {
                Ok(Packet::SubAck(suback)) => {
                    match suback.reason_codes.first().map(|&c| c.into()) {
                        Some(SubscribeReturnCode::Success(granted)) => {
                            subscription.granted = granted
                        }
                        _ => return Err(Error::Inline("the subscription was refused".into())),
                    }
                    return Ok(subscription);
                }
                Ok(_) => continue, // CONNACK
                Err(_) => return Err(Error::Inline("the router did not answer".into())),
            }
        }
    }

    /// The QoS the subscription was granted.
    pub fn granted_qos(&self) -> QoS {
        self.granted
    }

    /// Waits for the next message; [`Error::Closed`] once the broker has stopped.
    pub fn recv(&self) -> Result<Publish, Error> {
        loop {
            let packet = self.outbox.recv().map_err(|_| Error::Closed)?;
            if let Some(message) = self.answer(packet) {
                return Ok(message);
            }
        }
    }

    /// Waits at most `timeout` for the next message: `Ok(None)` if none came in
    /// time, [`Error::Closed`] once the broker has stopped.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Publish>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let packet = match self.outbox.recv_timeout(left) {
                Ok(packet) => packet,
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Closed),
            };
            if let Some(message) = self.answer(packet) {
                return Ok(Some(message));
            }
        }
    }

    /// The next message if one is waiting, `Ok(None)` if not; never blocks.
    /// [`Error::Closed`] once the broker has stopped.
    pub fn try_recv(&self) -> Result<Option<Publish>, Error> {
        loop {
            let packet = match self.outbox.try_recv() {
                Ok(packet) => packet,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(Error::Closed),
            };
            if let Some(message) = self.answer(packet) {
                return Ok(Some(message));
            }
        }
    }

    /// A blocking iterator over the messages, ending when the broker stops.
    pub fn iter(&self) -> Iter<'_> {
        Iter { subscription: self }
    }

    /// Plays the client's part of the QoS handshakes; returns the message, if the
    /// packet carried one.
    fn answer(&self, packet: Packet) -> Option<Publish> {
        // Publishers paused while this subscription fell behind may go on.
        self.outbox.report_drained(&self.router, self.id);
        let reply = |ack: Ack| {
            // If the router is gone, so is the subscription: nothing to answer.
            let _ = self.router.send(Event::Ack {
                connection: self.id,
                ack,
            });
        };
        match packet {
            Packet::Publish(publish) => {
                match (publish.qos, publish.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => reply(Ack::PubAck(id)),
                    (QoS::ExactlyOnce, Some(id)) => reply(Ack::PubRec(id)),
                    _ => {}
                }
                Some(publish)
            }
            Packet::PubRel(release) => {
                reply(Ack::PubComp(release.packet_id));
                None
            }
            _ => None,
        }
    }
}

impl<'a> IntoIterator for &'a Subscription {
    type Item = Publish;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Subscription {
    type Item = Publish;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter { subscription: self }
    }
}

/// Iterator over the messages of an inline [`Subscription`], from
/// [`Subscription::iter`]; ends when the broker stops.
#[derive(Debug)]
pub struct Iter<'a> {
    subscription: &'a Subscription,
}

impl Iterator for Iter<'_> {
    type Item = Publish;

    fn next(&mut self) -> Option<Publish> {
        self.subscription.recv().ok()
    }
}

/// Owning iterator over the messages of an inline [`Subscription`]; ends when the
/// broker stops, and unsubscribes when dropped.
#[derive(Debug)]
pub struct IntoIter {
    subscription: Subscription,
}

impl Iterator for IntoIter {
    type Item = Publish;

    fn next(&mut self) -> Option<Publish> {
        self.subscription.recv().ok()
    }
}

impl Drop for Subscription {
    /// Leaves as a client that says DISCONNECT: its clean session goes with it.
    fn drop(&mut self) {
        let _ = self.router.send(Event::Disconnect {
            connection: self.id,
            reason: DisconnectReason::Disconnect,
            session_expiry: None,
        });
    }
}
