//! The connection thread: the one thread that owns the session.
//!
//! It waits, with crossbeam's `select!`, on three sources at once and on one
//! deadline, and never polls:
//!
//! - *control* messages (a [`Subscription`](super::Subscription) dropped, room made in
//!   a full one, disconnect), always listened to;
//! - *commands* from [`Client`](super::Client) handles (publish, subscribe,
//!   unsubscribe), listened to only while connected and while few enough requests
//!   wait for room in the inflight window, so that a caller waits, with its
//!   timeout, instead of memory growing;
//! - *incoming* packets from the reader thread of the current connection;
//! - the deadline: the next keep-alive ping or PINGRESP check, or the next reconnect
//!   attempt.
//!
//! After handling one event it takes whatever else is already waiting (up to a
//! batch) and then writes everything in one `write`: batching is where throughput
//! comes from.
//!
//! Received messages go to the application's receivers through
//! [`Deliveries`](super::delivery), which never blocks this thread.
//!
//! Losing the connection and reconnecting live in `worker/reconnect.rs`.

mod reauth;
mod reconnect;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use parking_lot::Mutex;

use super::connection::{BrokerTerms, Incoming, Link};
use super::delivery::{Deliveries, Pushed, Target};
use super::state::{Done, State, StateError};
use super::{ClientOptions, Error, Wait};
use crate::protocol::{
    Disconnect, Packet, PacketId, Properties, Publish, QoS, ReasonCode, SubscribeFilter,
    TopicFilter,
};

/// How many events are handled before the queued packets are written.
const BATCH: usize = 256;

/// How many requests the thread takes in ahead of the inflight window: they wait
/// in [`Worker::waiting`] for acknowledgements to make room.
const WAITING: usize = 128;

/// How low [`Worker::waiting`] must fall before the thread takes more requests.
/// Taking them in a burst, not one per acknowledgement, wakes a publisher blocked
/// on the full request queue once per burst instead of once per message.
const WAITING_REFILL: usize = WAITING / 2;

/// How long the thread sleeps when nothing at all can happen: it has no deadline.
const IDLE: Duration = Duration::from_secs(24 * 60 * 60);

/// Where the SUBACK of a caller's SUBSCRIBE goes: its packet id and its code for
/// each filter.
pub(crate) type SubAckReply = Sender<Result<(PacketId, Vec<ReasonCode>), Error>>;

/// Where the UNSUBACK of a caller's UNSUBSCRIBE goes: MQTT 5's code for each
/// filter (none over 3.1.1).
pub(crate) type UnsubAckReply = Sender<Result<Vec<ReasonCode>, Error>>;

/// A request from a [`Client`](super::Client) handle.
pub(crate) enum Command {
    Publish {
        publish: Publish,
        reply: Option<Sender<Result<(), Error>>>,
    },
    Subscribe {
        filters: Vec<SubscribeFilter>,
        properties: Option<Box<Properties>>,
        target: Target,
        reply: SubAckReply,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        properties: Option<Box<Properties>>,
        reply: UnsubAckReply,
    },
    /// MQTT 5: authenticate again on this connection (AUTH 0x19).
    Reauthenticate { reply: Sender<Result<(), Error>> },
}

/// Housekeeping that must never wait behind commands.
pub(crate) enum Control {
    /// A catch-all receiver ([`Messages`](super::Messages)).
    Register(Target),
    /// A [`Subscription`](super::Subscription) or [`Messages`](super::Messages) was
    /// dropped.
    Drop(u64),
    /// A receiver that was full has room again.
    Resume,
    /// Finish what is in flight (bounded by the operation timeout), say this
    /// DISCONNECT, and stop.
    Disconnect(Sender<()>, Disconnect),
}

/// What the state machine gives back when the broker answers.
pub(crate) enum Token {
    Publish(Option<Sender<Result<(), Error>>>),
    Subscribe {
        reply: Option<SubAckReply>,
        target: Option<u64>,
        filters: Vec<SubscribeFilter>,
        properties: Option<Box<Properties>>,
    },
    Unsubscribe(Option<UnsubAckReply>),
}

impl Token {
    fn fail(self, error: &Error) {
        match self {
            Token::Publish(Some(reply)) => {
                let _ = reply.send(Err(error.duplicate()));
            }
            Token::Unsubscribe(Some(reply)) => {
                let _ = reply.send(Err(error.duplicate()));
            }
            Token::Subscribe {
                reply: Some(reply), ..
            } => {
                let _ = reply.send(Err(error.duplicate()));
            }
            _ => {}
        }
    }
}

