//! The subscription tree: which sessions want a message published to a topic.
//!
//! Topic filters are stored level by level in a tree, as mosquitto's `subs.c` does.
//! The filters `a/b`, `a/+` and `#` give
//!
//! ```text
//! (root)
//! ├── a
//! │   ├── b      <- subscribers of "a/b"
//! │   └── +      <- subscribers of "a/+"
//! └── #          <- subscribers of "#"
//! ```
//!
//! A topic name is matched by walking its levels from the root. At each node three
//! children can match the next level: the literal level, `+` (any one level), and `#`
//! (this level and everything below it, including nothing: `a/#` matches `a`). Each
//! step visits at most three children, so a publish costs about
//! `levels x matching branches`, however many filters are stored.
//!
//! Valid filters (checked by [`TopicFilter`] before they get here): `#`, `+`, `a/#`,
//! `+/b/+`, `/`, `a//b`, `$SYS/#`. Invalid: `a#`, `a/#/b`, `a+`, `+a/b`, `` (empty).
//!
//! Topics beginning with `$` are the broker's own (`$SYS/...`): a filter whose first
//! level is a wildcard does not match them [MQTT-4.7.2-1], so `#` does not see `$SYS`
//! but `$SYS/#` does.
//!
//! A session subscribed through several filters that match the same topic gets the
//! message once, at the highest QoS granted among them [MQTT-3.3.5-1].

use std::collections::HashMap;
use std::sync::Arc;

use crate::protocol::{QoS, TopicFilter};

/// The key subscribers are stored under: the client identifier of their session.
pub(crate) type ClientKey = Arc<str>;

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    subscribers: HashMap<ClientKey, QoS>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty()
    }
}

/// Every subscription of every session, connected or not.
#[derive(Debug, Default)]
pub(crate) struct SubscriptionTree {
    root: Node,
    count: usize,
}

impl SubscriptionTree {
    /// Subscribes `client` to `filter` at `qos`. Subscribing again to an identical
    /// filter replaces the old subscription [MQTT-3.8.4-3]; returns `true` when the
    /// subscription is new.
    pub(crate) fn subscribe(&mut self, client: &ClientKey, filter: &TopicFilter, qos: QoS) -> bool {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let new = node.subscribers.insert(client.clone(), qos).is_none();
        if new {
            self.count += 1;
        }
        new
    }

    /// Removes the subscription of `client` to exactly `filter`, comparing the filter
    /// character by character with no wildcard expansion [MQTT-3.10.4-1]. Returns
    /// `true` if there was one.
    pub(crate) fn unsubscribe(&mut self, client: &str, filter: &TopicFilter) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove(&mut self.root, &levels, client);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// Puts into `found` (emptied first) the sessions with a subscription matching
    /// `topic`, each once, with the highest QoS granted among its matching filters.
    ///
    /// The caller keeps `found` from one message to the next, so that routing a
    /// message allocates nothing here.
    pub(crate) fn matches_into(&self, topic: &str, found: &mut Vec<(ClientKey, QoS)>) {
        found.clear();
        let dollar = topic.starts_with('$');
        collect(&self.root, topic.split('/'), dollar, found);
        if found.len() > 1 {
            // A session matched through several filters appears once per filter.
            found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            found.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 = kept.1.max(later.1);
                }
                same
            });
        }
    }

    /// [`matches_into`](Self::matches_into) as a map, for tests.
    #[cfg(test)]
    pub(crate) fn matches(&self, topic: &str) -> HashMap<ClientKey, QoS> {
        let mut found = Vec::new();
        self.matches_into(topic, &mut found);
        found.into_iter().collect()
    }

    /// How many (session, filter) subscriptions are stored.
    pub(crate) fn len(&self) -> usize {
        self.count
    }
}

