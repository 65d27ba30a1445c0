//! Framing: the fixed header, the remaining length, and the incremental [`Decoder`].
//!
//! Every MQTT packet starts with a fixed header:
//!
//! ```text
//! byte 1      packet type (upper 4 bits) and flags (lower 4 bits)
//! byte 2..5   remaining length: the size of the rest of the packet, 7 bits per byte,
//!             least significant group first, high bit set when another byte follows
//! ```
//!
//! The decoder reads the fixed header first and checks the flags and the size
//! before it waits for the body, so a peer announcing a 256 MiB packet is refused after
//! five bytes, and nothing is allocated for a body that has not arrived.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::topic::{TopicFilter, TopicName, MAX_STRING_LEN};
use super::{
    ack, connack, connect, disconnect, publish, suback, subscribe, unsubscribe, Packet, PacketId,
    PacketType, ProtocolVersion,
};

/// The largest remaining length four bytes can encode: 268,435,455 (256 MiB - 1).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The maximum packet size a [`Decoder`] accepts unless told otherwise: 1 MiB.
///
/// Large enough for ordinary telemetry and small files, small enough that a thousand
/// connections each sending the largest packet at once cannot exhaust memory.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1024 * 1024;

/// Turns bytes from a connection into packets, one at a time.
///
/// Feed it the buffer the bytes are read into; it takes a whole packet off the front
/// when one is there and leaves partial packets for the next call.
///
/// ```
/// use bytes::BytesMut;
/// use wren::protocol::{Decoder, Packet};
///
/// let mut decoder = Decoder::new().with_max_packet_size(1024);
/// // A PINGREQ, a DISCONNECT, and the first byte of something else.
/// let mut buffer = BytesMut::from(&b"\xC0\x00\xE0\x00\x30"[..]);
/// assert_eq!(decoder.decode(&mut buffer)?, Some(Packet::PingReq));
/// assert_eq!(decoder.decode(&mut buffer)?, Some(Packet::Disconnect(Default::default())));
/// assert_eq!(decoder.decode(&mut buffer)?, None); // waits for more bytes
/// assert_eq!(&buffer[..], b"\x30");
/// # Ok::<(), wren::protocol::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    max_packet_size: usize,
    /// The protocol level of the connection, once a CONNECT has told it.
    protocol: Option<ProtocolVersion>,
    /// The newest version a CONNECT may ask for.
    max_version: ProtocolVersion,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder that accepts packets of up to [`DEFAULT_MAX_PACKET_SIZE`] bytes.
    pub fn new() -> Decoder {
        Decoder {
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            protocol: None,
            max_version: ProtocolVersion::V5,
        }
    }

    /// Sets the largest packet accepted, in bytes, fixed header included. Larger
    /// packets are refused with [`DecodeError::PacketTooLarge`] as soon as their fixed
    /// header has arrived. Values above what MQTT can carry are capped at
    /// `MAX_REMAINING_LENGTH + 5`.
    pub fn with_max_packet_size(mut self, bytes: usize) -> Decoder {
        self.max_packet_size = bytes.min(MAX_REMAINING_LENGTH + 5);
        self
    }

    /// The largest packet accepted, in bytes.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Decodes the packets of `version` from the start, as a client does after
    /// sending a CONNECT of that version (a server's decoder learns the version from
    /// the CONNECT it decodes).
    pub fn with_version(mut self, version: ProtocolVersion) -> Decoder {
        self.protocol = Some(version);
        self
    }

    /// Refuses a CONNECT of a version newer than `version` with
    /// [`DecodeError::UnsupportedProtocolLevel`], as soon as its protocol level is
    /// read (as a server that does not speak it does). All versions are accepted by
    /// default.
    pub fn with_max_version(mut self, version: ProtocolVersion) -> Decoder {
        self.max_version = version;
        self
    }

    /// The version the decoder decodes: the one a CONNECT or
    /// [`with_version`](Self::with_version) told it, else MQTT 3.1.1.
    pub fn version(&self) -> ProtocolVersion {
        self.protocol.unwrap_or_default()
    }

    /// Takes the first packet off the front of `buffer`.
    ///
    /// - `Ok(Some(packet))`: a whole packet was there; its bytes are gone from
    ///   `buffer`.
    /// - `Ok(None)`: the packet is not complete yet; `buffer` is untouched. Read more
    ///   bytes into it and call again.
    /// - `Err(_)`: the bytes break a rule of MQTT; the connection must be closed.
    ///   `buffer` is left in an unspecified state.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = FixedHeader::parse(buffer, self.protocol)? else {
            return Ok(None);
        };
        let packet_size = header.header_len + header.remaining_length;
        if packet_size > self.max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                packet_type: header.packet_type,
                size: packet_size,
                max: self.max_packet_size,
            });
        }
        if buffer.len() < packet_size {
            return Ok(None);
        }
        // Split first and skip the header in the frozen `Bytes`, where skipping is a
        // pointer bump.
        let mut body = buffer.split_to(packet_size).freeze();
        body.advance(header.header_len);
        let packet = decode_body(
            header.packet_type,
            header.flags,
            body,
            self.version(),
            self.max_version,
        )?;
        if let Packet::Connect(connect) = &packet {
            // The decoder learns the connection's protocol level from its CONNECT.
            self.protocol = Some(connect.protocol);
        }
        Ok(Some(packet))
    }
}

