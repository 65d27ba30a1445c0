//! Losing the connection: reconnecting with backoff, resending unacknowledged
//! messages, subscribing again, and keep-alive noticing a dead path.
//!
//! A relay between client and mosquitto cuts or silences the connection on demand,
//! as a network failure would.

mod client_support;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use client_support::{wait_until, Mosquitto, Relay, PATIENCE};
use wren::client::{Client, ClientOptions, Error, QoS, Reconnect};

fn options(url: &str) -> ClientOptions {
    ClientOptions::from_url(url)
        .unwrap()
        .with_operation_timeout(PATIENCE)
        .with_connect_timeout(PATIENCE)
        .with_reconnect(Reconnect {
            max_interval: Duration::from_millis(500),
            ..Reconnect::default()
        })
}

/// Counts how often each number arrived.
fn tally(numbers: impl IntoIterator<Item = u32>) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for n in numbers {
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

fn number(message: &wren::client::Message) -> u32 {
    message.payload_str().unwrap().parse().unwrap()
}

/// How many times mosquitto's `log` shows it sending `client` a QoS 2 PUBLISH
/// again (DUP) after it had that message's PUBREC.
///
/// mosquitto 2.0.11 does this when a client resumes its session soon after a
/// connection ended between its PUBREL and the client's PUBCOMP: it should send
/// the PUBREL again [MQTT-4.3.3-1]. The client has completed the message and
/// forgotten its identifier, and must take such a PUBLISH as a new message
/// [MQTT-4.3.3-2], so the application sees it twice: mosquitto's doing, which
/// the test tells apart from the client's by this count.
fn mosquitto_resent_after_pubrec(log: &str, client: &str) -> usize {
    let received_pubrec = format!("Received PUBREC from {client} (Mid: ");
    let sending_publish = format!("Sending PUBLISH to {client} (");
    let mut acknowledged = BTreeSet::new();
    let mut resent = 0;
    for line in log.lines() {
        if let Some(rest) = line.split_once(&received_pubrec).map(|(_, rest)| rest) {
            if let Ok(mid) = rest.trim_end_matches(')').parse::<u16>() {
                acknowledged.insert(mid);
            }
        } else if let Some(rest) = line.split_once(&sending_publish).map(|(_, rest)| rest) {
            // "d1, q2, r0, m21, 'once', ..."
            let fields: Vec<&str> = rest.split(", ").collect();
            let mid = fields
                .get(3)
                .and_then(|field| field.strip_prefix('m'))
                .and_then(|mid| mid.parse::<u16>().ok());
            if let Some(mid) = mid {
                if fields[0] == "d1" && fields[1] == "q2" && acknowledged.remove(&mid) {
                    resent += 1;
                } else {
                    acknowledged.remove(&mid);
                }
            }
        }
    }
    resent
}

#[test]
fn a_subscriber_cut_off_in_a_qos_1_stream_gets_every_message() {
    subscriber_cut_off_in_a_qos_1_stream("");
}

#[test]
fn over_mqtt_5_a_subscriber_cut_off_in_a_qos_1_stream_gets_every_message() {
    subscriber_cut_off_in_a_qos_1_stream("?protocol=5");
}

/// `version` is the URL query that selects the protocol.
fn subscriber_cut_off_in_a_qos_1_stream(version: &str) {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    let subscriber = client_support::scenarios::a_qos_1_stream_survives(
        &format!("{}{version}", relay.url()),
        &format!("{}{version}", broker.url()),
        || relay.cut(),
    );
    // The rest of the stream may already have been in the client's buffers when
    // the cut came; the reconnection then follows the last message, as long as the
    // client is alive to make it.
    client_support::wait_until("the subscriber to reconnect", || relay.accepted() >= 2);
    drop(subscriber);
}

/// A publisher of QoS 1 and 2 messages loses its connection half way; `version`
/// is the URL query that selects the protocol.
fn publisher_cut_off_mid_stream(version: &str) {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    let watcher = Client::connect(options(&format!("{}{version}", broker.url()))).unwrap();
    let subscription = watcher
        .subscribe_many(&[("out/1", QoS::AtLeastOnce), ("out/2", QoS::ExactlyOnce)])
        .unwrap();
    let publisher = Client::connect(
        options(&format!("{}{version}", relay.url()))
            .with_client_id("cut-publisher")
            .with_clean_session(false),
    )
    .unwrap();

    const COUNT: u32 = 400;
    let mut pending = Vec::new();
    for n in 0..COUNT {
        let (topic, qos) = if n % 2 == 0 {
            ("out/1", QoS::AtLeastOnce)
        } else {
            ("out/2", QoS::ExactlyOnce)
        };
        if n == COUNT / 2 {
            relay.cut();
        }
        pending.push(
            publisher
                .publish_nowait(topic, n.to_string(), qos, false)
                .unwrap(),
        );
    }
    for publish in pending {
        publish.wait().unwrap();
    }
    assert!(relay.accepted() >= 2, "the publisher never reconnected");

    let mut received = Vec::new();
    while tally(received.iter().map(|(n, _)| *n)).len() < COUNT as usize {
        let message = match subscription.recv_timeout(PATIENCE) {
            Ok(Some(message)) => message,
            outcome => {
                let have = tally(received.iter().map(|(n, _)| *n));
                let missing: Vec<u32> = (0..COUNT).filter(|n| !have.contains_key(n)).collect();
                panic!("{outcome:?}; missing {missing:?}");
            }
        };
        received.push((number(&message), message.qos()));
    }
    let counts = tally(received.iter().map(|(n, _)| *n));
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..COUNT).collect::<Vec<_>>()
    );
    // QoS 2 from a persistent session is never passed on twice by the broker.
    for (n, count) in counts {
        if n % 2 == 1 {
            assert_eq!(count, 1, "QoS 2 message {n} arrived {count} times");
        }
    }
}

