//! The broker's MQTT 5 behaviour end to end: CONNACK properties, session expiry,
//! will delay, topic aliases both ways, Receive Maximum both ways, Maximum Packet
//! Size, reason codes, subscription options and identifiers, shared subscriptions,
//! message expiry, property forwarding between versions, the broker's DISCONNECT
//! and enhanced authentication. Raw MQTT 5 over real sockets, encoded with wren's own
//! codec ([`V5Peer`]); every read times out. Test names cite the statement of MQTT 5
//! they check (`_mqtt5_` and its id in `spec/mqtt-5-conformance.md`); a rule without
//! an id is named in words and its section cited in a comment.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::peer::Peer;
use common::v5::{
    connect_v5, describe, filter, message, props, ChallengeHook, Next, V5Peer, METHOD,
};
use common::{start_broker, start_broker_with, TIMEOUT};
use wren::broker::{ClientInfo, Hook};
use wren::protocol::{
    Auth, ConnAck, Disconnect, Packet, Properties, PubRec, Publish, QoS, ReasonCode,
    RetainHandling, TopicFilter, TopicName, Will,
};

// ---------------------------------------------------------------------------------
// Helpers

/// Connects `client_id` with clean start 1 and `properties` (none when `None`),
/// expecting CONNACK 0x00.
fn connect(
    addr: SocketAddr,
    client_id: &str,
    properties: Option<Box<Properties>>,
) -> (V5Peer, ConnAck) {
    let mut connect = connect_v5(client_id);
    connect.properties = properties;
    V5Peer::accepted(addr, connect)
}

/// Connects `client_id` with clean start 1 and no properties.
fn client(addr: SocketAddr, client_id: &str) -> V5Peer {
    connect(addr, client_id, None).0
}

/// Connects `client_id` with `clean` start and a Session Expiry Interval; returns
/// the peer and the session-present flag.
fn session(addr: SocketAddr, client_id: &str, clean: bool, expiry: u32) -> (V5Peer, bool) {
    let mut connect = connect_v5(client_id);
    connect.clean_session = clean;
    connect.properties = props(|p| p.session_expiry_interval = Some(expiry));
    let (peer, connack) = V5Peer::accepted(addr, connect);
    (peer, connack.session_present)
}

/// A client subscribed to `topic_filter` at `qos`.
fn subscriber(addr: SocketAddr, client_id: &str, topic_filter: &str, qos: QoS) -> V5Peer {
    let mut peer = client(addr, client_id);
    peer.subscribe(topic_filter, qos);
    peer
}

/// `message` with `properties`.
fn with_props(mut publish: Publish, properties: Option<Box<Properties>>) -> Publish {
    publish.properties = properties;
    publish
}

/// `message` with RETAIN 1.
fn retained(mut publish: Publish) -> Publish {
    publish.retain = true;
    publish
}

/// A DISCONNECT with `code` and `properties`.
fn disconnect(code: ReasonCode, properties: Option<Box<Properties>>) -> Disconnect {
    let mut disconnect = Disconnect::new(code);
    disconnect.properties = properties;
    disconnect
}

/// An AUTH with `code`, the test method and `data`.
fn auth(code: ReasonCode, data: &[u8]) -> Auth {
    let mut auth = Auth::new(code);
    auth.properties = props(|p| {
        p.authentication_method = Some(METHOD.to_string());
        p.authentication_data = Some(Bytes::copy_from_slice(data));
    });
    auth
}

/// A will on `topic` with `properties`.
fn will(topic: &str, payload: &[u8], properties: Option<Box<Properties>>) -> Will {
    let mut will = Will::new(
        TopicName::new(topic).unwrap(),
        Bytes::copy_from_slice(payload),
        QoS::AtMostOnce,
        false,
    );
    will.properties = properties;
    will
}

/// Connects `client_id` with `will`, clean start 1 and Session Expiry Interval
/// `expiry`.
fn with_will(addr: SocketAddr, client_id: &str, will: Will, expiry: u32) -> V5Peer {
    let mut connect = connect_v5(client_id);
    connect.will = Some(will);
    connect.properties = props(|p| p.session_expiry_interval = Some(expiry));
    V5Peer::accepted(addr, connect).0
}

