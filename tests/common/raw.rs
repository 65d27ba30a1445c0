//! A raw MQTT connection: write exact bytes, expect exact bytes back.
//!
//! On a mismatch the panic shows both byte strings and, when they decode, both
//! packets, so a failing test says what the broker sent instead.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use bytes::{Bytes, BytesMut};
use wren::protocol::{
    ConnAck, Connect, Decoder, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter,
    TopicFilter, TopicName, Unsubscribe, Will,
};

use super::TIMEOUT;

/// A test's end of one TCP connection to a broker.
pub struct Raw {
    stream: TcpStream,
    buffer: BytesMut,
    name: String,
}

impl Raw {
    /// Opens a TCP connection; every read on it times out after [`TIMEOUT`].
    pub fn open(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to the test broker");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buffer: BytesMut::new(),
            name: "client".into(),
        }
    }

    /// Opens a connection and completes a CONNECT with `client_id` and `clean`,
    /// expecting CONNACK 0 with the given session-present flag.
    pub fn connect(addr: SocketAddr, client_id: &str, clean: bool, session_present: bool) -> Raw {
        let mut raw = Raw::open(addr);
        raw.name = client_id.to_string();
        raw.send_packet(connect_packet(client_id, clean, 60));
        raw.expect_packet(Packet::ConnAck(ConnAck::accepted(session_present)));
        raw
    }

    /// Connects with a fully specified CONNECT and expects `20 02 00 00`.
    pub fn connect_with(addr: SocketAddr, connect: Connect) -> Raw {
        let mut raw = Raw::open(addr);
        raw.name = connect.client_id.clone();
        raw.send_packet(connect);
        raw.expect(&[0x20, 0x02, 0x00, 0x00]);
        raw
    }

    /// Writes bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the broker");
    }

    /// Encodes and writes a packet.
    pub fn send_packet(&mut self, packet: impl Into<Packet>) {
        let bytes = encode(packet);
        self.send(&bytes);
    }

    /// Reads exactly `expected.len()` bytes and compares them with `expected`.
    pub fn expect(&mut self, expected: &[u8]) {
        let got = self.read_bytes(expected.len(), || describe(expected));
        assert!(
            got == expected,
            "{}: received {}\n              expected {}",
            self.name,
            describe(&got),
            describe(expected)
        );
    }

    /// Expects the bytes of two packets, in either order (mosquitto's
    /// `receive_unordered`): for answers the broker may interleave.
    pub fn expect_either_order(&mut self, one: &[u8], other: &[u8]) {
        let one_then_other = [one, other].concat();
        let other_then_one = [other, one].concat();
        let got = self.read_bytes(one_then_other.len(), || {
            format!("{} in either order", describe(&one_then_other))
        });
        assert!(
            got == one_then_other || got == other_then_one,
            "{}: received {}\n              expected {} in either order",
            self.name,
            describe(&got),
            describe(&one_then_other)
        );
    }

    /// Reads exactly `len` bytes, buffered ones first; `expected` describes them for
    /// the panic if the connection closes or the read times out first.
    fn read_bytes(&mut self, len: usize, expected: impl Fn() -> String) -> Vec<u8> {
        let mut got = vec![0u8; len];
        let from_buffer = self.buffer.len().min(len);
        got[..from_buffer].copy_from_slice(&self.buffer.split_to(from_buffer));
        let mut filled = from_buffer;
        while filled < len {
            match self.stream.read(&mut got[filled..]) {
                Ok(0) => panic!(
                    "{}: connection closed after {:02X?}, expected {}",
                    self.name,
                    &got[..filled],
                    expected()
                ),
                Ok(n) => filled += n,
                Err(e) => panic!(
                    "{}: read failed ({e}) after {:02X?}, expected {}",
                    self.name,
                    &got[..filled],
                    expected()
                ),
            }
        }
        got
    }

    /// Expects exactly the bytes of `packet`.
    pub fn expect_packet(&mut self, packet: impl Into<Packet>) {
        let bytes = encode(packet);
        self.expect(&bytes);
    }

    /// Reads and decodes the next packet.
    pub fn read_packet(&mut self) -> Packet {
        let mut decoder = Decoder::new().with_max_packet_size(usize::MAX);
        let mut chunk = [0u8; 4096];
        loop {
            match decoder.decode(&mut self.buffer) {
                Ok(Some(packet)) => return packet,
                Ok(None) => {}
                Err(e) => panic!("{}: broker sent a malformed packet: {e}", self.name),
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "{}: connection closed while a packet was expected",
                    self.name
                ),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("{}: no packet within {TIMEOUT:?}: {e}", self.name),
            }
        }
    }

    /// Reads the next packet, which must be a PUBLISH.
    pub fn read_publish(&mut self) -> Publish {
        match self.read_packet() {
            Packet::Publish(publish) => publish,
            other => panic!("{}: expected PUBLISH, received {other}", self.name),
        }
    }

    /// Expects the broker to close the connection, sending nothing more.
    pub fn expect_eof(&mut self) {
        assert!(
            self.buffer.is_empty(),
            "{}: expected EOF, {} bytes already received",
            self.name,
            self.buffer.len()
        );
        let mut chunk = [0u8; 64];
        match self.stream.read(&mut chunk) {
            Ok(0) => {}
            Ok(n) => panic!(
                "{}: expected EOF, received {}",
                self.name,
                describe(&chunk[..n])
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{}: expected EOF within {TIMEOUT:?}: {e}", self.name),
        }
    }

    /// Round trip PINGREQ / PINGRESP: everything the broker sent this client
    /// before answering has arrived when this returns.
    pub fn ping(&mut self) {
        self.send(&[0xC0, 0x00]);
        self.expect(&[0xD0, 0x00]);
    }

    /// Subscribes to one filter and expects the SUBACK granting `qos`.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send_packet(subscribe_packet(1, &[(filter, qos)]));
        self.expect(&[0x90, 0x03, 0x00, 0x01, qos as u8]);
    }

    /// Publishes at QoS 0.
    pub fn publish0(&mut self, topic: &str, payload: &[u8], retain: bool) {
        self.send_packet(publish_packet(topic, payload, QoS::AtMostOnce, retain, 0));
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub fn publish1(&mut self, topic: &str, payload: &[u8], retain: bool, packet_id: u16) {
        self.send_packet(publish_packet(
            topic,
            payload,
            QoS::AtLeastOnce,
            retain,
            packet_id,
        ));
        let id = packet_id.to_be_bytes();
        self.expect(&[0x40, 0x02, id[0], id[1]]);
    }

    /// Sends DISCONNECT and expects the broker to close.
    pub fn disconnect(mut self) {
        self.send(&[0xE0, 0x00]);
        self.expect_eof();
    }

    /// The underlying stream, for tests that need to misbehave.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// The bytes of a packet.
pub fn encode(packet: impl Into<Packet>) -> Vec<u8> {
    let mut bytes = Vec::new();
    packet
        .into()
        .encode(&mut bytes)
        .expect("test packets encode");
    bytes
}

/// An MQTT 3.1.1 CONNECT.
pub fn connect_packet(client_id: &str, clean: bool, keep_alive: u16) -> Connect {
    let mut connect = Connect::new(client_id);
    connect.clean_session = clean;
    connect.keep_alive = keep_alive;
    connect
}

/// A will for [`Connect::will`].
pub fn will(topic: &str, payload: &'static [u8], qos: QoS, retain: bool) -> Will {
    Will {
        topic: TopicName::new(topic).unwrap(),
        payload: Bytes::from_static(payload),
        qos,
        retain,
        properties: None,
    }
}

/// A PUBLISH; `packet_id` is ignored for QoS 0.
pub fn publish_packet(
    topic: &str,
    payload: &[u8],
    qos: QoS,
    retain: bool,
    packet_id: u16,
) -> Publish {
    let mut publish = Publish::new(
        TopicName::new(topic).unwrap(),
        Bytes::copy_from_slice(payload),
        qos,
        retain,
    );
    if qos != QoS::AtMostOnce {
        publish.packet_id = PacketId::new(packet_id);
    }
    publish
}

/// A SUBSCRIBE.
pub fn subscribe_packet(packet_id: u16, filters: &[(&str, QoS)]) -> Subscribe {
    Subscribe {
        packet_id: PacketId::new(packet_id).unwrap(),
        filters: filters
            .iter()
            .map(|(f, q)| SubscribeFilter::new(TopicFilter::new(*f).unwrap(), *q))
            .collect(),
        properties: None,
    }
}

/// An UNSUBSCRIBE.
pub fn unsubscribe_packet(packet_id: u16, filters: &[&str]) -> Unsubscribe {
    Unsubscribe {
        packet_id: PacketId::new(packet_id).unwrap(),
        filters: filters
            .iter()
            .map(|f| TopicFilter::new(*f).unwrap())
            .collect(),
        properties: None,
    }
}

/// Hex bytes and, when they decode, the packets they hold.
fn describe(bytes: &[u8]) -> String {
    let mut buffer = BytesMut::from(bytes);
    let mut decoder = Decoder::new().with_max_packet_size(usize::MAX);
    let mut packets = Vec::new();
    while let Ok(Some(packet)) = decoder.decode(&mut buffer) {
        packets.push(packet.to_string());
    }
    format!("{bytes:02X?} {packets:?}")
}
