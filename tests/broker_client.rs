//! The broker with wren's own client as peer: the two halves of the crate agree.

mod common;

use common::{start_broker, TIMEOUT};
use wren::client::{Client, ClientOptions, QoS};

fn options(broker: &wren::Broker, client_id: &str) -> ClientOptions {
    let addr = broker.local_addr();
    ClientOptions::new(addr.ip().to_string(), addr.port())
        .with_client_id(client_id)
        .with_operation_timeout(TIMEOUT)
}

#[test]
fn the_wren_client_publishes_and_receives_at_every_qos() {
    let broker = start_broker();
    let client = Client::connect(options(&broker, "both-ends")).unwrap();
    let subscription = client.subscribe("wren/#", QoS::ExactlyOnce).unwrap();
    for (qos, payload) in [
        (QoS::AtMostOnce, "zero"),
        (QoS::AtLeastOnce, "one"),
        (QoS::ExactlyOnce, "two"),
    ] {
        client.publish("wren/qos", payload, qos, false).unwrap();
        let message = subscription
            .recv_timeout(TIMEOUT)
            .unwrap()
            .expect("a message");
        assert_eq!(message.payload_str().unwrap(), payload);
    }
    client.disconnect().unwrap();
}

#[test]
fn a_persistent_wren_client_gets_what_was_queued_while_it_was_away() {
    let broker = start_broker();
    let durable = options(&broker, "durable").with_clean_session(false);
    let client = Client::connect(durable.clone()).unwrap();
    let subscription = client.subscribe("queue", QoS::AtLeastOnce).unwrap();
    client.disconnect().unwrap();
    // After DISCONNECT the handle sends nothing: the session keeps its subscription.
    drop(subscription);
    common::wait_until("the session is offline", || {
        let stats = broker.stats();
        stats.connected_clients == 0 && stats.subscriptions == 1
    });

    let publisher = Client::connect(options(&broker, "publisher")).unwrap();
    for n in 0..5 {
        publisher
            .publish("queue", format!("m{n}"), QoS::AtLeastOnce, false)
            .unwrap();
    }
    common::wait_until("five messages are queued", || {
        broker.stats().queued_messages == 5
    });

    let back = Client::connect(durable).unwrap();
    let messages = back.messages();
    for n in 0..5 {
        let message = messages.recv_timeout(TIMEOUT).unwrap().expect("a message");
        assert_eq!(message.payload_str().unwrap(), format!("m{n}"));
    }
}
