//! The reader thread of a connection: the TLS and WebSocket handshakes, then the
//! CONNECT and its checks, then every packet, each handed to the router as an
//! [`Event`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::checks::{check_client_id, check_lengths, effective_keep_alive, levels_beyond};
use super::clock::{Expired, LastRead, ReadClock};
use super::stack::StackRelease;
use super::writer::{self, WriterParts, WriterSlot};
use super::{ListenerSide, Shared};
use crate::broker::event::{
    outbox, Ack, Closer, ConnectionId, Event, NewConnection, OutboxReceiver, ReadGate,
};
use crate::broker::hooks::{
    AuthDecision, AuthExchange, AuthStep, ClientInfo, ConnectInfo, DisconnectReason,
};
use crate::broker::stats::{bump, Limit};
use crate::protocol::{
    AliasError, Auth, ConnAck, Connect, ConnectReturnCode, DecodeError, Decoder, IncomingAliases,
    OutgoingAliases, Packet, Properties, ProtocolVersion, Publish, ReasonCode, TopicFilter,
};
use crate::transport::{self, Acceptor};

/// Bytes read from the socket at a time in the middle of a packet.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes read at a time while waiting for a packet to start (on the stack). Small:
/// an idle reader waits here, and keeps every page of stack above its wait. At 256
/// bytes, under the reader's frames, the wait fits in the stack's top two pages
/// (8 KiB, the top one shared with the thread's own data); at 512 it reached into
/// a third. A larger packet arriving at an idle connection takes one more read.
const IDLE_READ: usize = 256;
/// The longest a reader waits at its gate without being let go: a safety net only,
/// since the router opens a closed gate within its stall timeout, and reports
/// handled messages as it handles them.
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// The start of a reader thread: the TLS or WebSocket handshake, and a reader for
/// the MQTT connection that follows, which [`Reader::serve`] then serves.
///
/// Not inlined into its caller, and the reader put on the heap, so that neither
/// the handshake's frames nor the reader itself sit on the stack between its top
/// and the reader's wait for packets: every byte there is stack an idle
/// connection keeps (see `stack.rs`).
#[inline(never)]
pub(super) fn open(
    stream: Arc<TcpStream>,
    acceptor: &Acceptor,
    remote_addr: SocketAddr,
    listener: Arc<ListenerSide>,
    id: ConnectionId,
    connect_deadline: Option<Instant>,
    shared: Arc<Shared>,
) -> Option<Box<Reader>> {
    // TLS and WebSocket handshakes happen here, on the connection's own thread,
    // within the CONNECT deadline; plain TCP has none.
    let transport = match acceptor.accept_until(Arc::clone(&stream), connect_deadline) {
        Ok(transport) => transport,
        Err(error) => {
            if matches!(error, transport::Error::HandshakeTimeout(_)) {
                shared.counters.limit_reached(Limit::ConnectTimeout);
            }
            log::info!(
                "{} handshake with {remote_addr} on listener {} failed: {error}.",
                acceptor.kind(),
                listener.name
            );
            return None;
        }
    };
    // The decoder learns the version (3.1, 3.1.1 or 5) from the CONNECT.
    let decoder = Decoder::new().with_max_packet_size(shared.limits.max_packet_size);
    let clock = ReadClock::new(
        connect_deadline,
        shared.limits.packet_timeout,
        Instant::now(),
    );
    let aliases = IncomingAliases::new(shared.limits.topic_alias_maximum);
    Some(Box::new(Reader {
        stream,
        input: transport.reader,
        output: Some(transport.writer),
        writer: None,
        reading: None,
        registered: false,
        remote_addr,
        listener,
        id,
        shared,
        buffer: BytesMut::new(),
        decoder,
        streaming: false,
        clock,
        last_read: LastRead::Nothing,
        gate: Arc::new(ReadGate::default()),
        published: 0,
        version: ProtocolVersion::V3_1_1,
        aliases,
        session_expiry: 0,
        new_session_expiry: None,
        reauth: None,
        stack: StackRelease::for_this_thread(),
    }))
}

/// Why reading the next packet failed.
enum ReadError {
    /// The peer closed the connection.
    Closed,
    /// One of the reader's deadlines passed.
    Expired(Expired),
    Io(io::Error),
    /// The bytes broke a rule; the first byte of the packet, if it had one.
    Malformed(DecodeError, Option<u8>),
}

