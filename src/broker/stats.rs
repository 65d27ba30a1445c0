//! Numbers about a running broker, for an embedding program and for `$SYS`.
//!
//! Counters that the connection threads bump (bytes and packets on the wire) are
//! atomics; the values only the router knows (sessions, queues) are copied into a
//! shared snapshot once per batch of router work. Neither is broker state: nothing
//! reads them to make a decision.

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
    /// Payload bytes held by queued, inflight and retained messages.
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
        }
    }
}
