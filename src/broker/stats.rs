//! Numbers about a running broker, for an embedding program and for `$SYS`.
//!
//! Counters that the connection threads bump (bytes and packets on the wire) are
//! atomics; the values only the router knows (sessions, queues) are copied into a
//! shared snapshot once per batch of router work. Neither is broker state: nothing
//! reads them to make a decision.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// A snapshot of the broker's counters, from [`Broker::stats`](super::Broker::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Time since the broker started.
    pub uptime: Duration,
    /// Clients connected now.
    pub connected_clients: u64,
    /// Persistent sessions whose client is not connected.
    pub disconnected_clients: u64,
    /// Most sessions (connected or not) seen at once.
    pub maximum_clients: u64,
    /// Subscriptions of all sessions.
    pub subscriptions: u64,
    /// Retained messages.
    pub retained_messages: u64,
    /// QoS 1/2 messages waiting in session queues (not yet sent).
    pub queued_messages: u64,
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub inflight_messages: u64,
    /// Payload bytes held by queued and inflight messages, and topic and payload
    /// bytes of retained messages.
    pub stored_bytes: u64,
    /// Control packets received, all kinds.
    pub messages_received: u64,
    /// Control packets sent, all kinds.
    pub messages_sent: u64,
    /// PUBLISH packets received from clients.
    pub publish_received: u64,
    /// PUBLISH packets sent to clients.
    pub publish_sent: u64,
    /// Messages dropped: QoS 0 to a client whose outgoing queue was full, QoS 1/2 to a
    /// session whose queue held `max_queued_messages` already.
    pub publish_dropped: u64,
    /// PUBLISH payload bytes received.
    pub publish_bytes_received: u64,
    /// PUBLISH payload bytes sent.
    pub publish_bytes_sent: u64,
    /// Bytes read from all connections.
    pub bytes_received: u64,
    /// Bytes written to all connections.
    pub bytes_sent: u64,
    /// Network connections accepted since start (MQTT or not).
    pub connections_accepted: u64,
    /// Batches of changes committed to the store since start (0 without one).
    /// Published as `$SYS/broker/store/commits`.
    pub store_commits: u64,
    /// Commits to the store that failed since start; each withheld the
    /// acknowledgements waiting for it until a retry succeeded. Published as
    /// `$SYS/broker/store/failures`.
    pub store_failures: u64,
    /// How many times each limit against hostile or runaway clients refused
    /// something since start, in the order of [`Limit::ALL`]. Published in `$SYS`
    /// as `$SYS/broker/limits/KEY`.
    pub limits_reached: Vec<(Limit, u64)>,
}

/// Everything the broker's HTTP listener shows, as plain values, from
/// [`Broker::metrics`](super::Broker::metrics): the counters of [`Stats`], the
/// version, and each listener with its connections. An embedding program can show
/// them its own way; the dashboard, `/api/stats` and `/metrics` are made from
/// exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// The version of wren-mqtt (`0.1.0`).
    pub version: &'static str,
    /// The broker's counters and gauges.
    pub stats: Stats,
    /// Every listener, MQTT and HTTP, in configuration order.
    pub listeners: Vec<ListenerMetrics>,
    /// Every bridge shown to the broker ([`Broker::show_bridge`](super::Broker::show_bridge)),
    /// in the order they were shown; none without bridges.
    pub bridges: Vec<BridgeMetrics>,
}

/// One bridge in [`Metrics::bridges`], as it reports itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeMetrics {
    /// Its name in the configuration.
    pub name: String,
    /// The broker it bridges to, as its URL says.
    pub remote: String,
    /// Whether it is connected to the remote now.
    pub connected: bool,
    /// Messages the remote has accepted from it.
    pub sent: u64,
    /// Messages it received from the remote and published here.
    pub received: u64,
    /// Messages it could not pass on.
    pub dropped: u64,
    /// Messages waiting here for the remote, as last seen (every few seconds).
    pub queued: u64,
}

