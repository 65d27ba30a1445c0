//! CONNECT, CONNACK, sessions, wills, keep-alive and hooks, tested with exact bytes
//! over real sockets. Test names cite the statement of MQTT 3.1.1 they check.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::{connect_packet, publish_packet, subscribe_packet, will, Raw};
use common::{start_broker, start_broker_with, wait_until};
use wren::broker::{AuthDecision, Broker, ClientInfo, ConnectInfo, Hook, HookError};
use wren::config::BrokerConfig;
use wren::protocol::{ConnectReturnCode, ProtocolVersion, QoS, TopicFilter, TopicName};

/// CONNECT, MQTT 3.1.1, clean session, keep-alive 60, client id "c1".
const CONNECT_C1: &[u8] = &[
    0x10, 0x0E, // CONNECT, remaining length 14
    0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
    0x04, // level 4
    0x02, // clean session
    0x00, 0x3C, // keep-alive 60
    0x00, 0x02, b'c', b'1', // client id
];
const CONNACK_ACCEPTED: &[u8] = &[0x20, 0x02, 0x00, 0x00];

fn watcher(broker: &Broker, filter: &str) -> Raw {
    let mut watcher = Raw::connect(broker.local_addr(), "watcher", true, false);
    watcher.subscribe(filter, QoS::AtMostOnce);
    watcher
}

#[test]
fn a_valid_connect_gets_connack_0_mqtt_3_1_4_4() {
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    client.send(CONNECT_C1);
    client.expect(CONNACK_ACCEPTED);
    client.ping();
    client.disconnect();
}

#[test]
fn an_mqtt_5_connect_is_accepted_with_the_brokers_properties_mqtt_3_2_2() {
    // A well-formed MQTT 5 CONNECT, properties and all, is answered with an MQTT 5
    // CONNACK: reason 0x00 and what the broker offers, in mosquitto's order (topic
    // alias maximum 10, maximum packet size 1 MiB, receive maximum 20).
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    #[rustfmt::skip]
    client.send(&[
        0x10, 29, 0, 4, b'M', b'Q', b'T', b'T', 5, 0b10, 0, 60,
        15, 0x11, 0, 0, 0, 10, 0x21, 0, 20, 0x26, 0, 1, b'a', 0, 1, b'b',
        0, 1, b'c',
    ]);
    #[rustfmt::skip]
    client.expect(&[
        0x20, 14, 0x00, 0x00, 11,
        0x22, 0, 10, 0x27, 0, 0x10, 0, 0, 0x21, 0, 20,
    ]);
}

#[test]
fn a_packet_before_connect_closes_the_connection_mqtt_3_1_0_1() {
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    client.send(&[0xC0, 0x00]);
    client.expect_eof();
}

#[test]
fn a_second_connect_is_a_violation_and_the_will_is_published_mqtt_3_1_0_2() {
    let broker = start_broker();
    let mut watcher = watcher(&broker, "will/#");
    let mut connect = connect_packet("w", true, 60);
    connect.will = Some(will("will/w", b"second connect", QoS::AtMostOnce, false));
    let mut client = Raw::connect_with(broker.local_addr(), connect);
    client.send(CONNECT_C1);
    client.expect_eof();
    assert_eq!(&watcher.read_publish().payload[..], b"second connect");
}

#[test]
fn an_unknown_protocol_name_is_closed_without_connack_mqtt_3_1_2_1() {
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    let mut bytes = CONNECT_C1.to_vec();
    bytes[7] = b'X'; // "MQTX"
    client.send(&bytes);
    client.expect_eof();
}

#[test]
fn an_unsupported_level_gets_connack_1_then_eof_mqtt_3_1_2_2() {
    for level in [2u8, 6] {
        let broker = start_broker();
        let mut client = Raw::open(broker.local_addr());
        let mut bytes = CONNECT_C1.to_vec();
        bytes[8] = level;
        client.send(&bytes);
        client.expect(&[0x20, 0x02, 0x00, 0x01]);
        client.expect_eof();
    }
}

