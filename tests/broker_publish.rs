//! PUBLISH in all QoS levels, retained messages, subscriptions, persistent sessions
//! and malformed packets, tested with exact bytes over real sockets. Test names cite
//! the statement of MQTT 3.1.1 they check.

mod common;

use common::raw::{publish_packet, subscribe_packet, unsubscribe_packet, Raw};
use common::{start_broker, start_broker_with};
use wren::broker::Broker;
use wren::protocol::QoS;

fn pair(broker: &Broker, filter: &str, qos: QoS) -> (Raw, Raw) {
    let mut subscriber = Raw::connect(broker.local_addr(), "sub", true, false);
    subscriber.subscribe(filter, qos);
    let publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    (subscriber, publisher)
}

#[test]
fn qos_0_publish_is_forwarded_byte_for_byte_mqtt_3_3_4_1() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "a/b", QoS::AtMostOnce);
    publisher.send(&[
        0x30, 0x0A, 0x00, 0x03, b'a', b'/', b'b', b'h', b'e', b'l', b'l', b'o',
    ]);
    sub.expect(&[
        0x30, 0x0A, 0x00, 0x03, b'a', b'/', b'b', b'h', b'e', b'l', b'l', b'o',
    ]);
}

#[test]
fn qos_1_is_acked_with_the_same_packet_id_mqtt_2_3_1_6() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "t", QoS::AtLeastOnce);
    publisher.send(&[0x32, 0x06, 0x00, 0x01, b't', 0x12, 0x34, b'x']);
    publisher.expect(&[0x40, 0x02, 0x12, 0x34]);
    // The broker picks its own packet id for the subscriber [MQTT-2.3.1-4].
    sub.expect(&[0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'x']);
    sub.send(&[0x40, 0x02, 0x00, 0x01]);
    sub.ping();
}

#[test]
fn qos_2_inbound_is_delivered_once_even_when_repeated_before_pubrel_mqtt_4_3_3_2() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "t", QoS::AtMostOnce);
    let publish = [0x34, 0x06, 0x00, 0x01, b't', 0x00, 0x09, b'x'];
    publisher.send(&publish);
    publisher.expect(&[0x50, 0x02, 0x00, 0x09]);
    let mut dup = publish;
    dup[0] = 0x3C; // DUP
    publisher.send(&dup);
    publisher.expect(&[0x50, 0x02, 0x00, 0x09]);
    publisher.send(&[0x62, 0x02, 0x00, 0x09]);
    publisher.expect(&[0x70, 0x02, 0x00, 0x09]);
    // After PUBCOMP the id means a new message.
    publisher.send(&publish);
    publisher.expect(&[0x50, 0x02, 0x00, 0x09]);
    sub.expect(&[0x30, 0x04, 0x00, 0x01, b't', b'x']);
    sub.expect(&[0x30, 0x04, 0x00, 0x01, b't', b'x']);
    sub.ping();
}

#[test]
fn a_qos_1_id_reused_after_puback_is_a_new_message_mqtt_4_3_2_2() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "t", QoS::AtMostOnce);
    publisher.send(&[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x05]);
    publisher.expect(&[0x40, 0x02, 0x00, 0x05]);
    publisher.send(&[0x3A, 0x05, 0x00, 0x01, b't', 0x00, 0x05]);
    publisher.expect(&[0x40, 0x02, 0x00, 0x05]);
    sub.expect(&[0x30, 0x03, 0x00, 0x01, b't']);
    sub.expect(&[0x30, 0x03, 0x00, 0x01, b't']);
}

#[test]
fn dup_is_not_copied_to_subscribers_mqtt_3_3_1_3() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "t", QoS::AtLeastOnce);
    publisher.send(&[0x3A, 0x06, 0x00, 0x01, b't', 0x00, 0x07, b'd']);
    publisher.expect(&[0x40, 0x02, 0x00, 0x07]);
    sub.expect(&[0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'd']);
}

#[test]
fn qos_2_outbound_runs_publish_pubrec_pubrel_pubcomp_mqtt_4_3_3_1() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "t", QoS::ExactlyOnce);
    publisher.send(&[0x34, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'q']);
    publisher.expect(&[0x50, 0x02, 0x00, 0x01]);
    publisher.send(&[0x62, 0x02, 0x00, 0x01]);
    publisher.expect(&[0x70, 0x02, 0x00, 0x01]);
    sub.expect(&[0x34, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'q']);
    sub.send(&[0x50, 0x02, 0x00, 0x01]);
    sub.expect(&[0x62, 0x02, 0x00, 0x01]);
    sub.send(&[0x70, 0x02, 0x00, 0x01]);
    sub.ping();
}

