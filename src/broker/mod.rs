//! An MQTT 3.1 / 3.1.1 / 5 broker to embed in a program, or to run as `wren-broker`.
//!
//! ```
//! use wren::broker::Broker;
//! use wren::config::BrokerConfig;
//!
//! // Port 0 picks a free port; `local_addr` says which.
//! let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
//! println!("MQTT broker listening on {}", broker.local_addr());
//! broker.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Threads
//!
//! ```text
//!            listener thread (one per listener: accept, spawn)
//!                    |
//!   socket --> reader thread --Event--> [router inbox] --> router thread
//!   socket <-- writer thread <--packet-- [outbox] <-------/  (sessions, subscriptions,
//!                                                              retained, $SYS)
//! ```
//!
//! - `listener.rs`: one thread per listener accepts sockets and enforces
//!   `max_connections`.
//! - `connection/`: each connection has a reader thread (CONNECT handshake,
//!   authentication, keep-alive, decoding) and, while it has something to write, a
//!   writer thread (batched writes) from a capped pool.
//! - `event/`: what connections and the router send each other: the router's inbox
//!   of events, each connection's outbox, and the gate that paces a reader.
//! - `router/`: one thread owns every session, the subscription tree (`subs.rs`),
//!   the retained messages (`retain/`) and `$SYS` (`sys.rs`). It never waits on a
//!   connection: outboxes are bounded and written with `try_send`. `router/mod.rs`
//!   dispatches each event to the file of its packet: `connect.rs`, `publish.rs`,
//!   `acks.rs`, `subscribe.rs`; `pacing.rs` holds publishers back for slow
//!   subscribers, `durable.rs` holds acknowledgements back until the store has
//!   committed what they acknowledge, `housekeeping.rs` records, expires and
//!   publishes `$SYS`.
//! - `hashing.rs`: how the router's maps hash connection numbers and client
//!   identifiers, each looked up several times for every message: SipHash once per
//!   identifier (clients choose them), one multiplication per lookup.
//! - `session.rs`: the QoS 1/2 state of one client, as plain data.
//! - `http/`: the HTTP listener (`type: http`): a small HTTP/1.1 server with
//!   bounded requests, the dashboard page, `/api/*` JSON and `/metrics` for
//!   Prometheus. `metrics.rs` gathers what it shows ([`Broker::metrics`]) from the
//!   counters in `stats.rs` and each listener's count of open connections.
//!
//! # MQTT 5
//!
//! Every version goes through the same threads and the same router; what MQTT 5
//! adds lives where its state does. The reader resolves the client's topic aliases
//! and runs enhanced authentication (it owns the connection's order of packets);
//! the writer encodes each packet for the client's version and puts the broker's
//! own topic aliases on it (it owns the wire order); the router keeps session
//! expiry, delayed wills, receive quotas, subscription options and identifiers,
//! shared groups and message expiry, and answers with reason codes. A message is
//! routed once, whatever its version: a 3.1.1 subscriber's copy simply loses its
//! properties when it is encoded.
//! - `hooks.rs`: authentication, authorization and observers for embedding programs.
//! - `auth.rs`: hooks that apply a password file and an ACL from [`crate::auth`].
//! - `store/`: where retained messages, persistent sessions and their messages are
//!   kept across restarts (the storage contract, the redb file store, the memory
//!   store, the storage thread).
//! - `panics.rs`: a panic of the router or the storage thread ends the process.
//!
//! # Limits
//!
//! Memory is bounded by [`Limits`](crate::config::Limits): the largest packet, the
//! inflight window and queue of each session, and the connections of each listener.
//! A message dropped because of a limit is logged and counted in
//! [`Stats::publish_dropped`].

mod auth;
mod connection;
mod error;
mod event;
mod hashing;
mod hooks;
mod http;
mod inline;
mod inline_session;
mod listener;
mod log_limit;
mod metrics;
mod panics;
mod retain;
mod router;
mod session;
mod stats;
mod store;
mod subs;
mod sys;

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

pub use auth::{hooks_from_config, AclHook, PasswordFileHook};
pub use error::Error;
pub use hooks::{
    AuthDecision, AuthExchange, AuthStep, ClientInfo, ConnectInfo, DisconnectReason, Hook,
    HookError,
};
pub use inline::{IntoIter, Iter, Subscription};
pub use inline_session::{InlineSession, Publisher};
pub use stats::{BridgeMetrics, BridgeReport, Limit, ListenerMetrics, Metrics, Stats};
pub use store::{
    Change, FileStorage, MemoryStorage, SessionRecord, Storage, StorageError, StoredMessage,
    StoredOwner, StoredSession, StoredState, StoredSubscription,
};