/// The payloads of `publishes`, as strings.
fn payloads(publishes: &[Publish]) -> Vec<String> {
    publishes
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

/// Publishes a QoS 0 "marker" to `topic` from a client of its own, then expects the
/// marker as `watcher`'s next message: nothing was sent to `topic` before it.
fn expect_only_marker(addr: SocketAddr, watcher: &mut V5Peer, topic: &str) {
    let mut marker = client(addr, "marker");
    marker.send(message(topic, b"marker", QoS::AtMostOnce, 0));
    marker.disconnect();
    let publish = watcher.expect_publish("the marker");
    assert_eq!(&publish.payload[..], b"marker", "something came before it");
}

/// Reads from `peers` until `total` publishes have arrived among them (or the
/// time limit is reached); returns each peer's payloads.
fn collect(peers: &mut [&mut V5Peer], total: usize) -> Vec<Vec<String>> {
    let mut got: Vec<Vec<String>> = vec![Vec::new(); peers.len()];
    let deadline = Instant::now() + TIMEOUT;
    while got.iter().map(Vec::len).sum::<usize>() < total && Instant::now() < deadline {
        for (peer, got) in peers.iter_mut().zip(got.iter_mut()) {
            if let Next::Packet(Packet::Publish(p)) = peer.next_within(Duration::from_millis(50)) {
                got.push(String::from_utf8_lossy(&p.payload).into_owned());
            }
        }
    }
    got
}

/// Refuses publishing to `forbidden` and subscribing to `forbidden/#`.
struct Refuser;

impl Hook for Refuser {
    fn authorize_publish(&self, _: &ClientInfo, topic: &TopicName) -> bool {
        topic.as_str() != "forbidden"
    }

    fn authorize_subscribe(&self, _: &ClientInfo, filter: &TopicFilter) -> bool {
        filter.as_str() != "forbidden/#"
    }
}

/// A broker with the [`ChallengeHook`].
fn challenge_broker() -> common::WrenBroker {
    let broker = start_broker();
    broker.add_hook(Arc::new(ChallengeHook));
    broker
}

/// Sends a CONNECT naming the test method and expects the broker's challenge (AUTH
/// 0x18 with the method and nonce); returns the peer and the nonce.
fn challenged(addr: SocketAddr, client_id: &str) -> (V5Peer, Vec<u8>) {
    let mut connect = connect_v5(client_id);
    connect.properties = props(|p| p.authentication_method = Some(METHOD.to_string()));
    let (peer, next) = V5Peer::connect(addr, connect);
    let Next::Packet(Packet::Auth(challenge)) = next else {
        panic!("expected AUTH 0x18, got {}", describe(&next));
    };
    assert_eq!(challenge.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    let properties = challenge.properties();
    assert_eq!(properties.authentication_method.as_deref(), Some(METHOD));
    let nonce = properties
        .authentication_data
        .clone()
        .expect("the challenge carries the nonce")
        .to_vec();
    (peer, nonce)
}

fn reversed(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().copied().collect()
}

// ---------------------------------------------------------------------------------
// 1. CONNACK

#[test]
fn connack_of_a_v5_connect_carries_the_brokers_limits_mqtt5_3_1_4_5() {
    let broker = start_broker();
    let (_peer, connack) = connect(broker.local_addr(), "limits", None);
    assert_eq!(connack.code, ReasonCode::SUCCESS);
    assert!(!connack.session_present);
    let properties = connack.properties();
    assert_eq!(properties.topic_alias_maximum, Some(10));
    assert_eq!(properties.maximum_packet_size, Some(1024 * 1024));
    assert_eq!(properties.receive_maximum, Some(20));
    assert_eq!(properties.server_keep_alive, None);
    assert_eq!(properties.assigned_client_identifier, None);
}

#[test]
fn a_keep_alive_above_the_maximum_gets_a_server_keep_alive() {
    // Section 3.2.2.3.14: the broker tells the client the keep-alive it holds it to.
    let broker = start_broker_with(|config| config.limits.max_keep_alive = 30);
    let mut connect = connect_v5("slow");
    connect.keep_alive = 120;
    let (_peer, connack) = V5Peer::accepted(broker.local_addr(), connect);
    assert_eq!(connack.properties().server_keep_alive, Some(30));
}

#[test]
fn an_empty_client_id_gets_an_assigned_client_identifier_mqtt5_3_1_3_6_and_3_2_2_16() {
    let broker = start_broker();
    let mut seen = BTreeSet::new();
    for clean in [true, false] {
        let mut connect = connect_v5("");
        connect.clean_session = clean;
        let (_peer, connack) = V5Peer::accepted(broker.local_addr(), connect);
        let assigned = connack
            .properties()
            .assigned_client_identifier
            .clone()
            .expect("an Assigned Client Identifier");
        assert!(!assigned.is_empty());
        assert!(seen.insert(assigned), "the same id was assigned twice");
    }
}

// ---------------------------------------------------------------------------------
// 2. Session expiry

#[test]
fn a_session_with_expiry_0_ends_with_its_connection_mqtt5_4_1_0_2() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut peer, _) = session(addr, "brief", true, 0);
    peer.subscribe("t", QoS::AtLeastOnce);
    peer.disconnect();
    let (_peer, present) = session(addr, "brief", false, 0);
    assert!(!present, "the session outlived its connection");
}

#[test]
fn a_session_resumed_within_its_expiry_keeps_queued_messages_mqtt5_3_1_2_5_and_3_1_2_23() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut peer, _) = session(addr, "kept", true, 5);
    peer.subscribe("t", QoS::AtLeastOnce);
    peer.disconnect();
    let mut publisher = client(addr, "pub");
    publisher.publish1(message("t", b"one", QoS::AtLeastOnce, 1));
    publisher.publish1(message("t", b"two", QoS::AtLeastOnce, 2));
    let (mut peer, present) = session(addr, "kept", false, 5);
    assert!(present);
    let got = [peer.expect_publish("one"), peer.expect_publish("two")];
    assert_eq!(payloads(&got), ["one", "two"]);
    assert!(got.iter().all(|p| p.qos == QoS::AtLeastOnce));
}

#[test]
fn a_session_is_gone_once_its_expiry_has_passed_mqtt5_4_1_0_2() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut peer, _) = session(addr, "short", true, 1);
    peer.subscribe("t", QoS::AtLeastOnce);
    peer.disconnect();
    std::thread::sleep(Duration::from_millis(2200));
    let (_peer, present) = session(addr, "short", false, 1);
    assert!(!present, "the session outlived its expiry");
}

#[test]
fn disconnect_with_a_session_expiry_interval_changes_it() {
    // Section 3.14.2.2.2: DISCONNECT may change the expiry CONNECT set (here 10 to 0).
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut peer, _) = session(addr, "changed", true, 10);
    peer.subscribe("t", QoS::AtLeastOnce);
    peer.disconnect_with(disconnect(
        ReasonCode::NORMAL_DISCONNECTION,
        props(|p| p.session_expiry_interval = Some(0)),
    ));
    let (_peer, present) = session(addr, "changed", false, 0);
    assert!(!present, "the session outlived the expiry DISCONNECT set");
}