/// What the [`Client`](super::Client) handles and the thread share.
#[derive(Debug)]
pub(crate) struct Status {
    pub connected: AtomicBool,
    /// Why the connection was lost for good, once it has been.
    pub lost: Mutex<Option<Error>>,
    /// Never receives: it disconnects when the thread has finished. A request that
    /// slipped into the queue after the thread's last look at it is never answered,
    /// and this is how its caller learns so at once.
    pub gone: Receiver<()>,
}

impl Status {
    /// The shared status, and what the thread holds until it has finished.
    pub fn new() -> (Status, Sender<()>) {
        let (alive, gone) = crossbeam_channel::bounded(0);
        let status = Status {
            connected: AtomicBool::new(false),
            lost: Mutex::new(None),
            gone,
        };
        (status, alive)
    }
}

pub(crate) struct Worker {
    options: ClientOptions,
    client_id: String,
    state: State<Token>,
    connection: Option<Link>,
    commands: Receiver<Command>,
    control: Receiver<Control>,
    status: Arc<Status>,
    /// Dropped with the worker, after every answer it will ever give: see
    /// [`Status::gone`].
    _alive: Sender<()>,
    /// Requests taken from the queue that wait, in order, for room in the inflight
    /// window (or for a free packet id). At most [`WAITING`].
    waiting: VecDeque<Command>,
    /// The application's receivers and the messages waiting for them.
    deliveries: Deliveries,
    /// Filters the broker has granted, with the properties of their SUBSCRIBE, for
    /// subscribing again after a reconnect to a broker that kept no session.
    active: BTreeMap<String, (SubscribeFilter, Option<Box<Properties>>)>,
    /// Failed reconnect attempts in a row, counted against `Reconnect::retries`.
    reconnect_attempt: u32,
    /// How far the wait before the next attempt has backed off. Reset only by a
    /// connection that lasted, so that a broker that accepts and then drops the
    /// client at once is not hammered.
    backoff: u32,
    connected_at: Instant,
    next_attempt: Option<Instant>,
    closing: Option<(Instant, Vec<Sender<()>>)>,
    /// The DISCONNECT said when the client stops.
    goodbye: Disconnect,
    /// MQTT 5: a re-authentication under way: who waits for it, and how many
    /// challenges have been answered.
    reauthenticating: Option<(Sender<Result<(), Error>>, usize)>,
    /// What the broker said of the current connection (MQTT 5).
    terms: BrokerTerms,
    /// Set when the connection is lost for good: why.
    dead: Option<Error>,
    /// Reader threads of closed connections, joined when the client stops.
    old_readers: Vec<std::thread::JoinHandle<()>>,
    /// Every sender of `control` is gone (never while a handle lives).
    control_closed: bool,
}

/// How many QoS 1/2 messages may wait for their acknowledgements: the client's
/// `max_inflight`, and no more than the broker's Receive Maximum (MQTT 5)
/// [MQTT-3.3.4-7].
pub(super) fn inflight_window(options: &ClientOptions, terms: &BrokerTerms) -> usize {
    options.max_inflight.min(usize::from(terms.receive_maximum))
}

impl Worker {
    #[allow(clippy::too_many_arguments)] // one call site, each argument named there
    pub(crate) fn new(
        options: ClientOptions,
        client_id: String,
        connection: Link,
        terms: BrokerTerms,
        commands: Receiver<Command>,
        control: Receiver<Control>,
        status: Arc<Status>,
        alive: Sender<()>,
    ) -> Worker {
        let state = State::new(
            inflight_window(&options, &terms),
            options.ping_interval(terms.keep_alive),
            options.ping_timeout(),
            Instant::now(),
        );
        status.connected.store(true, Ordering::SeqCst);
        Worker {
            deliveries: Deliveries::new(options.message_capacity),
            options,
            client_id,
            state,
            connection: Some(connection),
            terms,
            commands,
            control,
            status,
            _alive: alive,
            waiting: VecDeque::with_capacity(WAITING),
            active: BTreeMap::new(),
            reconnect_attempt: 0,
            backoff: 0,
            connected_at: Instant::now(),
            next_attempt: None,
            closing: None,
            goodbye: Disconnect::default(),
            reauthenticating: None,
            dead: None,
            old_readers: Vec::new(),
            control_closed: false,
        }
    }

