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
//!
//! A subscription to `#` may find a million retained messages.
//! [`RetainedMessages::replay`] hands them out in chunks of bounded work, each
//! resuming where the last stopped, so the router can serve other clients in
//! between. Every walk here is a loop with its own stack, never a recursion: no
//! topic depth reaches the thread's.

use std::collections::btree_map::{self, BTreeMap};
use std::fmt;
use std::ops::Bound;

use std::time::{Duration, Instant};

use crate::protocol::{Publish, TopicFilter};

#[derive(Default)]
struct Node {
    /// In byte order of the level, so that every walk has one fixed order.
    children: BTreeMap<Box<str>, Node>,
    /// Boxed: most nodes only lead to others, and a B-tree leaf holds room for
    /// eleven of them whether used or not.
    message: Option<Box<Retained>>,
}

/// A retained message, and when it expires if it has an MQTT 5 Message Expiry
/// Interval: it is then no longer sent to new subscribers [MQTT-3.3.2-5], and is
/// sent with the time it has left [MQTT-3.3.2-6].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retained {
    pub(crate) publish: Publish,
    pub(crate) expires: Option<Instant>,
}

impl std::ops::Deref for Retained {
    type Target = Publish;

    fn deref(&self) -> &Publish {
        &self.publish
    }
}

/// What one node of the tree costs in memory, for [`RetainedMessages::footprint`]:
/// a node with one child still allocates a whole B-tree leaf (room for eleven
/// children), so every node is charged a leaf. Where nodes share a leaf this
/// overestimates, which errs on the safe side of `max-retained-bytes`.
fn node_cost() -> usize {
    const LEAF_CAPACITY: usize = 11;
    LEAF_CAPACITY * std::mem::size_of::<(Box<str>, Node)>() + 16
}

impl Node {
    /// Whether the node holds nothing (tests check that removal leaves no such node).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

impl Drop for Node {
    /// Drops the nodes below this one one at a time. The derived drop would recurse
    /// once per level, and a topic of 65,535 `/` is 65,536 levels: enough to
    /// overflow the router thread's stack.
    fn drop(&mut self) {
        let mut below: Vec<Node> = std::mem::take(&mut self.children).into_values().collect();
        while let Some(mut node) = below.pop() {
            below.extend(std::mem::take(&mut node.children).into_values());
            // `node` is dropped here with no children: this function does not recurse.
        }
    }
}

/// The retained messages of the broker, by topic.
///
/// Every walk of the tree is a loop, never a recursion: a topic may have up to
/// 65,536 levels, and no input depth may reach the stack.
#[derive(Default)]
pub(crate) struct RetainedMessages {
    root: Node,
    count: usize,
    bytes: usize,
    /// Nodes below the root.
    nodes: usize,
}

/// Where a replay stopped: the levels of the last node it visited.
///
/// A cursor names a place in the order of every possible topic, not a node of the
/// tree, so it stays meaningful whatever happens to the tree between two calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayCursor {
    /// The levels joined by `/`, as in a topic name (levels never hold a `/`).
    path: Box<str>,
}

