//! MQTT 5 in the codec: every packet, with and without properties, survives encode ->
//! decode unchanged; the short forms of acknowledgements; exact bytes of a few
//! packets written out by hand; and what 3.1.1 peers are sent instead.

mod protocol_support;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use protocol_support::{packet_id, qos, topic_filter, topic_name};
use wren::protocol::{
    Auth, ConnAck, Connect, DecodeError, Decoder, Disconnect, EncodeError, Packet, PacketId,
    PacketType, Properties, PropertyContext, ProtocolVersion, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeFilter, TopicFilter,
    TopicName, UnsubAck, Unsubscribe, Will,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

// ---------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------

/// Strings the wire can carry: any Unicode scalar value but U+0000.
fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    proptest::option::weighted(0.3, 0..=1u8)
}

fn some<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(0.3, s)
}

/// Any valid set of properties, cut down to what `context` allows; `None` when
/// nothing is left.
fn properties(context: PropertyContext) -> BoxedStrategy<Option<Box<Properties>>> {
    let publish_like = (
        // (boxed parts: the strategy is too big for a test thread's stack otherwise)
        flag(),
        some(any::<u32>()),
        some(text()),
        some(topic_name().prop_map(|t| t.as_str().to_owned())),
        some(binary()),
        vec(1..=268_435_455u32, 0..3),
    )
        .boxed();
    let session = (
        some(any::<u32>()),
        some(text()),
        some(any::<u16>()),
        some((text(), proptest::option::of(binary()))),
        flag(),
        some(any::<u32>()),
        flag(),
        some(text()),
        some(text()),
        some(text()),
    )
        .boxed();
    let limits = (
        some(1..=u16::MAX),
        some(any::<u16>()),
        some(1..=u16::MAX),
        flag(),
        flag(),
        vec((text(), text()), 0..3),
        some(1..=u32::MAX),
        flag(),
        flag(),
        flag(),
    )
        .boxed();
    (publish_like, session, limits)
        .prop_map(move |(a, b, c)| {
            let mut p = Properties::new();
            (
                p.payload_format_indicator,
                p.message_expiry_interval,
                p.content_type,
                p.response_topic,
                p.correlation_data,
                p.subscription_identifiers,
            ) = a;
            let auth;
            (
                p.session_expiry_interval,
                p.assigned_client_identifier,
                p.server_keep_alive,
                auth,
                p.request_problem_information,
                p.will_delay_interval,
                p.request_response_information,
                p.response_information,
                p.server_reference,
                p.reason_string,
            ) = b;
            if let Some((method, data)) = auth {
                p.authentication_method = Some(method);
                p.authentication_data = data;
            }
            (
                p.receive_maximum,
                p.topic_alias_maximum,
                p.topic_alias,
                p.maximum_qos,
                p.retain_available,
                p.user_properties,
                p.maximum_packet_size,
                p.wildcard_subscription_available,
                p.subscription_identifier_available,
                p.shared_subscription_available,
            ) = c;
            restrict(p, context)
        })
        .boxed()
}

/// Clears every property `context` does not allow.
fn restrict(mut p: Properties, context: PropertyContext) -> Option<Box<Properties>> {
    macro_rules! keep {
        ($($id:literal => $field:ident),* $(,)?) => {
            $(if !context.allows($id) {
                p.$field = Default::default();
            })*
        };
    }
    keep!(
        0x01 => payload_format_indicator, 0x02 => message_expiry_interval,
        0x03 => content_type, 0x08 => response_topic, 0x09 => correlation_data,
        0x0B => subscription_identifiers, 0x11 => session_expiry_interval,
        0x12 => assigned_client_identifier, 0x13 => server_keep_alive,
        0x15 => authentication_method, 0x16 => authentication_data,
        0x17 => request_problem_information, 0x18 => will_delay_interval,
        0x19 => request_response_information, 0x1A => response_information,
        0x1C => server_reference, 0x1F => reason_string, 0x21 => receive_maximum,
        0x22 => topic_alias_maximum, 0x23 => topic_alias, 0x24 => maximum_qos,
        0x25 => retain_available, 0x26 => user_properties, 0x27 => maximum_packet_size,
        0x28 => wildcard_subscription_available,
        0x29 => subscription_identifier_available,
        0x2A => shared_subscription_available,
    );
    if context == PropertyContext::Subscribe {
        p.subscription_identifiers.truncate(1);
    }
    (!p.is_empty()).then(|| Box::new(p))
}