impl BridgeMetrics {
    /// A bridge named `name` to `remote`, disconnected, with nothing counted yet.
    pub fn new(name: impl Into<String>, remote: impl Into<String>) -> BridgeMetrics {
        BridgeMetrics {
            name: name.into(),
            remote: remote.into(),
            connected: false,
            sent: 0,
            received: 0,
            dropped: 0,
            queued: 0,
        }
    }
}

/// Something beside the broker that shows in its figures as a bridge
/// ([`Broker::show_bridge`](super::Broker::show_bridge)). Called for every read of
/// the figures (each dashboard update, each scrape), so it reads what it has
/// without waiting.
pub trait BridgeReport: Send + Sync {
    /// The bridge's figures now.
    fn bridge_metrics(&self) -> BridgeMetrics;
}

/// One listener in [`Metrics::listeners`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerMetrics {
    /// Its name in the configuration.
    pub name: String,
    /// What it speaks: `mqtt`, `mqtts`, `ws`, `wss`, `http` or `https`.
    pub protocol: &'static str,
    /// The address it is bound to, with its real port.
    pub address: SocketAddr,
    /// Connections open now (MQTT ones still in their handshake included).
    pub connections: u64,
    /// Its `max-connections`.
    pub max_connections: u64,
}

/// A limit that keeps one client from taking more than its share, named by its
/// configuration key (see [`Limits`](crate::config::Limits)). Each is counted when
/// it refuses something ([`Stats::limits_reached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Limit {
    /// A topic name or filter deeper than `max-topic-levels`.
    TopicLevels,
    /// A filter beyond `max-subscriptions-per-client`.
    SubscriptionsPerClient,
    /// A filter beyond `max-subscription-bytes-per-client`.
    SubscriptionBytesPerClient,
    /// A retained message beyond `max-retained-messages`.
    RetainedMessages,
    /// A retained message beyond `max-retained-bytes`.
    RetainedBytes,
    /// A new persistent session beyond `max-persistent-sessions`.
    PersistentSessions,
    /// A persistent session expired by `persistent-client-expiration`.
    PersistentClientExpiration,
    /// A message dropped by `max-queued-bytes`.
    QueuedBytes,
    /// A reader made to wait by `max-inbox-bytes`.
    InboxBytes,
    /// A client identifier longer than `max-client-id-length`.
    ClientIdLength,
    /// A user name longer than `max-username-length`.
    UsernameLength,
    /// A password longer than `max-password-length`.
    PasswordLength,
    /// A connection beyond `max-connections-per-address`.
    ConnectionsPerAddress,
    /// A connection closed by `connect-timeout` before its CONNECT was complete.
    ConnectTimeout,
    /// A connection closed by `packet-timeout` in the middle of a packet.
    PacketTimeout,
    /// A subscriber that stayed behind too long and stopped pacing its publishers.
    SlowSubscriber,
}

// The router logs each limit once per client with one bit per limit in a `u32`.
const _: () = assert!(Limit::ALL.len() <= 32);

impl Limit {
    /// Every limit, in the order of [`Stats::limits_reached`].
    pub const ALL: [Limit; 16] = [
        Limit::TopicLevels,
        Limit::SubscriptionsPerClient,
        Limit::SubscriptionBytesPerClient,
        Limit::RetainedMessages,
        Limit::RetainedBytes,
        Limit::PersistentSessions,
        Limit::PersistentClientExpiration,
        Limit::QueuedBytes,
        Limit::InboxBytes,
        Limit::ClientIdLength,
        Limit::UsernameLength,
        Limit::PasswordLength,
        Limit::ConnectionsPerAddress,
        Limit::ConnectTimeout,
        Limit::PacketTimeout,
        Limit::SlowSubscriber,
    ];

