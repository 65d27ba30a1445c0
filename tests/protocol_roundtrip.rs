//! Property tests: every packet the types can hold and the wire can carry survives
//! encode -> decode unchanged, however the bytes are cut into reads.

mod protocol_support;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use protocol_support::{packet_id, qos, topic_filter, topic_name};
use wren::protocol::{
    ConnAck, Connect, ConnectReturnCode, Decoder, EncodeError, Packet, PacketId, ProtocolVersion,
    PubAck, PubComp, PubRec, PubRel, Publish, QoS, SubAck, Subscribe, SubscribeFilter,
    SubscribeReturnCode, TopicName, UnsubAck, Unsubscribe, Will,
};

// ---------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------

/// Payloads: usually short, sometimes long enough for two- and three-byte remaining
/// lengths, including empty and arbitrary binary.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..64),
        2 => vec(any::<u8>(), 100..400),
        1 => vec(any::<u8>(), 16_000..17_000),
    ]
    .prop_map(Bytes::from)
}

/// Strings the wire can carry: any Unicode scalar value but U+0000.
fn mqtt_string() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace('\0', ""))
}

/// Any string at all, often with U+0000 in it.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        vec(prop_oneof![Just('a'), Just('\0'), Just('é')], 0..5)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
    ]
}

fn publish() -> impl Strategy<Value = Publish> {
    (
        topic_name(),
        payload(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        packet_id(),
    )
        .prop_map(|(topic, payload, qos, retain, dup, id)| {
            let mut publish = Publish::new(topic, payload, qos, retain);
            if qos != QoS::AtMostOnce {
                publish.packet_id = Some(id);
                publish.dup = dup;
            }
            publish
        })
}

fn will() -> impl Strategy<Value = Will> {
    (topic_name(), payload(), qos(), any::<bool>()).prop_map(|(topic, payload, qos, retain)| Will {
        topic,
        payload,
        qos,
        retain,
        properties: None,
    })
}

fn connect() -> impl Strategy<Value = Connect> {
    (
        prop_oneof![Just(ProtocolVersion::V3_1), Just(ProtocolVersion::V3_1_1)],
        any::<bool>(),
        any::<u16>(),
        mqtt_string(),
        proptest::option::of(will()),
        proptest::option::of((mqtt_string(), proptest::option::of(vec(any::<u8>(), 0..32)))),
    )
        .prop_map(
            |(protocol, clean_session, keep_alive, client_id, will, login)| {
                let (username, password) = match login {
                    Some((user, password)) => (Some(user), password.map(Bytes::from)),
                    None => (None, None),
                };
                Connect {
                    protocol,
                    clean_session,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties: None,
                    bridge: false,
                }
            },
        )
}

fn connack() -> impl Strategy<Value = ConnAck> {
    (0..=5u8, any::<bool>()).prop_map(|(code, session_present)| {
        let code = ConnectReturnCode::from_u8(code).expect("0 to 5 are defined");
        if code == ConnectReturnCode::Accepted {
            ConnAck::accepted(session_present)
        } else {
            ConnAck::refused(code)
        }
    })
}

fn subscribe() -> impl Strategy<Value = Subscribe> {
    (
        packet_id(),
        vec(
            (topic_filter(), qos()).prop_map(|(f, q)| SubscribeFilter::new(f, q)),
            1..8,
        ),
    )
        .prop_map(|(packet_id, filters)| Subscribe {
            packet_id,
            filters,
            properties: None,
        })
}

fn suback() -> impl Strategy<Value = SubAck> {
    let code = prop_oneof![
        qos().prop_map(SubscribeReturnCode::Success),
        Just(SubscribeReturnCode::Failure)
    ];
    (packet_id(), vec(code, 1..20))
        .prop_map(|(packet_id, return_codes)| SubAck::new(packet_id, return_codes))
}

fn unsubscribe() -> impl Strategy<Value = Unsubscribe> {
    (packet_id(), vec(topic_filter(), 1..8)).prop_map(|(packet_id, filters)| Unsubscribe {
        packet_id,
        filters,
        properties: None,
    })
}

/// A packet of any of the fourteen types.
fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        1 => connect().prop_map(Packet::from),
        1 => connack().prop_map(Packet::ConnAck),
        4 => publish().prop_map(Packet::Publish),
        1 => packet_id().prop_map(|id| Packet::PubAck(PubAck::new(id))),
        1 => packet_id().prop_map(|id| Packet::PubRec(PubRec::new(id))),
        1 => packet_id().prop_map(|id| Packet::PubRel(PubRel::new(id))),
        1 => packet_id().prop_map(|id| Packet::PubComp(PubComp::new(id))),
        1 => subscribe().prop_map(Packet::Subscribe),
        1 => suback().prop_map(Packet::SubAck),
        1 => unsubscribe().prop_map(Packet::Unsubscribe),
        1 => packet_id().prop_map(|id| Packet::UnsubAck(UnsubAck::new(id))),
        1 => Just(Packet::PingReq),
        1 => Just(Packet::PingResp),
        1 => Just(Packet::Disconnect(Default::default())),
    ]
}

