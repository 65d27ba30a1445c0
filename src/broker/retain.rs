//! Retained messages: the last message published with RETAIN=1 on each topic.
//!
//! Like the subscription tree (see `subs.rs`), retained messages are stored level by
//! level, but here the *topic names* are in the tree and a *filter* walks it: a new
//! subscription to `a/+` visits every child of `a`, `a/#` every node below `a` and `a`
//! itself. Wildcards in the first level of a filter skip topics that begin with `$`
//! [MQTT-4.7.2-1].
//!
//! The rules of section 3.3.1.3:
//! - a PUBLISH with RETAIN=1 replaces the topic's retained message, whatever its QoS
//!   [MQTT-3.3.1-5] [MQTT-3.3.1-7];
//! - one with an empty payload removes it and is never stored itself
//!   [MQTT-3.3.1-10] [MQTT-3.3.1-11];
//! - RETAIN=0 leaves the retained message alone [MQTT-3.3.1-12];
//! - retained messages belong to no session and outlive them all [MQTT-3.1.2-7].

use std::collections::HashMap;

use crate::protocol::{Publish, TopicFilter};

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    message: Option<Publish>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// The retained messages of the broker, by topic.
#[derive(Debug, Default)]
pub(crate) struct RetainedMessages {
    root: Node,
    count: usize,
    bytes: usize,
}

impl RetainedMessages {
    /// Applies a PUBLISH with RETAIN=1: stores it, or clears the topic when the payload
    /// is empty. Returns `true` when the stored set changed.
    ///
    /// The stored copy is compacted (see [`Publish::compact`]): a retained message
    /// can live for months, and must not keep the buffer it was read into alive.
    pub(crate) fn apply(&mut self, publish: &Publish) -> bool {
        if publish.payload.is_empty() {
            return self.remove(&publish.topic);
        }
        let mut node = &mut self.root;
        for level in publish.topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        // Stored without packet id or DUP: those belong to one delivery, not the message.
        let mut stored = publish.clone();
        stored.compact();
        stored.packet_id = None;
        stored.dup = false;
        stored.retain = true;
        self.bytes += stored_size(&stored);
        match node.message.replace(stored) {
            Some(old) => self.bytes -= stored_size(&old),
            None => self.count += 1,
        }
        true
    }

    /// Removes the retained message of `topic`, if there is one.
    pub(crate) fn remove(&mut self, topic: &str) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        match remove(&mut self.root, &levels) {
            Some(old) => {
                self.count -= 1;
                self.bytes -= stored_size(&old);
                true
            }
            None => false,
        }
    }

    /// The size of the message retained on exactly `topic`, as
    /// [`bytes`](Self::bytes) counts it (topic plus payload), if there is one: what
    /// replacing it would give back, for checking limits before [`apply`](Self::apply).
    #[allow(dead_code)] // The router does not check limits with it yet.
    pub(crate) fn size_of(&self, topic: &str) -> Option<usize> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref().map(stored_size)
    }

    /// The retained messages whose topics match `filter`, with RETAIN=1, in topic
    /// order.
    pub(crate) fn matching(&self, filter: &TopicFilter) -> Vec<Publish> {
        let levels: Vec<&str> = filter.split('/').collect();
        let mut found = Vec::new();
        collect(&self.root, &levels, true, &mut found);
        // The tree's maps have no order of their own: sorting by topic means the same
        // subscription always sees the same sequence.
        found.sort_unstable_by(|a, b| a.topic.cmp(&b.topic));
        found
    }

    /// How many messages are retained.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The bytes of all retained messages: topic plus payload of each, what the
    /// `max-retained-bytes` limit holds down.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What a stored message counts for in [`RetainedMessages::bytes`].
fn stored_size(message: &Publish) -> usize {
    message.topic.len() + message.payload.len()
}

