//! An inline session: a client of the router without a socket, with a client
//! identifier of the embedding program's choosing, that may outlive it, and whose
//! QoS 1/2 messages are acknowledged only when the program says so.
//!
//! [`Subscription`](super::Subscription) acknowledges each message as it is taken,
//! which suits a program that reads. A program that passes messages on (a bridge
//! to another broker, a database writer) needs more: the message must stay the
//! broker's responsibility until it has been passed on. An [`InlineSession`] gives
//! that:
//!
//! - its session is persistent if asked (MQTT 3.1.1's clean session 0): what
//!   arrives while nobody holds it is queued, within the session limits, and with
//!   persistence on it is kept in the store across restarts;
//! - a QoS 1/2 message stays unacknowledged until
//!   [`acknowledge`](InlineSession::acknowledge); unacknowledged ones are sent
//!   again when the session is next opened, in order, as to any client;
//! - what it publishes ([`publish`](InlineSession::publish)) is routed as the
//!   session's own, so its subscriptions made with No Local do not receive it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use parking_lot::Mutex;

use super::event::{outbox, Ack, ConnectionId, Event, Inbox, OutboxReceiver};
use super::hooks::DisconnectReason;
use super::inline::connect_inline;
use super::Error;
use crate::protocol::{
    Packet, PacketId, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter, TopicFilter,
    Unsubscribe,
};

/// How long opening a session waits for the router.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A session of the embedding program, from
/// [`Broker::inline_session`](super::Broker::inline_session): it receives what
/// matches its subscriptions, acknowledges QoS 1/2 messages when told to, and
/// publishes as itself. Dropping it disconnects: a persistent session stays in the
/// broker and queues what arrives for the next [`InlineSession`] with its
/// identifier.
///
/// ```
/// use std::time::Duration;
/// use wren::Broker;
/// use wren::config::BrokerConfig;
/// use wren::protocol::{Publish, QoS, SubscribeFilter, TopicFilter, TopicName};
///
/// let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
/// let filter = SubscribeFilter::new(TopicFilter::new("jobs/#")?, QoS::AtLeastOnce);
/// let worker = broker.inline_session("worker", true, vec![filter.clone()])?;
/// broker.publish("jobs/1", "wash", QoS::AtLeastOnce, false)?;
/// let job = worker.recv_timeout(Duration::from_secs(5))?.expect("a job");
/// // Not acknowledged: the next session with this identifier gets it again.
/// drop(worker);
/// let worker = broker.inline_session("worker", true, vec![filter])?;
/// assert!(worker.session_present());
/// let again = worker.recv_timeout(Duration::from_secs(5))?.expect("the job again");
/// assert_eq!(again.payload, job.payload);
/// worker.acknowledge(&again);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InlineSession {
    id: ConnectionId,
    client_id: String,
    router: Inbox,
    outbox: OutboxReceiver,
    /// Packets that came while the session was being set up, to be handed out
    /// first: at most the inflight window of resent messages.
    early: Mutex<VecDeque<Packet>>,
    session_present: bool,
    granted: Vec<ReasonCode>,
}

impl InlineSession {
    /// Connects the session and subscribes it; called by the broker.
    pub(crate) fn start(
        id: ConnectionId,
        router: Inbox,
        client_id: &str,
        persistent: bool,
        filters: Vec<SubscribeFilter>,
        max_inflight: usize,
    ) -> Result<InlineSession, Error> {
        let (sender, outbox) = outbox(max_inflight);
        connect_inline(&router, id, client_id, persistent, sender)?;
        let gone = || Error::Inline("the broker is shutting down".into());
        let subscribing = !filters.is_empty();
        if subscribing {
            router
                .send(Event::Subscribe {
                    connection: id,
                    authorized: vec![true; filters.len()],
                    subscribe: Subscribe::new(PacketId::MIN, filters),
                })
                .map_err(|_| gone())?;
        }
        let mut session = InlineSession {
            id,
            client_id: client_id.to_owned(),
            router,
            outbox,
            early: Mutex::new(VecDeque::new()),
            session_present: false,
            granted: Vec::new(),
        };
        // CONNACK, then messages the session kept (sent again at once), then
        // SUBACK. Messages are kept for `recv`.
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let mut connected = false;
        while !connected || (subscribing && session.granted.is_empty()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match session.outbox.recv_timeout(left) {
                Ok(Packet::ConnAck(connack)) => {
                    if connack.code != ReasonCode::SUCCESS {
                        return Err(Error::Inline(format!(
                            "the session {client_id} was refused ({})",
                            connack.code
                        )));
                    }
                    session.session_present = connack.session_present;
                    connected = true;
                }
                Ok(Packet::SubAck(suback)) => session.granted = suback.reason_codes,
                Ok(packet) => session.early.get_mut().push_back(packet),
                Err(_) => return Err(Error::Inline("the router did not answer".into())),
            }
        }
        Ok(session)
    }

    /// The session's client identifier.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether the broker still had the session (and its subscriptions and
    /// queued messages) from an earlier [`InlineSession`] with this identifier.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// The broker's answer to each subscription asked for at the start, in
    /// order: the granted QoS (0, 1 or 2) or a refusal (0x80 and above).
    pub fn granted(&self) -> &[ReasonCode] {
        &self.granted
    }

