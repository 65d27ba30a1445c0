//! Publishing and subscribing from the embedding program: the same routing as
//! network clients, without a socket.

mod common;

use std::sync::Arc;

use common::{start_broker, wait_until, TIMEOUT};
use wren::broker::{AclHook, Broker, Error};
use wren::client::{Client, QoS};
use wren::config::BrokerConfig;

fn url(broker: &Broker) -> String {
    format!("mqtt://{}", broker.local_addr())
}

#[test]
fn an_inline_subscription_receives_what_network_clients_publish_at_every_qos() {
    let broker = start_broker();
    let inline = broker.subscribe("inline/#", QoS::ExactlyOnce).unwrap();
    assert_eq!(inline.granted_qos(), QoS::ExactlyOnce);
    let client = Client::connect(url(&broker).as_str()).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client
            .publish("inline/test", format!("q{qos}"), qos, false)
            .unwrap();
        let message = inline.recv_timeout(TIMEOUT).unwrap().expect("a delivery");
        assert_eq!(message.topic, "inline/test");
        assert_eq!(message.payload, format!("q{qos}"));
        assert_eq!(message.qos, qos);
    }
    // The subscription plays the client's part of QoS 2 as it is read: reading takes
    // the PUBREL that follows and answers it with PUBCOMP; nothing comes twice.
    wait_until("nothing in flight", || {
        assert!(
            matches!(inline.try_recv(), Ok(None)),
            "a message delivered twice"
        );
        broker.stats().inflight_messages == 0
    });
}

#[test]
fn an_inline_publish_reaches_network_subscribers_and_can_be_retained() {
    let broker = start_broker();
    let client = Client::connect(url(&broker).as_str()).unwrap();
    let live = client.subscribe("news/#", QoS::AtLeastOnce).unwrap();
    broker
        .publish("news/today", "sunny", QoS::AtLeastOnce, true)
        .unwrap();
    let message = live
        .recv_timeout(TIMEOUT)
        .unwrap()
        .expect("the live message");
    assert_eq!(message.payload_str().unwrap(), "sunny");
    assert_eq!(message.qos(), QoS::AtLeastOnce);
    assert!(
        !message.retain(),
        "forwarded to an existing subscriber [MQTT-3.3.1-9]"
    );

    // A later subscriber, network or inline, gets it as a retained message.
    let later = broker.subscribe("news/today", QoS::AtMostOnce).unwrap();
    let retained = later
        .recv_timeout(TIMEOUT)
        .unwrap()
        .expect("the retained message");
    assert!(retained.retain);
    assert_eq!(retained.qos, QoS::AtMostOnce);
}

#[test]
fn dropping_an_inline_subscription_unsubscribes() {
    let broker = start_broker();
    let subscription = broker.subscribe("a/+", QoS::AtLeastOnce).unwrap();
    wait_until("one subscription", || broker.stats().subscriptions == 1);
    drop(subscription);
    wait_until("no subscription", || broker.stats().subscriptions == 0);
}

#[test]
fn inline_clients_are_trusted_by_the_acl() {
    // Nobody but the embedding program may touch 'private/#'.
    let acl = wren::auth::Acl::parse_mosquitto("topic readwrite public/#\n", "acl").unwrap();
    let config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    let broker = Broker::builder(config)
        .hook(Arc::new(AclHook::new(acl)))
        .start()
        .unwrap();
    let inline = broker.subscribe("private/#", QoS::AtLeastOnce).unwrap();
    broker
        .publish("private/key", "k", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(
        inline
            .recv_timeout(TIMEOUT)
            .unwrap()
            .expect("a message")
            .topic,
        "private/key"
    );
}

#[test]
fn bad_topics_are_refused_with_the_rule_they_break() {
    let broker = start_broker();
    let error = broker
        .publish("a/+", "x", QoS::AtMostOnce, false)
        .unwrap_err();
    assert!(matches!(error, Error::Topic { .. }), "{error}");
    assert!(error.to_string().contains("wildcard"), "{error}");
    let error = broker.subscribe("a/#/b", QoS::AtMostOnce).unwrap_err();
    assert!(matches!(error, Error::Topic { .. }), "{error}");
}
