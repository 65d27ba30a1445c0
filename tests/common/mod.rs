//! Helpers shared by the integration tests: starting brokers, raw-socket MQTT clients
//! that send exact bytes (in the style of mosquitto's `test/broker/*.py`), and
//! mosquitto's own programs as peers.
//!
//! Every wait here is bounded: sockets have read timeouts, and conditions are polled
//! with a deadline. Use them with `mod common;` from any file in `tests/`.
//!
//! A test that checks a statement of the MQTT 3.1.1 specification says so at the end
//! of its name: `[MQTT-3.1.2-5]` becomes the suffix `_mqtt_3_1_2_5`, as in
//! `messages_for_an_offline_persistent_session_are_queued_in_order_mqtt_3_1_2_5`.
//! Several statements are joined with `_and_` (`_mqtt_3_1_4_5_and_3_2_2_4`), a range
//! with `_to_` (`_mqtt_3_3_1_5_to_12`). A name that starts with `mqtt_3_1_` is about
//! the MQTT 3.1 protocol version, not a statement. A statement of MQTT 5 (the ids of
//! `spec/mqtt-5-conformance.md`) takes the prefix `_mqtt5_`: `[MQTT-3.14.2-1]` of
//! MQTT 5 becomes `_mqtt5_3_14_2_1`. MQTT 5 rules that have no id are named in words
//! and cite their section in a comment.
#![allow(dead_code)]

pub mod certs;
pub mod mosquitto;
pub mod peer;
pub mod process;
pub mod raw;
pub mod v5;
pub mod wren_broker;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use wren::broker::{Broker, Stats};
use wren::config::BrokerConfig;

pub use wren_broker::WrenBroker;

/// How long any single expected event may take before a test fails. Generous, so a
/// slow machine does not fail a correct broker; a hang still fails in bounded time.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A wren broker on a free port of 127.0.0.1 with default settings but `$SYS` off
/// (so it does not add traffic to byte-exact tests): [`WrenBroker::start`].
pub fn start_broker() -> WrenBroker {
    WrenBroker::start()
}

/// A wren broker on a free port of 127.0.0.1, after `adjust` changed its
/// configuration: [`WrenBroker::with_config`].
pub fn start_broker_with(adjust: impl FnOnce(&mut BrokerConfig)) -> WrenBroker {
    WrenBroker::with_config(adjust)
}

/// How long [`wait_until`] waits: a bound reached only when something is broken,
/// never because the machine is slow.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `condition` every few milliseconds for at most `limit`; whether it came
/// true.
pub fn poll(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `condition` until it holds, failing the test with `what` after
/// [`PATIENCE`].
pub fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    assert!(poll(PATIENCE, condition), "timed out waiting until {what}");
}

/// Polls the broker's statistics until `condition` holds, failing the test after
/// [`PATIENCE`] with `expected` and the last snapshot.
pub fn wait_for_stats(broker: &Broker, expected: &str, condition: impl Fn(&Stats) -> bool) {
    if !poll(PATIENCE, || condition(&broker.stats())) {
        panic!(
            "expected {expected} within {PATIENCE:?}; stats: {:#?}",
            broker.stats()
        );
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` different loopback ports nothing listens on right now (all are held open
/// until every one is chosen, so none comes out twice). Another program may take
/// one before the test binds it; a program that then fails to start says so.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("cannot find a free port"))
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .expect("a bound listener has an address")
            .port()
    })
}