#[test]
fn a_publisher_cut_off_mid_stream_resends_and_every_publish_completes() {
    publisher_cut_off_mid_stream("");
}

#[test]
fn over_mqtt_5_a_publisher_cut_off_mid_stream_resends_and_every_publish_completes() {
    publisher_cut_off_mid_stream("?protocol=5");
}

/// A QoS 2 subscriber loses its connection twice; `version` is the URL query
/// that selects the protocol.
fn qos_2_subscriber_cut_off_mid_stream(version: &str) {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    let subscriber = Client::connect(
        options(&format!("{}{version}", relay.url()))
            .with_client_id("exactly-once")
            .with_clean_session(false),
    )
    .unwrap();
    let subscription = subscriber.subscribe("once", QoS::ExactlyOnce).unwrap();
    let publisher = Client::connect(options(&format!("{}{version}", broker.url()))).unwrap();

    const COUNT: u32 = 300;
    let sender = thread::spawn(move || {
        for n in 0..COUNT {
            publisher
                .publish("once", n.to_string(), QoS::ExactlyOnce, false)
                .unwrap();
        }
    });
    let mut received = Vec::new();
    for (cut_at, connections) in [(50, 2), (150, 3)] {
        while received.len() < cut_at {
            received.push(number(
                &subscription
                    .recv_timeout(PATIENCE)
                    .unwrap()
                    .expect("a message"),
            ));
        }
        relay.cut();
        wait_until("the client to reconnect", || {
            relay.accepted() >= connections
        });
    }
    // Until every number has come, duplicates included (see below).
    while tally(received.iter().copied()).len() < COUNT as usize {
        received.push(number(
            &subscription
                .recv_timeout(PATIENCE)
                .unwrap()
                .expect("a message"),
        ));
    }
    sender.join().unwrap();
    assert!(relay.accepted() >= 3, "the client did not reconnect twice");
    // Nothing lost, in order, ...
    let mut seen = BTreeSet::new();
    let first_arrivals: Vec<u32> = received
        .iter()
        .copied()
        .filter(|n| seen.insert(*n))
        .collect();
    assert_eq!(first_arrivals, (0..COUNT).collect::<Vec<_>>());
    // ... and no duplicate but those mosquitto sent as new messages.
    let duplicates = received.len() - first_arrivals.len();
    let resent = mosquitto_resent_after_pubrec(&broker.log(), "exactly-once");
    assert!(
        duplicates <= resent,
        "{duplicates} messages arrived twice, and mosquitto sent only {resent} again \
         after their PUBREC: {received:?}"
    );
    // And nothing more comes: no duplicate was waiting behind.
    assert!(matches!(
        subscription.recv_timeout(Duration::from_millis(300)),
        Ok(None)
    ));
}

