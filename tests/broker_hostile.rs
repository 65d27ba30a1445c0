//! The broker against a hostile client, over real sockets: deep topics, forged
//! `$SYS` messages, every limit of [`Limits`](wren::config::Limits) pushed past its
//! cap, floods of identical filters, huge retained replays, subscribers that stay
//! behind, and sessions or messages that belong to someone else. DESIGN invariants
//! 2, 4 and 5.
//!
//! Each limit that bites is also checked in its counter, [`Stats::limit_reached`],
//! and in most tests in `$SYS/broker/limits/KEY` too (not where the broker's own
//! retained `$SYS` messages would count against the limit under test).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::peer::{describe, login, Next, Peer};
use common::raw::{subscribe_packet, unsubscribe_packet};
use common::wait_for_stats;
use wren::broker::{AuthDecision, Broker, ClientInfo, ConnectInfo, Hook, HookError, Limit};
use wren::config::BrokerConfig;
use wren::protocol::{Connect, ConnectReturnCode, Packet, PubAck, Publish, QoS, TopicName, Will};

// ---------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------

/// `$SYS` interval for the tests that read counters there.
const SYS_INTERVAL: Duration = Duration::from_millis(100);

/// How long a counter may take to show what happened.
const COUNTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Slashes in the deep topics: 65,001 levels, all empty, in a string a little under
/// the 65,535 bytes MQTT allows.
const DEEP_SLASHES: usize = 65_000;

const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;

/// A topic (and filter) of 65,001 levels.
fn deep() -> String {
    "/".repeat(DEEP_SLASHES)
}

/// A broker on 127.0.0.1 with `$SYS` off, after `adjust`.
fn broker(adjust: impl FnOnce(&mut BrokerConfig)) -> common::WrenBroker {
    common::start_broker_with(adjust)
}

/// A broker on 127.0.0.1 with `hook`, `$SYS` off.
fn broker_with_hook(hook: Arc<dyn Hook>) -> common::WrenBroker {
    common::WrenBroker::with_hooks(vec![hook])
}

/// Turns `$SYS` on, every [`SYS_INTERVAL`].
fn sys_on(config: &mut BrokerConfig) {
    config.sys.interval = SYS_INTERVAL;
}

/// A client subscribed to `$SYS` counters, remembering the latest value of each.
struct SysWatcher {
    peer: Peer,
    values: BTreeMap<String, String>,
}

impl SysWatcher {
    /// Subscribes to `filters` at QoS 0.
    fn new(addr: SocketAddr, filters: &[&str]) -> SysWatcher {
        let (mut peer, _) = Peer::connected(addr, "sys-watcher", true);
        let filters: Vec<(&str, QoS)> = filters.iter().map(|f| (*f, Q0)).collect();
        let codes = peer.subscribe(1, &filters);
        assert!(
            codes.iter().all(|&code| code == 0),
            "$SYS filters {filters:?} refused: {codes:02X?}"
        );
        SysWatcher {
            peer,
            values: BTreeMap::new(),
        }
    }

    /// Reads `$SYS` messages until `topic` says `expected`.
    fn wait_for(&mut self, topic: &str, expected: u64) {
        let says =
            |value: Option<&String>| value.is_some_and(|v| v.trim().parse::<u64>() == Ok(expected));
        let deadline = Instant::now() + COUNTER_TIMEOUT;
        while !says(self.values.get(topic)) {
            assert!(
                Instant::now() < deadline,
                "{topic} should say {expected} within {COUNTER_TIMEOUT:?}; last value seen: {:?}",
                self.values.get(topic)
            );
            match self.peer.next_within(Duration::from_millis(500)) {
                Next::Packet(Packet::Publish(publish)) => {
                    let (topic, value) = message(&publish);
                    self.values.insert(topic, value);
                }
                Next::Packet(_) | Next::Silent => {}
                Next::Closed => {
                    panic!("the $SYS watcher was disconnected while waiting for {topic}")
                }
            }
        }
    }
}

/// A fresh client connects, subscribes, publishes and receives its own message:
/// the broker still serves people.
fn assert_serves_others(addr: SocketAddr, after: &str) {
    let (mut client, _) = Peer::connected(addr, "bystander", true);
    assert_eq!(
        client.subscribe(1, &[("bystander/alive", Q1)]),
        [1],
        "after {after}, a new client's SUBSCRIBE must be granted"
    );
    client.publish1("bystander/alive", b"still here", false, 2);
    let got = client.expect_publish(&format!("its own message, after {after}"));
    assert_eq!(&got.payload[..], b"still here");
    client.disconnect();
}

/// What a new subscriber to `filter` receives as retained messages: topic to
/// payload.
fn retained_under(addr: SocketAddr, filter: &str) -> BTreeMap<String, String> {
    let (mut client, _) = Peer::connected(addr, "retained-reader", true);
    assert_eq!(client.subscribe(1, &[(filter, Q0)]), [0]);
    let mut found = BTreeMap::new();
    for publish in client.publishes() {
        assert!(
            publish.retain,
            "{} came without RETAIN",
            publish.topic.as_str()
        );
        let (topic, payload) = message(&publish);
        found.insert(topic, payload);
    }
    client.disconnect();
    found
}

/// Topic and payload, for comparing deliveries.
fn message(publish: &Publish) -> (String, String) {
    (
        publish.topic.as_str().to_string(),
        String::from_utf8_lossy(&publish.payload).into_owned(),
    )
}

