//! MQTT 5 packets that break a rule: each is refused with the error that names the
//! rule, and [`DecodeError::reason_code`] gives the reason code the receiver sends
//! (0x81 Malformed Packet, 0x82 Protocol Error, ...).
//!
//! Rules with an id end their test's name with it (`_mqtt5_x_y_z_n`); the "It is a
//! Protocol Error to ..." rules of MQTT 5 have none and cite their section.

use bytes::BytesMut;
use wren::protocol::{DecodeError, Decoder, Packet, PacketType, ProtocolVersion, ReasonCode};

use DecodeError::*;
use PacketType as T;

const MALFORMED: ReasonCode = ReasonCode::MALFORMED_PACKET;
const PROTOCOL_ERROR: ReasonCode = ReasonCode::PROTOCOL_ERROR;

/// A packet: `first` byte, one-byte remaining length, `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut bytes = vec![first, body.len() as u8];
    bytes.extend_from_slice(body);
    bytes
}

/// A PUBACK for packet id 7 with reason code 0 and these properties.
fn puback_with(properties: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 7, 0, properties.len() as u8];
    body.extend_from_slice(properties);
    packet(0x40, &body)
}

/// A CONNECT of level 5 for client "c" with these properties.
fn connect_with(properties: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0b10, 0, 60];
    body.push(properties.len() as u8);
    body.extend_from_slice(properties);
    body.extend_from_slice(&[0, 1, b'c']);
    packet(0x10, &body)
}

/// A successful CONNACK with these properties.
fn connack_with(properties: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0, properties.len() as u8];
    body.extend_from_slice(properties);
    packet(0x20, &body)
}

/// A QoS 0 PUBLISH to "t" with these properties and payload "x".
fn publish_with(properties: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1, b't', properties.len() as u8];
    body.extend_from_slice(properties);
    body.push(b'x');
    packet(0x30, &body)
}

/// A SUBSCRIBE with id 1, these properties and one filter "a" with `options`.
fn subscribe_with(properties: &[u8], filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = vec![0, 1, properties.len() as u8];
    body.extend_from_slice(properties);
    body.extend_from_slice(&[0, filter.len() as u8]);
    body.extend_from_slice(filter);
    body.push(options);
    packet(0x82, &body)
}

/// Decodes `bytes` on an MQTT 5 connection (a CONNECT tells its own version).
fn decode5(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    Decoder::new()
        .with_version(ProtocolVersion::V5)
        .decode(&mut BytesMut::from(bytes))
}

/// `bytes` are refused with `expected`, which maps to `code`, also when they arrive
/// one byte at a time.
fn refused(bytes: &[u8], expected: DecodeError, code: ReasonCode) {
    assert_eq!(decode5(bytes), Err(expected.clone()), "{bytes:02X?}");
    assert_eq!(expected.reason_code(), code, "{expected}");
    let mut decoder = Decoder::new().with_version(ProtocolVersion::V5);
    let mut buffer = BytesMut::new();
    let mut result = Ok(None);
    for &byte in bytes {
        buffer.extend_from_slice(&[byte]);
        result = decoder.decode(&mut buffer);
        if result != Ok(None) {
            break;
        }
    }
    assert_eq!(result, Err(expected));
}

#[test]
fn a_property_length_past_the_end_of_the_packet_is_malformed() {
    // Section 2.2.2.1.
    refused(
        &packet(0x40, &[0, 7, 0, 5]),
        PropertyLengthOverrun {
            packet_type: T::PubAck,
            length: 5,
            remaining: 0,
        },
        MALFORMED,
    );
}

#[test]
fn a_property_value_past_the_property_length_is_malformed() {
    // Property length 2, but the Reason String announces 1 byte after its prefix.
    refused(
        &packet(0x40, &[0, 7, 0, 2, 0x1F, 0, 1, b'x']),
        Truncated {
            packet_type: T::PubAck,
            field: "Reason String",
        },
        MALFORMED,
    );
}

#[test]
fn an_unknown_property_is_malformed() {
    // Section 2.2.2.2.
    refused(
        &puback_with(&[0x7F, 0]),
        UnknownProperty {
            packet_type: T::PubAck,
            id: 0x7F,
        },
        MALFORMED,
    );
}