use connection::Shared;
use event::{Event, Inbox, InboxBudget};
use hooks::Hooks;
use listener::Listener;
use metrics::{Figures, ListenerEntry};
use router::RouterState;
use stats::Counters;

use crate::config::{BrokerConfig, ListenerKind, PersistenceConfig};
use crate::protocol::{Publish, QoS, SubscribeFilter, TopicFilter, TopicName};

/// Events the router's inbox holds before connection threads wait to add more. A
/// publisher faster than the router is slowed by TCP backpressure, not by memory.
///
/// Each reader may have [`READER_QUEUE_LIMIT`](event::READER_QUEUE_LIMIT) messages
/// in the inbox; this leaves room for 128 readers at their limit. Readers that find
/// the inbox full spin and yield inside the channel before they sleep, which a
/// hundred flooding publishers turned into half the broker's CPU time with room
/// for only 16.
const ROUTER_INBOX_CAPACITY: usize = 32 * 1024;

/// A running broker. Dropping it shuts it down, as [`Broker::shutdown`] does.
///
/// ```
/// use wren::broker::Broker;
/// use wren::config::BrokerConfig;
///
/// let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
/// let addr = broker.local_addr();
/// // Clients can now connect to `addr`.
/// assert_eq!(broker.stats().connected_clients, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Broker {
    listeners: Vec<Listener>,
    router: Option<thread::JoinHandle<()>>,
    inbox: Inbox,
    /// Hands out connection ids, for inline subscriptions too.
    shared: Arc<Shared>,
    hooks: Hooks,
    /// The dashboard and metrics listeners (`type: http`).
    http: Vec<http::HttpListener>,
    /// Every listener's address, in configuration order.
    addrs: Vec<SocketAddr>,
    figures: Arc<Figures>,
}

/// Configures a broker with hooks and a store before starting it.
///
/// ```
/// use std::sync::Arc;
/// use wren::broker::{Broker, ClientInfo, Hook, MemoryStorage};
/// use wren::config::BrokerConfig;
/// use wren::protocol::TopicFilter;
///
/// /// Nobody may subscribe to everything at once.
/// struct NoHash;
/// impl Hook for NoHash {
///     fn authorize_subscribe(&self, _: &ClientInfo, filter: &TopicFilter) -> bool {
///         filter.as_str() != "#"
///     }
/// }
///
/// let broker = Broker::builder(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))
///     .hook(Arc::new(NoHash))
///     .storage(Box::new(MemoryStorage::new()))
///     .start()?;
/// # drop(broker);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BrokerBuilder {
    config: BrokerConfig,
    hooks: Vec<Arc<dyn Hook>>,
    storage: Option<Box<dyn Storage>>,
}

impl BrokerBuilder {
    /// Adds a hook; hooks are asked in the order they are added.
    pub fn hook(mut self, hook: Arc<dyn Hook>) -> BrokerBuilder {
        self.hooks.push(hook);
        self
    }

    /// Keeps retained messages, persistent sessions and their QoS 1/2 messages in
    /// `storage`, whatever the configuration's `persistence` section says. What it
    /// holds is loaded at start. Without this, the broker opens a [`FileStorage`]
    /// when `persistence.enabled` is on, and keeps everything in memory only
    /// otherwise.
    pub fn storage(mut self, storage: Box<dyn Storage>) -> BrokerBuilder {
        self.storage = Some(storage);
        self
    }