    /// Waits at most `timeout` for the next message: `Ok(None)` if none came in
    /// time, [`Error::Closed`] once the broker has stopped. A QoS 1/2 message
    /// stays unacknowledged until [`acknowledge`](Self::acknowledge); the broker
    /// sends at most its inflight window of them before the first is.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Publish>, Error> {
        loop {
            let early = self.early.lock().pop_front();
            let packet = match early {
                Some(packet) => packet,
                None => match self.outbox.recv_timeout(timeout) {
                    Ok(packet) => packet,
                    Err(RecvTimeoutError::Timeout) => return Ok(None),
                    Err(RecvTimeoutError::Disconnected) => return Err(Error::Closed),
                },
            };
            // Publishers paused while this session fell behind may go on.
            self.outbox.report_drained(&self.router, self.id);
            if let Some(message) = self.answer(packet) {
                return Ok(Some(message));
            }
        }
    }

    /// Acknowledges a QoS 1/2 message from [`recv_timeout`](Self::recv_timeout):
    /// the broker forgets it (PUBACK), or for QoS 2 is told it arrived (PUBREC;
    /// the broker's PUBREL is answered by the next
    /// [`recv_timeout`](Self::recv_timeout), so keep reading). Nothing for QoS 0.
    /// Acknowledge in the order received where possible: the broker frees its
    /// inflight window in that order only as far as the acknowledgements go.
    pub fn acknowledge(&self, message: &Publish) {
        match (message.qos, message.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.reply(Ack::PubAck(id)),
            (QoS::ExactlyOnce, Some(id)) => self.reply(Ack::PubRec(id)),
            _ => {}
        }
    }

    /// Publishes `message` as this session: routed as a client's message would be
    /// (retained if it says so), but as this session's own, so its subscriptions
    /// made with No Local do not receive it. No authorization is asked. Returns
    /// once the router has it (it blocks only while the router's inbox is full);
    /// there is no acknowledgement to wait for, and with a store a QoS 1/2 copy
    /// for a persistent session is committed with the router's next batch, as
    /// [`Broker::publish`](super::Broker::publish)'s are.
    pub fn publish(&self, mut message: Publish) -> Result<(), Error> {
        message.dup = false;
        message.packet_id = None;
        self.router
            .send(Event::SessionPublish {
                connection: self.id,
                publish: message,
            })
            .map_err(|_| Error::Inline("the broker is shutting down".into()))
    }

    /// How many messages the session holds: (queued, sent and not yet
    /// acknowledged). It asks the router, and waits at most a second for it.
    pub fn held(&self) -> Result<(usize, usize), Error> {
        self.ask(|connection, reply| Event::SessionQuery { connection, reply })
    }

    /// The filters the session is subscribed to, in no order: those of this
    /// start and, for a persistent session, those it kept from before. It asks
    /// the router, and waits at most a second for it.
    pub fn subscriptions(&self) -> Result<Vec<TopicFilter>, Error> {
        self.ask(|connection, reply| Event::SessionFilters { connection, reply })
    }

    /// Sends the router the question `event` makes, and waits at most a second
    /// for its answer.
    fn ask<T>(
        &self,
        event: impl FnOnce(ConnectionId, crossbeam_channel::Sender<T>) -> Event,
    ) -> Result<T, Error> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.router
            .send(event(self.id, reply))
            .map_err(|_| Error::Inline("the broker is shutting down".into()))?;
        answer
            .recv_timeout(Duration::from_secs(1))
            .map_err(|_| Error::Inline("the router did not answer".into()))
    }

    /// Unsubscribes the session from `filters` (a persistent session keeps its
    /// subscriptions until then). Returns once the router has the request.
    pub fn unsubscribe(&self, filters: Vec<TopicFilter>) -> Result<(), Error> {
        if filters.is_empty() {
            return Ok(());
        }
        self.router
            .send(Event::Unsubscribe {
                connection: self.id,
                unsubscribe: Unsubscribe::new(PacketId::MIN, filters),
            })
            .map_err(|_| Error::Inline("the broker is shutting down".into()))
    }

    fn reply(&self, ack: Ack) {
        // If the router is gone, so is the session: nothing to answer.
        let _ = self.router.send(Event::Ack {
            connection: self.id,
            ack,
        });
    }

    /// Answers the broker's side of the QoS exchanges; returns a message, if the
    /// packet carried one.
    fn answer(&self, packet: Packet) -> Option<Publish> {
        match packet {
            Packet::Publish(publish) => Some(publish),
            // A QoS 2 message received: its exchange ends here.
            Packet::PubRel(release) => {
                self.reply(Ack::PubComp(release.packet_id));
                None
            }
            // CONNACK, SUBACK.
            _ => None,
        }
    }
}

impl Drop for InlineSession {
    /// Leaves as a client that says DISCONNECT: a persistent session stays.
    fn drop(&mut self) {
        let _ = self.router.send(Event::Disconnect {
            connection: self.id,
            reason: DisconnectReason::Disconnect,
            session_expiry: None,
        });
    }
}

/// Publishes as the embedding program, as [`Broker::publish`](super::Broker::publish)
/// does, from any thread: cheap to clone, and usable while something else owns the
/// [`Broker`](super::Broker). From [`Broker::publisher`](super::Broker::publisher).
#[derive(Debug, Clone)]
pub struct Publisher {
    router: Inbox,
}

impl Publisher {
    pub(crate) fn new(router: Inbox) -> Publisher {
        Publisher { router }
    }

    /// Publishes `message` as [`Broker::publish`](super::Broker::publish) does:
    /// no authorization is asked, `$SYS` topics included.
    pub fn publish(&self, message: Publish) -> Result<(), Error> {
        self.router
            .send(Event::InlinePublish(message))
            .map_err(|_| Error::Inline("the broker is shutting down".into()))
    }
}