/// The first two to five bytes of every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FixedHeader {
    packet_type: PacketType,
    flags: u8,
    remaining_length: usize,
    /// How many bytes the fixed header itself takes: 2 to 5.
    header_len: usize,
}

impl FixedHeader {
    /// Parses a fixed header at the start of `bytes` without consuming it; `None` if it
    /// is not complete yet.
    ///
    /// MQTT 3.1 gave PUBREL, SUBSCRIBE and UNSUBSCRIBE a DUP flag, set when they
    /// are sent again; the fixed flags of section 2.2.2 are a 3.1.1 rule
    /// [MQTT-2.2.2-2], so a level 3 connection may set DUP on them (as mosquitto
    /// allows).
    fn parse(
        bytes: &[u8],
        protocol: Option<ProtocolVersion>,
    ) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&first) = bytes.first() else {
            return Ok(None);
        };
        let packet_type = PacketType::from_u8(first >> 4)
            .filter(|&t| t != PacketType::Auth || protocol == Some(ProtocolVersion::V5))
            .ok_or(DecodeError::ReservedPacketType(first >> 4, first))?;
        let flags = first & 0x0F;
        let dup_allowed = protocol == Some(ProtocolVersion::V3_1)
            && matches!(
                packet_type,
                PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe
            );
        if let Some(expected) = packet_type.fixed_flags() {
            let flags = if dup_allowed { flags & !0x08 } else { flags };
            if flags != expected {
                return Err(DecodeError::InvalidHeaderFlags {
                    packet_type,
                    flags,
                    expected,
                });
            }
        }
        let mut remaining_length = 0usize;
        for (index, &byte) in bytes[1..].iter().take(4).enumerate() {
            remaining_length |= usize::from(byte & 0x7F) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(Some(FixedHeader {
                    packet_type,
                    flags,
                    remaining_length,
                    header_len: 2 + index,
                }));
            }
        }
        if bytes.len() >= 5 {
            // Four bytes all saying "another byte follows".
            return Err(DecodeError::MalformedRemainingLength);
        }
        Ok(None)
    }
}