/// Sends `connect` and expects CONNACK with `code`, then the close.
fn expect_refused(addr: SocketAddr, connect: Connect, code: ConnectReturnCode, why: &str) {
    let id = connect.client_id.clone();
    let (mut peer, next) = Peer::connect(addr, connect);
    match next {
        Next::Packet(Packet::ConnAck(connack)) => assert_eq!(
            (connack.return_code(), connack.session_present),
            (code, false),
            "{id}: {why}: expected CONNACK {:#04X}",
            code as u8
        ),
        other => panic!(
            "{id}: {why}: expected CONNACK {:#04X}, got {}",
            code as u8,
            describe(&other)
        ),
    }
    peer.expect_closed(&format!("after CONNACK {:#04X}", code as u8));
}

/// Reads PUBLISH packets until the broker is quiet for `quiet`, at most `max`.
fn drain_publishes(peer: &mut Peer, quiet: Duration, max: usize) -> Vec<Publish> {
    let mut got = Vec::new();
    while got.len() < max {
        match peer.next_within(quiet) {
            Next::Packet(Packet::Publish(publish)) => got.push(publish),
            Next::Packet(_) => {}
            Next::Silent | Next::Closed => break,
        }
    }
    got
}

/// Runs `body` in a child process (this test binary, running only `test`).
///
/// A broker that walks a 65,001-level topic with recursion overflows its stack,
/// which aborts the whole process: run in place, that would end every test of this
/// file with no word about which. In a child, it fails this one test and shows the
/// child's last output.
fn in_own_process(test: &str, body: impl FnOnce()) {
    const CHILD: &str = "WREN_HOSTILE_TEST_IN_CHILD";
    const CHILD_TIMEOUT: Duration = Duration::from_secs(50);
    if std::env::var(CHILD).as_deref() == Ok(test) {
        body();
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        // The reason, not a backtrace, is what the message below should show.
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary runs again as a child");
    let read_all = |mut from: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            let _ = from.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
    let status = common::process::exit_within(&mut child, CHILD_TIMEOUT);
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let output = format!("{stdout}\n{stderr}");
    let tail: String = {
        let chars: Vec<char> = output.chars().collect();
        chars[chars.len().saturating_sub(4000)..].iter().collect()
    };
    match status {
        None => panic!("{test}: the process running the broker did not finish within {CHILD_TIMEOUT:?}; its output:\n{tail}"),
        Some(status) if !status.success() => panic!(
            "{test}: failed, or the process running the broker died ({status}); its output:\n{tail}"
        ),
        Some(_) => assert!(
            stdout.contains("1 passed"),
            "{test}: the child process did not run the test; its output:\n{tail}"
        ),
    }
}

// ---------------------------------------------------------------------------------
// 1. Deep topics never crash the broker.
// ---------------------------------------------------------------------------------

#[test]
fn deep_topics_a_65000_level_filter_gets_0x80_and_the_broker_keeps_serving() {
    in_own_process(
        "deep_topics_a_65000_level_filter_gets_0x80_and_the_broker_keeps_serving",
        || {
            let broker = broker(|_| {});
            let addr = broker.local_addr();
            let (mut client, _) = Peer::connected(addr, "deep-filter", true);
            let codes = client.subscribe(1, &[(&deep(), Q0)]);
            assert_eq!(
                codes,
                [0x80],
                "a filter of 65,001 levels (max_topic_levels 200) must be refused in its SUBACK slot"
            );
            client.disconnect();
            assert_serves_others(addr, "a 65,001-level SUBSCRIBE");
            wait_for_stats(&broker, "Limit::TopicLevels counted", |s| {
                s.limit_reached(Limit::TopicLevels) >= 1
            });
        },
    );
}

#[test]
fn deep_topics_a_retained_publish_is_closed_and_a_subscriber_to_everything_is_served() {
    in_own_process(
        "deep_topics_a_retained_publish_is_closed_and_a_subscriber_to_everything_is_served",
        || {
            let broker = broker(|_| {});
            let addr = broker.local_addr();
            let (mut client, _) = Peer::connected(addr, "deep-retain", true);
            client.publish(&deep(), b"deep", Q0, true, 0);
            client.expect_closed("a PUBLISH to a 65,001-level topic breaks max_topic_levels");
            let (mut everything, _) = Peer::connected(addr, "everything", true);
            assert_eq!(
                everything.subscribe(1, &[("#", Q0)]),
                [0],
                "a subscriber to # must get its SUBACK"
            );
            let got = everything.publishes();
            assert!(
                got.is_empty(),
                "the deep message must not have been retained; # received {} messages",
                got.len()
            );
            everything.disconnect();
            assert_serves_others(addr, "a retained PUBLISH to a 65,001-level topic");
            wait_for_stats(&broker, "nothing retained", |s| s.retained_messages == 0);
        },
    );
}

#[test]
fn deep_topics_a_will_on_a_deep_topic_is_closed_without_connack() {
    in_own_process(
        "deep_topics_a_will_on_a_deep_topic_is_closed_without_connack",
        || {
            let broker = broker(|_| {});
            let addr = broker.local_addr();
            let mut connect = Connect::new("deep-will");
            connect.will = Some(Will {
                topic: TopicName::new(deep()).unwrap(),
                payload: Bytes::from_static(b"bye"),
                qos: Q0,
                retain: true,
                properties: None,
            });
            let (peer, next) = Peer::connect(addr, connect);
            assert!(
                matches!(next, Next::Closed),
                "a CONNECT whose will topic has 65,001 levels must be closed without CONNACK, got {}",
                describe(&next)
            );
            drop(peer);
            assert_serves_others(addr, "a CONNECT with a 65,001-level will topic");
            wait_for_stats(&broker, "Limit::TopicLevels counted", |s| {
                s.limit_reached(Limit::TopicLevels) >= 1
            });
        },
    );
}

#[test]
fn deep_topics_unsubscribing_a_deep_filter_leaves_the_broker_serving() {
    in_own_process(
        "deep_topics_unsubscribing_a_deep_filter_leaves_the_broker_serving",
        || {
            let broker = broker(|_| {});
            let addr = broker.local_addr();
            // Something under the empty first level, for the walk to enter.
            let (mut other, _) = Peer::connected(addr, "shallow", true);
            assert_eq!(other.subscribe(1, &[("//x", Q0)]), [0]);
            let (mut client, _) = Peer::connected(addr, "deep-unsubscribe", true);
            client.send(unsubscribe_packet(1, &[&deep()]));
            match client.next() {
                Next::Packet(Packet::UnsubAck(ack)) if ack.packet_id.get() == 1 => {
                    client.disconnect()
                }
                Next::Closed => {}
                other => panic!(
                    "an UNSUBSCRIBE of a 65,001-level filter must get UNSUBACK or a close, got {}",
                    describe(&other)
                ),
            }
            other.ping();
            assert_serves_others(addr, "an UNSUBSCRIBE of a 65,001-level filter");
        },
    );
}

#[test]
fn max_topic_levels_5_closes_a_6_level_publish_refuses_a_6_level_filter_and_counts_both() {
    let broker = broker(|config| {
        config.limits.max_topic_levels = 5;
        sys_on(config);
    });
    let addr = broker.local_addr();
    let mut watcher = SysWatcher::new(addr, &["$SYS/broker/limits/#"]);
    let (mut subscriber, _) = Peer::connected(addr, "levels-sub", true);
    let codes = subscriber.subscribe(1, &[("a/b/c/d/e", Q1), ("a/b/c/d/e/f", Q1), ("a/#", Q0)]);
    assert_eq!(
        codes,
        [1, 0x80, 0],
        "with max_topic_levels 5, only the 6-level filter is refused; the others of the same SUBSCRIBE are granted"
    );

    let (mut six, _) = Peer::connected(addr, "six-levels", true);
    six.publish("a/b/c/d/e/f", b"six", Q0, false, 0);
    six.expect_closed("a PUBLISH to a 6-level topic with max_topic_levels 5");
    let (mut five, _) = Peer::connected(addr, "five-levels", true);
    five.publish1("a/b/c/d/e", b"five", false, 1);
    let got = subscriber.expect_publish("the 5-level message");
    assert_eq!(
        message(&got),
        ("a/b/c/d/e".to_string(), "five".to_string()),
        "the 6-level message must not be routed (a/# would match it); the 5-level one must"
    );
    assert!(subscriber.publishes().is_empty(), "one delivery only");

    wait_for_stats(
        &broker,
        "Limit::TopicLevels == 2 (a filter, a PUBLISH)",
        |s| s.limit_reached(Limit::TopicLevels) == 2,
    );
    watcher.wait_for("$SYS/broker/limits/max-topic-levels", 2);
}

// ---------------------------------------------------------------------------------
// 2. $SYS belongs to the broker.
// ---------------------------------------------------------------------------------

#[test]
fn sys_a_retained_will_on_sys_broker_version_is_not_published() {
    let broker = broker(sys_on);
    let addr = broker.local_addr();
    let version = format!("wren-mqtt version {}", env!("CARGO_PKG_VERSION"));
    let mut watcher = SysWatcher::new(addr, &["$SYS/broker/version"]);
    let first = watcher
        .peer
        .expect_publish("the retained $SYS/broker/version");
    assert_eq!(String::from_utf8_lossy(&first.payload), version);

    let mut connect = Connect::new("spoofer");
    connect.will = Some(Will {
        topic: TopicName::new("$SYS/broker/version").unwrap(),
        payload: Bytes::from_static(b"spoofed"),
        qos: Q0,
        retain: true,
        properties: None,
    });
    let (spoofer, next) = Peer::connect(addr, connect);
    match next {
        // Accepted, or refused for its will: either way nothing may come of it.
        Next::Packet(Packet::ConnAck(_)) | Next::Closed => {}
        other => panic!(
            "spoofer: expected CONNACK or a close, got {}",
            describe(&other)
        ),
    }
    drop(spoofer); // no DISCONNECT: the will is due
    wait_for_stats(&broker, "only the watcher connected", |s| {
        s.connected_clients == 1
    });
    for publish in watcher.peer.publishes() {
        let (topic, payload) = message(&publish);
        assert_ne!(
            payload, "spoofed",
            "a client's will was published on {topic}"
        );
    }
    // The next tick keeps the broker's own value, and a new subscriber gets it.
    thread::sleep(SYS_INTERVAL * 3);
    let retained = retained_under(addr, "$SYS/broker/version");
    assert_eq!(
        retained.get("$SYS/broker/version"),
        Some(&version),
        "$SYS/broker/version is the broker's; a client's will must not replace it"
    );
}

#[test]
fn sys_a_retained_publish_to_sys_is_neither_retained_nor_routed() {
    // `$SYS` off: nothing of the broker's own under `$SYS` to tell apart.
    let broker = broker(|_| {});
    let addr = broker.local_addr();
    let (mut watcher, _) = Peer::connected(addr, "sys-everything", true);
    assert_eq!(watcher.subscribe(1, &[("$SYS/#", Q0)]), [0]);
    let (mut forger, _) = Peer::connected(addr, "forger", true);
    forger.publish("$SYS/x", b"forged", Q1, true, 1);
    match forger.next() {
        Next::Packet(Packet::PubAck(ack)) if ack.packet_id.get() == 1 => {}
        Next::Closed => {}
        other => panic!(
            "forger: expected PUBACK 1 or a close, got {}",
            describe(&other)
        ),
    }
    let live = watcher.publishes();
    assert!(
        live.is_empty(),
        "a client's PUBLISH to $SYS/x must not reach $SYS/# subscribers; got {:?}",
        live.iter().map(message).collect::<Vec<_>>()
    );
    assert!(
        retained_under(addr, "$SYS/#").is_empty(),
        "a client's PUBLISH to $SYS/x must not be retained"
    );
    wait_for_stats(&broker, "nothing retained", |s| s.retained_messages == 0);
}

// ---------------------------------------------------------------------------------
// 3. Caps, each biting with its counter.
// ---------------------------------------------------------------------------------

#[test]
fn max_subscriptions_per_client_3_refuses_a_4th_filter_until_one_is_unsubscribed() {
    let broker = broker(|config| {
        config.limits.max_subscriptions_per_client = 3;
        sys_on(config);
    });
    let addr = broker.local_addr();
    let mut watcher = SysWatcher::new(addr, &["$SYS/broker/limits/#"]);
    let (mut client, _) = Peer::connected(addr, "collector", true);
    assert_eq!(
        client.subscribe(1, &[("a", Q0), ("b", Q0), ("c", Q0)]),
        [0, 0, 0]
    );
    assert_eq!(
        client.subscribe(2, &[("d", Q0)]),
        [0x80],
        "a 4th filter is beyond max_subscriptions_per_client 3"
    );
    assert_eq!(
        client.subscribe(3, &[("a", Q1)]),
        [1],
        "subscribing again to a held filter replaces it [MQTT-3.8.4-3] and is not one more"
    );
    client.unsubscribe(4, &["b"]);
    assert_eq!(
        client.subscribe(5, &[("d", Q0)]),
        [0],
        "after an UNSUBSCRIBE, a new filter fits"
    );
    let (mut publisher, _) = Peer::connected(addr, "publisher", true);
    publisher.publish1("b", b"unsubscribed", false, 1);
    publisher.publish1("d", b"subscribed", false, 2);
    let got: Vec<_> = client.publishes().iter().map(message).collect();
    assert_eq!(got, [("d".to_string(), "subscribed".to_string())]);

    wait_for_stats(
        &broker,
        "3 subscriptions and Limit::SubscriptionsPerClient == 1",
        |s| s.subscriptions == 4 && s.limit_reached(Limit::SubscriptionsPerClient) == 1,
    );
    watcher.wait_for("$SYS/broker/limits/max-subscriptions-per-client", 1);
}

/// The cap scenario shared by `max_retained_messages` and `max_retained_bytes`:
/// two retained topics fit, a third does not; replacing and clearing work at the cap.
fn a_retained_cap_routes_but_does_not_retain_a_third_topic(
    broker: &Broker,
    limit: Limit,
    payload_len: usize,
) {
    let addr = broker.local_addr();
    let payload = |tag: u8| vec![tag; payload_len];
    let entry = |topic: &str, tag: u8| {
        let payload = String::from_utf8(payload(tag)).expect("ASCII");
        (topic.to_string(), payload)
    };
    let (mut live, _) = Peer::connected(addr, "live", true);
    assert_eq!(live.subscribe(1, &[("r/#", Q0)]), [0]);
    let (mut publisher, _) = Peer::connected(addr, "retainer", true);
    publisher.publish1("r/1", &payload(b'1'), true, 1);
    publisher.publish1("r/2", &payload(b'2'), true, 2);
    publisher.publish1("r/3", &payload(b'3'), true, 3);
    let got: Vec<_> = live.publishes().iter().map(message).collect();
    assert_eq!(
        got,
        [entry("r/1", b'1'), entry("r/2", b'2'), entry("r/3", b'3')],
        "a retained message beyond {} is still routed to current subscribers",
        limit.key()
    );
    assert_eq!(
        retained_under(addr, "r/#"),
        BTreeMap::from([entry("r/1", b'1'), entry("r/2", b'2')]),
        "a third retained topic is beyond {}: not retained",
        limit.key()
    );
    publisher.publish1("r/1", &payload(b'u'), true, 4);
    assert_eq!(
        retained_under(addr, "r/#"),
        BTreeMap::from([entry("r/1", b'u'), entry("r/2", b'2')]),
        "replacing a retained topic works at the cap"
    );
    publisher.publish1("r/2", b"", true, 5);
    publisher.publish1("r/3", &payload(b'3'), true, 6);
    assert_eq!(
        retained_under(addr, "r/#"),
        BTreeMap::from([entry("r/1", b'u'), entry("r/3", b'3')]),
        "clearing a retained topic frees a place"
    );
    let expected = format!("2 retained messages and Limit::{limit:?} == 1");
    wait_for_stats(broker, &expected, |s| {
        s.retained_messages == 2 && s.limit_reached(limit) == 1
    });
}

#[test]
fn max_retained_messages_2_routes_but_does_not_retain_a_third_topic() {
    // `$SYS` off: its own retained messages would be counted with the clients'.
    let broker = broker(|config| config.limits.max_retained_messages = 2);
    a_retained_cap_routes_but_does_not_retain_a_third_topic(&broker, Limit::RetainedMessages, 3);
}

#[test]
fn max_retained_bytes_routes_but_does_not_retain_beyond_the_byte_cap() {
    // Each message is 3 topic bytes and 4,000 payload bytes, and the tree that files
    // them costs about half a KiB a level: two fit in 10,000, three do not.
    // `$SYS` off: its own retained messages would be counted with the clients'.
    let broker = broker(|config| config.limits.max_retained_bytes = 10_000);
    a_retained_cap_routes_but_does_not_retain_a_third_topic(&broker, Limit::RetainedBytes, 4000);
}

#[test]
fn max_persistent_sessions_2_refuses_a_third_with_server_unavailable() {
    let broker = broker(|config| {
        config.limits.max_persistent_sessions = 2;
        sys_on(config);
    });
    let addr = broker.local_addr();
    let mut watcher = SysWatcher::new(addr, &["$SYS/broker/limits/#"]);
    let persistent = |id: &str| {
        let mut connect = Connect::new(id);
        connect.clean_session = false;
        connect
    };
    let (p1, present) = Peer::connected(addr, "p1", false);
    assert!(!present);
    let (p2, _) = Peer::connected(addr, "p2", false);
    expect_refused(
        addr,
        persistent("p3"),
        ConnectReturnCode::ServerUnavailable,
        "a third persistent session is beyond max_persistent_sessions 2",
    );
    // Clean sessions are not counted.
    let (c1, _) = Peer::connected(addr, "c1", true);
    let (c2, _) = Peer::connected(addr, "c2", true);
    // A persistent client comes back to its own session at the cap.
    p1.disconnect();
    let (p1, present) = Peer::connected(addr, "p1", false);
    assert!(present, "p1 must find its own session at the cap");
    // Offline sessions count: p3 is still refused.
    p1.disconnect();
    expect_refused(
        addr,
        persistent("p3"),
        ConnectReturnCode::ServerUnavailable,
        "p1's offline session still counts",
    );
    // A clean session for p2 discards its persistent one, which frees a place.
    p2.disconnect();
    Peer::connected(addr, "p2", true).0.disconnect();
    let (p3, present) = Peer::connected(addr, "p3", false);
    assert!(!present);
    drop((p3, c1, c2));

    wait_for_stats(&broker, "Limit::PersistentSessions == 2", |s| {
        s.limit_reached(Limit::PersistentSessions) == 2
    });
    watcher.wait_for("$SYS/broker/limits/max-persistent-sessions", 2);
}

#[test]
fn persistent_client_expiration_removes_an_offline_session_and_counts_it() {
    let broker = broker(|config| {
        config.limits.persistent_client_expiration = Some(Duration::from_secs(1));
        sys_on(config);
    });
    let addr = broker.local_addr();
    let mut watcher = SysWatcher::new(addr, &["$SYS/broker/clients/expired"]);
    let (mut client, _) = Peer::connected(addr, "expiring", false);
    assert_eq!(client.subscribe(1, &[("expiring/t", Q1)]), [1]);
    client.disconnect();
    wait_for_stats(&broker, "the session offline", |s| {
        s.disconnected_clients == 1
    });
    // Past the expiration, the broker's own timer removes the session.
    common::wait_until("the offline session expires", || {
        broker
            .stats()
            .limit_reached(Limit::PersistentClientExpiration)
            >= 1
    });
    let (mut client, present) = Peer::connected(addr, "expiring", false);
    assert!(
        !present,
        "the offline session must be gone once persistent_client_expiration (1 s) has passed"
    );
    // Its subscription went with it.
    let (mut publisher, _) = Peer::connected(addr, "publisher", true);
    publisher.publish1("expiring/t", b"after expiry", false, 1);
    assert!(
        client.publishes().is_empty(),
        "the expired subscription was used"
    );

    wait_for_stats(&broker, "Limit::PersistentClientExpiration == 1", |s| {
        s.limit_reached(Limit::PersistentClientExpiration) == 1
    });
    watcher.wait_for("$SYS/broker/clients/expired", 1);
}

#[test]
fn max_queued_bytes_keeps_what_fits_for_an_offline_subscriber_and_counts_the_drops() {
    // 1 topic byte and 99 payload bytes a message: 10 fit in 1050 bytes, 11 do not.
    const SENT: u16 = 15;
    const FIT: u16 = 10;
    let broker = broker(|config| {
        config.limits.max_queued_bytes = 1050;
        sys_on(config);
    });
    let addr = broker.local_addr();
    let mut watcher = SysWatcher::new(
        addr,
        &[
            "$SYS/broker/publish/messages/dropped",
            "$SYS/broker/limits/max-queued-bytes",
        ],
    );
    let (mut subscriber, _) = Peer::connected(addr, "offline", false);
    assert_eq!(subscriber.subscribe(1, &[("q", Q1)]), [1]);
    subscriber.disconnect();
    wait_for_stats(&broker, "the session offline", |s| {
        s.disconnected_clients == 1
    });

    let (mut publisher, _) = Peer::connected(addr, "publisher", true);
    let payload = |n: u16| {
        let mut payload = format!("{n:03}").into_bytes();
        payload.resize(99, b'.');
        payload
    };
    for n in 1..=SENT {
        publisher.publish1("q", &payload(n), false, n);
    }
    let (mut subscriber, present) = Peer::connected(addr, "offline", false);
    assert!(present);
    let got: Vec<String> = drain_publishes(&mut subscriber, Duration::from_secs(1), 100)
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    let expected: Vec<String> = (1..=FIT)
        .map(|n| String::from_utf8(payload(n)).expect("ASCII"))
        .collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "max_queued_bytes 1050 holds 10 messages of 100 bytes for an offline session; got {} of {SENT}",
        got.len()
    );
    assert_eq!(got, expected, "the first 10 are kept, in order");

    let dropped = u64::from(SENT - FIT);
    wait_for_stats(
        &broker,
        "5 drops in publish_dropped and Limit::QueuedBytes, nothing left queued",
        |s| {
            s.publish_dropped == dropped
                && s.limit_reached(Limit::QueuedBytes) == dropped
                && s.queued_messages == 0
                && s.inflight_messages == 0
        },
    );
    watcher.wait_for("$SYS/broker/publish/messages/dropped", dropped);
    watcher.wait_for("$SYS/broker/limits/max-queued-bytes", dropped);
}

