//! One client connection: a reader thread, and a writer thread while there is
//! something to write, around one socket.
//!
//! ```text
//! socket --> reader thread --Event--> router
//! socket <-- writer thread <--Outgoing-- router   (started by the outbox on demand)
//! socket <------------------------------ router   (plain TCP, when the send need not wait)
//! ```
//!
//! The **reader** does the CONNECT handshake itself (it must arrive first), checks the
//! client identifier, runs the authentication hooks (slow password hashing then delays
//! only this client), and only then tells the router. From there it decodes packets
//! with the configured maximum packet size and sends each to the router. Between
//! packets it passes its [`ReadGate`](super::event::ReadGate), where the router can
//! make it wait (see the router's documentation on pacing).
//!
//! The reader waits for bytes against three deadlines (see
//! [`ReadClock`](clock::ReadClock)): `limits.connect_timeout` from accept to a
//! complete CONNECT, TLS and WebSocket handshakes included; `limits.packet_timeout`
//! for the rest of a packet once it has begun; and one and a half keep-alives plus
//! `limits.timeout_disconnect_delay` without a byte [MQTT-3.1.2-24]. They are
//! deadlines, not read timeouts, so a client trickling one byte at a time runs out
//! of time like a silent one. An idle client costs a parked thread and no CPU.
//!
//! The **writer** blocks on its bounded outbox, drains whatever else is already
//! waiting into one buffer, and writes it with one system call. When the router has
//! asked to hear of it, the writer reports that its outbox drained. Its thread ends
//! after a while without work and the outbox starts a new one for the next packet,
//! so a quiet connection is one thread; writer threads are capped (see
//! `writer.rs`) so that the machine's mapping limit always holds them. Over plain
//! TCP the router writes to a connection without a writer thread itself, with a
//! send that does not wait, and starts the thread only for what the socket did not
//! take (see `event/flush.rs`).
//!
//! A panic in either thread (a bug: network input never panics) stays inside its
//! connection: it is logged, the socket is closed, the router hears that the
//! connection is lost, and the listener gets the connection's place back. The broker
//! serves everyone else.
//!
//! # Who checks what
//!
//! What a client *sends* is checked here, on its reader thread, so that a slow hook
//! (password hashing, a lookup elsewhere) delays only that client. What needs the
//! broker's state, and what a client *receives*, is checked by the router.
//!
//! - The reader checks the CONNECT (field lengths, client identifier, will topic
//!   depth), authenticates the client
//!   ([`Hook::authenticate`](crate::broker::Hook::authenticate), then the
//!   listener's `allow-anonymous`), and asks
//!   [`Hook::authorize_publish`](crate::broker::Hook::authorize_publish) about the
//!   will topic. After CONNECT it enforces `max-topic-levels` on every PUBLISH,
//!   SUBSCRIBE and UNSUBSCRIBE, and asks the hooks about each PUBLISH topic and each
//!   SUBSCRIBE filter
//!   ([`Hook::authorize_subscribe`](crate::broker::Hook::authorize_subscribe)). It
//!   drops nothing a hook refuses: the verdict travels in the event's `authorized`.
//! - The router acts on those verdicts (a refused PUBLISH is acknowledged and
//!   dropped [MQTT-3.3.5-2], a refused filter gets SUBACK 0x80), keeps `$SYS` for
//!   the broker (wills included), gives a stored session only to the user who made
//!   it, and checks read access
//!   ([`Hook::authorize_receive`](crate::broker::Hook::authorize_receive)) at every
//!   delivery: as a message is routed, as it leaves a session's queue, and when a
//!   resumed session would send it again.
//! - The embedding program's own messages (`Broker::publish`, inline subscriptions)
//!   are trusted: no hook is asked about them.
//!
//! A new check of what a client sends belongs in the reader; a check against
//! sessions, subscriptions or retained messages belongs in the router.
//!
//! All socket code of the broker lives in this folder and in `listener.rs`, so other
//! transports (TLS, WebSocket) need changes only there.
//!
//! - `mod.rs`: [`spawn`], the panic guard, and what connections share ([`Shared`],
//!   [`ListenerSide`]).
//! - `reader.rs`: the reader thread: handshakes, CONNECT checks, authentication, and
//!   the read loop that turns each packet into an [`Event`](super::event::Event).
//! - `clock.rs`: the reader's deadlines.
//! - `stack.rs`: how an idle reader gives back the stack pages it no longer uses.
//! - `checks.rs`: rules applied to a CONNECT and to topic depth, as plain functions.
//! - `writer.rs`: the writer, its thread started on demand, and the pool that caps
//!   writer threads.

mod checks;
mod clock;
mod reader;
mod stack;
mod writer;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use parking_lot::Mutex;

use super::event::{ConnectionId, Inbox, PendingWrites};
use super::hooks::Hooks;
use super::panics;
use super::stats::Counters;
use crate::config::{AuthConfig, Limits};
use crate::transport::Acceptor;

/// Stack size of a reader thread: decoding, logging and authentication hooks.
const READER_STACK_SIZE: usize = 128 * 1024;

/// Memory mappings a thread costs the process: a stack with a guard page and a
/// signal stack with a guard page (as counted in `/proc/PID/maps`).
const MAPPINGS_PER_THREAD: usize = 4;
/// Memory mappings one connection costs beyond its writer: its reader thread, plus
/// one for a large packet buffer, which the allocator maps on its own.
const MAPPINGS_PER_CONNECTION: usize = MAPPINGS_PER_THREAD + 1;
/// Mappings left for everything else: code, heap arenas, the router, the listeners
/// (about 70 at start).
const RESERVED_MAPPINGS: usize = 1000;
/// How many connections the mapping budget is shared out for when it cannot give
/// every connection a writer: the listeners' default `max-connections`.
const TARGET_CONNECTIONS: usize = crate::config::Limits::DEFAULT_MAX_CONNECTIONS;

