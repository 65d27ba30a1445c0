//! The subscriptions: which sessions want a message published to a topic.
//!
//! [`Subscriptions`] holds every subscription two ways, and keeps the two in step:
//! a tree of filters, to find the subscribers of a topic, and the filters of each
//! client, to count, save and remove them.
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
use std::fmt;
use std::sync::Arc;

use crate::protocol::{QoS, TopicFilter};

/// The key subscribers are stored under: the client identifier of their session.
pub(crate) type ClientKey = Arc<str>;

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    subscribers: HashMap<ClientKey, QoS>,
}

impl Node {
    /// Whether the node holds nothing (tests check that pruning leaves no such node).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty()
    }
}

impl Drop for Node {
    /// Drops the nodes below this one one at a time. The derived drop would recurse
    /// once per level, and a filter of 65,535 `/` is 65,536 levels: enough to
    /// overflow the router thread's stack.
    fn drop(&mut self) {
        let mut below: Vec<Node> = std::mem::take(&mut self.children).into_values().collect();
        while let Some(mut node) = below.pop() {
            below.extend(std::mem::take(&mut node.children).into_values());
            // `node` is dropped here with no children: this function does not recurse.
        }
    }
}

/// What one level of a filter costs the tree in memory, for
/// [`subscription_cost`]: a node with one child still allocates a hash table of
/// four buckets.
fn node_cost() -> usize {
    4 * std::mem::size_of::<(Box<str>, Node)>() + 32
}

/// What a subscription to `filter` may cost the broker in memory: the filter
/// itself and a tree node for each of its levels. Where filters share levels this
/// overestimates, which errs on the safe side of
/// `max-subscription-bytes-per-client`: a filter of 200 levels costs the tree some
/// hundred KiB, however short its text.
pub(crate) fn subscription_cost(filter: &TopicFilter) -> usize {
    filter.len() + filter.levels() * node_cost()
}

/// Every subscription of every session, connected or not, and each client's own
/// filters: the one place subscriptions are added and removed, so that the tree
/// and the clients' lists cannot disagree.
#[derive(Default)]
pub(crate) struct Subscriptions {
    tree: SubscriptionTree,
    /// Each client's filters; a client with none has no entry.
    by_client: HashMap<ClientKey, ClientFilters>,
}

/// One client's filters, the QoS granted for each, and what they cost.
#[derive(Default)]
struct ClientFilters {
    filters: HashMap<TopicFilter, QoS>,
    /// The sum of [`subscription_cost`] over `filters`.
    cost: usize,
}

impl Subscriptions {
    /// Subscribes `client` to `filter` at `qos`. Subscribing again to an identical
    /// filter replaces the old subscription [MQTT-3.8.4-3]; returns `true` when the
    /// subscription is new.
    ///
    /// A new filter is stored in its own allocation: a subscription lives long, and
    /// must not keep the whole SUBSCRIBE packet's buffer alive.
    pub(crate) fn subscribe(&mut self, client: &ClientKey, filter: &TopicFilter, qos: QoS) -> bool {
        let own = self.by_client.entry(client.clone()).or_default();
        if let Some(granted) = own.filters.get_mut(filter) {
            *granted = qos;
        } else {
            let mut filter = filter.clone();
            filter.compact();
            own.cost += subscription_cost(&filter);
            own.filters.insert(filter, qos);
        }
        self.tree.subscribe(client, filter, qos)
    }

    /// Removes the subscription of `client` to exactly `filter` [MQTT-3.10.4-1].
    /// Returns `true` if there was one.
    pub(crate) fn unsubscribe(&mut self, client: &ClientKey, filter: &TopicFilter) -> bool {
        let Some(own) = self.by_client.get_mut(client) else {
            return false;
        };
        if own.filters.remove(filter).is_none() {
            return false;
        }
        own.cost -= subscription_cost(filter);
        if own.filters.is_empty() {
            self.by_client.remove(client);
        }
        self.tree.unsubscribe(client, filter)
    }

    /// Removes every subscription of `client`.
    pub(crate) fn remove_client(&mut self, client: &ClientKey) {
        let Some(own) = self.by_client.remove(client) else {
            return;
        };
        for filter in own.filters.keys() {
            self.tree.unsubscribe(client, filter);
        }
    }

    /// The filters of `client`, with the QoS granted for each, in no order.
    pub(crate) fn of(&self, client: &ClientKey) -> impl Iterator<Item = (&TopicFilter, QoS)> {
        self.by_client
            .get(client)
            .into_iter()
            .flat_map(|own| &own.filters)
            .map(|(filter, &qos)| (filter, qos))
    }