/// Decodes the body of a packet of `version` (a CONNECT tells its own version).
fn decode_body(
    packet_type: PacketType,
    flags: u8,
    body: Bytes,
    version: ProtocolVersion,
    max_version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    let mut reader = Reader::new(packet_type, body);
    let v5 = version == ProtocolVersion::V5;
    let packet = match packet_type {
        PacketType::Connect => {
            Packet::Connect(Box::new(connect::decode(&mut reader, max_version)?))
        }
        PacketType::ConnAck => Packet::ConnAck(connack::decode(&mut reader, v5)?),
        PacketType::Publish => Packet::Publish(publish::decode(&mut reader, flags, v5)?),
        PacketType::PubAck => Packet::PubAck(ack::PubAck::decode(&mut reader, v5)?),
        PacketType::PubRec => Packet::PubRec(ack::PubRec::decode(&mut reader, v5)?),
        PacketType::PubRel => Packet::PubRel(ack::PubRel::decode(&mut reader, v5)?),
        PacketType::PubComp => Packet::PubComp(ack::PubComp::decode(&mut reader, v5)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode(&mut reader, v5)?),
        PacketType::SubAck => Packet::SubAck(suback::decode(&mut reader, v5)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe::decode(&mut reader, v5)?),
        PacketType::UnsubAck => Packet::UnsubAck(ack::decode_unsuback(&mut reader, v5)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => {
            Packet::Disconnect(disconnect::decode_disconnect(&mut reader, v5)?)
        }
        PacketType::Auth => Packet::Auth(disconnect::decode_auth(&mut reader)?),
    };
    reader.finish()?;
    Ok(packet)
}

/// Reads the fields of one packet's body, turning every shortfall into a
/// [`DecodeError`] that names the packet and the field.
pub(crate) struct Reader {
    packet_type: PacketType,
    body: Bytes,
}

impl Reader {
    /// A reader of `body`, the bytes of a `packet_type` packet after its fixed
    /// header (or of a field of one, as the broker's store reads the property
    /// block it keeps with a message); errors name `packet_type`.
    pub(crate) fn new(packet_type: PacketType, body: Bytes) -> Reader {
        Reader { packet_type, body }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.body.len()
    }

    /// Whether the bytes not read yet start with `prefix`.
    pub(crate) fn starts_with(&self, prefix: &[u8]) -> bool {
        self.body.starts_with(prefix)
    }

    /// The packet being read.
    pub(crate) fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// A reader of the next `len` bytes, which this one skips; `len` must not
    /// exceed [`remaining`](Self::remaining).
    pub(crate) fn take(&mut self, len: usize) -> Reader {
        Reader::new(self.packet_type, self.body.split_to(len))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        if self.body.len() < 4 {
            return Err(self.truncated(field));
        }
        Ok(self.body.get_u32())
    }

    /// A variable byte integer: one to four bytes, the fewest its value needs
    /// [MQTT-1.5.5-1].
    pub(crate) fn variable(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for index in 0..4 {
            let byte = self.u8(field)?;
            value |= u32::from(byte & 0x7F) << (7 * index);
            if byte & 0x80 == 0 {
                if byte == 0 && index > 0 {
                    break; // a zero last group: more bytes than the value needs
                }
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVariableByteInteger {
            packet_type: self.packet_type,
            field,
        })
    }

    /// How many topic filters, each behind its length prefix and followed by
    /// `trailer` more bytes, lie whole in the rest of the body; nothing is read or
    /// checked.
    ///
    /// Lets a list be allocated once with room for what really arrived. The count
    /// stops at an empty filter, which the decoder is about to refuse anyway
    /// [MQTT-4.7.3-1], so it never exceeds the bytes received divided by
    /// `3 + trailer`, however the peer fills the packet.
    pub(crate) fn count_filters(&self, trailer: usize) -> usize {
        let mut rest = &self.body[..];
        let mut count = 0;
        while let [high, low, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*high, *low]));
            let Some(next) = tail.get(len + trailer..).filter(|_| len > 0) else {
                break;
            };
            rest = next;
            count += 1;
        }
        count
    }

    fn truncated(&self, field: &'static str) -> DecodeError {
        DecodeError::Truncated {
            packet_type: self.packet_type,
            field,
        }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        if self.body.is_empty() {
            return Err(self.truncated(field));
        }
        Ok(self.body.get_u8())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        if self.body.len() < 2 {
            return Err(self.truncated(field));
        }
        Ok(self.body.get_u16())
    }

    /// A packet identifier, which must not be zero [MQTT-2.3.1-1].
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let id = self.u16("packet identifier")?;
        PacketId::new(id).ok_or(DecodeError::ZeroPacketId {
            packet_type: self.packet_type,
        })
    }

    /// The two-byte length prefix of a field, checked against what is left.
    fn prefixed_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let len = usize::from(self.u16(field)?);
        if self.body.len() < len {
            return Err(self.truncated(field));
        }
        Ok(len)
    }

    /// Binary data with a two-byte length prefix (section 1.5.3's layout, any bytes).
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.prefixed_len(field)?;
        Ok(self.body.split_to(len))
    }

    /// A UTF-8 string with a two-byte length prefix: well-formed and free of U+0000
    /// ([MQTT-1.5.3-1], [MQTT-1.5.3-2]).
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = self.prefixed_len(field)?;
        let packet_type = self.packet_type;
        // Checked in place and copied once, without sharing the packet's buffer: the
        // owned `String` outlives it cheaply.
        let raw = self.body.get(..len).ok_or(self.truncated(field))?;
        let text = std::str::from_utf8(raw)
            .map_err(|_| DecodeError::InvalidUtf8 { packet_type, field })?;
        if raw.contains(&0) {
            return Err(DecodeError::NullCharacter { packet_type, field });
        }
        let string = text.to_owned();
        self.body.advance(len);
        Ok(string)
    }

    pub(crate) fn topic_name(&mut self, field: &'static str) -> Result<TopicName, DecodeError> {
        let bytes = self.binary(field)?;
        TopicName::from_bytes(bytes).map_err(|(bytes, error)| {
            self.topic_error(field, error, &bytes, |packet_type, topic, error| {
                DecodeError::InvalidTopicName {
                    packet_type,
                    topic,
                    error,
                }
            })
        })
    }

    /// A topic filter, copied out of the packet: a subscription lives far longer
    /// than the packet that made it, and a few bytes of filter must not keep the
    /// whole read buffer they arrived in alive. (A PUBLISH topic, by contrast, lives
    /// exactly as long as its payload, which shares that buffer anyway.)
    pub(crate) fn topic_filter(&mut self) -> Result<TopicFilter, DecodeError> {
        let len = self.prefixed_len("topic filter")?;
        let copy = Bytes::copy_from_slice(self.body.get(..len).unwrap_or_default());
        self.body.advance(len);
        TopicFilter::from_bytes(copy).map_err(|(bytes, error)| {
            self.topic_error(
                "topic filter",
                error,
                &bytes,
                |packet_type, filter, error| DecodeError::InvalidTopicFilter {
                    packet_type,
                    filter,
                    error,
                },
            )
        })
    }

    /// Turns a topic check's failure into the right [`DecodeError`]: not UTF-8, a
    /// null character (reported as a string rule, as it is one), or a topic rule.
    fn topic_error(
        &self,
        field: &'static str,
        error: Option<super::TopicError>,
        bytes: &[u8],
        topic_rule: impl FnOnce(PacketType, String, super::TopicError) -> DecodeError,
    ) -> DecodeError {
        let packet_type = self.packet_type;
        match error {
            None => DecodeError::InvalidUtf8 { packet_type, field },
            Some(super::TopicError::NullCharacter) => {
                DecodeError::NullCharacter { packet_type, field }
            }
            Some(error) => topic_rule(
                packet_type,
                String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned(),
                error,
            ),
        }
    }

    /// Everything left in the body (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.body)
    }

    /// Checks that every byte of the body was read.
    fn finish(&self) -> Result<(), DecodeError> {
        if self.body.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet_type: self.packet_type,
                extra: self.body.len(),
            })
        }
    }
}

