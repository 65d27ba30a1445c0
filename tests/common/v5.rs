//! A raw MQTT 5 peer: a [`Peer`] that speaks MQTT 5, with what MQTT 5 answers
//! (reason codes in SUBACK, UNSUBACK and PUBACK, the broker's DISCONNECT).
//!
//! It reports what the broker did ([`Next`]): a packet, a closed connection, or
//! silence. Every read times out, after `READ_TIMEOUT` unless told otherwise, and
//! every loop is bounded.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytes::Bytes;
use wren::broker::{AuthExchange, AuthStep, Hook, HookError};
use wren::protocol::{
    ConnAck, Connect, Disconnect, Packet, PacketId, Properties, ProtocolVersion, Publish, QoS,
    ReasonCode, Subscribe, SubscribeFilter, TopicFilter, TopicName, Unsubscribe,
};

pub use super::peer::{describe, Next, Peer};

/// A test's end of one MQTT 5 connection to a broker: a [`Peer`] (whose methods it
/// has) speaking MQTT 5, with the answers that differ in MQTT 5.
pub struct V5Peer(Peer);

impl Deref for V5Peer {
    type Target = Peer;

    fn deref(&self) -> &Peer {
        &self.0
    }
}

impl DerefMut for V5Peer {
    fn deref_mut(&mut self) -> &mut Peer {
        &mut self.0
    }
}

/// An MQTT 5 CONNECT with clean start 1, keep-alive 60 and no properties.
pub fn connect_v5(client_id: &str) -> Connect {
    let mut connect = Connect::new(client_id);
    connect.protocol = ProtocolVersion::V5;
    connect
}

/// Properties whose fields `set` filled in.
pub fn props(set: impl FnOnce(&mut Properties)) -> Option<Box<Properties>> {
    let mut properties = Properties::new();
    set(&mut properties);
    Some(Box::new(properties))
}

/// A subscription to `filter` at `qos` with the default options.
pub fn filter(filter: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(
        TopicFilter::new(filter).expect("test filters are valid"),
        qos,
    )
}

/// A PUBLISH; `packet_id` is ignored at QoS 0.
pub fn message(topic: &str, payload: &[u8], qos: QoS, packet_id: u16) -> Publish {
    let topic = TopicName::new(topic).expect("test topics are valid topic names");
    let mut publish = Publish::new(topic, Bytes::copy_from_slice(payload), qos, false);
    if qos != QoS::AtMostOnce {
        publish.packet_id = Some(id(packet_id));
    }
    publish
}

/// A packet identifier (not 0).
pub fn id(value: u16) -> PacketId {
    PacketId::new(value).expect("test packet ids are not 0")
}

impl V5Peer {
    /// Opens a TCP connection, sending nothing yet.
    pub fn open(addr: SocketAddr, name: &str) -> V5Peer {
        V5Peer(Peer::open_version(addr, name, ProtocolVersion::V5))
    }

    /// Opens a connection, sends `connect` (as MQTT 5) and returns what came back.
    pub fn connect(addr: SocketAddr, mut connect: Connect) -> (V5Peer, Next) {
        connect.protocol = ProtocolVersion::V5;
        let (peer, next) = Peer::connect(addr, connect);
        (V5Peer(peer), next)
    }

    /// Opens a connection and sends `connect`, expecting a CONNACK (of any reason).
    pub fn connack(addr: SocketAddr, connect: Connect) -> (V5Peer, ConnAck) {
        let id = connect.client_id.clone();
        match V5Peer::connect(addr, connect) {
            (peer, Next::Packet(Packet::ConnAck(connack))) => (peer, connack),
            (_, other) => panic!("{id}: expected CONNACK, got {}", describe(&other)),
        }
    }

    /// Sends `connect`, expecting CONNACK 0x00; returns the peer and the CONNACK.
    pub fn accepted(addr: SocketAddr, connect: Connect) -> (V5Peer, ConnAck) {
        let (peer, connack) = V5Peer::connack(addr, connect);
        assert_eq!(
            connack.code,
            ReasonCode::SUCCESS,
            "{}: the CONNECT was refused",
            peer.name()
        );
        (peer, connack)
    }

    /// Expects nothing at all for `wait` (a bound on how long the test looks, not a
    /// measure of speed).
    pub fn expect_silence(&mut self, wait: Duration, what: &str) {
        match self.next_within(wait) {
            Next::Silent => {}
            other => panic!(
                "{}: expected nothing ({what}), got {}",
                self.name(),
                describe(&other)
            ),
        }
    }