#[test]
fn max_client_id_length_refuses_a_longer_id_with_connack_2() {
    let broker = broker(|config| config.limits.max_client_id_length = 8);
    let addr = broker.local_addr();
    Peer::connected(addr, "12345678", true).0.disconnect();
    expect_refused(
        addr,
        Connect::new("123456789"),
        ConnectReturnCode::IdentifierRejected,
        "a 9-byte client id with max_client_id_length 8",
    );
    wait_for_stats(&broker, "Limit::ClientIdLength == 1", |s| {
        s.limit_reached(Limit::ClientIdLength) == 1
    });
}

#[test]
fn max_username_and_password_length_refuse_longer_ones_with_connack_4() {
    let broker = broker(|config| {
        config.limits.max_username_length = 8;
        config.limits.max_password_length = 8;
    });
    let addr = broker.local_addr();
    Peer::accepted(addr, login("fits", true, "user1234", b"pass1234"))
        .0
        .disconnect();
    expect_refused(
        addr,
        login("long-user", true, "user12345", b"pass"),
        ConnectReturnCode::BadUserNameOrPassword,
        "a 9-byte user name with max_username_length 8",
    );
    expect_refused(
        addr,
        login("long-password", true, "user", b"pass12345"),
        ConnectReturnCode::BadUserNameOrPassword,
        "a 9-byte password with max_password_length 8",
    );
    wait_for_stats(
        &broker,
        "Limit::UsernameLength == 1 and Limit::PasswordLength == 1",
        |s| {
            s.limit_reached(Limit::UsernameLength) == 1
                && s.limit_reached(Limit::PasswordLength) == 1
        },
    );
}

