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
    AliasError, Auth, ConnAck, Connect, Decoder, IncomingAliases, OutgoingAliases, Packet,
    Properties, PropertyContext, ProtocolVersion, QoS, ReasonCode, TopicName, Will,
    MAX_REMAINING_LENGTH,
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
    /// MQTT 5: the broker broke a rule the client answers with a DISCONNECT
    /// carrying `code` (a topic alias out of range, or unknown), before closing.
    Violation { code: ReasonCode, error: Error },
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
    /// MQTT 5: the topic aliases put on outgoing messages, when the client uses
    /// them and the broker takes them.
    aliases: Option<OutgoingAliases>,
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
    /// The version spoken: the one asked for, or 3.1.1 after falling back.
    pub version: ProtocolVersion,
    /// MQTT 5: the client id the broker gave a client that connected without one.
    pub assigned_client_id: Option<String>,
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
    /// The highest QoS it takes in a PUBLISH (Maximum QoS) [MQTT-3.2.2-11].
    pub maximum_qos: QoS,
    /// Whether it takes retained messages (Retain Available) [MQTT-3.2.2-14].
    pub retain_available: bool,
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
            maximum_qos: properties
                .maximum_qos
                .and_then(QoS::from_u8)
                .unwrap_or(QoS::ExactlyOnce),
            retain_available: properties.retain_available != Some(0),
        }
    }
}

/// Dials the broker, sends CONNECT and waits for CONNACK. A refusal becomes
/// [`Error::ConnectionRefused`]. With
/// [`with_protocol_fallback`](ClientOptions::with_protocol_fallback), a broker that
/// refuses MQTT 5 is dialled again and asked in 3.1.1; [`Opened::version`] says
/// which was spoken.
pub(crate) fn open(options: &ClientOptions, client_id: &str) -> Result<Opened, Error> {
    let falls_back = options.protocol_fallback && options.protocol == ProtocolVersion::V5;
    match open_as(options, client_id, options.protocol) {
        // The 3.1.1 refusal, or a broker that closes the connection without a word,
        // as some older ones do on a protocol level they do not know.
        Err(Error::ConnectionRefused { code, .. })
            if falls_back && code == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION =>
        {
            open_v311_instead(options, client_id)
        }
        Err(Error::Io { source, .. })
            if falls_back && source.kind() == ErrorKind::UnexpectedEof =>
        {
            open_v311_instead(options, client_id)
        }
        result => result,
    }
}

/// [`open`] again in 3.1.1, for a broker that would not take MQTT 5.
fn open_v311_instead(options: &ClientOptions, client_id: &str) -> Result<Opened, Error> {
    log::info!(
        "Client {client_id}: {} does not speak MQTT 5; connecting with MQTT 3.1.1",
        options.address()
    );
    let id = match client_id {
        // 3.1.1 gives an empty id only to a clean session; make one up.
        "" => super::options::random_client_id(),
        id => id.to_owned(),
    };
    open_as(options, &id, ProtocolVersion::V3_1_1)
}

