//! Tests of the retained-message tree: the retain rules, deep topics, replays in
//! slices, and what the tree costs.

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

#[test]
fn removing_prunes_only_what_no_other_message_needs() {
    let mut store = RetainedMessages::default();
    for topic in ["a", "a/b/c/d", "a/x"] {
        store.apply(&retained(topic, "x"));
    }
    assert!(!store.remove("a/b/c"));
    assert!(!store.remove("a/b/c/d/e"));
    assert!(store.remove("a/b/c/d"));
    let a = &store.root.children["a"];
    assert!(a.children.contains_key("x") && a.children.len() == 1);
    assert!(store.remove("a"));
    assert!(store.remove("a/x"));
    assert!(store.root.is_empty());
    assert_eq!((store.len(), store.bytes()), (0, 0));
}

/// Every chunk of a replay of `filter` with `budget`, joined, and how many
/// chunks it took.
fn replay_in_chunks(
    store: &RetainedMessages,
    filter: &TopicFilter,
    budget: usize,
) -> (Vec<String>, usize) {
    let mut topics = Vec::new();
    let mut cursor = None;
    let mut chunks = 0;
    loop {
        let chunk = store.replay(filter, cursor.as_ref(), budget);
        assert!(chunk.messages.len() <= budget);
        chunks += 1;
        topics.extend(chunk.messages.iter().map(|m| m.topic.to_string()));
        match chunk.next {
            Some(next) => cursor = Some(next),
            None => return (topics, chunks),
        }
    }
}

fn topics_of(chunk: &ReplayChunk) -> Vec<&str> {
    chunk.messages.iter().map(|m| m.topic.as_str()).collect()
}

#[test]
fn replay_goes_depth_first_in_level_order_and_counts_nodes_not_messages() {
    let mut store = RetainedMessages::default();
    for topic in ["a-c", "a/b", "a", "b/x/y", "$SYS/x"] {
        store.apply(&retained(topic, "x"));
    }
    let all = TopicFilter::new("#").unwrap();
    let chunk = store.replay(&all, None, usize::MAX);
    // `a` before `a-c`: levels compare one by one, a parent before its children.
    assert_eq!(topics_of(&chunk), ["a", "a/b", "a-c", "b/x/y"]);
    assert_eq!(chunk.next, None);
    // `b` and `b/x` hold no message but are visited.
    let chunk = store.replay(&all, None, 4);
    assert_eq!(topics_of(&chunk), ["a", "a/b", "a-c"]);
    let chunk = store.replay(&all, chunk.next.as_ref(), 1);
    assert!(chunk.messages.is_empty());
    let chunk = store.replay(&all, chunk.next.as_ref(), 2);
    assert_eq!((topics_of(&chunk), &chunk.next), (vec!["b/x/y"], &None));
}

#[test]
fn a_chunk_that_ends_the_walk_says_so() {
    let mut store = RetainedMessages::default();
    store.apply(&retained("a", "x"));
    let chunk = store.replay(&TopicFilter::new("a").unwrap(), None, 1);
    assert_eq!((topics_of(&chunk), &chunk.next), (vec!["a"], &None));
}

#[test]
fn a_wildcard_over_many_topics_that_do_not_match_is_bounded_per_call() {
    let mut store = RetainedMessages::default();
    for n in 0..1_000 {
        store.apply(&retained(&format!("a/{n}/c"), "x"));
    }
    let filter = TopicFilter::new("a/+/b").unwrap();
    let chunk = store.replay(&filter, None, 10);
    assert!(chunk.messages.is_empty() && chunk.next.is_some());
    let (topics, chunks) = replay_in_chunks(&store, &filter, 10);
    // `a`, then the thousand `a/N`, and no `a/N/b` to find.
    assert_eq!((topics.len(), chunks), (0, 101));
}