/// The reader side of a connection, which also drives its lifecycle.
pub(super) struct Reader {
    /// The socket itself, for shutting it down; bytes go through `input` and
    /// `output`, which add TLS or WebSocket framing where the listener has them.
    stream: Arc<TcpStream>,
    input: transport::Reader,
    /// Until the writer thread takes it, for refusing CONNACKs.
    output: Option<transport::Writer>,
    /// The writer thread, once started.
    /// The connection's writer, once the client is connected.
    writer: Option<Arc<WriterSlot>>,
    /// Dropped when reading has ended, which lets a lingering writer go.
    reading: Option<crossbeam_channel::Sender<()>>,
    /// The router knows this connection and has not heard that it ended.
    registered: bool,
    remote_addr: SocketAddr,
    listener: Arc<ListenerSide>,
    id: ConnectionId,
    shared: Arc<Shared>,
    buffer: BytesMut,
    decoder: Decoder,
    /// The last read filled its buffer, so more bytes are probably waiting.
    streaming: bool,
    /// The reader's deadlines.
    clock: ReadClock,
    /// What the last read brought, for the clock.
    last_read: LastRead,
    /// Paces this reader (see [`ReadGate`]).
    gate: Arc<ReadGate>,
    /// PUBLISH packets handed to the router so far.
    published: u64,
    /// The version the client speaks, from its CONNECT.
    version: ProtocolVersion,
    /// MQTT 5: the topics the client named by Topic Alias, up to
    /// `topic-alias-maximum` of them [MQTT-3.3.2-10].
    aliases: IncomingAliases,
    /// MQTT 5: the Session Expiry Interval of the CONNECT, seconds (0 for 3.1.1).
    session_expiry: u32,
    /// MQTT 5: the Session Expiry Interval a DISCONNECT set, for the router.
    new_session_expiry: Option<u32>,
    /// MQTT 5: the client's enhanced authentication, for re-authentication.
    reauth: Option<Reauth>,
    /// Gives back the stack pages this thread touched once and no longer uses.
    stack: StackRelease,
}

/// A CONNECT that passed every check, as the handshake hands it on.
struct Accepted {
    connect: Connect,
    client: ClientInfo,
    /// The longest silence allowed, if any.
    timeout: Option<Duration>,
    /// MQTT 5: what the CONNACK says of this connection (server keep alive,
    /// assigned identifier, authentication).
    connack: Option<Box<Properties>>,
}

/// What a connection keeps of its enhanced authentication (MQTT 5 section 4.12) for
/// a later re-authentication.
struct Reauth {
    /// The CONNECT as the hooks saw it, without its password.
    info: ConnectInfo,
    /// The Authentication Method; a re-authentication must name the same one
    /// [MQTT-4.12.1-1].
    method: String,
    /// The hook's bytes between steps of the exchange under way.
    state: Vec<u8>,
    /// An exchange is under way: the client owes the next AUTH.
    in_progress: bool,
}

/// A protocol violation an MQTT 5 client is told of with `code`.
fn violation(code: ReasonCode, why: impl Into<String>) -> DisconnectReason {
    DisconnectReason::ProtocolViolation {
        code: Some(code),
        why: why.into(),
    }
}

/// Whether a malformed packet whose first byte was `first` is explained to an MQTT 5
/// client in a DISCONNECT before the connection closes. As mosquitto does: for a
/// packet too large, and for errors in PUBLISH, SUBSCRIBE, UNSUBSCRIBE or a packet
/// type that does not exist; the rest close without a word.
fn told_of(error: &DecodeError, first: Option<u8>) -> bool {
    matches!(error, DecodeError::PacketTooLarge { .. })
        || matches!(first.map(|byte| byte >> 4), Some(0 | 3 | 8 | 10))
}

impl Reader {
    /// Serves the connection to its end: the CONNECT, then every packet.
    pub(super) fn serve(&mut self) {
        let Some((client, keep_alive)) = self.connect() else {
            return;
        };
        let reason = self.read_packets(&client, keep_alive);
        self.finish(reason);
    }

    /// Takes the connection from its first byte to the router: the CONNECT and its
    /// checks, the writer, and the router's [`Event::Connect`]. Returns the client
    /// and its keep-alive once the router has it.
    ///
    /// Not inlined into [`serve`](Self::serve), and neither is the loop that
    /// follows: the frames this needs (the CONNECT, the authentication) are then
    /// gone from the stack while the loop waits for packets near its top (see
    /// `stack.rs`).
    #[inline(never)]
    fn connect(&mut self) -> Option<(ClientInfo, Option<Duration>)> {
        let _ = self.stream.set_nodelay(true);
        log::info!(
            "New connection from {} on listener {}.",
            self.remote_addr,
            self.listener.name
        );
        let Accepted {
            connect,
            client,
            timeout: keep_alive,
            connack,
        } = self.handshake()?;
        // A client that takes none of the broker's bytes for `packet-timeout` is
        // gone: its writer gives up (and a DISCONNECT waiting for it cannot hold
        // the socket). Where a write can be resumed, each write waits a slice of
        // that at most, so that a writer stalled by a client that does not read
        // can give its thread to others waiting (see `writer.rs`).
        let resumable = self.output.as_ref().is_some_and(|o| o.can_write_now());
        let packet_timeout = self.shared.limits.packet_timeout;
        let _ = self.stream.set_write_timeout(Some(if resumable {
            packet_timeout.min(writer::WRITE_SLICE)
        } else {
            packet_timeout
        }));
        let (outbox, outbox_rx) = outbox(self.shared.limits.max_inflight_messages);
        let form = writer::WireForm {
            version: connect.protocol,
            topic_alias_maximum: if connect.protocol == ProtocolVersion::V5
                && self.shared.limits.outgoing_topic_aliases
            {
                connect
                    .properties()
                    .topic_alias_maximum
                    .unwrap_or(0)
                    .min(self.shared.limits.topic_alias_maximum)
            } else {
                0
            },
        };
        let Some(writer) = self.make_writer(outbox_rx, form) else {
            log::error!(
                "Cannot set up the writer for client {}: it was set up already.",
                client.client_id
            );
            return None;
        };
        let outbox = outbox.with_waker(writer.clone());
        self.writer = Some(writer);
        let closer = Closer::new(&self.stream);
        let new = NewConnection {
            id: self.id,
            connect,
            client: client.clone(),
            outbox,
            closer,
            gate: self.gate.clone(),
            trusted: false,
            connack,
        };
        if self
            .shared
            .router
            .send(Event::Connect(Box::new(new)))
            .is_ok()
        {
            self.registered = true;
            return Some((client, keep_alive));
        }
        None
    }

