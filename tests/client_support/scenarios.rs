//! Client scenarios written against a broker's URL (and address, where a relay
//! cuts the connection), so that the same checks run against mosquitto's broker
//! and wren's own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use wren::client::{Client, ClientOptions, Error, QoS, Reconnect, Will};

use super::{wait_until, Relay, PATIENCE};

pub fn options(url: &str) -> ClientOptions {
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
pub fn tally(numbers: impl IntoIterator<Item = u32>) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for n in numbers {
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

pub fn number(message: &wren::client::Message) -> u32 {
    message.payload_str().unwrap().parse().unwrap()
}

pub fn each_qos_goes_round_trip(url: &str) {
    let client = Client::connect(options(url)).unwrap();
    assert!(
        client.client_id().starts_with("wren-"),
        "{}",
        client.client_id()
    );
    let subscription = client.subscribe("round/#", QoS::ExactlyOnce).unwrap();
    assert_eq!(subscription.granted_qos(), QoS::ExactlyOnce);
    assert_eq!(subscription.packet_id().map(|id| id.get()), Some(1));
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let topic = format!("round/{}", qos as u8);
        client
            .publish(&topic, format!("qos {qos}"), qos, false)
            .unwrap();
        let message = subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message");
        assert_eq!(message.topic(), topic);
        assert_eq!(message.payload_str().unwrap(), format!("qos {qos}"));
        assert_eq!(message.qos(), qos);
        assert!(!message.retain());
    }
    // A subscription granted less downgrades what it receives.
    let low = client.subscribe("low", QoS::AtMostOnce).unwrap();
    client
        .publish("low", "downgraded", QoS::ExactlyOnce, false)
        .unwrap();
    assert_eq!(
        low.recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message")
            .qos(),
        QoS::AtMostOnce
    );
    assert!(matches!(subscription.try_recv(), Ok(None)));
    client.disconnect().unwrap();
    assert!(matches!(subscription.recv(), Err(Error::Closed)));
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        assert!(matches!(
            client.publish("round/0", "late", qos, false),
            Err(Error::Closed)
        ));
    }
}

pub fn retained_reaches_a_later_subscriber(url: &str) {
    let publisher = Client::connect(options(url)).unwrap();
    publisher
        .publish("status/door", "open", QoS::AtLeastOnce, true)
        .unwrap();
    publisher
        .publish("status/window", "shut", QoS::ExactlyOnce, true)
        .unwrap();
    // An empty retained message clears the topic's.
    publisher
        .publish("status/window", "", QoS::AtLeastOnce, true)
        .unwrap();
    let subscriber = Client::connect(options(url)).unwrap();
    let subscription = subscriber.subscribe("status/+", QoS::AtLeastOnce).unwrap();
    let message = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert!(message.retain());
    assert_eq!(
        (message.topic(), message.payload_str().unwrap()),
        ("status/door", "open")
    );
    assert!(matches!(
        subscription.recv_timeout(Duration::from_millis(200)),
        Ok(None)
    ));
    // A live message to an existing subscription is not flagged retained.
    publisher
        .publish("status/door", "closed", QoS::AtLeastOnce, true)
        .unwrap();
    let live = subscription
        .recv_timeout(PATIENCE)
        .unwrap()
        .expect("a message");
    assert_eq!(live.payload_str().unwrap(), "closed");
    assert!(!live.retain());
}

pub fn the_will_comes_when_the_connection_breaks(url: &str, address: SocketAddr) {
    let watcher = Client::connect(options(url)).unwrap();
    let wills = watcher.subscribe("wills/#", QoS::AtLeastOnce).unwrap();

    let polite = Client::connect(options(url).with_will(Will::new(
        "wills/polite",
        "gone",
        QoS::AtLeastOnce,
        false,
    )))
    .unwrap();
    polite.disconnect().unwrap();

    let relay = Relay::to(address);
    let cut_off = Client::connect(
        options(&relay.url())
            .with_reconnect(Reconnect::disabled())
            .with_will(Will::new("wills/cut", "lost", QoS::AtLeastOnce, false)),
    )
    .unwrap();
    relay.cut();
    let will = wills.recv_timeout(PATIENCE).unwrap().expect("a message");
    assert_eq!(
        (will.topic(), will.payload_str().unwrap()),
        ("wills/cut", "lost")
    );
    wait_until("the client to notice the cut", || !cut_off.is_connected());
    let refused = cut_off.publish("x", "y", QoS::AtLeastOnce, false);
    assert!(
        matches!(refused, Err(Error::Disconnected(Some(_)))),
        "{refused:?}"
    );
    // The polite client's will never came.
    assert!(matches!(
        wills.recv_timeout(Duration::from_millis(200)),
        Ok(None)
    ));
}