    /// Binds every listener and starts the broker's threads. Returns once clients
    /// can connect.
    pub fn start(self) -> Result<Broker, Error> {
        let BrokerBuilder {
            config,
            hooks: hook_list,
            storage,
        } = self;
        if config.listeners.is_empty() {
            return Err(Error::NoListeners);
        }
        if config
            .listeners
            .iter()
            .all(|l| matches!(l.kind, ListenerKind::Http { .. }))
        {
            return Err(Error::Config(
                "every listener is of type http: add an MQTT listener (type tcp or ws)".into(),
            ));
        }
        check_supported(&config, !hook_list.is_empty())?;
        let storage = match storage {
            Some(storage) => Some(storage),
            None => open_store(&config.persistence)?,
        };
        let hooks = Hooks::default();
        for hook in hook_list {
            hooks.add(hook);
        }
        let counters = Arc::new(Counters::default());
        let mut state = RouterState::new(
            config.limits.clone(),
            &config.sys,
            hooks.clone(),
            counters.clone(),
            storage,
        )?;

        let (sender, inbox_rx) = crossbeam_channel::bounded(ROUTER_INBOX_CAPACITY);
        let budget = Arc::new(InboxBudget::new(
            config.limits.max_inbox_bytes,
            counters.clone(),
        ));
        let inbox = Inbox::new(sender, budget.clone());
        let shared = Arc::new(Shared::new(
            inbox.clone(),
            hooks.clone(),
            config.limits.clone(),
            config.auth.clone(),
            counters.clone(),
        ));
        state.write_through(shared.pending_writes.clone());

        // Bind everything before any thread runs, so a failure leaves nothing behind.
        // HTTP listeners are bound first and started last, once the figures they
        // show (every listener's included) are gathered.
        let mut http_bound = Vec::new();
        for listener in &config.listeners {
            if let ListenerKind::Http { .. } = listener.kind {
                http_bound.push(http::Bound::bind(listener)?);
            }
        }
        let passwords = http_passwords(&config, &http_bound)?;
        let mut listeners = Vec::with_capacity(config.listeners.len());
        let mut entries = Vec::with_capacity(config.listeners.len());
        let mut http_entries = http_bound.iter();
        for listener in &config.listeners {
            if let ListenerKind::Http { .. } = listener.kind {
                if let Some(bound) = http_entries.next() {
                    entries.push(ListenerEntry {
                        name: listener.name.clone(),
                        protocol: bound.protocol(),
                        address: bound.local_addr(),
                        max_connections: listener.max_connections,
                        open: bound.open_sockets(),
                    });
                }
                continue;
            }
            match Listener::start(listener, shared.clone()) {
                Ok(started) => {
                    entries.push(ListenerEntry {
                        name: listener.name.clone(),
                        protocol: mqtt_protocol(listener),
                        address: started.local_addr(),
                        max_connections: listener.max_connections,
                        open: started.open_sockets(),
                    });
                    listeners.push(started);
                }
                Err(error) => {
                    for mut started in listeners {
                        started.stop();
                    }
                    return Err(error);
                }
            }
        }
        let started_at = Instant::now();
        let figures = Arc::new(Figures::new(counters.clone(), started_at, entries));
        let router = thread::Builder::new()
            .name("wren-router".into())
            .spawn(move || {
                let routed =
                    panic::catch_unwind(AssertUnwindSafe(|| router::run(state, inbox_rx, &budget)));
                // Senders still waiting for room would wait for a router that is gone.
                budget.close();
                if let Err(panic) = routed {
                    panics::stop_process("router", panics::message(&*panic));
                }
            });
        let router = match router {
            Ok(router) => router,
            Err(error) => {
                for mut started in listeners {
                    started.stop();
                }
                return Err(Error::Thread("router".into(), error));
            }
        };
        let configured: usize = config
            .listeners
            .iter()
            .map(|l| l.max_connections)
            .fold(0, usize::saturating_add);
        if config.sys.amqtt_compat {
            log::warn!(
                "sys-amqtt-compat is set, but only mosquitto's $SYS topics are published; ignored."
            );
        }
        if shared.max_open() < configured {
            log::info!(
                "This system can serve about {} connections at once (vm.max_map_count); more are refused.",
                shared.max_open()
            );
        }
        let addrs = figures
            .metrics()
            .listeners
            .iter()
            .map(|l| l.address)
            .collect();
        let mut broker = Broker {
            listeners,
            router: Some(router),
            inbox,
            shared,
            hooks,
            http: Vec::with_capacity(http_bound.len()),
            addrs,
            figures: figures.clone(),
        };
        for bound in http_bound {
            let passwords = bound.basic_auth().then(|| passwords.clone()).flatten();
            // On an error, dropping `broker` stops what has started.
            broker.http.push(bound.start(figures.clone(), passwords)?);
        }
        Ok(broker)
    }
}

/// Refuses settings the broker would otherwise ignore. Each would make it do less
/// than the configuration says: let in users a password file should keep out, skip
/// ACL checks, or lose sessions that should persist.
fn check_supported(config: &BrokerConfig, has_hooks: bool) -> Result<(), Error> {
    if !has_hooks {
        if config.auth.password_file.is_some() {
            return Err(Error::Config(
                "auth.password-file is set but no authentication hook is registered to check it"
                    .into(),
            ));
        }
        if config.topic_check.enabled || config.topic_check.acl_file.is_some() {
            return Err(Error::Config(
                "topic-check is enabled but no authorization hook is registered to apply it".into(),
            ));
        }
    }
    Ok(())
}

