//! The MQTT wire protocol: packets, their encoding, and topic rules.
//!
//! This layer is *sans-I/O*: it turns bytes into [`Packet`]s and packets into bytes,
//! and knows nothing of sockets, threads, time or configuration. The broker and the
//! client drive it; tests and fuzzers can drive it with plain byte slices.
//!
//! ```
//! use bytes::BytesMut;
//! use wren::protocol::{Decoder, Packet, Publish, QoS, TopicName};
//!
//! // Encode a PUBLISH...
//! let publish = Publish::new(TopicName::new("greeting")?, "hello", QoS::AtMostOnce, false);
//! let mut wire = Vec::new();
//! Packet::Publish(publish.clone()).encode(&mut wire)?;
//! assert_eq!(wire, b"\x30\x0f\x00\x08greetinghello");
//!
//! // ...and decode it again, one byte at a time to show that partial input is fine.
//! let mut decoder = Decoder::new();
//! let mut buffer = BytesMut::new();
//! let mut decoded = None;
//! for byte in wire {
//!     buffer.extend_from_slice(&[byte]);
//!     if let Some(packet) = decoder.decode(&mut buffer)? {
//!         decoded = Some(packet);
//!     }
//! }
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - [`codec`]: the fixed header, the remaining length, and the [`Decoder`].
//! - one module per packet (`connect`, `connack`, `publish`, `ack`, `subscribe`,
//!   `suback`, `unsubscribe`, `disconnect` with AUTH); PINGREQ and PINGRESP carry
//!   nothing and are plain variants of [`Packet`].
//! - [`properties`]: the MQTT 5 [`Properties`] and where each may appear.
//! - [`reason`]: the MQTT 5 [`ReasonCode`]s.
//! - [`topic`]: [`TopicName`], [`TopicFilter`] and matching.
//! - [`error`]: one variant per rule a packet can break, each naming the statement of
//!   the specification.
//!
//! # Versions
//!
//! MQTT 3.1 (protocol name `MQIsdp`, level 3) and 3.1.1 (`MQTT`, level 4) share every
//! packet shape; only CONNECT tells them apart, and [`Connect::protocol`] records which
//! one a client spoke. MQTT 5 ([`ProtocolVersion::V5`], `MQTT` level 5) adds
//! properties and reason codes to most packets, and the AUTH packet. They are optional
//! fields of these same packet types: `properties: Option<Box<Properties>>` (`None`:
//! no properties, and what 3.1/3.1.1 packets always have) and reason codes that
//! default to [`ReasonCode::SUCCESS`]. The [`Decoder`] decodes 3.1.1 until it decodes
//! a level-5 CONNECT, then MQTT 5 for the rest of the connection
//! ([`Decoder::with_version`] tells it in advance, for a client;
//! [`Decoder::with_max_version`] makes it refuse a CONNECT of a newer version, for a
//! server that does not speak it). [`Packet::encode`]
//! writes MQTT 3.1.1; [`Packet::encode_for`] takes the version: for 3.1 and 3.1.1
//! properties and reason codes that those versions cannot carry are left out.

pub mod codec;
pub mod error;
pub mod properties;
pub mod reason;
pub mod topic;

mod ack;
mod alias;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;
mod unsubscribe;

use std::fmt;
use std::num::NonZeroU16;

pub use ack::{PubAck, PubComp, PubRec, PubRel, UnsubAck};
pub use alias::{AliasError, IncomingAliases, OutgoingAliases};
pub use codec::{Decoder, DEFAULT_MAX_PACKET_SIZE, MAX_REMAINING_LENGTH};
pub use connack::{ConnAck, ConnectReturnCode};
pub use connect::{Connect, Will};
pub use disconnect::{Auth, Disconnect};
pub use error::{DecodeError, EncodeError, TopicError};
pub use properties::{Properties, PropertyContext};
pub use publish::Publish;
pub use reason::ReasonCode;
pub use suback::{SubAck, SubscribeReturnCode};
pub use subscribe::{RetainHandling, Subscribe, SubscribeFilter};
pub use topic::{TopicFilter, TopicName};
pub use unsubscribe::Unsubscribe;