#[test]
fn disconnect_setting_an_expiry_when_connect_had_0_is_a_protocol_error() {
    // Section 3.14.2.2.2: a non-zero Session Expiry Interval in DISCONNECT after 0
    // in CONNECT is a Protocol Error.
    let broker = start_broker();
    let (mut peer, _) = session(broker.local_addr(), "late", true, 0);
    peer.send(disconnect(
        ReasonCode::NORMAL_DISCONNECTION,
        props(|p| p.session_expiry_interval = Some(5)),
    ));
    peer.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
}

// ---------------------------------------------------------------------------------
// 3. Will delay

#[test]
fn a_will_with_a_delay_is_published_only_after_the_delay_mqtt5_3_1_2_8() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "will/t", QoS::AtMostOnce);
    let dying = with_will(
        addr,
        "dying",
        will(
            "will/t",
            b"gone",
            props(|p| p.will_delay_interval = Some(2)),
        ),
        10,
    );
    drop(dying);
    watcher.expect_silence(Duration::from_millis(1000), "the will is delayed");
    watcher.set_timeout(TIMEOUT);
    let publish = watcher.expect_publish("the will after its delay");
    assert_eq!(&publish.payload[..], b"gone");
}

#[test]
fn a_delayed_will_is_not_sent_when_the_client_comes_back_in_time_mqtt5_3_1_3_9() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "will/t", QoS::AtMostOnce);
    let dying = with_will(
        addr,
        "back",
        will(
            "will/t",
            b"gone",
            props(|p| p.will_delay_interval = Some(2)),
        ),
        10,
    );
    drop(dying);
    let (_back, present) = session(addr, "back", false, 10);
    assert!(present);
    watcher.expect_silence(Duration::from_millis(3000), "no will after the delay");
}

#[test]
fn a_will_is_published_when_the_session_ends_before_its_delay_mqtt5_3_1_2_8() {
    // Will Delay 30 s, session expiry 1 s: the will goes when the session ends.
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "will/t", QoS::AtMostOnce);
    let dying = with_will(
        addr,
        "ending",
        will(
            "will/t",
            b"ended",
            props(|p| p.will_delay_interval = Some(30)),
        ),
        1,
    );
    drop(dying);
    watcher.set_timeout(TIMEOUT);
    let publish = watcher.expect_publish("the will when the session ends");
    assert_eq!(&publish.payload[..], b"ended");
}

#[test]
fn a_will_keeps_its_properties_and_user_property_order_mqtt5_3_1_3_10() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "will/t", QoS::AtMostOnce);
    let user = vec![
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), "2".to_string()),
        ("a".to_string(), "3".to_string()),
    ];
    let dying = with_will(
        addr,
        "dying",
        will(
            "will/t",
            b"gone",
            props(|p| {
                p.content_type = Some("text/plain".to_string());
                p.user_properties = user.clone();
            }),
        ),
        0,
    );
    drop(dying);
    let publish = watcher.expect_publish("the will");
    assert_eq!(
        publish.properties().content_type.as_deref(),
        Some("text/plain")
    );
    assert_eq!(publish.properties().user_properties, user);
}

#[test]
fn disconnect_0x04_publishes_the_will_mqtt5_3_14_4_3() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "will/t", QoS::AtMostOnce);
    let leaving = with_will(addr, "leaving", will("will/t", b"asked", None), 0);
    leaving.disconnect_with(disconnect(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE, None));
    let publish = watcher.expect_publish("the will");
    assert_eq!(&publish.payload[..], b"asked");
}

#[test]
fn disconnect_0x00_discards_the_will_mqtt5_3_14_4_3_and_3_1_2_10() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "will/t", QoS::AtMostOnce);
    let leaving = with_will(addr, "leaving", will("will/t", b"unwanted", None), 0);
    leaving.disconnect();
    common::wait_until("the broker saw the client go", || {
        broker.gone("leaving") >= 1
    });
    expect_only_marker(addr, &mut watcher, "will/t");
}

// ---------------------------------------------------------------------------------
// 4. Topic aliases from the client

#[test]
fn a_topic_alias_from_the_client_is_resolved_for_subscribers_mqtt5_3_3_2_12() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "a/b", QoS::AtMostOnce);
    let mut publisher = client(addr, "aliaser");
    publisher.send(with_props(
        message("a/b", b"first", QoS::AtMostOnce, 0),
        props(|p| p.topic_alias = Some(1)),
    ));
    let mut by_alias = message("a/b", b"second", QoS::AtMostOnce, 0);
    by_alias.topic = TopicName::empty_for_alias();
    publisher.send(with_props(by_alias, props(|p| p.topic_alias = Some(1))));
    for payload in ["first", "second"] {
        let publish = watcher.expect_publish(payload);
        assert_eq!(&publish.payload[..], payload.as_bytes());
        assert_eq!(publish.topic.as_str(), "a/b");
        assert_eq!(publish.properties().topic_alias, None);
    }
}

#[test]
fn topic_alias_0_is_refused_with_0x94_mqtt5_3_3_2_8() {
    let broker = start_broker();
    let mut publisher = client(broker.local_addr(), "zero");
    // wren's encoder refuses alias 0, so the bytes are written by hand.
    #[rustfmt::skip]
    publisher.send_bytes(&[
        0x30, 10, 0, 3, b'a', b'/', b'b', // PUBLISH QoS 0 to "a/b"
        3, 0x23, 0, 0, // properties: Topic Alias 0
        b'x',
    ]);
    publisher.expect_disconnect(ReasonCode::TOPIC_ALIAS_INVALID);
}

#[test]
fn a_topic_alias_above_the_maximum_is_refused_with_0x94_mqtt5_3_2_2_17() {
    let broker = start_broker();
    let mut publisher = client(broker.local_addr(), "eleven");
    publisher.send(with_props(
        message("a/b", b"x", QoS::AtMostOnce, 0),
        props(|p| p.topic_alias = Some(11)),
    ));
    publisher.expect_disconnect(ReasonCode::TOPIC_ALIAS_INVALID);
}

