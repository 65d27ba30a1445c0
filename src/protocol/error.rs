//! Errors of the protocol layer.
//!
//! Every rule of MQTT 3.1.1 and MQTT 5 that can be checked from the bytes alone has its
//! own variant here, and each message names the packet, the rule, the value received and
//! the statement of the specification (`[MQTT-x.y.z-n]`) that the bytes broke. A
//! broker or client that meets one of these closes the connection
//! ([MQTT-4.8.0-1]); [`DecodeError::connect_return_code`] says which of them must be
//! answered with a CONNACK first, and [`DecodeError::reason_code`] which MQTT 5 reason
//! code an MQTT 5 peer is told.
//!
//! "Not enough bytes yet" is not an error: the decoder returns `Ok(None)` for it.

use super::{ConnectReturnCode, PacketType, ReasonCode};

/// Why a topic name or topic filter is invalid (section 4.7 of MQTT 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic is the empty string [MQTT-4.7.3-1].
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    /// The topic is longer than 65,535 bytes of UTF-8 [MQTT-4.7.3-3].
    #[error("topic is {0} bytes long, more than the 65535 allowed [MQTT-4.7.3-3]")]
    TooLong(usize),
    /// The topic contains U+0000 [MQTT-4.7.3-2].
    #[error("topic contains the null character U+0000 [MQTT-4.7.3-2]")]
    NullCharacter,
    /// A topic name (as opposed to a filter) contains `+` or `#` [MQTT-4.7.1-1].
    #[error("topic name contains a wildcard ('+' or '#'), allowed only in filters [MQTT-4.7.1-1]")]
    WildcardInTopicName,
    /// `#` is not alone in its level or not in the last level [MQTT-4.7.1-2].
    #[error("'#' must be the last character and fill its whole level [MQTT-4.7.1-2]")]
    MisplacedMultiLevelWildcard,
    /// `+` does not fill its whole level [MQTT-4.7.1-3].
    #[error("'+' must fill its whole level [MQTT-4.7.1-3]")]
    MisplacedSingleLevelWildcard,
    /// A shared subscription filter (`$share/...`) has no ShareName: `$share`, or an
    /// empty level after `$share/` [MQTT-4.8.2-1].
    #[error("shared subscription filter has no ShareName after '$share/' [MQTT-4.8.2-1]")]
    MissingShareName,
    /// The ShareName of a shared subscription filter is `+` or `#` [MQTT-4.8.2-2].
    #[error(
        "ShareName of a shared subscription filter must not contain '+' or '#' [MQTT-4.8.2-2]"
    )]
    WildcardInShareName,
    /// A shared subscription filter has no topic filter after its ShareName:
    /// `$share/name` or `$share/name/` [MQTT-4.8.2-2].
    #[error("shared subscription filter has no topic filter after '$share/{{ShareName}}/' [MQTT-4.8.2-2]")]
    MissingSharedFilter,
}

