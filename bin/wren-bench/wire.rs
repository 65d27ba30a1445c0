//! A lean MQTT connection for load generation: a socket, a decoder and a write
//! buffer, driven by the bench's own threads. Built on `wren::protocol` only, so the
//! generator can load any MQTT 3.1.1 broker and costs as little as possible.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use wren::protocol::{ConnAck, Connect, ConnectReturnCode, Decoder, Packet};

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

/// One MQTT connection.
pub struct Wire {
    pub stream: TcpStream,
    decoder: Decoder,
    buffer: BytesMut,
    out: Vec<u8>,
}

impl Wire {
    /// Connects and completes CONNECT / CONNACK.
    pub fn connect(
        address: SocketAddr,
        client_id: &str,
        keep_alive: u16,
        timeout: Duration,
    ) -> Result<Wire, WireError> {
        let stream = TcpStream::connect_timeout(&address, timeout)
            .map_err(|e| WireError(format!("connect to {address}: {e}")))?;
        stream.set_nodelay(true)?;
        let mut wire = Wire {
            stream,
            decoder: Decoder::new().max_packet_size(16 * 1024 * 1024),
            buffer: BytesMut::with_capacity(64 * 1024),
            out: Vec::with_capacity(64 * 1024),
        };
        let mut connect = Connect::new(client_id);
        connect.keep_alive = keep_alive;
        wire.queue(&Packet::Connect(connect));
        wire.flush()?;
        match wire.recv(Some(Instant::now() + timeout))? {
            Some(Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Accepted,
                ..
            })) => Ok(wire),
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

    /// Adds a packet to the write buffer.
    pub fn queue(&mut self, packet: &Packet) {
        // Packets built by the bench are always valid.
        let _ = packet.encode(&mut self.out);
    }

    /// Bytes waiting in the write buffer.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// Writes the buffer out.
    pub fn flush(&mut self) -> Result<(), WireError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Writes the buffer through a socket handle shared with another thread.
    pub fn flush_through(
        &mut self,
        writer: &parking_lot::Mutex<TcpStream>,
    ) -> Result<(), WireError> {
        if !self.out.is_empty() {
            writer.lock().write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// A second handle on the same connection, with a decoder of its own, for a
    /// thread that only reads.
    pub fn split_reader(&self) -> Result<Wire, WireError> {
        Ok(Wire {
            stream: self.stream.try_clone()?,
            decoder: self.decoder.clone(),
            buffer: BytesMut::with_capacity(64 * 1024),
            out: Vec::new(),
        })
    }

    /// The next packet, waiting until `deadline` (`None`: forever). `Ok(None)` when
    /// the deadline passed.
    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<Packet>, WireError> {
        loop {
            if let Some(packet) = self
                .decoder
                .decode(&mut self.buffer)
                .map_err(|e| WireError(format!("broker sent a bad packet: {e}")))?
            {
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
            self.stream.set_read_timeout(timeout)?;
            match self.fill()? {
                Filled::Bytes | Filled::TimedOut => {} // the loop checks the deadline
                Filled::Closed => return Err(WireError("broker closed the connection".into())),
            }
        }
    }

    /// Whether a whole packet is already buffered (so `recv` will not block).
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
        let result = self.stream.read(&mut self.buffer[start..]);
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