/// The password file HTTP listeners with `basic-auth` check users against, read
/// once, if any of them needs it.
fn http_passwords(
    config: &BrokerConfig,
    bound: &[http::Bound],
) -> Result<Option<Arc<crate::auth::PasswordFile>>, Error> {
    if !bound.iter().any(http::Bound::basic_auth) {
        return Ok(None);
    }
    let Some(path) = &config.auth.password_file else {
        return Err(Error::Config(
            "an HTTP listener has basic-auth on but auth.password-file is not set".into(),
        ));
    };
    let passwords = crate::auth::PasswordFile::load(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the password file for HTTP basic authentication: {e}"
        ))
    })?;
    Ok(Some(Arc::new(passwords)))
}

/// How an MQTT listener's protocol is named in the figures.
fn mqtt_protocol(listener: &crate::config::ListenerConfig) -> &'static str {
    match (&listener.kind, listener.tls.is_some()) {
        (ListenerKind::WebSocket { .. }, false) => "ws",
        (ListenerKind::WebSocket { .. }, true) => "wss",
        (_, false) => "mqtt",
        (_, true) => "mqtts",
    }
}

/// Opens the store `persistence` asks for, if any.
fn open_store(persistence: &PersistenceConfig) -> Result<Option<Box<dyn Storage>>, Error> {
    if !persistence.enabled {
        return Ok(None);
    }
    let Some(path) = &persistence.path else {
        return Err(Error::Config(
            "persistence.enabled is on but persistence.path is not set: say where the \
             store file goes"
                .into(),
        ));
    };
    let store = FileStorage::open(path)?;
    log::info!(
        "Keeping sessions and retained messages in {}.",
        path.display()
    );
    Ok(Some(Box::new(store)))
}

impl Broker {
    /// Starts a broker with no hooks and in-memory storage. See [`Broker::builder`]
    /// for more.
    ///
    /// Every listener is bound before this returns, so clients can connect at once:
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::TcpStream;
    /// use wren::broker::Broker;
    /// use wren::config::BrokerConfig;
    /// use wren::protocol::{Connect, Packet};
    ///
    /// let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
    ///
    /// let mut socket = TcpStream::connect(broker.local_addr())?;
    /// let mut connect = Vec::new();
    /// Packet::from(Connect::new("doc-client")).encode(&mut connect)?;
    /// socket.write_all(&connect)?;
    /// let mut connack = [0u8; 4];
    /// socket.read_exact(&mut connack)?;
    /// assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]); // accepted, no session present
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(config: BrokerConfig) -> Result<Broker, Error> {
        Broker::builder(config).start()
    }

    /// A builder, to add hooks or a store before starting.
    pub fn builder(config: BrokerConfig) -> BrokerBuilder {
        BrokerBuilder {
            config,
            hooks: Vec::new(),
            storage: None,
        }
    }

    /// The address of the first MQTT listener, with its real port.
    pub fn local_addr(&self) -> SocketAddr {
        // `start` refuses a configuration without MQTT listeners.
        self.listeners[0].local_addr()
    }