fn remove(node: &mut Node, levels: &[&str]) -> Option<Publish> {
    let Some((first, rest)) = levels.split_first() else {
        return node.message.take();
    };
    let child = node.children.get_mut(*first)?;
    let removed = remove(child, rest);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn collect(node: &Node, levels: &[&str], at_root: bool, found: &mut Vec<Publish>) {
    let Some((first, rest)) = levels.split_first() else {
        found.extend(node.message.iter().cloned());
        return;
    };
    match *first {
        "#" => {
            // `a/#` also matches `a` itself (the parent level).
            if !at_root {
                found.extend(node.message.iter().cloned());
            }
            for (level, child) in &node.children {
                if !(at_root && level.starts_with('$')) {
                    collect_all(child, found);
                }
            }
        }
        "+" => {
            for (level, child) in &node.children {
                if !(at_root && level.starts_with('$')) {
                    collect(child, rest, false, found);
                }
            }
        }
        literal => {
            if let Some(child) = node.children.get(literal) {
                collect(child, rest, false, found);
            }
        }
    }
}

fn collect_all(node: &Node, found: &mut Vec<Publish>) {
    found.extend(node.message.iter().cloned());
    for child in node.children.values() {
        collect_all(child, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches;
    use crate::protocol::{QoS, TopicName};

    fn retained(topic: &str, payload: &'static str) -> Publish {
        Publish::new(
            TopicName::new(topic).unwrap(),
            payload,
            QoS::AtLeastOnce,
            true,
        )
    }

    fn topics_matching(store: &RetainedMessages, filter: &str) -> Vec<String> {
        let mut topics: Vec<String> = store
            .matching(&TopicFilter::new(filter).unwrap())
            .into_iter()
            .map(|p| p.topic.to_string())
            .collect();
        topics.sort();
        topics
    }

    #[test]
    fn filters_find_the_same_topics_as_topic_matches() {
        let topics = [
            "a", "a/b", "a/", "/", "/a", "a//b", "a/x/b", "$SYS/x", "$SYS", "b/b",
        ];
        let mut store = RetainedMessages::default();
        for topic in topics {
            store.apply(&retained(topic, "x"));
        }
        assert_eq!(store.len(), topics.len());
        for filter in [
            "#", "+", "a/#", "a/+", "+/+", "+/b", "$SYS/#", "a/+/b", "/#", "+/#",
        ] {
            let mut expected: Vec<String> = topics
                .iter()
                .filter(|t| matches(filter, t))
                .map(|t| t.to_string())
                .collect();
            expected.sort();
            assert_eq!(topics_matching(&store, filter), expected, "filter {filter}");
        }
    }

    #[test]
    fn an_empty_payload_clears_and_is_not_stored_mqtt_3_3_1_10_and_11() {
        let mut store = RetainedMessages::default();
        store.apply(&retained("a/b", "hello"));
        assert_eq!((store.len(), store.bytes()), (1, 3 + 5));
        store.apply(&retained("a/b", "hi"));
        assert_eq!((store.len(), store.bytes()), (1, 3 + 2));
        assert!(store.apply(&retained("a/b", "")));
        assert_eq!((store.len(), store.bytes()), (0, 0));
        assert!(store.root.is_empty());
        assert!(topics_matching(&store, "#").is_empty());
    }

    #[test]
    fn stored_messages_carry_retain_and_no_delivery_fields() {
        let mut store = RetainedMessages::default();
        let mut publish = retained("t", "x");
        publish.packet_id = crate::protocol::PacketId::new(7);
        publish.dup = true;
        store.apply(&publish);
        let found = store.matching(&TopicFilter::new("t").unwrap());
        assert_eq!(found[0].packet_id, None);
        assert!(!found[0].dup && found[0].retain);
    }

    #[test]
    fn bytes_and_size_of_count_topic_and_payload() {
        let mut store = RetainedMessages::default();
        store.apply(&retained("a/b", "hello"));
        store.apply(&retained("a", "xy"));
        assert_eq!(store.bytes(), 3 + 5 + 1 + 2);
        assert_eq!(store.size_of("a/b"), Some(3 + 5));
        assert_eq!(store.size_of("a"), Some(1 + 2));
        assert_eq!((store.size_of("a/c"), store.size_of("a/b/c")), (None, None));
        store.remove("a");
        assert_eq!((store.bytes(), store.size_of("a")), (3 + 5, None));
    }

    #[test]
    fn a_stored_message_does_not_keep_its_read_buffer_alive() {
        let buffer = bytes::Bytes::from(b"a/b payload and more of a large read buffer".to_vec());
        let topic = TopicName::from_bytes(buffer.slice(..3)).unwrap();
        let publish = Publish::new(topic, buffer.slice(4..11), QoS::AtMostOnce, true);
        let mut store = RetainedMessages::default();
        store.apply(&publish);
        let stored = store.matching(&TopicFilter::new("a/b").unwrap()).remove(0);
        let read = buffer.as_ptr_range();
        assert!(!read.contains(&stored.topic.as_ptr()));
        assert!(!read.contains(&stored.payload.as_ptr()));
        assert_eq!(&stored.payload[..], b"payload");
    }
}
