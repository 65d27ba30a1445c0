//! Every malformed-packet rule the codec checks, as a table of exact input bytes and
//! the exact [`DecodeError`] they must produce.
//!
//! In the spirit of mosquitto's `test/broker/data/*.json`: one row per rule, named by
//! the statement of MQTT 3.1.1 it covers (`[MQTT-x.y.z-n]`), or by its section where
//! the rule has no numbered statement. Rows for "every packet type" or "every string
//! field" are generated, so that no type or field is forgotten.
//!
//! Besides the table: the framing tests at the end (several packets in one buffer, a
//! packet split at every byte boundary, garbage after a valid packet) and the
//! positive controls that show the rows fail for the reason they claim, not for
//! another one.

use bytes::BytesMut;
use wren::protocol::{
    ConnectReturnCode, DecodeError, Decoder, Packet, PacketType, ProtocolVersion, TopicError,
    DEFAULT_MAX_PACKET_SIZE,
};

use DecodeError::*;
use PacketType as T;

// ---------------------------------------------------------------------------------
// Building blocks for exact bytes.
// ---------------------------------------------------------------------------------

/// A whole packet: the first byte, a one-byte remaining length, and `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(
        body.len() < 128,
        "test bodies use a one-byte remaining length"
    );
    let mut bytes = vec![first, body.len() as u8];
    bytes.extend_from_slice(body);
    bytes
}

/// A length-prefixed string or binary field.
fn field(content: &[u8]) -> Vec<u8> {
    let mut bytes = (content.len() as u16).to_be_bytes().to_vec();
    bytes.extend_from_slice(content);
    bytes
}

/// Concatenation of parts.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A CONNECT for MQTT 3.1.1 with the given flags (keep-alive 60) and payload.
fn connect(flags: u8, payload: &[u8]) -> Vec<u8> {
    packet(
        0x10,
        &cat(&[b"\x00\x04MQTT", &[0x04, flags, 0x00, 0x3C], payload]),
    )
}

/// A CONNECT with the given protocol name and level, and an empty client id.
fn connect_with_protocol(name: &[u8], level: u8) -> Vec<u8> {
    packet(
        0x10,
        &cat(&[&field(name), &[level, 0x02, 0x00, 0x3C], &field(b"")]),
    )
}

// CONNECT flag bits.
const USER: u8 = 0x80;
const PASS: u8 = 0x40;
const WILL_RETAIN: u8 = 0x20;
const WILL_QOS_1: u8 = 0x08;
const WILL_QOS_2: u8 = 0x10;
const WILL: u8 = 0x04;
const CLEAN: u8 = 0x02;

/// The ill-formed UTF-8 sequences of [MQTT-1.5.3-1]'s test sketch.
const BAD_UTF8: [(&str, &[u8]); 4] = [
    ("surrogate ED A0 80", b"a\xED\xA0\x80"),
    ("overlong C0 AF", b"a\xC0\xAF"),
    ("stray FF", b"a\xFF"),
    ("truncated E2 82", b"a\xE2\x82"),
];

/// The packets that have nothing but a packet identifier after the fixed header.
const ID_ONLY: [(u8, PacketType); 5] = [
    (0x40, T::PubAck),
    (0x50, T::PubRec),
    (0x62, T::PubRel),
    (0x70, T::PubComp),
    (0xB0, T::UnsubAck),
];

// ---------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------

/// One malformed input and what decoding it must say.
struct Row {
    name: String,
    bytes: Vec<u8>,
    max_packet_size: usize,
    expected: DecodeError,
}

fn row(name: impl Into<String>, bytes: impl Into<Vec<u8>>, expected: DecodeError) -> Row {
    Row {
        name: name.into(),
        bytes: bytes.into(),
        max_packet_size: DEFAULT_MAX_PACKET_SIZE,
        expected,
    }
}

