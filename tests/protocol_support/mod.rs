//! What the protocol tests of every version share: proptest strategies for the
//! values packets are made of. Use it with `mod protocol_support;`.
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::prelude::*;
use wren::protocol::{PacketId, QoS, TopicFilter, TopicName};

pub fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|id| PacketId::new(id).expect("never zero"))
}

/// One level of a topic: possibly empty, with multi-byte characters, `$`, spaces and
/// U+FEFF, never a wildcard or U+0000.
pub fn level() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _$\\-é€😀\u{FEFF}]{0,8}"
}

pub fn topic_name() -> impl Strategy<Value = TopicName> {
    vec(level(), 1..6)
        .prop_map(|levels| levels.join("/"))
        .prop_filter_map("a topic name is never empty", |name| {
            TopicName::new(name).ok()
        })
}

pub fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let filter_level = prop_oneof![3 => level(), 1 => Just("+".to_owned())];
    (vec(filter_level, 1..6), any::<bool>())
        .prop_map(|(mut levels, multi_level)| {
            if multi_level {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
        .prop_filter_map("a topic filter is never empty", |filter| {
            TopicFilter::new(filter).ok()
        })
}