/// Appends a fixed header for a body of `remaining_length` bytes.
pub(crate) fn write_fixed_header(
    out: &mut Vec<u8>,
    first_byte: u8,
    remaining_length: usize,
) -> Result<(), EncodeError> {
    if remaining_length > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge(remaining_length));
    }
    out.push(first_byte);
    let mut rest = remaining_length;
    loop {
        let mut byte = (rest % 128) as u8;
        rest /= 128;
        if rest > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if rest == 0 {
            return Ok(());
        }
    }
}

/// The first byte of a packet whose flags are fixed by table 2.2.
pub(crate) fn first_byte(packet_type: PacketType) -> u8 {
    ((packet_type as u8) << 4) | packet_type.fixed_flags().unwrap_or(0)
}

/// Length of a length-prefixed field, checked against the two-byte prefix.
pub(crate) fn field_len(field: &'static str, len: usize) -> Result<usize, EncodeError> {
    if len > MAX_STRING_LEN {
        return Err(EncodeError::FieldTooLong { field, len });
    }
    Ok(2 + len)
}

pub(crate) fn write_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a length-prefixed field; its length must have been checked by
/// [`field_len`].
pub(crate) fn write_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    write_u16(out, bytes.len() as u16);
    out.extend_from_slice(bytes);
}