fn fixed_header_rows() -> Vec<Row> {
    let mut rows = vec![
        row(
            "[section 2.2.1] reserved packet type 0",
            [0x00, 0x00],
            ReservedPacketType(0, 0x00),
        ),
        row(
            "[section 2.2.1] reserved packet type 0 with flags",
            [0x0F, 0x00],
            ReservedPacketType(0, 0x0F),
        ),
        row(
            "[section 2.2.1] reserved packet type 15",
            [0xF0, 0x00],
            ReservedPacketType(15, 0xF0),
        ),
        row(
            "[section 2.2.1] reserved packet type 15 is refused from its first byte alone",
            [0xFF],
            ReservedPacketType(15, 0xFF),
        ),
        row(
            "[section 2.2.3] remaining length in five bytes",
            [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            MalformedRemainingLength,
        ),
        row(
            "[section 2.2.3] remaining length whose fourth byte says another follows",
            [0xC0, 0x80, 0x80, 0x80, 0x80],
            MalformedRemainingLength,
        ),
        row(
            "[MQTT-2.2.2-2] CONNECT with flags 0001",
            {
                let mut bytes = connect(CLEAN, &field(b"c"));
                bytes[0] = 0x11;
                bytes
            },
            InvalidHeaderFlags {
                packet_type: T::Connect,
                flags: 1,
                expected: 0,
            },
        ),
        row(
            "[MQTT-2.2.2-2] PINGREQ with flags 0001",
            [0xC1, 0x00],
            InvalidHeaderFlags {
                packet_type: T::PingReq,
                flags: 1,
                expected: 0,
            },
        ),
        row(
            "[MQTT-2.2.2-2] CONNACK with flags 0001",
            [0x21, 0x02, 0x00, 0x00],
            InvalidHeaderFlags {
                packet_type: T::ConnAck,
                flags: 1,
                expected: 0,
            },
        ),
        row(
            "[MQTT-3.6.1-1] PUBREL with flags 0000",
            [0x60, 0x02, 0x00, 0x01],
            InvalidHeaderFlags {
                packet_type: T::PubRel,
                flags: 0,
                expected: 2,
            },
        ),
        row(
            "[MQTT-3.8.1-1] SUBSCRIBE with flags 0000",
            packet(0x80, &cat(&[&[0x00, 0x01], &field(b"a"), &[0x00]])),
            InvalidHeaderFlags {
                packet_type: T::Subscribe,
                flags: 0,
                expected: 2,
            },
        ),
        row(
            "[MQTT-3.10.1-1] UNSUBSCRIBE with flags 0000",
            packet(0xA0, &cat(&[&[0x00, 0x01], &field(b"a")])),
            InvalidHeaderFlags {
                packet_type: T::Unsubscribe,
                flags: 0,
                expected: 2,
            },
        ),
        row(
            "[MQTT-3.14.1-1] DISCONNECT with flags 0001",
            [0xE1, 0x00],
            InvalidHeaderFlags {
                packet_type: T::Disconnect,
                flags: 1,
                expected: 0,
            },
        ),
    ];

    // Every wrong flag nibble of every packet type that has fixed flags, with a body
    // that would otherwise be valid: the flags alone must be the reason.
    for type_bits in 1..=14u8 {
        let packet_type = PacketType::from_u8(type_bits).expect("types 1 to 14 exist");
        let Some(expected) = packet_type.fixed_flags() else {
            continue; // PUBLISH: its flags are DUP, QoS and RETAIN
        };
        for flags in (0..16u8).filter(|&flags| flags != expected) {
            rows.push(row(
                format!("[MQTT-2.2.2-2] {packet_type} with flags {flags:04b}"),
                [(type_bits << 4) | flags, 0x00],
                InvalidHeaderFlags {
                    packet_type,
                    flags,
                    expected,
                },
            ));
        }
    }

    // Size limit: the decoder parameter, checked on the fixed header alone.
    let mut too_large = row(
        "[size limit] PUBLISH of 18 bytes with a maximum of 17",
        packet(0x30, &cat(&[&field(b"t"), b"0123456789123"])),
        PacketTooLarge {
            packet_type: T::Publish,
            size: 18,
            max: 17,
        },
    );
    too_large.max_packet_size = 17;
    rows.push(too_large);
    rows.push(row(
        "[size limit] 256 MiB announced in the fixed header, no body sent",
        [0x30, 0xFF, 0xFF, 0xFF, 0x7F],
        PacketTooLarge {
            packet_type: T::Publish,
            size: 268_435_460,
            max: DEFAULT_MAX_PACKET_SIZE,
        },
    ));
    rows
}

fn truncation_rows() -> Vec<Row> {
    let truncated = |packet_type, field| Truncated { packet_type, field };
    let mut rows = vec![
        row(
            "[MQTT-3.1.4-1] CONNECT with no body",
            [0x10, 0x00],
            truncated(T::Connect, "protocol name"),
        ),
        row(
            "[MQTT-3.1.4-1] CONNECT ending inside the protocol name",
            packet(0x10, b"\x00\x04MQ"),
            truncated(T::Connect, "protocol name"),
        ),
        row(
            "[MQTT-3.1.4-1] CONNECT ending before the protocol level",
            packet(0x10, b"\x00\x04MQTT"),
            truncated(T::Connect, "protocol level"),
        ),
        row(
            "[MQTT-3.1.4-1] CONNECT ending before the connect flags",
            packet(0x10, b"\x00\x04MQTT\x04"),
            truncated(T::Connect, "connect flags"),
        ),
        row(
            "[MQTT-3.1.4-1] CONNECT ending inside the keep alive",
            packet(0x10, b"\x00\x04MQTT\x04\x02\x00"),
            truncated(T::Connect, "keep alive"),
        ),
        row(
            "[MQTT-3.1.3-3] CONNECT ending after the variable header, with no client id",
            connect(CLEAN, b""),
            truncated(T::Connect, "client id"),
        ),
        row(
            "[MQTT-3.1.3-3] CONNECT ending inside the client id",
            connect(CLEAN, b"\x00\x05ab"),
            truncated(T::Connect, "client id"),
        ),
        row(
            "[MQTT-3.1.2-9] CONNECT with the will flag ending after the client id",
            connect(CLEAN | WILL, &field(b"c")),
            truncated(T::Connect, "will topic"),
        ),
        row(
            "[MQTT-3.1.2-9] CONNECT with the will flag ending after the will topic",
            connect(CLEAN | WILL, &cat(&[&field(b"c"), &field(b"w")])),
            truncated(T::Connect, "will message"),
        ),
        row(
            "[MQTT-3.1.2-9] CONNECT ending inside the will message",
            connect(
                CLEAN | WILL,
                &cat(&[&field(b"c"), &field(b"w"), b"\x00\x09bye"]),
            ),
            truncated(T::Connect, "will message"),
        ),
        row(
            "[MQTT-3.1.2-19] CONNECT with the user name flag and no user name",
            connect(CLEAN | USER, &field(b"c")),
            truncated(T::Connect, "user name"),
        ),
        row(
            "[MQTT-3.1.2-21] CONNECT with the password flag and no password",
            connect(CLEAN | USER | PASS, &cat(&[&field(b"c"), &field(b"u")])),
            truncated(T::Connect, "password"),
        ),
        row(
            "[MQTT-3.1.2-21] CONNECT ending inside the password",
            connect(
                CLEAN | USER | PASS,
                &cat(&[&field(b"c"), &field(b"u"), b"\x00\x03p"]),
            ),
            truncated(T::Connect, "password"),
        ),
        row(
            "[section 3.2] CONNACK with no body",
            [0x20, 0x00],
            truncated(T::ConnAck, "acknowledge flags"),
        ),
        row(
            "[section 3.2] CONNACK with no return code",
            [0x20, 0x01, 0x00],
            truncated(T::ConnAck, "return code"),
        ),
        row(
            "[MQTT-3.3.2-1] PUBLISH with no topic name",
            [0x30, 0x00],
            truncated(T::Publish, "topic name"),
        ),
        row(
            "[MQTT-3.3.2-1] PUBLISH ending inside the topic length",
            [0x30, 0x01, 0x00],
            truncated(T::Publish, "topic name"),
        ),
        row(
            "[MQTT-3.3.2-1] PUBLISH ending inside the topic name",
            packet(0x30, b"\x00\x05a/b"),
            truncated(T::Publish, "topic name"),
        ),
        row(
            "[MQTT-2.3.1-1] QoS 1 PUBLISH with no packet identifier",
            packet(0x32, &field(b"t")),
            truncated(T::Publish, "packet identifier"),
        ),
        row(
            "[MQTT-2.3.1-1] QoS 2 PUBLISH ending inside the packet identifier",
            packet(0x34, &cat(&[&field(b"t"), &[0x00]])),
            truncated(T::Publish, "packet identifier"),
        ),
        row(
            "[MQTT-2.3.1-1] SUBSCRIBE with no packet identifier",
            [0x82, 0x00],
            truncated(T::Subscribe, "packet identifier"),
        ),
        row(
            "[MQTT-3.8.3-1] SUBSCRIBE ending inside a topic filter",
            packet(0x82, b"\x00\x01\x00\x05a/"),
            truncated(T::Subscribe, "topic filter"),
        ),
        row(
            "[MQTT-3.8.3-1] SUBSCRIBE ending inside a topic filter length",
            packet(0x82, b"\x00\x01\x00"),
            truncated(T::Subscribe, "topic filter"),
        ),
        row(
            "[MQTT-3.8.3-4] SUBSCRIBE with a filter and no requested QoS",
            packet(0x82, &cat(&[b"\x00\x01", &field(b"a/b")])),
            truncated(T::Subscribe, "requested QoS"),
        ),
        row(
            "[MQTT-3.8.3-4] SUBSCRIBE whose second filter has no requested QoS",
            packet(
                0x82,
                &cat(&[b"\x00\x01", &field(b"a"), b"\x01", &field(b"b")]),
            ),
            truncated(T::Subscribe, "requested QoS"),
        ),
        row(
            "[section 3.9] SUBACK with no packet identifier",
            [0x90, 0x01, 0x00],
            truncated(T::SubAck, "packet identifier"),
        ),
        row(
            "[MQTT-2.3.1-1] UNSUBSCRIBE with no packet identifier",
            [0xA2, 0x00],
            truncated(T::Unsubscribe, "packet identifier"),
        ),
        row(
            "[MQTT-3.10.3-1] UNSUBSCRIBE ending inside a topic filter",
            packet(0xA2, b"\x00\x01\x00\x03a"),
            truncated(T::Unsubscribe, "topic filter"),
        ),
    ];
    for (first, packet_type) in ID_ONLY {
        rows.push(row(
            format!("[section 3] {packet_type} with no packet identifier"),
            [first, 0x00],
            truncated(packet_type, "packet identifier"),
        ));
        rows.push(row(
            format!("[section 3] {packet_type} with half a packet identifier"),
            [first, 0x01, 0x00],
            truncated(packet_type, "packet identifier"),
        ));
    }
    rows
}

fn trailing_bytes_rows() -> Vec<Row> {
    let trailing = |packet_type, extra| TrailingBytes { packet_type, extra };
    let mut rows = vec![
        row(
            "[MQTT-3.1.2-18] CONNECT without the user name flag but with a user name",
            connect(CLEAN, &cat(&[&field(b"c"), &field(b"u")])),
            trailing(T::Connect, 3),
        ),
        row(
            "[MQTT-3.1.2-20] CONNECT without the password flag but with a password",
            connect(
                CLEAN | USER,
                &cat(&[&field(b"c"), &field(b"u"), &field(b"pw")]),
            ),
            trailing(T::Connect, 4),
        ),
        row(
            "[MQTT-3.1.2-11] CONNECT without the will flag but with will fields",
            connect(CLEAN, &cat(&[&field(b"c"), &field(b"w"), &field(b"m")])),
            trailing(T::Connect, 6),
        ),
        row(
            "[section 3.2] CONNACK with a third byte",
            [0x20, 0x03, 0x00, 0x00, 0x00],
            trailing(T::ConnAck, 1),
        ),
        row(
            "[section 3.9] SUBACK cannot carry trailing bytes: every byte is a return code",
            [0x90, 0x03, 0x00, 0x01, 0x03],
            InvalidSubAckReturnCode(0x03),
        ),
    ];
    for (first, packet_type) in ID_ONLY {
        rows.push(row(
            format!("[section 3] {packet_type} with a byte after its packet identifier"),
            [first, 0x03, 0x00, 0x01, 0x00],
            trailing(packet_type, 1),
        ));
    }
    for (first, packet_type) in [
        (0xC0, T::PingReq),
        (0xD0, T::PingResp),
        (0xE0, T::Disconnect),
    ] {
        rows.push(row(
            format!("[section 3] {packet_type} with a body"),
            [first, 0x02, 0x00, 0x00],
            trailing(packet_type, 2),
        ));
    }
    rows
}

/// Every string field, as a function from the field's raw content to a whole packet
/// with that content and everything else valid.
#[allow(clippy::type_complexity)]
fn string_fields() -> Vec<(&'static str, &'static str, PacketType, fn(&[u8]) -> Vec<u8>)> {
    vec![
        ("[MQTT-3.1.3-4]", "client id", T::Connect, |s| {
            connect(CLEAN, &field(s))
        }),
        ("[MQTT-3.1.3-10]", "will topic", T::Connect, |s| {
            connect(CLEAN | WILL, &cat(&[&field(b"c"), &field(s), &field(b"m")]))
        }),
        ("[MQTT-3.1.3-11]", "user name", T::Connect, |s| {
            connect(CLEAN | USER, &cat(&[&field(b"c"), &field(s)]))
        }),
        ("[MQTT-3.3.2-1]", "topic name", T::Publish, |s| {
            packet(0x30, &cat(&[&field(s), b"payload"]))
        }),
        ("[MQTT-3.8.3-1]", "topic filter", T::Subscribe, |s| {
            packet(0x82, &cat(&[b"\x00\x01", &field(s), b"\x00"]))
        }),
        ("[MQTT-3.10.3-1]", "topic filter", T::Unsubscribe, |s| {
            packet(0xA2, &cat(&[b"\x00\x01", &field(s)]))
        }),
    ]
}

fn string_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (id, field, packet_type, build) in string_fields() {
        for (what, bytes) in BAD_UTF8 {
            rows.push(row(
                format!("[MQTT-1.5.3-1] {id} {packet_type} {field} with {what}"),
                build(bytes),
                InvalidUtf8 { packet_type, field },
            ));
        }
        rows.push(row(
            format!("[MQTT-1.5.3-2] {id} {packet_type} {field} with U+0000"),
            build(b"a\x00b"),
            NullCharacter { packet_type, field },
        ));
        rows.push(row(
            format!("[MQTT-1.5.3-2] {id} {packet_type} {field} that is only U+0000"),
            build(b"\x00"),
            NullCharacter { packet_type, field },
        ));
    }
    rows
}

