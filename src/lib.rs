//! wren-mqtt: MQTT from plain, blocking Rust.
//!
//! A client library, an embeddable broker and mosquitto-compatible command-line
//! tools, with no async runtime anywhere: every socket is served by ordinary OS
//! threads doing blocking reads and writes, and channels link them together.
//!
//! ```
//! use wren::client::{Client, QoS};
//! # use wren::{Broker, config::BrokerConfig};
//! # let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
//! # let url = format!("mqtt://{}", broker.local_addr());
//!
//! let client = Client::connect(url.as_str())?; // e.g. "mqtt://127.0.0.1:1883"
//! let subscription = client.subscribe("greetings/#", QoS::AtLeastOnce)?;
//! client.publish("greetings/world", "hello", QoS::AtLeastOnce, false)?; // returns after PUBACK
//! let message = subscription.recv()?;
//! assert_eq!(message.topic(), "greetings/world");
//! assert_eq!(message.payload_str()?, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same crate is a broker you can embed:
//!
//! ```
//! use wren::Broker;
//! use wren::config::BrokerConfig;
//!
//! let broker = Broker::start(BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?))?;
//! println!("MQTT on {}", broker.local_addr());
//! broker.shutdown(); // or just drop it
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reading the code to learn MQTT
//!
//! The code is written to be read. A good order:
//!
//! 1. [`protocol`]: what goes over the wire. One file per packet, each opening with
//!    the packet's layout, for MQTT 3.1, 3.1.1 and 5 alike; `properties.rs` and
//!    `reason.rs` for what MQTT 5 adds; `topic.rs` for names, filters and
//!    wildcards; `error.rs` lists every rule a packet can break, with the statement
//!    of the specification it comes from.
//! 2. [`client`]: `state/` is the client's half of the protocol (packet
//!    identifiers, the QoS 1 and QoS 2 handshakes, keep-alive) with no I/O at all;
//!    `worker/` drives it from a thread.
//! 3. [`broker`]: `router/` is the broker's brain, one file per packet family:
//!    `mod.rs` dispatches events, then `connect.rs`, `publish.rs`, `acks.rs`,
//!    `subscribe.rs`, `pacing.rs` (publishers held back by slow subscribers),
//!    `durable.rs` (acknowledgements that wait for the store) and
//!    `housekeeping.rs`; `session.rs`, `subs.rs`, `retain/` and `sys.rs` hold what
//!    it knows; `store/` keeps it across restarts (the storage contract, the redb
//!    file in `file/`, the storage thread). `connection/` is the other side of the inbox: `reader.rs` (the
//!    CONNECT handshake and the checks a client's packets meet before the router
//!    sees them), `clock.rs` (its deadlines), `writer.rs`; `event/` holds what the
//!    two sides send each other.
//! 4. [`transport`]: how TLS and WebSocket connections are shared by two threads.
//! 5. [`bridge`]: a broker's topics carried to another broker and back, with a
//!    persistent inline session on one side and the client on the other; how
//!    nothing accepted is lost and nothing loops.
//! 6. [`auth`]: password hashes as mosquitto and `mkpasswd` write them, and
//!    access control lists, including why a user name must never widen a pattern.
//!
//! # Architecture
//!
//! The crate is in layers; each knows only the ones below it.
//!
//! | layer | module | knows about |
//! | --- | --- | --- |
//! | protocol | [`protocol`] | bytes, packets, topic rules; no sockets, threads, time or configuration |
//! | transport | [`transport`] | TCP, TLS (native-tls), WebSocket (tungstenite); bytes, not packets |
//! | configuration | [`config`] | the settings, and reading them from YAML (the only place that does) |
//! | authentication | [`auth`] | password files and ACLs in mosquitto's and hbmqtt's formats |
//! | broker | [`broker`] | protocol, transport, configuration, authentication, hooks, storage |
//! | client | [`client`] | protocol, transport, configuration |
//! | bridges | [`bridge`] | the broker's inline sessions and the client; neither of them knows it |
//! | tools | `bin/` | the public API of this crate only |
//!
//! ## The broker's threads
//!
//! ```text
//!             listener thread (one per listener: accept, spawn)
//!                     |
//!    socket --> reader thread --decode--> [router inbox] --> ROUTER THREAD
//!    socket <-- writer thread <--encode-- [conn outbox] <--/   (sessions, subscription
//!    socket <---------- router: encode, send without waiting --/   tree, retained, $SYS)
//! ```
//!
//! - A connection is served by threads with small stacks: a reader that blocks on
//!   the socket, decodes and sends events to the router, and, while there is
//!   something to write that may have to wait, a writer that blocks on the
//!   connection's bounded outbox, gathers everything waiting into one buffer and
//!   makes one write. Over plain TCP the router itself writes what a batch left in
//!   the outboxes of connections without a writer thread, with one send that does
//!   not wait, when it has nothing else to do and few connections to write; what
//!   the socket does not take, and everything while the router is busy, goes to a
//!   writer thread. TLS and WebSocket
//!   records cannot be cut short, so there every write is a writer thread's. A
//!   writer thread ends when it has had nothing to do for a while (writer threads
//!   are capped so that the system's mapping limit holds them), so a quiet
//!   connection is one thread. An idle reader gives back the stack pages it went
//!   deep into once (for its CONNECT, say) and waits within two, and a quiet
//!   outbox swaps its channel for a new one that holds no slots: about 14 KiB a
//!   quiet connection. Authentication runs in the reader, so slow password
//!   hashing delays only that client.
//! - One router thread owns all broker state; nothing else touches it, so it needs
//!   no locks. It blocks for one event, then drains whatever else is waiting before
//!   it flushes, which is where throughput comes from.
//! - An HTTP listener (`type: http`) serves a dashboard, JSON and Prometheus
//!   metrics from the counters `$SYS` keeps (atomics, and gauges the router copies
//!   out after each batch): a request never goes through the router. Each request
//!   has a thread for at most a few seconds ([`Broker::metrics`] gives the same
//!   figures to an embedding program).
//! - The router never blocks on a connection: it `try_send`s into outboxes. When an
//!   outbox is full, QoS 0 is dropped and counted, and QoS 1/2 waits in the session,
//!   up to the configured limit.
//! - The router inbox is bounded, and each reader may have only a few hundred
//!   messages in it, so a publisher faster than the router is slowed by TCP
//!   backpressure, not by memory, and cannot crowd out everyone else's packets.
//! - On top of that the broker paces publishers by their subscribers, so that
//!   a subscriber that keeps reading loses nothing to the limits:
//!   - QoS 1/2: it holds back a publisher's PUBACK/PUBCOMP while a subscriber its
//!     message went to is still acknowledging but has half its queue used;
//!   - QoS 0: it pauses a publisher's reader (a *read gate* the reader waits at
//!     between packets) while the publisher's messages crowd a subscriber's outbox,
//!     and lets it go once the subscriber's writer reports the outbox drained.
//!
//!   A subscriber that makes no progress for a second stops pacing anyone: its own
//!   messages are then dropped and counted, and everyone else goes on. Nor does one
//!   that keeps acknowledging but stays behind for longer than a few seconds.
//! - Everything a client can make the router hold is capped and counted (see
//!   [`config::Limits`] and [`broker::Limit`]): subscriptions per client, retained
//!   messages and their bytes, persistent sessions (which may also expire), queued
//!   messages and bytes per session, the bytes waiting in the router's inbox, the
//!   depth of topics. The trees the router walks (`subs.rs`, `retain/`) are walked
//!   with explicit stacks, never by recursion, and a SUBSCRIBE that matches many
//!   retained messages is served a slice at a time between other clients' work.
//!
//! ## Persistence: group commit
//!
//! ```text
//!   ROUTER THREAD --batch of changes--> storage thread --commit--> store file (redb)
//!        ^                                    |
//!        \------------ commit done -----------/   (acknowledgements released)
//! ```
//!
//! With a store (`persistence: {enabled: true, path: ...}`, or
//! [`broker::BrokerBuilder::storage`]) the router writes down each change to what must
//! survive (retained messages, persistent sessions, their QoS 1/2 messages and packet
//! identifiers) while it handles a batch, and hands the batch to the storage thread
//! at its end. It goes on routing while the commit runs; the next batch grows
//! meanwhile and goes when the commit returns. The acknowledgements a batch produced
//! (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, CONNACK), and the packets sent to
//! persistent sessions, wait in their connection until the commit that holds their
//! change returns: nothing is acknowledged before it is durable, and a failed commit
//! withholds them until a retry succeeds. QoS 0 and clean sessions never reach the
//! store. See `broker/store/` and `broker/router/durable.rs`.
//!
//! ## TLS and WebSocket with two threads
//!
//! A TLS session or a WebSocket cannot be split between a reading and a writing
//! thread the way a TCP socket can. wren-mqtt runs the handshake as ordinary blocking
//! I/O, then cuts the TLS and WebSocket state off the socket: the reader blocks on
//! the raw socket holding no lock and, when bytes arrive, locks the state only to
//! decrypt and unframe them; the writer locks it only to frame and encrypt. Neither
//! direction waits for the other, no read timeout or polling is involved, and an
//! idle connection costs no CPU. See [`transport`].
//!
//! ## The client's threads
//!
//! ```text
//!  Client (Clone + Send + Sync) --commands--> connection thread <--> socket
//!  Subscription / Messages   <--deliveries--/       ^-- reader thread
//! ```
//!
//! Calls block until the broker has answered, with a timeout; keep-alive,
//! reconnecting with backoff, resubscribing and resending unacknowledged QoS 1/2
//! messages happen inside the library.
//!
//! ## Invariants
//!
//! 1. The router never blocks on a connection.
//! 2. Network input never panics a thread; a protocol violation closes that
//!    connection only, with a log line saying why.
//! 3. An acknowledged QoS 1/2 message reaches every matching subscriber with a
//!    persistent session (at least once for QoS 1, exactly once for QoS 2), across
//!    disconnects and takeovers, and with a store across a restart or a `kill -9`;
//!    a drop by a configured limit is logged and counted.
//! 4. Memory is bounded by configuration: packet size, queued messages and bytes
//!    per session, inflight window, connections per listener and per address,
//!    subscriptions per client, retained messages, persistent sessions, the router's
//!    inbox in bytes. No input depth reaches a stack.
//! 5. Authentication and ACL checks fail closed: an error or a panic in a check
//!    denies. A session belongs to the user who made it, `$SYS` to the broker, and
//!    a listener on the network refuses anonymous clients unless told otherwise.
//! 6. Idle connections cost no CPU: no loop wakes more often than keep-alive needs.
//! 7. Shutdown is clean: [`Broker`] stops its listeners, disconnects clients,
//!    commits what the store has not yet committed and joins its threads; a [`client::Client`] sends DISCONNECT when dropped.
//! 8. Order is a contract: messages from one client to one topic reach each
//!    subscriber in the order they were sent, at every QoS.
#![warn(missing_docs)]

pub mod auth;
pub mod bridge;
pub mod broker;
pub mod client;
pub mod config;
pub mod protocol;
pub mod transport;

pub use broker::Broker;
