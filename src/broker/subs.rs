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
//!
//! Each subscription keeps its [`SubscriptionOptions`]: the QoS granted and, in
//! MQTT 5, No Local (never send a client what it published itself
//! [MQTT-3.8.3-3]), Retain As Published, and a Subscription Identifier, which every
//! message sent through the subscription carries back [MQTT-3.3.4-3]. A message
//! found through several subscriptions of one session yields one [`Match`]: the
//! highest QoS, Retain As Published if any asked for it, and every identifier.
//!
//! A shared subscription `$share/{ShareName}/{filter}` (MQTT 5 section 4.8.2) makes
//! its session a member of the group ShareName on `{filter}`, filed on the node of
//! `{filter}` beside its ordinary subscribers. Each message goes to one member of each
//! matching group, taken in turn, connected members first. With `jobs/+` and
//! `$share/w/jobs/+` from `c1`, `c2` and `c3`:
//!
//! ```text
//! (root)
//! └── jobs
//!     └── +      <- subscribers of "jobs/+"
//!                   group "w": [c1, c2, c3], next: c2   (c1 had the last message)
//! ```

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;

use crate::protocol::{QoS, TopicFilter};

/// The key subscribers are stored under: the client identifier of their session.
pub(crate) use crate::broker::hashing::ClientKey;
use crate::broker::hashing::ClientMap;

/// What a subscription asked for and was granted: MQTT 5 subscription options
/// (3.1.1 subscriptions have only a QoS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubscriptionOptions {
    /// The highest QoS messages are sent with through this subscription.
    pub(crate) qos: QoS,
    /// No Local: messages published by this very client are not sent to it through
    /// this subscription [MQTT-3.8.3-3]. A shared subscription may not ask for it
    /// [MQTT-3.8.3-4]; the decoder refuses that, and should one get here anyway it
    /// only keeps its own client from being picked for its own messages.
    pub(crate) no_local: bool,
    /// Retain As Published: messages sent through this subscription keep the RETAIN
    /// flag they were published with, instead of having it cleared
    /// [MQTT-3.3.1-12, MQTT-3.3.1-13].
    pub(crate) retain_as_published: bool,
    /// The Subscription Identifier of the SUBSCRIBE that made the subscription
    /// (1 to 268,435,455; 0 is a Protocol Error), sent back with every message it
    /// matches [MQTT-3.3.4-3].
    pub(crate) identifier: Option<NonZeroU32>,
}

impl SubscriptionOptions {
    /// A subscription granted `qos`, with every MQTT 5 option off: what a 3.1.1
    /// SUBSCRIBE makes.
    #[cfg(test)]
    pub(crate) fn qos(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            identifier: None,
        }
    }
}

/// One session's share of a message: what [`Subscriptions::matches_into`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Match {
    /// The session the message goes to.
    pub(crate) client: ClientKey,
    /// Highest QoS granted among the client's matching subscriptions [MQTT-3.3.5-1].
    pub(crate) qos: QoS,
    /// Whether a matching subscription asked for Retain As Published.
    pub(crate) retain_as_published: bool,
    /// The Subscription Identifiers of every matching subscription of this client,
    /// ascending, without repeats [MQTT-3.3.4-3..5]; empty (no allocation) when none.
    pub(crate) identifiers: Vec<u32>,
}

impl Match {
    /// The match of one subscription; allocates only for an identifier.
    fn new(client: &ClientKey, options: &SubscriptionOptions) -> Self {
        Match {
            client: client.clone(),
            qos: options.qos,
            retain_as_published: options.retain_as_published,
            identifiers: options
                .identifier
                .map(|identifier| vec![identifier.get()])
                .unwrap_or_default(),
        }
    }
}

#[derive(Default)]
struct Node {
    /// Changed only through [`child`](Node::child) and
    /// [`remove_child`](Node::remove_child), which keep the two flags below true.
    children: HashMap<Box<str>, Node>,
    /// Whether `children` has a `+` child, and a `#` child. Every publish asks
    /// each node on its way for both, and most nodes have neither: a flag is read
    /// where a lookup would hash the level.
    has_plus: bool,
    has_hash: bool,
    subscribers: ClientMap<SubscriptionOptions>,
    /// The shared subscription groups on this node's filter, by ShareName.
    groups: HashMap<Box<str>, Group>,
}

impl Node {
    /// The child for `level`, made if there is none.
    fn child(&mut self, level: &str) -> &mut Node {
        match level {
            "+" => self.has_plus = true,
            "#" => self.has_hash = true,
            _ => {}
        }
        self.children.entry(level.into()).or_default()
    }

    /// Takes the child for `level` out, if there is one.
    fn remove_child(&mut self, level: &str) -> Option<Node> {
        let removed = self.children.remove(level)?;
        match level {
            "+" => self.has_plus = false,
            "#" => self.has_hash = false,
            _ => {}
        }
        Some(removed)
    }

    /// The `+` child, if any.
    fn plus(&self) -> Option<&Node> {
        self.has_plus.then(|| self.children.get("+")).flatten()
    }

    /// The `#` child, if any.
    fn hash(&self) -> Option<&Node> {
        self.has_hash.then(|| self.children.get("#")).flatten()
    }

    /// Whether the node holds no subscription of its own (nodes below aside).
    fn holds_nothing(&self) -> bool {
        self.subscribers.is_empty() && self.groups.is_empty()
    }

