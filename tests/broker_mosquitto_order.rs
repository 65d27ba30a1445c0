//! Which packets the broker sends, and in what order, where mosquitto's own broker
//! tests (`test/broker/` of mosquitto 2.0.11) pin it down: each test here replays
//! one of them with the same client ids, packet ids and payloads, and compares
//! exact bytes.
//!
//! - QoS 2 from a client that is also a subscriber (`02-subpub-qos2.py`).
//! - The old connection's will on a session takeover (`07-will-takeover.py`).
//! - A QoS 2 PUBLISH and PUBREL repeated across reconnects, at MQTT 3.1 and 3.1.1
//!   (`03-publish-c2b-disconnect-qos2.py`).

mod common;

use std::net::SocketAddr;

use common::raw::{connect_packet, subscribe_packet, will, Raw};
use common::{start_broker, wait_until};
use wren::protocol::{ProtocolVersion, QoS};

/// `02-subpub-qos2.py`: a client subscribed at QoS 2 to the topic it publishes to.
///
/// The PUBREC must come before the broker's copy of the message. mosquitto routes
/// an incoming QoS 2 message only when its PUBREL arrives; after the PUBREL the
/// PUBCOMP and the copy may come in either order. The publisher's own
/// subscription is the one subscriber whose order a single socket can observe.
#[test]
fn qos2_publisher_gets_pubrec_before_any_subscriber_gets_the_message() {
    let broker = start_broker();
    let mut client = Raw::connect(broker.local_addr(), "subpub-qos2-test", true, false);
    client.send_packet(subscribe_packet(530, &[("subpub/qos2", QoS::ExactlyOnce)]));
    client.expect(&[0x90, 0x03, 0x02, 0x12, 0x02]); // SUBACK 530, QoS 2 granted

    client.send(&subpub_qos2_publish([0x01, 0x2D])); // packet id 301
    client.expect(&[0x50, 0x02, 0x01, 0x2D]); // PUBREC 301, before anything else
    client.send(&[0x62, 0x02, 0x01, 0x2D]); // PUBREL 301
    client.expect_either_order(
        &[0x70, 0x02, 0x01, 0x2D],          // PUBCOMP 301
        &subpub_qos2_publish([0x00, 0x01]), // the copy, the broker's packet id 1
    );

    // The broker's side of the second flow.
    client.send(&[0x50, 0x02, 0x00, 0x01]); // PUBREC 1
    client.expect(&[0x62, 0x02, 0x00, 0x01]); // PUBREL 1
    client.send(&[0x70, 0x02, 0x00, 0x01]); // PUBCOMP 1
    client.ping();
}

/// PUBLISH QoS 2 of "message" to `subpub/qos2` with the given packet id.
fn subpub_qos2_publish(packet_id: [u8; 2]) -> Vec<u8> {
    [
        &[0x34, 0x16][..], // PUBLISH, QoS 2; remaining length 22
        &[0x00, 0x0B],     // topic name length 11
        b"subpub/qos2",    // topic name
        &packet_id,        // packet id
        b"message",        // payload
    ]
    .concat()
}

/// `07-will-takeover.py` at MQTT 3.1.1: `will-test`, with a will, is taken over by
/// a second `will-test` connection. Session present is set only when both
/// connections have CleanSession 0; the old will is published unless they both do.
fn takeover(old_clean: bool, new_clean: bool) {
    let both_persistent = !old_clean && !new_clean;
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = Raw::connect(addr, "will-helper", true, false);
    watcher.subscribe("will/test", QoS::AtMostOnce);

    let mut connect = connect_packet("will-test", old_clean, 60);
    connect.will = Some(will("will/test", b"LWT", QoS::AtMostOnce, false));
    let mut old = Raw::connect_with(addr, connect);
    old.send(&CLIENT_READY);
    watcher.expect(&CLIENT_READY);

    let mut new = Raw::connect(addr, "will-test", new_clean, both_persistent);
    // The broker closes the connection it took the session from [MQTT-3.1.4-2].
    old.expect_eof();
    if !both_persistent {
        watcher.expect(&[
            0x30, 0x0E, // PUBLISH, QoS 0; remaining length 14
            0x00, 0x09, b'w', b'i', b'l', b'l', b'/', b't', b'e', b's', b't', // "will/test"
            b'L', b'W', b'T', // the old connection's will
        ]);
    }
    new.send(&CLIENT_READY);
    // Then the new connection's message, and nothing else.
    watcher.expect(&CLIENT_READY);
    watcher.ping();
}

/// PUBLISH QoS 0 of "Client ready" to `will/test`.
const CLIENT_READY: [u8; 25] = [
    0x30, 0x17, // PUBLISH, QoS 0; remaining length 23
    0x00, 0x09, b'w', b'i', b'l', b'l', b'/', b't', b'e', b's', b't', // "will/test"
    b'C', b'l', b'i', b'e', b'n', b't', b' ', b'r', b'e', b'a', b'd', b'y',
];

