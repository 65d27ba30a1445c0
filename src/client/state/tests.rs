//! [`State`] fed packets by hand: packet ids, the QoS handshakes, keep-alive and
//! reconnecting, with no socket and no clock of its own.

use bytes::BytesMut;

use super::*;
use crate::protocol::{ConnAck, Decoder, SubAck, TopicName};

const KEEP_ALIVE: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

fn state(now: Instant) -> State<u32> {
    State::new(100, KEEP_ALIVE, PING_TIMEOUT, now)
}

fn publish(topic: &str, qos: QoS) -> Publish {
    Publish::new(TopicName::new(topic).unwrap(), "payload", qos, false)
}

fn id(value: u16) -> PacketId {
    PacketId::new(value).unwrap()
}

fn sent_publish(packet: Packet) -> Publish {
    match packet {
        Packet::Publish(p) => p,
        other => panic!("expected PUBLISH, got {other}"),
    }
}

#[test]
fn qos_0_publish_completes_at_once_without_a_packet_id() {
    let mut state = state(Instant::now());
    let (packet, done) = state.publish(publish("a", QoS::AtMostOnce), 7).unwrap();
    assert_eq!(done, Some(7));
    assert_eq!(sent_publish(packet).packet_id, None);
    assert!(!state.has_outgoing());
}

#[test]
fn packet_ids_start_at_1_and_are_never_reused_while_in_use() {
    let mut state = state(Instant::now());
    let mut seen = std::collections::HashSet::new();
    for n in 0..50 {
        let (packet, _) = state.publish(publish("a", QoS::AtLeastOnce), n).unwrap();
        let packet_id = sent_publish(packet).packet_id.unwrap();
        assert!(seen.insert(packet_id), "{packet_id} handed out twice");
    }
    assert!(seen.contains(&id(1)));
}

#[test]
fn allocation_wraps_past_65535_skipping_zero_and_ids_in_use() {
    let mut state: State<u32> = State::new(usize::MAX, KEEP_ALIVE, PING_TIMEOUT, Instant::now());
    state.next_packet_id = u16::MAX;
    let first = state.subscribe(vec![], None, 0).unwrap();
    let second = state.subscribe(vec![], None, 0).unwrap();
    assert!(matches!(first, Packet::Subscribe(s) if s.packet_id == id(u16::MAX)));
    assert!(matches!(second, Packet::Subscribe(s) if s.packet_id == id(1)));
    // 1 is still in use, so the next after wrapping again is 2.
    state.next_packet_id = u16::MAX;
    let third = state.subscribe(vec![], None, 0).unwrap();
    assert!(matches!(third, Packet::Subscribe(s) if s.packet_id == id(2)));
}

#[test]
fn with_all_65535_ids_in_use_allocation_fails_instead_of_reusing_mqtt_2_3_1_2() {
    let mut state: State<u32> = State::new(usize::MAX, KEEP_ALIVE, PING_TIMEOUT, Instant::now());
    for _ in 0..u16::MAX {
        state.subscribe(vec![], None, 0).unwrap();
    }
    assert_eq!(
        state.subscribe(vec![], None, 0),
        Err(StateError::NoPacketId)
    );
    // Freeing one makes exactly that one available again.
    state
        .incoming(Packet::SubAck(SubAck::new(id(300), vec![ReasonCode(0x80)])))
        .unwrap();
    let again = state.subscribe(vec![], None, 0).unwrap();
    assert!(matches!(again, Packet::Subscribe(s) if s.packet_id == id(300)));
}

#[test]
fn incoming_puback_completes_the_matching_publish_only() {
    let mut state = state(Instant::now());
    state.publish(publish("a", QoS::AtLeastOnce), 10).unwrap();
    state.publish(publish("b", QoS::AtLeastOnce), 20).unwrap();
    let effects = state.incoming(Packet::PubAck(PubAck::new(id(2)))).unwrap();
    assert_eq!(effects.completed, Some((20, Done::Published)));
    assert_eq!(state.inflight(), 1);
    assert_eq!(
        state
            .incoming(Packet::PubAck(PubAck::new(id(2))))
            .unwrap_err(),
        StateError::Unsolicited(PacketType::PubAck, 2)
    );
}

#[test]
fn qos_2_publish_completes_after_pubrec_pubrel_pubcomp() {
    let mut state = state(Instant::now());
    state.publish(publish("a", QoS::ExactlyOnce), 5).unwrap();
    // PUBACK is the wrong answer to a QoS 2 PUBLISH.
    assert!(state.incoming(Packet::PubAck(PubAck::new(id(1)))).is_err());
    let effects = state.incoming(Packet::PubRec(PubRec::new(id(1)))).unwrap();
    assert_eq!(effects.reply, Some(Packet::PubRel(PubRel::new(id(1)))));
    assert_eq!(effects.completed, None);
    let effects = state
        .incoming(Packet::PubComp(PubComp::new(id(1))))
        .unwrap();
    assert_eq!(effects.completed, Some((5, Done::Published)));
    assert!(!state.has_outgoing());
    assert_eq!(state.inflight(), 0);
}

