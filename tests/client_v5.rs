//! The blocking client over MQTT 5, against wren's broker and mosquitto's: the
//! same API as for 3.1.1, with MQTT 5's answers where they apply: properties on
//! received messages, the broker's Receive Maximum honoured, refusals and the
//! broker's DISCONNECT as typed errors, session expiry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::mosquitto::Mosquitto;
use common::v5::{connect_v5, message, props, V5Peer};
use common::{start_broker, start_broker_with, WrenBroker};
use wren::broker::{ClientInfo, Hook};
use wren::client::SubscribeFilter;
use wren::client::{Client, ClientOptions, Error, Publish, QoS, Reconnect};
use wren::protocol::{ProtocolVersion, ReasonCode, RetainHandling, TopicFilter, TopicName};

/// How long a test waits for a message that must come.
const PATIENCE: Duration = Duration::from_secs(10);

/// Options for an MQTT 5 client of the broker at `url`.
fn v5(url: &str) -> ClientOptions {
    ClientOptions::from_url(url)
        .expect("a test URL")
        .with_protocol(ProtocolVersion::V5)
}

fn url_of(broker: &WrenBroker) -> String {
    broker.url()
}

#[test]
fn a_v5_client_publishes_and_receives_at_every_qos() {
    let broker = start_broker();
    let client = Client::connect(v5(&url_of(&broker))).unwrap();
    let subscription = client.subscribe("v5/#", QoS::ExactlyOnce).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client
            .publish("v5/t", format!("{qos:?}"), qos, false)
            .unwrap();
        let got = subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message");
        assert_eq!((got.topic(), got.qos()), ("v5/t", qos));
        assert_eq!(got.payload_str().unwrap(), format!("{qos:?}"));
    }
}

#[test]
fn received_messages_carry_their_properties_mqtt5_3_3_2_4_and_3_3_2_17() {
    let broker = start_broker();
    let client = Client::connect(v5(&url_of(&broker))).unwrap();
    let subscription = client.subscribe("props", QoS::AtLeastOnce).unwrap();
    let (mut publisher, _) = V5Peer::accepted(broker.address(), connect_v5("publisher"));
    let mut publish = message("props", b"{}", QoS::AtMostOnce, 0);
    publish.properties = props(|p| {
        p.content_type = Some("application/json".into());
        p.user_properties = vec![("b".into(), "2".into()), ("a".into(), "1".into())];
    });
    publisher.send(publish);
    let got = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    let properties = got.properties();
    assert_eq!(properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        properties.user_properties,
        [("b".to_string(), "2".to_string()), ("a".into(), "1".into())]
    );
}

/// Sends a message with every property a publisher sets through `client` and
/// checks that `subscription` gets them as sent.
fn properties_go_round_trip(client: &Client) {
    let subscription = client.subscribe("request", QoS::AtLeastOnce).unwrap();
    client
        .send(
            Publish::new("request", "{\"q\": 1}")
                .qos(QoS::AtLeastOnce)
                .utf8_payload()
                .content_type("application/json")
                .response_topic("reply/7")
                .correlation_data(&b"7"[..])
                .message_expiry(Duration::from_secs(300))
                .user_property("trace", "a")
                .user_property("trace", "b"),
        )
        .unwrap();
    let got = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    let properties = got.properties();
    assert_eq!(got.payload_str().unwrap(), "{\"q\": 1}");
    assert_eq!(properties.payload_format_indicator, Some(1));
    assert_eq!(properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(properties.response_topic.as_deref(), Some("reply/7"));
    assert_eq!(properties.correlation_data.as_deref(), Some(&b"7"[..]));
    assert!(properties
        .message_expiry_interval
        .is_some_and(|left| left <= 300));
    assert_eq!(
        properties.user_properties,
        [
            ("trace".to_string(), "a".to_string()),
            ("trace".into(), "b".into())
        ]
    );
}

#[test]
fn a_message_sent_with_properties_arrives_with_them_mqtt5_3_3_2_17() {
    let broker = start_broker();
    let client = Client::connect(v5(&url_of(&broker))).unwrap();
    properties_go_round_trip(&client);
}

#[test]
fn properties_go_round_trip_through_mosquitto() {
    let mosquitto = Mosquitto::start();
    let client = Client::connect(v5(&mosquitto.url())).unwrap();
    properties_go_round_trip(&client);
}

#[test]
fn messages_over_3_1_1_have_no_properties() {
    let broker = start_broker();
    let client = Client::connect(url_of(&broker).as_str()).unwrap();
    let subscription = client.subscribe("plain", QoS::AtMostOnce).unwrap();
    let (mut publisher, _) = V5Peer::accepted(broker.address(), connect_v5("publisher"));
    let mut publish = message("plain", b"x", QoS::AtMostOnce, 0);
    publish.properties = props(|p| p.content_type = Some("text/plain".into()));
    publisher.send(publish);
    let got = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert!(got.properties().is_empty());
}

#[test]
fn the_client_keeps_within_the_brokers_receive_maximum_mqtt5_3_3_4_7() {
    // The broker takes 2 unacknowledged messages and disconnects a client that
    // sends more (0x93); the client's own window is 20.
    let broker = start_broker_with(|config| config.limits.receive_maximum = 2);
    let receiver = Client::connect(v5(&url_of(&broker))).unwrap();
    let subscription = receiver.subscribe("many", QoS::ExactlyOnce).unwrap();
    let sender =
        Client::connect(v5(&url_of(&broker)).with_reconnect(Reconnect::disabled())).unwrap();
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let pending: Vec<_> = (0..40)
            .map(|n| {
                sender
                    .publish_nowait("many", n.to_string(), qos, false)
                    .unwrap()
            })
            .collect();
        for ack in pending {
            ack.wait_timeout(PATIENCE).unwrap();
        }
        for n in 0..40 {
            let got = subscription
                .recv_timeout(PATIENCE)
                .unwrap()
                .expect("a message");
            assert_eq!(got.payload_str().unwrap(), n.to_string());
        }
    }
    assert!(sender.is_connected());
}