    /// Ends the connection: tells the router why, if it knows the connection, shuts
    /// the socket down and waits for the writer. The router drops the connection's
    /// outbox when it handles the Disconnect (or when it stops), which ends the
    /// writer. Running it twice does nothing more.
    fn finish(&mut self, reason: DisconnectReason) {
        if std::mem::take(&mut self.registered) {
            let _ = self.shared.router.send(Event::Disconnect {
                connection: self.id,
                reason,
                session_expiry: self.new_session_expiry,
            });
        }
        // Reading ends here. Writing ends when the writer has written what the
        // router left in the outbox (a DISCONNECT with its reason, say): the writer
        // shuts the socket when the router drops the outbox, and a client that reads
        // nothing holds it no longer than the socket's write timeout. Without a
        // writer there is nothing left to say.
        let _ = self.stream.shutdown(if self.writer.is_some() {
            Shutdown::Read
        } else {
            Shutdown::Both
        });
        self.reading = None;
        if let Some(writer) = self.writer.take() {
            writer.wait_closed();
        }
    }

    /// Reads and checks the CONNECT. On refusal the CONNACK (if any) is written here
    /// and `None` returned.
    fn handshake(&mut self) -> Option<Accepted> {
        let mut connect = match self.next_packet() {
            Ok(Packet::Connect(connect)) => *connect,
            Ok(other) => {
                log::warn!(
                    "Client {} sent {} before CONNECT, closing the connection [MQTT-3.1.0-1].",
                    self.remote_addr,
                    other.packet_type()
                );
                return None;
            }
            Err(ReadError::Malformed(error, _)) => {
                log::warn!(
                    "Client {} sent a bad CONNECT, closing the connection: {error}.",
                    self.remote_addr
                );
                if let Some(code) = error.connect_return_code() {
                    // The version is unknown: the client is answered in 3.1.1 bytes.
                    self.refuse(code.reason_code(), None);
                }
                return None;
            }
            Err(ReadError::Expired(Expired::Packet)) => {
                self.shared.counters.limit_reached(Limit::PacketTimeout);
                log::info!(
                    "Client {} did not finish its CONNECT within {:?} of starting it \
                     (packet-timeout), closing the connection.",
                    self.remote_addr,
                    self.shared.limits.packet_timeout
                );
                return None;
            }
            Err(ReadError::Expired(_)) => {
                self.shared.counters.limit_reached(Limit::ConnectTimeout);
                log::info!(
                    "Client {} sent no complete CONNECT within {:?} of connecting \
                     (connect-timeout), closing the connection.",
                    self.remote_addr,
                    self.shared.limits.connect_timeout
                );
                return None;
            }
            Err(ReadError::Closed) => {
                log::debug!("Client {} closed before CONNECT.", self.remote_addr);
                return None;
            }
            Err(ReadError::Io(error)) => {
                log::debug!(
                    "Client {} failed before CONNECT: {error}.",
                    self.remote_addr
                );
                return None;
            }
        };

        if let Some(will) = &connect.will {
            let max_levels = self.shared.limits.max_topic_levels;
            if let Some(levels) = levels_beyond(will.topic.as_str(), max_levels) {
                self.shared.counters.limit_reached(Limit::TopicLevels);
                log::warn!(
                    "Client {} sent a CONNECT whose will topic has {levels} levels, more than \
                     max-topic-levels allows ({max_levels}); closing the connection.",
                    self.remote_addr
                );
                return None;
            }
        }

        // Before anything costly sees them: authentication hooks hash passwords, at
        // a cost that grows with the password's length.
        if let Err(too_long) = check_lengths(&connect, &self.shared.limits) {
            self.shared.counters.limit_reached(too_long.limit);
            log::warn!(
                "Client {} refused with {}: its {too_long}.",
                self.remote_addr,
                too_long.return_code()
            );
            self.refuse(too_long.return_code().reason_code(), None);
            return None;
        }

        self.version = connect.protocol;
        let assigned = match check_client_id(&mut connect) {
            Ok(assigned) => assigned,
            Err(why) => {
                log::warn!(
                    "Client {} refused with identifier rejected: {why}.",
                    self.remote_addr
                );
                self.refuse(ConnectReturnCode::IdentifierRejected.reason_code(), None);
                return None;
            }
        };

        let client = ClientInfo {
            client_id: connect.client_id.clone(),
            username: connect.username.clone(),
            remote_addr: self.remote_addr,
            listener: self.listener.name.to_string(),
            protocol: connect.protocol,
        };
        let mut connack = Properties::new();
        if let Err(code) = self.authenticate(&connect, &client, &mut connack) {
            log::info!(
                "Client {} ({}) refused: {code}",
                client.client_id,
                self.remote_addr
            );
            self.refuse(code, connack.authentication_method.take());
            return None;
        }
        // The password is not needed any more and must not travel further.
        connect.password = None;

        let keep_alive =
            effective_keep_alive(connect.keep_alive, self.shared.limits.max_keep_alive);
        let timeout = (keep_alive > 0).then(|| {
            Duration::from_millis(u64::from(keep_alive) * 1500)
                + self.shared.limits.timeout_disconnect_delay
        });
        if connect.protocol == ProtocolVersion::V5 {
            // The client is told the keep-alive it is held to when it differs from
            // the one it asked for [MQTT-3.2.2-21], and the identifier it was given
            // [MQTT-3.2.2-16].
            if keep_alive != connect.keep_alive {
                connack.server_keep_alive = Some(keep_alive);
            }
            if assigned {
                connack.assigned_client_identifier = Some(connect.client_id.clone());
            }
            self.session_expiry = connect.properties().session_expiry_interval.unwrap_or(0);
        }
        log::info!(
            "New client connected from {} as {} (p{}, c{}, k{}{}).",
            self.remote_addr,
            client.client_id,
            connect.protocol.level(),
            connect.clean_session as u8,
            keep_alive,
            client
                .username
                .as_ref()
                .map(|u| format!(", u'{u}'"))
                .unwrap_or_default()
        );
        Some(Accepted {
            connect,
            client,
            timeout,
            connack: (!connack.is_empty()).then(|| Box::new(connack)),
        })
    }