#[test]
fn an_empty_topic_with_an_unknown_alias_is_a_protocol_error() {
    // Section 3.3.2.3.4: a PUBLISH naming its topic by an alias never set.
    let broker = start_broker();
    let mut publisher = client(broker.local_addr(), "unknown");
    let mut publish = message("a/b", b"x", QoS::AtMostOnce, 0);
    publish.topic = TopicName::empty_for_alias();
    publisher.send(with_props(publish, props(|p| p.topic_alias = Some(3))));
    publisher.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
}

// ---------------------------------------------------------------------------------
// 5. Topic aliases to the client

#[test]
fn outgoing_topic_aliases_replace_a_topic_sent_before_mqtt5_3_1_2_26() {
    let broker = start_broker_with(|config| config.limits.outgoing_topic_aliases = true);
    let addr = broker.local_addr();
    let (mut watcher, _) = connect(addr, "watcher", props(|p| p.topic_alias_maximum = Some(1)));
    watcher.subscribe("a/b", QoS::AtMostOnce);
    let mut publisher = client(addr, "pub");
    for payload in [&b"1"[..], b"2", b"3"] {
        publisher.send(message("a/b", payload, QoS::AtMostOnce, 0));
    }
    let first = watcher.expect_publish("the first message");
    assert_eq!(first.topic.as_str(), "a/b");
    assert_eq!(first.properties().topic_alias, Some(1));
    for _ in 0..2 {
        let later = watcher.expect_publish("a later message");
        assert_eq!(
            later.topic.as_str(),
            "",
            "the topic is replaced by its alias"
        );
        assert_eq!(later.properties().topic_alias, Some(1));
    }
}

#[test]
fn no_topic_aliases_reach_a_client_without_a_topic_alias_maximum_mqtt5_3_1_2_27() {
    let broker = start_broker_with(|config| config.limits.outgoing_topic_aliases = true);
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "a/b", QoS::AtMostOnce);
    expect_no_aliases(addr, &mut watcher);
}

#[test]
fn the_broker_sends_no_topic_aliases_by_default() {
    // `outgoing_topic_aliases` is off by default, as in mosquitto (section 3.3.2.3.4
    // leaves it to the server).
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut watcher, _) = connect(addr, "watcher", props(|p| p.topic_alias_maximum = Some(5)));
    watcher.subscribe("a/b", QoS::AtMostOnce);
    expect_no_aliases(addr, &mut watcher);
}

/// Publishes twice to `a/b` and checks that `watcher`, subscribed to it, gets both
/// with the topic in full and no Topic Alias.
fn expect_no_aliases(addr: SocketAddr, watcher: &mut V5Peer) {
    let mut publisher = client(addr, "pub");
    publisher.send(message("a/b", b"1", QoS::AtMostOnce, 0));
    publisher.send(message("a/b", b"2", QoS::AtMostOnce, 0));
    for _ in 0..2 {
        let publish = watcher.expect_publish("a message");
        assert_eq!(publish.topic.as_str(), "a/b");
        assert_eq!(publish.properties().topic_alias, None);
    }
}

// ---------------------------------------------------------------------------------
// 6. Receive Maximum

#[test]
fn the_broker_keeps_within_the_clients_receive_maximum_mqtt5_3_3_4_9() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut watcher, _) = connect(addr, "watcher", props(|p| p.receive_maximum = Some(2)));
    watcher.auto_ack = false;
    watcher.subscribe("t", QoS::AtLeastOnce);
    let mut publisher = client(addr, "pub");
    for n in 1..=5u16 {
        publisher.publish1(message("t", n.to_string().as_bytes(), QoS::AtLeastOnce, n));
    }
    let first = watcher.expect_publish("message 1");
    let second = watcher.expect_publish("message 2");
    assert_eq!(payloads(&[first.clone(), second]), ["1", "2"]);
    watcher.expect_silence(Duration::from_millis(500), "the window is full");
    watcher.send(wren::protocol::PubAck::new(first.packet_id.unwrap()));
    let third = watcher.expect_publish("message 3 after a PUBACK");
    assert_eq!(&third.payload[..], b"3");
    watcher.expect_silence(Duration::from_millis(300), "the window is full again");
}

#[test]
fn a_client_exceeding_the_brokers_receive_maximum_is_disconnected_with_0x93() {
    // Section 3.3.4: more unacknowledged QoS 2 PUBLISHes than the CONNACK's Receive
    // Maximum is 0x93 "Receive Maximum exceeded".
    let broker = start_broker_with(|config| config.limits.receive_maximum = 3);
    let (mut publisher, connack) = connect(broker.local_addr(), "eager", None);
    assert_eq!(connack.properties().receive_maximum, Some(3));
    for n in 1..=4u16 {
        publisher.send(message("t", b"x", QoS::ExactlyOnce, n));
    }
    publisher.expect_disconnect(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
}

// ---------------------------------------------------------------------------------
// 7. Maximum Packet Size

#[test]
fn a_publish_above_the_maximum_packet_size_is_refused_with_0x95_mqtt5_3_2_2_15() {
    let broker = start_broker_with(|config| config.limits.max_packet_size = 1024);
    let (mut publisher, connack) = connect(broker.local_addr(), "big", None);
    assert_eq!(connack.properties().maximum_packet_size, Some(1024));
    publisher.send(message("t", &[b'x'; 2000], QoS::AtMostOnce, 0));
    publisher.expect_disconnect(ReasonCode::PACKET_TOO_LARGE);
}

#[test]
fn a_message_too_large_for_the_subscriber_is_skipped_mqtt5_3_1_2_24_and_3_1_2_25() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut watcher, _) = connect(addr, "small", props(|p| p.maximum_packet_size = Some(64)));
    watcher.subscribe("t", QoS::AtLeastOnce);
    let mut publisher = client(addr, "pub");
    publisher.publish1(message("t", &[b'x'; 100], QoS::AtLeastOnce, 1));
    publisher.publish1(message("t", b"small", QoS::AtLeastOnce, 2));
    let publish = watcher.expect_publish("the small message");
    assert_eq!(&publish.payload[..], b"small");
}