/// Removes `client` from the node at `levels`, pruning nodes left empty.
fn remove(node: &mut Node, levels: &[&str], client: &str) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return node.subscribers.remove(client).is_some();
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove(child, rest, client);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn add_all(found: &mut Vec<(ClientKey, QoS)>, subscribers: &HashMap<ClientKey, QoS>) {
    found.extend(
        subscribers
            .iter()
            .map(|(client, &qos)| (client.clone(), qos)),
    );
}

/// Adds the subscribers of every filter below `node` that matches `levels`. At the
/// root of a `$` topic the wildcards are skipped [MQTT-4.7.2-1].
fn collect(
    node: &Node,
    mut levels: std::str::Split<'_, char>,
    skip_wildcards: bool,
    found: &mut Vec<(ClientKey, QoS)>,
) {
    if !skip_wildcards {
        // `#` matches this level and everything below, including nothing at all.
        if let Some(hash) = node.children.get("#") {
            add_all(found, &hash.subscribers);
        }
    }
    let Some(first) = levels.next() else {
        add_all(found, &node.subscribers);
        return;
    };
    if let Some(child) = node.children.get(first) {
        collect(child, levels.clone(), false, found);
    }
    if !skip_wildcards {
        if let Some(plus) = node.children.get("+") {
            collect(plus, levels, false, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches;

    fn key(s: &str) -> ClientKey {
        Arc::from(s)
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    #[test]
    fn the_tree_agrees_with_topic_matches_on_every_pair() {
        let filters = [
            "#", "+", "a", "a/b", "a/+", "a/#", "+/b", "+/+", "/", "a//b", "a/+/b", "$SYS/#",
            "$SYS/+", "+/#", "a/b/c", "/+", "$SYS",
        ];
        let topics = [
            "a", "a/b", "a/", "/", "/a", "a//b", "a/x/b", "a/b/c", "$SYS", "$SYS/x", "$SYS/x/y",
            "b", "b/b", "$other",
        ];
        for f in filters {
            let mut tree = SubscriptionTree::default();
            tree.subscribe(&key("c"), &filter(f), QoS::AtMostOnce);
            for t in topics {
                assert_eq!(
                    tree.matches(t).contains_key("c"),
                    matches(f, t),
                    "filter {f:?} topic {t:?}"
                );
            }
        }
    }

    #[test]
    fn overlapping_filters_match_once_at_the_highest_qos_mqtt_3_3_5_1() {
        let mut tree = SubscriptionTree::default();
        tree.subscribe(&key("c"), &filter("a/#"), QoS::AtMostOnce);
        tree.subscribe(&key("c"), &filter("a/b"), QoS::ExactlyOnce);
        tree.subscribe(&key("c"), &filter("+/b"), QoS::AtLeastOnce);
        tree.subscribe(&key("d"), &filter("a/+"), QoS::AtLeastOnce);
        let found = tree.matches("a/b");
        assert_eq!(found.len(), 2);
        assert_eq!(found["c"], QoS::ExactlyOnce);
        assert_eq!(found["d"], QoS::AtLeastOnce);
        assert_eq!(tree.len(), 4);
    }

    #[test]
    fn resubscribing_replaces_the_qos_mqtt_3_8_4_3() {
        let mut tree = SubscriptionTree::default();
        assert!(tree.subscribe(&key("c"), &filter("a"), QoS::AtMostOnce));
        assert!(!tree.subscribe(&key("c"), &filter("a"), QoS::ExactlyOnce));
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.matches("a")["c"], QoS::ExactlyOnce);
    }

    #[test]
    fn unsubscribe_compares_filters_literally_and_prunes_mqtt_3_10_4_1() {
        let mut tree = SubscriptionTree::default();
        tree.subscribe(&key("c"), &filter("a/#"), QoS::AtMostOnce);
        assert!(!tree.unsubscribe("c", &filter("a/b")));
        assert!(tree.matches("a/b").contains_key("c"));
        assert!(tree.unsubscribe("c", &filter("a/#")));
        assert!(tree.matches("a/b").is_empty());
        assert!(tree.root.is_empty());
        assert_eq!(tree.len(), 0);
    }
}