    /// Runs until the client disconnects or the connection is lost for good.
    pub(crate) fn run(mut self) {
        let never_commands = crossbeam_channel::never();
        let never_incoming = crossbeam_channel::never();
        while !self.finished() {
            // A busy connection may never let the select below time out: deadlines
            // are checked here too, or keep-alive would starve under load.
            if self
                .next_deadline()
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                self.on_deadline();
                self.flush();
                continue;
            }
            let commands = if self.wants_commands() {
                self.commands.clone()
            } else {
                never_commands.clone()
            };
            let control = if self.control_closed {
                crossbeam_channel::never()
            } else {
                self.control.clone()
            };
            let incoming = match &self.connection {
                Some(connection) => connection.incoming.clone(),
                None => never_incoming.clone(),
            };
            let timeout = self.next_deadline().map_or(IDLE, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            select! {
                recv(control) -> message => match message {
                    Ok(message) => self.on_control(message),
                    // Every handle is gone without a word: nobody is left to serve.
                    Err(_) => {
                        self.control_closed = true;
                        self.begin_close(None);
                    }
                },
                recv(commands) -> command => match command {
                    Ok(command) => {
                        self.drain_control_before(command);
                        self.take_commands();
                    }
                    Err(_) => self.begin_close(None),
                },
                recv(incoming) -> event => {
                    // A reader always says why it stops; a silent end means it
                    // died, and the connection with it.
                    let event = event.unwrap_or_else(|_| {
                        Incoming::Closed(Error::Disconnected(Some("the reader thread stopped".into())))
                    });
                    self.on_incoming(event);
                    for _ in 0..BATCH {
                        match incoming.try_recv() {
                            Ok(event) if self.connection.is_some() => self.on_incoming(event),
                            _ => break,
                        }
                    }
                    // Acknowledgements opened the inflight window: fill it now, so
                    // that the publishes they let through go out in the same write.
                    self.take_commands();
                },
                default(timeout) => self.on_deadline(),
            }
            self.flush();
        }
        self.finish();
    }

    /// Whether requests can be taken in: connected, and room to keep them.
    fn accepting_commands(&self) -> bool {
        self.connection.is_some() && self.waiting.len() < WAITING && self.dead.is_none()
    }

    /// Whether to listen for requests now. With requests already waiting for the
    /// inflight window, only once they have thinned out (see [`WAITING_REFILL`]).
    fn wants_commands(&self) -> bool {
        self.accepting_commands() && self.closing.is_none() && self.waiting.len() <= WAITING_REFILL
    }

    fn finished(&self) -> bool {
        if self.dead.is_some() {
            return true;
        }
        match &self.closing {
            None => false,
            Some((deadline, _)) => {
                self.connection.is_none()
                    || (self.waiting.is_empty() && !self.state.has_outgoing())
                    || Instant::now() >= *deadline
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timer = match &self.connection {
            Some(_) => self.state.next_keep_alive(),
            None => self.next_attempt,
        };
        match (&self.closing, timer) {
            (Some((closing, _)), Some(timer)) => Some(timer.min(*closing)),
            (Some((closing, _)), None) => Some(*closing),
            (None, timer) => timer,
        }
    }

    /// Takes the requests already queued, up to a batch, while there is room to
    /// carry them out or keep them waiting. Does nothing until the waiting ones have
    /// thinned out (see [`WAITING_REFILL`]).
    fn take_commands(&mut self) {
        if !self.wants_commands() {
            return;
        }
        for _ in 0..BATCH {
            if !self.accepting_commands() || self.closing.is_some() {
                break;
            }
            self.drain_control();
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(_) => break,
            }
        }
    }

    // ---- events ----------------------------------------------------------------

    /// Handles every control message already sent. Called before each command, so
    /// that a subscription dropped before a publish is unsubscribed before it.
    /// Handles the control messages waiting, then `command`, the request in hand.
    ///
    /// A control message sent before the request (a new [`Messages`] receiver, say)
    /// must apply to what the request brings. A disconnect, though, carries out the
    /// requests still queued, and the one in hand was made before them: it goes
    /// first, or a publisher's first message would go out last [MQTT-4.6.0-6].
    ///
    /// [`Messages`]: super::Messages
    fn drain_control_before(&mut self, command: Command) {
        let mut in_hand = Some(command);
        while let Ok(control) = self.control.try_recv() {
            if matches!(control, Control::Disconnect(..)) {
                if let Some(command) = in_hand.take() {
                    self.on_command(command);
                }
            }
            self.on_control(control);
        }
        if let Some(command) = in_hand {
            self.on_command(command);
        }
    }

    fn drain_control(&mut self) {
        while let Ok(control) = self.control.try_recv() {
            self.on_control(control);
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Register(target) => self.register(target),
            Control::Drop(id) => {
                self.remove_target(id);
                self.deliver_pending();
            }
            Control::Resume => self.deliver_pending(),
            Control::Disconnect(reply, goodbye) => {
                self.goodbye = goodbye;
                self.begin_close(Some(reply));
            }
        }
    }

    fn begin_close(&mut self, reply: Option<Sender<()>>) {
        let deadline = Instant::now() + self.options.operation_timeout;
        let closing = self.closing.get_or_insert((deadline, Vec::new()));
        closing.1.extend(reply);
        // Requests already made are still carried out.
        while self.accepting_commands() {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(_) => break,
            }
        }
    }