/// Refuses publishing to `forbidden`.
struct Refuser;

impl Hook for Refuser {
    fn authorize_publish(&self, _: &ClientInfo, topic: &TopicName) -> bool {
        topic.as_str() != "forbidden"
    }
}

#[test]
fn a_refused_message_is_a_typed_error_mqtt5_3_4_2_1() {
    let broker = WrenBroker::with_hooks(vec![Arc::new(Refuser)]);
    let client = Client::connect(v5(&url_of(&broker))).unwrap();
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        match client.publish("forbidden", "x", qos, false) {
            Err(Error::PublishRefused(code)) => assert_eq!(code, ReasonCode::NOT_AUTHORIZED),
            other => panic!("expected the refusal at {qos:?}, got {other:?}"),
        }
    }
    // Nobody subscribed is not a refusal (0x10).
    client
        .publish("allowed", "x", QoS::AtLeastOnce, false)
        .unwrap();
}

#[test]
fn the_brokers_disconnect_reason_reaches_the_caller() {
    let broker = start_broker();
    let client =
        Client::connect(v5(&url_of(&broker)).with_reconnect(Reconnect::disabled())).unwrap();
    broker.shutdown();
    assert!(
        common::poll(PATIENCE, || !client.is_connected()),
        "the client saw the broker go"
    );
    match client.publish("t", "x", QoS::AtLeastOnce, false) {
        Err(Error::DisconnectedByBroker { code, .. }) => {
            assert_eq!(code, ReasonCode::SERVER_SHUTTING_DOWN)
        }
        other => panic!("expected the broker's reason, got {other:?}"),
    }
}

#[test]
fn a_session_resumes_within_its_expiry_and_is_gone_after_it_mqtt5_3_1_2_5() {
    let broker = start_broker();
    let options = v5(&url_of(&broker))
        .with_client_id("expiring")
        .with_clean_session(false)
        .with_session_expiry(Duration::from_secs(2));
    let publisher = Client::connect(url_of(&broker).as_str()).unwrap();

    let client = Client::connect(options.clone()).unwrap();
    let subscription = client.subscribe("kept", QoS::AtLeastOnce).unwrap();
    client.disconnect().unwrap();
    drop(subscription);
    publisher
        .publish("kept", "1", QoS::AtLeastOnce, false)
        .unwrap();
    // Back within the expiry: the session and its queued message are there.
    let client = Client::connect(options.clone()).unwrap();
    let messages = client.messages();
    let got = messages
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("the queued message");
    assert_eq!(got.payload_str().unwrap(), "1");
    client.disconnect().unwrap();

    // Away longer than the expiry: a fresh session, nothing queued.
    std::thread::sleep(Duration::from_millis(2500));
    publisher
        .publish("kept", "2", QoS::AtLeastOnce, false)
        .unwrap();
    let client = Client::connect(options).unwrap();
    let messages = client.messages();
    assert!(messages
        .recv_timeout(Duration::from_millis(500))
        .unwrap()
        .is_none());
}

#[test]
fn a_v5_client_talks_to_mosquitto() {
    let mosquitto = Mosquitto::start();
    let client = Client::connect(v5(&mosquitto.url())).unwrap();
    let subscription = client.subscribe("wren/v5", QoS::ExactlyOnce).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client.publish("wren/v5", "hello", qos, false).unwrap();
        let got = subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message");
        assert_eq!((got.topic(), got.qos()), ("wren/v5", qos));
    }
}

#[test]
fn a_message_larger_than_the_brokers_maximum_is_refused_locally_mqtt5_3_1_2_24() {
    let broker = start_broker_with(|config| config.limits.max_packet_size = 256);
    let client = Client::connect(v5(&url_of(&broker))).unwrap();
    match client.publish("big", vec![b'x'; 1000], QoS::AtLeastOnce, false) {
        Err(Error::PacketTooLarge { size, max }) => assert_eq!((size > 1000, max), (true, 256)),
        other => panic!("expected the local refusal, got {other:?}"),
    }
    // Nothing was sent: the connection is still there, and a small message goes.
    client
        .publish("small", "x", QoS::AtLeastOnce, false)
        .unwrap();
    assert!(client.is_connected());
}