/// The reason codes `packet_type` may carry.
fn code(packet_type: PacketType) -> impl Strategy<Value = ReasonCode> {
    let codes: Vec<ReasonCode> = (0..=255u8)
        .map(ReasonCode)
        .filter(|c| c.allowed_in(packet_type))
        .collect();
    prop::sample::select(codes)
}

fn will() -> BoxedStrategy<Will> {
    (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        properties(PropertyContext::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| {
            let mut will = Will::new(topic, payload, qos, retain);
            will.properties = properties;
            will
        })
        .boxed()
}

fn connect() -> BoxedStrategy<Connect> {
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        proptest::option::of(will()),
        proptest::option::of(text()),
        proptest::option::of(binary()),
        properties(PropertyContext::Connect),
    )
        .prop_map(
            |(clean, keep_alive, client_id, will, username, password, properties)| {
                let mut connect = Connect::new(client_id);
                connect.protocol = V5;
                connect.clean_session = clean;
                connect.keep_alive = keep_alive;
                connect.will = will;
                // MQTT 5 allows a password without a user name.
                connect.username = username;
                connect.password = password;
                connect.properties = properties;
                connect
            },
        )
        .boxed()
}

fn connack() -> BoxedStrategy<ConnAck> {
    (
        code(PacketType::ConnAck),
        any::<bool>(),
        properties(PropertyContext::ConnAck),
    )
        .prop_map(|(code, present, properties)| {
            let mut connack = ConnAck::refused(code);
            connack.session_present = present && code == ReasonCode::SUCCESS;
            connack.properties = properties;
            connack
        })
        .boxed()
}

fn publish() -> BoxedStrategy<Publish> {
    (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        packet_id(),
        properties(PropertyContext::Publish),
        any::<bool>(),
    )
        .prop_map(
            |(topic, payload, qos, retain, dup, id, properties, alias_only)| {
                let mut publish = Publish::new(topic, payload, qos, retain);
                if qos != QoS::AtMostOnce {
                    publish.packet_id = Some(id);
                    publish.dup = dup;
                }
                publish.properties = properties;
                if alias_only && publish.properties().topic_alias.is_some() {
                    publish.topic = TopicName::empty_for_alias();
                }
                publish
            },
        )
        .boxed()
}

macro_rules! ack {
    ($name:ident, $context:ident) => {
        (
            packet_id(),
            code(PacketType::$name),
            properties(PropertyContext::$context),
        )
            .prop_map(|(id, code, properties)| {
                let mut ack = $name::new(id);
                ack.reason_code = code;
                ack.properties = properties;
                Packet::$name(ack)
            })
    };
}

fn subscribe() -> BoxedStrategy<Subscribe> {
    let entry = (topic_filter(), qos(), any::<bool>(), any::<bool>(), 0..3u8).prop_map(
        |(filter, qos, no_local, rap, handling)| {
            let mut entry = SubscribeFilter::new(filter, qos);
            entry.no_local = no_local;
            entry.retain_as_published = rap;
            entry.retain_handling = match handling {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendIfNew,
                _ => RetainHandling::DoNotSend,
            };
            entry
        },
    );
    (
        packet_id(),
        vec(entry, 1..5),
        properties(PropertyContext::Subscribe),
    )
        .prop_map(|(id, filters, properties)| {
            let mut subscribe = Subscribe::new(id, filters);
            subscribe.properties = properties;
            subscribe
        })
        .boxed()
}

