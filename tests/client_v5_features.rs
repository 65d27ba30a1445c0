//! The client's MQTT 5 features beyond messages and their properties, against
//! wren's broker and mosquitto's: properties on CONNECT, the will, SUBSCRIBE,
//! UNSUBSCRIBE and DISCONNECT; reason codes per filter; subscription identifiers;
//! topic aliases both ways; the assigned client id; enhanced authentication; and
//! falling back to 3.1.1 for a broker that refuses 5.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::mosquitto::Mosquitto;
use common::v5::{ChallengeHook, METHOD};
use common::{start_broker, start_broker_with, WrenBroker};
use wren::client::{
    Authenticator, Client, ClientOptions, Error, Properties, QoS, ReasonCode, Reconnect, Will,
};
use wren::protocol::{ProtocolVersion, SubscribeFilter, TopicFilter};

/// How long a test waits for a message that must come.
const PATIENCE: Duration = Duration::from_secs(10);

fn v5(url: &str) -> ClientOptions {
    ClientOptions::from_url(url)
        .expect("a test URL")
        .with_protocol(ProtocolVersion::V5)
}

fn filter(text: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(TopicFilter::new(text).unwrap(), qos)
}

fn with_subscription_identifier(id: u32) -> Properties {
    let mut properties = Properties::new();
    properties.subscription_identifiers.push(id);
    properties
}

/// Two subscriptions with their own identifiers on overlapping filters: each
/// message says which subscriptions it matched [MQTT-3.3.4-3], and each
/// subscription gets it once, though mosquitto sends a copy per subscription.
fn subscription_identifiers_come_back(url: &str) {
    let client = Client::connect(v5(url)).unwrap();
    let rooms = client
        .subscribe_with(
            vec![filter("house/+/temp", QoS::AtLeastOnce)],
            with_subscription_identifier(7),
        )
        .unwrap();
    let everything = client
        .subscribe_with(
            vec![filter("house/#", QoS::AtLeastOnce)],
            with_subscription_identifier(300),
        )
        .unwrap();
    client
        .publish("house/kitchen/temp", "21", QoS::AtLeastOnce, false)
        .unwrap();
    let got = rooms.recv_timeout(PATIENCE).unwrap().expect("a message");
    let mut ids = got.properties().subscription_identifiers.clone();
    ids.sort_unstable();
    // One message carrying both identifiers (wren), or one per subscription
    // (mosquitto sends a copy per matching subscription): either way 7 is there.
    assert!(ids.contains(&7), "identifiers: {ids:?}");
    let got = everything
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert!(
        got.properties().subscription_identifiers.contains(&300),
        "{:?}",
        got.properties()
    );
    // Each subscription got the message once, whichever way the broker sent it.
    for subscription in [&rooms, &everything] {
        assert!(subscription
            .recv_timeout(Duration::from_millis(300))
            .unwrap()
            .is_none());
    }
}

#[test]
fn subscription_identifiers_come_back_mqtt5_3_8_2_1_2() {
    let broker = start_broker();
    subscription_identifiers_come_back(&broker.url());
}

#[test]
fn subscription_identifiers_come_back_through_mosquitto() {
    let mosquitto = Mosquitto::start();
    subscription_identifiers_come_back(&mosquitto.url());
}