// ---------------------------------------------------------------------------------
// 8. PUBACK and PUBREC reason codes

#[test]
fn a_qos_1_publish_without_subscribers_gets_puback_0x10_and_with_one_0x00() {
    // Section 3.4.2.1: 0x10 "No matching subscribers".
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut publisher = client(addr, "pub");
    assert_eq!(
        publisher.publish1(message("t", b"x", QoS::AtLeastOnce, 1)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    let _watcher = subscriber(addr, "watcher", "t", QoS::AtLeastOnce);
    assert_eq!(
        publisher.publish1(message("t", b"x", QoS::AtLeastOnce, 2)),
        ReasonCode::SUCCESS
    );
}

#[test]
fn a_publish_refused_by_a_hook_gets_0x87_and_is_not_delivered() {
    // Sections 3.4.2.1 and 3.5.2.1: 0x87 "Not authorized" in PUBACK and PUBREC.
    let broker = start_broker();
    broker.add_hook(Arc::new(Refuser));
    let addr = broker.local_addr();
    let mut watcher = subscriber(addr, "watcher", "#", QoS::ExactlyOnce);
    let mut publisher = client(addr, "pub");
    assert_eq!(
        publisher.publish1(message("forbidden", b"x", QoS::AtLeastOnce, 1)),
        ReasonCode::NOT_AUTHORIZED
    );
    publisher.send(message("forbidden", b"y", QoS::ExactlyOnce, 2));
    match publisher.wait_for("PUBREC 2", |p| matches!(p, Packet::PubRec(_))) {
        Packet::PubRec(PubRec {
            packet_id,
            reason_code,
            ..
        }) => {
            assert_eq!(packet_id.get(), 2);
            assert_eq!(reason_code, ReasonCode::NOT_AUTHORIZED);
        }
        _ => unreachable!(),
    }
    expect_only_marker(addr, &mut watcher, "allowed");
}

// ---------------------------------------------------------------------------------
// 9. SUBACK and UNSUBACK

#[test]
fn suback_gives_a_reason_code_per_filter_in_order_mqtt5_3_9_3_1_and_3_8_4_7() {
    let broker = start_broker();
    broker.add_hook(Arc::new(Refuser));
    let mut peer = client(broker.local_addr(), "subscriber");
    let codes = peer.subscribe_with(
        7,
        vec![
            filter("a", QoS::ExactlyOnce),
            filter("forbidden/#", QoS::AtLeastOnce),
            filter("$share//t", QoS::AtLeastOnce),
            filter("b", QoS::AtLeastOnce),
            filter("c", QoS::AtMostOnce),
        ],
        None,
    );
    assert_eq!(
        codes,
        [
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::TOPIC_FILTER_INVALID,
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_0,
        ]
    );
}

#[test]
fn a_broker_with_maximum_qos_1_grants_qos_1_for_qos_2_mqtt5_3_2_2_10() {
    let broker = start_broker_with(|config| config.limits.max_qos = QoS::AtLeastOnce);
    let (mut peer, connack) = connect(broker.local_addr(), "subscriber", None);
    assert_eq!(connack.properties().maximum_qos, Some(1));
    let codes = peer.subscribe_with(1, vec![filter("t", QoS::ExactlyOnce)], None);
    assert_eq!(codes, [ReasonCode::GRANTED_QOS_1]);
}

#[test]
fn unsuback_says_which_filters_existed_in_order_mqtt5_3_11_3_1_and_3_10_4_5() {
    let broker = start_broker();
    let mut peer = client(broker.local_addr(), "subscriber");
    let both = vec![filter("a", QoS::AtMostOnce), filter("b", QoS::AtMostOnce)];
    peer.subscribe_with(1, both, None);
    let codes = peer.unsubscribe(9, &["a", "never", "b"]);
    assert_eq!(
        codes,
        [
            ReasonCode::SUCCESS,
            ReasonCode::NO_SUBSCRIPTION_EXISTED,
            ReasonCode::SUCCESS,
        ]
    );
}

// ---------------------------------------------------------------------------------
// 10. Subscription options

#[test]
fn no_local_keeps_a_clients_own_messages_from_it_mqtt5_3_8_3_3() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut peer = client(addr, "talker");
    let mut own = filter("t", QoS::AtMostOnce);
    own.no_local = true;
    peer.subscribe_with(1, vec![own], None);
    peer.send(message("t", b"mine", QoS::AtMostOnce, 0));
    let mut other = client(addr, "other");
    other.send(message("t", b"theirs", QoS::AtMostOnce, 0));
    let publish = peer.expect_publish("the other client's message");
    assert_eq!(&publish.payload[..], b"theirs");
}

#[test]
fn retain_as_published_decides_the_retain_flag_of_live_messages_mqtt5_3_3_1_12_and_13() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut peer = client(addr, "watcher");
    let mut kept = filter("rap/1", QoS::AtMostOnce);
    kept.retain_as_published = true;
    peer.subscribe_with(1, vec![kept, filter("rap/0", QoS::AtMostOnce)], None);
    let mut publisher = client(addr, "pub");
    publisher.send(retained(message("rap/1", b"x", QoS::AtMostOnce, 0)));
    publisher.send(retained(message("rap/0", b"y", QoS::AtMostOnce, 0)));
    let with_rap = peer.expect_publish("rap/1");
    assert_eq!((with_rap.topic.as_str(), with_rap.retain), ("rap/1", true));
    let without = peer.expect_publish("rap/0");
    assert_eq!((without.topic.as_str(), without.retain), ("rap/0", false));
}

