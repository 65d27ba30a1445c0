//! One client connection: a reader thread and a writer thread around one socket.
//!
//! ```text
//! socket --> reader thread --Event--> router
//! socket <-- writer thread <--Outgoing-- router
//! ```
//!
//! The **reader** does the CONNECT handshake itself (it must arrive first), checks the
//! client identifier, runs the authentication hooks (slow password hashing then delays
//! only this client), and only then tells the router. From there it decodes packets
//! with the configured maximum packet size and sends each to the router. Between
//! packets it passes its [`ReadGate`], where the router can make it wait (see the
//! router's documentation on pacing).
//!
//! The reader waits for bytes against three deadlines (see [`ReadClock`]):
//! `limits.connect_timeout` from accept to a complete CONNECT, TLS and WebSocket
//! handshakes included; `limits.packet_timeout` for the rest of a packet once it has
//! begun; and one and a half keep-alives plus `limits.timeout_disconnect_delay`
//! without a byte [MQTT-3.1.2-24]. They are deadlines, not read timeouts, so a client
//! trickling one byte at a time runs out of time like a silent one. An idle client
//! costs a parked thread and no CPU.
//!
//! The **writer** blocks on its bounded outbox, drains whatever else is already
//! waiting into one buffer, and writes it with one system call. When the router has
//! asked to hear of it, the writer reports that its outbox drained.
//!
//! A panic in either thread (a bug: network input never panics) stays inside its
//! connection: it is logged, the socket is closed, the router hears that the
//! connection is lost, and the listener gets the connection's place back. The broker
//! serves everyone else.
//!
//! All socket code of the broker lives here and in `listener.rs`, so other transports
//! (TLS, WebSocket) need changes only in these two files.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;

