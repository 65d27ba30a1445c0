//! A raw MQTT peer that reports what the broker did rather than failing at once: a
//! packet, a closed connection, or silence.
//!
//! [`Raw`](super::raw::Raw) panics on anything unexpected, which suits byte-exact
//! conformance tests. Tests of hostile input need more room: closing the connection
//! may be the right answer, messages may arrive while an acknowledgement is awaited,
//! and a model test compares each answer with a prediction before deciding. Every
//! read still times out, after [`READ_TIMEOUT`] unless told otherwise.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use wren::protocol::{
    ConnAck, Connect, ConnectReturnCode, Decoder, Packet, PacketId, ProtocolVersion, PubAck,
    Publish, QoS, SubscribeReturnCode, TopicName,
};

use super::raw::{subscribe_packet, unsubscribe_packet};

/// How long one read waits for the broker before it reports [`Next::Silent`].
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// What the broker did next.
#[derive(Debug)]
pub enum Next {
    /// It sent this packet.
    Packet(Packet),
    /// It closed the connection (or reset it).
    Closed,
    /// It sent nothing within the read timeout.
    Silent,
}

/// A test's end of one TCP connection to a broker.
pub struct Peer {
    stream: TcpStream,
    /// The version packets are encoded and decoded for: its CONNECT's.
    version: ProtocolVersion,
    buffer: BytesMut,
    decoder: Decoder,
    /// Packets read while another was awaited, returned first by [`Peer::next`].
    pending: VecDeque<Packet>,
    timeout: Duration,
    name: String,
    /// Whether QoS 1 deliveries are acknowledged as soon as they are read (the
    /// default).
    pub auto_ack: bool,
}

impl Peer {
    /// Opens a TCP connection, sending nothing yet, to speak MQTT 3.1.1.
    pub fn open(addr: SocketAddr, name: &str) -> Peer {
        Peer::open_version(addr, name, ProtocolVersion::V3_1_1)
    }

    /// Opens a TCP connection, sending nothing yet, to speak `version`.
    pub fn open_version(addr: SocketAddr, name: &str, version: ProtocolVersion) -> Peer {
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("{name}: cannot connect to the test broker: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Peer {
            stream,
            version,
            buffer: BytesMut::new(),
            decoder: Decoder::new()
                .with_version(version)
                .with_max_packet_size(usize::MAX),
            pending: VecDeque::new(),
            timeout: READ_TIMEOUT,
            name: name.to_string(),
            auto_ack: true,
        }
    }

    /// Opens a connection, sends `connect` and returns what came back. The peer
    /// speaks the version of the CONNECT.
    pub fn connect(addr: SocketAddr, connect: Connect) -> (Peer, Next) {
        let mut peer = Peer::open_version(addr, &connect.client_id.clone(), connect.protocol);
        peer.send(connect);
        let next = peer.next();
        (peer, next)
    }

    /// Opens a connection and sends `connect`, expecting a CONNACK.
    pub fn connack(addr: SocketAddr, connect: Connect) -> (Peer, ConnAck) {
        let id = connect.client_id.clone();
        match Peer::connect(addr, connect) {
            (peer, Next::Packet(Packet::ConnAck(connack))) => (peer, connack),
            (_, other) => panic!("{id}: expected CONNACK, got {}", describe(&other)),
        }
    }

    /// Connects with `client_id` and `clean`, expecting CONNACK 0; returns the peer
    /// and the session-present flag.
    pub fn connected(addr: SocketAddr, client_id: &str, clean: bool) -> (Peer, bool) {
        let mut connect = Connect::new(client_id);
        connect.clean_session = clean;
        Peer::accepted(addr, connect)
    }

    /// Sends `connect`, expecting CONNACK 0; returns the peer and the session-present
    /// flag.
    pub fn accepted(addr: SocketAddr, connect: Connect) -> (Peer, bool) {
        let id = connect.client_id.clone();
        let (peer, connack) = Peer::connack(addr, connect);
        assert_eq!(
            connack.code,
            ConnectReturnCode::Accepted,
            "{id}: the CONNECT was refused"
        );
        (peer, connack.session_present)
    }

    /// The name used in failure messages (the client id, for connected peers).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long each read waits from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Encodes and writes a packet; fails the test if the write fails.
    pub fn send(&mut self, packet: impl Into<Packet>) {
        let bytes = self.encode(packet);
        self.send_bytes(&bytes);
    }