#[test]
fn mosquittos_resends_after_a_pubrec_are_counted() {
    let log = "\
1: Sending PUBLISH to exactly-once (d0, q2, r0, m21, 'once', ... (2 bytes))
1: Received PUBREC from exactly-once (Mid: 21)
1: Sending PUBREL to exactly-once (m21)
1: Sending PUBLISH to exactly-once (d0, q2, r0, m22, 'once', ... (2 bytes))
1: Client exactly-once disconnected: Broken pipe.
2: Sending PUBLISH to exactly-once (d1, q2, r0, m21, 'once', ... (2 bytes))
2: Sending PUBLISH to exactly-once (d1, q2, r0, m22, 'once', ... (2 bytes))
2: Sending PUBLISH to other (d1, q2, r0, m21, 'once', ... (2 bytes))";
    // m21 had its PUBREC; m22 had not, and is rightly sent again.
    assert_eq!(mosquitto_resent_after_pubrec(log, "exactly-once"), 1);
}

#[test]
fn a_qos_2_subscriber_cut_off_mid_stream_sees_each_message_exactly_once() {
    qos_2_subscriber_cut_off_mid_stream("");
}

#[test]
fn over_mqtt_5_a_qos_2_subscriber_cut_off_mid_stream_sees_each_message_exactly_once() {
    qos_2_subscriber_cut_off_mid_stream("?protocol=5");
}

/// A clean-session subscriber reconnects; `version` is the URL query that
/// selects the protocol.
fn subscribes_again_without_a_session(version: &str) {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    let client = Client::connect(options(&format!("{}{version}", relay.url()))).unwrap(); // clean session
    let subscription = client.subscribe("again/#", QoS::AtLeastOnce).unwrap();
    relay.cut();
    wait_until("a second connection", || relay.accepted() >= 2);
    let publisher = Client::connect(options(&format!("{}{version}", broker.url()))).unwrap();
    // The new SUBSCRIBE may still be on its way: publish until one arrives.
    let mut received = None;
    wait_until("a message after reconnecting", || {
        publisher
            .publish("again/x", "back", QoS::AtLeastOnce, false)
            .unwrap();
        received = subscription
            .recv_timeout(Duration::from_millis(100))
            .ok()
            .flatten();
        received.is_some()
    });
    assert_eq!(received.unwrap().payload_str().unwrap(), "back");
}

#[test]
fn without_a_session_on_the_broker_the_client_subscribes_again() {
    subscribes_again_without_a_session("");
}

#[test]
fn over_mqtt_5_without_a_session_on_the_broker_the_client_subscribes_again() {
    subscribes_again_without_a_session("?protocol=5");
}

#[test]
fn an_idle_client_keeps_its_connection_with_pings() {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    // Pinging a second early leaves two seconds of slack before mosquitto's limit
    // of 1.5 keep-alives, so a slow machine does not fail the test.
    let client = Client::connect(
        options(&relay.url())
            .with_keep_alive(Duration::from_secs(2))
            .with_ping_delay(Duration::from_secs(1)),
    )
    .unwrap();
    let subscription = client.subscribe("idle", QoS::AtMostOnce).unwrap();
    // Silence from the application for more than two keep-alives must not lose
    // the connection.
    assert!(matches!(
        subscription.recv_timeout(Duration::from_secs(5)),
        Ok(None)
    ));
    assert_eq!(relay.accepted(), 1, "the connection was lost while idle");
    assert!(client.is_connected());
}