use super::event::{
    outbox, Closer, ConnectionId, Event, Inbox, NewConnection, OutboxReceiver, ReadGate,
};
use super::hooks::{AuthDecision, ClientInfo, ConnectInfo, DisconnectReason, Hooks};
use super::stats::{bump, Counters, Limit};
use crate::config::{AuthConfig, Limits};
use crate::protocol::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, Decoder, Packet, ProtocolVersion, TopicFilter,
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
    /// The router's inbox, bounded in events and in bytes.
    pub(crate) router: Inbox,
    pub(crate) hooks: Hooks,
    pub(crate) limits: Limits,
    pub(crate) auth: AuthConfig,
    pub(crate) counters: Arc<Counters>,
    next_id: AtomicU64,
    /// Connections open on all listeners, and the most this system can hold.
    open: AtomicUsize,
    max_open: usize,
    /// Connections open from each address, over all listeners, while
    /// `limits.max_connections_per_address` is set. Touched once at accept and
    /// once at the end of a connection, never for a packet.
    per_address: Mutex<HashMap<IpAddr, usize>>,
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
        router: Inbox,
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
            per_address: Mutex::new(HashMap::new()),
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

    /// Counts a connection from `ip` in, unless `max_connections_per_address`
    /// connections from it are open already. An IPv4 client reaching an IPv6
    /// listener (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub(crate) fn admit_address(&self, ip: IpAddr) -> bool {
        let max = self.limits.max_connections_per_address;
        if max == usize::MAX {
            return true;
        }
        let mut per_address = self.per_address.lock();
        let open = per_address.entry(ip.to_canonical()).or_insert(0);
        if *open >= max {
            return false;
        }
        *open += 1;
        true
    }

    /// Counts a connection from `ip` out (see [`admit_address`](Self::admit_address)).
    pub(crate) fn release_address(&self, ip: IpAddr) {
        if self.limits.max_connections_per_address == usize::MAX {
            return;
        }
        let mut per_address = self.per_address.lock();
        if let Some(open) = per_address.get_mut(&ip.to_canonical()) {
            *open -= 1;
            if *open == 0 {
                // An address with nothing open takes no memory.
                per_address.remove(&ip.to_canonical());
            }
        }
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

#[derive(Debug)]
pub(crate) struct ListenerSide {
    /// The listener's name, for logs and [`ClientInfo::listener`].
    pub(crate) name: Arc<str>,
    /// Whether clients without a user name may connect here (see
    /// [`AuthConfig::allows_anonymous_on`]).
    pub(crate) allow_anonymous: bool,
}

/// Starts serving an accepted socket: spawns its reader thread, which spawns the
/// writer once the client is connected. `on_exit` runs when both have finished,
/// however they finish (a panic included), or at once if the thread cannot start.
///
/// `connect_deadline` is when the client must have sent its whole CONNECT, TLS and
/// WebSocket handshakes included (`None`: no bound).
///
/// The reader, the writer and the closer share one socket: `&TcpStream` reads and
/// writes, so a connection costs one file descriptor.
#[allow(clippy::too_many_arguments)] // each is one thing the connection is made of
pub(crate) fn spawn(
    stream: Arc<TcpStream>,
    acceptor: Arc<Acceptor>,
    remote_addr: SocketAddr,
    listener: Arc<ListenerSide>,
    id: ConnectionId,
    connect_deadline: Option<Instant>,
    shared: Arc<Shared>,
    on_exit: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    // Moved into the thread; if the thread cannot start, dropped with it.
    let exit = OnExit {
        stream: Arc::clone(&stream),
        on_exit: Some(on_exit),
    };
    thread::Builder::new()
        .name(format!("wren-conn-{id}"))
        .stack_size(READER_STACK_SIZE)
        .spawn(move || {
            let _exit = exit;
            let served = panic::catch_unwind(AssertUnwindSafe(|| {
                serve(
                    stream,
                    &acceptor,
                    remote_addr,
                    listener,
                    id,
                    connect_deadline,
                    shared,
                )
            }));
            if let Err(panic) = served {
                log::error!(
                    "The reader thread of connection {id} from {remote_addr} panicked ({}); \
                     that connection is closed, the broker goes on.",
                    panic_message(&*panic)
                );
            }
        })
        .map(|_| ())
}

/// Ends a connection however its reader thread ends: shuts the socket down (the
/// writer then stops too) and runs the listener's `on_exit`, which gives back the
/// connection's place.
struct OnExit<F: FnOnce()> {
    stream: Arc<TcpStream>,
    on_exit: Option<F>,
}

impl<F: FnOnce()> Drop for OnExit<F> {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(on_exit) = self.on_exit.take() {
            on_exit();
        }
    }
}

/// What a panic said, for the log.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "no message"
    }
}

/// The reader thread: the TLS and WebSocket handshakes, then the MQTT connection.
fn serve(
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
    let decoder = Decoder::new().max_packet_size(shared.limits.max_packet_size);
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

/// Which of a reader's deadlines passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// `connect-timeout`: the handshakes and the CONNECT took too long.
    Connect,
    /// `packet-timeout`: a packet that had begun did not finish in time.
    Packet,
    /// One and a half keep-alives (plus the configured delay) without a byte of
    /// MQTT [MQTT-3.1.2-24].
    KeepAlive,
}

/// What the reader's last read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastRead {
    /// MQTT bytes.
    Bytes,
    /// Nothing: the socket's read timeout fired.
    Alarm,
    /// Nothing for MQTT: no read yet, or only transport control data (a WebSocket
    /// ping, part of a TLS record).
    Nothing,
}