    /// Whether the node holds nothing (tests check that pruning leaves no such node).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.holds_nothing()
    }

    /// Removes the ordinary subscription of `client` (`share` is `None`) or its
    /// membership of the group `share`, and the group if it is left empty.
    fn remove(&mut self, client: &ClientKey, share: Option<&str>) -> bool {
        let Some(name) = share else {
            return self.subscribers.remove(client).is_some();
        };
        let Some(group) = self.groups.get_mut(name) else {
            return false;
        };
        let removed = group.remove(client);
        if group.members.is_empty() {
            self.groups.remove(name);
        }
        removed
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

/// The members of one shared subscription group (MQTT 5 section 4.8.2), each with
/// its own subscription's options [MQTT-4.8.2-3], and whose turn is next.
///
/// Never empty in the tree: the last member to leave takes the group with it.
#[derive(Default)]
struct Group {
    /// In the order they joined; subscribing again keeps a member's place.
    members: Vec<(ClientKey, SubscriptionOptions)>,
    /// The member to try first for the next message: an index into `members`,
    /// always below its length (0 for no members), kept so as members leave. A
    /// `Cell`, so that the read-only walk of the tree can take turns.
    next: Cell<usize>,
}

impl Group {
    fn position(&self, client: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|(member, _)| **member == *client)
    }

    /// Adds `client`, or replaces its options; `true` when it is new.
    fn insert(&mut self, client: &ClientKey, options: SubscriptionOptions) -> bool {
        match self.position(client) {
            Some(index) => {
                self.members[index].1 = options;
                false
            }
            None => {
                self.members.push((client.clone(), options));
                true
            }
        }
    }

    /// Removes `client`, keeping the turn with the member that had it or, if that
    /// was `client`, with the one after.
    fn remove(&mut self, client: &str) -> bool {
        let Some(index) = self.position(client) else {
            return false;
        };
        self.members.remove(index);
        let mut next = self.next.get();
        if index < next {
            next -= 1; // the member that had the turn moved down one place
        }
        self.next
            .set(if next < self.members.len() { next } else { 0 });
        true
    }

    /// The member that gets the next message, and the turn passes to the one after
    /// it: the first member from `next` on that is `online`, or failing that the
    /// first at all, since the session of a member away keeps QoS 1 and 2 messages
    /// for it. A member whose subscription has No Local is passed over for its own
    /// messages; `None` when that leaves no one.
    fn pick(
        &self,
        publisher: Option<&str>,
        online: &dyn Fn(&ClientKey) -> bool,
    ) -> Option<&(ClientKey, SubscriptionOptions)> {
        let count = self.members.len();
        let start = self.next.get();
        let mut away = None;
        let mut chosen = None;
        for step in 0..count {
            let index = (start + step) % count;
            let (client, options) = &self.members[index];
            if is_own(client, options, publisher) {
                continue;
            }
            if online(client) {
                chosen = Some(index);
                break;
            }
            away.get_or_insert(index);
        }
        let index = chosen.or(away)?;
        self.next.set((index + 1) % count);
        Some(&self.members[index])
    }
}

/// Whether No Local keeps a message of `publisher` from `client` [MQTT-3.8.3-3].
fn is_own(client: &str, options: &SubscriptionOptions, publisher: Option<&str>) -> bool {
    options.no_local && publisher == Some(client)
}