#[test]
fn max_connections_per_address_2_closes_a_third_connection_at_once() {
    let broker = broker(|config| {
        config.limits.max_connections_per_address = 2;
        sys_on(config);
    });
    let addr = broker.local_addr();
    // The $SYS watcher is one of the two.
    let mut watcher = SysWatcher::new(addr, &["$SYS/broker/limits/#"]);
    let (second, _) = Peer::connected(addr, "second", true);
    let mut third = Peer::open(addr, "third");
    third.expect_closed("a third connection from 127.0.0.1 with max_connections_per_address 2");
    wait_for_stats(&broker, "Limit::ConnectionsPerAddress == 1", |s| {
        s.limit_reached(Limit::ConnectionsPerAddress) == 1
    });
    watcher.wait_for("$SYS/broker/limits/max-connections-per-address", 1);
    // A closed connection frees its place (the count may follow a moment later).
    second.disconnect();
    common::wait_until(
        "a place freed by a closed connection is usable again",
        || {
            let mut later = Peer::open(addr, "later");
            let next = match later.try_send(Connect::new("later")) {
                Ok(()) => later.next(),
                Err(_) => Next::Closed,
            };
            match next {
                Next::Packet(Packet::ConnAck(connack)) => {
                    assert_eq!(connack.code, ConnectReturnCode::Accepted);
                    true
                }
                _ => false,
            }
        },
    );
}