/// When a reader stops waiting for bytes, kept as deadlines.
///
/// A socket's read timeout starts again with every byte, so a client trickling one
/// byte at a time would never reach it. The reader keeps its deadlines here and
/// checks them before every read; the socket's read timeout is only its alarm clock,
/// set so that a read wakes up by the nearest deadline. Setting it costs a system
/// call, so it is changed only when it would ring too late, or has rung before the
/// deadline: a steady stream of packets leaves it alone, and an idle client sleeps
/// until its keep-alive runs out.
///
/// Plain data driven by the reader, so it is tested without sockets.
#[derive(Debug)]
struct ReadClock {
    /// Until the CONNECT has arrived: when it must have.
    connect_deadline: Option<Instant>,
    /// `limits.packet_timeout`.
    packet_timeout: Duration,
    /// After the CONNECT: the longest silence allowed, when keep-alive applies.
    keep_alive: Option<Duration>,
    /// When MQTT bytes last arrived.
    last_bytes: Instant,
    /// When the first bytes of the unfinished packet arrived.
    packet_started: Option<Instant>,
    /// The socket's read timeout as last set; `None` waits forever.
    alarm: Option<Duration>,
    /// The alarm must be set again before the next read, whatever it is now.
    alarm_stale: bool,
}

impl ReadClock {
    /// The clock of a new connection: it must send CONNECT by `connect_deadline`.
    fn new(connect_deadline: Option<Instant>, packet_timeout: Duration, now: Instant) -> Self {
        ReadClock {
            connect_deadline,
            packet_timeout,
            keep_alive: None,
            last_bytes: now,
            packet_started: None,
            alarm: None,
            alarm_stale: false,
        }
    }

    /// The CONNECT has arrived: from now on silence is bounded by `keep_alive`, if any.
    fn connected(&mut self, keep_alive: Option<Duration>, now: Instant) {
        self.connect_deadline = None;
        self.keep_alive = keep_alive;
        self.last_bytes = now;
        // The alarm was set for the CONNECT deadline, usually much nearer.
        self.alarm_stale = true;
    }

    /// A whole packet was decoded: whatever is still buffered is a new packet.
    fn packet_done(&mut self) {
        self.packet_started = None;
    }

    /// Called before each read, with what the last read brought and whether part
    /// of a packet is waiting for the rest. Says which deadline has passed, if one
    /// has; otherwise whether the socket's read timeout must be set to
    /// [`alarm`](Self::alarm) first.
    fn before_read(
        &mut self,
        now: Instant,
        mid_packet: bool,
        last: LastRead,
    ) -> Result<bool, Expired> {
        match last {
            LastRead::Bytes => self.last_bytes = now,
            LastRead::Alarm => self.alarm_stale = true,
            LastRead::Nothing => {}
        }
        if !mid_packet {
            self.packet_started = None;
        } else if self.packet_started.is_none() {
            self.packet_started = Some(now);
        }
        // The nearest deadline; on a tie, the first named.
        let nearest = [
            self.connect_deadline.map(|at| (at, Expired::Connect)),
            self.packet_started
                .and_then(|started| started.checked_add(self.packet_timeout))
                .map(|at| (at, Expired::Packet)),
            self.keep_alive
                .and_then(|silence| self.last_bytes.checked_add(silence))
                .map(|at| (at, Expired::KeepAlive)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(at, _)| *at);
        let wanted = match nearest {
            None => None,
            Some((at, which)) => {
                let left = at.saturating_duration_since(now);
                if left.is_zero() {
                    return Err(which);
                }
                Some(left)
            }
        };
        // An alarm that rings early only wakes the reader once more, which then
        // sets it exactly; one that would ring late must be set now. An eighth of
        // slack spares a system call for every packet of a steady stream.
        let too_late = match (self.alarm, wanted) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(alarm), Some(left)) => alarm > left + left / 8,
        };
        if too_late || self.alarm_stale {
            self.alarm = wanted;
            self.alarm_stale = false;
            return Ok(true);
        }
        Ok(false)
    }

    /// The read timeout the socket should have.
    fn alarm(&self) -> Option<Duration> {
        self.alarm
    }
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
        let stream = self.stream.clone();
        let output = self
            .output
            .take()
            .ok_or_else(|| io::Error::other("the writer was already started"))?;
        let counters = self.shared.counters.clone();
        let router = self.shared.router.clone();
        let id = self.id;
        let remote_addr = self.remote_addr;
        thread::Builder::new()
            .name(format!("wren-write-{id}"))
            .stack_size(WRITER_STACK_SIZE)
            .spawn(move || {
                let written = panic::catch_unwind(AssertUnwindSafe(|| {
                    write_loop(stream.clone(), output, outbox, &router, id, &counters)
                }));
                if let Err(panic) = written {
                    log::error!(
                        "The writer thread of connection {id} from {remote_addr} panicked ({}); \
                         that connection is closed, the broker goes on.",
                        panic_message(&*panic)
                    );
                    // The reader sees the end and tells the router.
                    let _ = stream.shutdown(Shutdown::Both);
                }
            })
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
                    Event::Packet {
                        connection,
                        packet: Packet::Unsubscribe(unsubscribe),
                    }
                }
                packet @ (Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
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

/// How many levels `topic` (a name or a filter) has, when that is more than `max`.
///
/// A topic of `n` bytes has at most `n + 1` levels, so a topic shorter than `max`
/// is not even scanned: ordinary topics cost one comparison.
fn levels_beyond(topic: &str, max: usize) -> Option<usize> {
    if topic.len() < max {
        return None;
    }
    let levels = topic.split('/').count();
    (levels > max).then_some(levels)
}

/// A field of a CONNECT longer than the limits allow.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TooLong {
    /// The limit that refuses it.
    limit: Limit,
    /// The field, for the log.
    field: &'static str,
    /// Its length in bytes.
    length: usize,
    /// The most bytes allowed.
    max: usize,
}

