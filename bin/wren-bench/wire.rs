//! A lean MQTT connection for load generation: a transport connection (TCP, TLS or
//! WebSocket), a decoder and a write buffer, driven by the bench's own threads. Built
//! on `wren::protocol` and `wren::transport` only, so the generator can load any
//! MQTT 3.1.1 or MQTT 5 broker and costs as little as possible.
//!
//! The version is chosen once per connection: the CONNECT says it, the decoder is
//! told it, and every packet is encoded for it. Nothing else differs per packet.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use wren::protocol::{
    ConnAck, Connect, ConnectReturnCode, Decoder, Disconnect, Packet, Properties, ProtocolVersion,
    ReasonCode,
};
use wren::transport::{Closer, Dialer, Reader, Writer};

/// What went wrong talking to the broker.
#[derive(Debug)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError(e.to_string())
    }
}

/// A reason code as the bench reports it: `0x93 receive maximum exceeded`.
pub fn describe(code: ReasonCode) -> String {
    match code.name() {
        Some(name) => format!("0x{:02X} {}", code.0, name.to_lowercase()),
        None => format!("0x{:02X}", code.0),
    }
}

/// The largest Receive Maximum there is, and what a CONNACK without one means
/// (MQTT 5, 3.2.2.3.3); also what a 3.1.1 connection is given, which has no limit
/// but the bench's own `--inflight`.
pub const RECEIVE_MAXIMUM_ABSENT: u16 = u16::MAX;

/// What one read from the socket gave.
enum Filled {
    Bytes,
    TimedOut,
    Closed,
}

/// One MQTT connection, over any transport.
pub struct Wire {
    pub inbound: Inbound,
    pub outbound: Outbound,
    pub closer: Closer,
    /// The limits the broker's CONNACK announced (MQTT 5; none on 3.1.1).
    pub limits: Limits,
}

/// What an MQTT 5 CONNACK told the client it may do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// QoS 1/2 messages the broker accepts unacknowledged from this client: more
    /// and it disconnects with 0x93.
    pub receive_maximum: u16,
    /// The largest packet the broker accepts, when it said.
    pub maximum_packet_size: Option<u32>,
}

impl Limits {
    fn from(properties: &Properties) -> Limits {
        Limits {
            receive_maximum: properties.receive_maximum.unwrap_or(RECEIVE_MAXIMUM_ABSENT),
            maximum_packet_size: properties.maximum_packet_size,
        }
    }
}

/// The receiving side: the transport's reader and a decoder.
pub struct Inbound {
    reader: Reader,
    decoder: Decoder,
    buffer: BytesMut,
    /// The connection's client id, for error messages.
    client_id: String,
}

/// The sending side: a write buffer in front of the transport's writer, which a
/// second thread may share (a publisher's acknowledgement reader sends PUBREL).
pub struct Outbound {
    writer: Arc<Mutex<Writer>>,
    out: Vec<u8>,
    /// What every packet is encoded for.
    version: ProtocolVersion,
}

impl Wire {
    /// Connects over `version` and completes CONNECT / CONNACK.
    pub fn connect(
        target: &Dialer,
        version: ProtocolVersion,
        client_id: &str,
        keep_alive: u16,
        timeout: Duration,
    ) -> Result<Wire, WireError> {
        Wire::connect_with(target, version, client_id, keep_alive, timeout, true)
    }

    /// Connects with a persistent session (CleanSession 0, or for MQTT 5 Clean
    /// Start 0 and a session that never expires) when `clean` is false.
    pub fn connect_with(
        target: &Dialer,
        version: ProtocolVersion,
        client_id: &str,
        keep_alive: u16,
        timeout: Duration,
        clean: bool,
    ) -> Result<Wire, WireError> {
        let connection = target
            .connect()
            .map_err(|e| WireError(format!("connect to {}:{}: {e}", target.host, target.port)))?;
        let mut wire = Wire {
            inbound: Inbound {
                reader: connection.reader,
                // A client's decoder is told the version it asked for: nothing in
                // the broker's packets says it.
                decoder: Decoder::new()
                    .with_max_packet_size(16 * 1024 * 1024)
                    .with_version(version),
                buffer: BytesMut::with_capacity(64 * 1024),
                client_id: client_id.to_string(),
            },
            outbound: Outbound {
                writer: Arc::new(Mutex::new(connection.writer)),
                out: Vec::with_capacity(64 * 1024),
                version,
            },
            closer: connection.closer,
            limits: Limits::from(&Properties::default()),
        };
        let mut connect = Connect::new(client_id);
        connect.protocol = version;
        connect.keep_alive = keep_alive;
        connect.clean_session = clean;
        if !clean && version == ProtocolVersion::V5 {
            // An MQTT 5 session ends with the connection unless it is given an
            // expiry; the largest value never expires, as a 3.1.1 session.
            connect.properties = Some(Box::new(Properties {
                session_expiry_interval: Some(u32::MAX),
                ..Properties::default()
            }));
        }
        wire.queue(&Packet::from(connect));
        wire.flush()?;
        match wire.recv(Some(Instant::now() + timeout))? {
            Some(Packet::ConnAck(ConnAck {
                code, properties, ..
            })) if code == ConnectReturnCode::Accepted => {
                if version == ProtocolVersion::V5 {
                    wire.limits =
                        Limits::from(properties.as_deref().unwrap_or(&Properties::default()));
                }
                Ok(wire)
            }
            Some(Packet::ConnAck(refused)) => Err(WireError(format!(
                "{client_id}: broker refused the {version} CONNECT: {}",
                refused.code
            ))),
            Some(other) => Err(WireError(format!(
                "{client_id}: expected CONNACK, got {other}"
            ))),
            None => Err(WireError(format!("{client_id}: no CONNACK in time"))),
        }
    }