// ---------------------------------------------------------------------------------
// 4. Identical filters in one SUBSCRIBE.
// ---------------------------------------------------------------------------------

#[test]
fn ten_thousand_identical_filters_are_one_subscription_and_one_retained_delivery() {
    const FILTERS: usize = 10_000;
    let broker = broker(|config| config.limits.max_subscriptions_per_client = 100_000);
    let addr = broker.local_addr();
    let (mut publisher, _) = Peer::connected(addr, "retainer", true);
    publisher.publish1("a/b", b"retained", true, 1);

    let (mut client, _) = Peer::connected(addr, "repeater", true);
    let filters = vec![("a/b", Q0); FILTERS];
    let codes = client.subscribe(1, &filters);
    assert_eq!(codes.len(), FILTERS, "one SUBACK code per filter");
    let refused = codes.iter().filter(|&&code| code != 0).count();
    assert_eq!(refused, 0, "every identical filter is granted QoS 0");
    let retained = client.publishes();
    assert_eq!(
        retained.len(),
        1,
        "the retained message on a/b must be delivered once, not once per identical filter"
    );
    wait_for_stats(&broker, "one subscription", |s| s.subscriptions == 1);

    publisher.publish1("a/b", b"live", false, 2);
    let live = client.publishes();
    assert_eq!(live.len(), 1, "a live message is delivered once");
}