    /// The addresses of all listeners, HTTP ones included, in configuration order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// The addresses of the HTTP listeners (`type: http`), in configuration order.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http
            .iter()
            .map(http::HttpListener::local_addr)
            .collect()
    }

    /// Adds a hook to a running broker. It applies to connections and packets from
    /// now on.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wren::broker::{Broker, ClientInfo, Hook};
    /// use wren::config::BrokerConfig;
    ///
    /// struct LogConnections;
    /// impl Hook for LogConnections {
    ///     fn on_connected(&self, client: &ClientInfo) {
    ///         println!("{} connected from {}", client.client_id, client.remote_addr);
    ///     }
    /// }
    ///
    /// let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
    /// broker.add_hook(Arc::new(LogConnections));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_hook(&self, hook: Arc<dyn Hook>) {
        self.hooks.add(hook);
    }

    /// Publishes a message from the embedding program, routed exactly as a client's
    /// would be (retained if `retain`, delivered at `qos` or the subscriber's granted
    /// QoS, whichever is lower). No authorization hook is asked: the program that
    /// embeds the broker is trusted. Blocks only while the router's inbox is full.
    /// It returns once the message is handed to the router, not once it is durable:
    /// with a store, it is committed with the router's next batch, and a crash before
    /// that loses it, as it would a client's message not yet acknowledged.
    ///
    /// ```
    /// use wren::Broker;
    /// use wren::config::BrokerConfig;
    /// use wren::protocol::QoS;
    ///
    /// let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
    /// broker.publish("status/broker", "up", QoS::AtLeastOnce, true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<bytes::Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        let topic = TopicName::new(topic).map_err(|error| Error::Topic {
            topic: topic.to_string(),
            error,
        })?;
        self.inbox
            .send(Event::InlinePublish(Publish::new(
                topic, payload, qos, retain,
            )))
            .map_err(|_| Error::Inline("the broker is shutting down".into()))
    }

    /// Subscribes the embedding program to `filter`, without a network client: the
    /// returned [`Subscription`] iterates the matching messages (retained ones
    /// first) and unsubscribes when dropped. Messages come with at most `qos`, and
    /// QoS 1 and 2 are acknowledged as they are taken, so a subscription that is not
    /// read holds at most the session limits, like any slow client.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<Subscription, Error> {
        let filter = TopicFilter::new(filter).map_err(|error| Error::Topic {
            topic: filter.to_string(),
            error,
        })?;
        Subscription::start(
            self.shared.next_connection_id(),
            self.inbox.clone(),
            filter,
            qos,
            self.shared.limits.max_inflight_messages,
        )
    }

    /// Opens a session of the embedding program under `client_id`, subscribed to
    /// `filters` (with their options: No Local, Retain As Published...): see
    /// [`InlineSession`]. With `persistent`, the session outlives the returned
    /// value, as a client's with clean session 0 does, and its QoS 1/2 messages
    /// wait for the next session with this identifier (in the store, with
    /// persistence on). A session already open under `client_id` is taken over.
    /// No authorization hook is asked.
    pub fn inline_session(
        &self,
        client_id: &str,
        persistent: bool,
        filters: Vec<SubscribeFilter>,
    ) -> Result<InlineSession, Error> {
        InlineSession::start(
            self.shared.next_connection_id(),
            self.inbox.clone(),
            client_id,
            persistent,
            filters,
            self.shared.limits.max_inflight_messages,
        )
    }

    /// A handle that publishes as [`publish`](Self::publish) does, for other
    /// threads.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.inbox.clone())
    }

    /// A snapshot of the broker's counters.
    pub fn stats(&self) -> Stats {
        self.figures.stats()
    }

    /// Everything the HTTP dashboard and `/metrics` show, as typed values: the
    /// [`Stats`], the version, and each listener with its open connections. Made
    /// from counters the broker keeps anyway, so it is cheap to call as often as
    /// a display needs; the router is not asked.
    ///
    /// ```
    /// use wren::broker::Broker;
    /// use wren::config::BrokerConfig;
    ///
    /// let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
    /// let metrics = broker.metrics();
    /// assert_eq!(metrics.version, env!("CARGO_PKG_VERSION"));
    /// assert_eq!(metrics.stats.connected_clients, 0);
    /// let listener = &metrics.listeners[0];
    /// assert_eq!((listener.name.as_str(), listener.protocol), ("default", "mqtt"));
    /// assert_eq!(listener.address, broker.local_addr());
    /// println!("{} connections on {}", listener.connections, listener.address);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.figures.metrics()
    }

    /// Shows a bridge in [`metrics`](Self::metrics), on the dashboard and in the
    /// Prometheus figures, for as long as `bridge` lives (the broker keeps only a
    /// weak reference). [`Bridges::start`](crate::bridge::Bridges::start) shows
    /// each bridge it starts.
    pub fn show_bridge(&self, bridge: &Arc<dyn BridgeReport>) {
        self.figures.show_bridge(bridge);
    }

    /// Stops the broker: closes the listeners, disconnects every client (wills are
    /// not published: the clients did nothing wrong), commits to the store what it
    /// has not committed yet (if there is one), and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(router) = self.router.take() else {
            return;
        };
        log::info!("Broker shutting down.");
        for listener in &mut self.http {
            listener.stop();
        }
        for listener in &mut self.listeners {
            listener.stop();
        }
        // The router disconnects the clients it knows, saves, and returns.
        if self.inbox.send(Event::Shutdown).is_ok() {
            let _ = router.join();
        }
        // Then any connection still in its CONNECT handshake.
        for listener in &self.listeners {
            listener.close_connections();
        }
        log::info!("Broker stopped.");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("local_addrs", &self.local_addrs())
            .field("running", &self.router.is_some())
            .finish()
    }
}
