//! The broker with mosquitto's own command-line clients as peers (MQTT-7.0.0-2:
//! conformant implementations interoperate with no extension).
//!
//! These tests need `mosquitto_pub` and `mosquitto_sub` (Debian: mosquitto-clients)
//! and fail loudly without them.

mod common;

use std::time::Duration;

use common::mosquitto::{publish, Subscriber};
use common::raw::Raw;
use common::{start_broker, start_broker_with, wait_until};
use wren::protocol::QoS;

#[test]
fn a_retained_message_from_mosquitto_pub_reaches_a_later_mosquitto_sub() {
    let broker = start_broker();
    let addr = broker.local_addr();
    publish(addr, &["-t", "sensors/temp", "-m", "21.5", "-r", "-q", "1"]);
    let mut sub = Subscriber::start(addr, &["-t", "sensors/#", "-v", "-C", "1"]);
    assert_eq!(sub.line(), "sensors/temp 21.5");
    assert!(sub.wait().success());
}

#[test]
fn qos_2_messages_flow_from_mosquitto_pub_to_mosquitto_sub_exactly_once() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut sub = Subscriber::start(addr, &["-t", "q2", "-q", "2", "-C", "3"]);
    wait_until("mosquitto_sub subscribed", || {
        broker.stats().subscriptions == 1
    });
    for message in ["one", "two", "three"] {
        publish(addr, &["-t", "q2", "-m", message, "-q", "2"]);
    }
    assert_eq!(
        [sub.line(), sub.line(), sub.line()],
        ["one", "two", "three"]
    );
    assert!(sub.wait().success());
}

#[test]
fn the_will_of_a_killed_mosquitto_sub_is_published() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = Subscriber::start(addr, &["-t", "status/#", "-v"]);
    wait_until("the watcher subscribed", || {
        broker.stats().subscriptions == 1
    });
    let dying = Subscriber::start(
        addr,
        &[
            "-t",
            "ignored",
            "--will-topic",
            "status/dying",
            "--will-payload",
            "offline",
            "--will-qos",
            "1",
        ],
    );
    wait_until("the dying client subscribed", || {
        broker.stats().subscriptions == 2
    });
    dying.kill();
    assert_eq!(watcher.line(), "status/dying offline");
}

#[test]
fn a_persistent_mosquitto_sub_session_receives_messages_queued_while_offline() {
    let broker = start_broker();
    let addr = broker.local_addr();
    // Subscribe with a persistent session and leave at once (-E).
    let sub = Subscriber::start(
        addr,
        &["-c", "-i", "durable", "-q", "1", "-t", "queue", "-E"],
    );
    assert!(sub.wait().success());
    // Its process has ended; the broker must also have seen it go, or the messages
    // would be sent to the closing connection rather than queued.
    wait_until("mosquitto_sub has disconnected", || {
        broker.stats().connected_clients == 0
    });
    for n in 1..=3 {
        publish(addr, &["-t", "queue", "-m", &format!("m{n}"), "-q", "1"]);
    }
    wait_until("three messages are queued", || {
        broker.stats().queued_messages == 3
    });
    let mut back = Subscriber::start(
        addr,
        &["-c", "-i", "durable", "-q", "1", "-t", "queue", "-C", "3"],
    );
    assert_eq!([back.line(), back.line(), back.line()], ["m1", "m2", "m3"]);
    assert!(back.wait().success());
}

#[test]
fn mosquitto_sub_takes_over_the_session_of_an_existing_connection() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut first = Raw::connect(addr, "same-id", false, false);
    first.subscribe("takeover", QoS::AtLeastOnce);
    let mut sub = Subscriber::start(
        addr,
        &[
            "-c", "-i", "same-id", "-q", "1", "-t", "takeover", "-C", "1",
        ],
    );
    first.expect_eof();
    wait_until("mosquitto_sub connected", || {
        broker.stats().connected_clients == 1
    });
    publish(addr, &["-t", "takeover", "-m", "after", "-q", "1"]);
    assert_eq!(sub.line(), "after");
    assert!(sub.wait().success());
}

#[test]
fn mosquitto_sub_reads_sys_topics_and_hash_does_not_see_them() {
    let broker = start_broker_with(|config| config.sys.interval = Duration::from_secs(1));
    let addr = broker.local_addr();
    let mut sys = Subscriber::start(addr, &["-t", "$SYS/broker/version", "-v", "-C", "1"]);
    assert_eq!(
        sys.line(),
        format!(
            "$SYS/broker/version wren-mqtt version {}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(sys.wait().success());
    let mut count = Subscriber::start(
        addr,
        &["-t", "$SYS/broker/retained messages/count", "-v", "-C", "1"],
    );
    let line = count.line();
    assert!(
        line.starts_with("$SYS/broker/retained messages/count "),
        "{line}"
    );
    assert!(count.wait().success());
    // The earlier subscriptions must be gone before the new one is counted.
    wait_until("the $SYS subscribers have left", || {
        broker.stats().subscriptions == 0
    });
    // "#" gets the marker, not the $SYS topics published every second.
    let mut all = Subscriber::start(addr, &["-t", "#", "-v", "-C", "1"]);
    wait_until("the '#' subscriber subscribed", || {
        broker.stats().subscriptions == 1
    });
    publish(addr, &["-t", "marker", "-m", "m"]);
    assert_eq!(all.line(), "marker m");
}
