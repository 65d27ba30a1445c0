//! A listening socket and its accept thread.
//!
//! The thread accepts connections and hands each to `connection/`, refusing any
//! beyond the listener's `max_connections`, the system's limit, or
//! `limits.max_connections_per_address` from one address over all listeners. It
//! keeps a clone of every open socket so that shutdown can close them all, including
//! those still in their CONNECT handshake, which the router does not know yet.
//!
//! A blocking `accept` cannot be interrupted, so [`Listener::stop`] sets a flag and
//! then connects to the listener itself to wake it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::connection::{self, ListenerSide, Shared};
use super::error::Error;
use super::event::Closer;
use super::stats::{bump, Limit};
use crate::config::{Limits, ListenerConfig, ListenerKind};
use crate::transport::{Acceptor, ServerTls};

/// How long connections get, at shutdown, to write what the router left them (an
/// MQTT 5 DISCONNECT) before their sockets are closed.
const GOODBYE_GRACE: Duration = Duration::from_secs(1);

/// How long shutdown waits for the connection threads of one listener to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The sockets a listener (MQTT or HTTP) has open, each with its closer: capped
/// at accept, counted for the figures, closed at shutdown.
#[derive(Default)]
pub(crate) struct OpenSockets {
    open: Mutex<HashMap<u64, Closer>>,
    emptied: Condvar,
    /// `open.len()`, readable without the lock, for the figures.
    count: AtomicUsize,
}

/// Why [`OpenSockets::admit`] did not take a socket.
pub(crate) enum Refused {
    /// The listener's `max-connections` are open.
    Full,
    /// The caller's own check said no.
    Check,
}

