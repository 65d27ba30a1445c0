//! The reader thread of a connection: the TLS and WebSocket handshakes, then the
//! CONNECT and its checks, then every packet, each handed to the router as an
//! [`Event`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::checks::{check_client_id, check_lengths, effective_keep_alive, levels_beyond};
use super::clock::{Expired, LastRead, ReadClock};
use super::{writer, ListenerSide, Shared};
use crate::broker::event::{
    outbox, Ack, Closer, ConnectionId, Event, NewConnection, OutboxReceiver, ReadGate,
};
use crate::broker::hooks::{AuthDecision, ClientInfo, ConnectInfo, DisconnectReason};
use crate::broker::stats::{bump, Limit};
use crate::protocol::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, Decoder, Packet, ProtocolVersion, TopicFilter,
};
use crate::transport::{self, Acceptor};

/// Bytes read from the socket at a time in the middle of a packet.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes read at a time while waiting for a packet to start (on the stack).
const IDLE_READ: usize = 2 * 1024;
/// The longest a reader waits at its gate without being let go: a safety net only,
/// since the router opens a closed gate within its stall timeout, and reports
/// handled messages as it handles them.
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// The reader thread: the TLS and WebSocket handshakes, then the MQTT connection.
pub(super) fn serve(
    stream: Arc<TcpStream>,
    acceptor: &Acceptor,
    remote_addr: SocketAddr,
    listener: Arc<ListenerSide>,
    id: ConnectionId,
    connect_deadline: Option<Instant>,
    shared: Arc<Shared>,
) {
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
            return;
        }
    };
    // MQTT 5 is not served yet: a level-5 CONNECT is refused with CONNACK 0x01.
    let decoder = Decoder::new()
        .with_max_packet_size(shared.limits.max_packet_size)
        .with_max_version(ProtocolVersion::V3_1_1);
    let clock = ReadClock::new(
        connect_deadline,
        shared.limits.packet_timeout,
        Instant::now(),
    );
    let mut connection = Reader {
        stream,
        input: transport.reader,
        output: Some(transport.writer),
        writer: None,
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
    };
    connection.serve();
}

/// Why reading the next packet failed.
enum ReadError {
    /// The peer closed the connection.
    Closed,
    /// One of the reader's deadlines passed.
    Expired(Expired),
    Io(io::Error),
    Malformed(DecodeError),
}

/// The reader side of a connection, which also drives its lifecycle.
struct Reader {
    /// The socket itself, for shutting it down; bytes go through `input` and
    /// `output`, which add TLS or WebSocket framing where the listener has them.
    stream: Arc<TcpStream>,
    input: transport::Reader,
    /// Until the writer thread takes it, for refusing CONNACKs.
    output: Option<transport::Writer>,
    /// The writer thread, once started.
    writer: Option<thread::JoinHandle<()>>,
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
}

