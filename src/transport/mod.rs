//! Byte streams for MQTT: TCP, TLS, WebSocket and secure WebSocket, all with one face.
//!
//! Whatever the kind of connection, the broker and the client get the same three
//! things (a [`Connection`]): a [`Reader`] to block on in one thread, a [`Writer`] to
//! write from another, and a [`Closer`] to end the connection from anywhere. Above
//! this module nothing knows whether bytes travel in the clear, in TLS records or in
//! WebSocket frames; below it nothing knows what an MQTT packet is.
//!
//! # Why two threads can share a TLS or WebSocket connection
//!
//! A plain TCP socket is easy to share: [`TcpStream::try_clone`] gives the reading and
//! the writing thread each a handle, and the kernel keeps the directions apart. A TLS
//! session or WebSocket cannot be split like that: one object holds the state of both
//! directions, and its `read` blocks inside the socket. Locking it around a blocking
//! read would stall every write behind it; reading with a timeout to let writers in
//! would add latency to every message and wake idle connections for nothing.
//!
//! wren-mqtt does neither. After the handshake (done as ordinary blocking I/O), the
//! TLS and WebSocket state is cut off from the socket and fed by hand: the reading
//! thread blocks on its own handle of the TCP socket, holding no lock, and when bytes
//! arrive it locks the state just long enough to decrypt and unframe them. The
//! writing thread locks it just long enough to frame and encrypt, then writes to the
//! socket itself. Both directions run at the speed of plain TCP, and an idle
//! connection is two threads asleep in the kernel. `layered.rs` holds the details,
//! including how wire order is kept.
//!
//! # Example: a TLS listener's side
//!
//! ```no_run
//! use std::net::TcpListener;
//! use std::time::Duration;
//! use wren::transport::{Acceptor, ServerTls};
//!
//! let tls = ServerTls { certfile: "cert.pem".into(), keyfile: "key.pem".into() };
//! let acceptor = Acceptor::tcp().with_tls(tls.acceptor()?);
//! let listener = TcpListener::bind("127.0.0.1:8883")?;
//! let (socket, _) = listener.accept()?;
//! let connection = acceptor.accept(socket)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod layered;
mod pipe;
mod tls;
mod websocket;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use native_tls::{TlsAcceptor, TlsConnector};

use layered::{LayeredReader, LayeredWriter, Layers};
use pipe::Pipe;

pub use tls::{ClientTls, ServerTls};

/// The largest WebSocket message accepted unless told otherwise: 16 MiB.
const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// What can go wrong setting up a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// A certificate or key file could not be read.
    #[error("cannot read TLS {what} {}: {source}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Which file it is meant to be (certificate file, key file, CA file).
        what: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A PEM file holds no certificate.
    #[error("{}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)", .0.display())]
    NoCertificate(PathBuf),
    /// Certificates or keys were refused by the TLS library.
    #[error("TLS setup failed for {context}: {source}")]
    TlsSetup {
        /// What was being set up.
        context: String,
        /// The TLS library's error.
        source: native_tls::Error,
    },
    /// The TLS handshake failed (untrusted certificate, wrong host name, no common
    /// protocol version, the peer is not speaking TLS, ...).
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(String),
    /// The WebSocket upgrade failed or was refused.
    #[error("WebSocket handshake failed: {0}")]
    WebSocketHandshake(String),
    /// The peer sent something that is not a WebSocket upgrade request (it was
    /// answered with HTTP 400).
    #[error("not a WebSocket upgrade request: {0}")]
    WebSocketNotUpgraded(String),
    /// A TLS handshake or WebSocket upgrade did not finish in the time it was given
    /// (the duration), counted from the start of the handshake as a whole, not per
    /// read: a peer trickling its bytes runs out of time like a silent one.
    #[error("handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// No address could be found for the host name.
    #[error("cannot resolve host '{0}'")]
    Resolve(String),
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// The reading half of a connection: application bytes, whatever the transport.
pub struct Reader {
    inner: ReaderInner,
}

enum ReaderInner {
    Tcp(Arc<TcpStream>),
    Layered(Box<LayeredReader>),
}

impl Reader {
    fn socket(&self) -> &TcpStream {
        match &self.inner {
            ReaderInner::Tcp(socket) => socket,
            ReaderInner::Layered(reader) => reader.socket(),
        }
    }

    /// Makes reads fail with `WouldBlock` or `TimedOut` after `timeout` of silence
    /// (the broker's keep-alive check); `None` waits forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(timeout)
    }
}