fn topic_rows() -> Vec<Row> {
    let publish_to = |topic: &[u8]| packet(0x30, &cat(&[&field(topic), b"x"]));
    let will_to = |topic: &[u8]| {
        connect(
            CLEAN | WILL,
            &cat(&[&field(b"c"), &field(topic), &field(b"m")]),
        )
    };
    let subscribe_to = |filter: &[u8]| packet(0x82, &cat(&[b"\x00\x01", &field(filter), b"\x01"]));
    let unsubscribe_from = |filter: &[u8]| packet(0xA2, &cat(&[b"\x00\x01", &field(filter)]));
    let bad_name = |packet_type, topic: &str, error| InvalidTopicName {
        packet_type,
        topic: topic.to_owned(),
        error,
    };
    let bad_filter = |packet_type, filter: &str, error| InvalidTopicFilter {
        packet_type,
        filter: filter.to_owned(),
        error,
    };

    let mut rows = Vec::new();
    for topic in ["a/+", "a/#", "#", "+", "a+b", "sport/tennis#"] {
        rows.push(row(
            format!("[MQTT-3.3.2-2] [MQTT-4.7.1-1] PUBLISH to topic name '{topic}'"),
            publish_to(topic.as_bytes()),
            bad_name(T::Publish, topic, TopicError::WildcardInTopicName),
        ));
    }
    rows.push(row(
        "[MQTT-4.7.1-1] CONNECT with will topic 'w/#'",
        will_to(b"w/#"),
        bad_name(T::Connect, "w/#", TopicError::WildcardInTopicName),
    ));
    rows.push(row(
        "[MQTT-4.7.1-1] CONNECT with will topic 'w/+/x'",
        will_to(b"w/+/x"),
        bad_name(T::Connect, "w/+/x", TopicError::WildcardInTopicName),
    ));
    rows.push(row(
        "[MQTT-4.7.3-1] PUBLISH to the empty topic name",
        publish_to(b""),
        bad_name(T::Publish, "", TopicError::Empty),
    ));
    rows.push(row(
        "[MQTT-4.7.3-1] CONNECT with an empty will topic",
        will_to(b""),
        bad_name(T::Connect, "", TopicError::Empty),
    ));

    let hash = TopicError::MisplacedMultiLevelWildcard;
    let plus = TopicError::MisplacedSingleLevelWildcard;
    let bad_filters = [
        ("[MQTT-4.7.1-2]", "a#", hash),
        ("[MQTT-4.7.1-2]", "a/#/b", hash),
        ("[MQTT-4.7.1-2]", "#/a", hash),
        ("[MQTT-4.7.1-2]", "a/b#", hash),
        ("[MQTT-4.7.1-2]", "##", hash),
        ("[MQTT-4.7.1-3]", "a+", plus),
        ("[MQTT-4.7.1-3]", "+a/b", plus),
        ("[MQTT-4.7.1-3]", "a/b+", plus),
        ("[MQTT-4.7.1-3]", "a/++/b", plus),
        ("[MQTT-4.7.3-1]", "", TopicError::Empty),
    ];
    for (id, filter, error) in bad_filters {
        rows.push(row(
            format!("{id} SUBSCRIBE to topic filter '{filter}'"),
            subscribe_to(filter.as_bytes()),
            bad_filter(T::Subscribe, filter, error),
        ));
        rows.push(row(
            format!("{id} UNSUBSCRIBE from topic filter '{filter}'"),
            unsubscribe_from(filter.as_bytes()),
            bad_filter(T::Unsubscribe, filter, error),
        ));
    }
    rows.push(row(
        "[MQTT-4.7.1-2] SUBSCRIBE whose second filter is invalid",
        packet(
            0x82,
            &cat(&[b"\x00\x01", &field(b"a/#"), b"\x01", &field(b"b#"), b"\x00"]),
        ),
        bad_filter(T::Subscribe, "b#", hash),
    ));
    rows
}

