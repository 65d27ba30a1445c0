//! Server-side statements of MQTT 3.1.1 not named by the other broker tests, each
//! checked over a raw socket with exact bytes, and named by its statement ID.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::raw::{connect_packet, subscribe_packet, unsubscribe_packet, will, Raw};
use common::{start_broker, TIMEOUT};
use wren::protocol::{Packet, QoS, SubAck, SubscribeReturnCode};

#[test]
fn suback_and_unsuback_carry_the_request_s_identifier_mqtt_2_3_1_7() {
    let broker = start_broker();
    let mut client = Raw::connect(broker.local_addr(), "ids", true, false);
    client.send_packet(subscribe_packet(0x1234, &[("a", QoS::AtMostOnce)]));
    client.expect(&[0x90, 0x03, 0x12, 0x34, 0x00]);
    client.send_packet(unsubscribe_packet(0xBEEF, &["a"]));
    client.expect(&[0xB0, 0x02, 0xBE, 0xEF]);
}

#[test]
fn several_filters_get_one_suback_with_codes_in_order_mqtt_3_8_4_1_and_3_8_4_4() {
    let broker = start_broker();
    let mut client = Raw::connect(broker.local_addr(), "many", true, false);
    client.send_packet(subscribe_packet(
        7,
        &[
            ("a/#", QoS::ExactlyOnce),
            ("b", QoS::AtMostOnce),
            ("+/c", QoS::AtLeastOnce),
        ],
    ));
    client.expect_packet(Packet::SubAck(SubAck::new(
        wren::protocol::PacketId::new(7).unwrap(),
        vec![
            SubscribeReturnCode::Success(QoS::ExactlyOnce),
            SubscribeReturnCode::Success(QoS::AtMostOnce),
            SubscribeReturnCode::Success(QoS::AtLeastOnce),
        ],
    )));
    // Each filter works as if subscribed on its own.
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    publisher.publish0("b", b"1", false);
    assert_eq!(client.read_publish().topic, "b");
    publisher.publish0("x/c", b"2", false);
    assert_eq!(client.read_publish().topic, "x/c");
}

#[test]
fn delivered_topics_match_the_subscription_filter_mqtt_3_3_2_3() {
    let broker = start_broker();
    let mut subscriber = Raw::connect(broker.local_addr(), "sub", true, false);
    subscriber.subscribe("sport/+/player1", QoS::AtMostOnce);
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    for topic in [
        "sport/tennis/player2",
        "sport/tennis/player1",
        "sport/player1",
        "sport/golf/player1",
    ] {
        publisher.publish0(topic, topic.as_bytes(), false);
    }
    assert_eq!(subscriber.read_publish().topic, "sport/tennis/player1");
    assert_eq!(subscriber.read_publish().topic, "sport/golf/player1");
    subscriber.ping();
}

#[test]
fn a_message_reaches_every_matching_session_including_offline_ones_mqtt_4_5_0_1() {
    let broker = start_broker();
    // One persistent session goes offline; one stays connected.
    let mut offline = Raw::connect(broker.local_addr(), "offline", false, false);
    offline.subscribe("news", QoS::AtLeastOnce);
    offline.disconnect();
    let mut online = Raw::connect(broker.local_addr(), "online", true, false);
    online.subscribe("news", QoS::AtLeastOnce);

    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    publisher.publish1("news", b"hello", false, 1);
    assert_eq!(&online.read_publish().payload[..], b"hello");

    let mut back = Raw::connect(broker.local_addr(), "offline", false, true);
    assert_eq!(&back.read_publish().payload[..], b"hello");
}