fn packet() -> BoxedStrategy<Packet> {
    prop_oneof![
        2 => connect().prop_map(Packet::from),
        1 => connack().prop_map(Packet::ConnAck),
        4 => publish().prop_map(Packet::Publish),
        1 => ack!(PubAck, PubAck),
        1 => ack!(PubRec, PubRec),
        1 => ack!(PubRel, PubRel),
        1 => ack!(PubComp, PubComp),
        1 => subscribe().prop_map(Packet::Subscribe),
        1 => (packet_id(), vec(code(PacketType::SubAck), 1..6), properties(PropertyContext::SubAck))
            .prop_map(|(id, codes, properties)| {
                let mut suback = SubAck::new(id, codes);
                suback.properties = properties;
                Packet::SubAck(suback)
            }),
        1 => (packet_id(), vec(topic_filter(), 1..5), properties(PropertyContext::Unsubscribe))
            .prop_map(|(id, filters, properties)| {
                let mut unsubscribe = Unsubscribe::new(id, filters);
                unsubscribe.properties = properties;
                Packet::Unsubscribe(unsubscribe)
            }),
        1 => (packet_id(), vec(code(PacketType::UnsubAck), 1..6), properties(PropertyContext::UnsubAck))
            .prop_map(|(id, codes, properties)| {
                let mut unsuback = UnsubAck::new(id);
                unsuback.reason_codes = codes;
                unsuback.properties = properties;
                Packet::UnsubAck(unsuback)
            }),
        1 => Just(Packet::PingReq),
        1 => Just(Packet::PingResp),
        1 => (code(PacketType::Disconnect), properties(PropertyContext::Disconnect))
            .prop_map(|(code, properties)| Packet::Disconnect(Disconnect { reason_code: code, properties })),
        1 => (code(PacketType::Auth), properties(PropertyContext::Auth))
            .prop_map(|(code, properties)| Packet::Auth(Auth { reason_code: code, properties })),
    ]
    .boxed()
}

fn encode5(packet: &Packet) -> Vec<u8> {
    let mut out = Vec::new();
    packet
        .encode_for(V5, &mut out)
        .unwrap_or_else(|e| panic!("{packet:?} does not encode: {e}"));
    out
}

fn decode5(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    let mut buffer = BytesMut::from(bytes);
    let packet = Decoder::new().with_version(V5).decode(&mut buffer);
    assert!(packet.is_err() || buffer.is_empty(), "bytes left over");
    packet
}

fn id(value: u16) -> PacketId {
    PacketId::new(value).unwrap()
}

// ---------------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_v5_packet_decodes_to_itself_after_encoding(packet in packet()) {
        let wire = encode5(&packet);
        prop_assert_eq!(decode5(&wire), Ok(Some(packet)));
    }

    #[test]
    fn every_proper_prefix_of_a_v5_packet_waits_for_more(
        packet in packet(),
        cut in any::<prop::sample::Index>(),
    ) {
        let wire = encode5(&packet);
        let cut = cut.index(wire.len());
        let mut buffer = BytesMut::from(&wire[..cut]);
        prop_assert_eq!(Decoder::new().with_version(V5).decode(&mut buffer), Ok(None));
        prop_assert_eq!(buffer.len(), cut);
    }

    #[test]
    fn a_v5_connect_switches_the_decoder_to_v5_for_the_rest_of_the_connection(
        connect in connect(),
        rest in vec(packet().prop_filter("not a CONNECT", |p| !matches!(p, Packet::Connect(_))), 0..6),
        chunk in 1..50usize,
    ) {
        let packets: Vec<Packet> =
            std::iter::once(Packet::from(connect)).chain(rest).collect();
        let stream: Vec<u8> = packets.iter().flat_map(encode5).collect();
        let mut decoder = Decoder::new();
        let mut buffer = BytesMut::new();
        let mut decoded = Vec::new();
        for bytes in stream.chunks(chunk) {
            buffer.extend_from_slice(bytes);
            while let Some(packet) = decoder.decode(&mut buffer).expect("valid stream") {
                decoded.push(packet);
            }
        }
        prop_assert_eq!(decoder.version(), V5);
        prop_assert_eq!(decoded, packets);
    }

    #[test]
    fn empty_properties_encode_as_none(packet in packet()) {
        // `Some(empty)` and `None` write the same bytes.
        let mut with_empty = packet.clone();
        if let Packet::PubAck(ack) = &mut with_empty {
            if ack.properties.is_none() {
                ack.properties = Some(Box::default());
            }
        }
        prop_assert_eq!(encode5(&with_empty), encode5(&packet));
    }
}