fn publish_rows() -> Vec<Row> {
    let body = cat(&[&field(b"a/b"), b"\x00\x01", b"hello"]);
    vec![
        row(
            "[MQTT-3.3.1-4] PUBLISH with QoS 3",
            packet(0x36, &body),
            InvalidQoS {
                packet_type: T::Publish,
            },
        ),
        row(
            "[MQTT-3.3.1-4] PUBLISH with QoS 3, DUP and RETAIN",
            packet(0x3F, &body),
            InvalidQoS {
                packet_type: T::Publish,
            },
        ),
        row(
            "[MQTT-3.3.1-2] PUBLISH with QoS 0 and DUP",
            packet(0x38, &body),
            DupWithQoS0,
        ),
        row(
            "[MQTT-3.3.1-2] PUBLISH with QoS 0, DUP and RETAIN",
            packet(0x39, &body),
            DupWithQoS0,
        ),
    ]
}

fn packet_id_rows() -> Vec<Row> {
    let zero = |packet_type| ZeroPacketId { packet_type };
    let mut rows = vec![
        row(
            "[MQTT-2.3.1-1] QoS 1 PUBLISH with packet identifier 0",
            packet(0x32, &cat(&[&field(b"t"), b"\x00\x00", b"x"])),
            zero(T::Publish),
        ),
        row(
            "[MQTT-2.3.1-1] QoS 2 PUBLISH with packet identifier 0",
            packet(0x34, &cat(&[&field(b"t"), b"\x00\x00"])),
            zero(T::Publish),
        ),
        row(
            "[MQTT-2.3.1-1] SUBSCRIBE with packet identifier 0",
            packet(0x82, &cat(&[b"\x00\x00", &field(b"a"), b"\x00"])),
            zero(T::Subscribe),
        ),
        row(
            "[MQTT-2.3.1-1] UNSUBSCRIBE with packet identifier 0",
            packet(0xA2, &cat(&[b"\x00\x00", &field(b"a")])),
            zero(T::Unsubscribe),
        ),
        row(
            "[MQTT-2.3.1-1] SUBACK with packet identifier 0",
            [0x90, 0x03, 0x00, 0x00, 0x00],
            zero(T::SubAck),
        ),
    ];
    for (first, packet_type) in ID_ONLY {
        rows.push(row(
            format!("[MQTT-2.3.1-1] {packet_type} with packet identifier 0"),
            [first, 0x02, 0x00, 0x00],
            zero(packet_type),
        ));
    }
    rows
}

