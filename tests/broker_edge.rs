//! Hostile and unlucky clients at the edge of the broker: handshakes and packets
//! trickled a byte at a time, too many connections from one address, lengths and
//! depths beyond the limits, floods of large packets, and panics. Raw sockets, with
//! every wait bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs;
use common::raw::{
    connect_packet, publish_packet, subscribe_packet, unsubscribe_packet, will, Raw,
};
use common::{start_broker_with, wait_until, TIMEOUT};
use wren::broker::{
    AuthDecision, Change, ConnectInfo, Hook, HookError, Limit, Storage, StorageError, StoredState,
};
use wren::config::{BrokerConfig, ListenerConfig, ListenerKind, TlsConfig};
use wren::protocol::{Connect, QoS};

/// The CONNECT deadline and packet time the tests below give their clients.
const SHORT: Duration = Duration::from_secs(1);

/// A socket to `addr` whose reads wait at most `wait`.
fn socket(addr: SocketAddr, wait: Duration) -> TcpStream {
    let socket = TcpStream::connect(addr).expect("connect to the test broker");
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.set_write_timeout(Some(TIMEOUT)).unwrap();
    socket.set_nodelay(true).unwrap();
    socket
}

/// Whether the broker has closed `socket`: waits for its next bytes for the read
/// timeout, reading away whatever it sends meanwhile (pongs, alerts).
fn closed_by_broker(socket: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Sends `chunks` one at a time, `every` apart, until the broker closes the
/// connection, which must happen within [`TIMEOUT`] (a bound for a hang, not a
/// measure of speed). Panics if the chunks run out first.
fn trickle_until_closed(socket: &mut TcpStream, chunks: impl IntoIterator<Item = Vec<u8>>) {
    let started = Instant::now();
    for chunk in chunks {
        assert!(
            started.elapsed() < TIMEOUT,
            "still open after {TIMEOUT:?} of trickling"
        );
        if socket.write_all(&chunk).is_err() || closed_by_broker(socket) {
            return;
        }
    }
    panic!("the broker kept the connection open for everything that was trickled");
}

/// One byte at a time, forever.
fn bytes_of(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    bytes.iter().map(|&byte| vec![byte])
}

/// A broker whose only listener is `listener`, with short CONNECT and packet times.
fn start_with_listener(listener: ListenerConfig) -> common::WrenBroker {
    start_broker_with(|config: &mut BrokerConfig| {
        config.listeners = vec![listener];
        config.limits.connect_timeout = SHORT;
        config.limits.packet_timeout = SHORT;
    })
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The start of a TLS 1.2 ClientHello: a handshake record of 512 bytes, of which
/// only the first few ever come.
const CLIENT_HELLO_START: [u8; 16] = [
    0x16, 0x03, 0x01, 0x02, 0x00, // record: handshake, TLS 1.0 framing, 512 bytes
    0x01, 0x00, 0x01, 0xFC, // ClientHello, 508 bytes
    0x03, 0x03, // TLS 1.2
    0x00, 0x01, 0x02, 0x03, 0x04, // the start of the client random
];

/// An upgrade request for MQTT over WebSocket, whole.
const UPGRADE_REQUEST: &[u8] = b"GET /mqtt HTTP/1.1\r\n\
    Host: localhost\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Protocol: mqtt\r\n\r\n";

/// A WebSocket ping from a client: FIN + ping, masked, empty, mask 0.
const PING_FRAME: [u8; 6] = [0x89, 0x80, 0x00, 0x00, 0x00, 0x00];

#[test]
fn a_tls_client_hello_trickled_a_byte_at_a_time_is_closed_at_the_connect_deadline() {
    let certificates = certs::make();
    let mut listener = ListenerConfig::tcp("tls", any_port());
    listener.tls = Some(TlsConfig::new(&certificates.cert, &certificates.key));
    let broker = start_with_listener(listener);
    let mut socket = socket(broker.local_addr(), Duration::from_millis(300));
    trickle_until_closed(&mut socket, bytes_of(&CLIENT_HELLO_START));
    wait_until("the refusal is counted", || {
        broker.stats().limit_reached(Limit::ConnectTimeout) == 1
    });
}

#[test]
fn a_websocket_upgrade_trickled_a_byte_at_a_time_is_closed_at_the_connect_deadline() {
    let mut listener = ListenerConfig::tcp("ws", any_port());
    listener.kind = ListenerKind::WebSocket { path: None };
    let broker = start_with_listener(listener);
    let mut socket = socket(broker.local_addr(), Duration::from_millis(100));
    trickle_until_closed(&mut socket, bytes_of(UPGRADE_REQUEST));
    wait_until("the refusal is counted", || {
        broker.stats().limit_reached(Limit::ConnectTimeout) == 1
    });
}

#[test]
fn websocket_pings_without_a_connect_are_closed_at_the_connect_deadline() {
    let mut listener = ListenerConfig::tcp("ws", any_port());
    listener.kind = ListenerKind::WebSocket { path: None };
    let broker = start_with_listener(listener);
    let mut socket = socket(broker.local_addr(), Duration::from_millis(200));
    socket.write_all(UPGRADE_REQUEST).unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).expect("the upgrade response");
        response.push(byte[0]);
    }
    assert!(response.starts_with(b"HTTP/1.1 101"));
    // Pings, answered by pongs, forever: never an MQTT byte.
    trickle_until_closed(&mut socket, std::iter::repeat(PING_FRAME.to_vec()));
    wait_until("the refusal is counted", || {
        broker.stats().limit_reached(Limit::ConnectTimeout) == 1
    });
}

