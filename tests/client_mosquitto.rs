//! The client against mosquitto's broker: every QoS, retained messages, wills,
//! persistent sessions, many threads, refusals.

mod client_support;
mod common;

use std::process::Command;
use std::time::Duration;

use client_support::scenarios::*;
use client_support::{Mosquitto, Relay, FRANK_SECRET, PATIENCE};
use wren::client::{
    Client, ClientOptions, Error, ProtocolVersion, QoS, ReasonCode, Reconnect, Will,
};

fn options(broker: &Mosquitto) -> ClientOptions {
    ClientOptions::from_url(&broker.url())
        .unwrap()
        .with_operation_timeout(PATIENCE)
        .with_connect_timeout(PATIENCE)
}

#[test]
fn a_message_of_each_qos_goes_round_trip() {
    let broker = Mosquitto::start();
    each_qos_goes_round_trip(&broker.url());
}

#[test]
fn mqtt_3_1_clients_talk_to_each_other() {
    let broker = Mosquitto::start();
    let client = Client::connect(
        options(&broker)
            .with_protocol(ProtocolVersion::V3_1)
            .with_client_id("old-timer"),
    )
    .unwrap();
    let subscription = client.subscribe("v31", QoS::AtLeastOnce).unwrap();
    client
        .publish("v31", "still here", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(
        subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message")
            .payload_str()
            .unwrap(),
        "still here"
    );
}

#[test]
fn a_retained_message_reaches_a_later_subscriber_with_retain_set() {
    let broker = Mosquitto::start();
    retained_reaches_a_later_subscriber(&broker.url());
}

#[test]
fn the_will_is_published_when_the_connection_breaks_but_not_on_disconnect() {
    let broker = Mosquitto::start();
    the_will_comes_when_the_connection_breaks(&broker.url(), broker.address());
}

#[test]
fn a_persistent_session_keeps_subscriptions_and_queues_qos_1_while_away() {
    let broker = Mosquitto::start();
    a_persistent_session_queues_while_away(&broker.url());
}

#[test]
fn a_message_matching_two_subscriptions_reaches_both_and_a_dropped_one_unsubscribes() {
    let broker = Mosquitto::start();
    let client = Client::connect(options(&broker)).unwrap();
    let wide = client.subscribe("home/#", QoS::AtLeastOnce).unwrap();
    let narrow = client
        .subscribe("home/+/temperature", QoS::AtLeastOnce)
        .unwrap();
    let same = client.subscribe("home/#", QoS::AtLeastOnce).unwrap();
    client
        .publish("home/kitchen/temperature", "21", QoS::AtLeastOnce, false)
        .unwrap();
    for subscription in [&wide, &narrow, &same] {
        assert_eq!(
            subscription
                .recv_timeout(PATIENCE)
                .unwrap()
                .expect("a message")
                .payload_str()
                .unwrap(),
            "21"
        );
    }
    // `same` still uses home/#, so dropping `wide` must not unsubscribe it.
    drop(wide);
    client
        .publish("home/hall/light", "on", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(
        same.recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message")
            .topic(),
        "home/hall/light"
    );
    drop(same);
    // Now home/# is gone from the broker: checked with a second client's view of
    // what this one receives through its catch-all.
    let everything = client.messages();
    client
        .publish("home/kitchen/temperature", "22", QoS::AtLeastOnce, false)
        .unwrap();
    client
        .publish("home/hall/light", "off", QoS::AtLeastOnce, false)
        .unwrap();
    let first = everything
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert_eq!(first.payload_str().unwrap(), "22");
    assert_eq!(
        narrow
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message")
            .payload_str()
            .unwrap(),
        "22"
    );
    assert!(matches!(
        everything.recv_timeout(Duration::from_millis(300)),
        Ok(None)
    ));
}

#[test]
fn subscribe_many_sends_one_subscribe_and_reports_each_grant() {
    let broker = Mosquitto::start();
    let client = Client::connect(options(&broker)).unwrap();
    let subscription = client
        .subscribe_many(&[("a", QoS::AtMostOnce), ("b/#", QoS::ExactlyOnce)])
        .unwrap();
    let grants: Vec<QoS> = subscription.filters().iter().map(|(_, q)| *q).collect();
    assert_eq!(grants, [QoS::AtMostOnce, QoS::ExactlyOnce]);
    client.publish("b/c", "1", QoS::ExactlyOnce, false).unwrap();
    client.publish("a", "2", QoS::AtLeastOnce, false).unwrap();
    let first = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    let second = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert_eq!((first.topic(), first.qos()), ("b/c", QoS::ExactlyOnce));
    assert_eq!((second.topic(), second.qos()), ("a", QoS::AtMostOnce));
    client.unsubscribe_many(&["a", "b/#"]).unwrap();
}

#[test]
fn subscriptions_made_from_different_threads_each_get_their_messages() {
    let broker = Mosquitto::start();
    subscriptions_from_different_threads(&broker.url());
}

#[test]
fn one_client_shared_by_8_threads_gets_every_publish_acknowledged() {
    let broker = Mosquitto::start();
    one_client_shared_by_8_threads(&broker.url());
}

#[test]
fn one_publisher_keeps_its_order_across_qos_and_calls_mqtt_4_6_0_6() {
    let broker = Mosquitto::start();
    one_publisher_keeps_its_order_across_qos_and_calls(&broker.url(), 1000);
}

#[test]
fn publish_nowait_keeps_many_in_flight_within_the_window() {
    let broker = Mosquitto::start();
    publish_nowait_many_in_flight(&broker.url());
}

#[test]
fn a_slow_reader_loses_no_qos_1_message() {
    let broker = Mosquitto::start();
    let client = Client::connect(options(&broker).with_message_capacity(4)).unwrap();
    let subscription = client.subscribe("slow", QoS::AtLeastOnce).unwrap();
    let publisher = Client::connect(options(&broker)).unwrap();
    for n in 0..300u32 {
        publisher
            .publish_nowait("slow", n.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
    }
    let received: Vec<u32> = subscription
        .iter()
        .take(300)
        .map(|m| m.payload_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(received, (0..300).collect::<Vec<_>>());
}

#[test]
fn a_bad_password_is_refused_with_mosquittos_reason() {
    let broker = Mosquitto::with_config(
        "allow_anonymous false\npassword_file {dir}/passwords\n",
        &[("passwords", &format!("{FRANK_SECRET}\n"))],
    );
    let url = |credentials: &str| format!("mqtt://{credentials}@127.0.0.1:{}", broker.port());
    let error = Client::connect(url("frank:wrong").as_str()).unwrap_err();
    assert!(
        matches!(
            error,
            Error::ConnectionRefused {
                code: ReasonCode::NOT_AUTHORIZED | ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("Connection Refused: "),
        "{error}"
    );
    let client = Client::connect(url("frank:secret").as_str()).unwrap();
    client.publish("fine", "", QoS::AtLeastOnce, false).unwrap();
}

#[test]
fn nothing_listening_is_an_io_error_naming_the_address() {
    let port = common::free_port();
    let error = Client::connect(format!("mqtt://127.0.0.1:{port}")).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[test]
fn bad_topics_are_refused_before_anything_is_sent() {
    let broker = Mosquitto::start();
    let client = Client::connect(options(&broker)).unwrap();
    assert!(matches!(
        client.publish("a/+", "", QoS::AtMostOnce, false),
        Err(Error::InvalidTopic { .. })
    ));
    assert!(matches!(
        client.subscribe("a/#/b", QoS::AtMostOnce),
        Err(Error::InvalidTopic { .. })
    ));
    // The connection is unharmed.
    client.publish("a/b", "", QoS::AtLeastOnce, false).unwrap();
}

#[test]
fn json_goes_in_and_comes_out() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Reading {
        sensor: String,
        celsius: f64,
    }
    let broker = Mosquitto::start();
    let client = Client::connect(options(&broker)).unwrap();
    let subscription = client.subscribe("json", QoS::AtLeastOnce).unwrap();
    let reading = Reading {
        sensor: "kitchen".into(),
        celsius: 21.5,
    };
    client
        .publish_json("json", &reading, QoS::AtLeastOnce, false)
        .unwrap();
    let message = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert_eq!(message.json::<Reading>().unwrap(), reading);
}

#[test]
fn publish_default_uses_the_topic_settings() {
    let broker = Mosquitto::start();
    let client = Client::connect(
        options(&broker)
            .with_default_qos(QoS::AtLeastOnce)
            .with_topic_defaults("defaults/retained", QoS::ExactlyOnce, true),
    )
    .unwrap();
    client.publish_default("defaults/retained", "kept").unwrap();
    client
        .publish_default("defaults/plain", "not kept")
        .unwrap();
    let late = Client::connect(options(&broker)).unwrap();
    let subscription = late.subscribe("defaults/#", QoS::ExactlyOnce).unwrap();
    let message = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert_eq!(
        (message.topic(), message.qos(), message.retain()),
        ("defaults/retained", QoS::ExactlyOnce, true)
    );
    assert!(matches!(
        subscription.recv_timeout(Duration::from_millis(200)),
        Ok(None)
    ));
}

#[test]
fn mosquitto_sub_receives_what_the_client_publishes() {
    let broker = Mosquitto::start();
    let sub = Command::new("mosquitto_sub")
        .args([
            "-p",
            &broker.port().to_string(),
            "-h",
            "127.0.0.1",
            "-t",
            "interop",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is missing: install the Debian package 'mosquitto-clients'");
    let client = Client::connect(options(&broker)).unwrap();
    // mosquitto_sub announces nothing when it is subscribed; publish retained so
    // that it gets the message whenever its SUBSCRIBE lands.
    client
        .publish("interop", "from wren", QoS::AtLeastOnce, true)
        .unwrap();
    let output = sub.wait_with_output().unwrap();
    assert!(output.status.success(), "mosquitto_sub failed: {output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "from wren\n");
}

#[test]
fn dropping_the_last_handle_says_disconnect_so_no_will_is_published() {
    let broker = Mosquitto::start();
    let watcher = Client::connect(options(&broker)).unwrap();
    let wills = watcher.subscribe("dropped/#", QoS::AtLeastOnce).unwrap();

    let dropped = Client::connect(options(&broker).with_will(Will::new(
        "dropped/politely",
        "gone",
        QoS::AtLeastOnce,
        false,
    )))
    .unwrap();
    let clone = dropped.clone();
    drop(dropped);
    assert!(clone.is_connected(), "a clone keeps the connection open");
    drop(clone);

    // A client whose connection breaks afterwards: its will is the first to come.
    let relay = Relay::to(broker.address());
    let _cut = Client::connect(
        ClientOptions::from_url(&relay.url())
            .unwrap()
            .with_reconnect(Reconnect::disabled())
            .with_will(Will::new("dropped/cut", "lost", QoS::AtLeastOnce, false)),
    )
    .unwrap();
    relay.cut();
    assert_eq!(
        wills
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message")
            .topic(),
        "dropped/cut"
    );
}

#[test]
fn what_mosquitto_pub_sends_reaches_a_subscription() {
    let broker = Mosquitto::start();
    let client = Client::connect(options(&broker)).unwrap();
    let subscription = client
        .subscribe("from/mosquitto", QoS::ExactlyOnce)
        .unwrap();
    let status = Command::new("mosquitto_pub")
        .args(["-p", &broker.port().to_string(), "-h", "127.0.0.1"])
        .args([
            "-t",
            "from/mosquitto",
            "-m",
            "hello wren",
            "-q",
            "2",
            "-V",
            "mqttv31",
        ])
        .status()
        .expect("mosquitto_pub is missing: install the Debian package 'mosquitto-clients'");
    assert!(status.success());
    let message = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert_eq!(
        (message.payload_str().unwrap(), message.qos()),
        ("hello wren", QoS::ExactlyOnce)
    );
}
