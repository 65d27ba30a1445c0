//! The `wren-broker` program with `persistence` on, killed with SIGKILL at random
//! moments while QoS 1 and QoS 2 messages stream through it, and restarted on the
//! same store file and the same port.
//!
//! The rule under test is the ordering one: the broker sends an acknowledgement
//! (CONNACK, SUBACK, PUBACK, PUBREC, PUBCOMP) only once the change it acknowledges
//! is committed to the store. Then a kill can lose only what nobody was told about:
//!
//! - a QoS 1 message whose PUBACK the publisher received reaches every persistent
//!   subscriber at least once [MQTT-4.3.2];
//! - a QoS 2 message whose PUBCOMP the publisher received reaches every persistent
//!   subscriber exactly once, and no QoS 2 message ever arrives twice, acknowledged
//!   or not [MQTT-4.3.3]: the publisher's packet identifier (held from PUBREC to
//!   PUBREL) and the routed copies are committed together;
//! - persistent sessions keep their subscriptions, whether their client stays
//!   connected (reconnecting after each kill) or stays away until the end;
//! - a retained message whose PUBACK was received is still there.
//!
//! Both sides behave as real MQTT 3.1.1 clients do across a lost connection, with
//! raw sockets so that what was acknowledged is never ambiguous: the publishers keep
//! several messages in flight, reconnect with clean session 0 and resend each
//! unacknowledged message with its packet identifier and DUP set (or its PUBREL
//! once PUBREC came), so in the end every message is acknowledged; the
//! subscribers answer every PUBLISH and PUBREL, and treat a QoS 2 PUBLISH whose
//! packet identifier they have PUBREC'd but not yet seen released as a resend. They
//! also count payloads (sequence numbers), so a message delivered again under
//! another packet identifier, or after its PUBREL, is caught.
//!
//! The kills come from a seeded generator; the seed is printed, and
//! `WREN_CRASH_SEED=<seed>` repeats the same schedule (the timing of the machine
//! still varies). The other tests check how the program refuses a store it cannot
//! use.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use wren::protocol::{
    ConnectReturnCode, Decoder, Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish, QoS,
    SubscribeReturnCode,
};

use common::raw::{connect_packet, encode, publish_packet, subscribe_packet};
use common::{free_port, poll, wait_until, PATIENCE};

/// How many times the broker is killed and restarted.
const KILLS: usize = 24;
/// The range of the random time the messages stream before a kill, in milliseconds.
const STREAM_MS: (u64, u64) = (50, 600);
/// The most messages one publisher sends: a bound that keeps every sequence number
/// its own packet identifier. A publisher that reaches it (a fast machine) stops
/// while the kills go on.
const MAX_MESSAGES: u32 = 60_000;
/// How many messages a publisher keeps unacknowledged at once, so that a commit
/// holds several and a kill catches several in every state of their handshake.
const WINDOW: usize = 8;
/// How long a subscriber must hear nothing, once it has everything it expects,
/// before it counts as drained: late duplicates would arrive in this time.
const QUIET: Duration = Duration::from_millis(500);

const TOPIC_Q1: &str = "crash/q1";
const TOPIC_Q2: &str = "crash/q2";
const TOPIC_RETAINED: &str = "crash/retained";
/// The payload of the last message on each topic, published after the last restart.
const END: &[u8] = b"end";

const LIVE: &str = "crash-live";
const OFFLINE: &str = "crash-offline";