#[test]
fn messages_on_a_topic_arrive_in_the_order_they_were_published_mqtt_4_6_0_5() {
    let broker = start_broker();
    let mut subscriber = Raw::connect(broker.local_addr(), "sub", true, false);
    subscriber.subscribe("ordered", QoS::AtLeastOnce);
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    for n in 1..=50u16 {
        publisher.publish1("ordered", n.to_string().as_bytes(), false, n);
    }
    for n in 1..=50u16 {
        let publish = subscriber.read_publish();
        assert_eq!(&publish.payload[..], n.to_string().as_bytes());
        let id = publish.packet_id.unwrap().get().to_be_bytes();
        subscriber.send(&[0x40, 0x02, id[0], id[1]]);
    }
}

/// Connects a client with a will on `lwt`, then ends it with `end`; returns what a
/// subscriber to `lwt` sees next (`None`: nothing before a PINGRESP).
fn will_after(retain: bool, will_flag: bool, end: impl FnOnce(Raw)) -> Option<(Vec<u8>, bool)> {
    let broker = start_broker();
    let mut watcher = Raw::connect(broker.local_addr(), "watcher", true, false);
    watcher.subscribe("lwt", QoS::AtMostOnce);
    let mut connect = connect_packet("dying", true, 60);
    if will_flag {
        connect.will = Some(will("lwt", b"gone", QoS::AtMostOnce, retain));
    }
    let client = Raw::connect_with(broker.local_addr(), connect);
    end(client);
    // A will, if any, is published before the broker handles the watcher's ping.
    common::wait_until("the dying client is gone", || {
        broker.stats().connected_clients == 1
    });
    watcher.send(&[0xC0, 0x00]);
    match watcher.read_packet() {
        Packet::PingResp => None,
        Packet::Publish(publish) => {
            let seen = (publish.payload.to_vec(), publish.retain);
            watcher.expect(&[0xD0, 0x00]);
            // A retained will is kept for later subscribers [MQTT-3.1.2-17].
            let mut late = Raw::connect(broker.local_addr(), "late", true, false);
            late.send_packet(subscribe_packet(1, &[("lwt", QoS::AtMostOnce)]));
            late.expect(&[0x90, 0x03, 0x00, 0x01, 0x00]);
            late.send(&[0xC0, 0x00]);
            let later = late.read_packet();
            assert_eq!(
                matches!(later, Packet::Publish(_)),
                retain,
                "retained will: {later}"
            );
            Some(seen)
        }
        other => panic!("unexpected {other}"),
    }
}