/// What every connection of a broker shares.
pub(crate) struct Shared {
    /// The router's inbox, bounded in events and in bytes.
    pub(crate) router: Inbox,
    pub(crate) hooks: Hooks,
    pub(crate) limits: Limits,
    pub(crate) auth: AuthConfig,
    pub(crate) counters: Arc<Counters>,
    /// The cap on writer threads running at once.
    pub(crate) writers: Arc<writer::WriterPool>,
    /// The connections the router writes to itself at the end of its batch.
    pub(crate) pending_writes: Arc<PendingWrites>,
    next_id: AtomicU64,
    /// Connections open on all listeners, and the most this system can hold.
    open: AtomicUsize,
    max_open: usize,
    /// Connections open from each address, over all listeners, while
    /// `limits.max_connections_per_address` is set. Touched once at accept and
    /// once at the end of a connection, never for a packet.
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// How many connections this system can serve at once (`usize::MAX` when it does
/// not say), and how many writer threads may run at once.
///
/// On Linux a process may hold `vm.max_map_count` memory mappings (65,530 by
/// default), and each thread takes four. Past that limit a new thread cannot set
/// up its stacks and the whole process aborts, so the listeners refuse
/// connections before it is reached. Every connection has its reader thread, and
/// a writer thread while it has something to write:
///
/// - where the budget holds both for every connection, every connection may have
///   its writer at once, and no connection ever waits for one;
/// - where it does not (the default limit), it holds a reader for each of
///   [`TARGET_CONNECTIONS`] connections and gives the rest to writers, never less
///   than an eighth: 10,000 connections and 3,632 writers with the default limit.
///   A connection whose writer cannot start waits in line (see `writer.rs`).
pub(crate) fn system_connection_limit() -> (usize, usize) {
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok());
    match maps {
        None => (usize::MAX, usize::MAX),
        Some(maps) => share_mappings(maps.saturating_sub(RESERVED_MAPPINGS)),
    }
}

/// Shares a budget of memory mappings between readers and writers (see
/// [`system_connection_limit`]): (connections, writers).
fn share_mappings(budget: usize) -> (usize, usize) {
    let both = MAPPINGS_PER_CONNECTION + MAPPINGS_PER_THREAD;
    if budget >= TARGET_CONNECTIONS * both {
        let connections = budget / both;
        return (connections, connections);
    }
    let left_for_writers = budget.saturating_sub(TARGET_CONNECTIONS * MAPPINGS_PER_CONNECTION);
    let writers = (left_for_writers / MAPPINGS_PER_THREAD)
        .max(budget / 8 / MAPPINGS_PER_THREAD)
        .max(1);
    let connections =
        budget.saturating_sub(writers * MAPPINGS_PER_THREAD) / MAPPINGS_PER_CONNECTION;
    (connections, writers)
}

impl Shared {
    pub(crate) fn new(
        router: Inbox,
        hooks: Hooks,
        limits: Limits,
        auth: AuthConfig,
        counters: Arc<Counters>,
    ) -> Shared {
        let (max_open, max_writers) = system_connection_limit();
        Shared {
            router,
            hooks,
            limits,
            auth,
            counters,
            writers: Arc::new(writer::WriterPool::new(max_writers)),
            pending_writes: Arc::default(),
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            max_open,
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
    /// The listener's name, for logs and
    /// [`ClientInfo::listener`](super::hooks::ClientInfo::listener).
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
                let opened = reader::open(
                    stream,
                    &acceptor,
                    remote_addr,
                    listener,
                    id,
                    connect_deadline,
                    shared,
                );
                if let Some(mut reader) = opened {
                    reader.serve();
                }
            }));
            if let Err(panic) = served {
                log::error!(
                    "The reader thread of connection {id} from {remote_addr} panicked ({}); \
                     that connection is closed, the broker goes on.",
                    panics::message(&*panic)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::event::{Event, InboxBudget};
    use std::io::Read;
    use std::time::Duration;

    /// What connections share, with the receiving end of its router inbox.
    pub(super) fn shared_with_inbox(
        limits: Limits,
    ) -> (Shared, crossbeam_channel::Receiver<Event>) {
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

    pub(super) fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (server, client)
    }

    #[test]
    fn the_mapping_budget_holds_every_reader_and_every_writer_that_may_run() {
        for maps in [65_530, 262_144, 20_000, 1_000_000] {
            let budget = maps - RESERVED_MAPPINGS;
            let (connections, writers) = share_mappings(budget);
            assert!(
                connections * MAPPINGS_PER_CONNECTION + writers * MAPPINGS_PER_THREAD <= budget,
                "{maps}: {connections} connections and {writers} writers overrun the budget"
            );
            assert!(writers >= budget / 8 / MAPPINGS_PER_THREAD || writers == connections);
        }
        // A stock Linux: the default max-connections, and what is left for writers.
        assert_eq!(share_mappings(65_530 - RESERVED_MAPPINGS), (10_000, 3_632));
        // With a raised limit every connection may write at once.
        let (connections, writers) = share_mappings(262_144 - RESERVED_MAPPINGS);
        assert_eq!(connections, writers);
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
        assert_eq!(panics::message(&*panic), "a bug in a connection thread");
        assert!(freed.load(Ordering::SeqCst));
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    }
}
