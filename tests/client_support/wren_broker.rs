//! wren's own broker as a peer for the client tests, run in this process with the
//! same interface as the [`Mosquitto`](super::Mosquitto) fixture.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use wren::broker::{
    hooks_from_config, Broker, Hook, MemoryStorage, Storage, StorageError, StoredSession,
};
use wren::config::BrokerConfig;
use wren::protocol::Publish;

use crate::common::PATIENCE;

/// A store that outlives the brokers using it, as a store on disk outlives the
/// process: the in-memory store behind a shared handle.
#[derive(Clone, Default)]
pub struct SharedStorage(Arc<Mutex<MemoryStorage>>);

impl SharedStorage {
    fn lock(&self) -> MutexGuard<'_, MemoryStorage> {
        // A panic elsewhere while holding the lock leaves the maps whole: every
        // MemoryStorage method is a single map operation.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Storage for SharedStorage {
    fn save_retained(&mut self, message: &Publish) -> Result<(), StorageError> {
        self.lock().save_retained(message)
    }
    fn remove_retained(&mut self, topic: &str) -> Result<(), StorageError> {
        self.lock().remove_retained(topic)
    }
    fn load_retained(&mut self) -> Result<Vec<Publish>, StorageError> {
        self.lock().load_retained()
    }
    fn save_session(&mut self, session: &StoredSession) -> Result<(), StorageError> {
        self.lock().save_session(session)
    }
    fn remove_session(&mut self, client_id: &str) -> Result<(), StorageError> {
        self.lock().remove_session(client_id)
    }
    fn load_sessions(&mut self) -> Result<Vec<StoredSession>, StorageError> {
        self.lock().load_sessions()
    }
}

/// A wren broker on `127.0.0.1` and a free port, in this process, shut down when
/// dropped. Retained messages and persistent sessions live in a store that survives
/// [`restart`](WrenBroker::restart).
pub struct WrenBroker {
    broker: Option<Broker>,
    config: BrokerConfig,
    hooks: Vec<Arc<dyn Hook>>,
    storage: SharedStorage,
    address: SocketAddr,
    /// Files of its configuration (the password file).
    _dir: tempfile::TempDir,
}

impl WrenBroker {
    /// A broker that lets anyone in.
    pub fn start() -> WrenBroker {
        WrenBroker::with_config(|_| {})
    }

    /// A broker that lets in only `user` with `password`, checked against a
    /// password file written with wren's own password file API and loaded by the
    /// hooks `wren-broker` would make from the same configuration.
    pub fn with_password(user: &str, password: &str) -> WrenBroker {
        let dir = tempfile::tempdir().expect("cannot create a directory for the passwords");
        let path = dir.path().join("passwords");
        let mut passwords = wren::auth::PasswordFile::new();
        passwords
            .set_password(user, password.as_bytes())
            .expect("a valid user name");
        passwords
            .save(&path)
            .expect("cannot write the password file");
        WrenBroker::launched(dir, |config| {
            config.auth.allow_anonymous = Some(false);
            config.auth.password_file = Some(path);
        })
    }

    /// A broker whose configuration `configure` adjusts; its hooks are made from
    /// the result as the `wren-broker` program makes them.
    pub fn with_config(configure: impl FnOnce(&mut BrokerConfig)) -> WrenBroker {
        WrenBroker::launched(
            tempfile::tempdir().expect("cannot create a directory"),
            configure,
        )
    }

    fn launched(dir: tempfile::TempDir, configure: impl FnOnce(&mut BrokerConfig)) -> WrenBroker {
        let address = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = BrokerConfig::with_tcp_listener(address);
        configure(&mut config);
        let hooks = hooks_from_config(&config).expect("hooks from the configuration");
        let mut fixture = WrenBroker {
            broker: None,
            config,
            hooks,
            storage: SharedStorage::default(),
            address,
            _dir: dir,
        };
        fixture.launch();
        fixture
    }

    /// Starts a broker on `self.address` (port 0 the first time).
    fn launch(&mut self) {
        self.config.listeners[0].bind = self.address;
        // The port was just released by the previous broker of this fixture; binding
        // it again succeeds at once on Linux (std sets SO_REUSEADDR), but retry within
        // a deadline rather than depend on that.
        let deadline = Instant::now() + PATIENCE;
        let broker = loop {
            let mut builder =
                Broker::builder(self.config.clone()).storage(Box::new(self.storage.clone()));
            for hook in &self.hooks {
                builder = builder.hook(hook.clone());
            }
            match builder.start() {
                Ok(broker) => break broker,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "wren's broker cannot start on {}: {error}",
                        self.address
                    );
                    thread::sleep(Duration::from_millis(20));
                }
            }
        };
        self.address = broker.local_addr();
        self.broker = Some(broker);
    }

    /// Shuts the broker down (it saves persistent sessions and retained messages to
    /// the store) and starts a new one on the same port and the same store.
    pub fn restart(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown();
        }
        self.launch();
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
}

impl Drop for WrenBroker {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown();
        }
    }
}
