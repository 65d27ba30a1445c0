//! Persistence through the `Storage` trait: a broker restarted on the same store
//! gives back retained messages and persistent sessions with their queued messages
//! (DESIGN invariant 3, for a store that survives the broker).

mod common;

use common::raw::Raw;
use common::{wait_until, WrenBroker};
use wren::protocol::QoS;

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