#[test]
fn a_property_the_packet_may_not_carry_is_malformed() {
    // Section 2.2.2.2: Topic Alias belongs to PUBLISH.
    refused(
        &puback_with(&[0x23, 0, 1]),
        PropertyNotAllowed {
            packet_type: T::PubAck,
            id: 0x23,
        },
        MALFORMED,
    );
    // Will Delay Interval belongs to the will, not to CONNECT itself.
    refused(
        &connect_with(&[0x18, 0, 0, 0, 1]),
        PropertyNotAllowed {
            packet_type: T::Connect,
            id: 0x18,
        },
        MALFORMED,
    );
    // A PUBLISH carries no Reason String.
    refused(
        &publish_with(&[0x1F, 0, 0]),
        PropertyNotAllowed {
            packet_type: T::Publish,
            id: 0x1F,
        },
        MALFORMED,
    );
}

#[test]
fn a_repeated_property_is_a_protocol_error() {
    // Section 2.2.2.2: only User Property (and Subscription Identifier in PUBLISH)
    // may repeat.
    refused(
        &puback_with(&[0x1F, 0, 1, b'a', 0x1F, 0, 1, b'b']),
        DuplicateProperty {
            packet_type: T::PubAck,
            id: 0x1F,
        },
        PROTOCOL_ERROR,
    );
    refused(
        &subscribe_with(&[0x0B, 1, 0x0B, 2], b"a", 0),
        DuplicateProperty {
            packet_type: T::Subscribe,
            id: 0x0B,
        },
        PROTOCOL_ERROR,
    );
    // Repeated user properties are fine.
    assert!(decode5(&puback_with(&[0x26, 0, 0, 0, 0, 0x26, 0, 0, 0, 0])).is_ok());
}

#[test]
fn receive_maximum_0_is_a_protocol_error() {
    // Sections 3.1.2.11.3 and 3.2.2.3.3.
    refused(
        &connect_with(&[0x21, 0, 0]),
        ZeroProperty {
            packet_type: T::Connect,
            property: "Receive Maximum",
        },
        PROTOCOL_ERROR,
    );
}

#[test]
fn maximum_packet_size_0_is_a_protocol_error() {
    // Sections 3.1.2.11.4 and 3.2.2.3.6.
    refused(
        &connack_with(&[0x27, 0, 0, 0, 0]),
        ZeroProperty {
            packet_type: T::ConnAck,
            property: "Maximum Packet Size",
        },
        PROTOCOL_ERROR,
    );
}

#[test]
fn topic_alias_0_is_refused_with_topic_alias_invalid_mqtt5_3_3_2_8() {
    refused(
        &publish_with(&[0x23, 0, 0]),
        ZeroProperty {
            packet_type: T::Publish,
            property: "Topic Alias",
        },
        ReasonCode::TOPIC_ALIAS_INVALID,
    );
}

#[test]
fn subscription_identifier_0_is_a_protocol_error() {
    // Sections 3.3.2.3.8 and 3.8.2.1.2.
    refused(
        &subscribe_with(&[0x0B, 0], b"a", 0),
        SubscriptionIdentifierOutOfRange {
            packet_type: T::Subscribe,
        },
        PROTOCOL_ERROR,
    );
}

#[test]
fn flag_properties_other_than_0_or_1_are_a_protocol_error() {
    // Sections 3.1.2.11.6, 3.1.2.11.7, 3.2.2.3.4, 3.2.2.3.5, 3.2.2.3.11 to 13,
    // 3.3.2.3.2.
    let cases: [(Vec<u8>, T, &str); 8] = [
        (
            connect_with(&[0x17, 2]),
            T::Connect,
            "Request Problem Information",
        ),
        (
            connect_with(&[0x19, 2]),
            T::Connect,
            "Request Response Information",
        ),
        (connack_with(&[0x24, 2]), T::ConnAck, "Maximum QoS"),
        (connack_with(&[0x25, 2]), T::ConnAck, "Retain Available"),
        (
            connack_with(&[0x28, 2]),
            T::ConnAck,
            "Wildcard Subscription Available",
        ),
        (
            connack_with(&[0x29, 2]),
            T::ConnAck,
            "Subscription Identifier Available",
        ),
        (
            connack_with(&[0x2A, 0xFF]),
            T::ConnAck,
            "Shared Subscription Available",
        ),
        (
            publish_with(&[0x01, 2]),
            T::Publish,
            "Payload Format Indicator",
        ),
    ];
    for (bytes, packet_type, property) in cases {
        let value = bytes[bytes.len() - if packet_type == T::Publish { 2 } else { 1 }];
        let value = if packet_type == T::Connect {
            bytes[bytes.len() - 4]
        } else {
            value
        };
        refused(
            &bytes,
            PropertyNotZeroOrOne {
                packet_type,
                property,
                value,
            },
            PROTOCOL_ERROR,
        );
    }
}