    /// The configuration key of the limit, which also names its `$SYS` topic.
    ///
    /// ```
    /// use wren::broker::Limit;
    /// assert_eq!(Limit::TopicLevels.key(), "max-topic-levels");
    /// ```
    pub fn key(self) -> &'static str {
        match self {
            Limit::TopicLevels => "max-topic-levels",
            Limit::SubscriptionsPerClient => "max-subscriptions-per-client",
            Limit::SubscriptionBytesPerClient => "max-subscription-bytes-per-client",
            Limit::RetainedMessages => "max-retained-messages",
            Limit::RetainedBytes => "max-retained-bytes",
            Limit::PersistentSessions => "max-persistent-sessions",
            Limit::PersistentClientExpiration => "persistent-client-expiration",
            Limit::QueuedBytes => "max-queued-bytes",
            Limit::InboxBytes => "max-inbox-bytes",
            Limit::ClientIdLength => "max-client-id-length",
            Limit::UsernameLength => "max-username-length",
            Limit::PasswordLength => "max-password-length",
            Limit::ConnectionsPerAddress => "max-connections-per-address",
            Limit::ConnectTimeout => "connect-timeout",
            Limit::PacketTimeout => "packet-timeout",
            Limit::SlowSubscriber => "slow-subscriber",
        }
    }
}

impl Stats {
    /// How many times `limit` refused something since start.
    pub fn limit_reached(&self, limit: Limit) -> u64 {
        self.limits_reached
            .iter()
            .find(|(l, _)| *l == limit)
            .map_or(0, |(_, n)| *n)
    }
}

/// Monotonic counters shared by every thread of a broker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_received: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) publish_received: AtomicU64,
    pub(crate) publish_sent: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) publish_bytes_received: AtomicU64,
    pub(crate) publish_bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) store_commits: AtomicU64,
    pub(crate) store_failures: AtomicU64,
    /// One per [`Limit`], in the order of [`Limit::ALL`].
    limits: [AtomicU64; Limit::ALL.len()],
    /// The router's latest gauges.
    pub(crate) gauges: Mutex<Gauges>,
}

/// Values only the router knows, published after each batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Gauges {
    pub(crate) connected: u64,
    pub(crate) disconnected: u64,
    pub(crate) maximum: u64,
    pub(crate) subscriptions: u64,
    pub(crate) retained: u64,
    pub(crate) queued: u64,
    pub(crate) inflight: u64,
    pub(crate) stored_bytes: u64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    /// Counts one refusal by `limit`.
    pub(crate) fn limit_reached(&self, limit: Limit) {
        bump(&self.limits[limit as usize], 1);
    }

    /// A snapshot, with `uptime` filled in by the caller.
    pub(crate) fn snapshot(&self, uptime: Duration) -> Stats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let gauges = *self.gauges.lock();
        Stats {
            uptime,
            connected_clients: gauges.connected,
            disconnected_clients: gauges.disconnected,
            maximum_clients: gauges.maximum,
            subscriptions: gauges.subscriptions,
            retained_messages: gauges.retained,
            queued_messages: gauges.queued,
            inflight_messages: gauges.inflight,
            stored_bytes: gauges.stored_bytes,
            messages_received: read(&self.messages_received),
            messages_sent: read(&self.messages_sent),
            publish_received: read(&self.publish_received),
            publish_sent: read(&self.publish_sent),
            publish_dropped: read(&self.publish_dropped),
            publish_bytes_received: read(&self.publish_bytes_received),
            publish_bytes_sent: read(&self.publish_bytes_sent),
            bytes_received: read(&self.bytes_received),
            bytes_sent: read(&self.bytes_sent),
            connections_accepted: read(&self.connections_accepted),
            store_commits: read(&self.store_commits),
            store_failures: read(&self.store_failures),
            limits_reached: Limit::ALL
                .iter()
                .map(|&limit| (limit, read(&self.limits[limit as usize])))
                .collect(),
        }
    }
}