fn encode(packet: &Packet) -> Vec<u8> {
    let mut out = Vec::new();
    packet
        .encode(&mut out)
        .expect("generated packets are encodable");
    out
}

// ---------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_packet_decodes_to_itself_after_encoding(packet in packet()) {
        let wire = encode(&packet);
        let mut buffer = BytesMut::from(&wire[..]);
        prop_assert_eq!(Decoder::new().decode(&mut buffer), Ok(Some(packet)));
        prop_assert!(buffer.is_empty(), "{} bytes left over", buffer.len());
    }

    #[test]
    fn every_proper_prefix_of_a_packet_waits_for_more(packet in packet(), cut in any::<prop::sample::Index>()) {
        let wire = encode(&packet);
        let cut = cut.index(wire.len());
        let mut buffer = BytesMut::from(&wire[..cut]);
        prop_assert_eq!(Decoder::new().decode(&mut buffer), Ok(None));
        prop_assert_eq!(buffer.len(), cut);
    }

    #[test]
    fn packets_fed_in_random_chunks_come_out_whole_and_in_order(
        packets in vec(packet(), 1..8),
        chunks in vec(1..80usize, 1..40),
    ) {
        let stream: Vec<u8> = packets.iter().flat_map(encode).collect();
        let mut decoder = Decoder::new();
        let mut buffer = BytesMut::new();
        let mut decoded = Vec::new();
        let mut position = 0;
        let mut sizes = chunks.iter().cycle();
        while position < stream.len() {
            let size = (*sizes.next().expect("cycle never ends")).min(stream.len() - position);
            buffer.extend_from_slice(&stream[position..position + size]);
            position += size;
            while let Some(packet) = decoder.decode(&mut buffer).expect("valid stream") {
                decoded.push(packet);
                prop_assert!(decoded.len() <= packets.len());
            }
        }
        prop_assert_eq!(decoded, packets);
        prop_assert!(buffer.is_empty());
    }

    #[test]
    fn publish_encoded_len_is_the_number_of_bytes_written(
        publish in publish(),
        already_there in vec(any::<u8>(), 0..16),
    ) {
        let mut out = already_there.clone();
        publish.encode(&mut out).expect("encodes");
        prop_assert_eq!(out.len() - already_there.len(), publish.encoded_len());
        prop_assert_eq!(&out[..already_there.len()], &already_there[..]);
    }

    #[test]
    fn what_encodes_decodes_to_itself_even_with_arbitrary_strings(
        client_id in any_string(),
        username in proptest::option::of(any_string()),
        password in proptest::option::of(vec(any::<u8>(), 0..8)),
    ) {
        // The encoder either refuses a value or writes bytes a strict peer accepts.
        let mut connect = Connect::new(client_id);
        connect.username = username;
        connect.password = password.map(Bytes::from);
        let packet = Packet::from(connect);
        let mut out = Vec::new();
        match packet.encode(&mut out) {
            Ok(()) => prop_assert_eq!(
                Decoder::new().decode(&mut BytesMut::from(&out[..])),
                Ok(Some(packet))
            ),
            Err(_) => prop_assert!(out.is_empty(), "a refused packet wrote {} bytes", out.len()),
        }
    }
}

#[test]
fn a_publish_with_a_four_byte_remaining_length_round_trips() {
    // 2,097,152 bytes of body and more need the fourth remaining-length byte.
    let mut publish = Publish::new(
        TopicName::new("big").unwrap(),
        vec![0xA5; 2_097_152],
        QoS::ExactlyOnce,
        true,
    );
    publish.packet_id = PacketId::new(65_535);
    let wire = encode(&Packet::Publish(publish.clone()));
    assert_eq!(wire.len(), publish.encoded_len());
    assert_eq!(&wire[1..5], &[0x87, 0x80, 0x80, 0x01]);
    let mut decoder = Decoder::new().with_max_packet_size(wire.len());
    assert_eq!(
        decoder.decode(&mut BytesMut::from(&wire[..])),
        Ok(Some(Packet::Publish(publish)))
    );
}

#[test]
fn encoding_a_field_longer_than_65535_bytes_is_refused_and_writes_nothing() {
    let packet = Packet::from(Connect::new("x".repeat(65_536)));
    let mut out = vec![1, 2, 3];
    assert_eq!(
        packet.encode(&mut out),
        Err(EncodeError::FieldTooLong {
            field: "client id",
            len: 65_536
        })
    );
    assert_eq!(out, [1, 2, 3]);
}