impl Reader {
    fn serve(&mut self) {
        let _ = self.stream.set_nodelay(true);
        log::info!(
            "New connection from {} on listener {}.",
            self.remote_addr,
            self.listener.name
        );
        let Some((connect, client, keep_alive)) = self.handshake() else {
            return;
        };
        let (outbox, outbox_rx) = outbox(self.shared.limits.max_inflight_messages);
        match self.spawn_writer(outbox_rx) {
            Ok(writer) => self.writer = Some(writer),
            Err(error) => {
                log::error!(
                    "Cannot start a writer thread for client {}: {error}.",
                    client.client_id
                );
                return;
            }
        }
        let closer = Closer::new(&self.stream);
        let new = NewConnection {
            id: self.id,
            connect,
            client: client.clone(),
            outbox,
            closer,
            gate: self.gate.clone(),
            trusted: false,
        };
        if self
            .shared
            .router
            .send(Event::Connect(Box::new(new)))
            .is_ok()
        {
            self.registered = true;
            let reason = self.read_packets(&client, keep_alive);
            self.finish(reason);
        }
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
            });
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }

    /// Reads and checks the CONNECT. On refusal the CONNACK (if any) is written here
    /// and `None` returned.
    fn handshake(&mut self) -> Option<(Connect, ClientInfo, Option<Duration>)> {
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
            Err(ReadError::Malformed(error)) => {
                log::warn!(
                    "Client {} sent a bad CONNECT, closing the connection: {error}.",
                    self.remote_addr
                );
                if let Some(code) = error.connect_return_code() {
                    self.refuse(code);
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
            self.refuse(too_long.return_code());
            return None;
        }

        if let Err(why) = check_client_id(&mut connect) {
            log::warn!(
                "Client {} refused with identifier rejected: {why}.",
                self.remote_addr
            );
            self.refuse(ConnectReturnCode::IdentifierRejected);
            return None;
        }

        let client = ClientInfo {
            client_id: connect.client_id.clone(),
            username: connect.username.clone(),
            remote_addr: self.remote_addr,
            listener: self.listener.name.to_string(),
            protocol: connect.protocol,
        };
        if let Err(code) = self.authenticate(&connect, &client) {
            log::info!(
                "Client {} ({}) refused: {code}",
                client.client_id,
                self.remote_addr
            );
            self.refuse(code);
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
        Some((connect, client, timeout))
    }

    /// Runs the authentication hooks, then the configuration's rule for anonymous
    /// clients, then the will topic through the publish authorization.
    fn authenticate(
        &self,
        connect: &Connect,
        client: &ClientInfo,
    ) -> Result<(), ConnectReturnCode> {
        let info = ConnectInfo {
            client_id: connect.client_id.clone(),
            username: connect.username.clone(),
            password: connect.password.clone(),
            remote_addr: self.remote_addr,
            listener: self.listener.name.to_string(),
            protocol: connect.protocol,
            clean_session: connect.clean_session,
        };
        match self.shared.hooks.authenticate(&info) {
            Some(AuthDecision::Allow) => {}
            Some(AuthDecision::Deny(code)) => {
                // Accepted is not a refusal: a hook that says so is read as "not authorized".
                return Err(match code {
                    ConnectReturnCode::Accepted => ConnectReturnCode::NotAuthorized,
                    code => code,
                });
            }
            Some(AuthDecision::Defer) | None => {
                // Nobody checked the credentials: a user name alone proves nothing,
                // so the client counts as anonymous, as in mosquitto (fail closed).
                if !self.listener.allow_anonymous {
                    return Err(ConnectReturnCode::NotAuthorized);
                }
            }
        }
        if let Some(will) = &connect.will {
            if !self.shared.hooks.authorize_publish(client, &will.topic) {
                return Err(ConnectReturnCode::NotAuthorized);
            }
        }
        Ok(())
    }

    /// Writes a refusing CONNACK; the caller closes the connection [MQTT-3.2.2-5].
    fn refuse(&mut self, code: ConnectReturnCode) {
        let mut bytes = Vec::with_capacity(4);
        if Packet::ConnAck(ConnAck::refused(code))
            .encode(&mut bytes)
            .is_ok()
            && self
                .output
                .as_mut()
                .is_some_and(|output| output.write_all(&bytes).is_ok())
        {
            bump(&self.shared.counters.bytes_sent, bytes.len() as u64);
            bump(&self.shared.counters.messages_sent, 1);
        }
    }

    fn spawn_writer(&mut self, outbox: OutboxReceiver) -> io::Result<thread::JoinHandle<()>> {
        let output = self
            .output
            .take()
            .ok_or_else(|| io::Error::other("the writer was already started"))?;
        writer::spawn(
            self.stream.clone(),
            output,
            outbox,
            self.shared.router.clone(),
            self.id,
            self.remote_addr,
            self.shared.counters.clone(),
        )
    }

    /// Reads packets until the connection ends, and says why it ended. `keep_alive`
    /// is the longest silence allowed, if any.
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
                Err(ReadError::Malformed(error)) => {
                    return DisconnectReason::ProtocolViolation(error.to_string())
                }
            };
            let connection = self.id;
            let max_levels = shared.limits.max_topic_levels;
            let event = match packet {
                Packet::Publish(publish) => {
                    if let Some(levels) = levels_beyond(publish.topic.as_str(), max_levels) {
                        shared.counters.limit_reached(Limit::TopicLevels);
                        return DisconnectReason::ProtocolViolation(format!(
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
                Packet::Subscribe(subscribe) => Event::Subscribe {
                    connection,
                    authorized: subscribe
                        .filters
                        .iter()
                        .map(|entry| self.may_subscribe(client, &entry.filter))
                        .collect(),
                    subscribe,
                },
                Packet::Unsubscribe(mut unsubscribe) => {
                    // A filter too deep to have been subscribed has nothing to
                    // remove: it goes no further than here.
                    unsubscribe.filters.retain(|filter| {
                        let Some(levels) = levels_beyond(filter.as_str(), max_levels) else {
                            return true;
                        };
                        shared.counters.limit_reached(Limit::TopicLevels);
                        log::debug!(
                            "Client {} unsubscribes from a filter of {levels} levels \
                             (max-topic-levels {max_levels}); nothing to remove.",
                            client.client_id
                        );
                        false
                    });
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
                    ack: Ack::PubRec(ack.packet_id),
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
                Packet::Disconnect(_) => return DisconnectReason::Disconnect,
                Packet::Auth(_) => {
                    return DisconnectReason::ProtocolViolation(
                        "AUTH packet, which only MQTT 5 has".into(),
                    )
                }
                Packet::Connect(_) => {
                    return DisconnectReason::ProtocolViolation(
                        "second CONNECT on the same connection [MQTT-3.1.0-2]".into(),
                    )
                }
                other @ (Packet::ConnAck(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_)
                | Packet::PingResp) => {
                    return DisconnectReason::ProtocolViolation(format!(
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

    /// Whether `client` may subscribe to `filter`: not if it is deeper than
    /// `max_topic_levels` (no hook is asked then), otherwise as the hooks say.
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
        self.shared.hooks.authorize_subscribe(client, filter)
    }

    /// Reads until a whole packet is decoded, or one of the clock's deadlines passes.
    fn next_packet(&mut self) -> Result<Packet, ReadError> {
        loop {
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
                Err(error) => return Err(ReadError::Malformed(error)),
            }
            if self.buffer.is_empty() {
                // Between packets an idle connection keeps no read buffer.
                self.buffer = BytesMut::new();
            }
            let mid_packet = !self.buffer.is_empty();
            let set_alarm = self
                .clock
                .before_read(Instant::now(), mid_packet, self.last_read)
                .map_err(ReadError::Expired)?;
            if set_alarm {
                self.input
                    .set_read_timeout(self.clock.alarm())
                    .map_err(ReadError::Io)?;
            }
            let read = if self.buffer.is_empty() && !self.streaming {
                // Waiting between packets, which is where an idle client spends its
                // life: read onto the stack, so that it holds no heap buffer while it
                // waits (ten thousand idle clients would otherwise hold 80 MB).
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
        };
        let thread = thread::spawn(move || {
            let _reader = reader;
            panic!("a bug in the reader");
        });
        assert!(thread.join().is_err());
        match inbox.try_recv() {
            Ok(Event::Disconnect {
                connection: 7,
                reason: DisconnectReason::ConnectionLost(_),
            }) => {}
            other => panic!("expected the connection's Disconnect, got {other:?}"),
        }
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    }
}