#[test]
fn the_inflight_window_counts_only_qos_1_and_2_publishes() {
    let mut state: State<u32> = State::new(2, KEEP_ALIVE, PING_TIMEOUT, Instant::now());
    state.publish(publish("a", QoS::AtMostOnce), 0).unwrap();
    state.subscribe(vec![], None, 0).unwrap();
    assert!(!state.inflight_full());
    state.publish(publish("a", QoS::AtLeastOnce), 0).unwrap();
    state.publish(publish("a", QoS::ExactlyOnce), 0).unwrap();
    assert!(state.inflight_full());
}

#[test]
fn incoming_qos_1_is_acknowledged_only_after_delivery() {
    let mut state = state(Instant::now());
    let mut message = publish("a", QoS::AtLeastOnce);
    message.packet_id = Some(id(9));
    let effects = state.incoming(Packet::Publish(message.clone())).unwrap();
    assert_eq!(effects.reply, None);
    assert_eq!(effects.deliver.as_ref(), Some(&message));
    assert_eq!(
        state.delivered(&message),
        Some(Packet::PubAck(PubAck::new(id(9))))
    );
}

#[test]
fn incoming_qos_2_is_delivered_once_even_when_the_broker_sends_it_again() {
    let mut state = state(Instant::now());
    let mut message = publish("a", QoS::ExactlyOnce);
    message.packet_id = Some(id(3));
    let first = state.incoming(Packet::Publish(message.clone())).unwrap();
    assert!(first.deliver.is_some());
    // The same PUBLISH again before it reached the application: nothing.
    let mut again = message.clone();
    again.dup = true;
    assert_eq!(
        state.incoming(Packet::Publish(again.clone())).unwrap(),
        Effects::default()
    );
    // PUBREL before delivery waits too.
    assert_eq!(
        state.incoming(Packet::PubRel(PubRel::new(id(3)))).unwrap(),
        Effects::default()
    );
    assert_eq!(
        state.delivered(&message),
        Some(Packet::PubRec(PubRec::new(id(3))))
    );
    // After delivery a repeat is answered with PUBREC, not delivered.
    let repeat = state.incoming(Packet::Publish(again)).unwrap();
    assert_eq!(repeat.deliver, None);
    assert_eq!(repeat.reply, Some(Packet::PubRec(PubRec::new(id(3)))));
    let release = state.incoming(Packet::PubRel(PubRel::new(id(3)))).unwrap();
    assert_eq!(release.reply, Some(Packet::PubComp(PubComp::new(id(3)))));
    // The id is free again: a new message with it is new.
    assert!(state
        .incoming(Packet::Publish(message))
        .unwrap()
        .deliver
        .is_some());
}

#[test]
fn inbound_qos_2_ids_survive_a_reconnect_with_session_present() {
    let mut state = state(Instant::now());
    let mut message = publish("a", QoS::ExactlyOnce);
    message.packet_id = Some(id(4));
    state.incoming(Packet::Publish(message.clone())).unwrap();
    state.delivered(&message);
    state.reconnected(true, Instant::now());
    message.dup = true;
    let effects = state.incoming(Packet::Publish(message)).unwrap();
    assert_eq!(effects.deliver, None, "delivered twice across a reconnect");
}

#[test]
fn reconnecting_resends_unacknowledged_packets_in_order_with_dup_mqtt_2_3_1_3() {
    let mut state = state(Instant::now());
    state.publish(publish("one", QoS::AtLeastOnce), 1).unwrap();
    state.publish(publish("two", QoS::ExactlyOnce), 2).unwrap();
    state
        .publish(publish("three", QoS::ExactlyOnce), 3)
        .unwrap();
    let filter = SubscribeFilter::new(TopicFilter::new("x/#").unwrap(), QoS::AtLeastOnce);
    state.subscribe(vec![filter.clone()], None, 4).unwrap();
    state.incoming(Packet::PubRec(PubRec::new(id(3)))).unwrap();

    let resent = state.reconnected(false, Instant::now());
    assert_eq!(resent.len(), 4);
    let one = sent_publish(resent[0].clone());
    assert!(one.dup && one.packet_id == Some(id(1)) && one.topic == "one");
    let two = sent_publish(resent[1].clone());
    assert!(two.dup && two.packet_id == Some(id(2)));
    assert_eq!(resent[2], Packet::PubRel(PubRel::new(id(3))));
    assert_eq!(
        resent[3],
        Packet::Subscribe(Subscribe {
            packet_id: id(4),
            filters: vec![filter],
            properties: None,
        })
    );
    // The ids stay taken until acknowledged.
    let (next, _) = state.publish(publish("four", QoS::AtLeastOnce), 5).unwrap();
    assert_eq!(sent_publish(next).packet_id, Some(id(5)));
}