/// A packet identifier: the 16-bit number that pairs a QoS 1/2 PUBLISH, SUBSCRIBE or
/// UNSUBSCRIBE with its acknowledgement. Zero is never valid ([MQTT-2.3.1-1]), so the
/// type cannot hold it.
pub type PacketId = NonZeroU16;

/// Quality of service: how hard MQTT tries to deliver a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: sent once, never acknowledged; may be lost.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: acknowledged with PUBACK and re-sent until then; may be duplicated.
    AtLeastOnce = 1,
    /// QoS 2: a four-packet handshake (PUBLISH, PUBREC, PUBREL, PUBCOMP) that delivers
    /// exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for the two-bit value `bits`, or `None` for the reserved value 3.
    pub fn from_u8(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

/// The version of MQTT a connection speaks, as its CONNECT says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    V3_1_1,
    /// MQTT 5: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol name CONNECT carries for this version.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolVersion::V3_1 => "MQIsdp",
            ProtocolVersion::V3_1_1 | ProtocolVersion::V5 => "MQTT",
        }
    }

    /// The protocol level CONNECT carries for this version.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolVersion::V3_1 => f.write_str("MQTT 3.1"),
            ProtocolVersion::V3_1_1 => f.write_str("MQTT 3.1.1"),
            ProtocolVersion::V5 => f.write_str("MQTT 5"),
        }
    }
}

/// The fifteen kinds of MQTT control packet, numbered as in the fixed header (AUTH
/// exists only in MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // the names are the specification's
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The packet type for the upper four bits of a fixed header, or `None` for the
    /// reserved value 0. (15 is AUTH, which only MQTT 5 has: the decoder refuses it
    /// as reserved on 3.1 and 3.1.1 connections.)
    pub fn from_u8(value: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match value {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The fixed low four bits of the first byte (table 2.2). PUBLISH has none: it
    /// uses them for DUP, QoS and RETAIN.
    pub fn fixed_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        })
    }
}

/// An MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant's type documents it
pub enum Packet {
    /// Boxed: CONNECT is by far the largest packet and goes by once per connection,
    /// while the others move through the broker's channels by the million and stay
    /// small (80 bytes rather than 160).
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubAck),
    PubRec(PubRec),
    PubRel(PubRel),
    PubComp(PubComp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    /// PINGREQ: "are you there?", sent by a client to keep the connection alive.
    PingReq,
    /// PINGRESP: the server's answer to PINGREQ.
    PingResp,
    /// DISCONNECT: the client's last packet when it leaves cleanly; its will is
    /// discarded. In MQTT 5 either side may send it, with a reason code.
    Disconnect(Disconnect),
    /// AUTH: MQTT 5 enhanced authentication.
    Auth(Auth),
}

impl Packet {
    /// The kind of packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Appends the packet's MQTT 3.1.1 bytes to `out` (a CONNECT writes the version
    /// of its [`Connect::protocol`]): [`encode_for`](Self::encode_for) with
    /// [`ProtocolVersion::V3_1_1`].
    ///
    /// Nothing is appended when the packet cannot be encoded.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_for(ProtocolVersion::V3_1_1, out)
    }

    /// Appends the packet's bytes for a connection that speaks `version` to `out`.
    ///
    /// 3.1 and 3.1.1 write the same bytes for every packet (CONNECT writes the version
    /// of its own [`Connect::protocol`]), without properties and reason codes, which
    /// they cannot carry: a refused SUBACK entry becomes 0x80, an error CONNACK the
    /// nearest 3.1.1 return code ([`ConnectReturnCode::from_reason`]). AUTH exists only
    /// in MQTT 5. MQTT 5 writes the properties and reason codes, in the short forms
    /// the specification allows for success without properties.
    ///
    /// Nothing is appended when the packet cannot be encoded.
    pub fn encode_for(
        &self,
        version: ProtocolVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(p) => p.encode(out),
            Packet::ConnAck(p) => p.encode_for(version, out),
            Packet::Publish(p) => p.encode_for(version, out),
            Packet::PubAck(p) => p.encode_for(version, out),
            Packet::PubRec(p) => p.encode_for(version, out),
            Packet::PubRel(p) => p.encode_for(version, out),
            Packet::PubComp(p) => p.encode_for(version, out),
            Packet::Subscribe(p) => p.encode_for(version, out),
            Packet::SubAck(p) => p.encode_for(version, out),
            Packet::Unsubscribe(p) => p.encode_for(version, out),
            Packet::UnsubAck(p) => p.encode_for(version, out),
            Packet::PingReq => codec::encode_empty(PacketType::PingReq, out),
            Packet::PingResp => codec::encode_empty(PacketType::PingResp, out),
            Packet::Disconnect(p) => p.encode_for(version, out),
            Packet::Auth(p) => p.encode_for(version, out),
        }
    }
}

