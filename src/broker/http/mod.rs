//! The HTTP listener (`type: http`): a dashboard to look at, JSON to read and
//! Prometheus metrics to scrape, all made from the counters `$SYS` keeps.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /` | the dashboard, one self-contained page that updates itself |
//! | `GET /api/stats` | [`Metrics`](super::Metrics) as JSON (what the page reads) |
//! | `GET /api/sys` | the `$SYS` tree as JSON |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /healthz` | `ok`, for load balancers (never asks for a password) |
//!
//! The server is a small HTTP/1.1 server of its own (`server.rs`) over the
//! broker's transport layer, in the broker's thread design: one thread accepts, and
//! each connection gets a thread that reads one request, answers it and closes.
//! Every request is bounded: at most [`MAX_HEAD`](server::MAX_HEAD) bytes of head,
//! all of it within [`REQUEST_TIMEOUT`] (TLS handshake included), its answer
//! written within [`WRITE_TIMEOUT`], and at most `max-connections` requests at once
//! (more are answered 503 at once). A slow or silent client therefore holds one
//! thread for seconds, never for long. Why not an HTTP crate: those that fit a
//! blocking design bring TLS of their own (rustls or OpenSSL) beside the broker's
//! native-tls, and leave the limits above to the caller.
//!
//! With `basic-auth: on`, every path but `/healthz` asks for HTTP basic
//! authentication, checked against the broker's password file.

mod dashboard;
mod json;
mod metrics;
mod server;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use parking_lot::Mutex;

use super::error::Error;
use super::listener::{bind, wake_and_join, with_listener_tls, OpenSockets};
use super::log_limit::LogLimit;
use super::metrics::Figures;
use crate::auth::PasswordFile;
use crate::config::{ListenerConfig, ListenerKind};
use crate::transport::{Acceptor, Closer};
use server::{Method, Request, Response, Status};

/// How long a client has, from accept, to complete its request (TLS handshake
/// included).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing a response may be stalled by a client that does not read.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for requests being answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long, and for how many bytes, a refused request's remaining input is
/// read and dropped before the connection is closed (see `linger`).
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// Stack size of a request's thread: a TLS handshake, a password check and
/// rendering the figures, as an MQTT connection's reader does its handshakes.
const REQUEST_STACK_SIZE: usize = 128 * 1024;
/// Pause after a failed accept before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The realm browsers show when they ask for a password.
const REALM: &str = "Basic realm=\"wren-mqtt\", charset=\"UTF-8\"";

/// The requests being answered, so that shutdown can close them.
#[derive(Default)]
struct Open {
    sockets: Arc<OpenSockets>,
    next_id: AtomicU64,
}

/// An HTTP listener bound to its address, not yet accepting: the broker binds
/// every listener before it starts any thread.
pub(crate) struct Bound {
    name: String,
    socket: TcpListener,
    local_addr: SocketAddr,
    acceptor: Acceptor,
    basic_auth: bool,
    max_connections: usize,
    open: Arc<Open>,
}

impl Bound {
    /// Binds `config`'s address and loads its TLS files.
    pub(crate) fn bind(config: &ListenerConfig) -> Result<Bound, Error> {
        let basic_auth = matches!(config.kind, ListenerKind::Http { basic_auth: true });
        let acceptor = with_listener_tls(Acceptor::tcp(), config)?;
        let (socket, local_addr) = bind(config)?;
        Ok(Bound {
            name: config.name.clone(),
            socket,
            local_addr,
            acceptor,
            basic_auth,
            max_connections: config.max_connections,
            open: Arc::new(Open::default()),
        })
    }