#[test]
fn replay_resumes_after_its_cursor_when_the_tree_changes() {
    let mut store = RetainedMessages::default();
    for topic in ["a/x", "b", "b/m", "c"] {
        store.apply(&retained(topic, "x"));
    }
    let all = TopicFilter::new("#").unwrap();
    // Visits `a` and `a/x`.
    let first = store.replay(&all, None, 2);
    assert_eq!(topics_of(&first), ["a/x"]);
    // The cursor's node goes, and its parent with it.
    store.remove("a/x");
    let second = store.replay(&all, first.next.as_ref(), 2);
    assert_eq!(topics_of(&second), ["b", "b/m"]);
    // One topic before the cursor `b/m`, one after it, one below it.
    store.apply(&retained("b/a", "x"));
    store.apply(&retained("b/z", "x"));
    store.apply(&retained("b/m/n", "x"));
    let third = store.replay(&all, second.next.as_ref(), 10);
    assert_eq!(topics_of(&third), ["b/m/n", "b/z", "c"]);
    assert_eq!(third.next, None);
    // A cursor whose whole path is gone still resumes after it.
    let mut store = RetainedMessages::default();
    store.apply(&retained("z", "x"));
    let gone = ReplayCursor {
        path: "m/n/o".into(),
    };
    assert_eq!(topics_of(&store.replay(&all, Some(&gone), 10)), ["z"]);
}

#[test]
fn a_leading_wildcard_skips_many_dollar_topics_in_one_step_mqtt_4_7_2_1() {
    let mut store = RetainedMessages::default();
    for n in 0..1_000 {
        store.apply(&retained(&format!("${n}"), "x"));
    }
    store.apply(&retained("!", "x"));
    store.apply(&retained("z", "x"));
    let chunk = store.replay(&TopicFilter::new("+").unwrap(), None, 2);
    assert_eq!((topics_of(&chunk), &chunk.next), (vec!["!", "z"], &None));
}

#[test]
fn replay_skips_dollar_topics_for_leading_wildcards_mqtt_4_7_2_1() {
    let mut store = RetainedMessages::default();
    for topic in ["$SYS/a", "$SYS", "s/a"] {
        store.apply(&retained(topic, "x"));
    }
    for (filter, expected) in [
        ("#", vec!["s/a"]),
        ("+/a", vec!["s/a"]),
        ("$SYS/#", vec!["$SYS", "$SYS/a"]),
    ] {
        let filter = TopicFilter::new(filter).unwrap();
        for budget in [1, 2, usize::MAX] {
            assert_eq!(replay_in_chunks(&store, &filter, budget).0, expected);
        }
    }
    // Resuming from a `$` cursor with `#` does not wander into `$SYS` either.
    let cursor = ReplayCursor {
        path: "$SYS".into(),
    };
    let chunk = store.replay(&TopicFilter::new("#").unwrap(), Some(&cursor), 10);
    assert_eq!(topics_of(&chunk), ["s/a"]);
}

/// Runs `work` on a thread whose stack is far too small for one frame per level
/// of the deepest topic, as the router's would be for a hostile client.
fn on_a_small_stack(work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(work)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn the_deepest_topics_are_replayed_removed_and_dropped_without_recursion() {
    on_a_small_stack(|| {
        // 65,536 empty levels: the deepest topic that fits in 65,535 bytes.
        let deep = "/".repeat(65_535);
        let mut store = RetainedMessages::default();
        store.apply(&retained(&deep, "deep"));
        store.apply(&retained("a", "shallow"));
        for filter in ["#", "+/#", deep.as_str()] {
            let filter = TopicFilter::new(filter).unwrap();
            let found = store.matching(&filter);
            assert!(found.iter().any(|m| m.topic == *deep), "{:.8}", filter);
            let (chunked, _) = replay_in_chunks(&store, &filter, 4_096);
            let whole = store.replay(&filter, None, usize::MAX);
            assert_eq!(chunked, topics_of(&whole));
        }
        // 32,768 `+`: reaches halfway down and matches nothing.
        let plus = TopicFilter::new(format!("{}+", "+/".repeat(32_767))).unwrap();
        assert!(store.matching(&plus).is_empty());
        assert_eq!(store.size_of(&deep), Some(65_535 + 4));
        assert!(store.remove(&deep));
        store.apply(&retained(&deep, "again"));
        // Dropped with the 65,536-level topic still in it.
        drop(store);
    });
}

/// A topic of one to four levels from a small alphabet that holds an empty
/// level, a `$` level, and `a-b`, which sorts between `a` and `a/...` by bytes.
fn any_topic() -> impl proptest::strategy::Strategy<Value = String> {
    let level = proptest::sample::select(vec!["a", "b", "", "$x", "a-b"]);
    proptest::collection::vec(level, 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("a topic is not empty", |topic| !topic.is_empty())
}

fn any_filter() -> impl proptest::strategy::Strategy<Value = String> {
    let level = proptest::sample::select(vec!["a", "b", "", "$x", "+"]);
    (proptest::collection::vec(level, 0..4), proptest::bool::ANY)
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#");
            }
            levels.join("/")
        })
        .prop_filter("a filter is not empty", |filter| !filter.is_empty())
}