pub fn a_persistent_session_queues_while_away(url: &str) {
    let persistent = || {
        options(url)
            .with_client_id("persistent-reader")
            .with_clean_session(false)
    };
    let reader = Client::connect(persistent()).unwrap();
    let subscription = reader.subscribe("queue/#", QoS::ExactlyOnce).unwrap();
    reader.disconnect().unwrap();
    drop(subscription);

    let writer = Client::connect(options(url)).unwrap();
    // QoS 0 is not queued for an offline client [MQTT-3.1.2-5]. Sent first, so that
    // the acknowledgements of what follows prove the broker has routed it.
    writer
        .publish("queue/jobs", "dropped", QoS::AtMostOnce, false)
        .unwrap();
    for n in 0..6 {
        let qos = if n % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        writer
            .publish("queue/jobs", n.to_string(), qos, false)
            .unwrap();
    }

    let reader = Client::connect(persistent()).unwrap();
    let everything = reader.messages();
    let received: Vec<String> = everything
        .iter()
        .take(6)
        .map(|m| m.payload_str().unwrap().to_owned())
        .collect();
    assert_eq!(received, ["0", "1", "2", "3", "4", "5"]);
    assert!(matches!(
        everything.recv_timeout(Duration::from_millis(200)),
        Ok(None)
    ));
    // The session's subscription still holds.
    writer
        .publish("queue/jobs", "live", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(
        everything
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message")
            .payload_str()
            .unwrap(),
        "live"
    );
}

pub fn subscriptions_from_different_threads(url: &str) {
    let client = Client::connect(options(url)).unwrap();
    let readers: Vec<_> = (0..4)
        .map(|n| {
            let client = client.clone();
            let (ready, is_ready) = crossbeam_channel::bounded(1);
            let handle = thread::spawn(move || {
                let subscription = client
                    .subscribe(&format!("thread/{n}"), QoS::AtLeastOnce)
                    .unwrap();
                ready.send(()).unwrap();
                (0..10)
                    .map(|_| {
                        subscription
                            .recv_timeout(PATIENCE)
                            .unwrap()
                            .expect("a message")
                            .payload_str()
                            .unwrap()
                            .to_owned()
                    })
                    .collect::<Vec<_>>()
            });
            is_ready.recv_timeout(PATIENCE).unwrap();
            handle
        })
        .collect();
    for i in 0..10 {
        for n in 0..4 {
            client
                .publish(
                    &format!("thread/{n}"),
                    format!("{n}-{i}"),
                    QoS::AtLeastOnce,
                    false,
                )
                .unwrap();
        }
    }
    for (n, reader) in readers.into_iter().enumerate() {
        let expected: Vec<String> = (0..10).map(|i| format!("{n}-{i}")).collect();
        assert_eq!(reader.join().unwrap(), expected);
    }
}

pub fn one_client_shared_by_8_threads(url: &str) {
    let client = Client::connect(options(url)).unwrap();
    let subscription = client.subscribe("shared/#", QoS::ExactlyOnce).unwrap();
    let publishers: Vec<_> = (0..8)
        .map(|n| {
            let client = client.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    let qos = match i % 3 {
                        0 => QoS::AtLeastOnce,
                        1 => QoS::ExactlyOnce,
                        _ => QoS::AtLeastOnce,
                    };
                    client
                        .publish(&format!("shared/{n}"), format!("{n}/{i}"), qos, false)
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.join().unwrap();
    }
    let received: BTreeSet<String> = (0..400)
        .map(|_| {
            subscription
                .recv_timeout(PATIENCE)
                .unwrap()
                .expect("a message")
                .payload_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(received.len(), 400);
    assert!(matches!(
        subscription.recv_timeout(Duration::from_millis(200)),
        Ok(None)
    ));
}

pub fn publish_nowait_many_in_flight(url: &str) {
    let client = Client::connect(options(url).with_max_inflight(20)).unwrap();
    let subscription = client.subscribe("bulk", QoS::ExactlyOnce).unwrap();
    const COUNT: u32 = 2000;
    let pending: Vec<_> = (0..COUNT)
        .map(|n| {
            let qos = if n % 3 == 0 {
                QoS::ExactlyOnce
            } else {
                QoS::AtLeastOnce
            };
            client
                .publish_nowait("bulk", n.to_be_bytes().to_vec(), qos, false)
                .unwrap()
        })
        .collect();
    for publish in pending {
        publish.wait().unwrap();
    }
    let mut received = Vec::new();
    while received.len() < COUNT as usize {
        let message = subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message");
        let bytes: [u8; 4] = message.payload()[..].try_into().unwrap();
        received.push(u32::from_be_bytes(bytes));
    }
    // MQTT orders messages per QoS only [MQTT-4.6.0-6].
    let qos_1: Vec<u32> = received.iter().copied().filter(|n| n % 3 != 0).collect();
    assert!(
        qos_1.windows(2).all(|w| w[0] < w[1]),
        "QoS 1 messages out of order"
    );
    received.sort_unstable();
    assert!(
        received == (0..COUNT).collect::<Vec<_>>(),
        "messages lost or repeated"
    );
}

/// A QoS 1 stream of 500 messages from a publisher at `publisher_url` to a
/// persistent subscriber at `subscriber_url`; once 100 have arrived, `cut` breaks
/// the path (or the broker). Every message must still arrive, at least once.
pub fn a_qos_1_stream_survives(
    subscriber_url: &str,
    publisher_url: &str,
    cut: impl FnOnce(),
) -> Client {
    let subscriber = Client::connect(
        options(subscriber_url)
            .with_client_id("stream-subscriber")
            .with_clean_session(false),
    )
    .unwrap();
    let subscription = subscriber.subscribe("stream", QoS::AtLeastOnce).unwrap();
    let publisher = Client::connect(
        options(publisher_url)
            .with_client_id("stream-publisher")
            .with_clean_session(false),
    )
    .unwrap();

    const COUNT: u32 = 500;
    let sender = thread::spawn(move || {
        for n in 0..COUNT {
            publisher
                .publish("stream", n.to_string(), QoS::AtLeastOnce, false)
                .unwrap();
        }
    });
    let mut received = Vec::new();
    while received.len() < 100 {
        received.push(number(
            &subscription
                .recv_timeout(PATIENCE)
                .unwrap()
                .expect("a message"),
        ));
    }
    cut();
    let deadline = Instant::now() + PATIENCE;
    while tally(received.iter().copied()).len() < COUNT as usize {
        assert!(
            Instant::now() < deadline,
            "messages missing after reconnecting"
        );
        match subscription.recv_timeout(PATIENCE) {
            Ok(Some(message)) => received.push(number(&message)),
            outcome => panic!(
                "{outcome:?}; have {} distinct",
                tally(received.clone()).len()
            ),
        }
    }
    sender.join().unwrap();
    assert_eq!(
        tally(received).keys().copied().collect::<Vec<_>>(),
        (0..COUNT).collect::<Vec<_>>()
    );
    // Still connected (or reconnecting): the caller may watch it come back.
    subscriber
}

/// From one thread, publishes of every QoS, waiting and not, interleaved on one
/// topic, reach a subscriber in exactly the order they were made [MQTT-4.6.0-6].
///
/// Against a broker that routes QoS 2 only on PUBREL (mosquitto), every QoS 2
/// message costs the QoS 0/1 ones after it a round trip: `COUNT` keeps that short.
pub fn one_publisher_keeps_its_order_across_qos_and_calls(url: &str, count: u32) {
    let subscriber = Client::connect(options(url)).unwrap();
    let subscription = subscriber.subscribe("order/x", QoS::ExactlyOnce).unwrap();
    // Read while the messages come, so that no QoS 0 message is dropped for a
    // subscription left unread.
    let reader = thread::spawn(move || {
        let mut received = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while received.len() < count as usize && Instant::now() < deadline {
            match subscription.recv_timeout(PATIENCE) {
                Ok(Some(message)) => received.push(number(&message)),
                Ok(None) | Err(_) => break,
            }
        }
        received
    });
    let publisher = Client::connect(options(url)).unwrap();
    let mut pending = Vec::new();
    for n in 0..count {
        let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][(n % 3) as usize];
        let payload = n.to_string();
        // Every fourth publish waits for its acknowledgement; the rest do not.
        if n % 4 == 3 {
            publisher.publish("order/x", payload, qos, false).unwrap();
        } else {
            pending.push(
                publisher
                    .publish_nowait("order/x", payload, qos, false)
                    .unwrap(),
            );
        }
    }
    // Disconnecting at once carries out what is still queued: in its order too.
    publisher.disconnect().unwrap();
    for pending in pending {
        pending.wait().unwrap();
    }
    let received = reader.join().unwrap();
    let expected: Vec<u32> = (0..count).collect();
    if received != expected {
        let first_wrong = received
            .iter()
            .zip(&expected)
            .position(|(got, want)| got != want);
        panic!(
            "messages arrived out of order or missing: {} of {count} arrived, first difference at \
             position {first_wrong:?}, starting {:?}",
            received.len(),
            &received[..received.len().min(20)]
        );
    }
}