/// What one call of [`RetainedMessages::replay`] found.
#[derive(Debug)]
pub(crate) struct ReplayChunk {
    /// The matching messages, with RETAIN=1, in the walk's order.
    pub(crate) messages: Vec<Retained>,
    /// Where to resume; `None` when the walk is complete.
    pub(crate) next: Option<ReplayCursor>,
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
            node = match node.children.entry(level.into()) {
                btree_map::Entry::Occupied(child) => child.into_mut(),
                btree_map::Entry::Vacant(place) => {
                    self.nodes += 1;
                    place.insert(Node::default())
                }
            };
        }
        // Stored without packet id or DUP: those belong to one delivery, not the message.
        let mut copy = publish.clone();
        copy.compact();
        copy.packet_id = None;
        copy.dup = false;
        copy.retain = true;
        let expires = copy
            .properties()
            .message_expiry_interval
            .map(|seconds| Instant::now() + Duration::from_secs(seconds.into()));
        let stored = Box::new(Retained {
            publish: copy,
            expires,
        });
        self.bytes += stored_size(&stored);
        match node.message.replace(stored) {
            Some(old) => self.bytes -= stored_size(&old),
            None => self.count += 1,
        }
        true
    }

    /// Removes the retained message of `topic`, if there is one, and the nodes that
    /// only led to it.
    ///
    /// A walk down through `&mut` references cannot climb back up, so this takes two
    /// walks down the topic: a read-only one that finds the message and the highest
    /// node it alone keeps alive, then one that removes.
    pub(crate) fn remove(&mut self, topic: &str) -> bool {
        let Some((size, prune)) = self.find_removal(topic) else {
            return false;
        };
        let mut levels = topic.split('/');
        let depth = topic.split('/').count();
        let removed = match prune {
            Some(depth) => {
                // The node at `depth` and everything under it on the path hold
                // nothing else: remove it from its parent (its drop is iterative too).
                let parent = descend_mut(&mut self.root, levels.by_ref().take(depth));
                let level = levels.next();
                parent
                    .zip(level)
                    .and_then(|(parent, level)| parent.children.remove(level))
                    .is_some()
            }
            None => descend_mut(&mut self.root, levels)
                .and_then(|node| node.message.take())
                .is_some(),
        };
        if removed {
            self.count -= 1;
            self.bytes -= size;
            // The pruned nodes: from the highest emptied one down to the topic's.
            self.nodes -= prune.map_or(0, |from| depth - from);
        }
        removed
    }

    /// The read-only first walk of [`remove`](Self::remove): `None` when `topic`
    /// has no message; otherwise the message's [size](Self::size_of) and the depth
    /// (0 for a child of the root) of the highest node that removing it leaves
    /// empty, if any.
    fn find_removal(&self, topic: &str) -> Option<(usize, Option<usize>)> {
        // Where the run of nodes that hold nothing but the path further down begins.
        let mut run_start = None;
        let mut node = &self.root;
        let mut depth = 0;
        for level in topic.split('/') {
            if depth > 0 {
                // `node` is at `depth - 1` and has a child on the path.
                if node.message.is_none() && node.children.len() == 1 {
                    run_start.get_or_insert(depth - 1);
                } else {
                    run_start = None;
                }
            }
            node = node.children.get(level)?;
            depth += 1;
        }
        let size = stored_size(node.message.as_deref()?);
        let emptied = node.children.is_empty();
        Some((size, emptied.then(|| run_start.unwrap_or(depth - 1))))
    }

    /// The size of the message retained on exactly `topic`, as
    /// [`bytes`](Self::bytes) counts it (topic plus payload), if there is one: what
    /// replacing it would give back, for checking limits before [`apply`](Self::apply).
    pub(crate) fn size_of(&self, topic: &str) -> Option<usize> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_deref().map(stored_size)
    }

    /// The retained messages whose topics match `filter`, with RETAIN=1, in topic
    /// order.
    ///
    /// All of them at once: for a filter that may match many, the router uses
    /// [`replay`](Self::replay) instead.
    #[cfg(test)]
    pub(crate) fn matching(&self, filter: &TopicFilter) -> Vec<Publish> {
        let mut found: Vec<Publish> = (self.replay(filter, None, usize::MAX).messages)
            .into_iter()
            .map(|retained| retained.publish)
            .collect();
        // The walk's order compares level by level; topic order compares bytes, and
        // `-` sorts before `/`. Sorting means a subscription sees the order of names.
        found.sort_unstable_by(|a, b| a.topic.cmp(&b.topic));
        found
    }

    /// Walks the messages matching `filter`, starting after `from` (or at the
    /// beginning), visiting at most `budget` tree nodes (budget >= 1; 0 counts as 1);
    /// `next` is `None` when the walk is complete.
    ///
    /// This lets the router serve a subscription to `#` over a million retained
    /// messages a chunk at a time, between other clients' work. The budget counts
    /// nodes visited, matching or not, so a filter like `a/+/b` over 100,000
    /// non-matching topics is bounded per call too.
    ///
    /// The walk is depth-first, a node's own message before its children's, and
    /// children in byte order of their level: the order of topics compared level by
    /// level. A cursor is the path of the last node visited, and a call resumes at
    /// the first node strictly after it in that order, whatever changed meanwhile:
    /// topics added after the cursor are found, topics added before it are not (they
    /// reach the subscriber as new publishes anyway), and removing the cursor's own
    /// node does no harm. Each call visits at least one node further along, so a
    /// replay ends, and returns a topic at most once.
    pub(crate) fn replay(
        &self,
        filter: &TopicFilter,
        from: Option<&ReplayCursor>,
        budget: usize,
    ) -> ReplayChunk {
        let budget = budget.max(1);
        let mut walk = Walk::resume(&self.root, filter, from);
        let mut messages = Vec::new();
        let mut visited = 0;
        while let Some((level, node, step)) = walk.next_node() {
            if step.takes_message() {
                messages.extend(node.message.iter().map(|message| Retained::clone(message)));
            }
            walk.enter(level, node, step);
            visited += 1;
            if visited == budget {
                let cursor = walk.cursor();
                // Report the end now rather than with one more, empty, chunk.
                let next = walk.next_node().map(|_| cursor);
                return ReplayChunk { messages, next };
            }
        }
        ReplayChunk {
            messages,
            next: None,
        }
    }

    /// How many messages are retained.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The bytes of all retained messages: topic plus payload of each.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// What the retained messages cost in memory: their [`bytes`](Self::bytes) and
    /// the tree's nodes. A topic of 200 levels, each new, costs the tree far more
    /// than its 400 bytes of name; this is what `max-retained-bytes` holds down.
    pub(crate) fn footprint(&self) -> usize {
        self.bytes + self.nodes * node_cost()
    }

    /// The [`footprint`](Self::footprint) once `publish` (a message to retain,
    /// not a removal) is applied: for checking limits before
    /// [`apply`](Self::apply).
    pub(crate) fn footprint_with(&self, publish: &Publish) -> usize {
        let mut node = Some(&self.root);
        let mut new_nodes = 0;
        for level in publish.topic.split('/') {
            node = node.and_then(|node| node.children.get(level));
            if node.is_none() {
                new_nodes += 1;
            }
        }
        let old = node
            .and_then(|node| node.message.as_deref())
            .map_or(0, stored_size);
        self.footprint() - old + publish_size(publish) + new_nodes * node_cost()
    }

    /// Nodes below the root, for tests.
    #[cfg(test)]
    fn nodes(&self) -> usize {
        self.nodes
    }
}

