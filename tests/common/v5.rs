//! A raw MQTT 5 peer: [`Peer`](super::peer::Peer)'s counterpart for connections that
//! speak MQTT 5, encoding and decoding with wren's own codec at protocol level 5.
//!
//! It reports what the broker did ([`Next`]): a packet, a closed connection, or
//! silence. Every read times out, after [`READ_TIMEOUT`] unless told otherwise, and
//! every loop is bounded.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use wren::protocol::{
    ConnAck, Connect, Decoder, Disconnect, Packet, PacketId, Properties, ProtocolVersion, PubAck,
    Publish, QoS, ReasonCode, Subscribe, SubscribeFilter, TopicFilter, TopicName, Unsubscribe,
};

pub use super::peer::{describe, read_packet, Next, READ_TIMEOUT};

/// A test's end of one MQTT 5 connection to a broker.
pub struct V5Peer {
    stream: TcpStream,
    buffer: BytesMut,
    decoder: Decoder,
    /// Packets read while another was awaited, returned first by [`V5Peer::next`].
    pending: VecDeque<Packet>,
    timeout: Duration,
    name: String,
    /// Whether QoS 1 deliveries are acknowledged (PUBACK 0x00) as soon as they are
    /// read (the default).
    pub auto_ack: bool,
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
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("{name}: cannot connect to the test broker: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        V5Peer {
            stream,
            buffer: BytesMut::new(),
            decoder: Decoder::new()
                .with_version(ProtocolVersion::V5)
                .with_max_packet_size(usize::MAX),
            pending: VecDeque::new(),
            timeout: READ_TIMEOUT,
            name: name.to_string(),
            auto_ack: true,
        }
    }

    /// Opens a connection, sends `connect` (as MQTT 5) and returns what came back.
    pub fn connect(addr: SocketAddr, mut connect: Connect) -> (V5Peer, Next) {
        connect.protocol = ProtocolVersion::V5;
        let mut peer = V5Peer::open(addr, &connect.client_id.clone());
        peer.send(connect);
        let next = peer.next();
        (peer, next)
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
            peer.name
        );
        (peer, connack)
    }

    /// The name used in failure messages (the client id, for connected peers).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long each read waits from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Encodes (as MQTT 5) and writes a packet; fails the test if the write fails.
    pub fn send(&mut self, packet: impl Into<Packet>) {
        if let Err(e) = self.try_send(packet) {
            panic!("{}: write to the broker failed: {e}", self.name);
        }
    }

    /// Writes bytes as they are (for packets wren's encoder refuses to write).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("{}: write to the broker failed: {e}", self.name);
        }
    }

    /// Writes a packet, reporting a failed write (the broker may have closed).
    pub fn try_send(&mut self, packet: impl Into<Packet>) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        packet
            .into()
            .encode_for(ProtocolVersion::V5, &mut bytes)
            .expect("test packets encode");
        self.stream.write_all(&bytes)
    }

    /// The next packet, held or read, or what happened instead.
    pub fn next(&mut self) -> Next {
        self.next_within(self.timeout)
    }

    /// Like [`V5Peer::next`], waiting at most `timeout` for a new packet.
    pub fn next_within(&mut self, timeout: Duration) -> Next {
        match self.pending.pop_front() {
            Some(packet) => Next::Packet(packet),
            None => self.read(timeout),
        }
    }

    /// The next packet; fails the test naming `what` was expected otherwise.
    pub fn expect(&mut self, what: &str) -> Packet {
        match self.next() {
            Next::Packet(packet) => packet,
            other => panic!("{}: expected {what}, got {}", self.name, describe(&other)),
        }
    }

    /// The next packet, which must be a PUBLISH.
    pub fn expect_publish(&mut self, what: &str) -> Publish {
        match self.next() {
            Next::Packet(Packet::Publish(publish)) => publish,
            other => panic!("{}: expected {what}, got {}", self.name, describe(&other)),
        }
    }

    /// Expects nothing at all for `wait` (a bound on how long the test looks, not a
    /// measure of speed).
    pub fn expect_silence(&mut self, wait: Duration, what: &str) {
        match self.next_within(wait) {
            Next::Silent => {}
            other => panic!(
                "{}: expected nothing ({what}), got {}",
                self.name,
                describe(&other)
            ),
        }
    }

    /// Expects the broker to close the connection without sending anything more.
    pub fn expect_closed(&mut self, what: &str) {
        match self.next() {
            Next::Closed => {}
            other => panic!(
                "{}: expected the broker to close the connection ({what}), got {}",
                self.name,
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
                    assert_eq!(disconnect.reason_code, code, "{}: {what}", self.name);
                    self.expect_closed(&format!("after {what}"));
                    return disconnect;
                }
                Next::Packet(_) => {}
                other => panic!("{}: expected {what}, got {}", self.name, describe(&other)),
            }
        }
        panic!("{}: the broker kept sending instead of {what}", self.name);
    }

    /// Waits for the first packet that `wanted` accepts, holding every other packet
    /// for [`V5Peer::next`]. Fails the test on close or silence.
    pub fn wait_for(&mut self, what: &str, wanted: impl Fn(&Packet) -> bool) -> Packet {
        if let Some(index) = self.pending.iter().position(&wanted) {
            return self
                .pending
                .remove(index)
                .expect("the index was just found");
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read(left.max(Duration::from_millis(1))) {
                Next::Packet(packet) if wanted(&packet) => return packet,
                Next::Packet(packet) => self.pending.push_back(packet),
                other => panic!(
                    "{}: expected {what}, got {} (after {} other packets)",
                    self.name,
                    describe(&other),
                    self.pending.len()
                ),
            }
        }
    }

    /// PINGREQ, then everything the broker sent before its PINGRESP (held packets
    /// included).
    pub fn ping(&mut self) -> Vec<Packet> {
        self.send(Packet::PingReq);
        let mut before: Vec<Packet> = self.pending.drain(..).collect();
        for _ in 0..100_000 {
            match self.read(self.timeout) {
                Next::Packet(Packet::PingResp) => return before,
                Next::Packet(packet) => before.push(packet),
                other => panic!(
                    "{}: expected PINGRESP, got {} (after {} other packets)",
                    self.name,
                    describe(&other),
                    before.len()
                ),
            }
        }
        panic!("{}: the broker kept sending instead of PINGRESP", self.name);
    }

    /// The PUBLISH packets among [`V5Peer::ping`]'s; fails the test on any other.
    pub fn publishes(&mut self) -> Vec<Publish> {
        self.ping()
            .into_iter()
            .map(|packet| match packet {
                Packet::Publish(publish) => publish,
                other => panic!("{}: expected only PUBLISH, got {other}", self.name),
            })
            .collect()
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
            self.name
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
        for _ in 0..100_000 {
            match self.next() {
                Next::Closed => return,
                Next::Packet(_) => {}
                Next::Silent => panic!(
                    "{}: the broker did not close after DISCONNECT within {:?}",
                    self.name, self.timeout
                ),
            }
        }
        panic!("{}: the broker kept sending after DISCONNECT", self.name);
    }

    /// Sends DISCONNECT 0x00 and waits until the broker closes.
    pub fn disconnect(self) {
        self.disconnect_with(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION));
    }

    /// Reads one packet from the socket (not from the held ones), acknowledging a
    /// QoS 1 delivery when `auto_ack` says so.
    fn read(&mut self, timeout: Duration) -> Next {
        let next = read_packet(
            &mut self.stream,
            &mut self.decoder,
            &mut self.buffer,
            timeout,
            &self.name,
        );
        if let Next::Packet(packet) = &next {
            self.acknowledge(packet);
        }
        next
    }

    fn acknowledge(&mut self, packet: &Packet) {
        if let Packet::Publish(publish) = packet {
            if let (true, QoS::AtLeastOnce, Some(id)) =
                (self.auto_ack, publish.qos, publish.packet_id)
            {
                // The broker may have closed meanwhile; the read after says so.
                let _ = self.try_send(PubAck::new(id));
            }
        }
    }
}