    /// The address bound, with its real port.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http` or `https`.
    pub(crate) fn protocol(&self) -> &'static str {
        if self.acceptor.kind().is_tls() {
            "https"
        } else {
            "http"
        }
    }

    /// Whether requests must carry a user and password.
    pub(crate) fn basic_auth(&self) -> bool {
        self.basic_auth
    }

    /// The requests being answered, for the figures.
    pub(crate) fn open_sockets(&self) -> Arc<OpenSockets> {
        self.open.sockets.clone()
    }

    /// Starts accepting. `passwords` is required when the listener asks for basic
    /// authentication.
    pub(crate) fn start(
        self,
        figures: Arc<Figures>,
        passwords: Option<Arc<PasswordFile>>,
    ) -> Result<HttpListener, Error> {
        if !self.local_addr.ip().is_loopback() && passwords.is_none() {
            log::warn!(
                "HTTP listener {} on {} shows the broker's figures to anyone on the network \
                 (basic-auth is off).",
                self.name,
                self.local_addr
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let service = Arc::new(Service {
            listener: self.name.clone(),
            figures,
            passwords,
            refusals: Mutex::new(LogLimit::new("refused HTTP requests")),
        });
        let accept = Accept {
            acceptor: Arc::new(self.acceptor),
            max_connections: self.max_connections,
            open: self.open.clone(),
            service,
        };
        let thread = {
            let stop = stop.clone();
            let socket = self.socket;
            thread::Builder::new()
                .name(format!("wren-http-{}", self.name))
                .spawn(move || accept_loop(socket, &accept, &stop))
                .map_err(|e| Error::Thread("HTTP listener".into(), e))?
        };
        log::info!(
            "Opening HTTP listener {} on {} (max {} connections).",
            self.name,
            self.local_addr,
            self.max_connections
        );
        Ok(HttpListener {
            name: self.name,
            local_addr: self.local_addr,
            stop,
            open: self.open,
            thread: Some(thread),
        })
    }
}

/// A running HTTP listener.
pub(crate) struct HttpListener {
    name: String,
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<Open>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HttpListener {
    /// The address bound, with its real port.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes the requests still open and waits (bounded) for
    /// their threads.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return;
        };
        wake_and_join(
            self.local_addr,
            thread,
            &format!("HTTP listener {}", self.name),
        );
        self.open
            .sockets
            .close_and_drain(DRAIN_TIMEOUT, &format!("HTTP listener {}", self.name));
    }
}

impl Drop for HttpListener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the accept thread needs.
struct Accept {
    acceptor: Arc<Acceptor>,
    max_connections: usize,
    open: Arc<Open>,
    service: Arc<Service>,
}

fn accept_loop(socket: TcpListener, accept: &Accept, stop: &AtomicBool) {
    let name = &accept.service.listener;
    loop {
        let accepted = socket.accept();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match accepted {
            Ok((stream, peer)) => admit(stream, peer, accept),
            Err(error) => {
                log::warn!("HTTP listener {name}: accept failed: {error}.");
                if error.kind() != io::ErrorKind::Interrupted {
                    thread::sleep(ACCEPT_ERROR_PAUSE);
                }
            }
        }
    }
    log::info!("HTTP listener {name} closed.");
}