fn subscribe_rows() -> Vec<Row> {
    let subscribe_with_qos = |qos: u8| packet(0x82, &cat(&[b"\x00\x01", &field(b"a/b"), &[qos]]));
    let mut rows = vec![
        row(
            "[MQTT-3.8.3-3] SUBSCRIBE with no filter",
            [0x82, 0x02, 0x00, 0x01],
            NoSubscribeFilters,
        ),
        row(
            "[MQTT-3.10.3-2] UNSUBSCRIBE with no filter",
            [0xA2, 0x02, 0x00, 0x01],
            NoUnsubscribeFilters,
        ),
        row(
            "[section 3.9.3] SUBACK with no return code",
            [0x90, 0x02, 0x00, 0x01],
            NoSubAckReturnCodes,
        ),
    ];
    for qos in [0x03, 0x04, 0x05, 0x41, 0x80, 0x81, 0xFC, 0xFF] {
        rows.push(row(
            format!("[MQTT-3.8.3-4] SUBSCRIBE with requested-QoS byte 0x{qos:02X}"),
            subscribe_with_qos(qos),
            InvalidRequestedQoS(qos),
        ));
    }
    for code in [0x03, 0x04, 0x7F, 0x81, 0xFF] {
        rows.push(row(
            format!("[MQTT-3.9.3-2] SUBACK with return code 0x{code:02X}"),
            [0x90, 0x04, 0x00, 0x01, 0x00, code],
            InvalidSubAckReturnCode(code),
        ));
    }
    rows
}

