//! A lean MQTT connection for load generation: a transport connection (TCP, TLS or
//! WebSocket), a decoder and a write buffer, driven by the bench's own threads. Built
//! on `wren::protocol` and `wren::transport` only, so the generator can load any
//! MQTT 3.1.1 broker and costs as little as possible.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use wren::protocol::{ConnAck, Connect, ConnectReturnCode, Decoder, Packet};
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
}

/// The receiving side: the transport's reader and a decoder.
pub struct Inbound {
    reader: Reader,
    decoder: Decoder,
    buffer: BytesMut,
}

/// The sending side: a write buffer in front of the transport's writer, which a
/// second thread may share (a publisher's acknowledgement reader sends PUBREL).
pub struct Outbound {
    writer: Arc<Mutex<Writer>>,
    out: Vec<u8>,
}

impl Wire {
    /// Connects and completes CONNECT / CONNACK.
    pub fn connect(
        target: &Dialer,
        client_id: &str,
        keep_alive: u16,
        timeout: Duration,
    ) -> Result<Wire, WireError> {
        Wire::connect_with(target, client_id, keep_alive, timeout, true)
    }

    /// Connects with a persistent session (CleanSession 0) when `clean` is false.
    pub fn connect_with(
        target: &Dialer,
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
                decoder: Decoder::new().with_max_packet_size(16 * 1024 * 1024),
                buffer: BytesMut::with_capacity(64 * 1024),
            },
            outbound: Outbound {
                writer: Arc::new(Mutex::new(connection.writer)),
                out: Vec::with_capacity(64 * 1024),
            },
            closer: connection.closer,
        };
        let mut connect = Connect::new(client_id);
        connect.keep_alive = keep_alive;
        connect.clean_session = clean;
        wire.queue(&Packet::from(connect));
        wire.flush()?;
        match wire.recv(Some(Instant::now() + timeout))? {
            Some(Packet::ConnAck(ConnAck { code, .. })) if code == ConnectReturnCode::Accepted => {
                Ok(wire)
            }
            Some(Packet::ConnAck(refused)) => Err(WireError(format!(
                "{client_id}: broker refused: {}",
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

    pub fn try_decode(&mut self) -> Result<Option<Packet>, WireError> {
        self.inbound.try_decode()
    }
}

impl Outbound {
    /// Adds a packet to the write buffer.
    pub fn queue(&mut self, packet: &Packet) {
        // Packets built by the bench are always valid.
        let _ = packet.encode(&mut self.out);
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
                Filled::Closed => return Err(WireError("broker closed the connection".into())),
            }
        }
    }

    /// A packet already buffered, if there is one; never waits.
    pub fn try_decode(&mut self) -> Result<Option<Packet>, WireError> {
        self.decoder
            .decode(&mut self.buffer)
            .map_err(|e| WireError(format!("broker sent a bad packet: {e}")))
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