#[test]
fn delivered_qos_is_the_lower_of_published_and_granted_mqtt_3_8_4_6() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "t", QoS::AtLeastOnce);
    publisher.send(&[0x34, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'2']);
    publisher.expect(&[0x50, 0x02, 0x00, 0x01]);
    sub.expect(&[0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'2']);
    publisher.send(&[0x30, 0x04, 0x00, 0x01, b't', b'0']);
    sub.expect(&[0x30, 0x04, 0x00, 0x01, b't', b'0']);
}

#[test]
fn overlapping_subscriptions_deliver_once_at_the_highest_qos_mqtt_3_3_5_1() {
    let broker = start_broker();
    let mut sub = Raw::connect(broker.local_addr(), "sub", true, false);
    sub.send_packet(subscribe_packet(
        1,
        &[("a/#", QoS::AtMostOnce), ("a/b", QoS::ExactlyOnce)],
    ));
    sub.expect(&[0x90, 0x04, 0x00, 0x01, 0x00, 0x02]);
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    publisher.publish1("a/b", b"x", false, 1);
    let got = sub.read_publish();
    assert_eq!(got.qos, QoS::AtLeastOnce);
    sub.send(&[0x40, 0x02, 0x00, 0x01]);
    sub.ping();
}

#[test]
fn retained_messages_are_stored_replaced_and_cleared_mqtt_3_3_1_5_to_12() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut publisher = Raw::connect(addr, "pub", true, false);
    publisher.publish1("r/1", b"first", true, 1);
    publisher.publish0("r/1", b"second", true); // replaces, at QoS 0 [MQTT-3.3.1-7]
    publisher.publish1("r/2", b"two", true, 2);
    publisher.publish0("r/2", b"not retained", false); // leaves "two" [MQTT-3.3.1-12]

    let mut sub = Raw::connect(addr, "sub", true, false);
    sub.send_packet(subscribe_packet(1, &[("r/+", QoS::AtLeastOnce)]));
    sub.expect(&[0x90, 0x03, 0x00, 0x01, 0x01]);
    let mut got = [sub.read_publish(), sub.read_publish()];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert!(
        got.iter().all(|p| p.retain),
        "RETAIN=1 on subscribe [MQTT-3.3.1-8]"
    );
    assert_eq!(
        (&got[0].payload[..], got[0].qos),
        (&b"second"[..], QoS::AtMostOnce)
    );
    assert_eq!(
        (&got[1].payload[..], got[1].qos),
        (&b"two"[..], QoS::AtLeastOnce)
    );
    let id = got[1].packet_id.unwrap().get().to_be_bytes();
    sub.send(&[0x40, 0x02, id[0], id[1]]);

    // An empty retained message is forwarded, and clears the topic [MQTT-3.3.1-10].
    publisher.publish0("r/1", b"", true);
    let cleared = sub.read_publish();
    assert!(cleared.payload.is_empty() && !cleared.retain);
    common::wait_until("retained_messages is 1 [MQTT-3.3.1-11]", || {
        broker.stats().retained_messages == 1
    });

    // Retained messages outlive the session that published them [MQTT-3.1.2-7].
    publisher.disconnect();
    let mut late = Raw::connect(addr, "late", true, false);
    late.subscribe("r/#", QoS::AtMostOnce);
    assert_eq!(&late.read_publish().payload[..], b"two");
    late.ping();
}

#[test]
fn resubscribing_replaces_the_qos_and_resends_retained_mqtt_3_8_4_3() {
    let broker = start_broker();
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    publisher.publish0("t", b"kept", true);
    let mut sub = Raw::connect(broker.local_addr(), "sub", true, false);
    sub.subscribe("t", QoS::AtMostOnce);
    assert_eq!(&sub.read_publish().payload[..], b"kept");
    sub.subscribe("t", QoS::AtLeastOnce);
    assert_eq!(&sub.read_publish().payload[..], b"kept");
    common::wait_until("subscriptions is 1", || broker.stats().subscriptions == 1);
    publisher.publish1("t", b"live", false, 1);
    let live = sub.read_publish();
    assert_eq!(
        (live.qos, &live.payload[..]),
        (QoS::AtLeastOnce, &b"live"[..])
    );
}