fn connect_rows() -> Vec<Row> {
    let id = field(b"c");
    let will = cat(&[&id, &field(b"w"), &field(b"m")]);
    vec![
        row(
            "[MQTT-3.1.2-3] CONNECT with flags 0x03 (reserved bit)",
            connect(0x03, &id),
            ConnectReservedFlag,
        ),
        row(
            "[MQTT-3.1.2-3] CONNECT with flags 0x01 (reserved bit alone)",
            connect(0x01, &id),
            ConnectReservedFlag,
        ),
        row(
            "[MQTT-3.1.2-3] CONNECT with every flag set",
            connect(0xFF, &cat(&[&will, &field(b"u"), &field(b"p")])),
            ConnectReservedFlag,
        ),
        row(
            "[MQTT-3.1.2-13] CONNECT with will QoS 1 and no will flag",
            connect(CLEAN | WILL_QOS_1, &id),
            WillFlagsWithoutWill,
        ),
        row(
            "[MQTT-3.1.2-13] CONNECT with will QoS 2 and no will flag",
            connect(CLEAN | WILL_QOS_2, &id),
            WillFlagsWithoutWill,
        ),
        row(
            "[MQTT-3.1.2-13] CONNECT with will QoS 3 and no will flag",
            connect(CLEAN | WILL_QOS_1 | WILL_QOS_2, &id),
            WillFlagsWithoutWill,
        ),
        row(
            "[MQTT-3.1.2-15] CONNECT with will retain and no will flag",
            connect(CLEAN | WILL_RETAIN, &id),
            WillFlagsWithoutWill,
        ),
        row(
            "[MQTT-3.1.2-14] CONNECT with will QoS 3",
            connect(CLEAN | WILL | WILL_QOS_1 | WILL_QOS_2, &will),
            InvalidQoS {
                packet_type: T::Connect,
            },
        ),
        row(
            "[MQTT-3.1.2-22] CONNECT with a password and no user name",
            connect(CLEAN | PASS, &cat(&[&id, &field(b"p")])),
            PasswordWithoutUsername,
        ),
        row(
            "[MQTT-3.1.2-1] CONNECT with protocol name 'MQTX'",
            connect_with_protocol(b"MQTX", 4),
            InvalidProtocolName("MQTX".into()),
        ),
        row(
            "[MQTT-3.1.2-1] CONNECT with protocol name 'mqtt' (names are case-sensitive)",
            connect_with_protocol(b"mqtt", 4),
            InvalidProtocolName("mqtt".into()),
        ),
        row(
            "[MQTT-3.1.2-1] CONNECT with an empty protocol name",
            connect_with_protocol(b"", 4),
            InvalidProtocolName(String::new()),
        ),
        row(
            "[MQTT-3.1.2-1] CONNECT with a protocol name that is not UTF-8",
            connect_with_protocol(b"MQ\xFF", 4),
            InvalidProtocolName("MQ\u{FFFD}".into()),
        ),
        row(
            "[MQTT-3.1.2-2] CONNECT 'MQTT' level 6",
            connect_with_protocol(b"MQTT", 6),
            UnsupportedProtocolLevel(6),
        ),
        row(
            "[MQTT-3.1.2-2] CONNECT 'MQTT' level 3 (3.1's level with 3.1.1's name)",
            connect_with_protocol(b"MQTT", 3),
            UnsupportedProtocolLevel(3),
        ),
        row(
            "[MQTT-3.1.2-2] CONNECT 'MQIsdp' level 4 (3.1's name with 3.1.1's level)",
            connect_with_protocol(b"MQIsdp", 4),
            UnsupportedProtocolLevel(4),
        ),
        row(
            "[MQTT-3.1.2-2] CONNECT 'MQTT' level 0",
            connect_with_protocol(b"MQTT", 0),
            UnsupportedProtocolLevel(0),
        ),
    ]
}

fn connack_rows() -> Vec<Row> {
    vec![
        row(
            "[section 3.2.2.1] CONNACK acknowledge flags 0x02 (bits 7-1 reserved)",
            [0x20, 0x02, 0x02, 0x00],
            InvalidConnAckFlags(0x02),
        ),
        row(
            "[section 3.2.2.1] CONNACK acknowledge flags 0x81",
            [0x20, 0x02, 0x81, 0x00],
            InvalidConnAckFlags(0x81),
        ),
        row(
            "[section 3.2.2.3] CONNACK with reserved return code 6",
            [0x20, 0x02, 0x00, 0x06],
            InvalidConnectReturnCode(6),
        ),
        row(
            "[section 3.2.2.3] CONNACK with reserved return code 255",
            [0x20, 0x02, 0x00, 0xFF],
            InvalidConnectReturnCode(0xFF),
        ),
        row(
            "[MQTT-3.2.2-4] CONNACK refusing (5) with session present",
            [0x20, 0x02, 0x01, 0x05],
            SessionPresentOnRefusal(5),
        ),
        row(
            "[MQTT-3.2.2-4] CONNACK refusing (1) with session present",
            [0x20, 0x02, 0x01, 0x01],
            SessionPresentOnRefusal(1),
        ),
    ]
}