#[test]
fn a_partial_refusal_keeps_the_granted_filters_with_a_code_per_filter_mqtt5_3_9_3() {
    let broker = start_broker_with(|config| config.limits.shared_subscriptions = false);
    let client = Client::connect(v5(&broker.url())).unwrap();
    let subscription = client
        .subscribe_with(
            vec![
                filter("$share/g/jobs", QoS::AtLeastOnce),
                filter("jobs", QoS::AtLeastOnce),
            ],
            Properties::new(),
        )
        .unwrap();
    assert_eq!(
        subscription.reason_codes(),
        &[
            ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ReasonCode(1)
        ]
    );
    assert_eq!(subscription.filters().len(), 1);
    client
        .publish("jobs", "1", QoS::AtLeastOnce, false)
        .unwrap();
    assert!(subscription.recv_timeout(PATIENCE).unwrap().is_some());

    // All refused: the first refusal, typed.
    match client.subscribe_with(
        vec![filter("$share/g/x", QoS::AtMostOnce)],
        Properties::new(),
    ) {
        Err(Error::SubscriptionRefused { filter, code }) => {
            assert_eq!(filter, "$share/g/x");
            assert_eq!(code, ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    // subscribe_filters wants every filter granted.
    match client.subscribe_filters(vec![
        filter("ok", QoS::AtMostOnce),
        filter("$share/g/y", QoS::AtMostOnce),
    ]) {
        Err(Error::SubscriptionRefused { filter, .. }) => assert_eq!(filter, "$share/g/y"),
        other => panic!("expected the refusal, got {other:?}"),
    }
}

fn unsubscribe_codes(url: &str) {
    let client = Client::connect(v5(url)).unwrap();
    let _subscription = client.subscribe("mine", QoS::AtMostOnce).unwrap();
    let mut properties = Properties::new();
    properties
        .user_properties
        .push(("why".into(), "done".into()));
    let codes = client
        .unsubscribe_with(&["mine", "never-subscribed"], properties)
        .unwrap();
    assert_eq!(
        codes,
        [ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
    );
}

#[test]
fn unsubscribe_returns_a_code_per_filter_mqtt5_3_11_3() {
    let broker = start_broker();
    unsubscribe_codes(&broker.url());
}

#[test]
fn unsubscribe_returns_a_code_per_filter_from_mosquitto() {
    let mosquitto = Mosquitto::start();
    unsubscribe_codes(&mosquitto.url());
}

/// A will with properties, published because the client says DISCONNECT 0x04:
/// the properties arrive with it [MQTT-3.1.3-9].
fn will_with_properties(url: &str) {
    let watcher = Client::connect(v5(url)).unwrap();
    let wills = watcher.subscribe("wills/+", QoS::AtLeastOnce).unwrap();
    let mut properties = Properties::new();
    properties.content_type = Some("text/plain".into());
    properties
        .user_properties
        .push(("site".into(), "north".into()));
    properties.message_expiry_interval = Some(600);
    // Not a will property: left out rather than refused by the broker.
    properties.session_expiry_interval = Some(5);
    let will =
        Will::new("wills/sensor", "gone", QoS::AtLeastOnce, false).with_properties(properties);
    let client = Client::connect(v5(url).with_will(will)).unwrap();
    client
        .disconnect_with(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE, Properties::new())
        .unwrap();
    let got = wills.recv_timeout(PATIENCE).unwrap().expect("the will");
    assert_eq!(got.payload_str().unwrap(), "gone");
    let properties = got.properties();
    assert_eq!(properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        properties.user_properties,
        [("site".to_string(), "north".to_string())]
    );
    assert!(properties
        .message_expiry_interval
        .is_some_and(|left| left <= 600));
}

#[test]
fn a_will_carries_its_properties_mqtt5_3_1_3_2() {
    let broker = start_broker();
    will_with_properties(&broker.url());
}

#[test]
fn a_will_carries_its_properties_through_mosquitto() {
    let mosquitto = Mosquitto::start();
    will_with_properties(&mosquitto.url());
}

#[test]
fn a_normal_disconnect_publishes_no_will() {
    let broker = start_broker();
    let watcher = Client::connect(v5(&broker.url())).unwrap();
    let wills = watcher.subscribe("wills/+", QoS::AtLeastOnce).unwrap();
    let will = Will::new("wills/quiet", "gone", QoS::AtLeastOnce, false);
    let client = Client::connect(v5(&broker.url()).with_will(will)).unwrap();
    client.disconnect().unwrap();
    assert!(wills
        .recv_timeout(Duration::from_millis(500))
        .unwrap()
        .is_none());
}

fn assigned_id(url: &str, prefix: &str) {
    let client = Client::connect(v5(url)).unwrap();
    assert!(
        client.client_id().starts_with(prefix) && client.client_id().len() > prefix.len(),
        "assigned: {:?}",
        client.client_id()
    );
    // The id works: a round trip.
    let subscription = client.subscribe("me", QoS::AtLeastOnce).unwrap();
    client.publish("me", "x", QoS::AtLeastOnce, false).unwrap();
    assert!(subscription.recv_timeout(PATIENCE).unwrap().is_some());
}

#[test]
fn a_client_without_an_id_takes_the_one_assigned_mqtt5_3_2_2_3_7() {
    let broker = start_broker();
    assigned_id(&broker.url(), "");
}

#[test]
fn a_client_without_an_id_takes_the_one_mosquitto_assigns() {
    let mosquitto = Mosquitto::start();
    assigned_id(&mosquitto.url(), "auto-");
}

#[test]
fn a_kept_session_without_an_id_resumes_under_the_assigned_one() {
    let broker = start_broker();
    let options = v5(&broker.url())
        .with_clean_session(false)
        .with_session_expiry(Duration::from_secs(60));
    let client = Client::connect(options).unwrap();
    let subscription = client.subscribe("kept", QoS::AtLeastOnce).unwrap();
    let assigned = client.client_id().to_owned();
    client.disconnect().unwrap();
    drop(subscription);
    let publisher = Client::connect(broker.url().as_str()).unwrap();
    publisher
        .publish("kept", "queued", QoS::AtLeastOnce, false)
        .unwrap();
    let again = Client::connect(
        v5(&broker.url())
            .with_client_id(assigned)
            .with_clean_session(false)
            .with_session_expiry(Duration::from_secs(60)),
    )
    .unwrap();
    let messages = again.messages();
    let got = messages.recv_timeout(PATIENCE).unwrap().expect("queued");
    assert_eq!(got.payload_str().unwrap(), "queued");
}

#[test]
fn incoming_topic_aliases_are_resolved_mqtt5_3_3_2_3_4() {
    let broker = start_broker_with(|config| config.limits.outgoing_topic_aliases = true);
    let client = Client::connect(v5(&broker.url()).with_topic_alias_maximum(2)).unwrap();
    let subscription = client.subscribe("alias/#", QoS::AtLeastOnce).unwrap();
    let publisher = Client::connect(broker.url().as_str()).unwrap();
    // Three topics for two aliases: the third goes by name every time.
    let topics = ["alias/a", "alias/b", "alias/c"];
    for round in 0..3 {
        for topic in topics {
            publisher
                .publish(topic, format!("{round}"), QoS::AtLeastOnce, false)
                .unwrap();
        }
    }
    let mut aliased = 0;
    for round in 0..3 {
        for topic in topics {
            let got = subscription
                .recv_timeout(PATIENCE)
                .unwrap()
                .expect("a message");
            assert_eq!(got.topic(), topic);
            assert_eq!(got.payload_str().unwrap(), format!("{round}"));
            aliased += usize::from(got.properties().topic_alias.is_some());
        }
    }
    // a and b got aliases (3 messages each), c none.
    assert_eq!(aliased, 6);
}

#[test]
fn without_a_topic_alias_maximum_the_broker_sends_no_aliases() {
    let broker = start_broker_with(|config| config.limits.outgoing_topic_aliases = true);
    let client = Client::connect(v5(&broker.url())).unwrap();
    let subscription = client.subscribe("plain", QoS::AtMostOnce).unwrap();
    for _ in 0..2 {
        client
            .publish("plain", "x", QoS::AtLeastOnce, false)
            .unwrap();
        let got = subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message");
        assert_eq!(got.properties().topic_alias, None);
    }
}

/// A publisher with outgoing aliases on more topics than the broker allows: every
/// message arrives under its own topic, in order.
fn outgoing_aliases(url: &str) {
    let subscriber = Client::connect(v5(url)).unwrap();
    let subscription = subscriber.subscribe("out/#", QoS::AtLeastOnce).unwrap();
    let publisher = Client::connect(v5(url).with_outgoing_topic_aliases(true)).unwrap();
    let topics: Vec<String> = (0..15).map(|n| format!("out/{n}")).collect();
    for round in 0..3 {
        for topic in &topics {
            publisher
                .publish(topic, format!("{round}"), QoS::AtLeastOnce, false)
                .unwrap();
        }
    }
    for round in 0..3 {
        for topic in &topics {
            let got = subscription
                .recv_timeout(PATIENCE)
                .unwrap()
                .expect("a message");
            assert_eq!(
                (got.topic(), got.payload_str().unwrap()),
                (topic.as_str(), format!("{round}").as_str())
            );
        }
    }
}

#[test]
fn outgoing_topic_aliases_reach_wren_intact() {
    let broker = start_broker();
    outgoing_aliases(&broker.url());
}

#[test]
fn outgoing_topic_aliases_reach_mosquitto_intact() {
    let mosquitto = Mosquitto::start();
    outgoing_aliases(&mosquitto.url());
}

/// The client's side of [`ChallengeHook`]'s method: answers the broker's nonce
/// reversed while it is honest, and as it came once it is not.
struct ReverseNonce {
    honest: Arc<AtomicBool>,
}

impl ReverseNonce {
    fn new(honest: bool) -> (ReverseNonce, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(honest));
        (
            ReverseNonce {
                honest: flag.clone(),
            },
            flag,
        )
    }
}

impl Authenticator for ReverseNonce {
    fn method(&self) -> &str {
        METHOD
    }

    fn initial_data(&self) -> Option<Bytes> {
        Some(Bytes::from_static(b"hello"))
    }

    fn challenge(&self, data: Option<&[u8]>) -> Result<Option<Bytes>, String> {
        let mut answer = data.ok_or("the challenge has no data")?.to_vec();
        if self.honest.load(Ordering::SeqCst) {
            answer.reverse();
        }
        Ok(Some(Bytes::from(answer)))
    }
}

#[test]
fn enhanced_authentication_answers_the_brokers_challenge_mqtt5_4_12() {
    let broker = WrenBroker::with_hooks(vec![Arc::new(ChallengeHook)]);
    let client =
        Client::connect(v5(&broker.url()).with_authenticator(ReverseNonce::new(true).0)).unwrap();
    client.publish("in", "x", QoS::AtLeastOnce, false).unwrap();

    let refused = Client::connect(
        v5(&broker.url())
            .with_authenticator(ReverseNonce::new(false).0)
            .with_reconnect(Reconnect::disabled()),
    );
    match refused {
        Err(Error::ConnectionRefused { code, .. }) => assert_eq!(code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected the refusal, got {other:?}"),
    }
    // A method nobody handles: 0x8C.
    let mut properties = Properties::new();
    properties.authentication_method = Some("NOBODY".into());
    match Client::connect(v5(&broker.url()).with_connect_properties(properties)) {
        Err(Error::ConnectionRefused { code, .. }) => {
            assert_eq!(code, ReasonCode::BAD_AUTHENTICATION_METHOD)
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
}

#[test]
fn re_authentication_answers_the_challenge_again_mqtt5_4_12_1() {
    let broker = WrenBroker::with_hooks(vec![Arc::new(ChallengeHook)]);
    let (authenticator, honest) = ReverseNonce::new(true);
    let client = Client::connect(
        v5(&broker.url())
            .with_authenticator(authenticator)
            .with_reconnect(Reconnect::disabled()),
    )
    .unwrap();
    client.reauthenticate().unwrap();
    client.reauthenticate().unwrap();
    client
        .publish("still", "in", QoS::AtLeastOnce, false)
        .unwrap();

    // A wrong answer: the broker ends the connection, and says why.
    honest.store(false, Ordering::SeqCst);
    match client.reauthenticate() {
        Err(Error::DisconnectedByBroker { code, .. }) => {
            assert_eq!(code, ReasonCode::NOT_AUTHORIZED)
        }
        other => panic!("expected the broker's refusal, got {other:?}"),
    }
    // Without an authenticator there is nothing to re-authenticate with.
    let plain = Client::connect(v5(&broker.url())).unwrap();
    assert!(matches!(
        plain.reauthenticate(),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn what_mqtt_forbids_or_the_broker_refuses_is_refused_before_sending_mqtt5_3_2_2_11_and_14() {
    let broker = start_broker_with(|config| {
        config.limits.max_qos = QoS::AtLeastOnce;
        config.limits.retain_available = false;
    });
    let client = Client::connect(v5(&broker.url())).unwrap();
    match client.publish("q", "x", QoS::ExactlyOnce, false) {
        Err(Error::PublishRefused(code)) => assert_eq!(code, ReasonCode::QOS_NOT_SUPPORTED),
        other => panic!("expected the local refusal, got {other:?}"),
    }
    match client.publish("r", "x", QoS::AtLeastOnce, true) {
        Err(Error::PublishRefused(code)) => assert_eq!(code, ReasonCode::RETAIN_NOT_SUPPORTED),
        other => panic!("expected the local refusal, got {other:?}"),
    }
    // A Subscription Identifier of 0 is a protocol error (section 3.8.2.1.2).
    let zero = client.subscribe_with(
        vec![filter("z", QoS::AtMostOnce)],
        with_subscription_identifier(0),
    );
    assert!(matches!(zero, Err(Error::InvalidOptions(_))), "{zero:?}");
    // Nothing was sent that would have cost the connection.
    client.publish("q", "x", QoS::AtLeastOnce, false).unwrap();
    assert!(client.is_connected());
}

#[test]
fn connect_properties_reach_the_broker_and_set_the_clients_limits() {
    let broker = start_broker_with(|config| config.limits.outgoing_topic_aliases = true);
    let mut properties = Properties::new();
    properties
        .user_properties
        .push(("site".into(), "north".into()));
    properties.request_problem_information = Some(1);
    properties.topic_alias_maximum = Some(4);
    properties.session_expiry_interval = Some(30);
    properties.receive_maximum = Some(5);
    // Not a CONNECT property: left out.
    properties.content_type = Some("ignored".into());
    let options = v5(&broker.url()).with_connect_properties(properties);
    assert_eq!(
        (
            options.session_expiry(),
            options.topic_alias_maximum(),
            options.receive_maximum()
        ),
        (30, 4, Some(5))
    );
    assert_eq!(options.connect_properties().user_properties.len(), 1);
    let client = Client::connect(options).unwrap();
    let subscription = client.subscribe("limits", QoS::AtLeastOnce).unwrap();
    // The broker keeps within Receive Maximum 5 with 50 QoS 1 messages queued.
    let publisher = Client::connect(broker.url().as_str()).unwrap();
    for n in 0..50 {
        publisher
            .publish("limits", n.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
    }
    for n in 0..50 {
        let got = subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message");
        assert_eq!(got.payload_str().unwrap(), n.to_string());
    }
}

#[test]
fn the_brokers_disconnect_reason_is_a_typed_error_mqtt5_3_14_2_1() {
    let broker = start_broker();
    let options = v5(&broker.url())
        .with_client_id("taken-over")
        .with_reconnect(Reconnect::disabled());
    let first = Client::connect(options.clone()).unwrap();
    let _second = Client::connect(options).unwrap();
    assert!(
        common::poll(PATIENCE, || !first.is_connected()),
        "the first connection was taken over"
    );
    match first.publish("t", "x", QoS::AtLeastOnce, false) {
        Err(Error::DisconnectedByBroker { code, .. }) => {
            assert_eq!(code, ReasonCode::SESSION_TAKEN_OVER)
        }
        other => panic!("expected the broker's reason, got {other:?}"),
    }
}

/// Reads one CONNECT from `stream` and returns its protocol level. Short CONNECTs
/// only (one byte of remaining length), as the clients of these tests send.
fn read_connect_level(stream: &mut TcpStream) -> u8 {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x10, "a CONNECT");
    assert!(head[1] < 0x80, "a short CONNECT");
    let mut body = vec![0u8; usize::from(head[1])];
    stream.read_exact(&mut body).unwrap();
    // Protocol name "MQTT" (2 + 4 bytes), then the level.
    body[6]
}

/// How a broker that knows only MQTT 3.1.1 turns away an MQTT 5 CONNECT.
#[derive(Clone, Copy)]
enum Refusal {
    /// CONNACK 0x01 "unacceptable protocol version", as 3.1.1 says [MQTT-3.1.2-2].
    Connack,
    /// Closing the connection without a word, as some older brokers do.
    Silence,
}

/// A broker that speaks only MQTT 3.1.1, as far as the handshake goes: it turns
/// away an MQTT 5 CONNECT and accepts a 3.1.1 one. Returns its port and, once
/// done, the protocol levels of the CONNECTs it saw.
fn v311_only_listener(refusal: Refusal) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = std::thread::spawn(move || {
        let mut levels = Vec::new();
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            let level = read_connect_level(&mut stream);
            levels.push(level);
            if level == 5 {
                if let Refusal::Connack = refusal {
                    stream.write_all(&[0x20, 0x02, 0x00, 0x01]).unwrap();
                }
            } else {
                stream.write_all(&[0x20, 0x02, 0x00, 0x00]).unwrap();
                // Wait for the client's DISCONNECT (or the end of the connection).
                let mut rest = [0u8; 16];
                let _ = stream.read(&mut rest);
                break;
            }
        }
        levels
    });
    (port, serving)
}

/// A client with the fall back (`options` for the listener's port) meets a broker
/// that turns MQTT 5 away as `refusal` says: it connects again in 3.1.1.
fn falls_back(refusal: Refusal, options: impl Fn(u16) -> ClientOptions) {
    let (port, serving) = v311_only_listener(refusal);
    let client = Client::connect(options(port).with_reconnect(Reconnect::disabled())).unwrap();
    assert_eq!(client.protocol(), ProtocolVersion::V3_1_1);
    client.disconnect().unwrap();
    assert_eq!(serving.join().unwrap(), [5, 4]);
}

#[test]
fn a_broker_that_closes_on_5_is_asked_again_in_3_1_1() {
    falls_back(Refusal::Silence, |port| {
        ClientOptions::from_url(&format!("mqtt://127.0.0.1:{port}"))
            .unwrap()
            .with_protocol_fallback()
    });
}

#[test]
fn an_alias_beyond_the_clients_maximum_ends_the_connection_with_0x94_mqtt5_3_3_2_9() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        assert_eq!(read_connect_level(&mut stream), 5);
        // CONNACK 0x00 without properties, then a PUBLISH to "a" with Topic Alias 3.
        stream.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).unwrap();
        stream
            .write_all(&[0x30, 0x08, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x03, b'x'])
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer
    });
    let client = Client::connect(
        v5(&format!("mqtt://127.0.0.1:{port}"))
            .with_topic_alias_maximum(2)
            .with_reconnect(Reconnect::disabled()),
    )
    .unwrap();
    let messages = client.messages();
    let answer = broker.join().unwrap();
    assert!(
        answer.len() >= 3 && answer[0] == 0xE0 && answer[2] == 0x94,
        "expected DISCONNECT 0x94, got {answer:02X?}"
    );
    assert!(
        messages.recv_timeout(PATIENCE).is_err(),
        "the client closed"
    );
}

#[test]
fn a_broker_that_refuses_5_is_asked_again_in_3_1_1() {
    falls_back(Refusal::Connack, |port| {
        ClientOptions::from_url(&format!("mqtt://127.0.0.1:{port}?protocol=5,3.1.1")).unwrap()
    });
}

#[test]
fn without_the_fall_back_a_refusal_of_5_is_an_error() {
    let (port, serving) = v311_only_listener(Refusal::Connack);
    let result = Client::connect(
        ClientOptions::from_url(&format!("mqtt://127.0.0.1:{port}?protocol=5")).unwrap(),
    );
    match result {
        Err(Error::ConnectionRefused { code, .. }) => {
            assert_eq!(code, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION)
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    // Let the listener finish: a 3.1.1 client connects and leaves.
    let client = Client::connect(format!("mqtt://127.0.0.1:{port}").as_str()).unwrap();
    client.disconnect().unwrap();
    assert_eq!(serving.join().unwrap(), [5, 4]);
}

#[test]
fn the_fall_back_speaks_5_to_a_broker_that_does() {
    let broker = start_broker();
    let client = Client::connect(v5(&broker.url()).with_protocol_fallback()).unwrap();
    assert_eq!(client.protocol(), ProtocolVersion::V5);
    let mosquitto = Mosquitto::start();
    let client = Client::connect(format!("{}?protocol=5,3.1.1", mosquitto.url()).as_str()).unwrap();
    assert_eq!(client.protocol(), ProtocolVersion::V5);
}