    /// How many filters `client` is subscribed to.
    pub(crate) fn count_of(&self, client: &ClientKey) -> usize {
        self.by_client
            .get(client)
            .map_or(0, |own| own.filters.len())
    }

    /// What the filters of `client` cost, by [`subscription_cost`].
    pub(crate) fn cost_of(&self, client: &ClientKey) -> usize {
        self.by_client.get(client).map_or(0, |own| own.cost)
    }

    /// Whether `client` is subscribed to exactly `filter`.
    pub(crate) fn contains(&self, client: &ClientKey, filter: &TopicFilter) -> bool {
        self.by_client
            .get(client)
            .is_some_and(|own| own.filters.contains_key(filter))
    }

    /// See [`SubscriptionTree::matches_into`].
    pub(crate) fn matches_into(&self, topic: &str, found: &mut Vec<(ClientKey, QoS)>) {
        self.tree.matches_into(topic, found);
    }

    /// How many (session, filter) subscriptions are stored.
    pub(crate) fn len(&self) -> usize {
        self.tree.len()
    }
}

impl fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriptions")
            .field("subscriptions", &self.tree.len())
            .field("clients", &self.by_client.len())
            .finish_non_exhaustive()
    }
}

/// The subscription tree: every subscription, filed under the levels of its filter.
///
/// Every walk of the tree is a loop, never a recursion: a filter may have up to
/// 65,536 levels, and no input depth may reach the stack.
#[derive(Default)]
struct SubscriptionTree {
    root: Node,
    count: usize,
}