/// The first bytes of a PUBLISH of 100 bytes to topic "t".
const PUBLISH_START: [u8; 5] = [0x30, 0x64, 0x00, 0x01, b't'];

#[test]
fn a_publish_that_stops_halfway_is_closed_at_the_packet_deadline_with_keep_alive_0_or_long() {
    let broker = start_broker_with(|config| config.limits.packet_timeout = SHORT);
    for keep_alive in [0, 600] {
        let mut client = Raw::open(broker.local_addr());
        client.send_packet(connect_packet("stalls", true, keep_alive));
        client.expect(&[0x20, 0x02, 0x00, 0x00]);
        client.send(&PUBLISH_START);
        client.expect_eof();
    }
    wait_until("both refusals are counted", || {
        broker.stats().limit_reached(Limit::PacketTimeout) == 2
    });
    // Everyone else is served as before.
    let mut other = Raw::connect(broker.local_addr(), "other", true, false);
    other.ping();
}

#[test]
fn a_publish_trickled_a_byte_at_a_time_is_closed_at_the_packet_deadline() {
    let broker = start_broker_with(|config| config.limits.packet_timeout = SHORT);
    let mut socket = socket(broker.local_addr(), Duration::from_millis(300));
    let mut connect = Vec::new();
    wren::protocol::Packet::from(connect_packet("trickles", true, 0))
        .encode(&mut connect)
        .unwrap();
    socket.write_all(&connect).unwrap();
    let mut connack = [0u8; 4];
    socket.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    let publish: Vec<u8> = PUBLISH_START
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'x', 97))
        .collect();
    trickle_until_closed(&mut socket, bytes_of(&publish));
    wait_until("the refusal is counted", || {
        broker.stats().limit_reached(Limit::PacketTimeout) == 1
    });
}

#[test]
fn keep_alive_still_ends_a_silent_client_and_spares_a_pinging_one() {
    let broker = start_broker_with(|config| config.limits.packet_timeout = SHORT);
    let mut pinging = Raw::open(broker.local_addr());
    pinging.send_packet(connect_packet("pinging", true, 2));
    pinging.expect(&[0x20, 0x02, 0x00, 0x00]);
    let mut silent = Raw::open(broker.local_addr());
    silent.send_packet(connect_packet("silent", true, 1));
    silent.expect(&[0x20, 0x02, 0x00, 0x00]);
    // Pings well inside the keep-alive, for longer than the silent one's.
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        pinging.ping();
    }
    silent.expect_eof();
    pinging.ping();
    assert_eq!(broker.stats().limit_reached(Limit::PacketTimeout), 0);
}