/// Why a sequence of bytes is not a valid MQTT packet.
///
/// Returned by [`Decoder::decode`](super::Decoder::decode). The connection the bytes
/// came from must be closed; nothing after the bad packet can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet type in the first byte is 0 or 15, both reserved.
    #[error("reserved packet type {0} in fixed header (byte 0x{1:02X}) [MQTT-2.2.1]")]
    ReservedPacketType(u8, u8),
    /// The low four bits of the first byte differ from the fixed values of table 2.2
    /// [MQTT-2.2.2-2].
    #[error("{packet_type} with flags 0b{flags:04b} in its fixed header, must be 0b{expected:04b} [MQTT-2.2.2-2]")]
    InvalidHeaderFlags {
        /// The packet whose flags are wrong.
        packet_type: PacketType,
        /// The flags received.
        flags: u8,
        /// The flags the specification fixes for this packet type.
        expected: u8,
    },
    /// The remaining length is encoded in more than four bytes (section 2.2.3).
    #[error("remaining length is encoded in more than four bytes [MQTT-2.2.3]")]
    MalformedRemainingLength,
    /// The packet is larger than the decoder's configured maximum.
    #[error("{packet_type} of {size} bytes is larger than the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// The packet announced.
        packet_type: PacketType,
        /// Its whole size in bytes, fixed header included.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The packet ends before a field it must carry.
    #[error("{packet_type} is too short: it ends inside its {field}")]
    Truncated {
        /// The packet that is cut short.
        packet_type: PacketType,
        /// The field that the remaining length does not cover.
        field: &'static str,
    },
    /// The packet carries bytes after its last field.
    #[error("{packet_type} has {extra} unexpected bytes after its last field")]
    TrailingBytes {
        /// The packet that is too long.
        packet_type: PacketType,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A string field is not well-formed UTF-8 [MQTT-1.5.3-1].
    #[error("{packet_type} {field} is not well-formed UTF-8 [MQTT-1.5.3-1]")]
    InvalidUtf8 {
        /// The packet holding the string.
        packet_type: PacketType,
        /// The field holding the string.
        field: &'static str,
    },
    /// A string field contains U+0000 [MQTT-1.5.3-2].
    #[error("{packet_type} {field} contains the null character U+0000 [MQTT-1.5.3-2]")]
    NullCharacter {
        /// The packet holding the string.
        packet_type: PacketType,
        /// The field holding the string.
        field: &'static str,
    },
    /// A QoS field holds the reserved value 3 [MQTT-3.3.1-4].
    #[error("{packet_type} with QoS 3, which is reserved [MQTT-3.3.1-4]")]
    InvalidQoS {
        /// The packet with the bad QoS.
        packet_type: PacketType,
    },
    /// A QoS 0 PUBLISH has the DUP flag set [MQTT-3.3.1-2].
    #[error("PUBLISH with QoS 0 has the DUP flag set [MQTT-3.3.1-2]")]
    DupWithQoS0,
    /// A packet identifier that must be non-zero is zero [MQTT-2.3.1-1].
    #[error("{packet_type} with packet identifier 0 [MQTT-2.3.1-1]")]
    ZeroPacketId {
        /// The packet with the zero identifier.
        packet_type: PacketType,
    },
    /// A PUBLISH topic name or will topic is invalid.
    #[error("{packet_type} topic name '{topic}': {error}")]
    InvalidTopicName {
        /// The packet carrying the topic.
        packet_type: PacketType,
        /// The topic as received (lossy for display).
        topic: String,
        /// Which rule it breaks.
        error: TopicError,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter is invalid.
    #[error("{packet_type} topic filter '{filter}': {error}")]
    InvalidTopicFilter {
        /// The packet carrying the filter.
        packet_type: PacketType,
        /// The filter as received.
        filter: String,
        /// Which rule it breaks.
        error: TopicError,
    },
    /// A SUBSCRIBE carries no topic filter [MQTT-3.8.3-3].
    #[error("SUBSCRIBE with no topic filter [MQTT-3.8.3-3]")]
    NoSubscribeFilters,
    /// An UNSUBSCRIBE carries no topic filter [MQTT-3.10.3-2].
    #[error("UNSUBSCRIBE with no topic filter [MQTT-3.10.3-2]")]
    NoUnsubscribeFilters,
    /// A requested-QoS byte of SUBSCRIBE has a reserved bit set or asks for QoS 3
    /// [MQTT-3.8.3-4].
    #[error("SUBSCRIBE requested-QoS byte 0x{0:02X} is not 0, 1 or 2 [MQTT-3.8.3-4]")]
    InvalidRequestedQoS(u8),
    /// The CONNECT protocol name is neither `MQTT` (3.1.1) nor `MQIsdp` (3.1)
    /// [MQTT-3.1.2-1].
    #[error("CONNECT with protocol name '{0}', expected 'MQTT' or 'MQIsdp' [MQTT-3.1.2-1]")]
    InvalidProtocolName(String),
    /// The CONNECT protocol level is not one this decoder speaks [MQTT-3.1.2-2]. A
    /// server answers it with CONNACK 0x01 before closing.
    #[error("CONNECT with unsupported protocol level {0} [MQTT-3.1.2-2]")]
    UnsupportedProtocolLevel(u8),
    /// Bit 0 of the CONNECT flags is set [MQTT-3.1.2-3].
    #[error("CONNECT with the reserved bit of its flags set [MQTT-3.1.2-3]")]
    ConnectReservedFlag,
    /// Will QoS or Will Retain is set without the Will Flag [MQTT-3.1.2-11],
    /// [MQTT-3.1.2-13], [MQTT-3.1.2-15].
    #[error(
        "CONNECT with will QoS or will retain set but no will flag [MQTT-3.1.2-13] [MQTT-3.1.2-15]"
    )]
    WillFlagsWithoutWill,
    /// The Password Flag is set without the User Name Flag [MQTT-3.1.2-22].
    #[error("CONNECT with a password but no user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    /// CONNACK acknowledge flags have reserved bits set [MQTT-3.2.2-1].
    #[error("CONNACK with reserved acknowledge flag bits set: 0x{0:02X}")]
    InvalidConnAckFlags(u8),
    /// CONNACK carries a return code above 5, which are reserved.
    #[error("CONNACK with reserved return code {0}")]
    InvalidConnectReturnCode(u8),
    /// CONNACK refuses the connection but says a session is present [MQTT-3.2.2-4].
    #[error("CONNACK with return code {0} and session present set [MQTT-3.2.2-4]")]
    SessionPresentOnRefusal(u8),
    /// SUBACK carries a return code other than 0x00, 0x01, 0x02 or 0x80 [MQTT-3.9.3-2].
    #[error(
        "SUBACK with return code 0x{0:02X}, allowed are 0x00, 0x01, 0x02 and 0x80 [MQTT-3.9.3-2]"
    )]
    InvalidSubAckReturnCode(u8),
    /// SUBACK carries no return code.
    #[error("SUBACK with no return code")]
    NoSubAckReturnCodes,
    /// An MQTT 5 UNSUBACK carries no reason code (section 3.11.3).
    #[error("UNSUBACK with no reason code [MQTT-3.11.3-2]")]
    NoUnsubAckReasonCodes,
    /// A variable byte integer inside a packet (property length, property identifier,
    /// Subscription Identifier) takes more than four bytes or more bytes than its value
    /// needs [MQTT-1.5.5-1].
    #[error("{packet_type} {field} is not a well-formed variable byte integer [MQTT-1.5.5-1]")]
    MalformedVariableByteInteger {
        /// The packet holding the integer.
        packet_type: PacketType,
        /// The field.
        field: &'static str,
    },
    /// The property length runs past the end of the packet (section 2.2.2.2).
    #[error("{packet_type} property length {length} runs past the {remaining} bytes left in the packet [MQTT-2.2.2.2]")]
    PropertyLengthOverrun {
        /// The packet.
        packet_type: PacketType,
        /// The property length received.
        length: usize,
        /// What was left of the packet.
        remaining: usize,
    },
    /// A property identifier MQTT 5 does not define (section 2.2.2.2).
    #[error("{packet_type} with unknown property identifier 0x{id:02X} [MQTT-2.2.2.2]")]
    UnknownProperty {
        /// The packet.
        packet_type: PacketType,
        /// The identifier received.
        id: u32,
    },
    /// A property the packet may not carry (table of section 2.2.2.2).
    #[error("{packet_type} must not carry property 0x{id:02X} ({}) [MQTT-2.2.2.2]", super::properties::property_name(*.id))]
    PropertyNotAllowed {
        /// The packet.
        packet_type: PacketType,
        /// The property's identifier.
        id: u8,
    },
    /// A property that may appear once appears again (section 2.2.2.2; a Protocol
    /// Error).
    #[error("{packet_type} carries property 0x{id:02X} ({}) more than once [MQTT-2.2.2.2]", super::properties::property_name(*.id))]
    DuplicateProperty {
        /// The packet.
        packet_type: PacketType,
        /// The property's identifier.
        id: u8,
    },
    /// Receive Maximum, Maximum Packet Size or Topic Alias is 0 (sections 3.1.2.11.3,
    /// 3.1.2.11.4, 3.2.2.3.3, 3.2.2.3.6; [MQTT-3.3.2-8] for Topic Alias).
    #[error(
        "{packet_type} with {property} 0, which is a Protocol Error [{}]",
        zero_statement(property)
    )]
    ZeroProperty {
        /// The packet.
        packet_type: PacketType,
        /// The property.
        property: &'static str,
    },
    /// A Subscription Identifier is 0 (or above 268,435,455) (sections 3.3.2.3.8,
    /// 3.8.2.1.2).
    #[error(
        "{packet_type} with Subscription Identifier 0, allowed are 1 to 268435455 [MQTT-3.8.2.1.2]"
    )]
    SubscriptionIdentifierOutOfRange {
        /// The packet.
        packet_type: PacketType,
    },
    /// A byte property that is a flag (Payload Format Indicator, Request Problem /
    /// Response Information, Maximum QoS, Retain / Wildcard Subscription /
    /// Subscription Identifier / Shared Subscription Available) is neither 0 nor 1
    /// (sections 3.1.2.11, 3.2.2.3, 3.3.2.3.2).
    #[error(
        "{packet_type} with {property} {value}, must be 0 or 1 [MQTT-3.1.2.11] [MQTT-3.2.2.3]"
    )]
    PropertyNotZeroOrOne {
        /// The packet.
        packet_type: PacketType,
        /// The property.
        property: &'static str,
        /// The value received.
        value: u8,
    },
    /// A Response Topic holds a wildcard [MQTT-3.3.2-14].
    #[error("{packet_type} Response Topic contains a wildcard ('+' or '#') [MQTT-3.3.2-14]")]
    WildcardInResponseTopic {
        /// The packet.
        packet_type: PacketType,
    },
    /// Authentication Data without Authentication Method (section 3.1.2.11.10).
    #[error(
        "{packet_type} with Authentication Data but no Authentication Method [MQTT-3.1.2.11.10]"
    )]
    AuthenticationDataWithoutMethod {
        /// The packet.
        packet_type: PacketType,
    },
    /// A reason code the packet may not carry (table of section 2.4):
    /// [MQTT-3.2.2-8], [MQTT-3.4.2-1], [MQTT-3.5.2-1], [MQTT-3.6.2-1],
    /// [MQTT-3.7.2-1], [MQTT-3.9.3-2], [MQTT-3.11.3-2], [MQTT-3.14.2-1],
    /// [MQTT-3.15.2-1].
    #[error("{packet_type} with reason code 0x{code:02X}, not one of its reason codes [{}]", reason_code_statement(*.packet_type))]
    InvalidReasonCode {
        /// The packet.
        packet_type: PacketType,
        /// The code received.
        code: u8,
    },
    /// Bits 6 and 7 of a SUBSCRIBE's Subscription Options are set [MQTT-3.8.3-5].
    #[error("SUBSCRIBE subscription options 0x{0:02X} have reserved bits set [MQTT-3.8.3-5]")]
    SubscriptionOptionsReservedBits(u8),
    /// Retain Handling 3 in a SUBSCRIBE's Subscription Options (section 3.8.3.1).
    #[error("SUBSCRIBE with Retain Handling 3, which is reserved [MQTT-3.8.3.1]")]
    InvalidRetainHandling,
    /// No Local on a shared subscription [MQTT-3.8.3-4].
    #[error("SUBSCRIBE with No Local on shared subscription '{0}' [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription(String),
    /// An MQTT 5 PUBLISH with an empty topic name and no Topic Alias (section
    /// 3.3.2.3.4).
    #[error("PUBLISH with an empty topic name and no Topic Alias [MQTT-3.3.2.3.4]")]
    EmptyTopicWithoutAlias,
}

