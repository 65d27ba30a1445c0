//! Persistence through the `Storage` trait: a broker restarted on the same store
//! gives back retained messages and persistent sessions with their queued messages
//! (DESIGN invariant 3, for a store that survives the broker).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::raw::Raw;
use common::wait_until;
use parking_lot::Mutex;
use wren::broker::{Broker, MemoryStorage, Storage, StorageError, StoredSession};
use wren::config::BrokerConfig;
use wren::protocol::{Publish, QoS};

/// A store that outlives the brokers using it: the in-memory store behind a shared
/// handle, as a store on disk outlives the process.
#[derive(Clone, Default)]
struct SharedStore(Arc<Mutex<MemoryStorage>>);

impl Storage for SharedStore {
    fn save_retained(&mut self, message: &Publish) -> Result<(), StorageError> {
        self.0.lock().save_retained(message)
    }
    fn remove_retained(&mut self, topic: &str) -> Result<(), StorageError> {
        self.0.lock().remove_retained(topic)
    }
    fn load_retained(&mut self) -> Result<Vec<Publish>, StorageError> {
        self.0.lock().load_retained()
    }
    fn save_session(&mut self, session: &StoredSession) -> Result<(), StorageError> {
        self.0.lock().save_session(session)
    }
    fn remove_session(&mut self, client_id: &str) -> Result<(), StorageError> {
        self.0.lock().remove_session(client_id)
    }
    fn load_sessions(&mut self) -> Result<Vec<StoredSession>, StorageError> {
        self.0.lock().load_sessions()
    }
}

fn start(store: &SharedStore) -> Broker {
    let config = BrokerConfig::with_tcp_listener(SocketAddr::from(([127, 0, 0, 1], 0)));
    Broker::builder(config)
        .storage(Box::new(store.clone()))
        .start()
        .expect("broker starts")
}

#[test]
fn retained_messages_and_persistent_sessions_survive_a_restart_on_the_same_store() {
    let store = SharedStore::default();
    let broker = start(&store);
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
    broker.shutdown();

    let broker = start(&store);
    let addr = broker.local_addr();
    assert_eq!(broker.stats().retained_messages, 1);
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
