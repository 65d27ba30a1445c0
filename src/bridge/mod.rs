//! Bridges: this broker's topics carried to and from other brokers, as mosquitto's
//! bridges carry them.
//!
//! A bridge is a layer above the broker and the client; neither knows of the
//! other. It uses the broker's [`InlineSession`](crate::broker::InlineSession) on
//! this side and a [`Client`](crate::client::Client) on the remote side:
//!
//! ```text
//!   local publishers -> router -> inline session "local.CLIENT-ID"  --out-->  Client -> remote
//!   local subscribers <- router <- (same session, publishing)       <--in---  Client <- remote
//! ```
//!
//! - **Out.** The inline session is persistent and subscribed to the out filters.
//!   A QoS 1/2 message is acknowledged to the local broker only once the remote
//!   has acknowledged it (PUBACK, PUBCOMP), so while the remote is away messages
//!   wait in the session's queue: bounded by the broker's limits, counted when it
//!   overflows, and kept in the store across restarts when persistence is on.
//!   What was sent and not yet acknowledged is sent again after a reconnect (by the
//!   client) or a restart (by the broker, to the session).
//! - **In.** The client subscribes on the remote (with a persistent session unless
//!   `clean-session` is set) and the messages are published here as the inline
//!   session's own.
//! - **No loops.** The inline session's subscriptions have No Local, so what the
//!   bridge publishes here does not go back out. On the remote, an MQTT 5
//!   subscription has No Local; over 3.1.1 the bridge announces itself as
//!   mosquitto's `try_private` does, and brokers that know it (mosquitto,
//!   wren-broker) do not send it back what it published.
//! - **State.** With `notifications` on, the state is published retained on both
//!   brokers, "1" when connected and "0" when not (a will says "0" on the remote),
//!   at `$SYS/broker/connection/CLIENT-ID/state` as in mosquitto. Here,
//!   `$SYS/broker/bridges/NAME/` also gives `connected`, `sent`, `received`,
//!   `dropped` and `queued` (what waits in the local session for the remote).
//!   Messages its queue cannot hold are dropped, logged and counted by the broker
//!   as for any client (`$SYS/broker/publish/messages/dropped`).
//!
//! ```no_run
//! use wren::bridge::Bridges;
//! use wren::config::BrokerConfig;
//! use wren::Broker;
//!
//! let config = BrokerConfig::from_yaml_file("broker.yaml")?;
//! let broker = Broker::start(config.clone())?;
//! let bridges = Bridges::start(&broker, &config.bridges)?;
//! // ...
//! bridges.shutdown();
//! broker.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `topics.rs` maps names between the brokers; `run.rs` holds the threads of one
//! bridge; `state.rs` publishes its state.

mod run;
mod state;
mod topics;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::broker::{BridgeMetrics, BridgeReport, Broker};
use crate::config::BridgeConfig;

/// Why a bridge could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bridge's settings cannot be used (its URL, say).
    #[error("bridge {name}: {source}")]
    Options {
        /// The bridge.
        name: String,
        /// What the client said of them.
        source: crate::client::Error,
    },
    /// The broker refused the bridge's local session.
    #[error("bridge {name}: {source}")]
    Broker {
        /// The bridge.
        name: String,
        /// What the broker said.
        source: crate::broker::Error,
    },
    /// A thread could not be started.
    #[error("bridge {name}: cannot start a thread: {source}")]
    Thread {
        /// The bridge.
        name: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// What a bridge has done so far, for `$SYS`, the broker's figures
/// ([`Broker::metrics`](crate::Broker::metrics), the dashboard) and the embedding
/// program.
#[derive(Debug)]
pub struct BridgeStatus {
    name: String,
    /// The remote's URL, without credentials.
    remote: String,
    connected: AtomicBool,
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    /// What waited in the local session when the bridge last looked.
    queued: AtomicU64,
}

impl BridgeStatus {
    fn new(name: &str, url: &str) -> BridgeStatus {
        BridgeStatus {
            name: name.to_string(),
            remote: without_credentials(url),
            connected: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        }
    }

    /// Whether the bridge is connected to the remote now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Messages the remote has accepted (acknowledged, for QoS 1/2).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Messages received from the remote and published here.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Messages the bridge could not pass on: QoS 0 ones while the remote was away
    /// (QoS 1/2 ones wait instead), and ones either broker refused. What overflows
    /// the local session's queue is counted by the broker, in
    /// [`Stats::publish_dropped`](crate::broker::Stats::publish_dropped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting in the bridge's local session for the remote (queued, or
    /// sent and not yet acknowledged), as last seen: the bridge looks every few
    /// seconds.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl BridgeReport for BridgeStatus {
    fn bridge_metrics(&self) -> BridgeMetrics {
        let mut metrics = BridgeMetrics::new(self.name.clone(), self.remote.clone());
        metrics.connected = self.connected();
        metrics.sent = self.sent();
        metrics.received = self.received();
        metrics.dropped = self.dropped();
        metrics.queued = self.queued();
        metrics
    }
}

/// `url` with any user name and password taken out, to be shown.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// One running bridge.
#[derive(Debug)]
pub struct Bridge {
    name: String,
    status: Arc<BridgeStatus>,
    /// Dropped to stop the bridge's threads.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts one bridge of `broker`. Returns at once: the bridge connects to the
    /// remote in the background, and keeps trying with backoff while it cannot.
    /// Messages for the remote wait in the bridge's local session meanwhile.
    pub fn start(broker: &Broker, config: &BridgeConfig) -> Result<Bridge, Error> {
        run::start(broker, config)
    }

    /// The bridge's name, its key under `bridges:`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the bridge has done so far.
    pub fn status(&self) -> &BridgeStatus {
        &self.status
    }

    /// Stops the bridge: it disconnects from the remote and leaves its local
    /// session, whose unacknowledged messages wait for the next start.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every bridge of a broker's configuration.
#[derive(Debug, Default)]
pub struct Bridges {
    bridges: Vec<Bridge>,
}

impl Bridges {
    /// Starts a bridge for each of `configs` (the `bridges:` of a
    /// [`BrokerConfig`](crate::config::BrokerConfig)). A bridge whose remote is
    /// down is started all the same and connects when it can.
    pub fn start(broker: &Broker, configs: &[BridgeConfig]) -> Result<Bridges, Error> {
        let mut bridges = Vec::with_capacity(configs.len());
        for config in configs {
            // On an error, those already started stop as `bridges` is dropped.
            bridges.push(Bridge::start(broker, config)?);
        }
        Ok(Bridges { bridges })
    }

    /// The bridges, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Bridge> {
        self.bridges.iter()
    }

    /// The bridge named `name`.
    pub fn get(&self, name: &str) -> Option<&Bridge> {
        self.bridges.iter().find(|bridge| bridge.name == name)
    }

    /// Stops every bridge.
    pub fn shutdown(self) {
        for bridge in self.bridges {
            bridge.shutdown();
        }
    }
}
