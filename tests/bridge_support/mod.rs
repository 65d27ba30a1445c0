//! What the bridge tests share: a bridge configuration in a line, waiting for a
//! bridge to be up, and collecting what a subscriber got.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wren::bridge::Bridge;
use wren::client::{Client, ClientOptions, Message, Subscription};
use wren::config::{BridgeConfig, BridgeTopic, Direction};
use wren::protocol::QoS;

use crate::common::{wait_until, PATIENCE};

/// A bridge named `name` to `url`, carrying `topics` (filter, direction, QoS,
/// local prefix, remote prefix), reconnecting quickly.
pub fn bridge_config(
    name: &str,
    url: &str,
    topics: &[(&str, Direction, QoS, &str, &str)],
) -> BridgeConfig {
    let mut config = BridgeConfig::new(name, url);
    config.reconnect_max_interval = Duration::from_millis(500);
    config.keep_alive = Duration::from_secs(5);
    for &(filter, direction, qos, local, remote) in topics {
        config.topics.push(
            BridgeTopic::new(filter, direction, qos)
                .unwrap()
                .with_prefixes(local, remote),
        );
    }
    config
}

/// Waits until the bridge is connected and has counted `sent` messages passed out.
pub fn wait_connected(bridge: &Bridge) {
    wait_until(&format!("bridge {} connects", bridge.name()), || {
        bridge.status().connected()
    });
}

/// A client of the broker at `url` with a persistent session `id`, subscribed
/// to `filter` at `qos`.
pub fn subscriber(url: &str, id: &str, filter: &str, qos: QoS) -> (Client, Subscription) {
    let options = ClientOptions::from_url(url)
        .unwrap()
        .with_client_id(id)
        .with_clean_session(false)
        .with_reconnect(wren::client::Reconnect {
            max_interval: Duration::from_millis(500),
            ..Default::default()
        });
    let client = Client::connect(options).unwrap();
    let subscription = client.subscribe(filter, qos).unwrap();
    (client, subscription)
}

/// The next message, failing the test if none comes in time.
pub fn next(subscription: &Subscription) -> Message {
    subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message in time")
}

/// Whether a message comes within `wait` (a bounded look for one that must not).
pub fn nothing_more(subscription: &Subscription, wait: Duration) -> Option<Message> {
    subscription.recv_timeout(wait).unwrap()
}

/// Takes messages until every payload of `expected` has come at least once;
/// returns how many times each came.
pub fn collect(subscription: &Subscription, expected: &[String]) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + PATIENCE * 3;
    while !expected.iter().all(|p| seen.contains_key(p)) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "missing: {:?}", missing(expected, &seen));
        if let Some(message) = subscription.recv_timeout(left).unwrap() {
            *seen
                .entry(message.payload_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    seen
}

fn missing(expected: &[String], seen: &HashMap<String, usize>) -> Vec<String> {
    expected
        .iter()
        .filter(|p| !seen.contains_key(*p))
        .cloned()
        .collect()
}

pub const OUT: Direction = Direction::Out;
pub const IN: Direction = Direction::In;
pub const BOTH: Direction = Direction::Both;

/// Publishes `prefix-N` on `topic` at `qos` from a new client of `url`, each
/// waited for, until 50 more have gone after `restarted` is raised (at most
/// 5,000): a stream that is surely under way across the restart.
pub fn publish_across(
    url: &str,
    topic: &str,
    prefix: &str,
    qos: QoS,
    restarted: &std::sync::atomic::AtomicBool,
) -> Vec<String> {
    let publisher = Client::connect(url).unwrap();
    let mut sent = Vec::new();
    let mut after = 0;
    for n in 0..5_000 {
        let payload = format!("{prefix}-{n}");
        publisher
            .publish(topic, payload.clone(), qos, false)
            .unwrap();
        sent.push(payload);
        if restarted.load(std::sync::atomic::Ordering::SeqCst) {
            after += 1;
            if after == 50 {
                break;
            }
        }
    }
    sent
}