/// Whether a client can connect to `addr` now: CONNECT answered by CONNACK 0.
fn accepted(addr: SocketAddr, client_id: &str) -> bool {
    let mut socket = socket(addr, TIMEOUT);
    let connect = common::raw::encode(connect_packet(client_id, true, 60));
    let mut connack = [0u8; 4];
    socket.write_all(&connect).is_ok()
        && socket.read_exact(&mut connack).is_ok()
        && connack == [0x20, 0x02, 0x00, 0x00]
}

#[test]
fn connections_beyond_the_per_address_limit_are_refused_over_all_listeners_until_one_ends() {
    let broker = start_broker_with(|config| {
        config
            .listeners
            .push(ListenerConfig::tcp("second", any_port()));
        config.limits.max_connections_per_address = 2;
    });
    let addrs = broker.local_addrs();
    let one = Raw::connect(addrs[0], "one", true, false);
    let _two = Raw::connect(addrs[1], "two", true, false);
    for addr in &addrs {
        Raw::open(*addr).expect_eof();
    }
    assert_eq!(
        broker.stats().limit_reached(Limit::ConnectionsPerAddress),
        2
    );
    one.disconnect();
    wait_until("a connection's end frees its place", || {
        accepted(addrs[0], "three")
    });
}

/// A store that panics when asked to commit a retained message: a bug in a store,
/// which runs on the broker's storage thread.
struct PanickingStorage;

impl Storage for PanickingStorage {
    fn load(&mut self) -> Result<StoredState, StorageError> {
        Ok(StoredState::default())
    }
    fn commit(&mut self, changes: &[Change]) -> Result<(), StorageError> {
        if changes
            .iter()
            .any(|change| matches!(change, Change::Retain(_)))
        {
            panic!("a retained message this store cannot take");
        }
        Ok(())
    }
    fn describe(&self) -> String {
        "a store that panics".into()
    }
}

/// Set in the environment of the child process that runs [`router_panic_child`].
const ROUTER_PANIC_CHILD: &str = "WREN_TEST_ROUTER_PANIC_CHILD";

/// A panic on the storage thread must stop the whole process, as one on the router
/// thread does (both end in the same function): this runs a broker whose store
/// panics in a child process (this test binary again, running only
/// [`router_panic_child`]) and expects it to exit with status 70 and a log line
/// naming the panic.
#[test]
fn a_panic_on_the_storage_thread_stops_the_process_with_a_clear_log_line() {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "router_panic_child", "--nocapture"])
        .env(ROUTER_PANIC_CHILD, "1")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the test binary again");
    let mut stderr = child.stderr.take().expect("the child's stderr");
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = common::process::exit_within(&mut child, Duration::from_secs(30))
        .expect("the broker whose router panicked was still running after 30 s");
    let log = reading.join().expect("the child's stderr");
    assert_eq!(status.code(), Some(70), "{status}; stderr:\n{log}");
    assert!(
        log.contains("The storage thread panicked (a retained message this store cannot take)"),
        "stderr:\n{log}"
    );
}

/// The child's side of the test above; does nothing unless run as that child.
#[test]
fn router_panic_child() {
    if std::env::var_os(ROUTER_PANIC_CHILD).is_none() {
        return;
    }
    let _ = env_logger::builder().is_test(false).try_init();
    let mut config = BrokerConfig::with_tcp_listener(any_port());
    config.sys.interval = Duration::ZERO;
    let broker = wren::Broker::builder(config)
        .storage(Box::new(PanickingStorage))
        .start()
        .expect("the broker starts");
    let mut client = Raw::connect(broker.local_addr(), "retainer", true, false);
    client.publish0("status", b"up", true);
    // The process ends while this waits; returning would fail the parent test.
    std::thread::sleep(TIMEOUT);
}

/// Counts the CONNECTs it is asked about, and lets everyone in.
#[derive(Default)]
struct CountingAuthentication {
    asked: AtomicUsize,
}