#[test]
fn a_silent_connection_is_detected_by_keep_alive_and_replaced() {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    let client = Client::connect(
        options(&relay.url())
            .with_keep_alive(Duration::from_secs(1))
            .with_pingresp_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let subscription = client.subscribe("alive", QoS::AtLeastOnce).unwrap();
    relay.silence();
    wait_until("a new connection after the silence", || {
        relay.accepted() >= 2
    });
    let publisher = Client::connect(options(&broker.url())).unwrap();
    wait_until("a message after the silence", || {
        publisher
            .publish("alive", "yes", QoS::AtLeastOnce, false)
            .unwrap();
        subscription
            .recv_timeout(Duration::from_millis(100))
            .is_ok_and(|message| message.is_some())
    });
}

#[test]
fn a_qos_0_publish_while_reconnecting_fails_fast_and_qos_1_waits() {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    // Reconnect attempts far apart, so that the gap is long enough to observe.
    let client = Client::connect(options(&relay.url()).with_reconnect(Reconnect {
        max_interval: Duration::from_secs(2),
        ..Reconnect::default()
    }))
    .unwrap();
    relay.cut();
    wait_until("the client to notice", || !client.is_connected());
    assert!(matches!(
        client.publish("gap", "lost", QoS::AtMostOnce, false),
        Err(Error::Disconnected(_))
    ));
    // QoS 1 waits for the reconnect and then completes.
    client
        .publish("gap", "kept", QoS::AtLeastOnce, false)
        .unwrap();
    assert!(client.is_connected());
}

#[test]
fn giving_up_after_the_retries_fails_every_call_with_the_reason() {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    let client = Client::connect(options(&relay.url()).with_reconnect(Reconnect {
        enabled: true,
        max_interval: Duration::from_millis(100),
        retries: Some(2),
    }))
    .unwrap();
    drop(relay); // nothing listens there any more
    wait_until("the client to give up", || {
        matches!(
            client.publish("x", "", QoS::AtLeastOnce, false),
            Err(Error::Disconnected(Some(_)))
        )
    });
}

#[test]
fn a_client_that_only_receives_still_pings_in_time() {
    let broker = Mosquitto::start();
    let relay = Relay::to(broker.address());
    let subscriber = Client::connect(
        options(&relay.url())
            .with_keep_alive(Duration::from_secs(2))
            .with_ping_delay(Duration::from_secs(1)),
    )
    .unwrap();
    let subscription = subscriber.subscribe("flood", QoS::AtMostOnce).unwrap();
    let publisher = Client::connect(options(&broker.url())).unwrap();
    // A steady stream for two keep-alive periods; the subscriber itself has
    // nothing to send but PINGREQ, and mosquitto drops it after 3 s without one.
    let flood_for = Duration::from_secs(5);
    let sender = thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < flood_for {
            for _ in 0..100 {
                publisher
                    .publish("flood", "drop", QoS::AtMostOnce, false)
                    .unwrap();
            }
            // A QoS 1 message now and then keeps the publisher from running ahead.
            publisher
                .publish("flood", "sync", QoS::AtLeastOnce, false)
                .unwrap();
        }
    });
    while !sender.is_finished() {
        let _ = subscription.recv_timeout(Duration::from_millis(100));
    }
    sender.join().unwrap();
    assert_eq!(relay.accepted(), 1, "the subscriber lost its connection");
    assert!(subscriber.is_connected());
}

#[test]
fn after_a_broker_restart_clients_reconnect_subscribe_again_and_deliver() {
    let mut broker = Mosquitto::start();
    let subscriber = Client::connect(options(&broker.url())).unwrap();
    let subscription = subscriber.subscribe("restart/#", QoS::AtLeastOnce).unwrap();
    let publisher = Client::connect(options(&broker.url())).unwrap();
    publisher
        .publish("restart/before", "1", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(
        subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message")
            .topic(),
        "restart/before"
    );

    broker.restart();
    // The restarted broker knows no session: the subscriber must subscribe again
    // by itself. Publish until its new SUBSCRIBE has landed.
    let mut received = None;
    wait_until("a message after the restart", || {
        // QoS 1 waits for the publisher's own reconnect.
        publisher
            .publish("restart/after", "2", QoS::AtLeastOnce, false)
            .unwrap();
        received = subscription
            .recv_timeout(Duration::from_millis(100))
            .ok()
            .flatten();
        received.is_some()
    });
    assert_eq!(received.unwrap().topic(), "restart/after");
}