    /// Carries out a request, or keeps it waiting behind those already waiting
    /// (requests are carried out in the order they were made).
    fn on_command(&mut self, command: Command) {
        if self.waiting.is_empty() && !self.must_wait(&command) {
            self.execute(command);
        } else {
            self.waiting.push_back(command);
        }
    }

    /// Whether `command` needs room that only an acknowledgement can make: a slot
    /// in the inflight window, or a free packet id.
    fn must_wait(&self, command: &Command) -> bool {
        let needs_id = match command {
            Command::Publish { publish, .. } => publish.qos != QoS::AtMostOnce,
            Command::Subscribe { .. } | Command::Unsubscribe { .. } => true,
            Command::Reauthenticate { .. } => false,
        };
        let window_full = matches!(command, Command::Publish { publish, .. }
            if publish.qos != QoS::AtMostOnce && self.state.inflight_full());
        // Behind a QoS 2 message not yet released, QoS 0 and 1 wait their turn.
        let behind_qos2 = matches!(command, Command::Publish { publish, .. }
            if publish.qos != QoS::ExactlyOnce && self.state.holds_order());
        window_full || behind_qos2 || (needs_id && self.state.packet_ids_exhausted())
    }

    /// Carries out the waiting requests that now have room, in order.
    fn release_waiting(&mut self) {
        while let Some(command) = self.waiting.front() {
            if self.must_wait(command) {
                break;
            }
            if let Some(command) = self.waiting.pop_front() {
                self.execute(command);
            }
        }
    }

    fn execute(&mut self, command: Command) {
        match command {
            Command::Publish { publish, reply } => {
                // Never more than the broker takes [MQTT-3.1.2-24], nor a QoS or a
                // RETAIN it said it does not take [MQTT-3.2.2-11] [MQTT-3.2.2-14]:
                // refused here rather than by a broker that closes the connection.
                let size = publish.encoded_len_for(self.options.protocol);
                let refusal = if size > self.terms.max_packet_size {
                    Some(Error::PacketTooLarge {
                        size,
                        max: self.terms.max_packet_size,
                    })
                } else if publish.qos > self.terms.maximum_qos {
                    Some(Error::PublishRefused(ReasonCode::QOS_NOT_SUPPORTED))
                } else if publish.retain && !self.terms.retain_available {
                    Some(Error::PublishRefused(ReasonCode::RETAIN_NOT_SUPPORTED))
                } else {
                    None
                };
                if let Some(error) = refusal {
                    match reply {
                        Some(reply) => drop(reply.send(Err(error))),
                        // QoS 0: nobody waits to hear it.
                        None => log::warn!("Client {}: not sent: {error}", self.client_id),
                    }
                    return;
                }
                if publish.qos == QoS::AtMostOnce && self.connection.is_none() {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(Error::Disconnected(None)));
                    }
                    return;
                }
                match self.state.publish(publish, Token::Publish(reply)) {
                    Ok((packet, done)) => {
                        self.send(&packet);
                        if let Some(Token::Publish(Some(reply))) = done {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Err(error) => log::error!("Client {}: {error}", self.client_id),
                }
            }
            Command::Subscribe {
                filters,
                properties,
                target,
                reply,
            } => {
                let id = target.id;
                self.register(target);
                let token = Token::Subscribe {
                    reply: Some(reply),
                    target: Some(id),
                    filters: filters.clone(),
                    properties: properties.clone(),
                };
                match self.state.subscribe(filters, properties, token) {
                    Ok(packet) => self.send(&packet),
                    Err(error) => log::error!("Client {}: {error}", self.client_id),
                }
            }
            Command::Reauthenticate { reply } => self.reauthenticate(reply),
            Command::Unsubscribe {
                filters,
                properties,
                reply,
            } => {
                for filter in &filters {
                    self.active.remove(filter.as_str());
                }
                match self
                    .state
                    .unsubscribe(filters, properties, Token::Unsubscribe(Some(reply)))
                {
                    Ok(packet) => self.send(&packet),
                    Err(error) => log::error!("Client {}: {error}", self.client_id),
                }
            }
        }
    }