#[test]
fn the_reserved_connect_flag_closes_without_connack_mqtt_3_1_2_3() {
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    let mut bytes = CONNECT_C1.to_vec();
    bytes[9] = 0x03;
    client.send(&bytes);
    client.expect_eof();
}

#[test]
fn malformed_connects_are_closed_without_connack_mqtt_3_1_4_1() {
    let cases: [(&str, &[u8]); 5] = [
        ("truncated", &CONNECT_C1[..10]),
        (
            "will QoS 3",
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x1E, 0, 60, 0, 2, b'c', b'1',
            ],
        ),
        (
            "will flags without will",
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x22, 0, 60, 0, 2, b'c', b'1',
            ],
        ),
        (
            "password without user name",
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 60, 0, 2, b'c', b'1',
            ],
        ),
        (
            "client id not UTF-8",
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, 0xC0, 0xAF,
            ],
        ),
    ];
    let broker = start_broker();
    for (name, bytes) in cases {
        let mut client = Raw::open(broker.local_addr());
        client.send(bytes);
        if name == "truncated" {
            // The rest never comes: the connect timeout would close it; closing our
            // side shows the broker does not answer a partial CONNECT.
            client.stream().shutdown(std::net::Shutdown::Write).unwrap();
        }
        client.expect_eof();
    }
    // The broker serves others unchanged (invariant 2).
    Raw::connect(broker.local_addr(), "fine", true, false).disconnect();
}

#[test]
fn short_alphanumeric_client_ids_are_accepted_mqtt_3_1_3_5() {
    let broker = start_broker();
    Raw::connect(broker.local_addr(), "a", true, false).disconnect();
    Raw::connect(broker.local_addr(), "abcdefghijklmnopqrstuvw", true, false).disconnect();
}

#[test]
fn empty_client_ids_get_distinct_assigned_ids_mqtt_3_1_3_6() {
    let broker = start_broker();
    let mut first = Raw::connect(broker.local_addr(), "", true, false);
    let mut second = Raw::connect(broker.local_addr(), "", true, false);
    // Neither took the other over.
    first.ping();
    second.ping();
    common::wait_until("connected_clients is 2", || {
        broker.stats().connected_clients == 2
    });
}

#[test]
fn an_empty_client_id_with_a_persistent_session_gets_connack_2_mqtt_3_1_3_8() {
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    client.send(&[
        0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x00, 0, 60, 0, 0,
    ]);
    client.expect(&[0x20, 0x02, 0x00, 0x02]);
    client.expect_eof();
}

#[test]
fn mqtt_3_1_client_ids_over_23_characters_get_connack_2() {
    let broker = start_broker();
    let mut connect = connect_packet(&"a".repeat(24), true, 60);
    connect.protocol = ProtocolVersion::V3_1;
    let mut client = Raw::open(broker.local_addr());
    client.send_packet(connect);
    client.expect(&[0x20, 0x02, 0x00, 0x02]);
    client.expect_eof();
}

#[test]
fn mqtt_3_1_clients_connect_and_never_see_session_present() {
    let broker = start_broker();
    let mut connect = connect_packet("old", false, 60);
    connect.protocol = ProtocolVersion::V3_1;
    Raw::connect_with(broker.local_addr(), connect.clone()).disconnect();
    // The session exists now, but MQTT 3.1's CONNACK has no flag for it.
    Raw::connect_with(broker.local_addr(), connect).disconnect();
}

#[test]
fn connack_is_the_first_packet_even_when_pipelined_mqtt_3_2_0_1() {
    let broker = start_broker();
    let mut client = Raw::open(broker.local_addr());
    let mut bytes = CONNECT_C1.to_vec();
    bytes.extend(common::raw::encode(subscribe_packet(
        7,
        &[("a", QoS::AtLeastOnce)],
    )));
    client.send(&bytes);
    client.expect(CONNACK_ACCEPTED);
    client.expect(&[0x90, 0x03, 0x00, 0x07, 0x01]);
}