/// Where the subscription to `filter` is filed: the ShareName of a shared filter
/// (`None` for an ordinary one), and the filter whose levels lead to its node.
///
/// A filter that [`TopicFilter::shared`] refuses (`$share/g` with no filter, say) is
/// filed as the ordinary filter it also is; the router refuses those first.
fn target(filter: &TopicFilter) -> (Option<&str>, &str) {
    match filter.shared() {
        Ok(Some((name, path))) => (Some(name), path),
        _ => (None, filter.as_str()),
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
/// hundred KiB, however short its text. (A shared filter is counted whole, its
/// `$share/{ShareName}` levels included, though they take no node.)
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
    by_client: ClientMap<ClientFilters>,
}

/// One client's filters (shared ones by their whole `$share/...` text), the
/// options granted for each, and what they cost.
#[derive(Default)]
struct ClientFilters {
    filters: HashMap<TopicFilter, SubscriptionOptions>,
    /// The sum of [`subscription_cost`] over `filters`.
    cost: usize,
}

impl Subscriptions {
    /// Subscribes `client` to `filter` with `options`. Subscribing again to an
    /// identical filter replaces the old subscription's options [MQTT-3.8.4-3];
    /// returns `true` when the subscription is new.
    ///
    /// A filter `$share/{ShareName}/{filter}` makes `client` a member of the group
    /// ShareName on `{filter}` (see [`TopicFilter::shared`]); the whole text names the
    /// subscription, in [`of`](Self::of), [`contains`](Self::contains) and
    /// [`unsubscribe`](Self::unsubscribe).
    ///
    /// A new filter is stored in its own allocation: a subscription lives long, and
    /// must not keep the whole SUBSCRIBE packet's buffer alive.
    pub(crate) fn subscribe(
        &mut self,
        client: &ClientKey,
        filter: &TopicFilter,
        options: SubscriptionOptions,
    ) -> bool {
        let own = self.by_client.entry(client.clone()).or_default();
        if let Some(granted) = own.filters.get_mut(filter) {
            *granted = options;
        } else {
            let mut filter = filter.clone();
            filter.compact();
            own.cost += subscription_cost(&filter);
            own.filters.insert(filter, options);
        }
        self.tree.subscribe(client, filter, options)
    }

    /// Removes the subscription of `client` to exactly `filter` [MQTT-3.10.4-1]
    /// (for a shared filter: its membership of that group on that filter). Returns
    /// `true` if there was one.
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

    /// Removes every subscription of `client`, shared ones included.
    pub(crate) fn remove_client(&mut self, client: &ClientKey) {
        let Some(own) = self.by_client.remove(client) else {
            return;
        };
        for filter in own.filters.keys() {
            self.tree.unsubscribe(client, filter);
        }
    }

    /// The filters of `client`, with the options granted for each, in no order.
    pub(crate) fn of(
        &self,
        client: &ClientKey,
    ) -> impl Iterator<Item = (&TopicFilter, SubscriptionOptions)> {
        self.by_client
            .get(client)
            .into_iter()
            .flat_map(|own| &own.filters)
            .map(|(filter, &options)| (filter, options))
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

    /// Puts into `found` (emptied first) one [`Match`] for each session a message
    /// published to `topic` by `publisher` (`None`: the broker itself) goes to.
    ///
    /// - Every ordinary subscription whose filter matches, except those with No
    ///   Local whose client is `publisher` [MQTT-3.8.3-3].
    /// - One member of each shared group whose filter matches (MQTT 5 section
    ///   4.8.2), taken in turn from one message to the next: the next member for
    ///   which `online` is true, or if none is, the next one at all (its session
    ///   queues QoS 1 and 2 messages until it is back). The member gets the message
    ///   with its own subscription's options [MQTT-4.8.2-3].
    ///
    /// A session found through several subscriptions gets one `Match` merging them
    /// [MQTT-3.3.4-2, MQTT-3.3.4-4]: the highest QoS [MQTT-3.3.5-1], Retain As
    /// Published if any asked for it, and every Subscription Identifier. That holds
    /// for shared picks too: a session picked by a group and matched by its own
    /// ordinary subscription (or picked by two groups) gets the message once, not a
    /// copy each. Section 4.8.2 allows a second copy; one is the simplest correct
    /// behaviour.
    ///
    /// The caller keeps `found` from one message to the next: a message that meets
    /// neither identifiers nor groups allocates nothing here but what `+` filters
    /// need (see [`SubscriptionTree::matches_into`]). This takes `&mut self` because
    /// it moves groups' turns on.
    pub(crate) fn matches_into(
        &mut self,
        topic: &str,
        publisher: Option<&ClientKey>,
        found: &mut Vec<Match>,
        online: impl Fn(&ClientKey) -> bool,
    ) {
        self.tree
            .matches_into(topic, publisher.map(|key| &**key), found, &online);
    }

    /// Whether any subscription matches `topic`, No Local aside: for MQTT 5's "no
    /// matching subscribers". (A shared group it matches takes its turn.)
    pub(crate) fn any_match(&mut self, topic: &str) -> bool {
        let mut found = Vec::new();
        self.tree
            .matches_into(topic, None, &mut found, &|_: &ClientKey| true);
        !found.is_empty()
    }

    /// How many (session, filter) subscriptions are stored, memberships of shared
    /// groups included.
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

/// The subscription tree: every subscription, filed under the levels of its filter
/// (of the `{filter}` part of a shared one).
///
/// Every walk of the tree is a loop, never a recursion: a filter may have up to
/// 65,536 levels, and no input depth may reach the stack.
#[derive(Default)]
struct SubscriptionTree {
    root: Node,
    count: usize,
}

impl SubscriptionTree {
    /// Subscribes `client` to `filter` with `options`. Subscribing again to an
    /// identical filter replaces the old subscription's options [MQTT-3.8.4-3];
    /// returns `true` when the subscription is new.
    fn subscribe(
        &mut self,
        client: &ClientKey,
        filter: &TopicFilter,
        options: SubscriptionOptions,
    ) -> bool {
        let (share, path) = target(filter);
        let mut node = &mut self.root;
        for level in path.split('/') {
            node = node.child(level);
        }
        let new = match share {
            None => node.subscribers.insert(client.clone(), options).is_none(),
            Some(name) => node
                .groups
                .entry(name.into())
                .or_default()
                .insert(client, options),
        };
        if new {
            self.count += 1;
        }
        new
    }

    /// Removes the subscription of `client` to exactly `filter`, comparing the filter
    /// character by character with no wildcard expansion [MQTT-3.10.4-1]. Returns
    /// `true` if there was one.
    ///
    /// Nodes and groups left empty are pruned, so the tree holds only what some
    /// subscription needs. A walk down through `&mut` references cannot climb back
    /// up, so this takes two walks down the filter: a read-only one that finds the
    /// subscription and the highest node it alone keeps alive, then one that removes.
    fn unsubscribe(&mut self, client: &ClientKey, filter: &TopicFilter) -> bool {
        let (share, path) = target(filter);
        let Some(prune) = self.find_unsubscribe(client, share, path) else {
            return false;
        };
        let mut levels = path.split('/');
        let removed = match prune {
            Some(depth) => {
                // The node at `depth` holds only the path to the subscription, and
                // so does everything under it on that path: remove it from its parent
                // (its drop is iterative too).
                let parent = descend_mut(&mut self.root, levels.by_ref().take(depth));
                let level = levels.next();
                parent
                    .zip(level)
                    .and_then(|(parent, level)| parent.remove_child(level))
                    .is_some()
            }
            None => {
                descend_mut(&mut self.root, levels).is_some_and(|node| node.remove(client, share))
            }
        };
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// The read-only first walk of [`unsubscribe`](Self::unsubscribe), down `path`
    /// to the subscription of `client` (to the group `share`, if any): `None` when
    /// there is none; otherwise the depth (0 for a child of the root) of the highest
    /// node that removing it leaves empty, if any.
    fn find_unsubscribe(
        &self,
        client: &ClientKey,
        share: Option<&str>,
        path: &str,
    ) -> Option<Option<usize>> {
        // Where the run of nodes that hold nothing but the path further down begins.
        let mut run_start = None;
        let mut node = &self.root;
        let mut depth = 0;
        for level in path.split('/') {
            if depth > 0 {
                // `node` is at `depth - 1` and has a child on the path.
                if node.holds_nothing() && node.children.len() == 1 {
                    run_start.get_or_insert(depth - 1);
                } else {
                    run_start = None;
                }
            }
            node = node.children.get(level)?;
            depth += 1;
        }
        let group = match share {
            None if node.subscribers.contains_key(client) => None,
            None => return None,
            Some(name) => {
                let group = node.groups.get(name)?;
                group.position(client)?;
                Some(group)
            }
        };
        // The subscription is all the node holds: the only subscriber and no group,
        // or the only member of the only group and no subscriber.
        let alone = node.subscribers.len() + node.groups.len() == 1
            && group.is_none_or(|group| group.members.len() == 1);
        let emptied = node.children.is_empty() && alone;
        Some(emptied.then(|| run_start.unwrap_or(depth - 1)))
    }

    /// Puts into `found` (emptied first) one [`Match`] per session a message of
    /// `publisher` to `topic` goes to: see [`Subscriptions::matches_into`].
    ///
    /// The walk follows the topic's levels down one path; only a `+` node beside it
    /// leaves a branch to come back to, so a list of pending branches is allocated
    /// only for topics that `+` filters reach. Each node is reached by one path
    /// only, so each group is asked for one member at most per message.
    fn matches_into(
        &self,
        topic: &str,
        publisher: Option<&str>,
        found: &mut Vec<Match>,
        online: &dyn Fn(&ClientKey) -> bool,
    ) {
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
                if let Some(hash) = node.hash() {
                    add_all(found, hash, publisher, online);
                }
            }
            let Some(levels) = levels else {
                add_all(found, node, publisher, online);
                continue;
            };
            let (level, rest) = match levels.split_once('/') {
                Some((level, rest)) => (level, Some(rest)),
                None => (levels, None),
            };
            if wildcards {
                if let Some(plus) = node.plus() {
                    branches.push((plus, rest));
                }
            }
            current = node.children.get(level).map(|child| (child, rest));
        }
        if found.len() > 1 {
            // A session matched through several filters appears once per filter.
            let mut identifiers_merged = false;
            found.sort_unstable_by(|a, b| a.client.cmp(&b.client));
            found.dedup_by(|later, kept| {
                if later.client != kept.client {
                    return false;
                }
                kept.qos = kept.qos.max(later.qos);
                kept.retain_as_published |= later.retain_as_published;
                if !later.identifiers.is_empty() {
                    kept.identifiers.append(&mut later.identifiers);
                    identifiers_merged = true;
                }
                true
            });
            if identifiers_merged {
                for found in found.iter_mut().filter(|found| found.identifiers.len() > 1) {
                    found.identifiers.sort_unstable();
                    found.identifiers.dedup();
                }
            }
        }
    }

    /// [`matches_into`](Self::matches_into) as a map of the QoS granted, for tests.
    #[cfg(test)]
    fn matches(&self, topic: &str) -> HashMap<String, QoS> {
        let mut found = Vec::new();
        self.matches_into(topic, None, &mut found, &|_| true);
        found
            .into_iter()
            .map(|found| (found.client.to_string(), found.qos))
            .collect()
    }

    /// How many (session, filter) subscriptions are stored, memberships of shared
    /// groups included.
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

/// Adds the matches of the subscriptions `node` holds: each ordinary subscriber
/// but those No Local keeps from their own messages, and one member of each group.
fn add_all(
    found: &mut Vec<Match>,
    node: &Node,
    publisher: Option<&str>,
    online: &dyn Fn(&ClientKey) -> bool,
) {
    found.extend(
        node.subscribers
            .iter()
            .filter(|(client, options)| !is_own(client, options, publisher))
            .map(|(client, options)| Match::new(client, options)),
    );
    for group in node.groups.values() {
        if let Some((client, options)) = group.pick(publisher, online) {
            found.push(Match::new(client, options));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches;

    fn key(s: &str) -> ClientKey {
        ClientKey::new(s)
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    /// A 3.1.1 subscription: `qos` and no other option.
    fn at(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions::qos(qos)
    }

    /// Each client's filters, sorted, as `Subscriptions::of` lists them.
    fn filters_of(subscriptions: &Subscriptions, client: &str) -> Vec<(String, QoS)> {
        let mut filters: Vec<(String, QoS)> = subscriptions
            .of(&key(client))
            .map(|(filter, options)| (filter.to_string(), options.qos))
            .collect();
        filters.sort();
        filters
    }

    /// Who a message to `topic` goes to and at which QoS, every session online.
    fn routed(subscriptions: &mut Subscriptions, topic: &str) -> Vec<(ClientKey, QoS)> {
        let mut found = Vec::new();
        subscriptions.matches_into(topic, None, &mut found, |_| true);
        let mut found: Vec<_> = found.into_iter().map(|m| (m.client, m.qos)).collect();
        found.sort();
        found
    }

    #[test]
    fn a_client_s_filters_and_the_tree_change_together() {
        let mut subscriptions = Subscriptions::default();
        assert!(subscriptions.subscribe(&key("c"), &filter("a/+"), at(QoS::AtMostOnce)));
        assert!(subscriptions.subscribe(&key("c"), &filter("b"), at(QoS::AtLeastOnce)));
        assert!(subscriptions.subscribe(&key("d"), &filter("a/+"), at(QoS::ExactlyOnce)));
        // Again: the QoS is replaced, nothing is added [MQTT-3.8.4-3].
        assert!(!subscriptions.subscribe(&key("c"), &filter("a/+"), at(QoS::ExactlyOnce)));
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
        assert_eq!(
            routed(&mut subscriptions, "a/x"),
            [(key("c"), QoS::ExactlyOnce), (key("d"), QoS::ExactlyOnce)]
        );

        assert!(subscriptions.unsubscribe(&key("c"), &filter("b")));
        assert!(!subscriptions.unsubscribe(&key("c"), &filter("b")));
        assert!(!subscriptions.unsubscribe(&key("e"), &filter("b")));
        assert_eq!(
            filters_of(&subscriptions, "c"),
            [("a/+".into(), QoS::ExactlyOnce)]
        );
        assert!(routed(&mut subscriptions, "b").is_empty());

        subscriptions.remove_client(&key("c"));
        assert_eq!(subscriptions.count_of(&key("c")), 0);
        assert_eq!(subscriptions.len(), 1);
        assert_eq!(
            routed(&mut subscriptions, "a/x"),
            [(key("d"), QoS::ExactlyOnce)]
        );
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
            tree.subscribe(&key("c"), &filter(f), at(QoS::AtMostOnce));
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
        tree.subscribe(&key("c"), &filter("a/#"), at(QoS::AtMostOnce));
        tree.subscribe(&key("c"), &filter("a/b"), at(QoS::ExactlyOnce));
        tree.subscribe(&key("c"), &filter("+/b"), at(QoS::AtLeastOnce));
        tree.subscribe(&key("d"), &filter("a/+"), at(QoS::AtLeastOnce));
        let found = tree.matches("a/b");
        assert_eq!(found.len(), 2);
        assert_eq!(found["c"], QoS::ExactlyOnce);
        assert_eq!(found["d"], QoS::AtLeastOnce);
        assert_eq!(tree.len(), 4);
    }

    #[test]
    fn resubscribing_replaces_the_qos_mqtt_3_8_4_3() {
        let mut tree = SubscriptionTree::default();
        assert!(tree.subscribe(&key("c"), &filter("a"), at(QoS::AtMostOnce)));
        assert!(!tree.subscribe(&key("c"), &filter("a"), at(QoS::ExactlyOnce)));
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.matches("a")["c"], QoS::ExactlyOnce);
    }

    #[test]
    fn unsubscribe_compares_filters_literally_and_prunes_mqtt_3_10_4_1() {
        let mut tree = SubscriptionTree::default();
        tree.subscribe(&key("c"), &filter("a/#"), at(QoS::AtMostOnce));
        assert!(!tree.unsubscribe(&key("c"), &filter("a/b")));
        assert!(tree.matches("a/b").contains_key("c"));
        assert!(tree.unsubscribe(&key("c"), &filter("a/#")));
        assert!(tree.matches("a/b").is_empty());
        assert!(tree.root.is_empty());
        assert_eq!(tree.len(), 0);
    }

    #[test]
    fn unsubscribe_prunes_only_what_no_other_subscription_needs() {
        let mut tree = SubscriptionTree::default();
        tree.subscribe(&key("c"), &filter("a"), at(QoS::AtMostOnce));
        tree.subscribe(&key("c"), &filter("a/b/c/d"), at(QoS::AtMostOnce));
        tree.subscribe(&key("d"), &filter("a/b/c/d"), at(QoS::AtMostOnce));
        tree.subscribe(&key("c"), &filter("a/x"), at(QoS::AtMostOnce));
        assert!(!tree.unsubscribe(&key("e"), &filter("a/b/c/d")));
        assert!(!tree.unsubscribe(&key("c"), &filter("a/b/c")));
        assert!(tree.unsubscribe(&key("c"), &filter("a/b/c/d")));
        assert!(tree.matches("a/b/c/d").contains_key("d"));
        assert!(tree.unsubscribe(&key("d"), &filter("a/b/c/d")));
        // `a/b/c/d` is gone up to `a`, which still has a subscriber and `x`.
        let a = &tree.root.children["a"];
        assert!(a.children.contains_key("x") && a.children.len() == 1);
        assert!(tree.unsubscribe(&key("c"), &filter("a")));
        assert!(tree.unsubscribe(&key("c"), &filter("a/x")));
        assert!(tree.root.is_empty());
        assert_eq!(tree.len(), 0);
    }

    /// Options with every field given.
    fn options(
        qos: QoS,
        no_local: bool,
        retain_as_published: bool,
        identifier: u32,
    ) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local,
            retain_as_published,
            identifier: NonZeroU32::new(identifier),
        }
    }

    /// What a message to `topic` from `publisher` finds, sorted by client, with
    /// the sessions in `online` connected.
    fn found(
        subscriptions: &mut Subscriptions,
        topic: &str,
        publisher: Option<&str>,
        online: &[&str],
    ) -> Vec<Match> {
        let mut found = Vec::new();
        let publisher = publisher.map(key);
        subscriptions.matches_into(topic, publisher.as_ref(), &mut found, |client| {
            online.contains(&&**client)
        });
        found
    }

    /// The clients a message to `topic` goes to, every session online.
    fn clients(subscriptions: &mut Subscriptions, topic: &str, online: &[&str]) -> Vec<String> {
        found(subscriptions, topic, None, online)
            .into_iter()
            .map(|found| found.client.to_string())
            .collect()
    }

    #[test]
    fn resubscribing_replaces_every_option_and_of_lists_them_mqtt_3_8_4_3() {
        let mut subscriptions = Subscriptions::default();
        let first = options(QoS::AtMostOnce, true, false, 7);
        let second = options(QoS::ExactlyOnce, false, true, 9);
        assert!(subscriptions.subscribe(&key("c"), &filter("a"), first));
        assert_eq!(
            subscriptions.of(&key("c")).next(),
            Some((&filter("a"), first))
        );
        assert!(!subscriptions.subscribe(&key("c"), &filter("a"), second));
        assert_eq!(
            subscriptions.of(&key("c")).collect::<Vec<_>>(),
            [(&filter("a"), second)]
        );
        assert_eq!(
            found(&mut subscriptions, "a", Some("c"), &[]),
            [Match {
                client: key("c"),
                qos: QoS::ExactlyOnce,
                retain_as_published: true,
                identifiers: vec![9],
            }]
        );
        assert_eq!(subscriptions.len(), 1);
    }

    #[test]
    fn no_local_keeps_a_client_s_own_messages_from_it_mqtt_3_8_3_3() {
        let mut subscriptions = Subscriptions::default();
        let no_local = options(QoS::AtLeastOnce, true, false, 0);
        subscriptions.subscribe(&key("c"), &filter("a/#"), no_local);
        subscriptions.subscribe(&key("d"), &filter("a/+"), no_local);
        let to = |found: Vec<Match>| -> Vec<String> {
            found.into_iter().map(|m| m.client.to_string()).collect()
        };
        assert_eq!(to(found(&mut subscriptions, "a/b", Some("c"), &[])), ["d"]);
        assert_eq!(
            to(found(&mut subscriptions, "a/b", Some("e"), &[])),
            ["c", "d"]
        );
        // The broker's own messages (a will, `$SYS`) have no publishing client.
        assert_eq!(to(found(&mut subscriptions, "a/b", None, &[])), ["c", "d"]);
        // Another subscription of `c` without No Local still gets it its own message.
        subscriptions.subscribe(&key("c"), &filter("a/b"), at(QoS::AtMostOnce));
        let own = found(&mut subscriptions, "a/b", Some("c"), &[]);
        assert_eq!(to(own.clone()), ["c", "d"]);
        assert_eq!(
            own[0].qos,
            QoS::AtMostOnce,
            "only the matching subscription counts"
        );
    }

    #[test]
    fn several_subscriptions_of_a_client_make_one_match_with_every_identifier_mqtt_3_3_4_3() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.subscribe(
            &key("c"),
            &filter("a/#"),
            options(QoS::AtMostOnce, false, false, 30),
        );
        subscriptions.subscribe(
            &key("c"),
            &filter("a/+"),
            options(QoS::ExactlyOnce, false, false, 4),
        );
        subscriptions.subscribe(
            &key("c"),
            &filter("+/b"),
            options(QoS::AtLeastOnce, false, true, 30),
        );
        subscriptions.subscribe(&key("c"), &filter("a/b"), at(QoS::AtMostOnce));
        subscriptions.subscribe(
            &key("d"),
            &filter("a/b"),
            options(QoS::AtMostOnce, false, false, 5),
        );
        assert_eq!(
            found(&mut subscriptions, "a/b", None, &[]),
            [
                Match {
                    client: key("c"),
                    qos: QoS::ExactlyOnce,
                    retain_as_published: true,
                    identifiers: vec![4, 30],
                },
                Match {
                    client: key("d"),
                    qos: QoS::AtMostOnce,
                    retain_as_published: false,
                    identifiers: vec![5],
                },
            ]
        );
    }

    #[test]
    fn matches_without_identifiers_allocate_no_identifier_list() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.subscribe(&key("c"), &filter("a/#"), at(QoS::AtMostOnce));
        subscriptions.subscribe(&key("c"), &filter("a/b"), at(QoS::AtLeastOnce));
        subscriptions.subscribe(&key("d"), &filter("a/b"), at(QoS::AtLeastOnce));
        let found = found(&mut subscriptions, "a/b", None, &[]);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|found| found.identifiers.capacity() == 0));
    }

    #[test]
    fn a_shared_group_gives_each_message_to_one_member_in_turn_mqtt_4_8_2() {
        let mut subscriptions = Subscriptions::default();
        for member in ["c1", "c2", "c3"] {
            assert!(subscriptions.subscribe(
                &key(member),
                &filter("$share/g/jobs/+"),
                at(QoS::AtLeastOnce)
            ));
        }
        subscriptions.subscribe(&key("x"), &filter("jobs/+"), at(QoS::AtMostOnce));
        assert_eq!(subscriptions.len(), 4);
        let online = ["c1", "c2", "c3"];
        let mut picked = Vec::new();
        for _ in 0..6 {
            let found = clients(&mut subscriptions, "jobs/1", &online);
            assert_eq!(found.len(), 2, "one member, and the ordinary subscriber");
            assert!(found.contains(&"x".to_string()));
            picked.extend(found.into_iter().filter(|client| client != "x"));
        }
        assert_eq!(picked, ["c1", "c2", "c3", "c1", "c2", "c3"]);
        // Only what matches the group's filter reaches it, and moves no turn.
        assert_eq!(
            clients(&mut subscriptions, "jobs", &online),
            Vec::<String>::new()
        );
        assert_eq!(clients(&mut subscriptions, "jobs/1", &online), ["c1", "x"]);
    }

    #[test]
    fn a_shared_group_prefers_members_online_and_else_still_takes_turns() {
        let mut subscriptions = Subscriptions::default();
        for member in ["c1", "c2", "c3"] {
            subscriptions.subscribe(&key(member), &filter("$share/g/t"), at(QoS::AtLeastOnce));
        }
        let mut picks = |online: &[&str], count: usize| -> Vec<String> {
            (0..count)
                .flat_map(|_| clients(&mut subscriptions, "t", online))
                .collect()
        };
        assert_eq!(picks(&["c2"], 3), ["c2", "c2", "c2"]);
        assert_eq!(picks(&["c1", "c3"], 4), ["c3", "c1", "c3", "c1"]);
        // None online: their persistent sessions queue QoS 1 and 2 messages.
        assert_eq!(picks(&[], 4), ["c2", "c3", "c1", "c2"]);
    }

    #[test]
    fn each_member_gets_the_message_with_its_own_subscription_s_options_mqtt_4_8_2_3() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.subscribe(
            &key("c1"),
            &filter("$share/g/t"),
            options(QoS::AtMostOnce, false, false, 1),
        );
        subscriptions.subscribe(
            &key("c2"),
            &filter("$share/g/t"),
            options(QoS::ExactlyOnce, false, true, 2),
        );
        let first = found(&mut subscriptions, "t", None, &["c1", "c2"]);
        let second = found(&mut subscriptions, "t", None, &["c1", "c2"]);
        assert_eq!(
            (
                first[0].client.as_ref(),
                first[0].qos,
                first[0].retain_as_published,
                &*first[0].identifiers
            ),
            ("c1", QoS::AtMostOnce, false, &[1][..])
        );
        assert_eq!(
            (
                second[0].client.as_ref(),
                second[0].qos,
                second[0].retain_as_published,
                &*second[0].identifiers
            ),
            ("c2", QoS::ExactlyOnce, true, &[2][..])
        );
    }

    #[test]
    fn a_shared_pick_and_an_own_subscription_of_one_client_merge_into_one_match() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.subscribe(
            &key("c"),
            &filter("$share/g/a/+"),
            options(QoS::ExactlyOnce, false, false, 2),
        );
        subscriptions.subscribe(
            &key("c"),
            &filter("$share/h/a/#"),
            options(QoS::AtMostOnce, false, false, 3),
        );
        subscriptions.subscribe(
            &key("c"),
            &filter("a/b"),
            options(QoS::AtLeastOnce, false, true, 1),
        );
        assert_eq!(subscriptions.len(), 3);
        assert_eq!(
            found(&mut subscriptions, "a/b", None, &["c"]),
            [Match {
                client: key("c"),
                qos: QoS::ExactlyOnce,
                retain_as_published: true,
                identifiers: vec![1, 2, 3],
            }]
        );
    }

    #[test]
    fn a_shared_member_with_no_local_is_passed_over_for_its_own_messages() {
        let mut subscriptions = Subscriptions::default();
        let no_local = options(QoS::AtMostOnce, true, false, 0);
        subscriptions.subscribe(&key("c1"), &filter("$share/g/t"), no_local);
        subscriptions.subscribe(&key("c2"), &filter("$share/g/t"), no_local);
        let picked = |found: Vec<Match>| -> Vec<String> {
            found.into_iter().map(|m| m.client.to_string()).collect()
        };
        for _ in 0..3 {
            assert_eq!(
                picked(found(&mut subscriptions, "t", Some("c1"), &["c1", "c2"])),
                ["c2"]
            );
        }
        subscriptions.unsubscribe(&key("c2"), &filter("$share/g/t"));
        assert!(found(&mut subscriptions, "t", Some("c1"), &["c1"]).is_empty());
        assert_eq!(
            picked(found(&mut subscriptions, "t", Some("c2"), &["c1"])),
            ["c1"]
        );
    }

    #[test]
    fn shared_subscriptions_are_named_by_their_whole_filter() {
        let mut subscriptions = Subscriptions::default();
        let c = key("c");
        assert!(subscriptions.subscribe(&c, &filter("$share/g/a"), at(QoS::AtLeastOnce)));
        assert!(subscriptions.subscribe(&c, &filter("$share/h/a"), at(QoS::AtMostOnce)));
        assert!(subscriptions.subscribe(&c, &filter("a"), at(QoS::ExactlyOnce)));
        assert!(!subscriptions.subscribe(&c, &filter("$share/g/a"), at(QoS::ExactlyOnce)));
        assert_eq!((subscriptions.len(), subscriptions.count_of(&c)), (3, 3));
        assert_eq!(
            filters_of(&subscriptions, "c"),
            [
                ("$share/g/a".into(), QoS::ExactlyOnce),
                ("$share/h/a".into(), QoS::AtMostOnce),
                ("a".into(), QoS::ExactlyOnce),
            ]
        );
        assert!(subscriptions.contains(&c, &filter("$share/h/a")));
        assert!(!subscriptions.contains(&c, &filter("$share/x/a")));
        assert!(!subscriptions.unsubscribe(&c, &filter("$share/x/a")));
        assert!(subscriptions.unsubscribe(&c, &filter("a")));
        assert!(subscriptions.unsubscribe(&c, &filter("$share/g/a")));
        // Still in group `h`.
        assert_eq!(clients(&mut subscriptions, "a", &[]), ["c"]);
        assert_eq!(subscriptions.len(), 1);
    }

    #[test]
    fn the_last_member_to_leave_takes_its_group_and_the_nodes_it_needed() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.subscribe(&key("c1"), &filter("$share/g/a/b/c"), at(QoS::AtMostOnce));
        subscriptions.subscribe(&key("c2"), &filter("$share/g/a/b/c"), at(QoS::AtMostOnce));
        subscriptions.subscribe(&key("c1"), &filter("$share/h/a/b"), at(QoS::AtMostOnce));
        subscriptions.subscribe(&key("c3"), &filter("a/b"), at(QoS::AtMostOnce));
        assert!(subscriptions.unsubscribe(&key("c1"), &filter("$share/g/a/b/c")));
        let b = &subscriptions.tree.root.children["a"].children["b"];
        assert_eq!(b.children["c"].groups["g"].members.len(), 1);
        subscriptions.remove_client(&key("c2"));
        let b = &subscriptions.tree.root.children["a"].children["b"];
        assert!(b.children.is_empty(), "group `g` and node `c` are gone");
        assert!(subscriptions.unsubscribe(&key("c3"), &filter("a/b")));
        let b = &subscriptions.tree.root.children["a"].children["b"];
        assert!(b.subscribers.is_empty() && b.groups.len() == 1);
        assert!(subscriptions.unsubscribe(&key("c1"), &filter("$share/h/a/b")));
        assert_eq!(subscriptions.len(), 0);
        assert!(subscriptions.by_client.is_empty());
        assert!(subscriptions.tree.root.is_empty(), "the tree is pruned");
    }

    #[test]
    fn the_turn_stays_in_range_and_moves_on_fairly_as_members_leave() {
        let mut subscriptions = Subscriptions::default();
        let shared = filter("$share/g/t");
        for member in ["c1", "c2", "c3", "c4"] {
            subscriptions.subscribe(&key(member), &shared, at(QoS::AtMostOnce));
        }
        let all = ["c1", "c2", "c3", "c4"];
        assert_eq!(clients(&mut subscriptions, "t", &all), ["c1"]);
        assert_eq!(clients(&mut subscriptions, "t", &all), ["c2"]);
        // c3 has the turn. A member before it leaves: c3 keeps the turn.
        subscriptions.unsubscribe(&key("c1"), &shared);
        assert_eq!(clients(&mut subscriptions, "t", &all), ["c3"]);
        // c4 has the turn and leaves: the turn goes round to the first member.
        subscriptions.remove_client(&key("c4"));
        assert_eq!(clients(&mut subscriptions, "t", &all), ["c2"]);
        // c3 has the turn and a member after it leaves.
        subscriptions.subscribe(&key("c5"), &shared, at(QoS::AtMostOnce));
        subscriptions.unsubscribe(&key("c5"), &shared);
        assert_eq!(clients(&mut subscriptions, "t", &all), ["c3"]);
        assert_eq!(clients(&mut subscriptions, "t", &all), ["c2"]);
        let group = &subscriptions.tree.root.children["t"].groups["g"];
        assert!(group.next.get() < group.members.len());
    }

    #[test]
    fn a_shared_filter_s_wildcards_start_at_its_own_first_level_mqtt_4_7_2_1() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.subscribe(&key("c"), &filter("$share/g/#"), at(QoS::AtMostOnce));
        subscriptions.subscribe(&key("d"), &filter("$share/g/+/x"), at(QoS::AtMostOnce));
        subscriptions.subscribe(&key("e"), &filter("$share/g/$SYS/#"), at(QoS::AtMostOnce));
        assert_eq!(clients(&mut subscriptions, "$SYS/x", &[]), ["e"]);
        assert_eq!(clients(&mut subscriptions, "a/x", &[]), ["c", "d"]);
        assert_eq!(
            clients(&mut subscriptions, "$share/g/a", &[]),
            Vec::<String>::new()
        );
        // `$share/g/#` and `$share/g/+/x` are two groups, though both are named `g`.
        assert_eq!(subscriptions.tree.root.children["#"].groups.len(), 1);
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
            tree.subscribe(&key("c"), &literal, at(QoS::AtLeastOnce));
            tree.subscribe(&key("d"), &wildcards, at(QoS::AtMostOnce));
            tree.subscribe(&key("e"), &literal, at(QoS::ExactlyOnce));
            let shared = filter(&format!("$share/g/{}", "/".repeat(65_526)));
            tree.subscribe(&key("f"), &shared, at(QoS::AtMostOnce));
            // The shared member, and `d`'s `+/.../#` with fewer levels.
            let found = tree.matches(&"/".repeat(65_526));
            assert!(found.contains_key("f") && found.contains_key("d") && found.len() == 2);
            assert!(tree.unsubscribe(&key("f"), &shared));
            let found = tree.matches(&literal);
            assert_eq!(found.len(), 3);
            assert_eq!(found["c"], QoS::AtLeastOnce);
            assert!(tree.matches("/").is_empty());
            assert!(tree.unsubscribe(&key("c"), &literal));
            assert!(tree.unsubscribe(&key("d"), &wildcards));
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
                    let new = tree.subscribe(&client_key, &filter(filters[f]), at(qos));
                    proptest::prop_assert_eq!(new, model.insert((client, f), qos).is_none());
                } else {
                    let removed = tree.unsubscribe(&client_key, &filter(filters[f]));
                    proptest::prop_assert_eq!(removed, model.remove(&(client, f)).is_some());
                }
            }
            proptest::prop_assert_eq!(tree.len(), model.len());
            for topic in topics {
                let mut expected: HashMap<String, QoS> = HashMap::new();
                for (&(client, f), &qos) in &model {
                    if matches(filters[f], topic) {
                        let best = expected.entry(client.to_string()).or_insert(qos);
                        *best = (*best).max(qos);
                    }
                }
                proptest::prop_assert_eq!(tree.matches(topic), expected, "topic {}", topic);
            }
            for (client, f) in model.into_keys() {
                tree.unsubscribe(&key(&client.to_string()), &filter(filters[f]));
            }
            proptest::prop_assert!(tree.root.is_empty());
        }

        #[test]
        fn shared_groups_give_one_member_each_message_whatever_joins_and_leaves(
            operations in proptest::collection::vec((proptest::bool::weighted(0.7), 0..4usize, 0..8usize), 0..40),
            online in proptest::collection::vec(proptest::bool::ANY, 4),
        ) {
            let filters = ["a/+", "#", "a/b", "$share/g/a/+", "$share/g/#", "$share/h/a/+", "$share/g/$SYS/#", "$share/h/+/b"];
            let topics = ["a/b", "a", "$SYS/x", "b/b", "a/b"];
            let mut subscriptions = Subscriptions::default();
            let mut model: HashMap<(usize, usize), QoS> = HashMap::new();
            for (subscribe, client, f) in operations {
                let client_key = key(&client.to_string());
                if subscribe {
                    let new = subscriptions.subscribe(&client_key, &filter(filters[f]), at(QoS::AtMostOnce));
                    proptest::prop_assert_eq!(new, model.insert((client, f), QoS::AtMostOnce).is_none());
                } else {
                    let removed = subscriptions.unsubscribe(&client_key, &filter(filters[f]));
                    proptest::prop_assert_eq!(removed, model.remove(&(client, f)).is_some());
                }
            }
            proptest::prop_assert_eq!(subscriptions.len(), model.len());
            let is_online = |client: &ClientKey| online[client.parse::<usize>().unwrap()];
            let mut found = Vec::new();
            for topic in topics {
                subscriptions.matches_into(topic, None, &mut found, is_online);
                let got: Vec<String> = found.iter().map(|m| m.client.to_string()).collect();
                let mut unique = got.clone();
                unique.dedup();
                proptest::prop_assert_eq!(&unique, &got, "one match per client");
                for (f, text) in filters.iter().enumerate() {
                    let subscribed = filter(text);
                    let (share, path) = target(&subscribed);
                    if !matches(path, topic) {
                        continue;
                    }
                    let holders: Vec<String> = model.keys().filter(|&&(_, g)| g == f).map(|(c, _)| c.to_string()).collect();
                    if share.is_none() {
                        for holder in &holders {
                            proptest::prop_assert!(got.contains(holder), "{} has {}", holder, text);
                        }
                    } else if !holders.is_empty() {
                        // A group reaches one of its members, an online one if it has any.
                        let reached: Vec<&String> = holders.iter().filter(|h| got.contains(h)).collect();
                        proptest::prop_assert!(!reached.is_empty(), "group {}", text);
                        let online_holder = |h: &&String| online[h.parse::<usize>().unwrap()];
                        if holders.iter().any(|h| online_holder(&h)) {
                            proptest::prop_assert!(reached.iter().any(online_holder));
                        }
                    }
                }
                for client in &got {
                    let c: usize = client.parse().unwrap();
                    proptest::prop_assert!(model.keys().any(|&(holder, f)| holder == c && matches(target(&filter(filters[f])).1, topic)));
                }
            }
            for (client, f) in model.into_keys() {
                subscriptions.unsubscribe(&key(&client.to_string()), &filter(filters[f]));
            }
            proptest::prop_assert!(subscriptions.tree.root.is_empty());
            proptest::prop_assert!(subscriptions.by_client.is_empty());
        }
    }
}