#[test]
fn unsubscribe_is_literal_always_answered_and_answered_once_mqtt_3_10_4() {
    let broker = start_broker();
    let mut sub = Raw::connect(broker.local_addr(), "sub", true, false);
    sub.subscribe("a/#", QoS::AtMostOnce);
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);

    // "a/b" is not the filter "a/#": nothing is removed [MQTT-3.10.4-1], and the
    // UNSUBACK still comes [MQTT-3.10.4-5] with the same id [MQTT-3.10.4-4].
    sub.send_packet(unsubscribe_packet(9, &["a/b"]));
    sub.expect(&[0xB0, 0x02, 0x00, 0x09]);
    publisher.publish0("a/b", b"still", false);
    assert_eq!(&sub.read_publish().payload[..], b"still");

    // Several filters, one UNSUBACK [MQTT-3.10.4-6].
    sub.send_packet(unsubscribe_packet(10, &["x", "a/#"]));
    sub.expect(&[0xB0, 0x02, 0x00, 0x0A]);
    publisher.publish0("a/b", b"gone", false);
    publisher.ping();
    // Nothing arrives [MQTT-3.10.4-2]: the next packet is our PINGRESP.
    sub.ping();
    common::wait_until("subscriptions is 0", || broker.stats().subscriptions == 0);
}

#[test]
fn a_qos_2_delivery_started_before_unsubscribe_completes_mqtt_3_10_4_3() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "t", QoS::ExactlyOnce);
    publisher.send(&[0x34, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'q']);
    publisher.expect(&[0x50, 0x02, 0x00, 0x01]);
    sub.expect(&[0x34, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'q']);
    sub.send_packet(unsubscribe_packet(2, &["t"]));
    sub.expect(&[0xB0, 0x02, 0x00, 0x02]);
    sub.send(&[0x50, 0x02, 0x00, 0x01]);
    sub.expect(&[0x62, 0x02, 0x00, 0x01]);
    sub.send(&[0x70, 0x02, 0x00, 0x01]);
    sub.ping();
    common::wait_until("inflight_messages is 0", || {
        broker.stats().inflight_messages == 0
    });
}

#[test]
fn pingreq_gets_pingresp_mqtt_3_12_4_1() {
    let broker = start_broker();
    let mut client = Raw::connect(broker.local_addr(), "c", true, false);
    client.send(&[0xC0, 0x00]);
    client.expect(&[0xD0, 0x00]);
}

#[test]
fn wildcards_at_the_start_do_not_match_dollar_topics_mqtt_4_7_2_1() {
    let broker = start_broker();
    let mut all = Raw::connect(broker.local_addr(), "all", true, false);
    all.subscribe("#", QoS::AtMostOnce);
    let mut plus = Raw::connect(broker.local_addr(), "plus", true, false);
    plus.subscribe("+/x", QoS::AtMostOnce);
    let mut dollar = Raw::connect(broker.local_addr(), "dollar", true, false);
    dollar.subscribe("$app/#", QoS::AtMostOnce);
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    publisher.publish0("$app/x", b"private", false);
    publisher.publish0("app/x", b"public", false);
    assert_eq!(&dollar.read_publish().payload[..], b"private");
    assert_eq!(&all.read_publish().payload[..], b"public");
    assert_eq!(&plus.read_publish().payload[..], b"public");
}

#[test]
fn matching_is_exact_and_keeps_a_byte_order_mark_mqtt_4_7_3_4_and_1_5_3_3() {
    let broker = start_broker();
    let mut sub = Raw::connect(broker.local_addr(), "sub", true, false);
    sub.subscribe("\u{FEFF}a/B", QoS::AtMostOnce);
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    for topic in ["a/B", "\u{FEFF}a/b", "\u{FEFF}a//B", "\u{FEFF}a/B"] {
        publisher.publish0(topic, topic.as_bytes(), false);
    }
    let got = sub.read_publish();
    assert_eq!(got.topic.as_bytes(), "\u{FEFF}a/B".as_bytes());
    sub.ping();
}

#[test]
fn messages_from_one_publisher_arrive_in_order_mqtt_4_6_0_6() {
    let broker = start_broker();
    let (mut sub, mut publisher) = pair(&broker, "seq", QoS::AtLeastOnce);
    let count = 1000u16;
    for n in 1..=count {
        publisher.send_packet(publish_packet(
            "seq",
            &n.to_be_bytes(),
            QoS::AtLeastOnce,
            false,
            n,
        ));
    }
    for n in 1..=count {
        let got = sub.read_publish();
        assert_eq!(
            &got.payload[..],
            &n.to_be_bytes(),
            "message {n} out of order"
        );
        let id = got.packet_id.unwrap().get().to_be_bytes();
        sub.send(&[0x40, 0x02, id[0], id[1]]);
    }
    for n in 1..=count {
        let id = n.to_be_bytes();
        publisher.expect(&[0x40, 0x02, id[0], id[1]]);
    }
}