impl Read for Reader {
    /// Reads application bytes. Over TLS and WebSocket, a read that received only
    /// the transport's own traffic (a WebSocket ping, part of a TLS record) fails
    /// with [`io::ErrorKind::Interrupted`] instead of waiting again: `read_exact`
    /// and the like simply retry, and a caller keeping a deadline gets to check it,
    /// so a peer that only ever pings cannot hold a read open forever.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            ReaderInner::Tcp(socket) => (&**socket).read(buf),
            ReaderInner::Layered(reader) => reader.read(buf),
        }
    }
}

/// The writing half of a connection. Each `write` goes out at once (over WebSocket,
/// as one binary frame), so callers should gather a batch and write it in one call.
pub struct Writer {
    inner: WriterInner,
}

enum WriterInner {
    Tcp(Arc<TcpStream>),
    Layered(LayeredWriter),
}

impl Writer {
    /// Makes a write fail with `WouldBlock` or `TimedOut` when the peer has taken
    /// none of the bytes for `timeout` (it stopped reading); `None` waits forever.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.inner {
            WriterInner::Tcp(socket) => socket.set_write_timeout(timeout),
            WriterInner::Layered(writer) => writer.set_write_timeout(timeout),
        }
    }

    /// Writes what the socket takes at once, without waiting for room in its send
    /// buffer: `Some(Ok(0))` when it is full. Plain TCP only: `None` for TLS and
    /// WebSocket, whose records cannot be cut short, kept, and finished later by
    /// another write.
    pub(crate) fn write_now(&self, buf: &[u8]) -> Option<io::Result<usize>> {
        if !self.can_write_now() {
            return None;
        }
        match &self.inner {
            WriterInner::Tcp(socket) => send_without_waiting(socket, buf),
            WriterInner::Layered(_) => None,
        }
    }

    /// Whether [`write_now`](Self::write_now) can write here, and a write cut
    /// short (by a timeout, say) can be finished later: plain TCP on Linux.
    pub(crate) fn can_write_now(&self) -> bool {
        matches!(self.inner, WriterInner::Tcp(_))
            && cfg!(any(target_os = "linux", target_os = "android"))
    }

    /// Says goodbye at the transport's level (TLS close_notify, WebSocket close
    /// frame), best effort. Plain TCP has nothing to say. Use a [`Closer`] to then
    /// shut the socket.
    pub fn close_gracefully(&mut self) {
        if let WriterInner::Layered(writer) = &self.inner {
            let _ = writer.close();
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            WriterInner::Tcp(socket) => (&**socket).write(buf),
            WriterInner::Layered(writer) => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            WriterInner::Tcp(socket) => (&**socket).write_all(buf),
            // One call, one frame.
            WriterInner::Layered(writer) => writer.write(buf).map(|_| ()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            WriterInner::Tcp(socket) => (&**socket).flush(),
            WriterInner::Layered(writer) => writer.flush(),
        }
    }
}

/// One `send(2)` with `MSG_DONTWAIT`: the socket stays blocking for the threads
/// that read and write it, and this call alone does not wait. `MSG_NOSIGNAL`, as
/// the standard library's own writes use, turns a peer that has gone into an error
/// rather than a `SIGPIPE`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_without_waiting(socket: &TcpStream, buf: &[u8]) -> Option<io::Result<usize>> {
    use std::os::fd::AsRawFd;
    if buf.is_empty() {
        return Some(Ok(0));
    }
    // SAFETY: the descriptor is open for as long as `socket` is borrowed, and
    // `buf` is valid for `buf.len()` bytes.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if sent >= 0 {
        return Some(Ok(sent as usize));
    }
    let error = io::Error::last_os_error();
    Some(match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
        _ => Err(error),
    })
}

/// Elsewhere every write waits on a writer thread.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_without_waiting(_socket: &TcpStream, _buf: &[u8]) -> Option<io::Result<usize>> {
    None
}

/// Ends a connection from any thread: both halves see the end at once (a blocked
/// read returns 0, a write fails). Cheap to clone.
///
/// The broker keeps one for each of its connections too; its inline clients, which
/// have no socket, have a detached one that closes nothing.
#[derive(Debug, Clone)]
pub struct Closer(Option<Arc<TcpStream>>);

impl Closer {
    /// A closer for `socket`.
    pub(crate) fn new(socket: &Arc<TcpStream>) -> Closer {
        Closer(Some(Arc::clone(socket)))
    }

    /// A closer with no socket: for the broker's inline clients, and for driving
    /// its router without a network in tests.
    pub(crate) fn detached() -> Closer {
        Closer(None)
    }