// ---------------------------------------------------------------------------------
// Exact bytes.
// ---------------------------------------------------------------------------------

#[test]
fn a_v5_connect_with_properties_has_exact_bytes_mqtt5_3_1_3_1() {
    let mut connect = Connect::new("c");
    connect.protocol = V5;
    connect.properties = Some(Box::new(Properties {
        session_expiry_interval: Some(10),
        receive_maximum: Some(20),
        user_properties: vec![("a".into(), "b".into())],
        ..Properties::new()
    }));
    #[rustfmt::skip]
    let bytes: &[u8] = &[
        0x10, 29,                           // CONNECT, remaining length
        0, 4, b'M', b'Q', b'T', b'T', 5,    // protocol name, level 5
        0b10, 0, 60,                        // clean start, keep alive
        15,                                 // property length
        0x11, 0, 0, 0, 10,                  // session expiry interval
        0x21, 0, 20,                        // receive maximum
        0x26, 0, 1, b'a', 0, 1, b'b',       // user property
        0, 1, b'c',                         // client id
    ];
    let packet = Packet::from(connect);
    assert_eq!(encode5(&packet), bytes);
    // A server's decoder learns MQTT 5 from the CONNECT itself.
    assert_eq!(
        Decoder::new().decode(&mut BytesMut::from(bytes)),
        Ok(Some(packet))
    );
}

#[test]
fn a_v5_will_carries_its_properties_before_its_topic_mqtt5_3_1_3_1() {
    let mut connect = Connect::new("");
    connect.protocol = V5;
    let mut will = Will::new(TopicName::new("w").unwrap(), "x", QoS::AtMostOnce, false);
    will.properties = Some(Box::new(Properties {
        will_delay_interval: Some(5),
        ..Properties::new()
    }));
    connect.will = Some(will);
    connect.password = Some(Bytes::from_static(b"p"));
    #[rustfmt::skip]
    let bytes: &[u8] = &[
        0x10, 28,
        0, 4, b'M', b'Q', b'T', b'T', 5,
        0b0100_0110, 0, 60,                 // password (no user name), will, clean start
        0,                                  // no properties
        0, 0,                               // client id ""
        5, 0x18, 0, 0, 0, 5,                // will properties: will delay interval
        0, 1, b'w', 0, 1, b'x',             // will topic, will payload
        0, 1, b'p',                         // password
    ];
    let packet = Packet::from(connect);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(
        Decoder::new().decode(&mut BytesMut::from(bytes)),
        Ok(Some(packet))
    );
}

#[test]
fn a_v5_connack_with_properties_has_exact_bytes_in_ascending_order() {
    let mut connack = ConnAck::accepted(false);
    connack.properties = Some(Box::new(Properties {
        maximum_qos: Some(1),
        assigned_client_identifier: Some("id".into()),
        ..Properties::new()
    }));
    let bytes: &[u8] = &[0x20, 10, 0, 0, 7, 0x12, 0, 2, b'i', b'd', 0x24, 1];
    let packet = Packet::ConnAck(connack);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(decode5(bytes), Ok(Some(packet)));
}