    /// Runs the authentication hooks (or, for an MQTT 5 client that names an
    /// Authentication Method, the enhanced authentication exchange), then the
    /// configuration's rule for anonymous clients, then the will topic through the
    /// publish authorization. The reason code on refusal is MQTT 5's; a 3.1.1 client
    /// gets the nearest return code.
    fn authenticate(
        &mut self,
        connect: &Connect,
        client: &ClientInfo,
        connack: &mut Properties,
    ) -> Result<(), ReasonCode> {
        let info = ConnectInfo {
            client_id: connect.client_id.clone(),
            username: connect.username.clone(),
            password: connect.password.clone(),
            remote_addr: self.remote_addr,
            listener: self.listener.name.to_string(),
            protocol: connect.protocol,
            clean_session: connect.clean_session,
        };
        let method = connect.properties().authentication_method.clone();
        if let Some(method) = method {
            self.enhanced_authentication(connect, info, method, connack)?;
        } else {
            match self.shared.hooks.authenticate(&info) {
                Some(AuthDecision::Allow) => {}
                Some(AuthDecision::Deny(code)) => {
                    // Accepted is not a refusal: a hook that says so is read as "not
                    // authorized".
                    return Err(match code {
                        ConnectReturnCode::Accepted => ReasonCode::NOT_AUTHORIZED,
                        code => code.reason_code(),
                    });
                }
                Some(AuthDecision::Defer) | None => {
                    // Nobody checked the credentials: a user name alone proves
                    // nothing, so the client counts as anonymous, as in mosquitto
                    // (fail closed).
                    if !self.listener.allow_anonymous {
                        return Err(ReasonCode::NOT_AUTHORIZED);
                    }
                }
            }
        }
        if let Some(will) = &connect.will {
            if !self.shared.hooks.authorize_publish(client, &will.topic) {
                return Err(ReasonCode::NOT_AUTHORIZED);
            }
        }
        Ok(())
    }