impl Hook for CountingAuthentication {
    fn authenticate(&self, _: &ConnectInfo) -> Result<AuthDecision, HookError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(AuthDecision::Allow)
    }
}

#[test]
fn identifiers_user_names_and_passwords_beyond_their_limits_are_refused_before_authentication() {
    let mut config = BrokerConfig::with_tcp_listener(any_port());
    config.sys.interval = Duration::ZERO;
    let limits = config.limits.clone();
    let hook = Arc::new(CountingAuthentication::default());
    let broker = wren::Broker::builder(config)
        .hook(hook.clone())
        .start()
        .expect("the broker starts");
    let with = |id: usize, user: usize, password: usize| {
        let mut connect = Connect::new("c".repeat(id));
        connect.username = Some("u".repeat(user));
        connect.password = Some(vec![b'p'; password].into());
        connect
    };
    let refusals = [
        (with(limits.max_client_id_length + 1, 1, 1), 0x02),
        (with(1, limits.max_username_length + 1, 1), 0x04),
        (with(1, 1, limits.max_password_length + 1), 0x04),
    ];
    for (connect, code) in refusals {
        let mut client = Raw::open(broker.local_addr());
        client.send_packet(connect);
        client.expect(&[0x20, 0x02, 0x00, code]);
        client.expect_eof();
    }
    assert_eq!(hook.asked.load(Ordering::SeqCst), 0, "no hook saw them");
    let stats = broker.stats();
    for limit in [
        Limit::ClientIdLength,
        Limit::UsernameLength,
        Limit::PasswordLength,
    ] {
        assert_eq!(stats.limit_reached(limit), 1, "{limit:?}");
    }
    // At the limits exactly, the hook decides.
    let at_limits = with(
        limits.max_client_id_length,
        limits.max_username_length,
        limits.max_password_length,
    );
    Raw::connect_with(broker.local_addr(), at_limits).ping();
    assert_eq!(hook.asked.load(Ordering::SeqCst), 1);
}

/// A topic of 65,001 levels, far beyond the default `max-topic-levels` of 200.
fn deep_topic() -> String {
    "/".repeat(65_000)
}

/// Another client can still connect, subscribe and receive.
fn still_serves(addr: SocketAddr) {
    let mut client = Raw::connect(addr, "bystander", true, false);
    client.subscribe("a/b", QoS::AtMostOnce);
    client.publish0("a/b", b"still here", false);
    assert_eq!(&client.read_publish().payload[..], b"still here");
}

#[test]
fn a_publish_deeper_than_max_topic_levels_closes_the_connection() {
    let broker = start_broker_with(|_| {});
    let mut client = Raw::connect(broker.local_addr(), "deep", true, false);
    client.send_packet(publish_packet(
        &deep_topic(),
        b"x",
        QoS::AtMostOnce,
        false,
        0,
    ));
    client.expect_eof();
    assert_eq!(broker.stats().limit_reached(Limit::TopicLevels), 1);
    still_serves(broker.local_addr());
}

#[test]
fn a_will_deeper_than_max_topic_levels_closes_the_connect_without_connack() {
    let broker = start_broker_with(|_| {});
    let mut connect = connect_packet("deep-will", true, 60);
    let topic = deep_topic();
    connect.will = Some(will(&topic, b"gone", QoS::AtMostOnce, false));
    let mut client = Raw::open(broker.local_addr());
    client.send_packet(connect);
    client.expect_eof();
    assert_eq!(broker.stats().limit_reached(Limit::TopicLevels), 1);
    still_serves(broker.local_addr());
}

#[test]
fn a_filter_deeper_than_max_topic_levels_is_refused_in_its_suback_slot() {
    let broker = start_broker_with(|_| {});
    let mut client = Raw::connect(broker.local_addr(), "deep-filter", true, false);
    let deep = deep_topic();
    client.send_packet(subscribe_packet(
        1,
        &[("a/b", QoS::AtLeastOnce), (&deep, QoS::AtMostOnce)],
    ));
    client.expect(&[0x90, 0x04, 0x00, 0x01, 0x01, 0x80]);
    // Unsubscribing from it is answered and changes nothing.
    client.send_packet(unsubscribe_packet(2, &[&deep]));
    client.expect(&[0xB0, 0x02, 0x00, 0x02]);
    client.ping();
    assert_eq!(broker.stats().limit_reached(Limit::TopicLevels), 2);
    still_serves(broker.local_addr());
}

