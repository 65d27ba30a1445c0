//! The client against wren's own broker, embedded in the test process: every QoS,
//! retained messages, wills, persistent sessions, many threads, refusals, and
//! reconnecting after a cut connection or a broker restart.
//!
//! The checks are the scenarios of `client_support::scenarios`, which
//! `client_mosquitto.rs` runs against mosquitto's broker.

mod client_support;
mod common;

use client_support::scenarios::*;
use client_support::{wait_until, Relay, WrenBroker, PATIENCE};
use wren::client::{Client, Error, QoS, ReasonCode, Reconnect};

#[test]
fn a_message_of_each_qos_goes_round_trip() {
    let broker = WrenBroker::start();
    each_qos_goes_round_trip(&broker.url());
}

#[test]
fn a_retained_message_reaches_a_later_subscriber_with_retain_set() {
    let broker = WrenBroker::start();
    retained_reaches_a_later_subscriber(&broker.url());
}

#[test]
fn the_will_is_published_when_the_connection_breaks_but_not_on_disconnect() {
    let broker = WrenBroker::start();
    the_will_comes_when_the_connection_breaks(&broker.url(), broker.address());
}

#[test]
fn a_persistent_session_keeps_subscriptions_and_queues_while_away() {
    let broker = WrenBroker::start();
    a_persistent_session_queues_while_away(&broker.url());
}

#[test]
fn subscriptions_made_from_different_threads_each_get_their_messages() {
    let broker = WrenBroker::start();
    subscriptions_from_different_threads(&broker.url());
}

#[test]
fn one_client_shared_by_8_threads_gets_every_publish_acknowledged() {
    let broker = WrenBroker::start();
    one_client_shared_by_8_threads(&broker.url());
}

#[test]
fn one_publisher_keeps_its_order_across_qos_and_calls_mqtt_4_6_0_6() {
    let broker = WrenBroker::start();
    one_publisher_keeps_its_order_across_qos_and_calls(&broker.url(), 3000);
}

#[test]
fn over_mqtt_5_one_publisher_keeps_its_order_across_qos_and_calls_mqtt5_4_6_0_6() {
    let broker = WrenBroker::start();
    let url = format!("{}?protocol=5", broker.url());
    one_publisher_keeps_its_order_across_qos_and_calls(&url, 3000);
}

#[test]
fn publish_nowait_keeps_many_in_flight_within_the_window() {
    let broker = WrenBroker::start();
    publish_nowait_many_in_flight(&broker.url());
}

#[test]
fn a_bad_password_is_refused_and_the_right_one_accepted() {
    let broker = WrenBroker::with_password("frank", "secret");
    let url = |credentials: &str| format!("mqtt://{credentials}127.0.0.1:{}", broker.port());
    for credentials in ["frank:wrong@", "nobody:secret@", ""] {
        let error =
            Client::connect(options(&url(credentials)).with_reconnect(Reconnect::disabled()))
                .unwrap_err();
        assert!(
            matches!(
                error,
                Error::ConnectionRefused {
                    code: ReasonCode::NOT_AUTHORIZED | ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    ..
                }
            ),
            "{credentials:?}: {error:?}"
        );
        assert!(
            error.to_string().starts_with("Connection Refused: "),
            "{error}"
        );
    }
    let client = Client::connect(options(&url("frank:secret@"))).unwrap();
    client.publish("fine", "", QoS::AtLeastOnce, false).unwrap();
}

#[test]
fn a_subscriber_cut_off_in_a_qos_1_stream_gets_every_message() {
    let broker = WrenBroker::start();
    let relay = Relay::to(broker.address());
    let subscriber = a_qos_1_stream_survives(&relay.url(), &broker.url(), || relay.cut());
    // The rest of the stream may already have been in the client's buffers when
    // the cut came; the reconnection then follows the last message, as long as the
    // client is alive to make it.
    wait_until("the subscriber to reconnect", || relay.accepted() >= 2);
    drop(subscriber);
}

#[test]
fn a_broker_restart_mid_stream_loses_no_qos_1_message() {
    let mut broker = WrenBroker::start();
    let url = broker.url();
    let _subscriber = a_qos_1_stream_survives(&url, &url, || broker.restart());
}

#[test]
fn retained_messages_and_sessions_survive_a_restart() {
    let mut broker = WrenBroker::start();
    let url = broker.url();
    let publisher = Client::connect(options(&url)).unwrap();
    publisher
        .publish("kept/state", "on", QoS::AtLeastOnce, true)
        .unwrap();
    let persistent = || {
        options(&url)
            .with_client_id("durable")
            .with_clean_session(false)
    };
    let reader = Client::connect(persistent()).unwrap();
    let subscription = reader.subscribe("kept/#", QoS::AtLeastOnce).unwrap();
    assert!(subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message")
        .retain());
    reader.disconnect().unwrap();
    drop(subscription);
    publisher
        .publish("kept/event", "while away", QoS::AtLeastOnce, false)
        .unwrap();

    broker.restart();

    let reader = Client::connect(persistent().with_reconnect(Reconnect::disabled())).unwrap();
    let everything = reader.messages();
    let queued = everything
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert_eq!(
        (queued.topic(), queued.payload_str().unwrap()),
        ("kept/event", "while away")
    );
    let late = Client::connect(options(&url)).unwrap();
    let fresh = late.subscribe("kept/+", QoS::AtLeastOnce).unwrap();
    let retained = fresh.recv_timeout(PATIENCE).unwrap().expect("a message");
    assert_eq!(
        (
            retained.topic(),
            retained.payload_str().unwrap(),
            retained.retain()
        ),
        ("kept/state", "on", true)
    );
}
