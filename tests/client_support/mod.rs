//! Real peers for the client tests: a mosquitto broker on a free loopback port,
//! wren's own broker with the same interface, and a TCP relay that can cut every
//! connection passing through it.
#![allow(dead_code)] // each test file uses a different part

pub mod scenarios;
mod wren_broker;
#[allow(unused_imports)] // only the tests against wren's broker use it
pub use wren_broker::{SharedStorage, WrenBroker};

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A password file line for user `frank`, password `secret` (mosquitto 2.0's
/// PBKDF2-SHA512 format).
pub const FRANK_SECRET: &str = "frank:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==";

/// A generous bound for anything a test waits on: reached only when something is
/// broken, never because the machine is slow.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A mosquitto broker on `127.0.0.1` and a free port, killed when dropped.
pub struct Mosquitto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn spawn_mosquitto(config_path: &Path) -> Child {
    Command::new(MOSQUITTO)
        .arg("-c")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // WREN_TEST_BROKER_LOG=1 shows the broker's log when a test needs it.
        .stderr(if std::env::var_os("WREN_TEST_BROKER_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {MOSQUITTO}: {e}"))
}

impl Mosquitto {
    /// A broker that lets anyone in.
    pub fn start() -> Mosquitto {
        Mosquitto::with_config("allow_anonymous true\n", &[])
    }

    /// A broker with `config` after its `listener` line, and `files` (name,
    /// contents) written next to its configuration file; `{dir}` in `config` is
    /// replaced by that directory.
    pub fn with_config(config: &str, files: &[(&str, &str)]) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: install the Debian package 'mosquitto' to run the client tests"
        );
        let dir = unique_dir();
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).expect("cannot write a broker file");
        }
        let port = free_port();
        let config = format!(
            "listener {port} 127.0.0.1\nlog_dest stderr\nlog_type all\n{}",
            config.replace("{dir}", &dir.display().to_string())
        );
        let config_path = dir.join("mosquitto.conf");
        std::fs::write(&config_path, config).expect("cannot write mosquitto.conf");
        let child = spawn_mosquitto(&config_path);
        let broker = Mosquitto { child, port, dir };
        broker.wait_until_listening();
        broker
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + PATIENCE;
        let address = self.address();
        while TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start listening on {address}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker (as a crash would: SIGKILL) and starts it again on the
    /// same port with the same configuration. Without persistence it forgets every
    /// session.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_mosquitto(&self.dir.join("mosquitto.conf"));
        self.wait_until_listening();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wren-client-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("cannot create a temporary directory");
    dir
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("cannot find a free port")
}

/// A TCP relay in front of a broker. [`cut`](Relay::cut) breaks every connection
/// passing through it, as a network failure would, while new connections are still
/// let through.
pub struct Relay {
    port: u16,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    /// One flag per connection: when set, its bytes are dropped instead of passed on.
    silenced: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    pub fn to(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the relay");
        let port = listener.local_addr().expect("relay address").port();
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let silenced: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        thread::spawn({
            let connections = connections.clone();
            let silenced = silenced.clone();
            let accepted = accepted.clone();
            let stop = stop.clone();
            move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(target) else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let mut list = connections.lock().unwrap();
                    for stream in [&client, &server] {
                        if let Ok(clone) = stream.try_clone() {
                            list.push(clone);
                        }
                    }
                    drop(list);
                    let silent = Arc::new(AtomicBool::new(false));
                    silenced.lock().unwrap().push(silent.clone());
                    pump(&client, &server, silent.clone());
                    pump(&server, &client, silent);
                }
            }
        });
        Relay {
            port,
            connections,
            silenced,
            accepted,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// How many connections the relay has accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Makes every connection open through the relay a black hole: it stays open but
    /// nothing passes any more, as when a network path dies without a reset. New
    /// connections work.
    pub fn silence(&self) {
        for flag in self.silenced.lock().unwrap().drain(..) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Breaks every connection open through the relay.
    pub fn cut(&self) {
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies bytes from `from` to `to` on a thread of its own until either side ends.
fn pump(from: &TcpStream, to: &TcpStream, silent: Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) if silent.load(Ordering::SeqCst) => {}
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// Waits until `condition` holds, failing the test with `what` after [`PATIENCE`].
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[path = "../common/certs.rs"]
pub mod certs;

/// A test certificate authority and a server certificate for `localhost` signed by
/// it, as PEM: made afresh for each test, never stored.
pub use certs::Pem as TestCertificates;

pub fn test_certificates() -> TestCertificates {
    certs::pem()
}

/// A WebSocket (optionally TLS) front for a broker that speaks only TCP: it accepts
/// with wren's own transport acceptor and passes the bytes on, as a proxy in front
/// of mosquitto would. (Debian's mosquitto cannot open a WebSocket listener here.)
pub struct WebSocketFront {
    port: u16,
    _dir: PathBuf,
}

impl WebSocketFront {
    /// `certificates`: serve `wss` with them; `None` serves plain `ws`.
    pub fn to(target: SocketAddr, certificates: Option<&TestCertificates>) -> WebSocketFront {
        use wren::transport::{Acceptor, ServerTls};

        let dir = unique_dir();
        let mut acceptor = Acceptor::websocket().path("/mqtt");
        if let Some(certificates) = certificates {
            let tls = ServerTls {
                certfile: dir.join("cert.pem"),
                keyfile: dir.join("key.pem"),
            };
            std::fs::write(&tls.certfile, &certificates.cert).expect("write cert.pem");
            std::fs::write(&tls.keyfile, &certificates.key).expect("write key.pem");
            acceptor = acceptor.with_tls(tls.acceptor().expect("TLS acceptor"));
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the WebSocket front");
        let port = listener.local_addr().expect("front address").port();
        thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(socket) = socket else { continue };
                let Ok(connection) = acceptor.accept(socket) else {
                    continue;
                };
                let Ok(broker) = TcpStream::connect(target) else {
                    continue;
                };
                let wren::transport::Connection {
                    mut reader,
                    mut writer,
                    closer,
                    ..
                } = connection;
                let Ok(mut from_broker) = broker.try_clone() else {
                    continue;
                };
                let mut to_broker = broker;
                thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = reader.read(&mut buffer) {
                        if to_broker.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_broker.shutdown(Shutdown::Both);
                });
                thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_broker.read(&mut buffer) {
                        if writer.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    closer.close();
                });
            }
        });
        WebSocketFront { port, _dir: dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}