    /// MQTT 5 enhanced authentication at CONNECT (section 4.12): the hooks and the
    /// client trade AUTH packets until a hook decides, all within the connect
    /// timeout. On success the CONNACK names the method (and carries the hook's last
    /// data) [MQTT-4.12.0-5]; a method no hook handles is refused with 0x8C
    /// [MQTT-4.12.0-1].
    fn enhanced_authentication(
        &mut self,
        connect: &Connect,
        info: ConnectInfo,
        method: String,
        connack: &mut Properties,
    ) -> Result<(), ReasonCode> {
        /// Round trips one exchange may take: enough for any real mechanism
        /// (SCRAM takes two), and a bound on a client that never concludes.
        const MAX_STEPS: usize = 16;
        let mut state = Vec::new();
        let mut data = connect.properties().authentication_data.clone();
        for _ in 0..MAX_STEPS {
            let mut exchange = AuthExchange {
                connect: &info,
                method: &method,
                data: data.as_deref(),
                state: &mut state,
                reauthentication: false,
            };
            match self.shared.hooks.authenticate_enhanced(&mut exchange) {
                AuthStep::Success(data) => {
                    connack.authentication_method = Some(method.clone());
                    connack.authentication_data = data;
                    let mut info = info;
                    info.password = None;
                    self.reauth = Some(Reauth {
                        info,
                        method,
                        state: Vec::new(),
                        in_progress: false,
                    });
                    return Ok(());
                }
                AuthStep::Fail(code) => return Err(code),
                AuthStep::NotHandled => {
                    log::info!(
                        "Client {} asked for authentication method '{method}', which no hook \
                         handles.",
                        info.client_id
                    );
                    return Err(ReasonCode::BAD_AUTHENTICATION_METHOD);
                }
                AuthStep::Continue(challenge) => {
                    let mut auth = Auth::new(ReasonCode::CONTINUE_AUTHENTICATION);
                    auth.properties = Some(Box::new(Properties {
                        authentication_method: Some(method.clone()),
                        authentication_data: challenge,
                        ..Properties::new()
                    }));
                    if !self.write_before_connack(Packet::Auth(auth)) {
                        return Err(ReasonCode::UNSPECIFIED_ERROR);
                    }
                    data = match self.next_packet() {
                        Ok(Packet::Auth(answer))
                            if answer.reason_code == ReasonCode::CONTINUE_AUTHENTICATION
                                && answer.properties().authentication_method.as_deref()
                                    == Some(method.as_str()) =>
                        {
                            answer.properties().authentication_data.clone()
                        }
                        Ok(other) => {
                            log::info!(
                                "Client {} answered an authentication challenge with {other}.",
                                info.client_id
                            );
                            return Err(ReasonCode::PROTOCOL_ERROR);
                        }
                        Err(_) => return Err(ReasonCode::UNSPECIFIED_ERROR),
                    };
                }
            }
        }
        log::info!(
            "Client {} did not finish authenticating within {MAX_STEPS} steps.",
            info.client_id
        );
        Err(ReasonCode::NOT_AUTHORIZED)
    }

    /// Writes a packet before the connection is accepted (the writer thread does
    /// not exist yet); returns whether it was written.
    fn write_before_connack(&mut self, packet: Packet) -> bool {
        let mut bytes = Vec::with_capacity(16);
        if packet.encode_for(self.version, &mut bytes).is_err() {
            return false;
        }
        let written = self
            .output
            .as_mut()
            .is_some_and(|output| output.write_all(&bytes).is_ok());
        if written {
            bump(&self.shared.counters.bytes_sent, bytes.len() as u64);
            bump(&self.shared.counters.messages_sent, 1);
        }
        written
    }

    /// Writes a refusing CONNACK, with the reason code for MQTT 5 and the nearest
    /// return code for 3.1.1; the caller closes the connection [MQTT-3.2.2-5]. A
    /// refused enhanced authentication names its method.
    fn refuse(&mut self, code: ReasonCode, method: Option<String>) {
        let mut connack = ConnAck::refused(code);
        if self.version == ProtocolVersion::V5 && method.is_some() {
            connack.properties = Some(Box::new(Properties {
                authentication_method: method,
                ..Properties::new()
            }));
        }
        self.write_before_connack(Packet::ConnAck(connack));
    }

    fn make_writer(
        &mut self,
        outbox: OutboxReceiver,
        form: writer::WireForm,
    ) -> Option<Arc<WriterSlot>> {
        let output = self.output.take()?;
        let (reading, reader_done) = crossbeam_channel::bounded(0);
        self.reading = Some(reading);
        Some(WriterSlot::new(
            WriterParts {
                stream: self.stream.clone(),
                output,
                outbox,
                router: self.shared.router.clone(),
                id: self.id,
                remote_addr: self.remote_addr,
                counters: self.shared.counters.clone(),
                form,
                reader_done,
                aliases: OutgoingAliases::new(form.topic_alias_maximum),
                buffer: Vec::new(),
                said_goodbye: false,
                stalled_since: None,
                give_up_after: self.shared.limits.packet_timeout,
            },
            self.shared.writers.clone(),
            Some(self.shared.pending_writes.clone()),
        ))
    }

