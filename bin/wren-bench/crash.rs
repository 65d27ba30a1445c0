//! The kill scenario: how many acknowledged messages a broker still has after
//! `kill -9`.
//!
//! A subscriber makes a persistent session (CleanSession 0, QoS 1) and goes away;
//! a publisher sends QoS 1 messages one at a time, each answered by a PUBACK; the
//! broker is killed with SIGKILL right after the last PUBACK and started again on
//! the same store; the subscriber comes back and counts what it gets. Every message
//! acknowledged and not received was lost by the broker: a broker that writes before
//! it acknowledges loses none, one that saves periodically loses what came since
//! its last save.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use wren::protocol::{
    Packet, PacketId, ProtocolVersion, PubAck, Publish, QoS, Subscribe, SubscribeFilter,
};
use wren::protocol::{TopicFilter, TopicName};
use wren::transport::Dialer;

use crate::wire::{Wire, WireError};

/// What the kill scenario measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrashReport {
    /// Messages the broker acknowledged before it was killed.
    pub acknowledged: u64,
    /// Of those, how many the subscriber received after the restart.
    pub recovered: u64,
    /// Acknowledged and never delivered.
    pub lost: u64,
}

const TOPIC: &str = "wren-bench/crash";
const SUBSCRIBER: &str = "wren-bench-crash-sub";

/// Connects as the subscriber, with its persistent session.
fn connect_subscriber(target: &Dialer, version: ProtocolVersion) -> Result<Wire, WireError> {
    Wire::connect_with(
        target,
        version,
        SUBSCRIBER,
        600,
        Duration::from_secs(10),
        false,
    )
}

/// Makes the subscriber's persistent session and leaves it offline.
pub fn subscribe(target: &Dialer, version: ProtocolVersion) -> Result<(), WireError> {
    let mut wire = connect_subscriber(target, version)?;
    let filter = TopicFilter::new(TOPIC).map_err(|e| WireError(e.to_string()))?;
    wire.queue(&Packet::Subscribe(Subscribe {
        packet_id: PacketId::MIN,
        filters: vec![SubscribeFilter::new(filter, QoS::AtLeastOnce)],
        properties: None,
    }));
    wire.flush()?;
    match wire.recv(Some(Instant::now() + Duration::from_secs(10)))? {
        Some(Packet::SubAck(_)) => {}
        other => return Err(WireError(format!("expected SUBACK, got {other:?}"))),
    }
    wire.queue(&Packet::Disconnect(Default::default()));
    wire.flush()
}

/// Publishes `count` QoS 1 messages, each after the last one's PUBACK; returns how
/// many were acknowledged (a PUBACK that refuses, MQTT 5, does not count).
pub fn publish(target: &Dialer, version: ProtocolVersion, count: u64) -> Result<u64, WireError> {
    let mut wire = Wire::connect(
        target,
        version,
        "wren-bench-crash-pub",
        600,
        Duration::from_secs(10),
    )?;
    let topic = TopicName::new(TOPIC).map_err(|e| WireError(e.to_string()))?;
    let mut acknowledged = 0;
    for n in 0..count {
        let packet_id = PacketId::new((n % 65_535 + 1) as u16).unwrap_or(PacketId::MIN);
        let mut publish = Publish::new(
            topic.clone(),
            n.to_be_bytes().to_vec(),
            QoS::AtLeastOnce,
            false,
        );
        publish.packet_id = Some(packet_id);
        wire.queue(&Packet::Publish(publish));
        wire.flush()?;
        let accepted = loop {
            match wire.recv(Some(Instant::now() + Duration::from_secs(10)))? {
                Some(Packet::PubAck(ack)) if ack.packet_id == packet_id => {
                    break !ack.reason_code.is_error()
                }
                Some(_) => continue,
                None => return Ok(acknowledged),
            }
        };
        acknowledged += u64::from(accepted);
    }
    Ok(acknowledged)
}

/// Takes the persistent session back and counts the messages of the first
/// `acknowledged` it receives, until two seconds pass without one.
pub fn recover(
    target: &Dialer,
    version: ProtocolVersion,
    acknowledged: u64,
) -> Result<CrashReport, WireError> {
    let mut wire = connect_subscriber(target, version)?;
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (seen.len() as u64) < acknowledged && Instant::now() < deadline {
        let Some(packet) = wire.recv(Some(Instant::now() + Duration::from_secs(2)))? else {
            break;
        };
        if let Packet::Publish(publish) = packet {
            if let Some(packet_id) = publish.packet_id {
                wire.queue(&Packet::PubAck(PubAck::new(packet_id)));
                wire.flush()?;
            }
            if let Ok(bytes) = <[u8; 8]>::try_from(&publish.payload[..]) {
                let n = u64::from_be_bytes(bytes);
                if n < acknowledged {
                    seen.insert(n);
                }
            }
        }
    }
    let recovered = seen.len() as u64;
    Ok(CrashReport {
        acknowledged,
        recovered,
        lost: acknowledged - recovered,
    })
}