impl fmt::Debug for RetainedMessages {
    /// The counts only: printing the tree itself would be as deep as its topics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainedMessages")
            .field("count", &self.count)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// What a stored message counts for in [`RetainedMessages::bytes`].
fn stored_size(message: &Retained) -> usize {
    publish_size(message)
}

/// What a message to retain will count for in [`RetainedMessages::bytes`].
fn publish_size(message: &Publish) -> usize {
    message.topic.len() + message.payload.len()
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

/// What the children of a node reached by the filter must match: the rest of the
/// filter, seen one level at a time.
#[derive(Clone, Copy)]
enum Step<'f> {
    /// The filter ended at this node: no child matches.
    End,
    /// `#`: every child, and everything below it.
    Everything,
    /// `+`: every child, and below it the filter levels `rest`.
    AnyLevel { rest: Option<&'f str> },
    /// One child, `level`, and below it the filter levels `rest`.
    Level {
        level: &'f str,
        rest: Option<&'f str>,
    },
}

impl<'f> Step<'f> {
    /// The step for the filter levels `levels` (`None`: none left).
    fn of(levels: Option<&'f str>) -> Self {
        let Some(levels) = levels else {
            return Step::End;
        };
        let (level, rest) = match levels.split_once('/') {
            Some((level, rest)) => (level, Some(rest)),
            None => (levels, None),
        };
        match level {
            "#" => Step::Everything,
            "+" => Step::AnyLevel { rest },
            _ => Step::Level { level, rest },
        }
    }

    /// The step of a child this step matched.
    fn below(self) -> Self {
        match self {
            Step::End | Step::Everything => self,
            Step::AnyLevel { rest } | Step::Level { rest, .. } => Step::of(rest),
        }
    }

    /// Whether the message of a node reached with this step matches: the filter
    /// ended exactly there, or only `#` is left, which also matches its parent
    /// level (`a/#` matches `a`).
    fn takes_message(self) -> bool {
        matches!(self, Step::End | Step::Everything)
    }
}

/// A node of the walk whose children are being visited.
struct Frame<'t, 'f> {
    /// The node's level (the root's is never read).
    level: &'t str,
    node: &'t Node,
    step: Step<'f>,
    /// At the root, wildcards skip levels that begin with `$` [MQTT-4.7.2-1].
    at_root: bool,
    /// The children still to visit, in order.
    children: Children<'t>,
}

enum Children<'t> {
    /// Children in order from some point on, for a wildcard step.
    All(btree_map::Range<'t, Box<str>, Node>),
    /// The one child a literal level names, if still to visit.
    One(Option<(&'t str, &'t Node)>),
}

impl<'t, 'f> Frame<'t, 'f> {
    /// The frame of `node`, whose children after `after` (all if `None`) remain.
    fn new(
        level: &'t str,
        node: &'t Node,
        step: Step<'f>,
        at_root: bool,
        after: Option<&str>,
    ) -> Self {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let children = match step {
            Step::End => Children::One(None),
            Step::Everything | Step::AnyLevel { .. } => {
                Children::All(node.children.range::<str, _>((from, Bound::Unbounded)))
            }
            Step::Level { level, .. } => Children::One(
                node.children
                    .get_key_value(level)
                    .filter(|_| after.is_none_or(|after| level > after))
                    .map(|(level, node)| (&**level, node)),
            ),
        };
        Frame {
            level,
            node,
            step,
            at_root,
            children,
        }
    }

    /// Whether the step lets the walk into a child on `level`.
    fn admits(&self, level: &str) -> bool {
        match self.step {
            Step::End => false,
            Step::Everything | Step::AnyLevel { .. } => !(self.at_root && level.starts_with('$')),
            Step::Level { level: wanted, .. } => level == wanted,
        }
    }

    /// The next child to visit, in order.
    fn next_child(&mut self) -> Option<(&'t str, &'t Node)> {
        match &mut self.children {
            Children::One(child) => child.take(),
            Children::All(children) => {
                let (level, node) = children.next()?;
                if !(self.at_root && level.starts_with('$')) {
                    return Some((level, node));
                }
                // Levels that begin with `$` sort together, just before `%`: skip
                // them all at once, so that a wildcard walk past a million `$`
                // topics stays bounded too.
                *children = self
                    .node
                    .children
                    .range::<str, _>((Bound::Included("%"), Bound::Unbounded));
                children.next().map(|(level, node)| (&**level, node))
            }
        }
    }
}

/// A depth-first walk of the nodes a filter reaches, with its own stack of frames
/// in place of recursion: one frame per level of the current path.
struct Walk<'t, 'f> {
    stack: Vec<Frame<'t, 'f>>,
}

impl<'t, 'f> Walk<'t, 'f> {
    /// A walk of `root` for `filter` that visits only what comes after `from`.
    ///
    /// Rebuilds the frames along the cursor's path, each one keeping only the
    /// children after the path's next level; it stops where the tree (or the
    /// filter) leaves the path, as nothing below that point is left to visit.
    fn resume(root: &'t Node, filter: &'f TopicFilter, from: Option<&ReplayCursor>) -> Self {
        let step = Step::of(Some(filter.as_str()));
        let Some(from) = from else {
            return Walk {
                stack: vec![Frame::new("", root, step, true, None)],
            };
        };
        let mut levels = from.path.split('/').peekable();
        let mut stack = vec![Frame::new("", root, step, true, levels.peek().copied())];
        while let Some(level) = levels.next() {
            let Some(parent) = stack.last() else { break };
            if !parent.admits(level) {
                break;
            }
            let Some((level, node)) = parent.node.children.get_key_value(level) else {
                break;
            };
            let step = parent.step.below();
            stack.push(Frame::new(level, node, step, false, levels.peek().copied()));
        }
        Walk { stack }
    }

    /// The next node to visit, with its level and step, leaving behind the frames
    /// whose children are all visited.
    fn next_node(&mut self) -> Option<(&'t str, &'t Node, Step<'f>)> {
        while let Some(frame) = self.stack.last_mut() {
            if let Some((level, node)) = frame.next_child() {
                return Some((level, node, frame.step.below()));
            }
            self.stack.pop();
        }
        None
    }

    /// Makes `node`, just visited, the one whose children come next.
    fn enter(&mut self, level: &'t str, node: &'t Node, step: Step<'f>) {
        self.stack.push(Frame::new(level, node, step, false, None));
    }

    /// The path of the node entered last.
    fn cursor(&self) -> ReplayCursor {
        let levels: Vec<&str> = self.stack[1..].iter().map(|frame| frame.level).collect();
        ReplayCursor {
            path: levels.join("/").into(),
        }
    }
}

#[cfg(test)]
mod tests;