#[test]
fn acknowledged_messages_survive_sigkill_of_wren_broker_qos_1_at_least_once_qos_2_exactly_once() {
    let seed = seed();
    eprintln!("broker_crash: seed {seed} (set WREN_CRASH_SEED={seed} to repeat the schedule)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let config = write_config(dir.path(), port, &dir.path().join("store.redb"));
    let mut broker = BrokerProcess::start(&config, port);

    // Both subscribers subscribe once, with clean session 0; one goes away at once.
    let mut live = subscribe(addr, LIVE);
    live.disconnect_cleanly();
    let mut offline = subscribe(addr, OFFLINE);
    offline.disconnect_cleanly();

    let live_received = Arc::new(Mutex::new(Received::new(LIVE)));
    let finished = Arc::new(AtomicBool::new(false));
    let live_thread = {
        let received = live_received.clone();
        let finished = finished.clone();
        thread::spawn(move || stay_subscribed(addr, &received, &finished))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let publishers = [QoS::AtLeastOnce, QoS::ExactlyOnce].map(|qos| {
        let progress = Arc::new(AtomicUsize::new(0));
        let stop = stop.clone();
        let acked = progress.clone();
        let handle = thread::spawn(move || publish_stream(addr, qos, &stop, &acked));
        (progress, handle)
    });

    // A broker that stops other than by the test's SIGKILL (a panic, a signal).
    let mut exits = Vec::new();
    let retained_payload = format!("retained before kill {} of seed {seed}", KILLS / 2);
    for kill in 0..KILLS {
        // Stream for a while: at least one message of each publisher through this
        // broker, then a random time.
        let before: Vec<usize> = publishers
            .iter()
            .map(|(p, _)| p.load(Ordering::SeqCst))
            .collect();
        wait_until(&format!("both publishers progress (seed {seed})"), || {
            publishers.iter().zip(&before).all(|((p, _), b)| {
                let acked = p.load(Ordering::SeqCst);
                acked > *b || acked == MAX_MESSAGES as usize
            })
        });
        if kill == KILLS / 2 {
            publish_retained(addr, &retained_payload);
        }
        thread::sleep(Duration::from_millis(rng.range(STREAM_MS.0, STREAM_MS.1)));
        exits.extend(broker.exited_by_itself(&format!("before kill {kill}")));
        broker.kill();
        broker = BrokerProcess::start(&config, port);
    }

    // The broker stays up now: the publishers finish the messages under way.
    stop.store(true, Ordering::SeqCst);
    let [q1, q2] = publishers.map(|(_, handle)| handle.join().expect("a publisher thread"));
    publish_end_markers(addr);
    let mut offline_received = Received::new(OFFLINE);
    let offline_session = drain(addr, OFFLINE, &mut offline_received);
    // Whether it drains, the final checks say.
    poll(PATIENCE, || {
        live_received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drained()
    });
    finished.store(true, Ordering::SeqCst);
    live_thread.join().expect("the live subscriber's thread");
    let retained = read_retained(addr);
    exits.extend(broker.exited_by_itself("after the last restart"));
    broker.kill();

    let live_received = Arc::try_unwrap(live_received)
        .ok()
        .expect("the live subscriber's thread has ended")
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    eprintln!(
        "broker_crash: seed {seed}: {KILLS} kills; QoS 1: {} acked ({} resent); QoS 2: {} acked \
         ({} resent); {}; {}",
        q1.acked.len(),
        q1.resent,
        q2.acked.len(),
        q2.resent,
        live_received.summary(),
        offline_received.summary()
    );

    let mut failures = exits;
    failures.extend(q1.anomalies.iter().map(|a| format!("QoS 1 publisher: {a}")));
    failures.extend(q2.anomalies.iter().map(|a| format!("QoS 2 publisher: {a}")));
    if !offline_session {
        failures.push(format!("{OFFLINE}: CONNACK without its session at the end"));
    }
    for received in [&live_received, &offline_received] {
        failures.extend(received.check(&q1, &q2));
    }
    match retained {
        Ok(payload) if payload == retained_payload.as_bytes() => {}
        other => failures.push(format!(
            "the retained message {retained_payload:?} (PUBACK received) is gone: {:?}",
            other.map(|r| String::from_utf8_lossy(&r).into_owned())
        )),
    }
    if !failures.is_empty() {
        // The same failure once, with how many times it happened, in first-seen order.
        let mut counted: Vec<(String, usize)> = Vec::new();
        for failure in failures {
            match counted.iter_mut().find(|(f, _)| *f == failure) {
                Some((_, count)) => *count += 1,
                None => counted.push((failure, 1)),
            }
        }
        let kept = dir.keep();
        panic!(
            "seed {seed}: failures (broker logs kept in {}):\n{}",
            kept.display(),
            counted
                .iter()
                .map(|(failure, count)| format!("{failure} (x{count})"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn a_second_wren_broker_on_the_same_store_exits_1_naming_the_file_in_use() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = dir.path().join("store.redb");
    let port = free_port();
    let first_config = write_config(dir.path(), port, &store);
    let mut first = BrokerProcess::start(&first_config, port);

    let second_dir = dir.path().join("second");
    std::fs::create_dir(&second_dir).expect("a directory for the second configuration");
    let second_config = write_config(&second_dir, free_port(), &store);
    let output = run_broker(&second_config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&store.display().to_string()) && stderr.contains("in use"),
        "stderr: {stderr}"
    );
    assert!(
        first.child.try_wait().expect("a running child").is_none(),
        "the first broker ended; its log: {}",
        first.log()
    );
    first.kill();
}

#[test]
fn wren_broker_exits_1_on_a_corrupt_store_and_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = dir.path().join("store.redb");
    let garbage: Vec<u8> = b"not a redb file, not a wren store. "
        .iter()
        .cycle()
        .take(8192)
        .copied()
        .collect();
    std::fs::write(&store, &garbage).expect("writing the garbage store");
    let config = write_config(dir.path(), free_port(), &store);

    let output = run_broker(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&store.display().to_string()) && stderr.contains("corrupt"),
        "stderr: {stderr}"
    );
    assert_eq!(
        std::fs::read(&store).expect("the store file is still there"),
        garbage,
        "the corrupt store was changed"
    );
}

#[test]
fn wren_broker_exits_1_when_persistence_is_enabled_without_a_path() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let config = dir.path().join("broker.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{}\npersistence:\n  enabled: true\n",
            free_port()
        ),
    )
    .expect("writing the configuration");
    let output = run_broker(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    // The configuration loader refuses it, at the line of `persistence`, naming
    // the missing `path` of that section.
    assert!(
        stderr.contains(&config.display().to_string())
            && stderr.contains("persistence")
            && stderr.contains("`path`"),
        "stderr: {stderr}"
    );
}

// ---------------------------------------------------------------------------------
// The broker program.

/// Writes `broker.yaml` in `dir`: one TCP listener on `port` of 127.0.0.1, the store
/// at `store`, and queues long enough for every message of the run (the default
/// 1000 messages or 8 MiB would drop some for the subscriber that stays away).
fn write_config(dir: &Path, port: u16, store: &Path) -> PathBuf {
    let path = dir.join("broker.yaml");
    let yaml = format!(
        "listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n\
         max-queued-messages: {}\n\
         max-queued-bytes: 0\n\
         persistence:\n  enabled: true\n  path: {}\n",
        2 * MAX_MESSAGES + 10,
        store.display()
    );
    std::fs::write(&path, yaml).expect("writing the broker's configuration");
    path
}

/// Runs `wren-broker -c config` expecting it to exit by itself.
fn run_broker(config: &Path) -> std::process::Output {
    common::process::run(
        env!("CARGO_BIN_EXE_wren-broker"),
        &["-c", config.to_str().expect("a UTF-8 path")],
        None,
        b"",
        "it is built with the tests",
    )
}

/// A running `wren-broker` process, its log appended to `broker.log` next to its
/// configuration. Killed (SIGKILL) when dropped.
struct BrokerProcess {
    child: Child,
    log: PathBuf,
}

impl BrokerProcess {
    /// Starts `wren-broker -c config` and waits until `port`, the one `config`
    /// names, accepts connections
    /// (it opens the store before its listeners). A start that fails, as when the
    /// port of the process just killed is not free yet, is retried a bounded
    /// number of times.
    fn start(config: &Path, port: u16) -> BrokerProcess {
        let log = config.with_file_name("broker.log");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        for _attempt in 0..20 {
            let mut file = File::options()
                .create(true)
                .append(true)
                .open(&log)
                .expect("the broker's log file");
            writeln!(file, "--- wren-broker starts ---").expect("writing the log");
            let mut child = Command::new(env!("CARGO_BIN_EXE_wren-broker"))
                .arg("-c")
                .arg(config)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("wren-broker is built with the tests");
            let mut exited = false;
            let up = poll(PATIENCE, || {
                exited = child.try_wait().expect("waiting for wren-broker").is_some();
                exited || TcpStream::connect(addr).is_ok()
            });
            if up && !exited {
                return BrokerProcess { child, log };
            }
            let _ = child.kill();
            let _ = child.wait();
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "wren-broker did not start on {addr}; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// If the process has ended although the test did not kill it, how (`when`
    /// says at what point of the test), with the end of its log.
    fn exited_by_itself(&mut self, when: &str) -> Option<String> {
        let status = self.child.try_wait().expect("waiting for wren-broker")?;
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Some(format!(
            "wren-broker ended by itself {when}: {status}; its last lines, newest first: {tail:#?}"
        ))
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the broker processes of this test logged.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------
// A raw MQTT connection that reports a lost connection instead of failing the test.

/// One TCP connection to the broker, packets in and out, every error returned.
struct Conn {
    stream: TcpStream,
    buffer: BytesMut,
    decoder: Decoder,
}

impl Conn {
    /// Connects as `client_id` with `clean` session and returns the connection and
    /// the CONNACK's session-present flag; any refusal is an error.
    fn connect(addr: SocketAddr, client_id: &str, clean: bool) -> io::Result<(Conn, bool)> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        stream.set_write_timeout(Some(common::TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            buffer: BytesMut::new(),
            decoder: Decoder::new(),
        };
        conn.send(connect_packet(client_id, clean, 60))?;
        match conn.next(common::TIMEOUT)? {
            Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Accepted => {
                Ok((conn, ack.session_present))
            }
            other => Err(io::Error::other(format!(
                "expected CONNACK 0, got {other:?}"
            ))),
        }
    }

    /// Connects as [`Conn::connect`] does, retrying while the broker is down (for
    /// at most [`PATIENCE`]).
    fn reconnect(addr: SocketAddr, client_id: &str) -> io::Result<(Conn, bool)> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match Conn::connect(addr, client_id, false) {
                Ok(connected) => return Ok(connected),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn send(&mut self, packet: impl Into<Packet>) -> io::Result<()> {
        self.stream.write_all(&encode(packet))
    }

    /// The next packet, or `None` if none came within `wait`; an error if the
    /// connection ended or the bytes are not MQTT.
    fn next(&mut self, wait: Duration) -> io::Result<Option<Packet>> {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 4096];
        loop {
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some(packet)) => return Ok(Some(packet)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::other(format!("malformed packet: {e}"))),
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next packet within [`common::TIMEOUT`]; a timeout is an error.
    fn expect_packet(&mut self) -> io::Result<Packet> {
        self.next(common::TIMEOUT)?
            .ok_or_else(|| io::Error::new(ErrorKind::TimedOut, "no packet"))
    }

    /// Sends DISCONNECT and waits for the broker to close the connection.
    fn disconnect_cleanly(&mut self) {
        self.send(Packet::Disconnect(Default::default()))
            .expect("sending DISCONNECT");
        let closed = self.next(common::TIMEOUT).is_err();
        assert!(closed, "the broker did not close after DISCONNECT");
    }
}

fn packet_id(value: u32) -> PacketId {
    PacketId::new(u16::try_from(value).expect("a 16-bit packet id")).expect("non-zero")
}

// ---------------------------------------------------------------------------------
// Publishers.

/// What a publisher did: which sequence numbers were acknowledged (PUBACK for QoS 1,
/// PUBCOMP for QoS 2), how many were sent, and what went against MQTT.
struct Published {
    acked: Vec<u32>,
    sent: u32,
    resent: usize,
    anomalies: Vec<String>,
}

/// Publishes `0, 1, 2, ...` at `qos` to its topic, keeping up to [`WINDOW`]
/// messages unacknowledged at once, until `stop` is set; the messages under way
/// then are finished. A lost connection is reconnected (clean session 0) and each
/// unacknowledged message resent in order with DUP and its packet identifier
/// (sequence number + 1), or its PUBREL resent once PUBREC came, as MQTT 3.1.1
/// section 4.4 asks. `acked` counts acknowledgements, for the test to see
/// progress.
fn publish_stream(addr: SocketAddr, qos: QoS, stop: &AtomicBool, acked: &AtomicUsize) -> Published {
    let (client_id, topic) = match qos {
        QoS::AtLeastOnce => ("crash-pub-1", TOPIC_Q1),
        _ => ("crash-pub-2", TOPIC_Q2),
    };
    let mut log = Published {
        acked: Vec::new(),
        sent: 0,
        resent: 0,
        anomalies: Vec::new(),
    };
    // The unacknowledged messages by sequence number: whether PUBREC came.
    let mut window: BTreeMap<u32, bool> = BTreeMap::new();
    let mut connected_before = false;
    // Each round is one connection, ended by a kill of the broker.
    for _round in 0..10_000 {
        let (mut conn, session_present) = match Conn::reconnect(addr, client_id) {
            Ok(connected) => connected,
            Err(e) => {
                log.anomalies.push(format!("cannot reconnect: {e}"));
                return log;
            }
        };
        if connected_before && !session_present {
            log.anomalies
                .push("CONNACK without the session a CONNACK gave before".into());
        }
        connected_before = true;
        log.resent += window.len();
        let resent = window.iter().try_for_each(|(&seq, &released)| {
            if released {
                conn.send(PubRel::new(packet_id(seq + 1)))
            } else {
                let mut publish = message(topic, qos, seq);
                publish.dup = true;
                conn.send(publish)
            }
        });
        if resent.is_err() {
            continue;
        }
        loop {
            while window.len() < WINDOW && !stop.load(Ordering::SeqCst) && log.sent < MAX_MESSAGES {
                let seq = log.sent;
                log.sent += 1;
                window.insert(seq, false);
                if conn.send(message(topic, qos, seq)).is_err() {
                    break;
                }
            }
            if window.is_empty() {
                return log;
            }
            let packet = match conn.expect_packet() {
                Ok(packet) => packet,
                Err(_) => break,
            };
            let (pid, released) = match &packet {
                Packet::PubAck(PubAck { packet_id, .. })
                | Packet::PubRec(PubRec { packet_id, .. })
                | Packet::PubComp(PubComp { packet_id, .. }) => (
                    *packet_id,
                    window.get(&(u32::from(packet_id.get()) - 1)).copied(),
                ),
                _ => (packet_id(MAX_MESSAGES + 1), None),
            };
            let seq = u32::from(pid.get()) - 1;
            match (qos, packet, released) {
                (QoS::AtLeastOnce, Packet::PubAck(_), Some(false))
                | (QoS::ExactlyOnce, Packet::PubComp(_), Some(true)) => {
                    window.remove(&seq);
                    log.acked.push(seq);
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                (QoS::ExactlyOnce, Packet::PubRec(_), Some(false)) => {
                    window.insert(seq, true);
                    if conn.send(PubRel::new(pid)).is_err() {
                        break;
                    }
                }
                (_, other, _) => log
                    .anomalies
                    .push(format!("unexpected {other:?}; unacknowledged: {window:?}")),
            }
        }
    }
    log.anomalies.push("too many reconnections".into());
    log
}

/// Message `seq` of a stream: its payload is the decimal sequence number, its packet
/// identifier `seq + 1`.
fn message(topic: &str, qos: QoS, seq: u32) -> Publish {
    publish_packet(
        topic,
        seq.to_string().as_bytes(),
        qos,
        false,
        u16::try_from(seq + 1).expect("a 16-bit packet id"),
    )
}

/// Publishes `payload` at `qos` on a connection of its own (clean session) and
/// completes the handshake; an error if the connection is lost before the
/// PUBACK or PUBCOMP.
fn publish_once(
    addr: SocketAddr,
    topic: &str,
    qos: QoS,
    payload: &[u8],
    retain: bool,
) -> io::Result<()> {
    let (mut conn, _) = Conn::connect(addr, "crash-once", true)?;
    conn.send(publish_packet(topic, payload, qos, retain, 1))?;
    let pid = packet_id(1);
    if qos == QoS::ExactlyOnce {
        match conn.expect_packet()? {
            Packet::PubRec(rec) if rec.packet_id == pid => conn.send(PubRel::new(pid))?,
            other => return Err(io::Error::other(format!("expected PUBREC, got {other:?}"))),
        }
    }
    match (qos, conn.expect_packet()?) {
        (QoS::AtLeastOnce, Packet::PubAck(ack)) if ack.packet_id == pid => {}
        (QoS::ExactlyOnce, Packet::PubComp(comp)) if comp.packet_id == pid => {}
        (_, other) => return Err(io::Error::other(format!("unexpected {other:?}"))),
    }
    conn.send(Packet::Disconnect(Default::default()))
}

/// Publishes the retained message at QoS 1, retrying until it is acknowledged.
fn publish_retained(addr: SocketAddr, payload: &str) {
    let acked = poll(PATIENCE, || {
        publish_once(
            addr,
            TOPIC_RETAINED,
            QoS::AtLeastOnce,
            payload.as_bytes(),
            true,
        )
        .is_ok()
    });
    assert!(acked, "the retained message was never acknowledged");
}

/// After the last restart: the last message on each topic, which every subscriber
/// must receive (so its subscription survived) after all the others.
fn publish_end_markers(addr: SocketAddr) {
    for (topic, qos) in [(TOPIC_Q1, QoS::AtLeastOnce), (TOPIC_Q2, QoS::ExactlyOnce)] {
        publish_once(addr, topic, qos, END, false)
            .unwrap_or_else(|e| panic!("the end marker on {topic}: {e}"));
    }
}

/// The retained message on [`TOPIC_RETAINED`], as a new subscriber receives it,
/// or what came instead.
fn read_retained(addr: SocketAddr) -> Result<Vec<u8>, String> {
    let (mut conn, _) =
        Conn::connect(addr, "crash-retained", true).map_err(|e| format!("connecting: {e}"))?;
    conn.send(subscribe_packet(1, &[(TOPIC_RETAINED, QoS::AtLeastOnce)]))
        .map_err(|e| format!("subscribing: {e}"))?;
    for _ in 0..3 {
        match conn.next(common::TIMEOUT) {
            Ok(Some(Packet::SubAck(_))) => {}
            Ok(Some(Packet::Publish(p))) if p.retain => {
                if let Some(pid) = p.packet_id {
                    let _ = conn.send(PubAck::new(pid));
                }
                let _ = conn.send(Packet::Disconnect(Default::default()));
                return Ok(p.payload.to_vec());
            }
            other => return Err(format!("after SUBSCRIBE: {other:?}")),
        }
    }
    Err("too many packets".into())
}

// ---------------------------------------------------------------------------------
// Subscribers.

/// Connects `client_id` with clean session 0 and subscribes to both topics at QoS 2.
fn subscribe(addr: SocketAddr, client_id: &str) -> Conn {
    let (mut conn, _) = Conn::connect(addr, client_id, false).expect("connecting a subscriber");
    conn.send(subscribe_packet(
        1,
        &[(TOPIC_Q1, QoS::ExactlyOnce), (TOPIC_Q2, QoS::ExactlyOnce)],
    ))
    .expect("subscribing");
    match conn.expect_packet().expect("a SUBACK") {
        Packet::SubAck(ack) => assert_eq!(
            ack.return_codes(),
            vec![SubscribeReturnCode::Success(QoS::ExactlyOnce); 2]
        ),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    conn
}

/// What one subscriber received, as a receiver that keeps its session state across
/// connections counts it.
struct Received {
    client_id: &'static str,
    /// How many times each QoS 1 sequence number arrived.
    q1: BTreeMap<u32, u32>,
    /// How many times each QoS 2 sequence number was accepted as new.
    q2: BTreeMap<u32, u32>,
    /// The QoS 2 packet identifiers PUBREC'd and not yet released by a PUBREL, with
    /// the sequence number they carried.
    awaiting_release: HashMap<PacketId, u32>,
    /// QoS 2 resends recognised by their packet identifier.
    resends: usize,
    /// End markers received, per topic.
    ends: Vec<String>,
    connections: usize,
    anomalies: Vec<String>,
    last_packet: Instant,
}

impl Received {
    fn new(client_id: &'static str) -> Received {
        Received {
            client_id,
            q1: BTreeMap::new(),
            q2: BTreeMap::new(),
            awaiting_release: HashMap::new(),
            resends: 0,
            ends: Vec::new(),
            connections: 0,
            anomalies: Vec::new(),
            last_packet: Instant::now(),
        }
    }

    /// Takes in one packet from the broker and answers it as MQTT 3.1.1 asks.
    fn take(&mut self, conn: &mut Conn, packet: Packet) -> io::Result<()> {
        self.last_packet = Instant::now();
        match packet {
            Packet::Publish(publish) => {
                let topic = publish.topic.as_str().to_owned();
                let payload = publish.payload.to_vec();
                let expected = if topic == TOPIC_Q1 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                if publish.qos != expected || publish.retain {
                    self.anomalies.push(format!(
                        "{topic} arrived at {:?}, retain {}",
                        publish.qos, publish.retain
                    ));
                }
                let Some(pid) = publish.packet_id else {
                    self.anomalies.push(format!("{topic}: QoS 0"));
                    return Ok(());
                };
                if payload == END {
                    self.ends.push(topic.clone());
                }
                let seq = std::str::from_utf8(&payload)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok());
                let seq = match (seq, payload == END) {
                    (Some(seq), _) => seq,
                    (None, true) => u32::MAX,
                    (None, false) => {
                        self.anomalies
                            .push(format!("{topic}: unexpected payload {payload:?}"));
                        u32::MAX
                    }
                };
                if publish.qos == QoS::ExactlyOnce {
                    match self.awaiting_release.get(&pid) {
                        Some(&held) if held == seq => self.resends += 1,
                        Some(&held) => self.anomalies.push(format!(
                            "packet id {pid} carried {seq} while {held} still awaits PUBREL"
                        )),
                        None => {
                            self.awaiting_release.insert(pid, seq);
                            if seq != u32::MAX {
                                *self.q2.entry(seq).or_default() += 1;
                            }
                        }
                    }
                    conn.send(PubRec::new(pid))
                } else {
                    if seq != u32::MAX {
                        *self.q1.entry(seq).or_default() += 1;
                    }
                    conn.send(PubAck::new(pid))
                }
            }
            Packet::PubRel(rel) => {
                self.awaiting_release.remove(&rel.packet_id);
                conn.send(PubComp::new(rel.packet_id))
            }
            other => {
                self.anomalies.push(format!("unexpected {other:?}"));
                Ok(())
            }
        }
    }

    /// Whether it has both end markers, no QoS 2 exchange open, and has heard
    /// nothing for [`QUIET`].
    fn drained(&self) -> bool {
        [TOPIC_Q1, TOPIC_Q2]
            .iter()
            .all(|topic| self.ends.iter().any(|t| t == topic))
            && self.awaiting_release.is_empty()
            && self.last_packet.elapsed() >= QUIET
    }

    /// What went wrong, against what the publishers had acknowledged.
    fn check(&self, q1: &Published, q2: &Published) -> Vec<String> {
        let who = self.client_id;
        let mut failures: Vec<String> = self
            .anomalies
            .iter()
            .map(|a| format!("{who}: {a}"))
            .collect();
        for topic in [TOPIC_Q1, TOPIC_Q2] {
            let count = self.ends.iter().filter(|t| *t == topic).count();
            if count == 0 {
                failures.push(format!(
                    "{who}: no end marker on {topic}: subscription lost"
                ));
            }
        }
        let missing_q1: Vec<u32> = q1
            .acked
            .iter()
            .filter(|seq| !self.q1.contains_key(seq))
            .copied()
            .collect();
        let missing_q2: Vec<u32> = q2
            .acked
            .iter()
            .filter(|seq| !self.q2.contains_key(seq))
            .copied()
            .collect();
        let twice_q2: Vec<(u32, u32)> = self
            .q2
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(seq, count)| (*seq, *count))
            .collect();
        let phantoms: Vec<u32> = self
            .q1
            .keys()
            .filter(|seq| **seq >= q1.sent)
            .chain(self.q2.keys().filter(|seq| **seq >= q2.sent))
            .copied()
            .collect();
        for (what, list) in [
            (
                "QoS 1 messages PUBACK'd but never arrived",
                format_some(&missing_q1),
            ),
            (
                "QoS 2 messages PUBCOMP'd but never arrived",
                format_some(&missing_q2),
            ),
            (
                "QoS 2 messages that arrived more than once (sequence number, times)",
                format_some(&twice_q2),
            ),
            ("messages never published", format_some(&phantoms)),
        ] {
            if let Some(list) = list {
                failures.push(format!("{who}: {what}: {list}"));
            }
        }
        failures
    }

    fn summary(&self) -> String {
        format!(
            "{}: {} connections, QoS 1 {} distinct of {} received, QoS 2 {} received \
             ({} resends by packet id)",
            self.client_id,
            self.connections,
            self.q1.len(),
            self.q1.values().sum::<u32>(),
            self.q2.len(),
            self.resends
        )
    }
}

/// How many items `items` has and the first few, or `None` if it is empty.
fn format_some<T: std::fmt::Debug>(items: &[T]) -> Option<String> {
    (!items.is_empty())
        .then(|| format!("{}, first {:?}", items.len(), &items[..items.len().min(10)]))
}

/// The subscriber that stays connected: it reconnects with clean session 0 after
/// each kill and takes in what comes, until `finished`.
fn stay_subscribed(addr: SocketAddr, received: &Mutex<Received>, finished: &AtomicBool) {
    let lock = || received.lock().unwrap_or_else(|p| p.into_inner());
    for _round in 0..10_000 {
        let (mut conn, session_present) = match Conn::reconnect(addr, LIVE) {
            Ok(connected) => connected,
            Err(e) => {
                lock().anomalies.push(format!("cannot reconnect: {e}"));
                return;
            }
        };
        lock().connections += 1;
        if !session_present {
            lock().anomalies.push("CONNACK without its session".into());
        }
        loop {
            if finished.load(Ordering::SeqCst) {
                let _ = conn.send(Packet::Disconnect(Default::default()));
                return;
            }
            match conn.next(Duration::from_millis(100)) {
                Ok(None) => {}
                Ok(Some(packet)) => {
                    if lock().take(&mut conn, packet).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    lock().anomalies.push("too many reconnections".into());
}

/// Connects the subscriber that stayed away and takes in everything until it is
/// drained, or nothing came for [`PATIENCE`] (the final checks then say what is
/// missing); whether its CONNACK had the session.
fn drain(addr: SocketAddr, client_id: &'static str, received: &mut Received) -> bool {
    let (mut conn, session_present) =
        Conn::connect(addr, client_id, false).expect("connecting the offline subscriber");
    received.connections += 1;
    while !received.drained() && received.last_packet.elapsed() < PATIENCE {
        match conn.next(QUIET) {
            Ok(None) => {}
            Ok(Some(packet)) => {
                if let Err(e) = received.take(&mut conn, packet) {
                    received.anomalies.push(format!("connection lost: {e}"));
                    return session_present;
                }
            }
            Err(e) => {
                received.anomalies.push(format!("connection lost: {e}"));
                return session_present;
            }
        }
    }
    let _ = conn.send(Packet::Disconnect(Default::default()));
    session_present
}

// ---------------------------------------------------------------------------------
// Randomness.

/// The seed: `WREN_CRASH_SEED` if set, otherwise from the clock.
fn seed() -> u64 {
    match std::env::var("WREN_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("WREN_CRASH_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64,
    }
}

/// splitmix64: small, seeded, good enough to spread kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}