#[test]
fn session_present_follows_the_stored_session_mqtt_3_2_2_1_to_3() {
    let broker = start_broker();
    let addr = broker.local_addr();
    // New id, persistent: no session yet [MQTT-3.2.2-3].
    Raw::connect(addr, "p", false, false).disconnect();
    // Reconnect, persistent: the session is there [MQTT-3.2.2-2].
    Raw::connect(addr, "p", false, true).disconnect();
    // Clean session: always 0, and the stored one is gone [MQTT-3.2.2-1].
    Raw::connect(addr, "p", true, false).disconnect();
    Raw::connect(addr, "p", false, false).disconnect();
}

#[test]
fn a_refused_connect_acts_on_nothing_after_it_mqtt_3_1_4_5_and_3_2_2_4() {
    let broker = start_broker_with(|config| config.auth.allow_anonymous = Some(false));
    let mut client = Raw::open(broker.local_addr());
    let mut bytes = CONNECT_C1.to_vec();
    bytes.extend(common::raw::encode(publish_packet(
        "kept",
        b"must not be retained",
        QoS::AtMostOnce,
        true,
        0,
    )));
    client.send(&bytes);
    client.expect(&[0x20, 0x02, 0x00, 0x05]);
    client.expect_eof();
    common::wait_until("retained_messages is 0", || {
        broker.stats().retained_messages == 0
    });
    common::wait_until("publish_received is 0", || {
        broker.stats().publish_received == 0
    });
}

#[test]
fn a_client_that_sends_no_connect_in_time_is_closed() {
    let broker = start_broker_with(|config| {
        config.limits.connect_timeout = Duration::from_millis(200);
    });
    let mut client = Raw::open(broker.local_addr());
    client.expect_eof();
}

#[test]
fn a_silent_client_is_closed_after_one_and_a_half_keep_alives_and_its_will_published_mqtt_3_1_2_24()
{
    let broker = start_broker();
    let mut watcher = watcher(&broker, "will/#");
    let mut connect = connect_packet("sleepy", true, 1);
    connect.will = Some(will("will/sleepy", b"timed out", QoS::AtLeastOnce, false));
    let started = Instant::now();
    let mut client = Raw::connect_with(broker.local_addr(), connect);
    client.expect_eof();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed after {:?}, before 1.5 x keep-alive",
        started.elapsed()
    );
    let will = watcher.read_publish();
    assert_eq!(
        (&will.payload[..], will.qos),
        (&b"timed out"[..], QoS::AtMostOnce)
    );
}

#[test]
fn a_closed_socket_publishes_the_will_and_retains_it_mqtt_3_1_2_8_and_3_1_2_17() {
    let broker = start_broker();
    let mut watcher = watcher(&broker, "will/#");
    let mut connect = connect_packet("dropper", true, 60);
    connect.will = Some(will("will/dropper", b"gone", QoS::AtMostOnce, true));
    let client = Raw::connect_with(broker.local_addr(), connect);
    drop(client);
    let will = watcher.read_publish();
    assert_eq!(&will.payload[..], b"gone");
    assert!(
        !will.retain,
        "forwarded to an existing subscription with RETAIN=0"
    );
    // A later subscriber gets it as a retained message.
    let mut late = Raw::connect(broker.local_addr(), "late", true, false);
    late.subscribe("will/dropper", QoS::AtMostOnce);
    let retained = late.read_publish();
    assert!(retained.retain && &retained.payload[..] == b"gone");
}

#[test]
fn a_protocol_violation_publishes_the_will_mqtt_3_1_2_8() {
    let broker = start_broker();
    let mut watcher = watcher(&broker, "will/#");
    let mut connect = connect_packet("rude", true, 60);
    connect.will = Some(will("will/rude", b"violated", QoS::AtMostOnce, false));
    let mut client = Raw::connect_with(broker.local_addr(), connect);
    client.send(&[0xC1, 0x00]); // PINGREQ with a flag bit [MQTT-2.2.2-2]
    client.expect_eof();
    assert_eq!(&watcher.read_publish().payload[..], b"violated");
}