#[test]
fn a_property_string_that_is_not_utf_8_is_malformed_mqtt5_1_5_4_1() {
    // A UTF-16 surrogate, ED A0 80.
    refused(
        &puback_with(&[0x1F, 0, 3, 0xED, 0xA0, 0x80]),
        InvalidUtf8 {
            packet_type: T::PubAck,
            field: "Reason String",
        },
        MALFORMED,
    );
}

#[test]
fn a_property_string_with_u0000_is_malformed_mqtt5_1_5_4_2() {
    refused(
        &publish_with(&[0x03, 0, 1, 0]),
        NullCharacter {
            packet_type: T::Publish,
            field: "Content Type",
        },
        MALFORMED,
    );
}

#[test]
fn a_bad_user_property_name_or_value_is_malformed_mqtt5_1_5_7_1() {
    for properties in [&[0x26, 0, 1, 0, 0, 0][..], &[0x26, 0, 0, 0, 1, 0xFF]] {
        let error = decode5(&puback_with(properties)).unwrap_err();
        assert!(
            matches!(
                error,
                NullCharacter {
                    field: "User Property",
                    ..
                } | InvalidUtf8 {
                    field: "User Property",
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.reason_code(), MALFORMED);
    }
}

#[test]
fn a_variable_byte_integer_in_more_bytes_than_needed_is_malformed_mqtt5_1_5_5_1() {
    // Property length 0 written in two bytes.
    refused(
        &packet(0x40, &[0, 7, 0, 0x80, 0x00]),
        MalformedVariableByteInteger {
            packet_type: T::PubAck,
            field: "property length",
        },
        MALFORMED,
    );
    // A subscription identifier in five bytes.
    refused(
        &subscribe_with(&[0x0B, 0x81, 0x80, 0x80, 0x80, 0x01], b"a", 0),
        MalformedVariableByteInteger {
            packet_type: T::Subscribe,
            field: "Subscription Identifier",
        },
        MALFORMED,
    );
}

#[test]
fn authentication_data_without_a_method_is_a_protocol_error() {
    // Section 3.1.2.11.10.
    refused(
        &packet(0xF0, &[0x18, 4, 0x16, 0, 1, b'd']),
        AuthenticationDataWithoutMethod {
            packet_type: T::Auth,
        },
        PROTOCOL_ERROR,
    );
}

#[test]
fn a_response_topic_with_a_wildcard_is_refused_mqtt5_3_3_2_14() {
    refused(
        &publish_with(&[0x08, 0, 3, b'r', b'/', b'+']),
        WildcardInResponseTopic {
            packet_type: T::Publish,
        },
        PROTOCOL_ERROR,
    );
}

#[test]
fn each_packet_refuses_reason_codes_outside_its_table() {
    // [MQTT-3.2.2-8] [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1]
    // [MQTT-3.9.3-2] [MQTT-3.11.3-2] [MQTT-3.14.2-1] [MQTT-3.15.2-1]
    let cases: [(Vec<u8>, T, u8); 9] = [
        (packet(0x20, &[0, 0x01, 0]), T::ConnAck, 0x01),
        (packet(0x40, &[0, 7, 0x01]), T::PubAck, 0x01),
        (packet(0x50, &[0, 7, 0x92]), T::PubRec, 0x92),
        (packet(0x62, &[0, 7, 0x80]), T::PubRel, 0x80),
        (packet(0x70, &[0, 7, 0x10]), T::PubComp, 0x10),
        (packet(0x90, &[0, 7, 0, 0x03]), T::SubAck, 0x03),
        (packet(0xB0, &[0, 7, 0, 0x01]), T::UnsubAck, 0x01),
        (packet(0xE0, &[0x03]), T::Disconnect, 0x03),
        (packet(0xF0, &[0x80]), T::Auth, 0x80),
    ];
    for (bytes, packet_type, code) in cases {
        refused(&bytes, InvalidReasonCode { packet_type, code }, MALFORMED);
    }
}

#[test]
fn reserved_subscription_option_bits_are_malformed_mqtt5_3_8_3_5() {
    refused(
        &subscribe_with(&[], b"a", 0xC1),
        SubscriptionOptionsReservedBits(0xC1),
        MALFORMED,
    );
}

#[test]
fn retain_handling_3_is_a_protocol_error() {
    // Section 3.8.3.1.
    refused(
        &subscribe_with(&[], b"a", 0x30),
        InvalidRetainHandling,
        PROTOCOL_ERROR,
    );
}

#[test]
fn requested_qos_3_is_malformed() {
    refused(
        &subscribe_with(&[], b"a", 0x03),
        InvalidRequestedQoS(0x03),
        MALFORMED,
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error_mqtt5_3_8_3_4() {
    refused(
        &subscribe_with(&[], b"$share/g/t", 0x04),
        NoLocalOnSharedSubscription("$share/g/t".into()),
        PROTOCOL_ERROR,
    );
}

#[test]
fn a_subscribe_or_unsubscribe_without_filters_is_a_protocol_error_mqtt5_3_8_3_2_and_3_10_3_2() {
    refused(
        &packet(0x82, &[0, 1, 0]),
        NoSubscribeFilters,
        PROTOCOL_ERROR,
    );
    refused(
        &packet(0xA2, &[0, 1, 0]),
        NoUnsubscribeFilters,
        PROTOCOL_ERROR,
    );
}

#[test]
fn a_v5_unsuback_without_reason_codes_is_a_protocol_error_mqtt5_3_11_3_2() {
    refused(
        &packet(0xB0, &[0, 7, 0]),
        NoUnsubAckReasonCodes,
        PROTOCOL_ERROR,
    );
}

#[test]
fn an_empty_topic_name_without_a_topic_alias_is_a_protocol_error() {
    // Section 3.3.2.3.4.
    refused(
        &packet(0x30, &[0, 0, 0, b'x']),
        EmptyTopicWithoutAlias,
        PROTOCOL_ERROR,
    );
}

#[test]
fn a_refusing_connack_with_session_present_is_a_protocol_error_mqtt5_3_2_2_6() {
    refused(
        &packet(0x20, &[1, 0x87, 0]),
        SessionPresentOnRefusal(0x87),
        PROTOCOL_ERROR,
    );
}

#[test]
fn reserved_connack_flags_are_malformed_mqtt5_3_2_2_1() {
    refused(&packet(0x20, &[2, 0, 0]), InvalidConnAckFlags(2), MALFORMED);
}

#[test]
fn auth_and_disconnect_have_fixed_flags_0_mqtt5_3_15_1_1_and_3_14_1_1() {
    for (first, packet_type) in [(0xF1, T::Auth), (0xE1, T::Disconnect)] {
        refused(
            &packet(first, &[]),
            InvalidHeaderFlags {
                packet_type,
                flags: 1,
                expected: 0,
            },
            MALFORMED,
        );
    }
}

#[test]
fn auth_is_a_reserved_packet_type_before_mqtt_5() {
    let error = Decoder::new()
        .decode(&mut BytesMut::from(&[0xF0, 0][..]))
        .unwrap_err();
    assert_eq!(error, ReservedPacketType(15, 0xF0));
    assert_eq!(error.reason_code(), MALFORMED);
}

#[test]
fn the_will_properties_follow_the_rules_of_the_will_mqtt5_3_1_2_9() {
    // A will whose properties carry a Topic Alias, which only PUBLISH may.
    #[rustfmt::skip]
    let body = [
        0, 4, b'M', b'Q', b'T', b'T', 5, 0b0000_0110, 0, 60,
        0,                                  // CONNECT properties
        0, 1, b'c',                         // client id
        3, 0x23, 0, 1,                      // will properties
        0, 1, b'w', 0, 0,                   // will topic and payload
    ];
    refused(
        &packet(0x10, &body),
        PropertyNotAllowed {
            packet_type: T::Connect,
            id: 0x23,
        },
        MALFORMED,
    );
    // A will flag with the payload ending after the client id.
    refused(
        &packet(0x10, &body[..14]),
        Truncated {
            packet_type: T::Connect,
            field: "property length",
        },
        MALFORMED,
    );
}

#[test]
fn reason_codes_of_older_errors_name_what_mqtt_5_sends() {
    assert_eq!(
        DecodeError::UnsupportedProtocolLevel(6).reason_code(),
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
    );
    assert_eq!(
        DecodeError::PacketTooLarge {
            packet_type: T::Publish,
            size: 10,
            max: 5
        }
        .reason_code(),
        ReasonCode::PACKET_TOO_LARGE
    );
    assert_eq!(
        DecodeError::MalformedRemainingLength.reason_code(),
        MALFORMED
    );
    assert_eq!(
        DecodeError::NoSubscribeFilters.reason_code(),
        PROTOCOL_ERROR
    );
}