/// Starts a thread for the connection, or refuses it when `max-connections`
/// requests are already being answered.
fn admit(stream: TcpStream, peer: SocketAddr, accept: &Accept) {
    let name = &accept.service.listener;
    let stream = Arc::new(stream);
    let id = accept.open.next_id.fetch_add(1, Ordering::Relaxed);
    let admitted =
        accept
            .open
            .sockets
            .admit(id, Closer::new(&stream), accept.max_connections, || true);
    if admitted.is_err() {
        accept.service.log_refusal(|| {
            format!(
                "HTTP listener {name}: refusing {peer}, {} requests already open \
                 (max-connections).",
                accept.max_connections
            )
        });
        refuse_busy(&stream, accept.acceptor.kind().is_tls());
        return;
    }
    let open = accept.open.clone();
    let acceptor = accept.acceptor.clone();
    let service = accept.service.clone();
    // Dropped when the thread ends, however it ends, or at once if it cannot start.
    let entry = Entry { open, id };
    let spawned = thread::Builder::new()
        .name("wren-http-request".into())
        .stack_size(REQUEST_STACK_SIZE)
        .spawn({
            let stream = stream.clone();
            move || {
                let _entry = entry;
                serve(stream, peer, &acceptor, &service);
            }
        });
    if let Err(error) = spawned {
        log::error!("HTTP listener {name}: cannot start a thread for {peer}: {error}.");
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// A request on the open list; dropping it takes it off.
struct Entry {
    open: Arc<Open>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.open.sockets.remove(self.id);
    }
}

/// Answers 503 from the accept thread without waiting on the client: the answer
/// fits in the socket's buffer, and the write is bounded all the same. A TLS
/// client would not understand plain text, so it is simply closed.
fn refuse_busy(stream: &TcpStream, tls: bool) {
    if !tls {
        let response = Response::text(
            Status::SERVICE_UNAVAILABLE,
            "Too many requests at once; try again.\n",
        )
        .header("Retry-After", "1");
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = (&*stream).write_all(&response.to_bytes(false));
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reads one request, answers it, and closes the connection.
fn serve(stream: Arc<TcpStream>, peer: SocketAddr, acceptor: &Acceptor, service: &Service) {
    let name = &service.listener;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut connection = match acceptor.accept_until(stream.clone(), Some(deadline)) {
        Ok(connection) => connection,
        Err(error) => {
            service.log_refusal(|| format!("HTTP listener {name}: {peer}: {error}."));
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    };
    let reader = &mut connection.reader;
    let read = {
        let socket = stream.clone();
        server::read_request(reader, deadline, move |left| {
            socket.set_read_timeout(Some(left))
        })
    };
    let (response, head_only, refused) = match read {
        Ok(request) => {
            let response = service.answer(&request, peer);
            (response, request.method == Method::Head, false)
        }
        Err(error) => {
            service.log_refusal(|| format!("HTTP listener {name}: {peer}: {error}."));
            match error.response() {
                Some(response) => (response, false, true),
                None => {
                    connection.closer.close();
                    return;
                }
            }
        }
    };
    let _ = connection.writer.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Err(error) = connection.writer.write_all(&response.to_bytes(head_only)) {
        service.log_refusal(|| {
            format!("HTTP listener {name}: {peer}: writing the response: {error}.")
        });
    }
    connection.writer.close_gracefully();
    // Shut the sending side only, so that the client reads the whole answer
    // rather than a reset, then drop the socket.
    let _ = stream.shutdown(Shutdown::Write);
    if refused {
        linger(&stream);
    }
}

/// Reads and drops what a refused client is still sending (the rest of an
/// oversized head, say), for a moment: closing a socket with unread bytes resets
/// the connection, and the reset can destroy the answer before the client has
/// read it. Bounded in time and bytes.
fn linger(stream: &TcpStream) {
    let deadline = Instant::now() + LINGER_TIME;
    let mut left = LINGER_BYTES;
    let mut sink = [0u8; 4096];
    while left > 0 {
        let time = deadline.saturating_duration_since(Instant::now());
        if time.is_zero() || stream.set_read_timeout(Some(time)).is_err() {
            return;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// What a request is answered with: the broker's figures, behind a password
/// when the listener asks for one.
struct Service {
    listener: String,
    figures: Arc<Figures>,
    passwords: Option<Arc<PasswordFile>>,
    /// Any client can make these lines at will, so they are rate-limited.
    refusals: Mutex<LogLimit>,
}

impl Service {
    /// Logs a refused or failed request, within the rate limit.
    fn log_refusal(&self, line: impl FnOnce() -> String) {
        if self.refusals.lock().allow(Instant::now()) {
            log::info!("{}", line());
        }
    }

    fn answer(&self, request: &Request, peer: SocketAddr) -> Response {
        if request.path == "/healthz" {
            return Response::text(Status::OK, "ok\n");
        }
        if let Some(passwords) = &self.passwords {
            if let Err(why) = check_basic_auth(request, passwords) {
                self.log_refusal(|| {
                    format!(
                        "HTTP listener {}: {peer}: {:?} refused: {why}.",
                        self.listener,
                        shortened(&request.path)
                    )
                });
                return Response::text(
                    Status::UNAUTHORIZED,
                    "A user name and password are needed.\n",
                )
                .header("WWW-Authenticate", REALM);
            }
        }
        match request.path.as_str() {
            "/" | "/index.html" => {
                Response::new(Status::OK, "text/html; charset=utf-8", dashboard::PAGE).header(
                    "Content-Security-Policy",
                    dashboard::CONTENT_SECURITY_POLICY,
                )
            }
            "/api/sys" => Response::new(
                Status::OK,
                "application/json",
                json::sys_tree(&self.figures.stats()),
            ),
            "/api/stats" => Response::new(
                Status::OK,
                "application/json",
                json::stats(&self.figures.metrics()),
            ),
            "/metrics" => Response::new(
                Status::OK,
                metrics::CONTENT_TYPE,
                metrics::render(&self.figures.metrics()),
            ),
            _ => {
                self.log_refusal(|| {
                    format!(
                        "HTTP listener {}: {peer}: no such path {:?}.",
                        self.listener,
                        shortened(&request.path)
                    )
                });
                Response::text(
                    Status::NOT_FOUND,
                    "Not found. Try /, /api/stats, /api/sys, /metrics or /healthz.\n",
                )
            }
        }
    }
}

/// At most 64 characters of a path a client sent, for a log line.
fn shortened(path: &str) -> String {
    path.chars().take(64).collect()
}

/// Checks an `Authorization: Basic` header against the password file; the error
/// says why, for the log (never to the client).
fn check_basic_auth(request: &Request, passwords: &PasswordFile) -> Result<(), &'static str> {
    let header = request
        .header("authorization")
        .ok_or("no Authorization header")?;
    let (scheme, encoded) = header.split_once(' ').ok_or("malformed Authorization")?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("not basic authentication");
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "credentials are not base64")?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or("credentials without a colon")?;
    let user = std::str::from_utf8(&decoded[..colon]).map_err(|_| "user name is not UTF-8")?;
    if passwords.verify(user, &decoded[colon + 1..]) {
        Ok(())
    } else {
        Err("wrong user name or password")
    }
}