fn all_rows() -> Vec<Row> {
    [
        fixed_header_rows(),
        truncation_rows(),
        trailing_bytes_rows(),
        string_rows(),
        topic_rows(),
        publish_rows(),
        packet_id_rows(),
        subscribe_rows(),
        connect_rows(),
        connack_rows(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `check` on every row and reports every failing row at once, with its bytes.
fn for_every_row(check: impl Fn(&Row) -> Result<(), String>) {
    let rows = all_rows();
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            check(row)
                .err()
                .map(|why| format!("{}\n    bytes: {}\n    {why}", row.name, hex(&row.bytes)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// Tests over the table.
// ---------------------------------------------------------------------------------

#[test]
fn every_malformed_row_gives_exactly_its_error() {
    for_every_row(|row| {
        let mut decoder = Decoder::new().with_max_packet_size(row.max_packet_size);
        let got = decoder.decode(&mut BytesMut::from(&row.bytes[..]));
        if got == Err(row.expected.clone()) {
            Ok(())
        } else {
            Err(format!("expected Err({:?}), got {got:?}", row.expected))
        }
    });
}

#[test]
fn every_malformed_row_gives_the_same_error_when_it_arrives_one_byte_at_a_time() {
    for_every_row(|row| {
        let mut decoder = Decoder::new().with_max_packet_size(row.max_packet_size);
        let mut buffer = BytesMut::new();
        for (index, &byte) in row.bytes.iter().enumerate() {
            buffer.extend_from_slice(&[byte]);
            match decoder.decode(&mut buffer) {
                Ok(None) if index + 1 < row.bytes.len() => {}
                Err(error) if error == row.expected => return Ok(()),
                other => return Err(format!("after {} bytes: {other:?}", index + 1)),
            }
        }
        Err("never failed".into())
    });
}

#[test]
fn every_malformed_row_is_refused_even_with_the_largest_packet_size_allowed() {
    // The size limit must not be what rejects the other rows.
    for_every_row(|row| {
        if matches!(row.expected, PacketTooLarge { .. }) {
            return Ok(());
        }
        let mut decoder = Decoder::new().with_max_packet_size(usize::MAX);
        match decoder.decode(&mut BytesMut::from(&row.bytes[..])) {
            Err(error) if error == row.expected => Ok(()),
            other => Err(format!("expected Err({:?}), got {other:?}", row.expected)),
        }
    });
}

#[test]
fn every_error_message_names_the_rule_and_only_a_bad_level_asks_for_a_connack() {
    for_every_row(|row| {
        let message = row.expected.to_string();
        if message.is_empty() {
            return Err("empty message".into());
        }
        let expected_code = match row.expected {
            UnsupportedProtocolLevel(_) => Some(ConnectReturnCode::UnacceptableProtocolVersion),
            _ => None,
        };
        if row.expected.connect_return_code() != expected_code {
            return Err(format!(
                "connect_return_code() is {:?}",
                row.expected.connect_return_code()
            ));
        }
        Ok(())
    });
}

#[test]
fn an_unsupported_level_is_answered_with_connack_0x01_mqtt_3_1_2_2() {
    let mut buffer = BytesMut::from(&connect_with_protocol(b"MQTT", 6)[..]);
    let error = Decoder::new().decode(&mut buffer).unwrap_err();
    let code = error.connect_return_code().expect("a CONNACK is due");
    assert_eq!(code, ConnectReturnCode::UnacceptableProtocolVersion);
    assert_eq!(code as u8, 0x01);
}

#[test]
fn a_decoder_limited_to_3_1_1_refuses_an_mqtt_5_connect_at_its_level_mqtt_3_1_2_2() {
    // As a server that does not speak MQTT 5 must, whatever follows the level.
    let mut buffer = BytesMut::from(&connect_with_protocol(b"MQTT", 5)[..]);
    let error = Decoder::new()
        .with_max_version(ProtocolVersion::V3_1_1)
        .decode(&mut buffer)
        .unwrap_err();
    assert_eq!(error, UnsupportedProtocolLevel(5));
    assert_eq!(
        error.connect_return_code(),
        Some(ConnectReturnCode::UnacceptableProtocolVersion)
    );
}

#[test]
fn the_table_covers_every_packet_type_and_every_string_field() {
    let rows = all_rows();
    for type_bits in 1..=14u8 {
        let packet_type = PacketType::from_u8(type_bits).unwrap();
        let name = packet_type.to_string();
        assert!(
            rows.iter()
                .any(|row| row.name.contains(&format!(" {name} "))),
            "no row for {name}"
        );
    }
    for (_, field, packet_type, _) in string_fields() {
        for error in [
            InvalidUtf8 { packet_type, field },
            NullCharacter { packet_type, field },
        ] {
            assert!(
                rows.iter().any(|row| row.expected == error),
                "no row for {error:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Positive controls: the valid neighbours of the rows decode.
// ---------------------------------------------------------------------------------

fn decode_one(bytes: &[u8]) -> Packet {
    let mut buffer = BytesMut::from(bytes);
    match Decoder::new().decode(&mut buffer) {
        Ok(Some(packet)) if buffer.is_empty() => packet,
        other => panic!("{} did not decode: {other:?}", hex(bytes)),
    }
}

#[test]
fn the_valid_neighbours_of_the_rows_decode() {
    let valid = [
        connect(CLEAN, &field(b"c")),
        connect(
            CLEAN | WILL | WILL_QOS_2 | WILL_RETAIN,
            &cat(&[&field(b"c"), &field(b"w"), &field(b"m")]),
        ),
        connect(
            CLEAN | USER | PASS,
            &cat(&[&field(b"c"), &field(b"u"), &field(b"p")]),
        ),
        connect(CLEAN | USER, &cat(&[&field(b"c"), &field(b"u")])),
        connect_with_protocol(b"MQIsdp", 3),
        packet(0x30, &cat(&[&field(b"a/b"), b"hello"])),
        packet(0x3D, &cat(&[&field(b"a/b"), b"\x00\x01", b"hello"])),
        packet(0x82, &cat(&[b"\x00\x01", &field(b"a/#"), b"\x02"])),
        packet(0xA2, &cat(&[b"\x00\x01", &field(b"+/b")])),
        vec![0x20, 0x02, 0x01, 0x00],
        vec![0x20, 0x02, 0x00, 0x05],
        vec![0x90, 0x04, 0x00, 0x01, 0x80, 0x02],
        vec![0x62, 0x02, 0x00, 0x01],
        vec![0xC0, 0x00],
        vec![0xE0, 0x00],
    ];
    for bytes in valid {
        decode_one(&bytes);
    }
}

#[test]
fn a_packet_of_exactly_the_maximum_size_is_accepted() {
    let bytes = packet(0x30, &cat(&[&field(b"t"), b"0123456789123"]));
    assert_eq!(bytes.len(), 18);
    let mut decoder = Decoder::new().with_max_packet_size(18);
    assert!(matches!(
        decoder.decode(&mut BytesMut::from(&bytes[..])),
        Ok(Some(Packet::Publish(_)))
    ));
}

#[test]
fn a_byte_order_mark_is_kept_in_every_string_field_mqtt_1_5_3_3() {
    let bom = "\u{FEFF}";
    for (_, field, _, build) in string_fields() {
        let content = format!("{bom}a");
        let packet = decode_one(&build(content.as_bytes()));
        let kept: &str = match (&packet, field) {
            (Packet::Connect(c), "client id") => &c.client_id,
            (Packet::Connect(c), "will topic") => c.will.as_ref().unwrap().topic.as_str(),
            (Packet::Connect(c), "user name") => c.username.as_deref().unwrap(),
            (Packet::Publish(p), "topic name") => p.topic.as_str(),
            (Packet::Subscribe(s), "topic filter") => s.filters[0].filter.as_str(),
            (Packet::Unsubscribe(u), "topic filter") => u.filters[0].as_str(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(kept.as_bytes(), b"\xEF\xBB\xBFa", "{field}");
    }
}

#[test]
fn the_two_bytes_after_a_qos_0_topic_are_payload_mqtt_2_3_1_5() {
    let Packet::Publish(publish) = decode_one(&packet(0x30, &cat(&[&field(b"t"), b"\x00\x00"])))
    else {
        panic!("not a PUBLISH");
    };
    assert_eq!(publish.packet_id, None);
    assert_eq!(&publish.payload[..], b"\x00\x00");
}

// ---------------------------------------------------------------------------------
// Framing.
// ---------------------------------------------------------------------------------

/// One valid packet of every type.
fn one_of_each() -> Vec<Vec<u8>> {
    vec![
        connect(
            CLEAN | WILL | WILL_QOS_1 | USER | PASS,
            &cat(&[
                &field(b"c"),
                &field(b"w"),
                &field(b"m"),
                &field(b"u"),
                &field(b"p"),
            ]),
        ),
        vec![0x20, 0x02, 0x00, 0x00],
        packet(0x30, &cat(&[&field(b"a/b"), b"hello"])),
        packet(0x3B, &cat(&[&field(b"a/b"), b"\x12\x34", b"hello"])),
        packet(0x35, &cat(&[&field(b"a/b"), b"\x00\x02"])),
        vec![0x40, 0x02, 0x00, 0x01],
        vec![0x50, 0x02, 0x00, 0x02],
        vec![0x62, 0x02, 0x00, 0x03],
        vec![0x70, 0x02, 0x00, 0x04],
        packet(
            0x82,
            &cat(&[b"\x00\x05", &field(b"a/#"), b"\x01", &field(b"+"), b"\x02"]),
        ),
        vec![0x90, 0x04, 0x00, 0x05, 0x01, 0x80],
        packet(0xA2, &cat(&[b"\x00\x06", &field(b"a/#"), &field(b"+")])),
        vec![0xB0, 0x02, 0x00, 0x06],
        vec![0xC0, 0x00],
        vec![0xD0, 0x00],
        vec![0xE0, 0x00],
    ]
}

#[test]
fn several_packets_in_one_buffer_come_out_one_at_a_time_in_order() {
    let packets = one_of_each();
    let expected: Vec<Packet> = packets.iter().map(|bytes| decode_one(bytes)).collect();
    let mut buffer = BytesMut::from(&packets.concat()[..]);
    let mut decoder = Decoder::new();
    let mut got = Vec::new();
    while let Some(packet) = decoder.decode(&mut buffer).expect("all packets are valid") {
        got.push(packet);
        assert!(got.len() <= expected.len(), "more packets than were sent");
    }
    assert_eq!(got, expected);
    assert!(buffer.is_empty());
}

#[test]
fn a_packet_split_at_every_byte_boundary_decodes_once_complete() {
    let mut decoder = Decoder::new();
    for bytes in one_of_each() {
        let expected = decode_one(&bytes);
        for split in 0..bytes.len() {
            let mut buffer = BytesMut::from(&bytes[..split]);
            assert_eq!(
                decoder.decode(&mut buffer),
                Ok(None),
                "{} split at {split}",
                hex(&bytes)
            );
            assert_eq!(
                &buffer[..],
                &bytes[..split],
                "a partial packet is left untouched"
            );
            buffer.extend_from_slice(&bytes[split..]);
            assert_eq!(decoder.decode(&mut buffer), Ok(Some(expected.clone())));
            assert!(buffer.is_empty());
        }
    }
}

#[test]
fn a_packet_split_across_two_reads_leaves_the_next_packet_in_the_buffer() {
    let first = packet(0x32, &cat(&[&field(b"a/b"), b"\x00\x07", b"payload"]));
    let second = [0xC0, 0x00];
    let stream = cat(&[&first, &second]);
    let mut decoder = Decoder::new();
    for split in 0..first.len() {
        let mut buffer = BytesMut::from(&stream[..split]);
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        buffer.extend_from_slice(&stream[split..]);
        assert!(matches!(
            decoder.decode(&mut buffer),
            Ok(Some(Packet::Publish(_)))
        ));
        assert_eq!(decoder.decode(&mut buffer), Ok(Some(Packet::PingReq)));
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
    }
}

#[test]
fn garbage_after_a_valid_packet_is_refused_after_the_packet_is_delivered() {
    let garbage: [(&[u8], DecodeError); 4] = [
        (&[0x00, 0x00], ReservedPacketType(0, 0x00)),
        (&[0xFF, 0xFF, 0xFF], ReservedPacketType(15, 0xFF)),
        (
            &[0xC3],
            InvalidHeaderFlags {
                packet_type: T::PingReq,
                flags: 3,
                expected: 0,
            },
        ),
        (
            &[0x40, 0x80, 0x80, 0x80, 0x80, 0x01],
            MalformedRemainingLength,
        ),
    ];
    for (tail, expected) in garbage {
        let stream = cat(&[&[0xC0, 0x00], tail]);
        let mut buffer = BytesMut::from(&stream[..]);
        let mut decoder = Decoder::new();
        assert_eq!(decoder.decode(&mut buffer), Ok(Some(Packet::PingReq)));
        assert_eq!(decoder.decode(&mut buffer), Err(expected), "{}", hex(tail));
    }
}
