//! The topic rules of section 4.7, checked against a plain level-by-level reading of
//! the specification, both through the public constructors and through the decoder
//! (which takes a faster path for plain ASCII).

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use wren::protocol::{
    DecodeError, Decoder, Packet, PacketType, TopicError, TopicFilter, TopicName,
};

/// Section 4.7 read literally, one rule after the other.
fn reference_name(topic: &str) -> Result<(), TopicError> {
    reference_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::WildcardInTopicName); // [MQTT-4.7.1-1]
    }
    Ok(())
}

fn reference_filter(filter: &str) -> Result<(), TopicError> {
    reference_common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (index, level) in levels.iter().enumerate() {
        let last = index + 1 == levels.len();
        if level.contains('#') && (*level != "#" || !last) {
            return Err(TopicError::MisplacedMultiLevelWildcard); // [MQTT-4.7.1-2]
        }
        if level.contains('+') && *level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard); // [MQTT-4.7.1-3]
        }
    }
    Ok(())
}

fn reference_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty); // [MQTT-4.7.3-1]
    }
    if topic.contains('\0') {
        return Err(TopicError::NullCharacter); // [MQTT-4.7.3-2]
    }
    Ok(())
}

/// Strings made of the characters the rules care about, plus plain and multi-byte
/// ones, long enough to cross several eight-byte words.
fn topic_like() -> impl Strategy<Value = String> {
    let character = prop_oneof![
        6 => Just('a'),
        3 => Just('/'),
        2 => Just('+'),
        2 => Just('#'),
        1 => Just('\0'),
        1 => Just('$'),
        1 => Just(' '),
        1 => Just('é'),
        1 => Just('\u{FEFF}'),
        1 => Just('Z'),
    ];
    vec(character, 0..40).prop_map(|chars| chars.into_iter().collect())
}

fn field(content: &[u8]) -> Vec<u8> {
    let mut bytes = (content.len() as u16).to_be_bytes().to_vec();
    bytes.extend_from_slice(content);
    bytes
}

fn decode(first: u8, body: Vec<u8>) -> Result<Option<Packet>, DecodeError> {
    let mut bytes = vec![first];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        bytes.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    bytes.extend_from_slice(&body);
    Decoder::new().decode(&mut BytesMut::from(&bytes[..]))
}

/// What the decoder must report for a topic that breaks `error`.
fn expected_decode_error(
    packet_type: PacketType,
    field: &'static str,
    topic: &str,
    error: TopicError,
    filter: bool,
) -> DecodeError {
    match (error, filter) {
        (TopicError::NullCharacter, _) => DecodeError::NullCharacter { packet_type, field },
        (error, false) => DecodeError::InvalidTopicName {
            packet_type,
            topic: topic.to_owned(),
            error,
        },
        (error, true) => DecodeError::InvalidTopicFilter {
            packet_type,
            filter: topic.to_owned(),
            error,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_500))]

    #[test]
    fn topic_names_follow_section_4_7_to_the_letter(topic in topic_like()) {
        prop_assert_eq!(TopicName::new(topic.clone()).map(|_| ()), reference_name(&topic));
    }

    #[test]
    fn topic_filters_follow_section_4_7_to_the_letter(filter in topic_like()) {
        prop_assert_eq!(TopicFilter::new(filter.clone()).map(|_| ()), reference_filter(&filter));
    }

    #[test]
    fn a_decoded_publish_topic_follows_the_same_rules(topic in topic_like()) {
        let body = [field(topic.as_bytes()), b"payload".to_vec()].concat();
        let decoded = decode(0x30, body);
        match reference_name(&topic) {
            Ok(()) => {
                let Ok(Some(Packet::Publish(publish))) = decoded else {
                    return Err(TestCaseError::fail(format!("{topic:?}: {decoded:?}")));
                };
                prop_assert_eq!(publish.topic.as_str(), topic.as_str());
            }
            Err(error) => prop_assert_eq!(
                decoded,
                Err(expected_decode_error(PacketType::Publish, "topic name", &topic, error, false))
            ),
        }
    }

    #[test]
    fn a_decoded_subscribe_filter_follows_the_same_rules(filter in topic_like()) {
        let body = [b"\x00\x01".to_vec(), field(filter.as_bytes()), vec![1]].concat();
        let decoded = decode(0x82, body);
        match reference_filter(&filter) {
            Ok(()) => {
                let Ok(Some(Packet::Subscribe(subscribe))) = decoded else {
                    return Err(TestCaseError::fail(format!("{filter:?}: {decoded:?}")));
                };
                prop_assert_eq!(subscribe.filters[0].filter.as_str(), filter.as_str());
            }
            Err(error) => prop_assert_eq!(
                decoded,
                Err(expected_decode_error(PacketType::Subscribe, "topic filter", &filter, error, true))
            ),
        }
    }
}

#[test]
fn every_ascii_byte_in_every_position_of_a_word_is_judged_like_the_reference() {
    // The fast path looks at eight bytes at a time; put each ASCII byte at each
    // position of a 17-byte topic (two words and a remainder).
    for byte in 0u8..0x80 {
        for position in 0..17 {
            let mut topic = vec![b'a'; 17];
            topic[position] = byte;
            let text = String::from_utf8(topic).unwrap();
            assert_eq!(
                TopicName::new(text.clone()).map(|_| ()),
                reference_name(&text),
                "{text:?}"
            );
            let body = [field(text.as_bytes()), b"x".to_vec()].concat();
            assert_eq!(
                decode(0x30, body).is_ok(),
                reference_name(&text).is_ok(),
                "{text:?}"
            );
        }
    }
}

#[test]
fn ill_formed_utf8_is_refused_at_every_position_of_a_long_topic_mqtt_1_5_3_1() {
    let bad: [&[u8]; 5] = [b"\xED\xA0\x80", b"\xC0\xAF", b"\xFF", b"\xE2\x82", b"\x80"];
    for sequence in bad {
        for position in 0..20 {
            let mut topic = vec![b'a'; 20];
            topic.splice(position..position, sequence.iter().copied());
            for (first, body, packet_type, field) in [
                (
                    0x30,
                    [field(&topic), b"x".to_vec()].concat(),
                    PacketType::Publish,
                    "topic name",
                ),
                (
                    0x82,
                    [b"\x00\x01".to_vec(), field(&topic), vec![0]].concat(),
                    PacketType::Subscribe,
                    "topic filter",
                ),
            ] {
                assert_eq!(
                    decode(first, body),
                    Err(DecodeError::InvalidUtf8 { packet_type, field }),
                    "{sequence:02X?} at {position}"
                );
            }
        }
    }
}

#[test]
fn well_formed_multi_byte_characters_are_accepted_at_every_position() {
    for character in ["é", "€", "😀", "\u{FEFF}"] {
        for position in 0..20 {
            let mut topic = "a".repeat(20);
            topic.insert_str(position, character);
            let body = [field(topic.as_bytes()), b"x".to_vec()].concat();
            let Ok(Some(Packet::Publish(publish))) = decode(0x30, body) else {
                panic!("{topic:?} refused");
            };
            assert_eq!(publish.topic.as_str(), topic);
        }
    }
}