/// The statement (or, without one, the section) that forbids `property` to be 0.
fn zero_statement(property: &str) -> &'static str {
    match property {
        "Topic Alias" => "MQTT-3.3.2-8",
        "Receive Maximum" => "MQTT-3.1.2.11.3, MQTT-3.2.2.3.3",
        _ => "MQTT-3.1.2.11.4, MQTT-3.2.2.3.6",
    }
}

/// The statement that lists the reason codes of `packet_type`.
fn reason_code_statement(packet_type: PacketType) -> &'static str {
    match packet_type {
        PacketType::ConnAck => "MQTT-3.2.2-8",
        PacketType::PubAck => "MQTT-3.4.2-1",
        PacketType::PubRec => "MQTT-3.5.2-1",
        PacketType::PubRel => "MQTT-3.6.2-1",
        PacketType::PubComp => "MQTT-3.7.2-1",
        PacketType::SubAck => "MQTT-3.9.3-2",
        PacketType::UnsubAck => "MQTT-3.11.3-2",
        PacketType::Disconnect => "MQTT-3.14.2-1",
        PacketType::Auth => "MQTT-3.15.2-1",
        _ => "MQTT-2.4",
    }
}

impl DecodeError {
    /// The CONNACK return code a server sends before closing the connection, when the
    /// specification asks for one; `None` when the connection is closed without a
    /// reply ([MQTT-3.1.4-1]).
    ///
    /// Only an unsupported protocol level is answered, with 0x01
    /// ([MQTT-3.1.2-2]).
    pub fn connect_return_code(&self) -> Option<ConnectReturnCode> {
        match self {
            DecodeError::UnsupportedProtocolLevel(_) => {
                Some(ConnectReturnCode::UnacceptableProtocolVersion)
            }
            _ => None,
        }
    }