#[test]
fn disconnect_discards_the_will_mqtt_3_1_2_10() {
    let broker = start_broker();
    let mut watcher = watcher(&broker, "will/#");
    let mut connect = connect_packet("polite", true, 60);
    connect.will = Some(will(
        "will/polite",
        b"must not appear",
        QoS::AtMostOnce,
        true,
    ));
    Raw::connect_with(broker.local_addr(), connect).disconnect();
    wait_until("the broker handled the DISCONNECT", || {
        broker.stats().connected_clients == 1
    });
    // A marker published afterwards is the next thing the watcher sees.
    let mut publisher = Raw::connect(broker.local_addr(), "marker", true, false);
    publisher.publish0("will/marker", b"marker", false);
    assert_eq!(&watcher.read_publish().payload[..], b"marker");
    common::wait_until("retained_messages is 0", || {
        broker.stats().retained_messages == 0
    });
}

#[test]
fn a_second_connection_with_the_same_id_takes_over_mqtt_3_1_4_2() {
    let broker = start_broker();
    let mut watcher = watcher(&broker, "will/#");
    let mut connect = connect_packet("x", true, 60);
    connect.will = Some(will("will/x", b"taken over", QoS::AtMostOnce, false));
    let mut first = Raw::connect_with(broker.local_addr(), connect);
    let _second = Raw::connect(broker.local_addr(), "x", true, false);
    first.expect_eof();
    // The old connection of a clean session is gone as if the network failed.
    assert_eq!(&watcher.read_publish().payload[..], b"taken over");
}

#[test]
fn a_persistent_session_resumed_by_a_persistent_connection_keeps_its_will_back() {
    // mosquitto 2.0's rule, which MQTT 5 makes explicit: the client is still there.
    let broker = start_broker();
    let mut watcher = watcher(&broker, "will/#");
    let mut connect = connect_packet("x", false, 60);
    connect.will = Some(will("will/x", b"taken over", QoS::AtMostOnce, false));
    let mut first = Raw::connect_with(broker.local_addr(), connect);
    first.subscribe("t", QoS::AtLeastOnce);
    let mut second = Raw::connect(broker.local_addr(), "x", false, true);
    first.expect_eof();
    // The new connection continues the session: the subscription is still there.
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    publisher.publish0("t", b"still subscribed", false);
    assert_eq!(&second.read_publish().payload[..], b"still subscribed");
    publisher.publish0("will/sentinel", b"no will before me", false);
    assert_eq!(&watcher.read_publish().payload[..], b"no will before me");
}

struct Passwords;
impl Hook for Passwords {
    fn authenticate(&self, connect: &ConnectInfo) -> Result<AuthDecision, HookError> {
        match (connect.username.as_deref(), connect.password.as_deref()) {
            (Some("alice"), Some(b"secret")) => Ok(AuthDecision::Allow),
            (Some("broken"), _) => Err(HookError::new("user database unreachable")),
            (Some("panic"), _) => panic!("a bug in the hook"),
            _ => Ok(AuthDecision::Deny(ConnectReturnCode::BadUserNameOrPassword)),
        }
    }
    fn authorize_subscribe(&self, _: &ClientInfo, filter: &TopicFilter) -> bool {
        !filter.starts_with("secret")
    }
    fn authorize_publish(&self, _: &ClientInfo, topic: &TopicName) -> bool {
        !topic.starts_with("secret")
    }
}

fn connect_as(broker: &Broker, user: &str, password: &[u8]) -> Raw {
    let mut connect = connect_packet(user, true, 60);
    connect.username = Some(user.into());
    connect.password = Some(bytes::Bytes::copy_from_slice(password));
    let mut client = Raw::open(broker.local_addr());
    client.send_packet(connect);
    client
}