#[test]
fn retain_handling_0_sends_retained_messages_on_every_subscribe_mqtt5_3_3_1_9() {
    let broker = start_broker();
    let addr = broker.local_addr();
    client(addr, "pub").publish1(retained(message("r", b"kept", QoS::AtLeastOnce, 1)));
    let mut peer = client(addr, "watcher");
    for n in 1..=2 {
        peer.subscribe_with(n, vec![filter("r", QoS::AtMostOnce)], None);
        let publish = peer.expect_publish("the retained message");
        assert_eq!((&publish.payload[..], publish.retain), (&b"kept"[..], true));
    }
}

#[test]
fn retain_handling_1_sends_retained_messages_to_new_subscriptions_only_mqtt5_3_3_1_10() {
    let broker = start_broker();
    let addr = broker.local_addr();
    client(addr, "pub").publish1(retained(message("r", b"kept", QoS::AtLeastOnce, 1)));
    let mut peer = client(addr, "watcher");
    let mut if_new = filter("r", QoS::AtMostOnce);
    if_new.retain_handling = RetainHandling::SendIfNew;
    peer.subscribe_with(1, vec![if_new.clone()], None);
    let publish = peer.expect_publish("the retained message");
    assert_eq!(&publish.payload[..], b"kept");
    peer.subscribe_with(2, vec![if_new], None);
    assert!(
        peer.publishes().is_empty(),
        "sent again to an existing subscription"
    );
}

#[test]
fn retain_handling_2_never_sends_retained_messages_mqtt5_3_3_1_11() {
    let broker = start_broker();
    let addr = broker.local_addr();
    client(addr, "pub").publish1(retained(message("r", b"kept", QoS::AtLeastOnce, 1)));
    let mut peer = client(addr, "watcher");
    let mut never = filter("r", QoS::AtMostOnce);
    never.retain_handling = RetainHandling::DoNotSend;
    peer.subscribe_with(1, vec![never], None);
    assert!(peer.publishes().is_empty(), "a retained message was sent");
    client(addr, "pub").send(message("r", b"live", QoS::AtMostOnce, 0));
    let publish = peer.expect_publish("a live message");
    assert_eq!(&publish.payload[..], b"live");
}

// ---------------------------------------------------------------------------------
// 11. Subscription identifiers

#[test]
fn one_message_carries_the_ids_of_every_matching_subscription_mqtt5_3_3_4_3_and_3_3_4_4() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut peer = client(addr, "watcher");
    peer.subscribe_with(
        1,
        vec![filter("a/+", QoS::AtMostOnce)],
        props(|p| p.subscription_identifiers = vec![2]),
    );
    peer.subscribe_with(
        2,
        vec![filter("a/#", QoS::AtMostOnce)],
        props(|p| p.subscription_identifiers = vec![3]),
    );
    client(addr, "pub").send(message("a/b", b"x", QoS::AtMostOnce, 0));
    let publish = peer.expect_publish("one copy");
    let mut ids = publish.properties().subscription_identifiers.clone();
    ids.sort_unstable();
    assert_eq!(ids, [2, 3]);
    assert!(peer.publishes().is_empty(), "more than one copy");
}

#[test]
fn a_retained_message_replayed_on_subscribe_carries_the_subscription_identifier() {
    // Section 3.8.2.1.2: the identifier goes with every message sent because of the
    // subscription, retained ones included.
    let broker = start_broker();
    let addr = broker.local_addr();
    client(addr, "pub").publish1(retained(message("r", b"kept", QoS::AtLeastOnce, 1)));
    let mut peer = client(addr, "watcher");
    peer.subscribe_with(
        1,
        vec![filter("r", QoS::AtMostOnce)],
        props(|p| p.subscription_identifiers = vec![42]),
    );
    let publish = peer.expect_publish("the retained message");
    assert_eq!(publish.properties().subscription_identifiers, [42]);
}

// ---------------------------------------------------------------------------------
// 12. Shared subscriptions

#[test]
fn a_shared_subscription_sends_each_message_to_one_member() {
    // Section 4.8.2: each message goes to one session of the group.
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut one = subscriber(addr, "one", "$share/g/t", QoS::AtLeastOnce);
    let mut two = subscriber(addr, "two", "$share/g/t", QoS::AtLeastOnce);
    let mut publisher = client(addr, "pub");
    for n in 0..10u16 {
        publisher.publish1(message(
            "t",
            n.to_string().as_bytes(),
            QoS::AtLeastOnce,
            n + 1,
        ));
    }
    let got = collect(&mut [&mut one, &mut two], 10);
    assert!(
        got.iter().all(|g| !g.is_empty()),
        "a member got nothing: {got:?}"
    );
    let all: BTreeSet<&String> = got.iter().flatten().collect();
    assert_eq!(all.len(), 10, "lost or duplicated: {got:?}");
    assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 10, "{got:?}");
    assert!(one.publishes().is_empty() && two.publishes().is_empty());
}

#[test]
fn an_mqtt_3_1_1_client_can_join_a_shared_subscription() {
    // Section 4.8.2: shared subscriptions are the broker's, whatever the version.
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut v5 = subscriber(addr, "v5", "$share/g/t", QoS::AtMostOnce);
    let (mut old, _) = Peer::connected(addr, "old", true);
    assert_eq!(old.subscribe(1, &[("$share/g/t", QoS::AtMostOnce)]), [0]);
    let mut publisher = client(addr, "pub");
    for n in 0..10u16 {
        publisher.publish1(message(
            "t",
            n.to_string().as_bytes(),
            QoS::AtLeastOnce,
            n + 1,
        ));
    }
    let (mut old_got, mut v5_got) = (0, 0);
    let deadline = Instant::now() + TIMEOUT;
    while old_got + v5_got < 10 && Instant::now() < deadline {
        let wait = Duration::from_millis(50);
        if let Next::Packet(Packet::Publish(_)) = old.next_within(wait) {
            old_got += 1;
        }
        if let Next::Packet(Packet::Publish(_)) = v5.next_within(wait) {
            v5_got += 1;
        }
    }
    assert_eq!(old_got + v5_got, 10, "3.1.1: {old_got}, v5: {v5_got}");
    assert!(old.publishes().is_empty() && v5.publishes().is_empty());
    assert!(old_got > 0 && v5_got > 0, "3.1.1: {old_got}, v5: {v5_got}");
}