/// [`open`], speaking `version`.
fn open_as(
    options: &ClientOptions,
    client_id: &str,
    version: ProtocolVersion,
) -> Result<Opened, Error> {
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

    let mut decoder = Decoder::new()
        .with_max_packet_size(options.max_packet_size)
        .with_version(version);
    let mut buffer = BytesMut::with_capacity(8 * 1024);
    let mut wire = Wire {
        reader: &mut reader,
        writer: &mut writer,
        decoder: &mut decoder,
        buffer: &mut buffer,
        address: &address,
    };
    let connack = match handshake(&mut wire, options, client_id, version) {
        Ok(connack) => connack,
        Err(error) => {
            closer.close();
            return Err(error);
        }
    };
    let ConnAck {
        session_present,
        code,
        properties,
    } = connack;
    let properties = properties.map(|boxed| *boxed).unwrap_or_default();
    if code != ReasonCode::SUCCESS {
        closer.close();
        return Err(Error::ConnectionRefused {
            code,
            reason: properties.reason_string,
        });
    }
    // The reader blocks until data comes or the socket is shut down; keep-alive
    // notices a silent broker.
    reader.set_read_timeout(None).map_err(io)?;
    let assigned_client_id = properties.assigned_client_identifier.clone();
    let client_id = assigned_client_id.as_deref().unwrap_or(client_id);
    let (sender, incoming) = crossbeam_channel::bounded(INCOMING_QUEUE);
    let aliases = IncomingAliases::new(match version {
        ProtocolVersion::V5 => options.topic_alias_maximum,
        _ => 0,
    });
    let reader = std::thread::Builder::new()
        .name(format!("wren-reader {client_id}"))
        .spawn({
            let client_id = client_id.to_owned();
            let address = address.clone();
            move || {
                let mut source = Source {
                    reader,
                    buffer,
                    decoder,
                    aliases,
                };
                read_loop(&mut source, sender, &client_id, &address)
            }
        })
        .map_err(io)?;
    let terms = BrokerTerms::from_connack(&properties);
    let outgoing_aliases = match (version, options.outgoing_topic_aliases) {
        (ProtocolVersion::V5, true) => properties.topic_alias_maximum.unwrap_or(0),
        _ => 0,
    };
    Ok(Opened {
        link: Link {
            writer,
            closer,
            address,
            client_id: client_id.to_owned(),
            incoming,
            reader: Some(reader),
            out: Vec::with_capacity(16 * 1024),
            version,
            aliases: (outgoing_aliases > 0).then(|| OutgoingAliases::new(outgoing_aliases)),
        },
        session_present,
        terms,
        version,
        assigned_client_id,
    })
}

/// The two halves of a new connection and what has been read from it, while
/// CONNECT is answered.
struct Wire<'a> {
    reader: &'a mut Reader,
    writer: &'a mut Writer,
    decoder: &'a mut Decoder,
    buffer: &'a mut BytesMut,
    address: &'a str,
}