    /// Writes bytes as they are; fails the test if the write fails.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("{}: write to the broker failed: {e}", self.name);
        }
    }

    /// Writes a packet, reporting a failed write (the broker may have closed).
    pub fn try_send(&mut self, packet: impl Into<Packet>) -> std::io::Result<()> {
        let bytes = self.encode(packet);
        self.stream.write_all(&bytes)
    }

    /// The bytes of `packet` for this peer's version.
    fn encode(&self, packet: impl Into<Packet>) -> Vec<u8> {
        let mut bytes = Vec::new();
        packet
            .into()
            .encode_for(self.version, &mut bytes)
            .expect("test packets encode");
        bytes
    }

    /// The next packet, held or read, or what happened instead.
    pub fn next(&mut self) -> Next {
        match self.pending.pop_front() {
            Some(packet) => Next::Packet(packet),
            None => self.read(self.timeout),
        }
    }

    /// Like [`Peer::next`], waiting at most `timeout` for a new packet.
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

    /// Reads until the broker closes, skipping what it still sends (a bounded
    /// number of packets).
    pub fn expect_closed_eventually(&mut self, what: &str) {
        for _ in 0..100_000 {
            match self.next() {
                Next::Closed => return,
                Next::Packet(_) => {}
                Next::Silent => panic!(
                    "{}: expected the broker to close the connection ({what}), it stayed silent for {:?}",
                    self.name, self.timeout
                ),
            }
        }
        panic!(
            "{}: the broker kept sending instead of closing ({what})",
            self.name
        );
    }

    /// Waits for the first packet that `wanted` accepts, holding every other packet
    /// for [`Peer::next`]. Fails the test on close or silence.
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
    /// included). The broker answers in order, so whatever it meant to send this
    /// client before the PINGREQ arrived is in the list.
    pub fn ping(&mut self) -> Vec<Packet> {
        self.send(Packet::PingReq);
        let mut before = Vec::new();
        before.extend(self.pending.drain(..));
        loop {
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
    }

    /// PINGREQ, waiting for PINGRESP and holding what comes before it for
    /// [`Peer::next`]. The broker handles a connection's packets in order, so
    /// everything this client sent before has been acted on when this returns.
    pub fn sync(&mut self) {
        self.send(Packet::PingReq);
        self.wait_for("PINGRESP", |p| matches!(p, Packet::PingResp));
    }

    /// The PUBLISH packets among [`Peer::ping`]'s; fails the test on any packet
    /// that is neither.
    pub fn publishes(&mut self) -> Vec<Publish> {
        self.ping()
            .into_iter()
            .map(|packet| match packet {
                Packet::Publish(publish) => publish,
                other => panic!("{}: expected only PUBLISH, got {other}", self.name),
            })
            .collect()
    }

    /// Sends a SUBSCRIBE and returns the return codes of its SUBACK (as bytes).
    pub fn subscribe(&mut self, packet_id: u16, filters: &[(&str, QoS)]) -> Vec<u8> {
        self.send(subscribe_packet(packet_id, filters));
        self.suback(packet_id)
    }

    /// Waits for the SUBACK of `packet_id` and returns its return codes.
    pub fn suback(&mut self, packet_id: u16) -> Vec<u8> {
        let what = format!("SUBACK {packet_id}");
        match self.wait_for(
            &what,
            |p| matches!(p, Packet::SubAck(s) if s.packet_id.get() == packet_id),
        ) {
            Packet::SubAck(suback) => suback
                .return_codes()
                .iter()
                .map(|code| SubscribeReturnCode::to_u8(*code))
                .collect(),
            _ => unreachable!("wait_for returns what it was asked for"),
        }
    }

    /// Sends an UNSUBSCRIBE and waits for its UNSUBACK.
    pub fn unsubscribe(&mut self, packet_id: u16, filters: &[&str]) {
        self.send(unsubscribe_packet(packet_id, filters));
        let what = format!("UNSUBACK {packet_id}");
        self.wait_for(
            &what,
            |p| matches!(p, Packet::UnsubAck(a) if a.packet_id.get() == packet_id),
        );
    }

    /// Sends a PUBLISH; `packet_id` is ignored at QoS 0.
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool, packet_id: u16) {
        self.send(publish(topic, payload, qos, retain, packet_id));
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub fn publish1(&mut self, topic: &str, payload: &[u8], retain: bool, packet_id: u16) {
        self.publish(topic, payload, QoS::AtLeastOnce, retain, packet_id);
        self.puback(packet_id);
    }

    /// Waits for the PUBACK of `packet_id`.
    pub fn puback(&mut self, packet_id: u16) {
        let what = format!("PUBACK {packet_id}");
        self.wait_for(
            &what,
            |p| matches!(p, Packet::PubAck(a) if a.packet_id.get() == packet_id),
        );
    }

    /// Sends DISCONNECT and waits until the broker closes.
    pub fn disconnect(mut self) {
        self.send(Packet::Disconnect(Default::default()));
        self.expect_closed_eventually("after DISCONNECT");
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

/// A PUBLISH; `packet_id` is ignored for QoS 0.
pub fn publish(topic: &str, payload: &[u8], qos: QoS, retain: bool, packet_id: u16) -> Publish {
    let topic = TopicName::new(topic).expect("test topics are valid topic names");
    let mut publish = Publish::new(topic, Bytes::copy_from_slice(payload), qos, retain);
    if qos != QoS::AtMostOnce {
        publish.packet_id = Some(PacketId::new(packet_id).expect("packet ids are not 0"));
    }
    publish
}

/// A CONNECT with a user name and password.
pub fn login(client_id: &str, clean: bool, username: &str, password: &[u8]) -> Connect {
    let mut connect = Connect::new(client_id);
    connect.clean_session = clean;
    connect.username = Some(username.to_string());
    connect.password = Some(Bytes::copy_from_slice(password));
    connect
}

/// A one-line account of what happened, for failure messages.
pub fn describe(next: &Next) -> String {
    match next {
        Next::Packet(packet) => packet.to_string(),
        Next::Closed => "the connection closed".to_string(),
        Next::Silent => "nothing before the read timed out".to_string(),
    }
}

/// Reads from `stream` until `decoder` has a whole packet in `buffer`, the broker
/// closes the connection, or `timeout` passes; `name` names the peer in a panic.
fn read_packet(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    buffer: &mut BytesMut,
    timeout: Duration,
    name: &str,
) -> Next {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match decoder.decode(buffer) {
            Ok(Some(packet)) => return Next::Packet(packet),
            Ok(None) => {}
            Err(e) => panic!("{name}: the broker sent a malformed packet: {e}"),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Next::Silent;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return Next::Closed,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Next::Silent
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Next::Closed
            }
            Err(e) => panic!("{name}: read failed: {e}"),
        }
    }
}