#[test]
fn retained_messages_are_not_sent_to_a_new_shared_subscription() {
    // Section 4.8.2: retained messages are not sent when a shared subscription is
    // made.
    let broker = start_broker();
    let addr = broker.local_addr();
    client(addr, "pub").publish1(retained(message("t", b"kept", QoS::AtLeastOnce, 1)));
    let mut peer = subscriber(addr, "member", "$share/g/t", QoS::AtMostOnce);
    assert!(peer.publishes().is_empty(), "a retained message was sent");
}

// ---------------------------------------------------------------------------------
// 13. Message expiry

#[test]
fn expired_messages_are_not_sent_and_the_rest_count_down_mqtt5_3_3_2_5_and_3_3_2_6() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut peer, _) = session(addr, "away", true, 60);
    peer.subscribe("t", QoS::AtLeastOnce);
    peer.disconnect();
    let mut publisher = client(addr, "pub");
    for (n, expiry) in [(1u16, 1u32), (2, 10)] {
        publisher.publish1(with_props(
            message("t", n.to_string().as_bytes(), QoS::AtLeastOnce, n),
            props(|p| p.message_expiry_interval = Some(expiry)),
        ));
    }
    std::thread::sleep(Duration::from_millis(2100));
    let (mut peer, present) = session(addr, "away", false, 60);
    assert!(present);
    let publish = peer.expect_publish("the message that has not expired");
    assert_eq!(&publish.payload[..], b"2", "an expired message was sent");
    let left = publish
        .properties()
        .message_expiry_interval
        .expect("an expiry");
    assert!(left < 10, "the expiry was not counted down: {left}");
    assert!(
        peer.publishes().is_empty(),
        "more than the unexpired message"
    );
}

#[test]
fn a_message_with_expiry_0_reaches_the_subscribers_there_are_and_no_later_one() {
    // Onward delivery to a connected subscriber starts as the message arrives, so
    // an interval of 0 does not stop it (section 3.3.2.3.3; mosquitto delivers it
    // too); a session away gets nothing when it comes back.
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut away, _) = session(addr, "away-0", true, 60);
    away.subscribe("zero", QoS::AtLeastOnce);
    away.disconnect();
    let (mut here, _) = session(addr, "here-0", true, 0);
    here.subscribe("zero", QoS::AtLeastOnce);
    let mut publisher = client(addr, "pub-0");
    publisher.publish1(with_props(
        message("zero", b"now", QoS::AtLeastOnce, 1),
        props(|p| p.message_expiry_interval = Some(0)),
    ));
    let publish = here.expect_publish("the message, at once");
    assert_eq!(&publish.payload[..], b"now");
    assert_eq!(publish.properties().message_expiry_interval, Some(0));
    // Routed already (the connected subscriber has it): coming back finds nothing.
    let (mut away, present) = session(addr, "away-0", false, 60);
    assert!(present);
    assert!(away.publishes().is_empty(), "an expired message was kept");
}

#[test]
fn an_expired_retained_message_is_not_sent_to_a_new_subscriber_mqtt5_3_3_2_5() {
    let broker = start_broker();
    let addr = broker.local_addr();
    client(addr, "pub").publish1(retained(with_props(
        message("r", b"short-lived", QoS::AtLeastOnce, 1),
        props(|p| p.message_expiry_interval = Some(1)),
    )));
    std::thread::sleep(Duration::from_millis(2100));
    let mut peer = subscriber(addr, "late", "r", QoS::AtMostOnce);
    assert!(peer.publishes().is_empty(), "an expired message was sent");
}

// ---------------------------------------------------------------------------------
// 14. Properties and mixed versions

fn application_properties() -> Option<Box<Properties>> {
    props(|p| {
        p.payload_format_indicator = Some(1);
        p.content_type = Some("application/json".to_string());
        p.response_topic = Some("reply/1".to_string());
        p.correlation_data = Some(Bytes::from_static(&[0x00, 0xFF, 0x01]));
        p.user_properties = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "3".to_string()),
        ];
    })
}

#[test]
fn message_properties_reach_a_v5_subscriber_unchanged_mqtt5_3_3_2_4_and_3_3_2_15_to_20() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut peer = subscriber(addr, "watcher", "t", QoS::AtMostOnce);
    client(addr, "pub").publish1(with_props(
        message("t", b"{}", QoS::AtLeastOnce, 1),
        application_properties(),
    ));
    let publish = peer.expect_publish("the message");
    assert_eq!(publish.properties(), &*application_properties().unwrap());
}

#[test]
fn an_mqtt_3_1_1_subscriber_gets_a_v5_message_without_properties() {
    // Section 3.3.2.3: properties exist only in MQTT 5; the payload is untouched.
    let broker = start_broker();
    let addr = broker.local_addr();
    let (mut old, _) = Peer::connected(addr, "old", true);
    old.subscribe(1, &[("t", QoS::AtLeastOnce)]);
    client(addr, "pub").publish1(with_props(
        message("t", b"{\"v\":5}", QoS::AtLeastOnce, 1),
        application_properties(),
    ));
    let publish = old.expect_publish("the v5 message");
    assert_eq!(publish.topic.as_str(), "t");
    assert_eq!(&publish.payload[..], b"{\"v\":5}");
    assert_eq!(publish.properties, None);
}