use proptest::strategy::Strategy;

proptest::proptest! {
    #[test]
    fn replay_in_chunks_yields_one_unbounded_replay_in_order(
        topics in proptest::collection::vec(any_topic(), 0..16),
        filter in any_filter(),
    ) {
        let mut store = RetainedMessages::default();
        for topic in &topics {
            store.apply(&retained(topic, "x"));
        }
        let filter = TopicFilter::new(filter).unwrap();
        let whole = store.replay(&filter, None, usize::MAX);
        proptest::prop_assert!(whole.next.is_none());
        let whole: Vec<String> = topics_of(&whole).into_iter().map(String::from).collect();
        // Exactly the matching topics, each once, in level-by-level order.
        let mut expected: Vec<&String> = topics.iter().filter(|t| matches(&filter, t)).collect();
        expected.sort_by(|a, b| a.split('/').cmp(b.split('/')));
        expected.dedup();
        proptest::prop_assert_eq!(&whole, &expected.into_iter().cloned().collect::<Vec<_>>());
        let nodes = 1 + topics.iter().map(|t| t.split('/').count()).sum::<usize>();
        for budget in [1, 2, 7] {
            let (chunked, chunks) = replay_in_chunks(&store, &filter, budget);
            proptest::prop_assert_eq!(&chunked, &whole, "budget {}", budget);
            proptest::prop_assert!(chunks <= nodes / budget + 1, "budget {}", budget);
        }
    }

    #[test]
    fn a_replay_of_a_changing_tree_ends_in_order_and_misses_no_lasting_topic(
        topics in proptest::collection::vec(any_topic(), 0..16),
        changes in proptest::collection::vec((proptest::bool::ANY, any_topic()), 0..16),
        filter in any_filter(),
        budget in proptest::sample::select(vec![1usize, 2, 7]),
    ) {
        let mut store = RetainedMessages::default();
        for topic in &topics {
            store.apply(&retained(topic, "x"));
        }
        let filter = TopicFilter::new(filter).unwrap();
        let mut changes = changes.into_iter();
        let mut replayed: Vec<String> = Vec::new();
        let mut cursor = None;
        let mut touched = Vec::new();
        for _ in 0..1_000 {
            let chunk = store.replay(&filter, cursor.as_ref(), budget);
            replayed.extend(chunk.messages.iter().map(|m| m.topic.to_string()));
            let Some(next) = chunk.next else { break };
            cursor = Some(next);
            // One topic added or removed between chunks.
            if let Some((add, topic)) = changes.next() {
                if add {
                    store.apply(&retained(&topic, "x"));
                } else {
                    store.remove(&topic);
                }
                touched.push(topic);
            }
        }
        // Strictly increasing in the walk's order: no topic twice, and an end.
        for pair in replayed.windows(2) {
            proptest::prop_assert!(pair[0].split('/').lt(pair[1].split('/')), "{:?}", pair);
        }
        for topic in &topics {
            if matches(&filter, topic) && !touched.contains(topic) {
                proptest::prop_assert!(replayed.contains(topic), "{} missing", topic);
            }
        }
    }
}

#[test]
fn the_footprint_counts_the_nodes_a_topic_adds_and_gives_them_back() {
    let message = |topic: &str, payload: &'static str| {
        Publish::new(
            TopicName::new(topic).unwrap(),
            payload,
            QoS::AtMostOnce,
            true,
        )
    };
    let mut retained = RetainedMessages::default();
    let first = message("a/b/c", "x");
    let predicted = retained.footprint_with(&first);
    retained.apply(&first);
    assert_eq!(retained.nodes(), 3);
    assert_eq!(retained.footprint(), predicted);
    assert_eq!(predicted, 6 + 3 * node_cost());
    // A sibling shares two of the nodes.
    let sibling = message("a/b/d", "y");
    assert_eq!(
        retained.footprint_with(&sibling),
        predicted + 6 + node_cost()
    );
    retained.apply(&sibling);
    assert_eq!(retained.nodes(), 4);
    // Replacing a message adds no node; removing gives back what only it used.
    let replacement = message("a/b/c", "zz");
    assert_eq!(
        retained.footprint_with(&replacement),
        retained.footprint() + 1
    );
    assert!(retained.remove("a/b/c"));
    assert_eq!(retained.nodes(), 3);
    assert!(retained.remove("a/b/d"));
    assert_eq!((retained.nodes(), retained.footprint()), (0, 0));
}