    pub fn queue(&mut self, packet: &Packet) {
        self.outbound.queue(packet);
    }

    pub fn flush(&mut self) -> Result<(), WireError> {
        self.outbound.flush()
    }

    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<Packet>, WireError> {
        self.inbound.recv(deadline)
    }

    /// QoS 1/2 messages the broker accepts unacknowledged, as its CONNACK said
    /// (65,535 when it did not say, and on 3.1.1).
    pub fn receive_maximum(&self) -> u16 {
        self.limits.receive_maximum
    }

    pub fn try_decode(&mut self) -> Result<Option<Packet>, WireError> {
        self.inbound.try_decode()
    }
}

impl Outbound {
    /// Adds a packet to the write buffer.
    pub fn queue(&mut self, packet: &Packet) {
        // Packets built by the bench are always valid. (`encode` is `encode_for`
        // 3.1.1: the version costs nothing on the 3.1.1 path.)
        let _ = packet.encode_for(self.version, &mut self.out);
    }

    /// Bytes waiting in the write buffer.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// Writes the buffer out in one write.
    pub fn flush(&mut self) -> Result<(), WireError> {
        if !self.out.is_empty() {
            self.writer.lock().write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Another sending handle on the same connection, with its own buffer.
    pub fn handle(&self) -> Outbound {
        Outbound {
            writer: Arc::clone(&self.writer),
            out: Vec::new(),
            version: self.version,
        }
    }
}

impl Inbound {
    /// The next packet, waiting until `deadline` (`None`: forever). `Ok(None)` when
    /// the deadline passed.
    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<Packet>, WireError> {
        loop {
            if let Some(packet) = self.try_decode()? {
                return Ok(Some(packet));
            }
            let timeout = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
                None => None,
            };
            self.reader.set_read_timeout(timeout)?;
            match self.fill()? {
                Filled::Bytes | Filled::TimedOut => {} // the loop checks the deadline
                Filled::Closed => {
                    return Err(WireError(format!(
                        "broker closed the connection of {}",
                        self.client_id
                    )))
                }
            }
        }
    }

    /// A packet already buffered, if there is one; never waits. The broker's
    /// DISCONNECT (an MQTT 5 server sends one, with a reason code, before it
    /// closes) is an error that says why.
    pub fn try_decode(&mut self) -> Result<Option<Packet>, WireError> {
        match self.decoder.decode(&mut self.buffer) {
            Ok(Some(Packet::Disconnect(disconnect))) => Err(self.disconnected(&disconnect)),
            Ok(packet) => Ok(packet),
            Err(e) => Err(WireError(format!(
                "broker sent {} a bad packet: {e}",
                self.client_id
            ))),
        }
    }

    /// `broker disconnected wren-bench-pub-3: 0x93 receive maximum exceeded`, with
    /// the broker's reason string when it gave one.
    fn disconnected(&self, disconnect: &Disconnect) -> WireError {
        let mut message = format!(
            "broker disconnected {}: {}",
            self.client_id,
            describe(disconnect.reason_code)
        );
        if let Some(reason) = &disconnect.properties().reason_string {
            message += &format!(" ({reason})");
        }
        WireError(message)
    }

    fn fill(&mut self) -> Result<Filled, WireError> {
        self.buffer.reserve(64 * 1024);
        let start = self.buffer.len();
        let capacity = self.buffer.capacity();
        self.buffer.resize(capacity, 0);
        let result = self.reader.read(&mut self.buffer[start..]);
        let read = *result.as_ref().unwrap_or(&0);
        self.buffer.truncate(start + read);
        match result {
            Ok(0) => Ok(Filled::Closed),
            Ok(_) => Ok(Filled::Bytes),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(Filled::TimedOut)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The version as the bench labels its results: "3.1.1" or "5".
pub fn version_label(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V5 => "5",
        _ => "3.1.1",
    }
}

/// Parses `--version`: `3.1.1`, `4` or `mqttv311` for MQTT 3.1.1; `5` or `mqttv5`
/// for MQTT 5 (mosquitto's `-V` spellings, and the protocol levels).
pub fn parse_version(text: &str) -> Result<ProtocolVersion, String> {
    match text.to_ascii_lowercase().as_str() {
        "3.1.1" | "4" | "mqttv311" => Ok(ProtocolVersion::V3_1_1),
        "5" | "mqttv5" => Ok(ProtocolVersion::V5),
        _ => Err(format!(
            "option --version: '{text}' is not 3.1.1 (4, mqttv311) or 5 (mqttv5)"
        )),
    }
}