    /// Shuts the socket in both directions. Closing twice is harmless.
    pub fn close(&self) {
        if let Some(socket) = &self.0 {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// An established connection, ready for MQTT.
pub struct Connection {
    /// Where application bytes come in.
    pub reader: Reader,
    /// Where application bytes go out.
    pub writer: Writer,
    /// Ends the connection from any thread.
    pub closer: Closer,
    /// The other end's address.
    pub peer: SocketAddr,
    /// The kind of transport, for logs.
    pub kind: Kind,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The four ways MQTT travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// MQTT over TCP (`mqtt://`, port 1883).
    Tcp,
    /// MQTT over TLS (`mqtts://`, port 8883).
    Tls,
    /// MQTT over WebSocket (`ws://`).
    WebSocket,
    /// MQTT over WebSocket over TLS (`wss://`).
    SecureWebSocket,
}

impl Kind {
    /// The URL scheme: `mqtt`, `mqtts`, `ws` or `wss`.
    pub fn scheme(self) -> &'static str {
        match self {
            Kind::Tcp => "mqtt",
            Kind::Tls => "mqtts",
            Kind::WebSocket => "ws",
            Kind::SecureWebSocket => "wss",
        }
    }

    /// The port used when a URL names none: 1883, 8883, 80, 443.
    pub fn default_port(self) -> u16 {
        match self {
            Kind::Tcp => 1883,
            Kind::Tls => 8883,
            Kind::WebSocket => 80,
            Kind::SecureWebSocket => 443,
        }
    }

    /// The kind for a URL scheme, or `None`. `tcp`, `ssl`, `tls` and `mqtt+ssl` are
    /// accepted as other clients accept them.
    pub fn from_scheme(scheme: &str) -> Option<Kind> {
        match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Some(Kind::Tcp),
            "mqtts" | "ssl" | "tls" | "mqtt+ssl" => Some(Kind::Tls),
            "ws" => Some(Kind::WebSocket),
            "wss" => Some(Kind::SecureWebSocket),
            _ => None,
        }
    }

    /// Whether the kind runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Kind::Tls | Kind::SecureWebSocket)
    }