// ---------------------------------------------------------------------------------
// 5. A large retained replay does not stall others.
// ---------------------------------------------------------------------------------

#[test]
fn a_replay_of_20000_retained_messages_does_not_stall_other_clients() {
    const RETAINED: usize = 20_000;
    const ROUND_TRIPS: u16 = 200;
    const BOUND: Duration = Duration::from_secs(20);
    let broker = broker(|_| {});
    let addr = broker.local_addr();
    for n in 0..RETAINED {
        broker
            .publish(&format!("r/{n}"), n.to_string(), Q0, true)
            .expect("the embedded publish is accepted");
    }
    wait_for_stats(&broker, "20,000 retained messages", |s| {
        s.retained_messages == RETAINED as u64
    });

    let (mut replayed, _) = Peer::connected(addr, "replayed", true);
    let (mut other, _) = Peer::connected(addr, "round-trips", true);
    replayed.send(subscribe_packet(1, &[("#", Q0)]));
    let reader = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut suback, mut retained) = (false, 0usize);
        while Instant::now() < deadline && retained < RETAINED {
            match replayed.next_within(Duration::from_secs(2)) {
                Next::Packet(Packet::SubAck(_)) => suback = true,
                Next::Packet(Packet::Publish(p)) if p.topic.as_str().starts_with("r/") => {
                    retained += 1
                }
                Next::Packet(_) => {}
                Next::Silent if suback => break,
                Next::Silent => {}
                Next::Closed => break,
            }
        }
        (suback, retained)
    });

    let started = Instant::now();
    for n in 1..=ROUND_TRIPS {
        other.publish1("other/topic", b"ping", false, n);
    }
    let took = started.elapsed();
    let (suback, retained) = reader.join().expect("the replayed client's reader");
    assert!(
        took < BOUND,
        "{ROUND_TRIPS} PUBLISH/PUBACK round trips took {took:?} during the replay (bound {BOUND:?})"
    );
    assert!(suback, "the SUBSCRIBE to # was never answered");
    assert!(
        retained > 0,
        "the subscriber to # received no retained message"
    );
}

