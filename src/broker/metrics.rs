//! Where [`Broker::metrics`](super::Broker::metrics) and the HTTP listener read
//! their figures: the counters `$SYS` already keeps, and each listener's count of
//! open connections.
//!
//! Reading costs the router nothing: the counters are atomics, the router's gauges
//! are the copy it leaves after each batch of work (see `stats.rs`), and the
//! connection counts belong to the listeners. No request goes through the router.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use super::listener::OpenSockets;
use super::stats::{BridgeReport, Counters, ListenerMetrics, Metrics, Stats};

/// One listener as the figures show it.
#[derive(Clone)]
pub(crate) struct ListenerEntry {
    pub(crate) name: String,
    pub(crate) protocol: &'static str,
    pub(crate) address: SocketAddr,
    pub(crate) max_connections: usize,
    pub(crate) open: Arc<OpenSockets>,
}

/// Everything needed to make a [`Metrics`] snapshot, shared by the broker and its
/// HTTP listeners.
pub(crate) struct Figures {
    counters: Arc<Counters>,
    started: Instant,
    listeners: Vec<ListenerEntry>,
    /// The bridges shown, as long as they live.
    bridges: Mutex<Vec<Weak<dyn BridgeReport>>>,
}

impl Figures {
    pub(crate) fn new(
        counters: Arc<Counters>,
        started: Instant,
        listeners: Vec<ListenerEntry>,
    ) -> Figures {
        Figures {
            counters,
            started,
            listeners,
            bridges: Mutex::new(Vec::new()),
        }
    }

    /// Shows `bridge` in the figures until it is dropped.
    pub(crate) fn show_bridge(&self, bridge: &Arc<dyn BridgeReport>) {
        let mut bridges = self.bridges.lock();
        bridges.retain(|b| b.strong_count() > 0);
        bridges.push(Arc::downgrade(bridge));
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.started.elapsed())
    }

    /// The whole snapshot now.
    pub(crate) fn metrics(&self) -> Metrics {
        Metrics {
            version: env!("CARGO_PKG_VERSION"),
            stats: self.stats(),
            listeners: self
                .listeners
                .iter()
                .map(|l| ListenerMetrics {
                    name: l.name.clone(),
                    protocol: l.protocol,
                    address: l.address,
                    connections: l.open.count() as u64,
                    max_connections: l.max_connections as u64,
                })
                .collect(),
            bridges: self
                .bridges
                .lock()
                .iter()
                .filter_map(Weak::upgrade)
                .map(|bridge| bridge.bridge_metrics())
                .collect(),
        }
    }
}
