//! One client connection: a reader thread and a writer thread around one socket.
//!
//! ```text
//! socket --> reader thread --Event--> router
//! socket <-- writer thread <--Outgoing-- router
//! ```
//!
//! The **reader** does the CONNECT handshake itself (it must arrive first and within
//! `limits.connect_timeout`), checks the client identifier, runs the authentication
//! hooks (slow password hashing then delays only this client), and only then tells the
//! router. From there it decodes packets with the configured maximum packet size and
//! sends each to the router. Its socket read timeout is the keep-alive deadline
//! (one and a half keep-alives plus `limits.timeout_disconnect_delay`
//! [MQTT-3.1.2-24]), so an idle client costs a parked thread and no CPU. Between
//! packets it passes its [`ReadGate`], where the router can make it wait (see the
//! router's documentation on pacing).
//!
//! The **writer** blocks on its bounded outbox, drains whatever else is already
//! waiting into one buffer, and writes it with one system call. When the router has
//! asked to hear of it, the writer reports that its outbox drained.
//!
//! All socket code of the broker lives here and in `listener.rs`, so other transports
//! (TLS, WebSocket) need changes only in these two files.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::Sender;

use super::event::{outbox, ConnectionId, Event, NewConnection, OutboxReceiver, ReadGate};
use super::hooks::{AuthDecision, ClientInfo, ConnectInfo, DisconnectReason, Hooks};
use super::stats::{bump, Counters};
use crate::config::{AuthConfig, Limits};
use crate::protocol::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, Decoder, Packet, ProtocolVersion,
};
use crate::transport::{self, Acceptor};

/// Stack size of a reader thread: decoding, logging and authentication hooks.
const READER_STACK_SIZE: usize = 128 * 1024;
/// Stack size of a writer thread: encoding only.
const WRITER_STACK_SIZE: usize = 64 * 1024;
/// Bytes read from the socket at a time in the middle of a packet.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes read at a time while waiting for a packet to start (on the stack).
const IDLE_READ: usize = 2 * 1024;
/// A writer stops draining its outbox into one buffer beyond this many bytes.
const WRITE_BATCH: usize = 64 * 1024;
/// The longest a reader waits at its gate without being let go: a safety net only,
/// since the router opens a closed gate within its stall timeout, and reports
/// handled messages as it handles them.
const LONGEST_PAUSE: Duration = Duration::from_secs(5);
/// MQTT 3.1 limits client identifiers to 23 characters.
const MQTT_3_1_MAX_CLIENT_ID: usize = 23;

/// Memory mappings one connection costs the process: each of its two threads has a
/// stack with a guard page and a signal stack with a guard page (eight, as counted
/// in `/proc/PID/maps` with 2,000 idle connections), plus one for a large packet
/// buffer, which the allocator maps on its own.
const MAPPINGS_PER_CONNECTION: usize = 9;
/// Mappings left for everything else: code, heap arenas, the router, the listeners
/// (about 70 at start).
const RESERVED_MAPPINGS: usize = 1000;

/// What every connection of a broker shares.
pub(crate) struct Shared {
    pub(crate) router: Sender<Event>,
    pub(crate) hooks: Hooks,
    pub(crate) limits: Limits,
    pub(crate) auth: AuthConfig,
    pub(crate) counters: Arc<Counters>,
    next_id: AtomicU64,
    /// Connections open on all listeners, and the most this system can hold.
    open: AtomicUsize,
    max_open: usize,
}

/// How many connections this system can serve at once, or `usize::MAX` when it does
/// not say.
///
/// On Linux a process may hold `vm.max_map_count` memory mappings (65,530 by
/// default), and each thread takes about four. Past that limit a new thread cannot
/// set up its stacks and the whole process aborts, so the listeners refuse
/// connections before it is reached.
pub(crate) fn system_connection_limit() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .map_or(usize::MAX, |maps| {
            maps.saturating_sub(RESERVED_MAPPINGS) / MAPPINGS_PER_CONNECTION
        })
}

impl Shared {
    pub(crate) fn new(
        router: Sender<Event>,
        hooks: Hooks,
        limits: Limits,
        auth: AuthConfig,
        counters: Arc<Counters>,
    ) -> Shared {
        Shared {
            router,
            hooks,
            limits,
            auth,
            counters,
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            max_open: system_connection_limit(),
        }
    }