impl SubscriptionTree {
    /// Subscribes `client` to `filter` at `qos`. Subscribing again to an identical
    /// filter replaces the old subscription [MQTT-3.8.4-3]; returns `true` when the
    /// subscription is new.
    fn subscribe(&mut self, client: &ClientKey, filter: &TopicFilter, qos: QoS) -> bool {
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
    ///
    /// Nodes left empty are pruned, so the tree holds only what some subscription
    /// needs. A walk down through `&mut` references cannot climb back up, so this
    /// takes two walks down the filter: a read-only one that finds the subscription
    /// and the highest node it alone keeps alive, then one that removes.
    fn unsubscribe(&mut self, client: &str, filter: &TopicFilter) -> bool {
        let Some(prune) = self.find_unsubscribe(client, filter) else {
            return false;
        };
        let mut levels = filter.split('/');
        let removed = match prune {
            Some(depth) => {
                // The node at `depth` holds only the path to the subscription, and
                // so does everything under it on that path: remove it from its parent
                // (its drop is iterative too).
                let parent = descend_mut(&mut self.root, levels.by_ref().take(depth));
                let level = levels.next();
                parent
                    .zip(level)
                    .and_then(|(parent, level)| parent.children.remove(level))
                    .is_some()
            }
            None => descend_mut(&mut self.root, levels)
                .and_then(|node| node.subscribers.remove(client))
                .is_some(),
        };
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// The read-only first walk of [`unsubscribe`](Self::unsubscribe): `None` when
    /// `client` has no subscription to `filter`; otherwise the depth (0 for a child
    /// of the root) of the highest node that removing it leaves empty, if any.
    fn find_unsubscribe(&self, client: &str, filter: &TopicFilter) -> Option<Option<usize>> {
        // Where the run of nodes that hold nothing but the path further down begins.
        let mut run_start = None;
        let mut node = &self.root;
        let mut depth = 0;
        for level in filter.split('/') {
            if depth > 0 {
                // `node` is at `depth - 1` and has a child on the path.
                if node.subscribers.is_empty() && node.children.len() == 1 {
                    run_start.get_or_insert(depth - 1);
                } else {
                    run_start = None;
                }
            }
            node = node.children.get(level)?;
            depth += 1;
        }
        if !node.subscribers.contains_key(client) {
            return None;
        }
        let emptied = node.children.is_empty() && node.subscribers.len() == 1;
        Some(emptied.then(|| run_start.unwrap_or(depth - 1)))
    }

    /// Puts into `found` (emptied first) the sessions with a subscription matching
    /// `topic`, each once, with the highest QoS granted among its matching filters.
    ///
    /// The caller keeps `found` from one message to the next, so that routing a
    /// message allocates nothing here. The walk follows the topic's levels down one
    /// path; only a `+` node beside it leaves a branch to come back to, so a list of
    /// pending branches is allocated only for topics that `+` filters reach.
    fn matches_into(&self, topic: &str, found: &mut Vec<(ClientKey, QoS)>) {
        found.clear();
        let system = topic.starts_with('$');
        // A node, and the topic levels its children must match (`None`: no more).
        let mut current = Some((&self.root, Some(topic)));
        let mut branches: Vec<(&Node, Option<&str>)> = Vec::new();
        while let Some((node, levels)) = current.take().or_else(|| branches.pop()) {
            // At the root of a `$` topic the wildcards are skipped [MQTT-4.7.2-1].
            let wildcards = !(system && std::ptr::eq(node, &self.root));
            if wildcards {
                // `#` matches this level and everything below, including nothing at all.
                if let Some(hash) = node.children.get("#") {
                    add_all(found, &hash.subscribers);
                }
            }
            let Some(levels) = levels else {
                add_all(found, &node.subscribers);
                continue;
            };
            let (level, rest) = match levels.split_once('/') {
                Some((level, rest)) => (level, Some(rest)),
                None => (levels, None),
            };
            if wildcards {
                if let Some(plus) = node.children.get("+") {
                    branches.push((plus, rest));
                }
            }
            current = node.children.get(level).map(|child| (child, rest));
        }
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
    fn matches(&self, topic: &str) -> HashMap<ClientKey, QoS> {
        let mut found = Vec::new();
        self.matches_into(topic, &mut found);
        found.into_iter().collect()
    }

    /// How many (session, filter) subscriptions are stored.
    fn len(&self) -> usize {
        self.count
    }
}

impl fmt::Debug for SubscriptionTree {
    /// The count only: printing the tree itself would be as deep as its filters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionTree")
            .field("subscriptions", &self.count)
            .finish_non_exhaustive()
    }
}

/// The node reached from `node` by following `levels`, if it exists.
fn descend_mut<'a, 'l>(
    mut node: &'a mut Node,
    levels: impl Iterator<Item = &'l str>,
) -> Option<&'a mut Node> {
    for level in levels {
        node = node.children.get_mut(level)?;
    }
    Some(node)
}

fn add_all(found: &mut Vec<(ClientKey, QoS)>, subscribers: &HashMap<ClientKey, QoS>) {
    found.extend(
        subscribers
            .iter()
            .map(|(client, &qos)| (client.clone(), qos)),
    );
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

    /// Each client's filters, sorted, as `Subscriptions::of` lists them.
    fn filters_of(subscriptions: &Subscriptions, client: &str) -> Vec<(String, QoS)> {
        let mut filters: Vec<(String, QoS)> = subscriptions
            .of(&key(client))
            .map(|(filter, qos)| (filter.to_string(), qos))
            .collect();
        filters.sort();
        filters
    }

    #[test]
    fn a_client_s_filters_and_the_tree_change_together() {
        let mut subscriptions = Subscriptions::default();
        assert!(subscriptions.subscribe(&key("c"), &filter("a/+"), QoS::AtMostOnce));
        assert!(subscriptions.subscribe(&key("c"), &filter("b"), QoS::AtLeastOnce));
        assert!(subscriptions.subscribe(&key("d"), &filter("a/+"), QoS::ExactlyOnce));
        // Again: the QoS is replaced, nothing is added [MQTT-3.8.4-3].
        assert!(!subscriptions.subscribe(&key("c"), &filter("a/+"), QoS::ExactlyOnce));
        assert_eq!(subscriptions.len(), 3);
        assert_eq!(subscriptions.count_of(&key("c")), 2);
        assert!(subscriptions.contains(&key("c"), &filter("b")));
        assert_eq!(
            filters_of(&subscriptions, "c"),
            [
                ("a/+".into(), QoS::ExactlyOnce),
                ("b".into(), QoS::AtLeastOnce)
            ]
        );
        let mut found = Vec::new();
        subscriptions.matches_into("a/x", &mut found);
        found.sort();
        assert_eq!(
            found,
            [(key("c"), QoS::ExactlyOnce), (key("d"), QoS::ExactlyOnce)]
        );

        assert!(subscriptions.unsubscribe(&key("c"), &filter("b")));
        assert!(!subscriptions.unsubscribe(&key("c"), &filter("b")));
        assert!(!subscriptions.unsubscribe(&key("e"), &filter("b")));
        assert_eq!(
            filters_of(&subscriptions, "c"),
            [("a/+".into(), QoS::ExactlyOnce)]
        );
        subscriptions.matches_into("b", &mut found);
        assert!(found.is_empty());

        subscriptions.remove_client(&key("c"));
        assert_eq!(subscriptions.count_of(&key("c")), 0);
        assert_eq!(subscriptions.len(), 1);
        subscriptions.matches_into("a/x", &mut found);
        assert_eq!(found, [(key("d"), QoS::ExactlyOnce)]);
        subscriptions.unsubscribe(&key("d"), &filter("a/+"));
        assert_eq!(subscriptions.len(), 0);
        assert!(
            subscriptions.by_client.is_empty(),
            "no client is left without filters"
        );
        assert!(subscriptions.tree.root.is_empty(), "the tree is pruned");
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

    #[test]
    fn unsubscribe_prunes_only_what_no_other_subscription_needs() {
        let mut tree = SubscriptionTree::default();
        tree.subscribe(&key("c"), &filter("a"), QoS::AtMostOnce);
        tree.subscribe(&key("c"), &filter("a/b/c/d"), QoS::AtMostOnce);
        tree.subscribe(&key("d"), &filter("a/b/c/d"), QoS::AtMostOnce);
        tree.subscribe(&key("c"), &filter("a/x"), QoS::AtMostOnce);
        assert!(!tree.unsubscribe("e", &filter("a/b/c/d")));
        assert!(!tree.unsubscribe("c", &filter("a/b/c")));
        assert!(tree.unsubscribe("c", &filter("a/b/c/d")));
        assert!(tree.matches("a/b/c/d").contains_key("d"));
        assert!(tree.unsubscribe("d", &filter("a/b/c/d")));
        // `a/b/c/d` is gone up to `a`, which still has a subscriber and `x`.
        let a = &tree.root.children["a"];
        assert!(a.children.contains_key("x") && a.children.len() == 1);
        assert!(tree.unsubscribe("c", &filter("a")));
        assert!(tree.unsubscribe("c", &filter("a/x")));
        assert!(tree.root.is_empty());
        assert_eq!(tree.len(), 0);
    }

    /// Runs `work` on a thread whose stack is far too small for one frame per level
    /// of the deepest filter, as the router's would be for a hostile client.
    fn on_a_small_stack(work: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(work)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn the_deepest_filters_are_walked_and_dropped_without_recursion() {
        on_a_small_stack(|| {
            // 65,536 empty levels, and 32,767 `+` then `#`: the deepest filters that
            // fit in 65,535 bytes.
            let literal = filter(&"/".repeat(65_535));
            let wildcards = filter(&format!("{}#", "+/".repeat(32_767)));
            assert_eq!((literal.levels(), wildcards.levels()), (65_536, 32_768));
            let mut tree = SubscriptionTree::default();
            tree.subscribe(&key("c"), &literal, QoS::AtLeastOnce);
            tree.subscribe(&key("d"), &wildcards, QoS::AtMostOnce);
            tree.subscribe(&key("e"), &literal, QoS::ExactlyOnce);
            let found = tree.matches(&literal);
            assert_eq!(found.len(), 3);
            assert_eq!(found["c"], QoS::AtLeastOnce);
            assert!(tree.matches("/").is_empty());
            assert!(tree.unsubscribe("c", &literal));
            assert!(tree.unsubscribe("d", &wildcards));
            let found = tree.matches(&literal);
            assert!(found.contains_key("e") && found.len() == 1);
            // Dropped with a 65,536-level subscription still in it.
            drop(tree);
        });
    }

    proptest::proptest! {
        #[test]
        fn any_mix_of_subscribes_and_unsubscribes_matches_like_topic_matches(
            operations in proptest::collection::vec((proptest::bool::weighted(0.7), 0..3usize, 0..12usize, 0..3u8), 0..40)
        ) {
            let filters = ["#", "+", "a", "a/b", "a/+", "a/#", "+/b", "/", "a//b", "$SYS/#", "+/#", "a/b/c"];
            let topics = ["a", "a/b", "/", "a//b", "$SYS/x", "b/b", "a/b/c"];
            let mut tree = SubscriptionTree::default();
            let mut model: HashMap<(usize, usize), QoS> = HashMap::new();
            for (subscribe, client, f, qos) in operations {
                let client_key = key(&client.to_string());
                if subscribe {
                    let qos = QoS::from_u8(qos).unwrap();
                    let new = tree.subscribe(&client_key, &filter(filters[f]), qos);
                    proptest::prop_assert_eq!(new, model.insert((client, f), qos).is_none());
                } else {
                    let removed = tree.unsubscribe(&client_key, &filter(filters[f]));
                    proptest::prop_assert_eq!(removed, model.remove(&(client, f)).is_some());
                }
            }
            proptest::prop_assert_eq!(tree.len(), model.len());
            for topic in topics {
                let mut expected: HashMap<ClientKey, QoS> = HashMap::new();
                for (&(client, f), &qos) in &model {
                    if matches(filters[f], topic) {
                        let best = expected.entry(key(&client.to_string())).or_insert(qos);
                        *best = (*best).max(qos);
                    }
                }
                proptest::prop_assert_eq!(tree.matches(topic), expected, "topic {}", topic);
            }
            for (client, f) in model.into_keys() {
                tree.unsubscribe(&client.to_string(), &filter(filters[f]));
            }
            proptest::prop_assert!(tree.root.is_empty());
        }
    }
}
