//! The broker's inline sessions, which bridges are built on: a chosen client id,
//! a persistent session, acknowledgements when the program says, and No Local for
//! what the session publishes itself.

mod common;

use std::time::Duration;

use wren::client::Client;
use wren::protocol::{Publish, QoS, SubscribeFilter, TopicFilter, TopicName};

use common::{WrenBroker, PATIENCE};

fn filter(text: &str, qos: QoS, no_local: bool) -> SubscribeFilter {
    let mut filter = SubscribeFilter::new(TopicFilter::new(text).unwrap(), qos);
    filter.no_local = no_local;
    filter
}

#[test]
fn what_an_inline_session_publishes_skips_its_own_no_local_subscriptions() {
    let broker = WrenBroker::start();
    let session = broker
        .inline_session("bridge", true, vec![filter("a/#", QoS::AtLeastOnce, true)])
        .unwrap();
    let outsider = Client::connect(broker.url().as_str()).unwrap();
    let seen_outside = outsider.subscribe("a/#", QoS::AtLeastOnce).unwrap();

    let own = Publish::new(
        TopicName::new("a/own").unwrap(),
        "mine",
        QoS::AtLeastOnce,
        false,
    );
    session.publish(own).unwrap();
    let message = seen_outside.recv_timeout(PATIENCE).unwrap().unwrap();
    assert_eq!(message.topic(), "a/own");

    outsider
        .publish("a/other", "theirs", QoS::AtLeastOnce, false)
        .unwrap();
    let message = session.recv_timeout(PATIENCE).unwrap().unwrap();
    assert_eq!(
        message.topic.as_str(),
        "a/other",
        "its own message never came"
    );
    session.acknowledge(&message);
    assert!(session
        .recv_timeout(Duration::from_millis(300))
        .unwrap()
        .is_none());
}

#[test]
fn unacknowledged_messages_of_a_persistent_inline_session_come_again_in_order() {
    let broker = WrenBroker::start();
    let filters = vec![filter("jobs/#", QoS::ExactlyOnce, false)];
    let session = broker
        .inline_session("worker", true, filters.clone())
        .unwrap();
    assert!(!session.session_present());
    for n in 0..5 {
        broker
            .publish("jobs/x", format!("{n}"), QoS::ExactlyOnce, false)
            .unwrap();
    }
    // Take two and acknowledge only the first.
    let first = session.recv_timeout(PATIENCE).unwrap().unwrap();
    session.acknowledge(&first);
    let _second = session.recv_timeout(PATIENCE).unwrap().unwrap();
    drop(session);

    let session = broker.inline_session("worker", true, filters).unwrap();
    assert!(session.session_present());
    let mut payloads = Vec::new();
    while payloads.len() < 4 {
        let message = session.recv_timeout(PATIENCE).unwrap().expect("a message");
        payloads.push(String::from_utf8(message.payload.to_vec()).unwrap());
        session.acknowledge(&message);
    }
    assert_eq!(payloads, ["1", "2", "3", "4"]);
    // The PUBRELs that follow the acknowledgements are answered as the session
    // is read.
    broker.wait_until("every exchange finished", |b| {
        assert!(session
            .recv_timeout(Duration::from_millis(10))
            .unwrap()
            .is_none());
        b.stats().inflight_messages == 0 && b.stats().queued_messages == 0
    });
}

#[test]
fn a_persistent_inline_session_lists_and_drops_the_filters_it_kept() {
    let broker = WrenBroker::start();
    let session = broker
        .inline_session(
            "keeper",
            true,
            vec![
                filter("a/#", QoS::AtLeastOnce, false),
                filter("b/#", QoS::AtLeastOnce, false),
            ],
        )
        .unwrap();
    drop(session);
    let session = broker.inline_session("keeper", true, Vec::new()).unwrap();
    let mut filters: Vec<String> = session
        .subscriptions()
        .unwrap()
        .iter()
        .map(|f| f.to_string())
        .collect();
    filters.sort();
    assert_eq!(filters, ["a/#", "b/#"]);
    session
        .unsubscribe(vec![TopicFilter::new("b/#").unwrap()])
        .unwrap();
    let filters = session.subscriptions().unwrap();
    assert_eq!(filters, [TopicFilter::new("a/#").unwrap()]);
    broker.publish("b/1", "x", QoS::AtLeastOnce, false).unwrap();
    broker.publish("a/1", "y", QoS::AtLeastOnce, false).unwrap();
    let message = session.recv_timeout(PATIENCE).unwrap().unwrap();
    assert_eq!(message.topic.as_str(), "a/1");
    assert_eq!(
        session.held().unwrap(),
        (0, 1),
        "one sent, not yet acknowledged"
    );
}