    /// Reads packets until the connection ends, and says why it ended. `keep_alive`
    /// is the longest silence allowed, if any.
    #[inline(never)]
    fn read_packets(
        &mut self,
        client: &ClientInfo,
        keep_alive: Option<Duration>,
    ) -> DisconnectReason {
        self.clock.connected(keep_alive, Instant::now());
        let shared = self.shared.clone();
        let hooks = &shared.hooks;
        loop {
            let packet = match self.next_packet() {
                Ok(packet) => packet,
                Err(ReadError::Closed) => {
                    return DisconnectReason::ConnectionLost("closed by the client".into())
                }
                Err(ReadError::Expired(Expired::Packet)) => {
                    shared.counters.limit_reached(Limit::PacketTimeout);
                    // The router logs the reason.
                    return DisconnectReason::ConnectionLost(format!(
                        "a packet was not finished within {:?} of its first byte \
                         (packet-timeout)",
                        shared.limits.packet_timeout
                    ));
                }
                Err(ReadError::Expired(_)) => return DisconnectReason::KeepAliveTimeout,
                Err(ReadError::Io(error)) => {
                    return DisconnectReason::ConnectionLost(error.to_string())
                }
                Err(ReadError::Malformed(error, first)) => {
                    return DisconnectReason::ProtocolViolation {
                        code: told_of(&error, first).then(|| error.reason_code()),
                        why: error.to_string(),
                    }
                }
            };
            let connection = self.id;
            let max_levels = shared.limits.max_topic_levels;
            let event = match packet {
                Packet::Publish(mut publish) => {
                    if let Err(reason) = self.check_publish(&mut publish) {
                        return reason;
                    }
                    if let Some(levels) = levels_beyond(publish.topic.as_str(), max_levels) {
                        shared.counters.limit_reached(Limit::TopicLevels);
                        return DisconnectReason::protocol_error(format!(
                            "PUBLISH to a topic of {levels} levels, more than \
                             max-topic-levels allows ({max_levels})"
                        ));
                    }
                    Event::Publish {
                        connection,
                        authorized: hooks.authorize_publish(client, &publish.topic),
                        publish,
                    }
                }
                Packet::Subscribe(subscribe) => {
                    if !subscribe.properties().subscription_identifiers.is_empty()
                        && !shared.limits.subscription_identifiers
                    {
                        return violation(
                            ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                            "SUBSCRIBE with a Subscription Identifier, which this broker \
                             does not offer (subscription-identifier-available)",
                        );
                    }
                    Event::Subscribe {
                        connection,
                        authorized: subscribe
                            .filters
                            .iter()
                            .map(|entry| self.may_subscribe(client, &entry.filter))
                            .collect(),
                        subscribe,
                    }
                }
                Packet::Unsubscribe(unsubscribe) => {
                    // A filter too deep to have been subscribed has nothing to remove
                    // (the router finds none, and answers MQTT 5's 0x11 for it); it is
                    // counted here, where the limit is enforced.
                    for filter in &unsubscribe.filters {
                        if let Some(levels) = levels_beyond(filter.as_str(), max_levels) {
                            shared.counters.limit_reached(Limit::TopicLevels);
                            log::debug!(
                                "Client {} unsubscribes from a filter of {levels} levels \
                                 (max-topic-levels {max_levels}); nothing to remove.",
                                client.client_id
                            );
                        }
                    }
                    Event::Unsubscribe {
                        connection,
                        unsubscribe,
                    }
                }
                Packet::PubAck(ack) => Event::Ack {
                    connection,
                    ack: Ack::PubAck(ack.packet_id),
                },
                Packet::PubRec(ack) => Event::Ack {
                    connection,
                    ack: if ack.reason_code.is_error() {
                        Ack::PubRecRefused(ack.packet_id)
                    } else {
                        Ack::PubRec(ack.packet_id)
                    },
                },
                Packet::PubRel(ack) => Event::Ack {
                    connection,
                    ack: Ack::PubRel(ack.packet_id),
                },
                Packet::PubComp(ack) => Event::Ack {
                    connection,
                    ack: Ack::PubComp(ack.packet_id),
                },
                Packet::PingReq => Event::PingReq { connection },
                Packet::Disconnect(disconnect) => {
                    if let Some(expiry) = disconnect.properties().session_expiry_interval {
                        // A session that was to end with its connection cannot be
                        // kept after all [MQTT-3.14.2-2].
                        if self.session_expiry == 0 && expiry != 0 {
                            return DisconnectReason::protocol_error(
                                "DISCONNECT sets a Session Expiry Interval, but the \
                                 CONNECT asked for none [MQTT-3.14.2-2]",
                            );
                        }
                        self.new_session_expiry = Some(expiry);
                    }
                    return if disconnect.reason_code == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE {
                        DisconnectReason::DisconnectWithWill
                    } else {
                        DisconnectReason::Disconnect
                    };
                }
                Packet::Auth(auth) => match self.reauthenticate(auth) {
                    Ok(reply) => Event::Send {
                        connection,
                        packet: Packet::Auth(reply),
                    },
                    Err(reason) => return reason,
                },
                Packet::Connect(_) => {
                    return DisconnectReason::protocol_violation(
                        "second CONNECT on the same connection [MQTT-3.1.0-2]",
                    )
                }
                other @ (Packet::ConnAck(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_)
                | Packet::PingResp) => {
                    return DisconnectReason::protocol_violation(format!(
                        "{} is sent only by servers",
                        other.packet_type()
                    ))
                }
            };
            let is_publish = matches!(event, Event::Publish { .. });
            // Blocks while the router's inbox is full, in events or in bytes: TCP
            // backpressure slows the client.
            if self.shared.router.send(event).is_err() {
                return DisconnectReason::Shutdown;
            }
            if is_publish {
                self.published += 1;
            }
            // Waits while this client has many messages in the router's inbox, or
            // while its messages crowd a subscriber's outbox.
            self.gate.pass(self.published, LONGEST_PAUSE);
        }
    }