    /// The MQTT 5 reason code a receiver sends (in CONNACK before the connection is
    /// accepted, in DISCONNECT after) before closing the connection over this error:
    /// 0x81 Malformed Packet, 0x82 Protocol Error, 0x84 Unsupported Protocol Version,
    /// 0x94 Topic Alias invalid or 0x95 Packet too large. An invalid topic name or
    /// filter is 0x81, as mosquitto answers it (the specification would also allow
    /// 0x90 and 0x8F).
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            InvalidProtocolName(_) | UnsupportedProtocolLevel(_) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            ZeroProperty {
                property: "Topic Alias",
                ..
            } => ReasonCode::TOPIC_ALIAS_INVALID,
            NoSubscribeFilters
            | NoUnsubscribeFilters
            | NoSubAckReturnCodes
            | NoUnsubAckReasonCodes
            | SessionPresentOnRefusal(_)
            | DuplicateProperty { .. }
            | ZeroProperty { .. }
            | SubscriptionIdentifierOutOfRange { .. }
            | PropertyNotZeroOrOne { .. }
            | WildcardInResponseTopic { .. }
            | AuthenticationDataWithoutMethod { .. }
            | InvalidRetainHandling
            | NoLocalOnSharedSubscription(_)
            | EmptyTopicWithoutAlias => ReasonCode::PROTOCOL_ERROR,
            InvalidTopicName { .. }
            | InvalidTopicFilter { .. }
            | ReservedPacketType(..)
            | InvalidHeaderFlags { .. }
            | MalformedRemainingLength
            | Truncated { .. }
            | TrailingBytes { .. }
            | InvalidUtf8 { .. }
            | NullCharacter { .. }
            | InvalidQoS { .. }
            | DupWithQoS0
            | ZeroPacketId { .. }
            | InvalidRequestedQoS(_)
            | ConnectReservedFlag
            | WillFlagsWithoutWill
            | PasswordWithoutUsername
            | InvalidConnAckFlags(_)
            | InvalidConnectReturnCode(_)
            | InvalidSubAckReturnCode(_)
            | MalformedVariableByteInteger { .. }
            | PropertyLengthOverrun { .. }
            | UnknownProperty { .. }
            | PropertyNotAllowed { .. }
            | InvalidReasonCode { .. }
            | SubscriptionOptionsReservedBits(_) => ReasonCode::MALFORMED_PACKET,
        }
    }
}