#[test]
fn authentication_hooks_decide_and_fail_closed_invariant_5() {
    let config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    let broker = Broker::builder(config)
        .hook(Arc::new(Passwords))
        .start()
        .unwrap();
    let mut alice = connect_as(&broker, "alice", b"secret");
    alice.expect(CONNACK_ACCEPTED);
    let mut wrong = connect_as(&broker, "alice", b"guess");
    wrong.expect(&[0x20, 0x02, 0x00, 0x04]);
    wrong.expect_eof();
    for user in ["broken", "panic"] {
        let mut client = connect_as(&broker, user, b"x");
        client.expect(&[0x20, 0x02, 0x00, 0x05]);
        client.expect_eof();
    }
    // The broker keeps serving after a hook panicked.
    alice.ping();
}

#[test]
fn refused_filters_get_0x80_in_order_and_refused_publishes_are_acked_and_dropped_mqtt_3_9_3_1_and_3_3_5_2(
) {
    let config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    let broker = Broker::builder(config)
        .hook(Arc::new(Passwords))
        .start()
        .unwrap();
    let mut alice = connect_as(&broker, "alice", b"secret");
    alice.expect(CONNACK_ACCEPTED);
    alice.send_packet(subscribe_packet(
        3,
        &[
            ("open", QoS::AtLeastOnce),
            ("secret/#", QoS::AtMostOnce),
            ("#", QoS::ExactlyOnce),
        ],
    ));
    alice.expect(&[0x90, 0x05, 0x00, 0x03, 0x01, 0x80, 0x02]);
    // Publishing to a refused topic is acknowledged, and nobody receives it.
    alice.publish1("secret/x", b"hidden", false, 5);
    alice.publish0("open", b"visible", false);
    let got = alice.read_publish();
    assert_eq!(got.topic, "open");
    assert_eq!(&got.payload[..], b"visible");
    // "#" matches "open" too, yet the message comes once: PINGRESP is next.
    alice.ping();
}

#[test]
fn a_will_on_a_refused_topic_refuses_the_connect() {
    let config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    let broker = Broker::builder(config)
        .hook(Arc::new(Passwords))
        .start()
        .unwrap();
    let mut connect = connect_packet("alice", true, 60);
    connect.username = Some("alice".into());
    connect.password = Some(bytes::Bytes::from_static(b"secret"));
    connect.will = Some(will("secret/will", b"x", QoS::AtMostOnce, false));
    let mut client = Raw::open(broker.local_addr());
    client.send_packet(connect);
    client.expect(&[0x20, 0x02, 0x00, 0x05]);
    client.expect_eof();
}

#[test]
fn a_configured_password_file_without_a_hook_refuses_to_start() {
    let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    config.auth.password_file = Some("/etc/wren/passwd".into());
    let error = Broker::start(config).unwrap_err();
    assert!(error.to_string().contains("password-file"), "{error}");
}

#[test]
fn binding_a_used_address_names_the_listener_and_address() {
    let broker = start_broker();
    let mut config = BrokerConfig::with_tcp_listener(broker.local_addr());
    config.listeners[0].name = "second".into();
    let error = Broker::start(config).unwrap_err().to_string();
    assert!(
        error.contains("second") && error.contains(&broker.local_addr().to_string()),
        "{error}"
    );
}

#[test]
fn settings_the_broker_cannot_honour_refuse_to_start() {
    let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    config.persistence.enabled = true;
    let error = Broker::start(config).unwrap_err().to_string();
    assert!(error.contains("persistence"), "{error}");

    // A TLS listener whose certificate cannot be read stops the start too, naming
    // the listener.
    let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    config.listeners[0].tls = Some(wren::config::TlsConfig::new(
        "/nonexistent.pem",
        "/nonexistent.key",
    ));
    let error = Broker::start(config).unwrap_err().to_string();
    assert!(error.contains("listener 'default'"), "{error}");
}
