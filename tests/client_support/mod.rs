//! Real peers for the client tests: mosquitto (the shared fixture of
//! [`crate::common::mosquitto`]), wren's own broker with the same interface, and a TCP relay that can cut every
//! connection passing through it.
#![allow(dead_code)] // each test file uses a different part

pub mod scenarios;
#[allow(unused_imports)] // only the tests against wren's broker use it
pub use crate::common::wren_broker::WrenBroker;

#[allow(unused_imports)] // only the tests against mosquitto use it
pub use crate::common::mosquitto::Mosquitto;
pub use crate::common::{certs, wait_until, PATIENCE};

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A password file line for user `frank`, password `secret` (mosquitto 2.0's
/// PBKDF2-SHA512 format).
pub const FRANK_SECRET: &str = "frank:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==";

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
    _dir: tempfile::TempDir,
}

impl WebSocketFront {
    /// `certificates`: serve `wss` with them; `None` serves plain `ws`.
    pub fn to(target: SocketAddr, certificates: Option<&TestCertificates>) -> WebSocketFront {
        use wren::transport::{Acceptor, ServerTls};

        let dir = tempfile::tempdir().expect("cannot create a directory for the certificates");
        let mut acceptor = Acceptor::websocket().path("/mqtt");
        if let Some(certificates) = certificates {
            let tls = ServerTls {
                certfile: dir.path().join("cert.pem"),
                keyfile: dir.path().join("key.pem"),
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
