//! wren's own broker as a test peer: embedded in the test process ([`WrenBroker`],
//! one fixture for the client, tool and broker tests), or the `wren-broker` program
//! ([`WrenBrokerProgram`]).
//!
//! mosquitto tells a test what happened through its log; this broker tells it
//! through a [`Hook`] that records subscriptions, deliveries and disconnections, so
//! a test waits for those events rather than for time to pass.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use wren::broker::{hooks_from_config, Broker, ClientInfo, DisconnectReason, Hook, MemoryStorage};
use wren::config::{BrokerConfig, ListenerConfig, TlsConfig};
use wren::protocol::{Publish, QoS, TopicFilter};

use super::process::{Lines, Stream};

/// What the broker saw, per client id.
#[derive(Default)]
struct Seen {
    subscribed: HashMap<String, usize>,
    delivered: HashMap<String, usize>,
    gone: HashMap<String, usize>,
}

/// Records the events a test waits for.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Seen>,
}

impl Recorder {
    fn count(&self, kind: impl Fn(&Seen) -> &HashMap<String, usize>, id: &str) -> usize {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        kind(&seen).get(id).copied().unwrap_or(0)
    }

    fn add(&self, kind: impl Fn(&mut Seen) -> &mut HashMap<String, usize>, id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        *kind(&mut seen).entry(id.to_owned()).or_default() += 1;
    }
}

impl Hook for Recorder {
    fn on_subscribed(&self, client: &ClientInfo, _: &TopicFilter, _: QoS) {
        self.add(|seen| &mut seen.subscribed, &client.client_id);
    }

    fn on_delivered(&self, client: &ClientInfo, _: &Publish) {
        self.add(|seen| &mut seen.delivered, &client.client_id);
    }

    fn on_disconnected(&self, client: &ClientInfo, _: &DisconnectReason) {
        self.add(|seen| &mut seen.gone, &client.client_id);
    }
}

/// A wren broker on `127.0.0.1` and a free port, in this process, shut down when
/// dropped, with the same interface as the [`Mosquitto`](super::mosquitto::Mosquitto)
/// fixture. It has no `$SYS` tree unless a test turns it on: its messages would blur
/// byte-exact tests and the counts tests wait on. Retained messages and persistent
/// sessions live in a store that survives [`restart`](WrenBroker::restart).
///
/// It dereferences to the running [`Broker`], to look at its counters or publish
/// from the test.
pub struct WrenBroker {
    broker: Option<Broker>,
    config: BrokerConfig,
    hooks: Vec<Arc<dyn Hook>>,
    /// Outlives the brokers this fixture starts, as a store on disk outlives the
    /// process: clones of a memory store share it.
    storage: MemoryStorage,
    recorder: Arc<Recorder>,
    address: SocketAddr,
    /// Files of its configuration (the password file).
    _dir: tempfile::TempDir,
}

impl WrenBroker {
    /// A broker that lets anyone in.
    pub fn start() -> WrenBroker {
        WrenBroker::with_config(|_| {})
    }

    /// A broker whose configuration `configure` adjusts; its hooks are made from
    /// the result as the `wren-broker` program makes them.
    pub fn with_config(configure: impl FnOnce(&mut BrokerConfig)) -> WrenBroker {
        WrenBroker::launched(scratch(), configure, Vec::new())
    }

    /// A broker that lets anyone in, with `hooks` besides its own.
    pub fn with_hooks(hooks: Vec<Arc<dyn Hook>>) -> WrenBroker {
        WrenBroker::launched(scratch(), |_| {}, hooks)
    }

    /// A broker whose only listener is TLS, with the given PEM files.
    pub fn with_tls(cert: &Path, key: &Path) -> WrenBroker {
        WrenBroker::with_config(|config| {
            let mut listener = ListenerConfig::tcp("tls", config.listeners[0].bind);
            listener.tls = Some(TlsConfig::new(cert, key));
            config.listeners = vec![listener];
        })
    }

    /// A broker that lets in only `user` with `password`, checked against a
    /// password file written with wren's own password file API and loaded by the
    /// hooks `wren-broker` would make from the same configuration.
    pub fn with_password(user: &str, password: &str) -> WrenBroker {
        let dir = scratch();
        let path = dir.path().join("passwords");
        let mut passwords = wren::auth::PasswordFile::new();
        passwords
            .set_password(user, password.as_bytes())
            .expect("a valid user name");
        passwords
            .save(&path)
            .expect("cannot write the password file");
        WrenBroker::launched(
            dir,
            |config| {
                config.auth.allow_anonymous = Some(false);
                config.auth.password_file = Some(path);
            },
            Vec::new(),
        )
    }