#[test]
fn messages_for_an_offline_persistent_session_are_queued_in_order_mqtt_3_1_2_5() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut sub = Raw::connect(addr, "persistent", false, false);
    sub.subscribe("q", QoS::ExactlyOnce);
    sub.disconnect();
    let mut publisher = Raw::connect(addr, "pub", true, false);
    publisher.publish0("q", b"qos0 is not queued", false);
    for n in 1..=3u16 {
        publisher.publish1("q", &n.to_be_bytes(), false, n);
    }
    let mut back = Raw::connect(addr, "persistent", false, true);
    for n in 1..=3u16 {
        let got = back.read_publish();
        assert_eq!(
            (&got.payload[..], got.qos),
            (&n.to_be_bytes()[..], QoS::AtLeastOnce)
        );
        let id = got.packet_id.unwrap().get().to_be_bytes();
        back.send(&[0x40, 0x02, id[0], id[1]]);
    }
    back.ping();
}

#[test]
fn unacknowledged_messages_are_resent_with_their_ids_after_reconnect_mqtt_4_4_0_1() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut sub = Raw::connect(addr, "resend", false, false);
    sub.subscribe("r", QoS::ExactlyOnce);
    let mut publisher = Raw::connect(addr, "pub", true, false);
    publisher.publish1("r", b"one", false, 1);
    publisher.publish1("r", b"two", false, 2);
    sub.expect(&[0x32, 0x08, 0x00, 0x01, b'r', 0x00, 0x01, b'o', b'n', b'e']);
    sub.expect(&[0x32, 0x08, 0x00, 0x01, b'r', 0x00, 0x02, b't', b'w', b'o']);
    drop(sub); // no PUBACK, no DISCONNECT

    let mut back = Raw::connect(addr, "resend", false, true);
    // Same ids, DUP set [MQTT-3.3.1-1].
    back.expect(&[0x3A, 0x08, 0x00, 0x01, b'r', 0x00, 0x01, b'o', b'n', b'e']);
    back.expect(&[0x3A, 0x08, 0x00, 0x01, b'r', 0x00, 0x02, b't', b'w', b'o']);
    back.send(&[0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x02]);
    back.ping();
}

#[test]
fn pubrel_is_resent_for_a_pubrec_d_message_after_reconnect_mqtt_4_4_0_1() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut sub = Raw::connect(addr, "two", false, false);
    sub.subscribe("r", QoS::ExactlyOnce);
    let mut publisher = Raw::connect(addr, "pub", true, false);
    publisher.send(&[0x34, 0x06, 0x00, 0x01, b'r', 0x00, 0x01, b'x']);
    publisher.expect(&[0x50, 0x02, 0x00, 0x01]);
    sub.expect(&[0x34, 0x06, 0x00, 0x01, b'r', 0x00, 0x01, b'x']);
    sub.send(&[0x50, 0x02, 0x00, 0x01]);
    sub.expect(&[0x62, 0x02, 0x00, 0x01]);
    drop(sub); // no PUBCOMP

    let mut back = Raw::connect(addr, "two", false, true);
    back.expect(&[0x62, 0x02, 0x00, 0x01]);
    back.send(&[0x70, 0x02, 0x00, 0x01]);
    back.ping();
    common::wait_until("inflight_messages is 0", || {
        broker.stats().inflight_messages == 0
    });
}

#[test]
fn a_clean_session_discards_the_stored_one_mqtt_3_1_2_6() {
    let broker = start_broker();
    let addr = broker.local_addr();
    let mut sub = Raw::connect(addr, "c", false, false);
    sub.subscribe("q", QoS::AtLeastOnce);
    sub.disconnect();
    Raw::connect(addr, "pub", true, false).publish1("q", b"queued", false, 1);
    let mut clean = Raw::connect(addr, "c", true, false);
    clean.ping(); // nothing queued is delivered
    clean.disconnect();
    Raw::connect(addr, "c", false, false).disconnect();
    common::wait_until("queued_messages is 0", || {
        broker.stats().queued_messages == 0
    });
}