/// Sends CONNECT and waits for the CONNACK (within the connect timeout), answering
/// MQTT 5 authentication challenges on the way. Bytes after the CONNACK stay in
/// the buffer, for the reader thread.
fn handshake(
    wire: &mut Wire<'_>,
    options: &ClientOptions,
    client_id: &str,
    version: ProtocolVersion,
) -> Result<ConnAck, Error> {
    let io = |e| Error::io(wire.address, e);
    let connect = Packet::from(connect_packet(options, client_id, version)?);
    let mut bytes = Vec::new();
    connect.encode_for(version, &mut bytes)?;
    log_packet(client_id, true, &connect);
    // [MQTT-3.1.0-1]: CONNECT is the first packet on a new connection.
    wire.writer.write_all(&bytes).map_err(io)?;

    let deadline = Instant::now() + options.connect_timeout;
    let mut challenges = 0;
    loop {
        if version == ProtocolVersion::V5 && is_v311_protocol_refusal(wire.buffer) {
            // A 3.1.1 broker answers an MQTT 5 CONNECT in 3.1.1: "unacceptable
            // protocol version" [MQTT-3.1.2-2].
            return Err(Error::ConnectionRefused {
                code: ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                reason: None,
            });
        }
        if let Some(packet) = wire.decoder.decode(wire.buffer)? {
            log_packet(client_id, false, &packet);
            match packet {
                Packet::ConnAck(connack) => return Ok(connack),
                // MQTT 5 enhanced authentication: a challenge to answer
                // [MQTT-4.12.0-2].
                Packet::Auth(auth) if auth.reason_code == ReasonCode::CONTINUE_AUTHENTICATION => {
                    challenges += 1;
                    let answer = answer_challenge(options, &auth, challenges)?;
                    let answer = Packet::Auth(answer);
                    let mut bytes = Vec::new();
                    answer.encode_for(version, &mut bytes)?;
                    log_packet(client_id, true, &answer);
                    wire.writer.write_all(&bytes).map_err(io)?;
                    continue;
                }
                // [MQTT-3.2.0-1]: the first packet from the server is CONNACK.
                other => return Err(Error::UnexpectedPacket(other.packet_type())),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(Wait::ConnAck));
        }
        wire.reader.set_read_timeout(Some(left)).map_err(io)?;
        match read_some(wire.reader, wire.buffer) {
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
    }
}

/// Whether `buffer` starts with a 3.1.1 CONNACK refusing the protocol version
/// (`20 02 00 01`), which is malformed as an MQTT 5 CONNACK (it has no property
/// length), so that the MQTT 5 decoder would call it broken rather than a refusal.
fn is_v311_protocol_refusal(buffer: &[u8]) -> bool {
    matches!(buffer, [0x20, 0x02, 0x00, 0x01, ..])
}

/// Most challenges one connection attempt answers: an exchange that goes on longer
/// is a broker gone wrong (the broker's own limit is 16 round trips too).
const MAX_CHALLENGES: usize = 16;

/// The answer to the broker's AUTH challenge, from the options' [`Authenticator`].
///
/// [`Authenticator`]: super::Authenticator
pub(crate) fn answer_challenge(
    options: &ClientOptions,
    auth: &Auth,
    round: usize,
) -> Result<Auth, Error> {
    let Some(authenticator) = &options.authenticator else {
        return Err(Error::Authentication(
            "the broker sent an authentication challenge, and no authenticator is set".into(),
        ));
    };
    let authenticator = &authenticator.0;
    if round > MAX_CHALLENGES {
        return Err(Error::Authentication(format!(
            "the broker sent more than {MAX_CHALLENGES} authentication challenges"
        )));
    }
    let challenge = auth.properties();
    if challenge.authentication_method.as_deref() != Some(authenticator.method()) {
        // [MQTT-4.12.0-5]: the method stays the one named in CONNECT.
        return Err(Error::Authentication(format!(
            "the broker's challenge names the method {:?}, not {:?}",
            challenge.authentication_method.as_deref().unwrap_or(""),
            authenticator.method()
        )));
    }
    let data = authenticator
        .challenge(challenge.authentication_data.as_deref())
        .map_err(Error::Authentication)?;
    let mut answer = Auth::new(ReasonCode::CONTINUE_AUTHENTICATION);
    answer.properties = Some(Box::new(Properties {
        authentication_method: Some(authenticator.method().to_owned()),
        authentication_data: data,
        ..Properties::new()
    }));
    Ok(answer)
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

fn connect_packet(
    options: &ClientOptions,
    client_id: &str,
    version: ProtocolVersion,
) -> Result<Connect, Error> {
    let v5 = version == ProtocolVersion::V5;
    let properties = v5.then(|| {
        let mut properties = options.connect_properties.clone();
        // Absent means 0: the session ends with the connection [MQTT-3.1.2-11].
        let expiry = options.session_expiry();
        properties.session_expiry_interval = (expiry > 0).then_some(expiry);
        // The broker must not send more than the decoder takes [MQTT-3.1.2-24].
        if options.max_packet_size < MAX_REMAINING_LENGTH + 5 {
            properties.maximum_packet_size = u32::try_from(options.max_packet_size).ok();
        }
        properties.receive_maximum = options.receive_maximum;
        properties.topic_alias_maximum =
            (options.topic_alias_maximum > 0).then_some(options.topic_alias_maximum);
        if let Some(authenticator) = &options.authenticator {
            properties.authentication_method = Some(authenticator.0.method().to_owned());
            properties.authentication_data = authenticator.0.initial_data();
        }
        Box::new(properties.restricted_to(PropertyContext::Connect))
    });
    let will = match &options.will {
        Some(will) => Some(Will {
            topic: TopicName::new(will.topic.as_str()).map_err(|e| Error::topic(&will.topic, e))?,
            payload: will.payload.clone(),
            qos: will.qos,
            retain: will.retain,
            properties: v5
                .then(|| Box::new(will.properties.clone().restricted_to(PropertyContext::Will)))
                .filter(|properties| !properties.is_empty()),
        }),
        None => None,
    };
    Ok(Connect {
        protocol: version,
        clean_session: options.clean_session,
        keep_alive: u16::try_from(options.keep_alive.as_secs()).unwrap_or(u16::MAX),
        client_id: client_id.to_owned(),
        will,
        username: options.username.clone(),
        password: options.password.clone(),
        properties: properties.filter(|properties| !properties.is_empty()),
        bridge: options.bridge,
    })
}

fn read_some(reader: &mut Reader, buffer: &mut BytesMut) -> std::io::Result<usize> {
    let mut chunk = [0u8; 8 * 1024];
    let n = reader.read(&mut chunk)?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// What the reader thread reads from: the socket, the bytes read and not yet
/// decoded, the decoder, and the broker's topic aliases.
struct Source {
    reader: Reader,
    buffer: BytesMut,
    decoder: Decoder,
    aliases: IncomingAliases,
}

/// The reader thread: read, decode, hand over, until the connection ends.
fn read_loop(source: &mut Source, sender: Sender<Incoming>, client_id: &str, address: &str) {
    let reason = loop {
        // Take every whole packet already buffered before reading again.
        match source.decoder.decode(&mut source.buffer) {
            Ok(Some(Packet::Disconnect(disconnect))) => {
                // MQTT 5: the broker says why it ends the connection.
                log_packet(client_id, false, &Packet::Disconnect(disconnect.clone()));
                log::warn!(
                    "Client {client_id}: the broker disconnected it: {}",
                    disconnect.reason_code
                );
                let reason = disconnect
                    .properties
                    .and_then(|properties| properties.reason_string);
                break Incoming::Closed(Error::DisconnectedByBroker {
                    code: disconnect.reason_code,
                    reason,
                });
            }
            Ok(Some(mut packet)) => {
                log_packet(client_id, false, &packet);
                if let Packet::Publish(publish) = &mut packet {
                    if let Err(AliasError { code, why }) = source.aliases.resolve(publish) {
                        log::warn!("Client {client_id}: the broker broke the protocol: {why}");
                        break Incoming::Violation {
                            code,
                            error: Error::Disconnected(Some(why)),
                        };
                    }
                }
                if sender.send(Incoming::Packet(packet)).is_err() {
                    // The connection thread has let go of this connection.
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                log::warn!("Client {client_id}: the broker sent a malformed packet, disconnecting: {error}");
                break Incoming::Closed(Error::Protocol(error));
            }
        }
        match read_some(&mut source.reader, &mut source.buffer) {
            Ok(0) => {
                break Incoming::Closed(Error::io(
                    address,
                    std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the broker closed the connection",
                    ),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Incoming::Closed(Error::io(address, e)),
        }
    };
    let _ = sender.send(reason);
}

impl Link {
    /// Adds `packet` to what the next [`flush`](Self::flush) writes.
    pub fn queue(&mut self, packet: &Packet) -> Result<(), Error> {
        match packet {
            // Aliases go on in the order packets go out, as the broker reads them.
            Packet::Publish(publish) if self.aliases.is_some() => {
                let mut publish = publish.clone();
                if let Some(aliases) = &mut self.aliases {
                    aliases.apply(&mut publish);
                }
                let packet = Packet::Publish(publish);
                packet.encode_for(self.version, &mut self.out)?;
                log_packet(&self.client_id, true, &packet);
            }
            packet => {
                packet.encode_for(self.version, &mut self.out)?;
                log_packet(&self.client_id, true, packet);
            }
        }
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