    /// Counts a new connection in, unless the system limit is reached.
    pub(crate) fn admit(&self) -> bool {
        self.open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                (open < self.max_open).then_some(open + 1)
            })
            .is_ok()
    }

    /// Counts a connection out.
    pub(crate) fn release(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }

    /// The most connections this system can hold at once.
    pub(crate) fn max_open(&self) -> usize {
        self.max_open
    }

    /// A new connection identifier.
    pub(crate) fn next_connection_id(&self) -> ConnectionId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Closes a connection's socket from another thread (the router, or the listener at
/// shutdown). Shutting the socket down wakes its reader and writer, which then exit.
#[derive(Debug, Clone)]
pub(crate) struct Closer(Option<Arc<TcpStream>>);

impl Closer {
    pub(crate) fn new(stream: &Arc<TcpStream>) -> Closer {
        Closer(Some(stream.clone()))
    }

    /// A closer with no socket: for inline clients, and for driving the router
    /// without a network in tests.
    pub(crate) fn detached() -> Closer {
        Closer(None)
    }

    /// Closes the connection in both directions. Closing twice is harmless.
    pub(crate) fn close(&self) {
        if let Some(stream) = &self.0 {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// What a connection knows of the listener that accepted it.
#[derive(Debug)]
pub(crate) struct ListenerSide {
    /// The listener's name, for logs and [`ClientInfo::listener`].
    pub(crate) name: Arc<str>,
    /// Whether clients without a user name may connect here (see
    /// [`AuthConfig::allows_anonymous_on`]).
    pub(crate) allow_anonymous: bool,
}

/// Starts serving an accepted socket: spawns its reader thread, which spawns the
/// writer once the client is connected. `on_exit` runs when both have finished.
///
/// The reader, the writer and the closer share one socket: `&TcpStream` reads and
/// writes, so a connection costs one file descriptor.
pub(crate) fn spawn(
    stream: Arc<TcpStream>,
    acceptor: Arc<Acceptor>,
    remote_addr: SocketAddr,
    listener: Arc<ListenerSide>,
    id: ConnectionId,
    shared: Arc<Shared>,
    on_exit: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    thread::Builder::new()
        .name(format!("wren-conn-{id}"))
        .stack_size(READER_STACK_SIZE)
        .spawn(move || {
            // TLS and WebSocket handshakes happen here, on the connection's own
            // thread, bounded by the acceptor's timeout; plain TCP has none.
            let transport = match acceptor.accept(Arc::clone(&stream)) {
                Ok(transport) => transport,
                Err(error) => {
                    log::info!(
                        "{} handshake with {remote_addr} on listener {} failed: {error}.",
                        acceptor.kind(),
                        listener.name
                    );
                    let _ = stream.shutdown(Shutdown::Both);
                    on_exit();
                    return;
                }
            };
            let mut connection = Reader {
                stream,
                input: transport.reader,
                output: Some(transport.writer),
                remote_addr,
                listener,
                id,
                shared,
                buffer: BytesMut::new(),
                decoder: Decoder::new(),
                streaming: false,
                gate: Arc::new(ReadGate::default()),
                published: 0,
            };
            connection.decoder =
                Decoder::new().max_packet_size(connection.shared.limits.max_packet_size);
            connection.serve();
            on_exit();
        })
        .map(|_| ())
}

/// Why reading the next packet failed.
enum ReadError {
    /// The peer closed the connection.
    Closed,
    /// The read timeout passed with nothing received.
    TimedOut,
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
    remote_addr: SocketAddr,
    listener: Arc<ListenerSide>,
    id: ConnectionId,
    shared: Arc<Shared>,
    buffer: BytesMut,
    decoder: Decoder,
    /// The last read filled its buffer, so more bytes are probably waiting.
    streaming: bool,
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
            let _ = self.stream.shutdown(Shutdown::Both);
            return;
        };
        let client_id = client.client_id.clone();

        let (outbox, outbox_rx) = outbox(self.shared.limits.max_inflight_messages);
        let writer = match self.spawn_writer(outbox_rx) {
            Ok(writer) => writer,
            Err(error) => {
                log::error!("Cannot start a writer thread for client {client_id}: {error}.");
                let _ = self.stream.shutdown(Shutdown::Both);
                return;
            }
        };
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
            let reason = self.read_packets(&client, keep_alive);
            let _ = self.shared.router.send(Event::Disconnect {
                connection: self.id,
                reason,
            });
        }
        // The router drops this connection's outbox when it handles the Disconnect
        // (or when it stops), which ends the writer.
        let _ = self.stream.shutdown(Shutdown::Both);
        let _ = writer.join();
    }

