//! The connection to the broker: dialling it (TCP, TLS, WebSocket, through
//! [`crate::transport`]), the CONNECT/CONNACK handshake, writing packets, and the
//! reader thread.
//!
//! Each packet sent or received is logged at `debug` level with target
//! `wren::client::packets`, in mosquitto's words
//! (`Client wren-0a1b sending PUBLISH (d0, q1, r0, m1, 'a/b', ... (5 bytes))`).

use std::io::{ErrorKind, Read, Write};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::{Receiver, Sender};

use super::packet_log::log_packet;
use super::{ClientOptions, Error, Wait};
use crate::protocol::{
    ConnAck, Connect, ConnectReturnCode, Decoder, Packet, Properties, ProtocolVersion, ReasonCode,
    TopicName, Will, MAX_REMAINING_LENGTH,
};
use crate::transport::{self, Closer, Dialer, Reader, Writer};

/// How many decoded packets may wait between the reader thread and the connection
/// thread. A full queue stops the reader, and TCP slows the broker down.
const INCOMING_QUEUE: usize = 256;

/// What the reader thread reports.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A packet from the broker.
    Packet(Packet),
    /// The connection is over: the broker closed it, or it broke, or it sent bytes
    /// that are not MQTT.
    Closed(Error),
}

/// The client's live link to the broker: a [`transport::Connection`] whose CONNECT
/// the broker accepted, with the reader thread feeding [`incoming`](Self::incoming)
/// and a buffer of bytes to write. Dropped and replaced on every reconnect.
pub(crate) struct Link {
    writer: Writer,
    closer: Closer,
    address: String,
    client_id: String,
    /// Packets read by the reader thread.
    pub incoming: Receiver<Incoming>,
    reader: Option<JoinHandle<()>>,
    /// Bytes to be written by the next [`flush`](Self::flush).
    out: Vec<u8>,
    /// The version every packet is encoded for.
    version: ProtocolVersion,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The broker's answer to CONNECT, and the link it accepted.
pub(crate) struct Opened {
    pub link: Link,
    pub session_present: bool,
    /// What the broker said of this connection.
    pub terms: BrokerTerms,
}

/// What an MQTT 5 broker's CONNACK says of the connection; what a client assumes
/// when it says nothing (and over MQTT 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BrokerTerms {
    /// How many QoS 1/2 messages it takes unacknowledged (Receive Maximum).
    pub receive_maximum: u16,
    /// The largest packet it takes (Maximum Packet Size).
    pub max_packet_size: usize,
    /// The keep-alive it holds the client to instead of the one asked for (Server
    /// Keep Alive) [MQTT-3.2.2-21].
    pub keep_alive: Option<Duration>,
}

impl BrokerTerms {
    fn from_connack(properties: &Properties) -> BrokerTerms {
        BrokerTerms {
            receive_maximum: properties.receive_maximum.unwrap_or(u16::MAX),
            max_packet_size: properties
                .maximum_packet_size
                .map_or(MAX_REMAINING_LENGTH + 5, |size| size as usize),
            keep_alive: properties
                .server_keep_alive
                .map(|seconds| Duration::from_secs(seconds.into())),
        }
    }
}

/// Dials the broker, sends CONNECT and waits for CONNACK. A refusal becomes
/// [`Error::ConnectionRefused`].
pub(crate) fn open(options: &ClientOptions, client_id: &str) -> Result<Opened, Error> {
    let address = options.address();
    let dialer = Dialer {
        timeout: options.connect_timeout,
        tls: options.tls.clone(),
        path: options.websocket_path.clone(),
        ..Dialer::new(options.kind, options.host.clone(), options.port)
    };
    let transport::Connection {
        mut reader,
        mut writer,
        closer,
        ..
    } = dialer
        .connect()
        .map_err(|error| dial_error(&address, error))?;
    let io = |e| Error::io(&address, e);
    writer
        .set_write_timeout(Some(
            options.operation_timeout.max(Duration::from_millis(100)),
        ))
        .map_err(io)?;

    let connect = Packet::from(connect_packet(options, client_id)?);
    let mut bytes = Vec::new();
    connect.encode_for(options.protocol, &mut bytes)?;
    log_packet(client_id, true, &connect);
    // [MQTT-3.1.0-1]: CONNECT is the first packet on a new connection.
    writer.write_all(&bytes).map_err(io)?;

    let mut decoder = Decoder::new()
        .with_max_packet_size(options.max_packet_size)
        .with_version(options.protocol);
    let mut buffer = BytesMut::with_capacity(8 * 1024);
    let deadline = Instant::now() + options.connect_timeout;
    let connack = loop {
        if let Some(packet) = decoder.decode(&mut buffer)? {
            log_packet(client_id, false, &packet);
            match packet {
                Packet::ConnAck(connack) => break connack,
                // [MQTT-3.2.0-1]: the first packet from the server is CONNACK.
                other => return Err(Error::UnexpectedPacket(other.packet_type())),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(Wait::ConnAck));
        }
        reader.set_read_timeout(Some(left)).map_err(io)?;
        match read_some(&mut reader, &mut buffer) {
            Ok(0) => {
                return Err(io(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the broker closed the connection before CONNACK",
                )))
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Error::Timeout(Wait::ConnAck))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    };
    let ConnAck {
        session_present,
        code,
        properties,
    } = connack;
    if code != ReasonCode::SUCCESS {
        closer.close();
        return Err(Error::ConnectionRefused(ConnectReturnCode::from_reason(
            code,
        )));
    }
    // The reader blocks until data comes or the socket is shut down; keep-alive
    // notices a silent broker.
    reader.set_read_timeout(None).map_err(io)?;
    let (sender, incoming) = crossbeam_channel::bounded(INCOMING_QUEUE);
    let reader = std::thread::Builder::new()
        .name(format!("wren-reader {client_id}"))
        .spawn({
            let client_id = client_id.to_owned();
            let address = address.clone();
            move || read_loop(reader, buffer, decoder, sender, &client_id, &address)
        })
        .map_err(io)?;
    Ok(Opened {
        link: Link {
            writer,
            closer,
            address,
            client_id: client_id.to_owned(),
            incoming,
            reader: Some(reader),
            out: Vec::with_capacity(16 * 1024),
            version: options.protocol,
        },
        session_present,
        terms: BrokerTerms::from_connack(crate::protocol::properties::or_empty(&properties)),
    })
}

