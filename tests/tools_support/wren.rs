//! wren's own broker, embedded in the test, for running the tools against it.
//!
//! mosquitto tells a test what happened through its log; wren's broker tells it
//! through a [`Hook`] that records subscriptions, deliveries and disconnections, so
//! a test waits for those events rather than for time to pass.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wren::broker::{ClientInfo, DisconnectReason, Hook};
use wren::config::{BrokerConfig, ListenerConfig, TlsConfig};
use wren::protocol::{Publish, QoS, TopicFilter};
use wren::Broker;

/// How long a test waits for one broker event.
const EVENT_LIMIT: Duration = Duration::from_secs(15);

/// What the broker saw, per client id.
#[derive(Default)]
struct Seen {
    subscribed: HashMap<String, usize>,
    delivered: HashMap<String, usize>,
    gone: HashMap<String, usize>,
}

/// Records the events a test waits for.
#[derive(Default)]
pub struct Recorder {
    seen: Mutex<Seen>,
}

impl Hook for Recorder {
    fn on_subscribed(&self, client: &ClientInfo, _: &TopicFilter, _: QoS) {
        *self
            .seen
            .lock()
            .subscribed
            .entry(client.client_id.clone())
            .or_default() += 1;
    }

    fn on_delivered(&self, client: &ClientInfo, _: &Publish) {
        *self
            .seen
            .lock()
            .delivered
            .entry(client.client_id.clone())
            .or_default() += 1;
    }

    fn on_disconnected(&self, client: &ClientInfo, _: &DisconnectReason) {
        *self
            .seen
            .lock()
            .gone
            .entry(client.client_id.clone())
            .or_default() += 1;
    }
}

/// A wren broker on a free loopback port, stopped when dropped.
pub struct WrenBroker {
    /// The embedded broker.
    pub broker: Broker,
    /// The port of its first listener.
    pub port: u16,
    recorder: Arc<Recorder>,
}

impl WrenBroker {
    /// A broker with one plain TCP listener and the given extra hooks.
    pub fn start(hooks: Vec<Arc<dyn Hook>>) -> WrenBroker {
        let bind: SocketAddr = "127.0.0.1:0".parse().expect("a socket address");
        WrenBroker::start_with(BrokerConfig::with_tcp_listener(bind), hooks)
    }

    /// A broker whose only listener is TLS, with the given PEM files.
    pub fn start_tls(cert: &Path, key: &Path) -> WrenBroker {
        let bind: SocketAddr = "127.0.0.1:0".parse().expect("a socket address");
        let mut config = BrokerConfig::with_tcp_listener(bind);
        let mut listener = ListenerConfig::tcp("tls", bind);
        listener.tls = Some(TlsConfig::new(cert, key));
        config.listeners = vec![listener];
        WrenBroker::start_with(config, Vec::new())
    }

    fn start_with(mut config: BrokerConfig, hooks: Vec<Arc<dyn Hook>>) -> WrenBroker {
        // No `$SYS` tree: its retained messages would blur the count tests wait on.
        config.sys.interval = Duration::ZERO;
        let recorder = Arc::new(Recorder::default());
        let mut builder = Broker::builder(config).hook(recorder.clone());
        for hook in hooks {
            builder = builder.hook(hook);
        }
        let broker = builder
            .start()
            .unwrap_or_else(|e| panic!("wren's broker did not start: {e}"));
        let port = broker.local_addr().port();
        WrenBroker {
            broker,
            port,
            recorder,
        }
    }

    /// How many subscriptions client `id` has made so far.
    pub fn subscribed(&self, id: &str) -> usize {
        count(&self.recorder.seen.lock().subscribed, id)
    }

    /// How many messages the broker has handed to client `id`'s connection.
    pub fn delivered(&self, id: &str) -> usize {
        count(&self.recorder.seen.lock().delivered, id)
    }

    /// How many of client `id`'s connections have ended.
    pub fn gone(&self, id: &str) -> usize {
        count(&self.recorder.seen.lock().gone, id)
    }

    /// Waits until `condition` holds, failing the test after a deadline.
    pub fn wait_until(&self, what: &str, condition: impl Fn(&WrenBroker) -> bool) {
        let deadline = Instant::now() + EVENT_LIMIT;
        while !condition(self) {
            assert!(Instant::now() < deadline, "wren's broker never saw {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until every QoS 1 and 2 message has finished its handshake: a
    /// subscriber prints a QoS 2 message only once it has the PUBREL.
    pub fn wait_until_settled(&self) {
        self.wait_until("every message acknowledged", |b| {
            let stats = b.broker.stats();
            stats.inflight_messages == 0 && stats.queued_messages == 0
        });
    }
}

fn count(map: &HashMap<String, usize>, id: &str) -> usize {
    map.get(id).copied().unwrap_or(0)
}

/// Certificates made at test time, written as PEM files into `dir`. Returns the
/// paths of the CA, the certificate and its key.
pub fn make_certificates(
    dir: &Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    crate::common::certs::write(&crate::common::certs::pem(), dir)
}