    /// Reads and checks the CONNECT. On refusal the CONNACK (if any) is written here
    /// and `None` returned.
    fn handshake(&mut self) -> Option<(Connect, ClientInfo, Option<Duration>)> {
        let deadline = Instant::now() + self.shared.limits.connect_timeout;
        let mut connect = match self.next_packet(Some(deadline)) {
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
            Err(ReadError::TimedOut) => {
                self.shared
                    .counters
                    .limit_reached(super::stats::Limit::ConnectTimeout);
                log::info!(
                    "Client {} sent no CONNECT within {:?}, closing the connection.",
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
                if connect.username.is_none() && !self.listener.allow_anonymous {
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
        let stream = self.stream.clone();
        let output = self
            .output
            .take()
            .ok_or_else(|| io::Error::other("the writer was already started"))?;
        let counters = self.shared.counters.clone();
        let router = self.shared.router.clone();
        let id = self.id;
        thread::Builder::new()
            .name(format!("wren-write-{id}"))
            .stack_size(WRITER_STACK_SIZE)
            .spawn(move || write_loop(stream, output, outbox, &router, id, &counters))
    }

    /// Reads packets until the connection ends, and says why it ended.
    fn read_packets(&mut self, client: &ClientInfo, timeout: Option<Duration>) -> DisconnectReason {
        if let Err(error) = self.input.set_read_timeout(timeout) {
            return DisconnectReason::ConnectionLost(error.to_string());
        }
        let shared = self.shared.clone();
        let hooks = &shared.hooks;
        loop {
            let packet = match self.next_packet(None) {
                Ok(packet) => packet,
                Err(ReadError::Closed) => {
                    return DisconnectReason::ConnectionLost("closed by the client".into())
                }
                Err(ReadError::TimedOut) => return DisconnectReason::KeepAliveTimeout,
                Err(ReadError::Io(error)) => {
                    return DisconnectReason::ConnectionLost(error.to_string())
                }
                Err(ReadError::Malformed(error)) => {
                    return DisconnectReason::ProtocolViolation(error.to_string())
                }
            };
            let connection = self.id;
            let event = match packet {
                Packet::Publish(publish) => Event::Publish {
                    connection,
                    authorized: hooks.authorize_publish(client, &publish.topic),
                    publish,
                },
                Packet::Subscribe(subscribe) => Event::Subscribe {
                    connection,
                    authorized: subscribe
                        .filters
                        .iter()
                        .map(|entry| hooks.authorize_subscribe(client, &entry.filter))
                        .collect(),
                    subscribe,
                },
                packet @ (Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
                | Packet::Unsubscribe(_)
                | Packet::PingReq) => Event::Packet { connection, packet },
                Packet::Disconnect => return DisconnectReason::Disconnect,
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
            // Blocks while the router's inbox is full: TCP backpressure slows the client.
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

    /// Reads until a whole packet is decoded. With a `deadline`, the read timeout is
    /// set to the time left before each read.
    fn next_packet(&mut self, deadline: Option<Instant>) -> Result<Packet, ReadError> {
        loop {
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some(packet)) => {
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
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::TimedOut);
                }
                self.input
                    .set_read_timeout(Some(left))
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
            match read {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => bump(&self.shared.counters.bytes_received, n as u64),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReadError::TimedOut)
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(ReadError::Io(error)),
            }
        }
    }
}

/// Applies the client-identifier rules of section 3.1.3.1, assigning an identifier
/// to a client that sent none with a clean session [MQTT-3.1.3-6].
fn check_client_id(connect: &mut Connect) -> Result<(), &'static str> {
    if connect.protocol == ProtocolVersion::V3_1 {
        if connect.client_id.is_empty() {
            return Err("MQTT 3.1 requires a client identifier");
        }
        if connect.client_id.chars().count() > MQTT_3_1_MAX_CLIENT_ID {
            return Err("MQTT 3.1 client identifiers have at most 23 characters");
        }
    }
    if connect.client_id.is_empty() {
        if !connect.clean_session {
            return Err("an empty client identifier needs a clean session [MQTT-3.1.3-8]");
        }
        connect.client_id = assigned_client_id();
    }
    Ok(())
}

/// A fresh identifier for a client that sent none: `auto-` and 32 random hex digits,
/// as mosquitto does.
fn assigned_client_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let random = || RandomState::new().build_hasher().finish();
    format!("auto-{:016X}{:016X}", random(), random())
}

/// The keep-alive the broker holds a client to: the client's, capped at the
/// configured maximum (a client asking for none gets the maximum, when one is set).
fn effective_keep_alive(requested: u16, max: u16) -> u16 {
    if max == u16::MAX {
        requested
    } else if requested == 0 {
        max
    } else {
        requested.min(max)
    }
}

/// Drains the outbox into one buffer per write until the router drops the outbox.
/// After each write it tells `router` if the outbox has drained, so that publishers
/// paused for this connection go on.
fn write_loop(
    stream: Arc<TcpStream>,
    mut output: transport::Writer,
    outbox: OutboxReceiver,
    router: &Sender<Event>,
    id: ConnectionId,
    counters: &Counters,
) {
    // Grows with the first batches; an idle connection holds only what it needed.
    let mut buffer = Vec::new();
    while let Ok(packet) = outbox.recv() {
        encode(&packet, &mut buffer, counters);
        while buffer.len() < WRITE_BATCH {
            match outbox.try_recv() {
                Ok(packet) => encode(&packet, &mut buffer, counters),
                Err(_) => break,
            }
        }
        if let Err(error) = output.write_all(&buffer) {
            log::debug!("Write to {:?} failed: {error}.", stream.peer_addr().ok());
            break;
        }
        bump(&counters.bytes_sent, buffer.len() as u64);
        outbox.report_drained(router, id);
        buffer.clear();
        // One huge message must not pin its buffer for the life of the connection.
        if buffer.capacity() > 4 * WRITE_BATCH {
            buffer = Vec::new();
        }
    }
    // Say goodbye properly over TLS and WebSocket (close_notify, close frame).
    output.close_gracefully();
    let _ = stream.shutdown(Shutdown::Both);
}

fn encode(packet: &Packet, buffer: &mut Vec<u8>, counters: &Counters) {
    match packet.encode(buffer) {
        Ok(()) => {
            bump(&counters.messages_sent, 1);
            if let Packet::Publish(publish) = packet {
                bump(&counters.publish_sent, 1);
                bump(&counters.publish_bytes_sent, publish.payload.len() as u64);
            }
        }
        Err(error) => log::error!("Cannot encode {packet}: {error}; not sent."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identifier_rules_mqtt_3_1_3() {
        let mut empty_clean = Connect::new("");
        assert!(check_client_id(&mut empty_clean).is_ok());
        assert!(empty_clean.client_id.starts_with("auto-"));
        assert_eq!(empty_clean.client_id.len(), 37);

        let mut empty_persistent = Connect::new("");
        empty_persistent.clean_session = false;
        assert!(check_client_id(&mut empty_persistent).is_err());

        let mut long_3_1 = Connect::new("a".repeat(24));
        long_3_1.protocol = ProtocolVersion::V3_1;
        assert!(check_client_id(&mut long_3_1).is_err());
        let mut long_3_1_1 = Connect::new("a".repeat(24));
        assert!(check_client_id(&mut long_3_1_1).is_ok());
    }

    #[test]
    fn assigned_identifiers_differ() {
        assert_ne!(assigned_client_id(), assigned_client_id());
    }

    #[test]
    fn keep_alive_is_capped_by_the_configured_maximum() {
        assert_eq!(effective_keep_alive(0, u16::MAX), 0);
        assert_eq!(effective_keep_alive(60, u16::MAX), 60);
        assert_eq!(effective_keep_alive(0, 30), 30);
        assert_eq!(effective_keep_alive(60, 30), 30);
        assert_eq!(effective_keep_alive(10, 30), 10);
    }
}