#[test]
fn a_v5_subscribe_carries_its_options_and_subscription_identifier() {
    let mut entry = SubscribeFilter::new(TopicFilter::new("a/b").unwrap(), QoS::AtLeastOnce);
    entry.no_local = true;
    entry.retain_as_published = true;
    entry.retain_handling = RetainHandling::DoNotSend;
    let mut subscribe = Subscribe::new(id(1), vec![entry]);
    subscribe.properties = Some(Box::new(Properties {
        subscription_identifiers: vec![200],
        ..Properties::new()
    }));
    #[rustfmt::skip]
    let bytes: &[u8] = &[
        0x82, 12, 0, 1,
        3, 0x0B, 0xC8, 0x01,                // subscription identifier 200
        0, 3, b'a', b'/', b'b', 0x2D,       // QoS 1, no local, RAP, retain handling 2
    ];
    let packet = Packet::Subscribe(subscribe);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(decode5(bytes), Ok(Some(packet.clone())));
    // 3.1.1 carries the QoS alone.
    let mut out = Vec::new();
    packet.encode(&mut out).unwrap();
    assert_eq!(out, [0x82, 8, 0, 1, 0, 3, b'a', b'/', b'b', 1]);
}

#[test]
fn a_v5_disconnect_with_a_reason_has_exact_bytes_mqtt5_3_14_2_1() {
    let cases: [(Disconnect, &[u8]); 3] = [
        (Disconnect::default(), &[0xE0, 0]),
        (
            Disconnect::new(ReasonCode::SESSION_TAKEN_OVER),
            &[0xE0, 1, 0x8E],
        ),
        (
            Disconnect {
                reason_code: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
                properties: Some(Box::new(Properties {
                    reason_string: Some("x".into()),
                    ..Properties::new()
                })),
            },
            &[0xE0, 6, 0x04, 4, 0x1F, 0, 1, b'x'],
        ),
    ];
    for (disconnect, bytes) in cases {
        let packet = Packet::Disconnect(disconnect);
        assert_eq!(encode5(&packet), bytes);
        assert_eq!(decode5(bytes), Ok(Some(packet.clone())));
        // 3.1.1 has no reason: the fixed header alone.
        let mut out = Vec::new();
        packet.encode(&mut out).unwrap();
        assert_eq!(out, [0xE0, 0]);
    }
}

#[test]
fn acks_use_the_short_forms_mqtt5_3_4_2_1_and_3_5_2_1_and_3_6_2_1_and_3_7_2_1() {
    let mut with_code = PubRec::new(id(7));
    with_code.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    let mut with_props = PubComp::new(id(7));
    with_props.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
    with_props.properties = Some(Box::new(Properties {
        reason_string: Some("x".into()),
        ..Properties::new()
    }));
    let cases: [(Packet, &[u8]); 4] = [
        (Packet::PubAck(PubAck::new(id(7))), &[0x40, 2, 0, 7]),
        (Packet::PubRel(PubRel::new(id(7))), &[0x62, 2, 0, 7]),
        (Packet::PubRec(with_code), &[0x50, 3, 0, 7, 0x10]),
        (
            Packet::PubComp(with_props),
            &[0x70, 8, 0, 7, 0x92, 4, 0x1F, 0, 1, b'x'],
        ),
    ];
    for (packet, bytes) in cases {
        assert_eq!(encode5(&packet), bytes, "{packet}");
        assert_eq!(decode5(bytes), Ok(Some(packet)));
    }
    // The long forms of success decode too: reason code 0, property length 0.
    assert_eq!(
        decode5(&[0x40, 4, 0, 7, 0, 0]),
        Ok(Some(Packet::PubAck(PubAck::new(id(7)))))
    );
    assert_eq!(
        decode5(&[0x40, 3, 0, 7, 0]),
        Ok(Some(Packet::PubAck(PubAck::new(id(7)))))
    );
}