impl OpenSockets {
    /// Takes `closer`'s socket in as `id`, unless `max` are open or `check`
    /// refuses it; both are decided under the lock, so the cap is exact.
    pub(crate) fn admit(
        &self,
        id: u64,
        closer: Closer,
        max: usize,
        check: impl FnOnce() -> bool,
    ) -> Result<(), Refused> {
        let mut open = self.open.lock();
        if open.len() >= max {
            return Err(Refused::Full);
        }
        if !check() {
            return Err(Refused::Check);
        }
        open.insert(id, closer);
        self.count.store(open.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Takes `id`'s socket out, once its threads have finished.
    pub(crate) fn remove(&self, id: u64) {
        let mut open = self.open.lock();
        open.remove(&id);
        self.count.store(open.len(), Ordering::Relaxed);
        if open.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// How many are open now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits until none is open or `deadline` passes; how many are left.
    fn wait_until_empty(&self, deadline: Instant) -> usize {
        let mut open = self.open.lock();
        while !open.is_empty() && !self.emptied.wait_until(&mut open, deadline).timed_out() {}
        open.len()
    }

    /// Closes every socket still open and waits, at most `timeout`, for their
    /// threads to finish; logs, naming `what`, those that did not.
    pub(crate) fn close_and_drain(&self, timeout: Duration, what: &str) {
        for closer in self.open.lock().values() {
            closer.close();
        }
        let left = self.wait_until_empty(Instant::now() + timeout);
        if left > 0 {
            log::warn!("{left} connection threads of {what} did not finish in time.");
        }
    }
}

/// A bound listener and its accept thread.
pub(crate) struct Listener {
    name: String,
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<OpenSockets>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Listener {
    /// Binds the listener's address and starts accepting.
    pub(crate) fn start(config: &ListenerConfig, shared: Arc<Shared>) -> Result<Listener, Error> {
        let acceptor = Arc::new(acceptor_for(config, &shared.limits)?);
        let (socket, local_addr) = bind(config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(OpenSockets::default());
        let allow_anonymous = shared.auth.allows_anonymous_on(&config.bind);
        if allow_anonymous && !config.bind.ip().is_loopback() {
            log::warn!(
                "Listener {} on {} lets in anonymous clients from the network \
                 (auth: allow-anonymous: true).",
                config.name,
                config.bind
            );
        }
        let side = Arc::new(ListenerSide {
            name: Arc::from(config.name.as_str()),
            allow_anonymous,
        });
        let max_connections = config.max_connections;
        let thread = {
            let stop = stop.clone();
            let open = open.clone();
            thread::Builder::new()
                .name(format!("wren-listen-{}", config.name))
                .spawn(move || {
                    let accept = Accept {
                        side,
                        acceptor,
                        max_connections,
                        open,
                        shared,
                    };
                    accept_loop(socket, &accept, &stop)
                })
                .map_err(|e| Error::Thread("listener".into(), e))?
        };
        log::info!(
            "Opening listener {} on {} (max {} connections).",
            config.name,
            local_addr,
            config.max_connections
        );
        Ok(Listener {
            name: config.name.clone(),
            local_addr,
            stop,
            open,
            thread: Some(thread),
        })
    }

    /// The address the listener is bound to (with the real port when 0 was asked).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This listener's open connections (MQTT handshakes included), for the
    /// broker's figures.
    pub(crate) fn open_sockets(&self) -> Arc<OpenSockets> {
        self.open.clone()
    }

    /// Stops accepting and joins the accept thread.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return;
        };
        wake_and_join(self.local_addr, thread, &format!("listener {}", self.name));
    }

    /// Closes every connection still open on this listener and waits (bounded) for
    /// their threads to finish.
    ///
    /// The router has just said goodbye to MQTT 5 clients with a DISCONNECT
    /// ("server shutting down") that their writers may still be writing: those
    /// connections get [`GOODBYE_GRACE`] to finish on their own first.
    pub(crate) fn close_connections(&self) {
        self.open.wait_until_empty(Instant::now() + GOODBYE_GRACE);
        self.open
            .close_and_drain(DRAIN_TIMEOUT, &format!("listener {}", self.name));
    }
}

/// Where to connect to reach a listener bound to `addr` from this machine.
/// Ends an accept thread that has been told to stop: a blocking accept cannot be
/// interrupted, so it is woken with a connection of our own, then joined. If the
/// listener cannot be reached, the thread is left (and logged, as `what`).
pub(crate) fn wake_and_join(
    local_addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
    what: &str,
) {
    let wake = wake_address(local_addr);
    match TcpStream::connect_timeout(&wake, Duration::from_secs(2)) {
        Ok(_) => {
            let _ = thread.join();
        }
        Err(error) => {
            log::warn!("Cannot wake {what} on {wake} to stop it ({error}); leaving its thread.")
        }
    }
}

pub(crate) fn wake_address(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// What the accept thread hands every new connection.
struct Accept {
    side: Arc<ListenerSide>,
    acceptor: Arc<Acceptor>,
    max_connections: usize,
    open: Arc<OpenSockets>,
    shared: Arc<Shared>,
}

/// The transport of a listener: plain TCP, TLS, WebSocket or secure WebSocket. TLS
/// files are read here, so a bad certificate stops the broker at start, naming the
/// listener, rather than failing every client later.
fn acceptor_for(config: &ListenerConfig, limits: &Limits) -> Result<Acceptor, Error> {
    let acceptor = match &config.kind {
        ListenerKind::Tcp => Acceptor::tcp(),
        ListenerKind::WebSocket { path: None } => Acceptor::websocket(),
        ListenerKind::WebSocket { path: Some(path) } => Acceptor::websocket().path(path.clone()),
        // `Broker::start` hands HTTP listeners to `http/`, never here.
        ListenerKind::Http { .. } => {
            return Err(Error::Config(format!(
                "listener {} is an HTTP listener, not an MQTT one",
                config.name
            )))
        }
    };
    let acceptor = with_listener_tls(acceptor, config)?;
    // No handshake timeout of its own: the handshakes count against the deadline a
    // client has for its CONNECT, which starts at accept (see `serve`).
    Ok(acceptor.max_message_size(limits.max_packet_size))
}

/// Binds `config`'s address; the socket and the address it got (port 0 asks
/// for a free one). For the MQTT and the HTTP listeners alike.
pub(crate) fn bind(config: &ListenerConfig) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Bind {
        listener: config.name.clone(),
        addr: config.bind,
        source,
    };
    let socket = TcpListener::bind(config.bind).map_err(bind_error)?;
    let local_addr = socket.local_addr().map_err(bind_error)?;
    Ok((socket, local_addr))
}

/// `acceptor` with the TLS of `config`, if it has any: the certificate and key
/// are read here, so a bad file stops the broker at start, naming the listener.
/// For the MQTT and the HTTP listeners alike.
pub(crate) fn with_listener_tls(
    acceptor: Acceptor,
    config: &ListenerConfig,
) -> Result<Acceptor, Error> {
    let Some(tls) = &config.tls else {
        return Ok(acceptor);
    };
    if let Some(cafile) = &tls.cafile {
        log::warn!(
            "Listener {}: cafile {} is not used: client certificates are not requested \
             (the TLS library offers no way to ask for them).",
            config.name,
            cafile.display()
        );
    }
    let server = ServerTls {
        certfile: tls.certfile.clone(),
        keyfile: tls.keyfile.clone(),
    };
    let tls = server.acceptor().map_err(|source| Error::Transport {
        listener: config.name.clone(),
        source,
    })?;
    Ok(acceptor.with_tls(tls))
}

fn accept_loop(socket: TcpListener, accept: &Accept, stop: &AtomicBool) {
    let name = &accept.side.name;
    loop {
        let accepted = socket.accept();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (stream, remote_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                log::warn!("Listener {name}: accept failed: {error}.");
                if error.kind() != io::ErrorKind::Interrupted {
                    thread::sleep(ACCEPT_ERROR_PAUSE);
                }
                continue;
            }
        };
        bump(&accept.shared.counters.connections_accepted, 1);
        if let Err(error) = serve(stream, remote_addr, accept) {
            log::error!("Listener {name}: cannot serve {remote_addr}: {error}.");
        }
    }
    log::info!("Listener {name} closed.");
}

fn serve(stream: TcpStream, remote_addr: SocketAddr, accept: &Accept) -> io::Result<()> {
    let Accept {
        side,
        acceptor,
        max_connections,
        open,
        shared,
    } = accept;
    // One deadline from accept to a complete CONNECT, TLS and WebSocket included.
    let connect_deadline = Instant::now().checked_add(shared.limits.connect_timeout);
    let name = &side.name;
    let max_connections = *max_connections;
    let id = shared.next_connection_id();
    let stream = Arc::new(stream);
    let admitted = open.admit(id, Closer::new(&stream), max_connections, || {
        if !shared.admit() {
            log::warn!(
                "Listener {name}: refusing {remote_addr}, the broker holds the {} connections \
                 this system allows (raise vm.max_map_count for more).",
                shared.max_open()
            );
            return false;
        }
        if !shared.admit_address(remote_addr.ip()) {
            shared.release();
            shared.counters.limit_reached(Limit::ConnectionsPerAddress);
            log::warn!(
                "Listener {name}: refusing {remote_addr}, {} connections from {} already open \
                 (max-connections-per-address).",
                shared.limits.max_connections_per_address,
                remote_addr.ip()
            );
            return false;
        }
        true
    });
    if let Err(refused) = admitted {
        if let Refused::Full = refused {
            log::warn!(
                "Listener {name}: refusing {remote_addr}, {max_connections} connections already open."
            );
        }
        let _ = stream.shutdown(Shutdown::Both);
        return Ok(());
    }
    let on_exit = {
        let open = open.clone();
        let shared = shared.clone();
        move || {
            shared.release();
            shared.release_address(remote_addr.ip());
            open.remove(id);
        }
    };
    // If the thread cannot start, `on_exit` runs all the same.
    connection::spawn(
        stream,
        Arc::clone(acceptor),
        remote_addr,
        side.clone(),
        id,
        connect_deadline,
        shared.clone(),
        on_exit,
    )
}