fn cut(client: Raw) {
    let _ = client.stream().shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_will_with_retain_0_is_published_as_a_normal_message_mqtt_3_1_2_16() {
    // Forwarded to the existing subscriber with RETAIN=0 either way [MQTT-3.3.1-9].
    assert_eq!(
        will_after(false, true, cut),
        Some((b"gone".to_vec(), false))
    );
}

#[test]
fn a_will_with_retain_1_is_published_as_a_retained_message_mqtt_3_1_2_17() {
    assert_eq!(will_after(true, true, cut), Some((b"gone".to_vec(), false)));
}

#[test]
fn without_a_will_flag_nothing_is_published_when_the_connection_drops_mqtt_3_1_2_12() {
    assert_eq!(will_after(false, false, cut), None);
}

#[test]
fn disconnect_discards_the_will_mqtt_3_14_4_3() {
    assert_eq!(will_after(false, true, |client| client.disconnect()), None);
}

#[test]
fn a_rejected_client_id_gets_connack_2_and_the_connection_closes_mqtt_3_1_3_9() {
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    // An empty client id with CleanSession=0 is rejected [MQTT-3.1.3-8].
    client.send_packet(connect_packet("", false, 60));
    client.expect(&[0x20, 0x02, 0x00, 0x02]);
    client.expect_eof();
}

#[test]
fn the_client_id_finds_the_session_and_creates_one_if_none_mqtt_3_1_2_4_and_3_1_3_2() {
    let broker = start_broker();
    // No session yet: one is created, and CONNACK says none was present.
    let mut first = Raw::connect(broker.local_addr(), "keeper", false, false);
    first.subscribe("kept", QoS::AtLeastOnce);
    first.disconnect();
    // The same id finds it again [MQTT-3.1.4-3]; another id does not.
    let other = Raw::connect(broker.local_addr(), "stranger", false, false);
    other.disconnect();
    let mut again = Raw::connect(broker.local_addr(), "keeper", false, true);
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    publisher.publish0("kept", b"still subscribed", false);
    assert_eq!(&again.read_publish().payload[..], b"still subscribed");
}

/// MQTT over WebSocket statements, against a broker WebSocket listener, with the
/// frames written by hand.
mod websocket {
    use super::*;
    use wren::config::{BrokerConfig, ListenerKind};

    fn ws_broker() -> common::WrenBroker {
        common::start_broker_with(|config: &mut BrokerConfig| {
            config.listeners[0].kind = ListenerKind::WebSocket { path: None };
        })
    }

    /// Upgrades a raw socket; returns it and the response head.
    fn upgrade(broker: &wren::Broker) -> (TcpStream, String) {
        let mut socket = TcpStream::connect(broker.local_addr()).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        socket
            .write_all(
                b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                  Sec-WebSocket-Protocol: mqtt\r\n\r\n",
            )
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        (socket, String::from_utf8_lossy(&head).into_owned())
    }

    /// A masked client frame (the mask is all zeros, which leaves the bytes as they
    /// are, and is allowed).
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        out.extend_from_slice(payload);
        out
    }

    fn connect_bytes(client_id: &str) -> Vec<u8> {
        common::raw::encode(connect_packet(client_id, true, 60))
    }

    #[test]
    fn the_server_answers_with_the_mqtt_subprotocol_mqtt_6_0_0_4() {
        let broker = ws_broker();
        let (_, head) = upgrade(&broker);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-protocol: mqtt\r\n"),
            "{head}"
        );
    }

    #[test]
    fn packets_need_not_align_with_frames_mqtt_6_0_0_2() {
        let broker = ws_broker();
        let (mut socket, _) = upgrade(&broker);
        // CONNECT split over two frames, then PINGREQ and another PINGREQ in one.
        let connect = connect_bytes("split");
        let (head, tail) = connect.split_at(5);
        socket.write_all(&frame(0x2, head)).unwrap();
        socket.write_all(&frame(0x2, tail)).unwrap();
        socket
            .write_all(&frame(0x2, &[0xC0, 0x00, 0xC0, 0x00]))
            .unwrap();
        // The answers: CONNACK and two PINGRESPs, in whatever frames the broker chose.
        let mut answers = Vec::new();
        while answers.len() < 8 {
            let mut header = [0u8; 2];
            socket.read_exact(&mut header).unwrap();
            assert_eq!(header[0], 0x82, "an unfragmented binary frame");
            let mut payload = vec![0u8; usize::from(header[1] & 0x7F)];
            socket.read_exact(&mut payload).unwrap();
            answers.extend(payload);
        }
        assert_eq!(answers, [0x20, 0x02, 0x00, 0x00, 0xD0, 0x00, 0xD0, 0x00]);
    }

    #[test]
    fn a_text_frame_closes_the_connection_mqtt_6_0_0_1() {
        let broker = ws_broker();
        let (mut socket, _) = upgrade(&broker);
        socket
            .write_all(&frame(0x2, &connect_bytes("texter")))
            .unwrap();
        let mut connack = [0u8; 6];
        socket.read_exact(&mut connack).unwrap();
        assert_eq!(connack, [0x82, 0x04, 0x20, 0x02, 0x00, 0x00]);
        socket.write_all(&frame(0x1, b"\xC0\x00")).unwrap();
        // The broker closes: EOF (possibly after a close frame), never a PINGRESP.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
        assert!(
            !rest.windows(2).any(|w| w == [0xD0, 0x00]),
            "answered a packet sent in a text frame: {rest:?}"
        );
    }
}