#[test]
fn taking_over_a_persistent_session_with_a_persistent_reconnect_does_not_publish_the_will() {
    takeover(false, false);
}

#[test]
fn taking_over_a_clean_session_publishes_the_old_connections_will() {
    takeover(true, true);
    takeover(true, false);
}

#[test]
fn a_clean_reconnect_taking_over_a_persistent_session_publishes_the_old_connections_will() {
    takeover(false, true);
}

/// `03-publish-c2b-disconnect-qos2.py`: a client with CleanSession 0 publishes at
/// QoS 2 and drops the connection twice, once before the PUBREC reached it and once
/// before the PUBCOMP did. After each reconnect it repeats its last packet, and the
/// broker answers it: the repeated PUBLISH gets PUBREC again, the repeated PUBREL
/// gets PUBCOMP although the packet id is already released.
///
/// At MQTT 3.1 the repeated PUBREL carries DUP (`0x6A`): 3.1 gives PUBREL a DUP flag,
/// and mosquitto checks PUBREL's fixed-header flags only from 3.1.1 on.
fn qos2_publish_across_reconnects(protocol: ProtocolVersion, repeated_pubrel: [u8; 4]) {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut helper = connect(addr, protocol, "pub-qos2-disco-helper", true);
    // A subscriber, so that the broker must finish the QoS 2 flow.
    helper.send_packet(subscribe_packet(
        3265,
        &[("qos2/disconnect/test", QoS::ExactlyOnce)],
    ));
    helper.expect(&[0x90, 0x03, 0x0C, 0xC1, 0x02]); // SUBACK 3265, QoS 2 granted

    let mut client = connect(addr, protocol, "pub-qos2-disco-test", false);
    client.send(&disconnect_publish(false));
    client.expect(&[0x50, 0x02, 0x00, 0x01]); // PUBREC 1
    let mut client = reconnect(client, &broker, protocol);
    client.send(&disconnect_publish(true));
    client.expect(&[0x50, 0x02, 0x00, 0x01]); // PUBREC 1 again
    client.send(&[0x62, 0x02, 0x00, 0x01]); // PUBREL 1
    client.expect(&[0x70, 0x02, 0x00, 0x01]); // PUBCOMP 1
    let mut client = reconnect(client, &broker, protocol);
    client.send(&repeated_pubrel);
    client.expect(&[0x70, 0x02, 0x00, 0x01]); // PUBCOMP 1 again
}

/// Connects with `protocol`, keep-alive 60, expecting CONNACK 0 without session
/// present: MQTT 3.1 has no such flag, and these sessions are new at 3.1.1.
fn connect(addr: SocketAddr, protocol: ProtocolVersion, client_id: &str, clean: bool) -> Raw {
    let mut connect = connect_packet(client_id, clean, 60);
    connect.protocol = protocol;
    Raw::connect_with(addr, connect)
}

/// Closes `client`'s connection, waits until the broker has seen it go (so the next
/// CONNECT is a reconnect, not a takeover), and connects again with CleanSession 0.
fn reconnect(client: Raw, broker: &wren::Broker, protocol: ProtocolVersion) -> Raw {
    drop(client);
    wait_until("the broker saw the connection close", || {
        broker.stats().connected_clients == 1
    });
    let mut again = Raw::open(broker.local_addr());
    let mut connect = connect_packet("pub-qos2-disco-test", false, 60);
    connect.protocol = protocol;
    again.send_packet(connect);
    match protocol {
        ProtocolVersion::V3_1 => again.expect(&[0x20, 0x02, 0x00, 0x00]),
        // Session present [MQTT-3.2.2-2].
        _ => again.expect(&[0x20, 0x02, 0x01, 0x00]),
    }
    again
}

/// PUBLISH QoS 2, packet id 1, of "disconnect-message" to `qos2/disconnect/test`.
fn disconnect_publish(dup: bool) -> Vec<u8> {
    let first = if dup { 0x3C } else { 0x34 }; // PUBLISH, QoS 2, DUP 1 or 0
    [
        &[first, 0x2A][..],      // remaining length 42
        &[0x00, 0x14],           // topic name length 20
        b"qos2/disconnect/test", // topic name
        &[0x00, 0x01],           // packet id 1
        b"disconnect-message",   // payload
    ]
    .concat()
}

#[test]
fn mqtt31_a_pubrel_repeated_with_dup_after_reconnect_gets_pubcomp() {
    qos2_publish_across_reconnects(ProtocolVersion::V3_1, [0x6A, 0x02, 0x00, 0x01]);
}

#[test]
fn mqtt311_a_pubrel_repeated_after_reconnect_gets_pubcomp() {
    qos2_publish_across_reconnects(ProtocolVersion::V3_1_1, [0x62, 0x02, 0x00, 0x01]);
}
