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
    common::wait_until("connected_clients is 2", || {
        broker.stats().connected_clients == 2
    });
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

/// Publishes `count` QoS 0 messages of `size` bytes to `topic` on its own
/// connection, each starting with the publisher's number and its sequence number.
fn flood(
    addr: std::net::SocketAddr,
    publisher: u32,
    topic: &'static str,
    count: u32,
    size: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut raw = Raw::connect(addr, &format!("flood-{publisher}"), true, false);
        let mut payload = vec![0u8; size];
        let mut batch = Vec::new();
        for sequence in 0..count {
            payload[..4].copy_from_slice(&publisher.to_be_bytes());
            payload[4..8].copy_from_slice(&sequence.to_be_bytes());
            batch.extend(common::raw::encode(publish_packet(
                topic,
                &payload,
                QoS::AtMostOnce,
                false,
                0,
            )));
            if batch.len() > 64 * 1024 || sequence + 1 == count {
                raw.send(&batch);
                batch.clear();
            }
        }
        raw.ping(); // everything before it has been read by the broker
    })
}

/// Reads `expected` QoS 0 messages sent by [`flood`] and checks that each publisher's
/// arrive complete and in order.
fn read_flood(subscriber: &mut Raw, publishers: u32, expected: u32) {
    let mut next = vec![0u32; publishers as usize];
    for n in 0..expected {
        let publish = subscriber.read_publish();
        let publisher = u32::from_be_bytes(publish.payload[..4].try_into().unwrap());
        let sequence = u32::from_be_bytes(publish.payload[4..8].try_into().unwrap());
        assert_eq!(
            sequence, next[publisher as usize],
            "message {n}: publisher {publisher} skipped or repeated messages"
        );
        next[publisher as usize] += 1;
    }
}

/// Many publishers flood one subscriber with QoS 0 faster than it reads: rather than
/// drop what overflows the subscriber's outbox, the broker pauses the publishers'
/// readers until it drained, so the subscriber gets every message.
#[test]
fn qos_0_publishers_are_paused_for_a_slow_subscriber_rather_than_dropped() {
    const PUBLISHERS: u32 = 20;
    const MESSAGES: u32 = 1000;
    // Larger than the socket buffers can hide: 20 MB in all.
    const SIZE: usize = 1024;
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut subscriber = Raw::connect(addr, "fan-in", true, false);
    subscriber.subscribe("fan/in", QoS::AtMostOnce);

    let floods: Vec<_> = (0..PUBLISHERS)
        .map(|n| flood(addr, n, "fan/in", MESSAGES, SIZE))
        .collect();
    // A slow start: the subscriber's socket and then its outbox fill up, and the
    // publishers must be paused (well within the broker's stall timeout).
    std::thread::sleep(Duration::from_millis(300));
    read_flood(&mut subscriber, PUBLISHERS, PUBLISHERS * MESSAGES);
    for flood in floods {
        flood.join().expect("a publisher failed");
    }
    let stats = broker.stats();
    assert_eq!(stats.publish_dropped, 0, "{stats:?}");
}

/// A subscriber that stops reading pauses its publishers only until the broker sees
/// that it is stalled; then its own QoS 0 messages are dropped (and counted) and
/// everyone else goes on at full speed.
#[test]
fn a_stalled_subscriber_does_not_hold_up_publishers_for_long() {
    const MESSAGES: u32 = 20_000;
    const SIZE: usize = 1024;
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut silent = Raw::connect(addr, "silent", true, false);
    silent.subscribe("load", QoS::AtMostOnce);
    let mut reader = Raw::connect(addr, "reader", true, false);
    reader.subscribe("load", QoS::AtMostOnce);

    let publisher = flood(addr, 0, "load", MESSAGES, SIZE);
    read_flood(&mut reader, 1, MESSAGES);
    publisher.join().expect("the publisher failed");
    let stats = broker.stats();
    assert!(stats.publish_dropped > 0, "{stats:?}");
    // The publisher has gone; both subscribers stay, the silent one included.
    wait_until("only the subscribers are connected", || {
        broker.stats().connected_clients == 2
    });
}