    /// Whether the kind runs over WebSocket.
    pub fn is_websocket(self) -> bool {
        matches!(self, Kind::WebSocket | Kind::SecureWebSocket)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

/// Runs a handshake over a [`Pipe`] with a deadline, which sets the socket's
/// timeouts as it reads and writes, then clears them: after the handshake, whoever
/// reads the connection decides how long to wait.
fn clearing_timeouts<T>(
    socket: &TcpStream,
    handshake: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let result = handshake();
    socket
        .set_read_timeout(None)
        .and_then(|()| socket.set_write_timeout(None))
        .map_err(io_error("clearing handshake timeout"))?;
    result
}

fn tls_handshake_error<S: fmt::Debug>(
    error: native_tls::HandshakeError<S>,
    timeout: Duration,
) -> Error {
    match error {
        // A blocking socket only "would block" when its timeout fires.
        native_tls::HandshakeError::WouldBlock(_) => Error::HandshakeTimeout(timeout),
        native_tls::HandshakeError::Failure(e) => Error::TlsHandshake(e.to_string()),
    }
}

/// Hands out the halves. Every handle shares the one socket (`&TcpStream` reads and
/// writes), so a connection costs one file descriptor whatever its kind.
fn finish(socket: Arc<TcpStream>, layers: Option<Layers>, kind: Kind) -> Result<Connection, Error> {
    let peer = socket
        .peer_addr()
        .map_err(io_error("reading peer address"))?;
    let closer = Closer::new(&socket);
    let (reader, writer) = match layers {
        None => (
            ReaderInner::Tcp(Arc::clone(&socket)),
            WriterInner::Tcp(socket),
        ),
        Some(layers) => {
            let (reader, writer) = layered::split(socket, layers);
            (
                ReaderInner::Layered(Box::new(reader)),
                WriterInner::Layered(writer),
            )
        }
    };
    Ok(Connection {
        reader: Reader { inner: reader },
        writer: Writer { inner: writer },
        closer,
        peer,
        kind,
    })
}

/// How a listener turns accepted sockets into connections.
#[derive(Clone)]
pub struct Acceptor {
    tls: Option<Arc<TlsAcceptor>>,
    websocket: bool,
    /// The one HTTP path upgrades are accepted on; any path when `None`.
    websocket_path: Option<String>,
    handshake_timeout: Duration,
    max_message_size: usize,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("kind", &self.kind())
            .field("websocket_path", &self.websocket_path)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl Acceptor {
    /// Plain MQTT over TCP.
    pub fn tcp() -> Acceptor {
        Acceptor {
            tls: None,
            websocket: false,
            websocket_path: None,
            handshake_timeout: Duration::from_secs(10),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// MQTT over WebSocket, upgraded from HTTP on any path, as mosquitto does
    /// (browsers' MQTT clients usually ask for `/mqtt`). See [`path`](Self::path).
    pub fn websocket() -> Acceptor {
        Acceptor {
            websocket: true,
            ..Acceptor::tcp()
        }
    }

    /// Accepts WebSocket upgrades on this HTTP path only; others get 404.
    pub fn path(mut self, path: impl Into<String>) -> Acceptor {
        self.websocket_path = Some(path.into());
        self
    }

    /// Adds TLS below whatever else: `tcp` becomes `mqtts`, `websocket` becomes `wss`.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Acceptor {
        self.tls = Some(Arc::new(acceptor));
        self
    }

    /// How long a TLS handshake plus WebSocket upgrade may take, together, from the
    /// call to [`accept`](Self::accept). A peer that takes longer is dropped, however
    /// slowly it trickles its bytes, so it cannot hold a thread forever. Default 10 s.
    /// See [`accept_until`](Self::accept_until) for a deadline that started earlier.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Acceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest WebSocket message accepted (default 16 MiB); MQTT's own packet
    /// limit applies on top.
    pub fn max_message_size(mut self, bytes: usize) -> Acceptor {
        self.max_message_size = bytes;
        self
    }

    /// The kind of connections this acceptor makes.
    pub fn kind(&self) -> Kind {
        match (self.tls.is_some(), self.websocket) {
            (false, false) => Kind::Tcp,
            (true, false) => Kind::Tls,
            (false, true) => Kind::WebSocket,
            (true, true) => Kind::SecureWebSocket,
        }
    }

    /// Runs the handshakes on an accepted socket (none for plain TCP) and returns the
    /// connection. Blocks for at most the handshake timeout; meant to run on the
    /// connection's own thread, not the listener's.
    ///
    /// The socket may already be shared (`Arc<TcpStream>`), so that the caller can
    /// shut it down while the handshake runs.
    pub fn accept(&self, socket: impl Into<Arc<TcpStream>>) -> Result<Connection, Error> {
        self.accept_until(socket, Instant::now().checked_add(self.handshake_timeout))
    }

    /// Like [`accept`](Self::accept), but the handshakes must be done by `deadline`
    /// (`None`: no bound) instead of within the handshake timeout. For a server
    /// whose deadline started earlier and covers more than the handshakes: an MQTT
    /// broker gives a client one deadline from accept to CONNECT.
    ///
    /// ```no_run
    /// use std::net::TcpListener;
    /// use std::time::{Duration, Instant};
    /// use wren::transport::Acceptor;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:8080")?;
    /// let (socket, _) = listener.accept()?;
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// let connection = Acceptor::websocket().accept_until(socket, Some(deadline))?;
    /// // ... read the first message, by the same deadline ...
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accept_until(
        &self,
        socket: impl Into<Arc<TcpStream>>,
        deadline: Option<Instant>,
    ) -> Result<Connection, Error> {
        let socket: Arc<TcpStream> = socket.into();
        let _ = socket.set_nodelay(true);
        let kind = self.kind();
        if kind == Kind::Tcp {
            return finish(socket, None, kind);
        }
        // What a timeout error reports: the time this handshake was given.
        let given = deadline.map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        let pipe = Pipe::connected(Arc::clone(&socket), deadline);
        let layers = clearing_timeouts(&socket, || {
            let path = self.websocket_path.as_deref();
            let max = self.max_message_size;
            Ok(match (&self.tls, self.websocket) {
                (Some(tls), false) => Layers::Tls(Box::new(
                    tls.accept(pipe)
                        .map_err(|e| tls_handshake_error(e, given))?,
                )),
                (None, true) => Layers::WebSocket(Box::new(
                    websocket::accept(pipe, path, max, given).inspect_err(|e| {
                        if matches!(e, Error::WebSocketNotUpgraded(_)) {
                            let _ = (&*socket).write_all(websocket::NOT_AN_UPGRADE);
                        }
                    })?,
                )),
                (Some(tls), true) => {
                    let tls = tls
                        .accept(pipe)
                        .map_err(|e| tls_handshake_error(e, given))?;
                    Layers::SecureWebSocket(Box::new(websocket::accept(tls, path, max, given)?))
                }
                (None, false) => unreachable!("plain TCP returned above"),
            })
        })?;
        finish(socket, Some(layers), kind)
    }
}

/// Where and how a client dials.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// The kind of connection.
    pub kind: Kind,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// HTTP path for WebSocket (`/mqtt` by default).
    pub path: String,
    /// TLS settings for `mqtts` and `wss`.
    pub tls: ClientTls,
    /// Extra HTTP headers sent with the WebSocket upgrade (hbmqtt's
    /// `--extra-headers`).
    pub extra_headers: Vec<(String, String)>,
    /// Bound on TCP connect plus handshakes.
    pub timeout: Duration,
    /// The TLS connector built by [`Dialer::prepare_tls`], if it was called.
    pub(crate) prepared_tls: Option<TlsConnector>,
}

impl Dialer {
    /// A dialer for `kind` to `host:port` with default settings.
    pub fn new(kind: Kind, host: impl Into<String>, port: u16) -> Dialer {
        Dialer {
            kind,
            host: host.into(),
            port,
            path: "/mqtt".into(),
            tls: ClientTls::default(),
            extra_headers: Vec::new(),
            timeout: Duration::from_secs(10),
            prepared_tls: None,
        }
    }

    /// Builds the TLS connector now and keeps it for every later
    /// [`connect`](Self::connect), which otherwise builds one each time (loading
    /// the system's trust store and reading `tls.ca_file` again). For programs
    /// that open many connections; call it after setting `tls`, whose later
    /// changes it does not see.
    ///
    /// ```no_run
    /// use wren::transport::{Dialer, Kind};
    /// let mut dialer = Dialer::new(Kind::Tls, "broker.example", 8883);
    /// dialer.prepare_tls()?;
    /// for _ in 0..1000 {
    ///     let connection = dialer.connect()?;
    ///     # drop(connection);
    /// }
    /// # Ok::<(), wren::transport::Error>(())
    /// ```
    pub fn prepare_tls(&mut self) -> Result<(), Error> {
        self.prepared_tls = Some(self.tls.connector()?);
        Ok(())
    }

    fn websocket_url(&self) -> String {
        let scheme = if self.kind.is_tls() { "wss" } else { "ws" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }

    /// Connects, runs the handshakes, and returns the connection.
    pub fn connect(&self) -> Result<Connection, Error> {
        let target = format!("{}:{}", self.host, self.port);
        let addresses: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|_| Error::Resolve(self.host.clone()))?
            .collect();
        let mut last_error = None;
        let mut socket = None;
        for address in &addresses {
            match TcpStream::connect_timeout(address, self.timeout) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let socket = match (socket, last_error) {
            (Some(socket), _) => socket,
            (None, Some(source)) => {
                return Err(Error::Io {
                    context: format!("connecting to {target}"),
                    source,
                })
            }
            (None, None) => return Err(Error::Resolve(self.host.clone())),
        };
        let _ = socket.set_nodelay(true);
        let socket = Arc::new(socket);
        if self.kind == Kind::Tcp {
            return finish(socket, None, self.kind);
        }
        let timeout = self.timeout;
        let pipe = Pipe::connected(Arc::clone(&socket), Instant::now().checked_add(timeout));
        let layers = clearing_timeouts(&socket, || {
            let tls = |pipe: Pipe| -> Result<native_tls::TlsStream<Pipe>, Error> {
                let connector: TlsConnector = match &self.prepared_tls {
                    Some(connector) => connector.clone(),
                    None => self.tls.connector()?,
                };
                connector
                    .connect(&self.host, pipe)
                    .map_err(|e| tls_handshake_error(e, timeout))
            };
            let max = DEFAULT_MAX_MESSAGE_SIZE;
            let url = self.websocket_url();
            Ok(match self.kind {
                Kind::Tls => Layers::Tls(Box::new(tls(pipe)?)),
                Kind::WebSocket => Layers::WebSocket(Box::new(websocket::connect(
                    pipe,
                    &url,
                    &self.extra_headers,
                    max,
                    timeout,
                )?)),
                Kind::SecureWebSocket => Layers::SecureWebSocket(Box::new(websocket::connect(
                    tls(pipe)?,
                    &url,
                    &self.extra_headers,
                    max,
                    timeout,
                )?)),
                Kind::Tcp => unreachable!("plain TCP returned above"),
            })
        })?;
        finish(socket, Some(layers), self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_map_to_kinds_and_ports() {
        assert_eq!(Kind::from_scheme("mqtt"), Some(Kind::Tcp));
        assert_eq!(Kind::from_scheme("MQTTS"), Some(Kind::Tls));
        assert_eq!(Kind::from_scheme("wss"), Some(Kind::SecureWebSocket));
        assert_eq!(Kind::from_scheme("http"), None);
        assert_eq!(Kind::Tls.default_port(), 8883);
        assert!(Kind::SecureWebSocket.is_websocket() && Kind::SecureWebSocket.is_tls());
    }
}