/// Packets that break a rule, each named by its first byte and the rule, in the
/// style of mosquitto's `test/broker/data/*.json`. Each closes its connection and
/// nothing else.
const MALFORMED: &[(&str, &[u8])] = &[
    ("00 reserved packet type 0", &[0x00, 0x00]),
    ("F0 reserved packet type 15", &[0xF0, 0x00]),
    ("C1 PINGREQ with flags [MQTT-2.2.2-2]", &[0xC1, 0x00]),
    ("E1 DISCONNECT with flags [MQTT-3.14.1-1]", &[0xE1, 0x00]),
    (
        "60 PUBREL without 0010 flags [MQTT-3.6.1-1]",
        &[0x60, 0x02, 0x00, 0x01],
    ),
    (
        "80 SUBSCRIBE without 0010 flags [MQTT-3.8.1-1]",
        &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00],
    ),
    (
        "A0 UNSUBSCRIBE without 0010 flags [MQTT-3.10.1-1]",
        &[0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'],
    ),
    (
        "82 SUBSCRIBE with packet id 0 [MQTT-2.3.1-1]",
        &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00],
    ),
    (
        "82 SUBSCRIBE with no filter [MQTT-3.8.3-3]",
        &[0x82, 0x02, 0x00, 0x01],
    ),
    (
        "82 SUBSCRIBE with QoS 3 [MQTT-3.8.3-4]",
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03],
    ),
    (
        "82 SUBSCRIBE with 'a#' [MQTT-4.7.1-2]",
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'#', 0x00],
    ),
    (
        "82 SUBSCRIBE with 'a+' [MQTT-4.7.1-3]",
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'+', 0x00],
    ),
    (
        "82 SUBSCRIBE with an empty filter [MQTT-4.7.3-1]",
        &[0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00],
    ),
    (
        "A2 UNSUBSCRIBE with no filter [MQTT-3.10.3-2]",
        &[0xA2, 0x02, 0x00, 0x01],
    ),
    (
        "36 PUBLISH with QoS 3 [MQTT-3.3.1-4]",
        &[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01],
    ),
    (
        "38 PUBLISH with QoS 0 and DUP [MQTT-3.3.1-2]",
        &[0x38, 0x03, 0x00, 0x01, b't'],
    ),
    (
        "32 PUBLISH QoS 1 with packet id 0 [MQTT-2.3.1-1]",
        &[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00],
    ),
    (
        "30 PUBLISH to 'a/+' [MQTT-3.3.2-2]",
        &[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+'],
    ),
    (
        "30 PUBLISH to 'a/#' [MQTT-3.3.2-2]",
        &[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'#'],
    ),
    (
        "30 PUBLISH to an empty topic [MQTT-4.7.3-1]",
        &[0x30, 0x02, 0x00, 0x00],
    ),
    (
        "30 PUBLISH to 'a\\0b' [MQTT-1.5.3-2]",
        &[0x30, 0x05, 0x00, 0x03, b'a', 0x00, b'b'],
    ),
    (
        "30 PUBLISH to a surrogate [MQTT-1.5.3-1]",
        &[0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80],
    ),
    (
        "30 PUBLISH with a five-byte remaining length",
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
    ),
    (
        "30 PUBLISH topic longer than the packet",
        &[0x30, 0x03, 0x00, 0x05, b't'],
    ),
    (
        "40 PUBACK with trailing bytes",
        &[0x40, 0x03, 0x00, 0x01, 0x00],
    ),
    ("20 CONNACK from a client", &[0x20, 0x02, 0x00, 0x00]),
    ("90 SUBACK from a client", &[0x90, 0x03, 0x00, 0x01, 0x00]),
    ("B0 UNSUBACK from a client", &[0xB0, 0x02, 0x00, 0x01]),
    ("D0 PINGRESP from a client", &[0xD0, 0x00]),
];

#[test]
fn each_malformed_packet_closes_its_connection_only_mqtt_4_8_0_1() {
    let broker = start_broker();
    let mut healthy = Raw::connect(broker.local_addr(), "healthy", true, false);
    healthy.subscribe("#", QoS::AtMostOnce);
    for (name, bytes) in MALFORMED {
        let mut client = Raw::connect(broker.local_addr(), "bad", true, false);
        client.send(bytes);
        // A panic here names the case.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.expect_eof()));
        assert!(result.is_ok(), "case {name:?}: connection not closed");
        healthy.ping();
    }
    common::wait_until("connected_clients is 1", || {
        broker.stats().connected_clients == 1
    });
    // Nothing malformed was routed to the healthy subscriber of "#".
    healthy.ping();
}

#[test]
fn a_packet_over_the_maximum_size_closes_the_connection() {
    let broker = start_broker_with(|config| config.limits.max_packet_size = 1024);
    let mut client = Raw::connect(broker.local_addr(), "big", true, false);
    client.publish0("t", &[0u8; 1000], false);
    client.ping();
    // The fixed header alone announces too much: refused before the body arrives.
    client.send(&[0x30, 0x80, 0x10]); // 2048 bytes
    client.expect_eof();
}