impl fmt::Display for Packet {
    /// A one-line summary in the style of mosquitto's debug output, for logs:
    /// `PUBLISH (d0, q1, r0, m7, 'a/b', ... (5 bytes))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Packet::Connect(c) => write!(
                f,
                "CONNECT (p{}, c{}, k{}, i'{}'{}{})",
                c.protocol.level(),
                c.clean_session as u8,
                c.keep_alive,
                c.client_id,
                c.username
                    .as_ref()
                    .map(|u| format!(", u'{u}'"))
                    .unwrap_or_default(),
                c.will
                    .as_ref()
                    .map(|w| format!(", will '{}' q{} r{}", w.topic, w.qos, w.retain as u8))
                    .unwrap_or_default(),
            ),
            Packet::ConnAck(c) => {
                // A code 3.1.1 has is shown as its 3.1.1 number, as before MQTT 5.
                let old = c.return_code();
                if old.reason_code() == c.code {
                    write!(f, "CONNACK ({}, {})", c.session_present as u8, old as u8)
                } else {
                    write!(
                        f,
                        "CONNACK ({}, 0x{:02X})",
                        c.session_present as u8, c.code.0
                    )
                }
            }
            Packet::Publish(p) => write!(
                f,
                "PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
                p.dup as u8,
                p.qos,
                p.retain as u8,
                p.packet_id.map_or(0, |id| id.get()),
                p.topic,
                p.payload.len()
            ),
            Packet::PubAck(p) => write!(f, "PUBACK (m{})", p.packet_id),
            Packet::PubRec(p) => write!(f, "PUBREC (m{})", p.packet_id),
            Packet::PubRel(p) => write!(f, "PUBREL (m{})", p.packet_id),
            Packet::PubComp(p) => write!(f, "PUBCOMP (m{})", p.packet_id),
            Packet::Subscribe(s) => {
                write!(f, "SUBSCRIBE (m{}", s.packet_id)?;
                for entry in &s.filters {
                    write!(f, ", '{}' q{}", entry.filter, entry.qos)?;
                }
                f.write_str(")")
            }
            Packet::SubAck(s) if s.reason_codes.iter().all(|c| matches!(c.0, 0..=2 | 0x80)) => {
                write!(f, "SUBACK (m{}, {:?})", s.packet_id, s.return_codes())
            }
            Packet::SubAck(s) => {
                write!(f, "SUBACK (m{}, [", s.packet_id)?;
                for (i, code) in s.reason_codes.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}0x{:02X}", code.0)?;
                }
                f.write_str("])")
            }
            Packet::Unsubscribe(u) => {
                write!(f, "UNSUBSCRIBE (m{}", u.packet_id)?;
                for filter in &u.filters {
                    write!(f, ", '{filter}'")?;
                }
                f.write_str(")")
            }
            Packet::UnsubAck(u) => write!(f, "UNSUBACK (m{})", u.packet_id),
            Packet::PingReq => f.write_str("PINGREQ"),
            Packet::PingResp => f.write_str("PINGRESP"),
            Packet::Disconnect(d) if d.reason_code == ReasonCode::SUCCESS => {
                f.write_str("DISCONNECT")
            }
            Packet::Disconnect(d) => write!(f, "DISCONNECT (0x{:02X})", d.reason_code.0),
            Packet::Auth(a) => write!(f, "AUTH (0x{:02X})", a.reason_code.0),
        }
    }
}

macro_rules! packet_from {
    ($($variant:ident),*) => {
        $(impl From<$variant> for Packet {
            fn from(p: $variant) -> Packet {
                Packet::$variant(p)
            }
        })*
    };
}

impl From<Connect> for Packet {
    fn from(p: Connect) -> Packet {
        Packet::Connect(Box::new(p))
    }
}

packet_from!(
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth
);
