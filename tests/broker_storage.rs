//! Persistence through the `Storage` trait: a broker restarted on the same store
//! gives back retained messages and persistent sessions with their queued messages
//! (DESIGN invariant 3, for a store that survives the broker), with the crate's
//! memory store and with one written outside the crate.

mod common;

use std::collections::BTreeMap;

use common::raw::Raw;
use common::{wait_until, WrenBroker};
use wren::broker::{
    Change, Storage, StorageError, StoredMessage, StoredSession, StoredState, StoredSubscription,
};
use wren::config::BrokerConfig;
use wren::protocol::{PacketId, QoS, TopicFilter};
use wren::Broker;

#[test]
fn retained_messages_and_persistent_sessions_survive_a_restart_on_the_same_store() {
    // The fixture keeps its store across a restart, as a store on disk outlives
    // the process.
    let mut broker = WrenBroker::start();
    let addr = broker.local_addr();
    let mut subscriber = Raw::connect(addr, "durable", false, false);
    subscriber.subscribe("orders/#", QoS::ExactlyOnce);
    subscriber.disconnect();
    let mut publisher = Raw::connect(addr, "pub", true, false);
    publisher.publish1("orders/1", b"queued while offline", false, 1);
    publisher.publish1("status", b"retained", true, 2);
    wait_until("the message is queued", || {
        broker.stats().queued_messages == 1
    });
    broker.restart();

    let addr = broker.local_addr();
    common::wait_until("retained_messages is 1", || {
        broker.stats().retained_messages == 1
    });
    // The session is there, with its subscription and its queued message.
    let mut back = Raw::connect(addr, "durable", false, true);
    let queued = back.read_publish();
    assert_eq!(
        (&queued.payload[..], queued.qos),
        (&b"queued while offline"[..], QoS::AtLeastOnce)
    );
    let id = queued.packet_id.expect("QoS 1").get().to_be_bytes();
    back.send(&[0x40, 0x02, id[0], id[1]]);
    let mut publisher = Raw::connect(addr, "pub", true, false);
    publisher.publish0("orders/2", b"live", false);
    assert_eq!(&back.read_publish().payload[..], b"live");
    // The retained message too.
    back.subscribe("status", QoS::AtMostOnce);
    let retained = back.read_publish();
    assert!(retained.retain && &retained.payload[..] == b"retained");
}

/// A store written outside the crate, with only the public API: it keeps the
/// changes it is given as a log and rebuilds the broker's state from it at load,
/// as a store over an append-only file or a program's own database would.
#[derive(Clone, Default)]
struct LogStorage {
    log: std::sync::Arc<std::sync::Mutex<Vec<Change>>>,
}

impl Storage for LogStorage {
    fn load(&mut self) -> Result<StoredState, StorageError> {
        let mut retained = BTreeMap::new();
        let mut records = BTreeMap::new();
        let mut messages: BTreeMap<String, BTreeMap<u64, StoredMessage>> = BTreeMap::new();
        let mut incoming: BTreeMap<String, Vec<PacketId>> = BTreeMap::new();
        for change in self.log.lock().unwrap().iter().cloned() {
            match change {
                Change::Retain(publish) => {
                    retained.insert(publish.topic.to_string(), publish);
                }
                Change::ClearRetained(topic) => {
                    retained.remove(&topic);
                }
                Change::Session(record) => {
                    records.insert(record.client_id.clone(), record);
                }
                Change::RemoveSession(client_id) => {
                    records.remove(&client_id);
                    messages.remove(&client_id);
                    incoming.remove(&client_id);
                }
                Change::PutMessage {
                    client_id,
                    seq,
                    message,
                } => {
                    messages.entry(client_id).or_default().insert(seq, message);
                }
                Change::RemoveMessage { client_id, seq } => {
                    messages.entry(client_id).or_default().remove(&seq);
                }
                Change::Receive {
                    client_id,
                    packet_id,
                } => incoming.entry(client_id).or_default().push(packet_id),
                Change::Release {
                    client_id,
                    packet_id,
                } => incoming
                    .entry(client_id)
                    .or_default()
                    .retain(|id| *id != packet_id),
                other => {
                    return Err(StorageError::Backend(format!(
                        "a change this store does not know: {other:?}"
                    )))
                }
            }
        }
        let sessions = records
            .into_iter()
            .map(|(client_id, record)| {
                let kept = messages.remove(&client_id).unwrap_or_default();
                let ids = incoming.remove(&client_id).unwrap_or_default();
                StoredSession::new(record, kept.into_iter().collect(), ids)
            })
            .collect();
        Ok(StoredState::new(retained.into_values().collect(), sessions))
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), StorageError> {
        self.log.lock().unwrap().extend_from_slice(changes);
        Ok(())
    }

    fn describe(&self) -> String {
        "a change log".into()
    }
}

#[test]
fn a_store_written_with_the_public_api_gives_sessions_and_retained_messages_back() {
    let store = LogStorage::default();
    let config = || {
        let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
        config.sys.interval = std::time::Duration::ZERO;
        config
    };
    let broker = Broker::builder(config())
        .storage(Box::new(store.clone()))
        .start()
        .expect("the broker starts");
    let mut subscriber = Raw::connect(broker.local_addr(), "durable", false, false);
    subscriber.subscribe("orders/#", QoS::AtLeastOnce);
    subscriber.disconnect();
    let mut publisher = Raw::connect(broker.local_addr(), "pub", true, false);
    // Each PUBACK comes once the message is committed to the log.
    publisher.publish1("orders/1", b"kept in the log", false, 1);
    publisher.publish1("status", b"retained", true, 2);
    broker.shutdown();
    // The session's record, as the store was given it: an MQTT 3.1.1
    // subscription has every MQTT 5 option off, and the session never expires.
    let record = store
        .log
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|change| match change {
            Change::Session(record) if record.client_id == "durable" => Some(record.clone()),
            _ => None,
        })
        .expect("the session's record is in the log");
    assert_eq!(
        record.subscriptions,
        vec![StoredSubscription::new(
            TopicFilter::new("orders/#").unwrap(),
            QoS::AtLeastOnce
        )]
    );
    assert_eq!(record.session_expiry_interval, u32::MAX);

    let broker = Broker::builder(config())
        .storage(Box::new(store))
        .start()
        .expect("the broker starts again");
    let mut back = Raw::connect(broker.local_addr(), "durable", false, true);
    assert_eq!(&back.read_publish().payload[..], b"kept in the log");
    let mut reader = Raw::connect(broker.local_addr(), "reader", true, false);
    reader.subscribe("status", QoS::AtMostOnce);
    assert_eq!(&reader.read_publish().payload[..], b"retained");
}