    /// Applies the rules of a PUBLISH that need this connection's state: MQTT 5
    /// topic aliases are resolved (and not passed on), and the QoS and RETAIN the
    /// broker offers are enforced.
    fn check_publish(&mut self, publish: &mut Publish) -> Result<(), DisconnectReason> {
        let limits = &self.shared.limits;
        if publish.qos > limits.max_qos {
            return Err(violation(
                ReasonCode::QOS_NOT_SUPPORTED,
                format!(
                    "PUBLISH at QoS {}, above the broker's maximum (max-qos {}) \
                     [MQTT-3.2.2-11]",
                    publish.qos as u8, limits.max_qos as u8
                ),
            ));
        }
        if publish.retain && !limits.retain_available && self.version == ProtocolVersion::V5 {
            return Err(violation(
                ReasonCode::RETAIN_NOT_SUPPORTED,
                "PUBLISH with RETAIN, which this broker does not offer (retain-available) \
                 [MQTT-3.2.2-14]",
            ));
        }
        if !publish.properties().subscription_identifiers.is_empty() {
            return Err(DisconnectReason::protocol_error(
                "PUBLISH from a client with a Subscription Identifier [MQTT-3.3.4-6]",
            ));
        }
        if let Err(AliasError { code, why }) = self.aliases.resolve(publish) {
            return Err(violation(code, why));
        }
        // An alias belongs to this connection: subscribers never see it.
        if let Some(properties) = publish.properties.as_mut() {
            properties.topic_alias = None;
            if properties.is_empty() {
                publish.properties = None;
            }
        }
        Ok(())
    }

    /// Handles an AUTH after CONNECT: MQTT 5 re-authentication (section 4.12.1).
    /// Returns the AUTH to send the client, or why the connection ends.
    fn reauthenticate(&mut self, auth: Auth) -> Result<Auth, DisconnectReason> {
        let Some(reauth) = self.reauth.as_mut() else {
            // Without a method in the CONNECT there is nothing to re-authenticate
            // [MQTT-4.12.0-6].
            return Err(DisconnectReason::protocol_error(
                "AUTH from a client that did not authenticate with a method",
            ));
        };
        let method = auth.properties().authentication_method.as_deref();
        if method != Some(reauth.method.as_str()) {
            return Err(DisconnectReason::protocol_error(
                "AUTH with another Authentication Method than the CONNECT's [MQTT-4.12.1-1]",
            ));
        }
        let starts = auth.reason_code == ReasonCode::RE_AUTHENTICATE;
        let continues = auth.reason_code == ReasonCode::CONTINUE_AUTHENTICATION;
        if !(starts && !reauth.in_progress || continues && reauth.in_progress) {
            return Err(DisconnectReason::protocol_error(format!(
                "AUTH with reason {} out of turn",
                auth.reason_code
            )));
        }
        if starts {
            reauth.state.clear();
        }
        let mut exchange = AuthExchange {
            connect: &reauth.info,
            method: &reauth.method,
            data: auth.properties().authentication_data.as_deref(),
            state: &mut reauth.state,
            reauthentication: true,
        };
        let (code, data) = match self.shared.hooks.authenticate_enhanced(&mut exchange) {
            AuthStep::Continue(data) => {
                reauth.in_progress = true;
                (ReasonCode::CONTINUE_AUTHENTICATION, data)
            }
            AuthStep::Success(data) => {
                reauth.in_progress = false;
                log::info!("Client {} re-authenticated.", reauth.info.client_id);
                (ReasonCode::SUCCESS, data)
            }
            AuthStep::Fail(code) => return Err(DisconnectReason::AuthenticationFailed(code)),
            AuthStep::NotHandled => {
                return Err(DisconnectReason::AuthenticationFailed(
                    ReasonCode::BAD_AUTHENTICATION_METHOD,
                ))
            }
        };
        let mut reply = Auth::new(code);
        reply.properties = Some(Box::new(Properties {
            authentication_method: Some(reauth.method.clone()),
            authentication_data: data,
            ..Properties::new()
        }));
        Ok(reply)
    }

    /// Whether `client` may subscribe to `filter`: not if it is deeper than
    /// `max_topic_levels` (no hook is asked then), otherwise as the hooks say (about
    /// the filter of a shared subscription, without its `$share/GROUP/`).
    fn may_subscribe(&self, client: &ClientInfo, filter: &TopicFilter) -> bool {
        let max_levels = self.shared.limits.max_topic_levels;
        if let Some(levels) = levels_beyond(filter.as_str(), max_levels) {
            self.shared.counters.limit_reached(Limit::TopicLevels);
            log::debug!(
                "Client {} refused a filter of {levels} levels (max-topic-levels {max_levels}).",
                client.client_id
            );
            return false;
        }
        // A shared subscription reads the topics of its filter: that is what the
        // hooks decide on, whatever the group is called.
        if let Ok(Some((_, inner))) = filter.shared() {
            return TopicFilter::new(inner)
                .is_ok_and(|inner| self.shared.hooks.authorize_subscribe(client, &inner));
        }
        self.shared.hooks.authorize_subscribe(client, filter)
    }