#[test]
fn an_idle_client_pings_after_keep_alive_and_fails_without_pingresp() {
    let start = Instant::now();
    let mut state = state(start);
    assert_eq!(state.next_keep_alive(), Some(start + KEEP_ALIVE));
    assert_eq!(state.keep_alive_due(start + KEEP_ALIVE / 2), Ok(None));
    let ping_at = start + KEEP_ALIVE;
    assert_eq!(state.keep_alive_due(ping_at), Ok(Some(Packet::PingReq)));
    state.sent(&Packet::PingReq, ping_at);
    assert_eq!(state.next_keep_alive(), Some(ping_at + PING_TIMEOUT));
    assert_eq!(state.keep_alive_due(ping_at + PING_TIMEOUT / 2), Ok(None));
    assert_eq!(
        state.keep_alive_due(ping_at + PING_TIMEOUT),
        Err(StateError::PingTimeout(PING_TIMEOUT))
    );
}

#[test]
fn pingresp_clears_the_outstanding_ping_and_traffic_postpones_the_next() {
    let start = Instant::now();
    let mut state = state(start);
    state.sent(&Packet::PingReq, start);
    state.incoming(Packet::PingResp).unwrap();
    let later = start + Duration::from_secs(3);
    state.sent(&Packet::Disconnect(Default::default()), later);
    assert_eq!(state.next_keep_alive(), Some(later + KEEP_ALIVE));
}

#[test]
fn keep_alive_zero_never_pings() {
    let start = Instant::now();
    let mut state: State<u32> = State::new(10, Duration::ZERO, PING_TIMEOUT, start);
    assert_eq!(state.next_keep_alive(), None);
    assert_eq!(
        state.keep_alive_due(start + Duration::from_secs(3600)),
        Ok(None)
    );
}

#[test]
fn packets_a_broker_never_sends_are_refused() {
    let mut state = state(Instant::now());
    for packet in [
        Packet::PingReq,
        Packet::Disconnect(Default::default()),
        Packet::ConnAck(ConnAck::accepted(false)),
    ] {
        let kind = packet.packet_type();
        assert_eq!(state.incoming(packet), Err(StateError::Unexpected(kind)));
    }
}

#[test]
fn drain_hands_back_every_token_in_order() {
    let mut state = state(Instant::now());
    state.publish(publish("a", QoS::AtLeastOnce), 1).unwrap();
    state
        .unsubscribe(vec![TopicFilter::new("a").unwrap()], None, 2)
        .unwrap();
    state.publish(publish("a", QoS::ExactlyOnce), 3).unwrap();
    assert_eq!(state.drain(), vec![1, 2, 3]);
    assert_eq!(state.inflight(), 0);
}

/// Runs the state machine against bytes: what it sends is encoded and what the
/// broker says is decoded, as on a socket, for a whole QoS 1 and QoS 2 exchange.
#[test]
fn a_conversation_in_bytes_round_trips_through_the_codec() {
    let mut state = state(Instant::now());
    let mut wire = Vec::new();
    let (packet, _) = state.publish(publish("t", QoS::AtLeastOnce), 1).unwrap();
    packet.encode(&mut wire).unwrap();
    let (packet, _) = state.publish(publish("t", QoS::ExactlyOnce), 2).unwrap();
    packet.encode(&mut wire).unwrap();
    let filter = SubscribeFilter::new(TopicFilter::new("t").unwrap(), QoS::ExactlyOnce);
    state
        .subscribe(vec![filter], None, 3)
        .unwrap()
        .encode(&mut wire)
        .unwrap();
    assert_eq!(
        wire,
        [
            0x32, 12, 0, 1, b't', 0, 1, b'p', b'a', b'y', b'l', b'o', b'a',
            b'd', // QoS 1, id 1
            0x34, 12, 0, 1, b't', 0, 2, b'p', b'a', b'y', b'l', b'o', b'a',
            b'd', // QoS 2, id 2
            0x82, 6, 0, 3, 0, 1, b't', 2, // SUBSCRIBE id 3, 't' QoS 2
        ]
    );

    let broker: &[u8] = &[
        0x40, 2, 0, 1, // PUBACK 1
        0x50, 2, 0, 2, // PUBREC 2
        0x90, 3, 0, 3, 2, // SUBACK 3, QoS 2 granted
        0x70, 2, 0, 2, // PUBCOMP 2
        0xB0, 2, 0, 9, // UNSUBACK 9: never asked for
    ];
    let mut buffer = BytesMut::from(broker);
    let mut decoder = Decoder::new();
    let mut completed = Vec::new();
    let mut replies = Vec::new();
    let mut errors = Vec::new();
    while let Some(packet) = decoder.decode(&mut buffer).unwrap() {
        match state.incoming(packet) {
            Ok(effects) => {
                completed.extend(effects.completed);
                replies.extend(effects.reply);
            }
            Err(error) => errors.push(error),
        }
    }
    assert_eq!(
        completed,
        vec![
            (1, Done::Published),
            (3, Done::Subscribed(id(3), vec![ReasonCode(2)])),
            (2, Done::Published),
        ]
    );
    let mut reply_bytes = Vec::new();
    for reply in replies {
        reply.encode(&mut reply_bytes).unwrap();
    }
    assert_eq!(reply_bytes, [0x62, 2, 0, 2]); // PUBREL 2
    assert_eq!(
        errors,
        vec![StateError::Unsolicited(PacketType::UnsubAck, 9)]
    );
}