#[test]
fn the_client_pings_as_often_as_the_brokers_server_keep_alive_says_mqtt5_3_2_2_21() {
    // The client asks for 60 s; the broker holds it to 1 s (and drops it after
    // 1.5 s of silence): it must ping every second, not every minute.
    let broker = start_broker_with(|config| config.limits.max_keep_alive = 1);
    let client = Client::connect(
        v5(&url_of(&broker))
            .with_keep_alive(Duration::from_secs(60))
            .with_reconnect(Reconnect::disabled()),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(client.is_connected());
    client
        .publish("alive", "yes", QoS::AtLeastOnce, false)
        .unwrap();
}

/// Answers every request on `services/square` with the square of its number,
/// until the client goes.
fn serve_squares(responder: Client) -> std::thread::JoinHandle<()> {
    let requests = responder
        .subscribe("services/square", QoS::AtLeastOnce)
        .unwrap();
    std::thread::spawn(move || {
        for request in requests.iter() {
            let number: i64 = request.payload_str().unwrap().parse().unwrap();
            let response = Publish::response_to(&request, (number * number).to_string())
                .expect("a request names its response topic");
            if responder.send(response.qos(QoS::AtLeastOnce)).is_err() {
                break;
            }
        }
    })
}

/// Makes three requests through `requester` and checks each answer.
fn requests_are_answered(requester: &Client) {
    for number in [2i64, 3, 12] {
        let answer = requester
            .request(
                Publish::new("services/square", number.to_string()).qos(QoS::AtLeastOnce),
                PATIENCE,
            )
            .unwrap();
        assert_eq!(answer.payload_str().unwrap(), (number * number).to_string());
    }
}

#[test]
fn a_request_gets_its_response_mqtt5_4_10() {
    let broker = start_broker();
    let responder = Client::connect(v5(&url_of(&broker))).unwrap();
    let serving = serve_squares(responder.clone());
    let requester = Client::connect(v5(&url_of(&broker))).unwrap();
    requests_are_answered(&requester);
    responder.disconnect().unwrap();
    serving.join().unwrap();
}

#[test]
fn request_and_response_work_through_mosquitto() {
    let mosquitto = Mosquitto::start();
    let responder = Client::connect(v5(&mosquitto.url())).unwrap();
    let serving = serve_squares(responder.clone());
    let requester = Client::connect(v5(&mosquitto.url())).unwrap();
    requests_are_answered(&requester);
    responder.disconnect().unwrap();
    serving.join().unwrap();
}

#[test]
fn a_request_nobody_answers_times_out_with_wait_response() {
    let broker = start_broker();
    let requester = Client::connect(v5(&url_of(&broker))).unwrap();
    match requester.request(
        Publish::new("services/nobody", "?"),
        Duration::from_millis(300),
    ) {
        Err(Error::Timeout(wren::client::Wait::Response)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn members_of_a_shared_subscription_split_its_messages_mqtt5_4_8_2() {
    let broker = start_broker();
    let url = url_of(&broker);
    let first = Client::connect(v5(&url)).unwrap();
    let second = Client::connect(v5(&url)).unwrap();
    let first_jobs = first
        .subscribe("$share/workers/jobs", QoS::AtLeastOnce)
        .unwrap();
    let second_jobs = second
        .subscribe("$share/workers/jobs", QoS::AtLeastOnce)
        .unwrap();
    let publisher = Client::connect(v5(&url)).unwrap();
    for n in 0..10 {
        publisher
            .publish("jobs", n.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
    }
    let mut got = Vec::new();
    for jobs in [&first_jobs, &second_jobs] {
        while let Some(message) = jobs.recv_timeout(Duration::from_millis(500)).unwrap() {
            got.push(message.payload_str().unwrap().parse::<u32>().unwrap());
        }
    }
    got.sort_unstable();
    assert_eq!(
        got,
        (0..10).collect::<Vec<_>>(),
        "each job once, to one member"
    );
}

#[test]
fn subscription_options_hold_no_local_and_retain_handling_mqtt5_3_8_3_1() {
    let broker = start_broker();
    let client = Client::connect(v5(&url_of(&broker))).unwrap();
    client
        .publish("chat/old", "retained", QoS::AtLeastOnce, true)
        .unwrap();
    let mut chat = SubscribeFilter::new(TopicFilter::new("chat/#").unwrap(), QoS::AtLeastOnce);
    chat.no_local = true;
    chat.retain_handling = RetainHandling::DoNotSend;
    let messages = client.subscribe_filters(vec![chat]).unwrap();
    // Its own message does not come back, nor the retained one.
    client
        .publish("chat/room", "mine", QoS::AtLeastOnce, false)
        .unwrap();
    let other = Client::connect(v5(&url_of(&broker))).unwrap();
    other
        .publish("chat/room", "theirs", QoS::AtLeastOnce, false)
        .unwrap();
    let got = messages.recv_timeout(PATIENCE).unwrap().expect("a message");
    assert_eq!(got.payload_str().unwrap(), "theirs");
    assert!(messages
        .recv_timeout(Duration::from_millis(300))
        .unwrap()
        .is_none());
}