// ---------------------------------------------------------------------------------
// 6. A subscriber that stays behind forever paces nobody for long.
// ---------------------------------------------------------------------------------

#[test]
fn a_subscriber_that_stays_behind_does_not_pace_a_publisher_for_long() {
    const MESSAGES: u16 = 2_000;
    const WINDOW: u16 = 20;
    const BOUND: Duration = Duration::from_secs(30);
    let broker = broker(|_| {});
    let addr = broker.local_addr();

    // Acknowledges two messages a second for as long as the test runs: far behind
    // the publisher, yet never silent long enough to look stalled.
    const SLOW_ACK_INTERVAL: Duration = Duration::from_millis(500);
    let (mut slow, _) = Peer::connected(addr, "slow", true);
    assert_eq!(slow.subscribe(1, &[("load", Q1)]), [1]);
    slow.auto_ack = false;
    // Set when the publisher is done: the subscribers' readers stop.
    let stop = Arc::new(AtomicBool::new(false));
    let slow_reader = {
        let stop = stop.clone();
        thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < BOUND * 2 {
                match slow.next_within(Duration::from_millis(100)) {
                    Next::Packet(Packet::Publish(publish)) => {
                        for _ in 0..SLOW_ACK_INTERVAL.as_millis() / 50 {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            thread::sleep(Duration::from_millis(50));
                        }
                        if let Some(id) = publish.packet_id {
                            if slow.try_send(PubAck::new(id)).is_err() {
                                return;
                            }
                        }
                    }
                    Next::Closed => return,
                    Next::Packet(_) | Next::Silent => {}
                }
            }
        })
    };

    let (mut fast, _) = Peer::connected(addr, "fast", true);
    assert_eq!(fast.subscribe(1, &[("load", Q1)]), [1]);
    let publisher_done = stop.clone();
    let fast_reader = thread::spawn(move || {
        let deadline = Instant::now() + BOUND + Duration::from_secs(10);
        let mut next = 1u16;
        while next <= MESSAGES && Instant::now() < deadline {
            match fast.next_within(Duration::from_millis(500)) {
                Next::Packet(Packet::Publish(publish)) => {
                    let n: u16 = String::from_utf8_lossy(&publish.payload)
                        .parse()
                        .expect("payloads are numbers");
                    assert_eq!(n, next, "fast: messages out of order or missing");
                    next += 1;
                }
                Next::Closed => break,
                // Once the publisher is done, a quiet moment means no more is coming.
                Next::Silent if publisher_done.load(Ordering::Relaxed) => break,
                Next::Packet(_) | Next::Silent => {}
            }
        }
        next - 1
    });

    let (mut publisher, _) = Peer::connected(addr, "publisher", true);
    let deadline = Instant::now() + BOUND;
    let (mut sent, mut acked) = (0u16, 0u16);
    while acked < MESSAGES && Instant::now() < deadline {
        while sent < MESSAGES && sent - acked < WINDOW {
            sent += 1;
            publisher.publish("load", sent.to_string().as_bytes(), Q1, false, sent);
        }
        match publisher.next_within(Duration::from_millis(500)) {
            Next::Packet(Packet::PubAck(_)) => acked += 1,
            Next::Packet(other) => panic!("publisher: unexpected {other}"),
            Next::Closed => panic!("publisher: disconnected after {acked} PUBACKs"),
            Next::Silent => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let received = fast_reader.join().expect("the fast subscriber's reader");
    slow_reader.join().expect("the slow subscriber's reader");
    assert_eq!(
        acked, MESSAGES,
        "a QoS 1 publisher with a window of {WINDOW} got only {acked} of {MESSAGES} PUBACKs within {BOUND:?}: \
         a subscriber acknowledging twice a second paces it for good"
    );
    assert_eq!(
        received, MESSAGES,
        "the fast subscriber must get every message"
    );
    wait_for_stats(&broker, "Limit::SlowSubscriber counted", |s| {
        s.limit_reached(Limit::SlowSubscriber) >= 1
    });
}

// ---------------------------------------------------------------------------------
// 7. Sessions belong to their user.
// ---------------------------------------------------------------------------------

/// Lets in `alice`, `mallory` and `bob` with their own names as passwords, and no
/// one else. Denies `bob` reading `private/...` once `deny_private` is set.
struct Users {
    deny_private: AtomicBool,
}

impl Hook for Users {
    fn authenticate(&self, connect: &ConnectInfo) -> Result<AuthDecision, HookError> {
        let user = connect.username.as_deref();
        let password = connect.password.as_deref();
        match user {
            Some(name @ ("alice" | "mallory" | "bob")) if password == Some(name.as_bytes()) => {
                Ok(AuthDecision::Allow)
            }
            _ => Ok(AuthDecision::Deny(ConnectReturnCode::BadUserNameOrPassword)),
        }
    }

    fn authorize_receive(&self, client: &ClientInfo, topic: &TopicName) -> bool {
        !(client.username.as_deref() == Some("bob")
            && topic.as_str().starts_with("private/")
            && self.deny_private.load(Ordering::SeqCst))
    }
}

fn users() -> Arc<Users> {
    Arc::new(Users {
        deny_private: AtomicBool::new(false),
    })
}

#[test]
fn a_persistent_session_belongs_to_the_user_who_made_it() {
    let broker = broker_with_hook(users());
    let addr = broker.local_addr();
    let (mut alice, present) = Peer::accepted(addr, login("shared-id", false, "alice", b"alice"));
    assert!(!present);
    assert_eq!(alice.subscribe(1, &[("alice/#", Q1)]), [1]);
    alice.disconnect();
    broker
        .publish("alice/secret", "for alice only", Q1, false)
        .unwrap();
    wait_for_stats(&broker, "alice's message queued", |s| {
        s.queued_messages == 1
    });

    let (mut mallory, present) =
        Peer::accepted(addr, login("shared-id", false, "mallory", b"mallory"));
    assert!(
        !present,
        "mallory must not be given alice's session (CONNACK session present 1)"
    );
    let got = mallory.publishes();
    assert!(
        got.is_empty(),
        "mallory received what was queued for alice: {:?}",
        got.iter().map(message).collect::<Vec<_>>()
    );
    // Nor did she inherit alice's subscription.
    broker
        .publish("alice/later", "also for alice", Q1, false)
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    let got = mallory.publishes();
    assert!(
        got.is_empty(),
        "mallory receives through alice's subscription: {:?}",
        got.iter().map(message).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------
// 8. Read access is checked when a message is delivered, not when it was queued.
// ---------------------------------------------------------------------------------

#[test]
fn read_access_is_checked_again_when_queued_messages_are_delivered() {
    let hook = users();
    let broker = broker_with_hook(hook.clone());
    let addr = broker.local_addr();
    let (mut bob, _) = Peer::accepted(addr, login("bob", false, "bob", b"bob"));
    assert_eq!(
        bob.subscribe(1, &[("private/#", Q1), ("public/#", Q1)]),
        [1, 1],
        "bob may subscribe while allowed"
    );
    bob.disconnect();
    for n in 0..3 {
        broker
            .publish(&format!("private/{n}"), "private", Q1, false)
            .unwrap();
    }
    broker.publish("public/0", "public", Q1, false).unwrap();
    wait_for_stats(&broker, "4 messages queued for bob", |s| {
        s.queued_messages == 4
    });

    hook.deny_private.store(true, Ordering::SeqCst);
    let (mut bob, present) = Peer::accepted(addr, login("bob", false, "bob", b"bob"));
    assert!(present);
    let got: Vec<_> = drain_publishes(&mut bob, Duration::from_secs(1), 100)
        .iter()
        .map(message)
        .collect();
    assert_eq!(
        got,
        [("public/0".to_string(), "public".to_string())],
        "messages queued while bob could read private/# must not reach him once he cannot"
    );
    wait_for_stats(&broker, "nothing left queued or inflight", |s| {
        s.queued_messages == 0 && s.inflight_messages == 0
    });
}

// ---------------------------------------------------------------------------------
// 9. A listener on the network refuses anonymous clients unless told.
// ---------------------------------------------------------------------------------

/// A broker listening on every address, reached through 127.0.0.1.
fn network_broker(allow_anonymous: Option<bool>) -> (common::WrenBroker, SocketAddr) {
    let broker = common::start_broker_with(|config| {
        config.listeners[0].bind = SocketAddr::from(([0, 0, 0, 0], 0));
        config.auth.allow_anonymous = allow_anonymous;
    });
    let port = broker.port();
    (broker, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn a_network_listener_refuses_anonymous_clients_unless_allowed() {
    let (_closed, addr) = network_broker(None);
    expect_refused(
        addr,
        Connect::new("anonymous"),
        ConnectReturnCode::NotAuthorized,
        "a listener on 0.0.0.0 refuses clients without a user name by default",
    );
    // Without a password file or hook, a user name alone is not authentication.
    expect_refused(
        addr,
        login("named", true, "someone", b"x"),
        ConnectReturnCode::NotAuthorized,
        "an unchecked user name counts as anonymous",
    );

    let (_open, addr) = network_broker(Some(true));
    Peer::connected(addr, "anonymous", true).0.disconnect();
}