/// Sorts the transport's errors into the client's: the network's own failures stay
/// I/O errors, TLS and WebSocket failures say which handshake failed.
fn dial_error(address: &str, error: transport::Error) -> Error {
    match error {
        transport::Error::Io { source, .. } if source.kind() == ErrorKind::TimedOut => {
            Error::Timeout(Wait::TcpConnect)
        }
        transport::Error::Io { source, .. } => Error::io(address, source),
        transport::Error::Resolve(host) => Error::io(
            address,
            std::io::Error::new(ErrorKind::NotFound, format!("cannot resolve host '{host}'")),
        ),
        other => Error::Transport {
            address: address.to_owned(),
            source: other,
        },
    }
}

fn connect_packet(options: &ClientOptions, client_id: &str) -> Result<Connect, Error> {
    let properties = (options.protocol == ProtocolVersion::V5).then(|| {
        let mut properties = Properties::new();
        // Absent means 0: the session ends with the connection [MQTT-3.1.2-11].
        let expiry = options.session_expiry();
        properties.session_expiry_interval = (expiry > 0).then_some(expiry);
        // The broker must not send more than the decoder takes [MQTT-3.1.2-24].
        if options.max_packet_size < MAX_REMAINING_LENGTH + 5 {
            properties.maximum_packet_size = Some(options.max_packet_size as u32);
        }
        Box::new(properties)
    });
    let will = match &options.will {
        Some(will) => Some(Will {
            topic: TopicName::new(will.topic.as_str()).map_err(|e| Error::topic(&will.topic, e))?,
            payload: will.payload.clone(),
            qos: will.qos,
            retain: will.retain,
            properties: None,
        }),
        None => None,
    };
    Ok(Connect {
        protocol: options.protocol,
        clean_session: options.clean_session,
        keep_alive: u16::try_from(options.keep_alive.as_secs()).unwrap_or(u16::MAX),
        client_id: client_id.to_owned(),
        will,
        username: options.username.clone(),
        password: options.password.clone(),
        properties: properties.filter(|properties| !properties.is_empty()),
    })
}

fn read_some(reader: &mut Reader, buffer: &mut BytesMut) -> std::io::Result<usize> {
    let mut chunk = [0u8; 8 * 1024];
    let n = reader.read(&mut chunk)?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// The reader thread: read, decode, hand over, until the connection ends.
fn read_loop(
    mut reader: Reader,
    mut buffer: BytesMut,
    mut decoder: Decoder,
    sender: Sender<Incoming>,
    client_id: &str,
    address: &str,
) {
    let reason = loop {
        // Take every whole packet already buffered before reading again.
        match decoder.decode(&mut buffer) {
            Ok(Some(Packet::Disconnect(disconnect))) => {
                // MQTT 5: the broker says why it ends the connection.
                log_packet(client_id, false, &Packet::Disconnect(disconnect.clone()));
                log::warn!(
                    "Client {client_id}: the broker disconnected it: {}",
                    disconnect.reason_code
                );
                break Error::DisconnectedByBroker(disconnect.reason_code);
            }
            Ok(Some(packet)) => {
                log_packet(client_id, false, &packet);
                if sender.send(Incoming::Packet(packet)).is_err() {
                    // The connection thread has let go of this connection.
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                log::warn!("Client {client_id}: the broker sent a malformed packet, disconnecting: {error}");
                break Error::Protocol(error);
            }
        }
        match read_some(&mut reader, &mut buffer) {
            Ok(0) => {
                break Error::io(
                    address,
                    std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the broker closed the connection",
                    ),
                )
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Error::io(address, e),
        }
    };
    let _ = sender.send(Incoming::Closed(reason));
}

impl Link {
    /// Adds `packet` to what the next [`flush`](Self::flush) writes.
    pub fn queue(&mut self, packet: &Packet) -> Result<(), Error> {
        packet.encode_for(self.version, &mut self.out)?;
        log_packet(&self.client_id, true, packet);
        Ok(())
    }

    /// Writes everything queued, in one write (one WebSocket frame).
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.writer.write_all(&self.out);
        self.out.clear();
        result.map_err(|e| Error::io(&self.address, e))
    }

    /// Says goodbye at the transport's level (TLS close_notify, WebSocket close),
    /// after DISCONNECT.
    pub fn close_gracefully(&mut self) {
        self.writer.close_gracefully();
    }

    /// Closes the socket and returns the reader thread, which ends as soon as the
    /// last receiver of [`incoming`](Self::incoming) is gone (it may be blocked
    /// handing over a packet until then): join it only after dropping every clone.
    pub fn close(mut self) -> Option<JoinHandle<()>> {
        self.closer.close();
        let (_, empty) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.incoming, empty));
        self.reader.take()
    }
}
