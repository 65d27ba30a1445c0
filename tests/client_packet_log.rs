//! Every packet is logged at debug level, target `wren::client::packets`, in the
//! words mosquitto's own clients print with `-d`; CONNECT comes first and
//! DISCONNECT last.

mod client_support;
mod common;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use client_support::{wait_until, Mosquitto, PATIENCE};
use wren::client::{Client, ClientOptions, QoS, PACKET_LOG_TARGET};

/// Keeps every packet line logged in this test process.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target() == PACKET_LOG_TARGET
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) && record.level() == log::Level::Debug {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn lines() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Debug);
        capture
    })
}

fn logged(client_id: &str) -> Vec<String> {
    let prefix = format!("Client {client_id} ");
    lines()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[test]
fn packets_are_logged_in_mosquittos_words() {
    lines();
    let broker = Mosquitto::start();
    let options = ClientOptions::from_url(&broker.url())
        .unwrap()
        .with_client_id("logged")
        .with_keep_alive(Duration::from_secs(1))
        .with_operation_timeout(PATIENCE);
    let client = Client::connect(options).unwrap();
    let subscription = client
        .subscribe_many(&[("log/#", QoS::AtLeastOnce), ("other", QoS::ExactlyOnce)])
        .unwrap();
    client
        .publish("log/a", "hello", QoS::AtLeastOnce, false)
        .unwrap();
    subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    client
        .publish("other", "x", QoS::ExactlyOnce, true)
        .unwrap();
    subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    wait_until("a keep-alive ping and its answer", || {
        logged("logged")
            .iter()
            .any(|line| line == "received PINGRESP")
    });
    client.disconnect().unwrap();

    let lines = logged("logged");
    let expected = [
        "sending CONNECT",
        "received CONNACK (0)",
        "sending SUBSCRIBE (Mid: 1, Topic: log/#, QoS: 1, Options: 0x00)",
        "sending SUBSCRIBE (Mid: 1, Topic: other, QoS: 2, Options: 0x00)",
        "received SUBACK",
        "sending PUBLISH (d0, q1, r0, m2, 'log/a', ... (5 bytes))",
        "received PUBACK (Mid: 2, RC:0)",
        "sending PUBLISH (d0, q2, r1, m3, 'other', ... (1 bytes))",
        "received PUBREC (Mid: 3)",
        "sending PUBREL (m3)",
        "received PUBCOMP (Mid: 3, RC:0)",
        "sending PINGREQ",
        "received PINGRESP",
    ];
    for line in expected {
        assert!(lines.iter().any(|l| l == line), "no '{line}' in {lines:#?}");
    }
    // The broker's side of the exchanges, whose ids it chooses.
    for pattern in [
        "received PUBLISH (d0, q1, r0, m",
        "sending PUBACK (m",
        "received PUBLISH (d0, q2, r0, m",
        "sending PUBREC (m",
        "received PUBREL (Mid: ",
        "sending PUBCOMP (m",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(pattern)),
            "no '{pattern}...' in {lines:#?}"
        );
    }
    // [MQTT-3.1.0-1] CONNECT first; [MQTT-3.14.4-2] DISCONNECT last.
    assert_eq!(lines.first().map(String::as_str), Some("sending CONNECT"));
    assert_eq!(lines.last().map(String::as_str), Some("sending DISCONNECT"));
}

#[test]
fn a_message_without_any_receiver_is_still_acknowledged_mqtt_4_5_0_2() {
    lines();
    let broker = Mosquitto::start();
    let options = || {
        ClientOptions::from_url(&broker.url())
            .unwrap()
            .with_client_id("unread")
            .with_clean_session(false)
            .with_operation_timeout(PATIENCE)
    };
    // The subscription lives in the broker's session, not in this process.
    let client = Client::connect(options()).unwrap();
    let subscription = client.subscribe("kept", QoS::AtLeastOnce).unwrap();
    client.disconnect().unwrap();
    drop(subscription);

    let publisher = Client::connect(ClientOptions::from_url(&broker.url()).unwrap()).unwrap();
    publisher
        .publish("kept", "one", QoS::AtLeastOnce, false)
        .unwrap();

    // Back, with no Subscription or Messages at all: the broker's message is
    // acknowledged all the same.
    let client = Client::connect(options()).unwrap();
    wait_until("the PUBACK of a message no one asked for", || {
        logged("unread")
            .iter()
            .any(|line| line.starts_with("sending PUBACK (m"))
    });
    client.disconnect().unwrap();
}