    fn on_incoming(&mut self, event: Incoming) {
        match event {
            Incoming::Packet(Packet::Auth(auth)) => self.on_auth(auth),
            Incoming::Packet(packet) => match self.state.incoming(packet) {
                Ok(effects) => {
                    if let Some(reply) = effects.reply {
                        self.send(&reply);
                    }
                    if let Some((token, done)) = effects.completed {
                        self.complete(token, done);
                    }
                    if let Some(publish) = effects.deliver {
                        self.enqueue(publish);
                    }
                    // A PUBREC releases what waited behind its QoS 2 message.
                    if !self.waiting.is_empty() && !self.state.holds_order() {
                        self.release_waiting();
                    }
                }
                Err(error @ StateError::Unsolicited(..)) => {
                    log::warn!("Client {}: ignoring {error}", self.client_id);
                }
                Err(StateError::Unexpected(packet_type)) => {
                    self.connection_lost(Error::UnexpectedPacket(packet_type));
                }
                Err(error) => log::error!("Client {}: {error}", self.client_id),
            },
            Incoming::Closed(error) => self.connection_lost(error),
            Incoming::Violation { code, error } => {
                // [MQTT-4.13.1-1]: say why before closing.
                self.send(&Packet::Disconnect(Disconnect::new(code)));
                self.flush();
                self.connection_lost(error);
            }
        }
    }

    fn on_deadline(&mut self) {
        let now = Instant::now();
        if self.connection.is_some() {
            match self.state.keep_alive_due(now) {
                Ok(Some(ping)) => self.send(&ping),
                Ok(None) => {}
                Err(error) => {
                    log::warn!("Client {}: {error}; the connection is dead", self.client_id);
                    self.connection_lost(Error::Timeout(Wait::PingResp));
                }
            }
        } else if self.next_attempt.is_some_and(|at| now >= at) && self.closing.is_none() {
            self.reconnect();
        }
    }

    // ---- requests completed --------------------------------------------------------

    fn complete(&mut self, token: Token, done: Done) {
        match (token, done) {
            (Token::Publish(Some(reply)), Done::Refused(code)) => {
                let _ = reply.send(Err(Error::PublishRefused(code)));
            }
            (Token::Publish(None), Done::Refused(code)) => log::warn!(
                "Client {}: the broker refused a message: {code}",
                self.client_id
            ),
            (Token::Publish(Some(reply)), _) => {
                let _ = reply.send(Ok(()));
            }
            (
                Token::Subscribe {
                    reply,
                    target,
                    filters,
                    properties,
                },
                Done::Subscribed(packet_id, codes),
            ) => {
                for (filter, code) in filters.iter().zip(&codes) {
                    if code.is_error() {
                        log::warn!(
                            "Client {}: the broker refused the subscription to '{}': {code}",
                            self.client_id,
                            filter.filter
                        );
                    } else {
                        self.active.insert(
                            filter.filter.to_string(),
                            (filter.clone(), properties.clone()),
                        );
                    }
                }
                let caller_gone = match reply {
                    Some(reply) => reply.send(Ok((packet_id, codes))).is_err(),
                    None => false,
                };
                if caller_gone {
                    // The caller stopped waiting (timed out): nobody will read what
                    // this subscription brings.
                    if let Some(id) = target {
                        self.remove_target(id);
                    }
                }
            }
            (Token::Unsubscribe(Some(reply)), Done::Unsubscribed(codes)) => {
                let _ = reply.send(Ok(codes));
            }
            _ => {}
        }
        // A slot in the inflight window may have opened for a waiting publish.
        self.release_waiting();
    }

    // ---- receivers ------------------------------------------------------------------

    fn register(&mut self, target: Target) {
        let lost = self.deliveries.register(target);
        if lost > 0 {
            log::warn!(
                "Client {}: {lost} messages that came before any subscription did not fit in it",
                self.client_id
            );
        }
    }