    /// Expects a DISCONNECT with `code` (skipping at most a bounded number of other
    /// packets sent before it), then the connection to close.
    pub fn expect_disconnect(&mut self, code: ReasonCode) -> Disconnect {
        let what = format!("DISCONNECT {:#04x}", code.0);
        for _ in 0..1000 {
            match self.next() {
                Next::Packet(Packet::Disconnect(disconnect)) => {
                    assert_eq!(disconnect.reason_code, code, "{}: {what}", self.name());
                    self.expect_closed(&format!("after {what}"));
                    return disconnect;
                }
                Next::Packet(_) => {}
                other => panic!("{}: expected {what}, got {}", self.name(), describe(&other)),
            }
        }
        panic!("{}: the broker kept sending instead of {what}", self.name());
    }

    /// Sends a SUBSCRIBE of `filters` with `properties` and returns the reason
    /// codes of its SUBACK.
    pub fn subscribe_with(
        &mut self,
        packet_id: u16,
        filters: Vec<SubscribeFilter>,
        properties: Option<Box<Properties>>,
    ) -> Vec<ReasonCode> {
        let mut subscribe = Subscribe::new(id(packet_id), filters);
        subscribe.properties = properties;
        self.send(subscribe);
        let what = format!("SUBACK {packet_id}");
        match self.wait_for(
            &what,
            |p| matches!(p, Packet::SubAck(s) if s.packet_id.get() == packet_id),
        ) {
            Packet::SubAck(suback) => suback.reason_codes,
            _ => unreachable!("wait_for returns what it was asked for"),
        }
    }

    /// Subscribes to one filter with the default options, expecting it granted.
    pub fn subscribe(&mut self, topic_filter: &str, qos: QoS) {
        let codes = self.subscribe_with(1, vec![filter(topic_filter, qos)], None);
        assert_eq!(
            codes,
            vec![ReasonCode(qos as u8)],
            "{}: SUBACK for {topic_filter}",
            self.name()
        );
    }

    /// Sends an UNSUBSCRIBE and returns the reason codes of its UNSUBACK.
    pub fn unsubscribe(&mut self, packet_id: u16, filters: &[&str]) -> Vec<ReasonCode> {
        let filters = filters
            .iter()
            .map(|f| TopicFilter::new(*f).expect("test filters are valid"))
            .collect();
        self.send(Unsubscribe::new(id(packet_id), filters));
        let what = format!("UNSUBACK {packet_id}");
        match self.wait_for(
            &what,
            |p| matches!(p, Packet::UnsubAck(a) if a.packet_id.get() == packet_id),
        ) {
            Packet::UnsubAck(unsuback) => unsuback.reason_codes,
            _ => unreachable!("wait_for returns what it was asked for"),
        }
    }

    /// Sends a QoS 1 PUBLISH and returns the reason code of its PUBACK.
    pub fn publish1(&mut self, publish: Publish) -> ReasonCode {
        let packet_id = publish.packet_id.expect("a QoS 1 PUBLISH has an id").get();
        self.send(publish);
        let what = format!("PUBACK {packet_id}");
        match self.wait_for(
            &what,
            |p| matches!(p, Packet::PubAck(a) if a.packet_id.get() == packet_id),
        ) {
            Packet::PubAck(puback) => puback.reason_code,
            _ => unreachable!("wait_for returns what it was asked for"),
        }
    }

    /// Sends DISCONNECT with `reason` and waits until the broker closes.
    pub fn disconnect_with(mut self, disconnect: Disconnect) {
        self.send(disconnect);
        self.expect_closed_eventually("after DISCONNECT");
    }

    /// Sends DISCONNECT 0x00 and waits until the broker closes.
    pub fn disconnect(self) {
        self.disconnect_with(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION));
    }
}

/// The method [`ChallengeHook`] handles.
pub const METHOD: &str = "test-challenge";

/// Enhanced authentication by challenge, for the broker: it sends a nonce, the
/// client answers it reversed. Data in the client's first packet, if any, must
/// be `hello` (so that a client's initial data is seen to arrive).
pub struct ChallengeHook;

impl Hook for ChallengeHook {
    fn authenticate_enhanced(
        &self,
        exchange: &mut AuthExchange<'_>,
    ) -> Result<AuthStep, HookError> {
        if exchange.method != METHOD {
            return Ok(AuthStep::NotHandled);
        }
        if exchange.state.is_empty() {
            if exchange
                .data
                .is_some_and(|data| !data.is_empty() && data != b"hello")
            {
                return Ok(AuthStep::Fail(ReasonCode::NOT_AUTHORIZED));
            }
            let nonce = if exchange.reauthentication {
                b"again-42".to_vec()
            } else {
                b"nonce-17".to_vec()
            };
            *exchange.state = nonce.clone();
            return Ok(AuthStep::Continue(Some(Bytes::from(nonce))));
        }
        let mut expected = exchange.state.clone();
        expected.reverse();
        if exchange.data == Some(&expected[..]) {
            Ok(AuthStep::Success(None))
        } else {
            Ok(AuthStep::Fail(ReasonCode::NOT_AUTHORIZED))
        }
    }
}