/// Why a packet could not be encoded.
///
/// The packet types let a program build values the wire cannot carry (a client id of
/// 70,000 bytes, a QoS 1 PUBLISH without a packet identifier); encoding refuses them
/// instead of writing bytes the peer would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field is longer than the 65,535 bytes its length prefix
    /// can count.
    #[error("{field} is {len} bytes long, more than the 65535 a length prefix can count")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The packet is larger than the 268,435,455 bytes a remaining length can count.
    #[error("packet body of {0} bytes is more than the 268435455 MQTT can carry")]
    PacketTooLarge(usize),
    /// A PUBLISH has a packet identifier but QoS 0, or QoS 1/2 and none
    /// [MQTT-2.3.1-1] [MQTT-2.3.1-5].
    #[error("PUBLISH with QoS {qos} must {} a packet identifier [MQTT-2.3.1-5]", if *.qos == 0 { "not have" } else { "have" })]
    PacketIdMismatch {
        /// The QoS of the PUBLISH.
        qos: u8,
    },
    /// A QoS 0 PUBLISH has the DUP flag set [MQTT-3.3.1-2].
    #[error("PUBLISH with QoS 0 must not have the DUP flag set [MQTT-3.3.1-2]")]
    DupWithQoS0,
    /// A SUBSCRIBE, SUBACK or UNSUBSCRIBE with an empty list [MQTT-3.8.3-3]
    /// [MQTT-3.10.3-2].
    #[error("{0} must carry at least one entry [MQTT-3.8.3-3]")]
    EmptyList(PacketType),
    /// A CONNECT with a password but no user name [MQTT-3.1.2-22].
    #[error("CONNECT with a password needs a user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    /// A string field contains U+0000, which the receiver must treat as a protocol
    /// violation [MQTT-1.5.3-2].
    #[error(
        "{field} contains the null character U+0000, which MQTT forbids in strings [MQTT-1.5.3-2]"
    )]
    NullCharacter {
        /// The field.
        field: &'static str,
    },
    /// Properties a receiver would refuse (not allowed in the packet, repeated, a
    /// value out of range).
    #[error("invalid properties: {0}")]
    InvalidProperties(DecodeError),
    /// A reason code the packet may not carry (table of section 2.4).
    #[error("{packet_type} cannot carry {code} [MQTT-2.4]")]
    InvalidReasonCode {
        /// The packet.
        packet_type: PacketType,
        /// The code.
        code: ReasonCode,
    },
    /// A packet or field that does not exist in the protocol version asked for (AUTH
    /// before MQTT 5, a PUBLISH without topic name before MQTT 5).
    #[error("{what} cannot be encoded for {version}")]
    NotInVersion {
        /// What cannot be encoded.
        what: &'static str,
        /// The version asked for.
        version: super::ProtocolVersion,
    },
}