#[test]
fn an_mqtt_3_1_1_publishers_message_reaches_a_v5_subscriber() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut peer = subscriber(addr, "watcher", "t", QoS::AtLeastOnce);
    let (mut old, _) = Peer::connected(addr, "old", true);
    old.publish1("t", b"from 3.1.1", false, 1);
    let publish = peer.expect_publish("the 3.1.1 message");
    assert_eq!(
        (publish.topic.as_str(), &publish.payload[..], publish.qos),
        ("t", &b"from 3.1.1"[..], QoS::AtLeastOnce)
    );
    assert!(
        publish.properties().is_empty(),
        "{:?}",
        publish.properties()
    );
}

// ---------------------------------------------------------------------------------
// 15. The broker's DISCONNECT

#[test]
fn a_session_taken_over_gets_disconnect_0x8e_mqtt5_3_1_4_3() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut first = client(addr, "same");
    let _second = client(addr, "same");
    first.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
}

#[test]
fn broker_shutdown_sends_v5_clients_disconnect_0x8b() {
    // Section 3.14.2.1: 0x8B "Server shutting down".
    let broker = start_broker();
    let mut peer = client(broker.local_addr(), "stayer");
    broker.shutdown();
    peer.expect_disconnect(ReasonCode::SERVER_SHUTTING_DOWN);
}

#[test]
fn a_silent_client_gets_disconnect_0x8d_mqtt5_3_1_2_22() {
    let broker = start_broker();
    let mut connect = connect_v5("silent");
    connect.keep_alive = 1;
    let (mut peer, _) = V5Peer::accepted(broker.local_addr(), connect);
    peer.set_timeout(TIMEOUT);
    peer.expect_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT);
}

// ---------------------------------------------------------------------------------
// 16. Enhanced authentication

#[test]
fn enhanced_authentication_by_challenge_ends_in_connack_0_mqtt5_4_12_0_2_and_4_12_0_5() {
    let broker = challenge_broker();
    let (mut peer, nonce) = challenged(broker.local_addr(), "prover");
    assert_eq!(nonce, b"nonce-17");
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, &reversed(&nonce)));
    let Packet::ConnAck(connack) = peer.expect("CONNACK") else {
        panic!("expected CONNACK");
    };
    assert_eq!(connack.code, ReasonCode::SUCCESS);
    assert_eq!(
        connack.properties().authentication_method.as_deref(),
        Some(METHOD)
    );
    peer.ping();
}

#[test]
fn a_wrong_answer_to_the_challenge_gets_connack_0x87_and_a_close_mqtt5_4_12_0_4() {
    let broker = challenge_broker();
    let (mut peer, nonce) = challenged(broker.local_addr(), "impostor");
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, &nonce));
    let Packet::ConnAck(connack) = peer.expect("CONNACK") else {
        panic!("expected CONNACK");
    };
    assert_eq!(connack.code, ReasonCode::NOT_AUTHORIZED);
    peer.expect_closed("after CONNACK 0x87");
}

#[test]
fn an_unknown_authentication_method_gets_connack_0x8c_mqtt5_4_12_0_1() {
    let broker = challenge_broker();
    let mut connect = connect_v5("stranger");
    connect.properties = props(|p| p.authentication_method = Some("no-such".to_string()));
    let (mut peer, connack) = V5Peer::connack(broker.local_addr(), connect);
    assert_eq!(connack.code, ReasonCode::BAD_AUTHENTICATION_METHOD);
    peer.expect_closed("after CONNACK 0x8C");
}

#[test]
fn re_authentication_runs_the_exchange_again_and_ends_in_auth_0() {
    // Section 4.12.1: AUTH 0x19, the broker's challenge, the answer, AUTH 0x00.
    let broker = challenge_broker();
    let (mut peer, nonce) = challenged(broker.local_addr(), "prover");
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, &reversed(&nonce)));
    assert!(matches!(peer.expect("CONNACK"), Packet::ConnAck(c) if c.code.0 == 0));
    peer.send(auth(ReasonCode::RE_AUTHENTICATE, b""));
    let Packet::Auth(challenge) = peer.expect("AUTH 0x18") else {
        panic!("expected AUTH 0x18");
    };
    assert_eq!(challenge.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(
        challenge.properties().authentication_method.as_deref(),
        Some(METHOD)
    );
    let nonce = challenge.properties().authentication_data.clone().unwrap();
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, &reversed(&nonce)));
    let Packet::Auth(done) = peer.expect("AUTH 0x00") else {
        panic!("expected AUTH 0x00");
    };
    assert_eq!(done.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        done.properties().authentication_method.as_deref(),
        Some(METHOD)
    );
    peer.ping();
}

#[test]
fn auth_from_a_client_that_connected_without_a_method_is_a_protocol_error_mqtt5_4_12_0_6() {
    let broker = challenge_broker();
    let mut peer = client(broker.local_addr(), "plain");
    peer.send(auth(ReasonCode::RE_AUTHENTICATE, b""));
    peer.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn a_publish_to_sys_or_to_a_share_name_is_refused_with_0x87() {
    // `$SYS` is the broker's, bridge state topics included (invariant 5), and
    // `$share/` names subscriptions, not topics (section 4.8.2).
    let broker = start_broker();
    let mut peer = client(broker.local_addr(), "pub");
    let topics = [
        "$SYS/broker/uptime",
        "$SYS/broker/connection/me/state",
        "$share/g/t",
    ];
    for (n, topic) in topics.into_iter().enumerate() {
        let code = peer.publish1(message(topic, b"x", QoS::AtLeastOnce, n as u16 + 1));
        assert_eq!(code, ReasonCode::NOT_AUTHORIZED, "{topic}");
    }
}