/// Many clients flood the broker with SUBSCRIBE packets, each larger than the
/// whole inbox budget: they go in one at a time, and everyone gets every SUBACK.
#[test]
fn a_flood_of_large_subscribes_through_a_small_inbox_is_answered_in_full() {
    const CLIENTS: usize = 8;
    const PACKETS: u16 = 20;
    const FILTERS: usize = 20;
    const FILTER_BYTES: usize = 200;
    let broker = start_broker_with(|config| config.limits.max_inbox_bytes = 2048);
    let addr = broker.local_addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            std::thread::spawn(move || {
                let mut client = Raw::connect(addr, &format!("flood-{n}"), true, false);
                let mut burst = Vec::new();
                let filters: Vec<Vec<String>> = (0..PACKETS)
                    .map(|packet| {
                        (0..FILTERS)
                            .map(|filter| {
                                let name = format!("{packet}/{filter}/");
                                name.clone() + &"x".repeat(FILTER_BYTES - name.len())
                            })
                            .collect()
                    })
                    .collect();
                for (packet, names) in (1..=PACKETS).zip(&filters) {
                    let entries: Vec<(&str, QoS)> = names
                        .iter()
                        .map(|name| (name.as_str(), QoS::AtMostOnce))
                        .collect();
                    burst.extend(common::raw::encode(subscribe_packet(packet, &entries)));
                }
                client.send(&burst);
                for packet in 1..=PACKETS {
                    let mut suback = vec![0x90, 2 + FILTERS as u8];
                    suback.extend(packet.to_be_bytes());
                    suback.extend([0x00; FILTERS]);
                    client.expect(&suback);
                }
                client.ping();
                client
            })
        })
        .collect();
    let _connected: Vec<Raw> = clients
        .into_iter()
        .map(|client| {
            client
                .join()
                .expect("a flooding client was not answered in full")
        })
        .collect();
    let expected = (CLIENTS * PACKETS as usize * FILTERS) as u64;
    wait_until("every filter is subscribed", || {
        broker.stats().subscriptions == expected
    });
    // Eight readers with twenty packets each, every one larger than the budget,
    // cannot all have found the inbox empty.
    assert!(broker.stats().limit_reached(Limit::InboxBytes) > 0);
    still_serves(addr);
}

/// Where to reach a listener bound to `bound` from this machine.
fn loopback(bound: SocketAddr) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], bound.port()))
}

#[test]
fn a_listener_on_the_network_refuses_anonymous_clients_unless_told_and_a_loopback_one_lets_them_in()
{
    let network = SocketAddr::from(([0, 0, 0, 0], 0));
    let broker = start_broker_with(|config| {
        config.listeners = vec![
            ListenerConfig::tcp("network", network),
            ListenerConfig::tcp("local", any_port()),
        ];
    });
    let addrs = broker.local_addrs();
    let mut anonymous = Raw::open(loopback(addrs[0]));
    anonymous.send_packet(connect_packet("anonymous", true, 60));
    anonymous.expect(&[0x20, 0x02, 0x00, 0x05]);
    anonymous.expect_eof();
    // A user name nobody checks proves nothing: refused too, as by mosquitto.
    let mut named = connect_packet("named", true, 60);
    named.username = Some("someone".into());
    let mut named_client = Raw::open(loopback(addrs[0]));
    named_client.send_packet(named);
    named_client.expect(&[0x20, 0x02, 0x00, 0x05]);
    Raw::connect(addrs[1], "local", true, false).ping();

    let open = start_broker_with(|config| {
        config.listeners = vec![ListenerConfig::tcp("network", network)];
        config.auth.allow_anonymous = Some(true);
    });
    Raw::connect(loopback(open.local_addr()), "anonymous", true, false).ping();
}