/// Encodes PINGREQ, PINGRESP, or an MQTT 3.1.1 DISCONNECT: a fixed header and
/// nothing else.
pub(crate) fn encode_empty(packet_type: PacketType, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_fixed_header(out, first_byte(packet_type), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
        FixedHeader::parse(bytes, None)
    }

    #[test]
    fn mqtt_3_1_may_set_dup_on_pubrel_subscribe_and_unsubscribe() {
        use crate::protocol::Connect;
        let mut connect = Connect::new("old");
        connect.protocol = ProtocolVersion::V3_1;
        let mut bytes = Vec::new();
        Packet::from(connect).encode(&mut bytes).unwrap();
        // A PUBREL sent again, with DUP: 0x6A.
        bytes.extend_from_slice(&[0x6A, 0x02, 0x00, 0x01]);
        let mut buffer = BytesMut::from(&bytes[..]);
        let mut decoder = Decoder::new();
        assert!(matches!(
            decoder.decode(&mut buffer),
            Ok(Some(Packet::Connect(_)))
        ));
        assert!(matches!(
            decoder.decode(&mut buffer),
            Ok(Some(Packet::PubRel(_)))
        ));
        // At 3.1.1 the same bytes break [MQTT-2.2.2-2].
        let mut decoder = Decoder::new();
        let mut buffer = BytesMut::from(&[0x6A, 0x02, 0x00, 0x01][..]);
        assert!(matches!(
            decoder.decode(&mut buffer),
            Err(DecodeError::InvalidHeaderFlags { .. })
        ));
    }

    #[test]
    fn remaining_length_uses_one_to_four_bytes() {
        let cases: [(&[u8], usize, usize); 8] = [
            (&[0xC0, 0x00], 0, 2),
            (&[0xC0, 0x7F], 127, 2),
            (&[0xC0, 0x80, 0x01], 128, 3),
            (&[0xC0, 0xFF, 0x7F], 16_383, 3),
            (&[0xC0, 0x80, 0x80, 0x01], 16_384, 4),
            (&[0xC0, 0xFF, 0xFF, 0x7F], 2_097_151, 4),
            (&[0xC0, 0x80, 0x80, 0x80, 0x01], 2_097_152, 5),
            (&[0xC0, 0xFF, 0xFF, 0xFF, 0x7F], MAX_REMAINING_LENGTH, 5),
        ];
        for (bytes, length, header_len) in cases {
            let parsed = header(bytes).unwrap().unwrap();
            assert_eq!(parsed.remaining_length, length);
            assert_eq!(parsed.header_len, header_len);
            let mut written = Vec::new();
            write_fixed_header(&mut written, 0xC0, length).unwrap();
            assert_eq!(written, bytes);
        }
    }

    #[test]
    fn a_fifth_remaining_length_byte_is_malformed() {
        assert_eq!(
            header(&[0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::MalformedRemainingLength)
        );
    }

    #[test]
    fn a_partial_fixed_header_waits_for_more() {
        assert_eq!(header(&[]), Ok(None));
        assert_eq!(header(&[0x30]), Ok(None));
        assert_eq!(header(&[0x30, 0x80, 0x80]), Ok(None));
    }

    #[test]
    fn a_huge_announced_packet_is_refused_before_its_body_arrives() {
        let mut buffer = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, b'a'][..]);
        let err = Decoder::new().decode(&mut buffer).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PacketTooLarge {
                packet_type: PacketType::Publish,
                size: MAX_REMAINING_LENGTH + 5,
                max: DEFAULT_MAX_PACKET_SIZE
            }
        );
    }

    #[test]
    fn a_packet_bigger_than_the_input_but_under_the_limit_just_waits() {
        let mut decoder = Decoder::new().with_max_packet_size(MAX_REMAINING_LENGTH + 5);
        let mut buffer = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, b'a'][..]);
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        assert_eq!(buffer.len(), 8);
    }

    #[test]
    fn writing_more_than_256_mib_is_refused() {
        let mut out = Vec::new();
        assert_eq!(
            write_fixed_header(&mut out, 0x30, MAX_REMAINING_LENGTH + 1),
            Err(EncodeError::PacketTooLarge(MAX_REMAINING_LENGTH + 1))
        );
        assert!(out.is_empty());
    }
}