impl TooLong {
    /// The CONNACK return code the client is refused with: "identifier rejected"
    /// for the client identifier, "bad user name or password" for the others.
    fn return_code(&self) -> ConnectReturnCode {
        match self.limit {
            Limit::ClientIdLength => ConnectReturnCode::IdentifierRejected,
            _ => ConnectReturnCode::BadUserNameOrPassword,
        }
    }
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} bytes is longer than {} allows ({})",
            self.field,
            self.length,
            self.limit.key(),
            self.max
        )
    }
}

/// Checks the lengths of a CONNECT's client identifier, user name and password
/// against `limits`.
fn check_lengths(connect: &Connect, limits: &Limits) -> Result<(), TooLong> {
    let fields = [
        (
            Limit::ClientIdLength,
            "client identifier",
            Some(connect.client_id.len()),
            limits.max_client_id_length,
        ),
        (
            Limit::UsernameLength,
            "user name",
            connect.username.as_ref().map(String::len),
            limits.max_username_length,
        ),
        (
            Limit::PasswordLength,
            "password",
            connect.password.as_ref().map(|password| password.len()),
            limits.max_password_length,
        ),
    ];
    for (limit, field, length, max) in fields {
        if let Some(length) = length.filter(|&length| length > max) {
            return Err(TooLong {
                limit,
                field,
                length,
                max,
            });
        }
    }
    Ok(())
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
    router: &Inbox,
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
    use crate::broker::event::InboxBudget;

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
    fn lengths_beyond_the_limits_are_refused_with_the_matching_code() {
        let limits = Limits {
            max_client_id_length: 4,
            max_username_length: 5,
            max_password_length: 6,
            ..Limits::default()
        };
        let mut connect = Connect::new("abcd");
        connect.username = Some("abcde".into());
        connect.password = Some(bytes::Bytes::from_static(b"abcdef"));
        assert_eq!(check_lengths(&connect, &limits), Ok(()));

        let mut long_id = connect.clone();
        long_id.client_id.push('e');
        let refused = check_lengths(&long_id, &limits).unwrap_err();
        assert_eq!((refused.limit, refused.length), (Limit::ClientIdLength, 5));
        assert_eq!(refused.return_code(), ConnectReturnCode::IdentifierRejected);

        let mut long_name = connect.clone();
        long_name.username = Some("abcdef".into());
        let refused = check_lengths(&long_name, &limits).unwrap_err();
        assert_eq!(refused.limit, Limit::UsernameLength);
        assert_eq!(
            refused.return_code(),
            ConnectReturnCode::BadUserNameOrPassword
        );
        assert_eq!(
            refused.to_string(),
            "user name of 6 bytes is longer than max-username-length allows (5)"
        );

        let mut long_password = connect;
        long_password.password = Some(bytes::Bytes::from_static(b"abcdefg"));
        let refused = check_lengths(&long_password, &limits).unwrap_err();
        assert_eq!(refused.limit, Limit::PasswordLength);
        assert_eq!(
            refused.return_code(),
            ConnectReturnCode::BadUserNameOrPassword
        );
    }

    #[test]
    fn levels_are_counted_only_beyond_the_limit() {
        assert_eq!(levels_beyond("a/b/c", 3), None);
        assert_eq!(levels_beyond("a/b/c/d", 3), Some(4));
        assert_eq!(levels_beyond("///", 3), Some(4));
        assert_eq!(levels_beyond("abcdefgh", 3), None);
        assert_eq!(levels_beyond(&"/".repeat(65_000), 200), Some(65_001));
        assert_eq!(levels_beyond("a/b", usize::MAX), None);
    }

    #[test]
    fn assigned_identifiers_differ() {
        assert_ne!(assigned_client_id(), assigned_client_id());
    }

    /// What connections share, with the receiving end of its router inbox.
    fn shared_with_inbox(limits: Limits) -> (Shared, crossbeam_channel::Receiver<Event>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let counters = Arc::new(Counters::default());
        let budget = InboxBudget::new(limits.max_inbox_bytes, counters.clone());
        let shared = Shared::new(
            Inbox::new(sender, Arc::new(budget)),
            Hooks::default(),
            limits,
            AuthConfig::default(),
            counters,
        );
        (shared, receiver)
    }

    fn shared(limits: Limits) -> Shared {
        shared_with_inbox(limits).0
    }

    #[test]
    fn connections_per_address_are_refused_beyond_the_limit_and_freed_on_release() {
        let shared = shared(Limits {
            max_connections_per_address: 2,
            ..Limits::default()
        });
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(shared.admit_address(ip("192.0.2.1")));
        // The same client through an IPv6 listener.
        assert!(shared.admit_address(ip("::ffff:192.0.2.1")));
        assert!(!shared.admit_address(ip("192.0.2.1")));
        assert!(shared.admit_address(ip("192.0.2.2")));
        shared.release_address(ip("192.0.2.1"));
        assert!(shared.admit_address(ip("::ffff:192.0.2.1")));
        for address in ["192.0.2.1", "192.0.2.1", "192.0.2.2"] {
            shared.release_address(ip(address));
        }
        assert!(shared.per_address.lock().is_empty());
    }

    #[test]
    fn without_a_per_address_limit_nothing_is_counted() {
        let shared = shared(Limits::default());
        for _ in 0..10 {
            assert!(shared.admit_address(IpAddr::from([192, 0, 2, 1])));
        }
        assert!(shared.per_address.lock().is_empty());
    }

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (server, client)
    }

    #[test]
    fn a_connection_thread_that_panics_still_closes_its_socket_and_gives_back_its_place() {
        let (server, mut client) = tcp_pair();
        let freed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let exit = OnExit {
            stream: Arc::new(server),
            on_exit: Some({
                let freed = freed.clone();
                move || freed.store(true, Ordering::SeqCst)
            }),
        };
        let thread = thread::spawn(move || {
            let _exit = exit;
            panic!("a bug in a connection thread");
        });
        let panic = thread.join().unwrap_err();
        assert_eq!(panic_message(&*panic), "a bug in a connection thread");
        assert!(freed.load(Ordering::SeqCst));
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    }

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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_connect_trickled_a_byte_at_a_time_runs_out_of_connect_time() {
        let start = Instant::now();
        let mut clock = ReadClock::new(Some(start + ms(1000)), ms(60_000), start);
        assert_eq!(clock.before_read(start, false, LastRead::Nothing), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(1000)));
        let mut now = start;
        for _ in 0..3 {
            now += ms(300);
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
        }
        now += ms(300);
        assert_eq!(
            clock.before_read(now, true, LastRead::Bytes),
            Err(Expired::Connect)
        );
    }

    #[test]
    fn a_packet_trickled_a_byte_at_a_time_runs_out_of_packet_time_without_keep_alive() {
        let start = Instant::now();
        let mut clock = ReadClock::new(Some(start + ms(10_000)), ms(1000), start);
        clock.connected(None, start);
        // Between packets, with keep-alive 0, nothing bounds the wait.
        assert_eq!(clock.before_read(start, false, LastRead::Bytes), Ok(true));
        assert_eq!(clock.alarm(), None);
        // A packet begins, then a byte comes every 300 ms.
        let mut now = start + ms(5000);
        assert_eq!(clock.before_read(now, true, LastRead::Bytes), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(1000)));
        for _ in 0..3 {
            now += ms(300);
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
        }
        now += ms(300);
        assert_eq!(
            clock.before_read(now, true, LastRead::Bytes),
            Err(Expired::Packet)
        );
    }

    #[test]
    fn each_packet_gets_its_own_packet_time() {
        let start = Instant::now();
        let mut clock = ReadClock::new(None, ms(1000), start);
        clock.connected(None, start);
        let mut now = start;
        for _ in 0..10 {
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
            now += ms(600);
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
            // The packet is complete, and the same read began the next one.
            clock.packet_done();
        }
    }

    #[test]
    fn a_steady_stream_sets_the_alarm_once_and_silence_ends_in_a_keep_alive_timeout() {
        let start = Instant::now();
        let mut clock = ReadClock::new(Some(start + ms(10_000)), ms(60_000), start);
        assert_eq!(clock.before_read(start, false, LastRead::Nothing), Ok(true));
        let mut now = start + ms(100);
        clock.connected(Some(ms(90_000)), now);
        assert_eq!(clock.before_read(now, false, LastRead::Bytes), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(90_000)));
        // Packets split across reads: the first wait inside a packet sets the alarm
        // to the packet time, which then serves every wait.
        let mut alarms_set = 0;
        for n in 0..1000 {
            now += ms(10);
            if clock.before_read(now, n % 2 == 0, LastRead::Bytes) == Ok(true) {
                alarms_set += 1;
            }
            if n % 2 == 1 {
                clock.packet_done();
            }
        }
        assert_eq!(alarms_set, 1);
        assert_eq!(clock.alarm(), Some(ms(60_000)));
        // Silence: the alarm rings early once, and is set to what is left.
        let last_bytes = now;
        now += ms(60_000);
        assert_eq!(clock.before_read(now, false, LastRead::Alarm), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(30_000)));
        // WebSocket pings are not MQTT: they do not keep the client alive, and the
        // next wait may only last until the keep-alive runs out.
        now += ms(10_000);
        assert_eq!(clock.before_read(now, false, LastRead::Nothing), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(20_000)));
        now = last_bytes + ms(90_000);
        assert_eq!(
            clock.before_read(now, false, LastRead::Alarm),
            Err(Expired::KeepAlive)
        );
    }

    #[test]
    fn an_alarm_that_rang_without_a_deadline_is_turned_off() {
        let start = Instant::now();
        let mut clock = ReadClock::new(None, ms(1000), start);
        clock.connected(None, start);
        assert!(clock.before_read(start, true, LastRead::Bytes).is_ok());
        clock.packet_done();
        assert_eq!(clock.alarm(), Some(ms(1000)));
        // Idle: the packet-time alarm may ring once more, then it is off for good.
        assert_eq!(
            clock.before_read(start + ms(100), false, LastRead::Bytes),
            Ok(false)
        );
        assert_eq!(
            clock.before_read(start + ms(1100), false, LastRead::Alarm),
            Ok(true)
        );
        assert_eq!(clock.alarm(), None);
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
