//! Limits, slow consumers and shutdown: DESIGN invariants 1, 4 and 7 held to real
//! sockets.

mod common;

use std::time::Duration;

use common::raw::{publish_packet, Raw};
use common::{start_broker, start_broker_with, wait_until};
use wren::protocol::{Packet, QoS};

/// Invariant 1 and 4: a subscriber that never reads costs a bounded amount of memory
/// and does not slow anyone else down; a reading subscriber gets every message.
#[test]
fn a_slow_consumer_does_not_stop_a_fast_one_and_its_backlog_stays_bounded() {
    const MAX_QUEUED: usize = 100;
    const MAX_INFLIGHT: usize = 20;
    // Enough traffic to fill the silent subscribers' socket buffers and outboxes.
    const PAYLOAD: usize = 64 * 1024;
    const MAX_MESSAGES: u16 = 4000;
    const BATCH: u16 = 50;
    let broker = start_broker_with(|config| {
        config.limits.max_queued_messages = MAX_QUEUED;
        config.limits.max_inflight_messages = MAX_INFLIGHT;
    });
    let addr = broker.local_addr();

    // Never reads: QoS 0 deliveries fill its socket, then its outbox, then drop.
    let mut silent_qos0 = Raw::connect(addr, "silent-qos0", true, false);
    silent_qos0.subscribe("load", QoS::AtMostOnce);
    // Never reads nor acknowledges: its persistent session fills its inflight
    // window and its queue, then drops.
    let mut silent_qos1 = Raw::connect(addr, "silent-qos1", false, false);
    silent_qos1.subscribe("load", QoS::AtLeastOnce);
    // Reads and acknowledges everything.
    let mut reader = Raw::connect(addr, "reader", true, false);
    reader.subscribe("load", QoS::AtLeastOnce);
    let mut publisher = Raw::connect(addr, "publisher", true, false);

    let payload = vec![0x5A; PAYLOAD];
    let mut sent = 0u16;
    while sent < MAX_MESSAGES {
        for n in sent + 1..=sent + BATCH {
            publisher.send_packet(publish_packet("load", &payload, QoS::AtLeastOnce, false, n));
        }
        for n in sent + 1..=sent + BATCH {
            let id = n.to_be_bytes();
            publisher.expect(&[0x40, 0x02, id[0], id[1]]);
        }
        // The reader takes the whole batch before the next one is published, so its
        // own queue never nears the limit: whatever is dropped is the silent ones'.
        for n in sent + 1..=sent + BATCH {
            let got = reader.read_publish();
            assert_eq!(got.payload.len(), PAYLOAD, "message {n}");
            let id = got.packet_id.expect("QoS 1").get().to_be_bytes();
            reader.send(&[0x40, 0x02, id[0], id[1]]);
        }
        sent += BATCH;
        let stats = broker.stats();
        let qos1_drops = u64::from(sent).saturating_sub((MAX_QUEUED + MAX_INFLIGHT) as u64);
        if stats.publish_dropped > qos1_drops {
            break; // the QoS 0 subscriber is dropping too
        }
    }
    let stats = broker.stats();
    assert!(
        sent < MAX_MESSAGES,
        "no QoS 0 message was dropped after {sent} messages: {stats:?}"
    );
    // The silent persistent session holds exactly its window and its queue.
    wait_until("the reader's acknowledgements are handled", || {
        let stats = broker.stats();
        stats.inflight_messages == MAX_INFLIGHT as u64 && stats.queued_messages == MAX_QUEUED as u64
    });
    let stats = broker.stats();
    eprintln!("slow consumer test: {sent} messages of {PAYLOAD} bytes; {stats:?}");
    assert!(stats.publish_dropped >= u64::from(sent) - (MAX_QUEUED + MAX_INFLIGHT) as u64);
    assert_eq!(
        stats.connected_clients, 4,
        "slow consumers are not disconnected"
    );
    reader.ping();
    publisher.ping();
}

#[test]
fn connections_beyond_max_connections_are_refused_at_accept() {
    let broker = start_broker_with(|config| config.listeners[0].max_connections = 2);
    let addr = broker.local_addr();
    let _first = Raw::connect(addr, "one", true, false);
    let _second = Raw::connect(addr, "two", true, false);
    let mut third = Raw::open(addr);
    third.expect_eof();
    assert_eq!(broker.stats().connected_clients, 2);
}

#[test]
fn shutdown_disconnects_everyone_and_returns() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut connected = Raw::connect(addr, "c", false, false);
    connected.subscribe("t", QoS::AtLeastOnce);
    // A socket still in its CONNECT handshake is closed too.
    let mut handshaking = Raw::open(addr);
    wait_until("the broker accepted both sockets", || {
        broker.stats().connections_accepted == 2
    });
    broker.shutdown();
    connected.expect_eof();
    handshaking.expect_eof();
    // The port is free again: the listener is closed.
    std::net::TcpListener::bind(addr).expect("the listener's port is released");
}

#[test]
fn dropping_the_broker_shuts_it_down() {
    let broker = start_broker();
    let mut client = Raw::connect(broker.local_addr(), "c", true, false);
    drop(broker);
    client.expect_eof();
}

#[test]
fn stats_count_what_crosses_the_wire() {
    let broker = start_broker();
    let mut client = Raw::connect(broker.local_addr(), "c", true, false);
    client.subscribe("t", QoS::AtMostOnce);
    client.publish0("t", b"12345", false);
    assert_eq!(&client.read_publish().payload[..], b"12345");
    client.ping();
    let stats = broker.stats();
    assert_eq!(stats.connected_clients, 1);
    assert_eq!(stats.subscriptions, 1);
    assert_eq!(stats.publish_received, 1);
    assert_eq!(stats.publish_sent, 1);
    assert_eq!(stats.publish_bytes_received, 5);
    // CONNECT, SUBSCRIBE, PUBLISH, PINGREQ in; CONNACK, SUBACK, PUBLISH, PINGRESP out.
    assert_eq!((stats.messages_received, stats.messages_sent), (4, 4));
    assert!(stats.bytes_received > 0 && stats.bytes_sent > 0);
}

#[test]
fn sys_topics_are_published_retained_and_clients_cannot_forge_them() {
    let broker = start_broker_with(|config| config.sys.interval = Duration::from_secs(1));
    let mut client = Raw::connect(broker.local_addr(), "c", true, false);
    client.publish0("$SYS/broker/version", b"forged", true);
    client.subscribe("$SYS/broker/version", QoS::AtMostOnce);
    let version = client.read_publish();
    assert!(version.retain);
    assert_eq!(
        String::from_utf8_lossy(&version.payload),
        format!("wren-mqtt version {}", env!("CARGO_PKG_VERSION"))
    );
    client.subscribe("$SYS/broker/uptime", QoS::AtMostOnce);
    let uptime = client.read_publish();
    let text = String::from_utf8_lossy(&uptime.payload).to_string();
    assert!(text.ends_with(" seconds"), "{text}");
    // The next tick publishes the new uptime, without RETAIN, to the subscriber.
    let next = client.read_packet();
    assert!(
        matches!(&next, Packet::Publish(p) if p.topic == "$SYS/broker/uptime" && !p.retain),
        "{next}"
    );
}