    /// Forgets a receiver, and unsubscribes from each of its filters no other
    /// receiver uses.
    fn remove_target(&mut self, id: u64) {
        let unused: Vec<TopicFilter> = self
            .deliveries
            .remove(id)
            .into_iter()
            .filter(|filter| self.active.remove(filter.as_str()).is_some())
            .collect();
        if unused.is_empty() || self.dead.is_some() {
            return;
        }
        match self
            .state
            .unsubscribe(unused, None, Token::Unsubscribe(None))
        {
            Ok(packet) => self.send(&packet),
            Err(error) => log::error!("Client {}: {error}", self.client_id),
        }
    }

    fn enqueue(&mut self, publish: Publish) {
        match self.deliveries.push(publish) {
            Pushed::Queued => self.deliver_pending(),
            Pushed::Unwanted(publish) => {
                // [MQTT-4.5.0-2]: acknowledged all the same.
                log::debug!(
                    "Client {}: no subscription wants the message on '{}'",
                    self.client_id,
                    publish.topic
                );
                if let Some(ack) = self.state.delivered(&publish) {
                    self.send(&ack);
                }
            }
            Pushed::Dropped => {
                let dropped = self.deliveries.dropped_qos0();
                if dropped.is_power_of_two() {
                    log::warn!(
                        "Client {}: a subscription is not read fast enough; {dropped} QoS 0 messages dropped so far",
                        self.client_id
                    );
                }
            }
            Pushed::Overflow => {
                log::error!(
                    "Client {}: the broker sent more unacknowledged QoS 1/2 messages than packet ids exist",
                    self.client_id
                );
                self.connection_lost(Error::Disconnected(Some(
                    "the broker exceeded 65535 unacknowledged messages".into(),
                )));
            }
        }
    }

    /// Hands over waiting messages and acknowledges those every receiver now has.
    fn deliver_pending(&mut self) {
        let mut delivered = Vec::new();
        self.deliveries.deliver(|publish| delivered.push(publish));
        for publish in delivered {
            if let Some(ack) = self.state.delivered(&publish) {
                self.send(&ack);
            }
        }
    }

    // ---- the connection ---------------------------------------------------------

    /// Queues `packet` for the next write; does nothing while disconnected (the
    /// state machine sends what matters again after reconnecting).
    fn send(&mut self, packet: &Packet) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        match connection.queue(packet) {
            Ok(()) => self.state.sent(packet, Instant::now()),
            Err(error) => log::error!("Client {}: cannot send {packet}: {error}", self.client_id),
        }
    }

    fn flush(&mut self) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        if let Err(error) = connection.flush() {
            self.connection_lost(error);
        }
    }

    /// Says DISCONNECT if connected, and fails whatever is left.
    fn finish(mut self) {
        if let Some(mut connection) = self.connection.take() {
            let disconnect = Packet::Disconnect(std::mem::take(&mut self.goodbye));
            if connection.queue(&disconnect).is_ok() && connection.flush().is_ok() {
                connection.close_gracefully();
            }
            // [MQTT-3.14.4-1]: the client closes the connection after DISCONNECT.
            self.old_readers.extend(connection.close());
        }
        self.status.connected.store(false, Ordering::SeqCst);
        let error = match &self.dead {
            Some(reason) => reason.lost_for_good(),
            None => Error::Closed,
        };
        *self.status.lost.lock() = self.dead.as_ref().map(Error::duplicate);
        for token in self.state.drain() {
            token.fail(&error);
        }
        for command in self.waiting.drain(..) {
            if let Command::Publish {
                reply: Some(reply), ..
            } = command
            {
                let _ = reply.send(Err(error.duplicate()));
            }
        }
        // Requests still queued find their reply channels closed.
        while let Ok(command) = self.commands.try_recv() {
            drop(command);
        }
        // Receivers see the end of their iteration once their queues are empty.
        self.deliveries.clear();
        if let Some((_, replies)) = self.closing.take() {
            for reply in replies {
                let _ = reply.send(());
            }
        }
        for reader in self.old_readers.drain(..) {
            let _ = reader.join();
        }
        if self.deliveries.dropped_qos0() > 0 {
            log::warn!(
                "Client {}: {} QoS 0 messages were dropped because a subscription was not read fast enough",
                self.client_id,
                self.deliveries.dropped_qos0()
            );
        }
    }
}