    /// Reads until a whole packet is decoded, or one of the clock's deadlines passes.
    fn next_packet(&mut self) -> Result<Packet, ReadError> {
        loop {
            let first = self.buffer.first().copied();
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some(packet)) => {
                    self.clock.packet_done();
                    bump(&self.shared.counters.messages_received, 1);
                    if let Packet::Publish(publish) = &packet {
                        bump(&self.shared.counters.publish_received, 1);
                        bump(
                            &self.shared.counters.publish_bytes_received,
                            publish.payload.len() as u64,
                        );
                    }
                    return Ok(packet);
                }
                Ok(None) => {}
                Err(error) => return Err(ReadError::Malformed(error, first)),
            }
            if self.buffer.is_empty() {
                // Between packets an idle connection keeps no read buffer.
                self.buffer = BytesMut::new();
            }
            let mid_packet = !self.buffer.is_empty();
            let now = Instant::now();
            let set_alarm = self
                .clock
                .before_read(now, mid_packet, self.last_read)
                .map_err(ReadError::Expired)?;
            if set_alarm {
                self.input
                    .set_read_timeout(self.clock.alarm())
                    .map_err(ReadError::Io)?;
            }
            let read = if self.buffer.is_empty() && !self.streaming {
                // Waiting between packets, which is where an idle client spends its
                // life: read onto the stack, so that it holds no heap buffer while it
                // waits (ten thousand idle clients would otherwise hold 80 MB), and,
                // once connected (the CONNECT is as deep as a reader goes), with
                // the stack it went deep into given back.
                if self.registered {
                    self.stack.release_if_due(now);
                }
                let mut first = [0u8; IDLE_READ];
                let read = self.input.read(&mut first);
                if let Ok(n) = read {
                    self.buffer.extend_from_slice(&first[..n]);
                    self.streaming = n == IDLE_READ;
                }
                read
            } else {
                // Bytes are flowing: read straight into the buffer's free space,
                // zeroed first (no unsafe), a large chunk at a time.
                let filled = self.buffer.len();
                self.buffer.resize(filled + READ_CHUNK, 0);
                let read = self.input.read(&mut self.buffer[filled..]);
                let n = *read.as_ref().unwrap_or(&0);
                self.buffer.truncate(filled + n);
                // A short read means the socket is drained: back to waiting lightly.
                self.streaming = n == READ_CHUNK;
                read
            };
            self.last_read = match read {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    bump(&self.shared.counters.bytes_received, n as u64);
                    LastRead::Bytes
                }
                // The alarm rang; the clock says whether a deadline has passed.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    LastRead::Alarm
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => LastRead::Nothing,
                Err(error) => return Err(ReadError::Io(error)),
            };
        }
    }
}

impl Drop for Reader {
    /// After a normal end, [`Reader::finish`] has run and this does nothing. After a
    /// panic, it tells the router that the connection is lost, so that its session
    /// is not left connected with nobody reading (and its will is published).
    fn drop(&mut self) {
        self.finish(DisconnectReason::ConnectionLost(
            "the broker's reader thread failed".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{shared_with_inbox, tcp_pair};
    use super::*;
    use crate::config::Limits;

    #[test]
    fn a_reader_that_panics_tells_the_router_its_connection_is_lost() {
        let (server, mut client) = tcp_pair();
        let remote_addr = client.local_addr().unwrap();
        let stream = Arc::new(server);
        let transport = Acceptor::tcp().accept(Arc::clone(&stream)).unwrap();
        let (shared, inbox) = shared_with_inbox(Limits::default());
        let shared = Arc::new(shared);
        let reader = Reader {
            stream,
            input: transport.reader,
            output: Some(transport.writer),
            writer: None,
            reading: None,
            // As after a CONNECT the router accepted.
            registered: true,
            remote_addr,
            listener: Arc::new(ListenerSide {
                name: "test".into(),
                allow_anonymous: true,
            }),
            id: 7,
            shared,
            buffer: BytesMut::new(),
            decoder: Decoder::new(),
            streaming: false,
            clock: ReadClock::new(None, Duration::from_secs(60), Instant::now()),
            last_read: LastRead::Nothing,
            gate: Arc::new(ReadGate::default()),
            published: 0,
            version: ProtocolVersion::V3_1_1,
            aliases: IncomingAliases::new(10),
            session_expiry: 0,
            new_session_expiry: None,
            reauth: None,
            stack: StackRelease::for_this_thread(),
        };
        let thread = std::thread::spawn(move || {
            let _reader = reader;
            panic!("a bug in the reader");
        });
        assert!(thread.join().is_err());
        match inbox.try_recv() {
            Ok(Event::Disconnect {
                connection: 7,
                reason: DisconnectReason::ConnectionLost(_),
                session_expiry: None,
            }) => {}
            other => panic!("expected the connection's Disconnect, got {other:?}"),
        }
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    }
}