#[test]
fn a_v5_suback_and_unsuback_carry_one_code_per_filter_mqtt5_3_8_4_6() {
    let suback = SubAck::new(
        id(9),
        [ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED],
    );
    let bytes: &[u8] = &[0x90, 5, 0, 9, 0, 0x01, 0x87];
    let packet = Packet::SubAck(suback);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(decode5(bytes), Ok(Some(packet.clone())));
    // 3.1.1: any error becomes 0x80 [MQTT-3.9.3-2].
    let mut out = Vec::new();
    packet.encode(&mut out).unwrap();
    assert_eq!(out, [0x90, 4, 0, 9, 0x01, 0x80]);

    let mut unsuback = UnsubAck::new(id(9));
    unsuback.reason_codes = vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED];
    let bytes: &[u8] = &[0xB0, 5, 0, 9, 0, 0x00, 0x11];
    let packet = Packet::UnsubAck(unsuback);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(decode5(bytes), Ok(Some(packet.clone())));
    let mut out = Vec::new();
    packet.encode(&mut out).unwrap();
    assert_eq!(out, [0xB0, 2, 0, 9]);
}

#[test]
fn a_publish_may_name_its_topic_by_alias_alone() {
    let mut publish = Publish::new(TopicName::empty_for_alias(), "hi", QoS::AtMostOnce, false);
    publish.properties = Some(Box::new(Properties {
        topic_alias: Some(5),
        ..Properties::new()
    }));
    let bytes: &[u8] = &[0x30, 8, 0, 0, 3, 0x23, 0, 5, b'h', b'i'];
    let packet = Packet::Publish(publish);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(decode5(bytes), Ok(Some(packet.clone())));
    // 3.1.1 has no topic alias: such a PUBLISH cannot be written for it.
    let mut out = Vec::new();
    assert!(matches!(
        packet.encode(&mut out),
        Err(EncodeError::NotInVersion { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn a_publish_may_carry_several_subscription_identifiers() {
    let mut publish = Publish::new(TopicName::new("t").unwrap(), "", QoS::AtMostOnce, false);
    publish.properties = Some(Box::new(Properties {
        subscription_identifiers: vec![1, 268_435_455],
        user_properties: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
        ..Properties::new()
    }));
    #[rustfmt::skip]
    let bytes: &[u8] = &[
        0x30, 25, 0, 1, b't',
        21,
        0x0B, 1,
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F,
        0x26, 0, 1, b'k', 0, 1, b'1',       // user properties keep their order
        0x26, 0, 1, b'k', 0, 1, b'2',
    ];
    let packet = Packet::Publish(publish);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(decode5(bytes), Ok(Some(packet)));
}

#[test]
fn auth_exists_only_in_mqtt_5_mqtt5_3_15_2_1() {
    let mut auth = Auth::new(ReasonCode::CONTINUE_AUTHENTICATION);
    auth.properties = Some(Box::new(Properties {
        authentication_method: Some("m".into()),
        authentication_data: Some(Bytes::from_static(b"d")),
        ..Properties::new()
    }));
    let bytes: &[u8] = &[0xF0, 10, 0x18, 8, 0x15, 0, 1, b'm', 0x16, 0, 1, b'd'];
    let packet = Packet::Auth(auth);
    assert_eq!(encode5(&packet), bytes);
    assert_eq!(decode5(bytes), Ok(Some(packet.clone())));
    assert_eq!(decode5(&[0xF0, 0]), Ok(Some(Packet::Auth(Auth::default()))));
    let mut out = Vec::new();
    assert!(matches!(
        packet.encode(&mut out),
        Err(EncodeError::NotInVersion { .. })
    ));
    assert_eq!(
        Decoder::new().decode(&mut BytesMut::from(&[0xF0, 0][..])),
        Err(DecodeError::ReservedPacketType(15, 0xF0))
    );
}

#[test]
fn a_connack_for_3_1_1_carries_the_nearest_return_code() {
    let cases = [
        (ReasonCode::SUCCESS, 0),
        (ReasonCode::UNSUPPORTED_PROTOCOL_VERSION, 1),
        (ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, 2),
        (ReasonCode::SERVER_UNAVAILABLE, 3),
        (ReasonCode::SERVER_BUSY, 3),
        (ReasonCode::UNSPECIFIED_ERROR, 3),
        (ReasonCode::BAD_USER_NAME_OR_PASSWORD, 4),
        (ReasonCode::NOT_AUTHORIZED, 5),
        (ReasonCode::BANNED, 5),
        (ReasonCode::BAD_AUTHENTICATION_METHOD, 5),
    ];
    for (code, byte) in cases {
        let mut connack = ConnAck::refused(code);
        connack.properties = Some(Box::new(Properties {
            reason_string: Some("dropped for 3.1.1".into()),
            ..Properties::new()
        }));
        let mut out = Vec::new();
        Packet::ConnAck(connack)
            .encode_for(ProtocolVersion::V3_1_1, &mut out)
            .unwrap();
        assert_eq!(out, [0x20, 2, 0, byte], "{code}");
    }
}

#[test]
fn encoding_refuses_what_a_v5_receiver_would_refuse() {
    let mut ack = PubAck::new(id(1));
    ack.reason_code = ReasonCode::GRANTED_QOS_2;
    let mut out = Vec::new();
    assert_eq!(
        Packet::PubAck(ack).encode_for(V5, &mut out),
        Err(EncodeError::InvalidReasonCode {
            packet_type: PacketType::PubAck,
            code: ReasonCode::GRANTED_QOS_2
        })
    );
    let mut ack = PubAck::new(id(1));
    ack.properties = Some(Box::new(Properties {
        topic_alias: Some(1),
        ..Properties::new()
    }));
    assert_eq!(
        Packet::PubAck(ack).encode_for(V5, &mut out),
        Err(EncodeError::InvalidProperties(
            DecodeError::PropertyNotAllowed {
                packet_type: PacketType::PubAck,
                id: 0x23
            }
        ))
    );
    let mut publish = Publish::new(TopicName::new("t").unwrap(), "", QoS::AtMostOnce, false);
    publish.properties = Some(Box::new(Properties {
        topic_alias: Some(0),
        ..Properties::new()
    }));
    assert!(Packet::Publish(publish).encode_for(V5, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn packet_stays_small() {
    // 72 bytes before MQTT 5; the boxed properties of PUBLISH add one pointer.
    assert!(std::mem::size_of::<Packet>() <= 80);
}

#[test]
fn log_lines_show_3_1_1_codes_as_before_and_other_mqtt_5_codes_in_hex() {
    use wren::protocol::{ConnectReturnCode, SubscribeReturnCode};
    let line = |packet: Packet| packet.to_string();
    assert_eq!(
        line(Packet::ConnAck(ConnAck::refused(
            ConnectReturnCode::NotAuthorized
        ))),
        "CONNACK (0, 5)"
    );
    assert_eq!(
        line(Packet::ConnAck(ConnAck::refused(ReasonCode::BANNED))),
        "CONNACK (0, 0x8A)"
    );
    assert_eq!(
        line(Packet::SubAck(SubAck::new(
            id(1),
            [
                SubscribeReturnCode::Success(QoS::AtMostOnce),
                SubscribeReturnCode::Failure
            ]
        ))),
        "SUBACK (m1, [Success(AtMostOnce), Failure])"
    );
    assert_eq!(
        line(Packet::SubAck(SubAck::new(
            id(1),
            [ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED]
        ))),
        "SUBACK (m1, [0x01, 0x87])"
    );
    assert_eq!(
        line(Packet::Disconnect(Disconnect::new(
            ReasonCode::SERVER_SHUTTING_DOWN
        ))),
        "DISCONNECT (0x8B)"
    );
}