    fn launched(
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut BrokerConfig),
        extra_hooks: Vec<Arc<dyn Hook>>,
    ) -> WrenBroker {
        let _ = env_logger::builder().is_test(true).try_init();
        let mut config = BrokerConfig::with_tcp_listener(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.sys.interval = std::time::Duration::ZERO;
        configure(&mut config);
        let recorder = Arc::new(Recorder::default());
        let mut hooks = hooks_from_config(&config).expect("hooks from the configuration");
        hooks.push(recorder.clone());
        hooks.extend(extra_hooks);
        let address = config.listeners[0].bind;
        let mut fixture = WrenBroker {
            broker: None,
            config,
            hooks,
            storage: MemoryStorage::new(),
            recorder,
            address,
            _dir: dir,
        };
        let broker = fixture
            .try_launch()
            .unwrap_or_else(|error| panic!("wren's broker did not start: {error}"));
        fixture.running(broker);
        fixture
    }

    /// Starts a broker with its first listener on `self.address` (as configured the
    /// first time, the port it got after that).
    fn try_launch(&self) -> Result<Broker, wren::broker::Error> {
        let mut config = self.config.clone();
        config.listeners[0].bind = self.address;
        let mut builder = Broker::builder(config).storage(Box::new(self.storage.clone()));
        for hook in &self.hooks {
            builder = builder.hook(hook.clone());
        }
        builder.start()
    }

    fn running(&mut self, broker: Broker) {
        self.address = broker.local_addr();
        self.config.listeners[0].bind = self.address;
        self.broker = Some(broker);
    }

    /// Shuts the broker down (it saves persistent sessions and retained messages to
    /// the store) and starts a new one on the same port and the same store.
    pub fn restart(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown();
        }
        // The port was just released by the previous broker; binding it again
        // succeeds at once on Linux (std sets SO_REUSEADDR), but retry within a
        // deadline rather than depend on that.
        let mut started = None;
        super::wait_until(
            &format!("wren's broker starts again on {}", self.address),
            || {
                started = self.try_launch().ok();
                started.is_some()
            },
        );
        self.running(started.expect("started"));
    }

    /// Shuts the broker down now and waits until it has (see [`Broker::shutdown`]).
    pub fn shutdown(mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown();
        }
    }

    /// The running broker, to look at its counters or publish from the test.
    pub fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("the broker is running")
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port())
    }

    /// How many subscriptions client `id` has made so far.
    pub fn subscribed(&self, id: &str) -> usize {
        self.recorder.count(|seen| &seen.subscribed, id)
    }

    /// How many messages the broker has handed to client `id`'s connection.
    pub fn delivered(&self, id: &str) -> usize {
        self.recorder.count(|seen| &seen.delivered, id)
    }

    /// How many of client `id`'s connections have ended.
    pub fn gone(&self, id: &str) -> usize {
        self.recorder.count(|seen| &seen.gone, id)
    }

    /// Waits until `condition` holds, failing the test after a deadline.
    pub fn wait_until(&self, what: &str, condition: impl Fn(&WrenBroker) -> bool) {
        super::wait_until(&format!("wren's broker sees {what}"), || condition(self));
    }

    /// Waits until every QoS 1 and 2 message has finished its handshake: a
    /// subscriber prints a QoS 2 message only once it has the PUBREL.
    pub fn wait_until_settled(&self) {
        self.wait_until("every message acknowledged", |b| {
            let stats = b.stats();
            stats.inflight_messages == 0 && stats.queued_messages == 0
        });
    }
}

impl std::ops::Deref for WrenBroker {
    type Target = Broker;

    fn deref(&self) -> &Broker {
        self.broker()
    }
}

impl Drop for WrenBroker {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown();
        }
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("cannot create a directory for the broker's files")
}

/// The `wren-broker` program, when this build has it (the `tools` feature): the
/// tests of the library alone (`--no-default-features`) compile without it.
const WREN_BROKER_PROGRAM: Option<&str> = option_env!("CARGO_BIN_EXE_wren-broker");

/// The `wren-broker` program with a YAML configuration, killed when dropped.
pub struct WrenBrokerProgram {
    lines: Lines,
    port: u16,
    _dir: tempfile::TempDir,
}

impl WrenBrokerProgram {
    /// Starts `wren-broker -c` with `yaml`, in which `{port}` stands for a free
    /// port, logging at info level; returns once it logs "Opening listener". The
    /// port is found by binding port 0 and handing the number over; another process
    /// may take it in between, so a failed start is retried with another.
    pub fn with_yaml(yaml: &str) -> WrenBrokerProgram {
        let dir = scratch();
        let mut last_log = Vec::new();
        for attempt in 0..5 {
            let port = super::free_port();
            let config = dir.path().join(format!("broker-{attempt}.yaml"));
            std::fs::write(&config, yaml.replace("{port}", &port.to_string()))
                .expect("cannot write the broker's configuration");
            let lines = Lines::spawn(
                Command::new(WREN_BROKER_PROGRAM.expect(
                    "the wren-broker program is built only with the `tools` feature \
                     (the default); run this test without --no-default-features",
                ))
                .arg("-c")
                .arg(&config)
                .env("RUST_LOG", "info"),
                Stream::Stderr,
                "it is built with the tests",
            );
            match lines.until(|line| line.contains("Opening listener")) {
                Ok(_) => {
                    return WrenBrokerProgram {
                        lines,
                        port,
                        _dir: dir,
                    }
                }
                Err(log) => last_log = log,
            }
        }
        panic!("wren-broker did not start: {last_log:?}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What it logs, line by line.
    pub fn lines(&self) -> &Lines {
        &self.lines
    }
}
