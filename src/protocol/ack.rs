//! The acknowledgements of PUBLISH: PUBACK, PUBREC, PUBREL, PUBCOMP (sections 3.4 to
//! 3.7), and UNSUBACK (section 3.11).
//!
//! ```text
//! fixed header   0x40 PUBACK, 0x50 PUBREC, 0x62 PUBREL, 0x70 PUBCOMP, 0xB0 UNSUBACK
//! packet id      two bytes, never zero
//! MQTT 5 only:   reason code (one byte) and properties; for PUBACK to PUBCOMP both
//!                may be left out when the code is 0x00 and there are no properties
//!                (remaining length 2), the properties alone when there are none
//!                (remaining length 3). UNSUBACK carries properties and one reason
//!                code per filter.
//! ```
//!
//! PUBREL is the one with flags `0010` [MQTT-3.6.1-1].

use super::codec::{first_byte, write_fixed_header, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketId, PacketType, ProtocolVersion, ReasonCode};

macro_rules! ack_packet {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name {
            /// The identifier of the packet this one answers.
            pub packet_id: PacketId,
            /// MQTT 5: how it went ([`ReasonCode::SUCCESS`] for 3.1 and 3.1.1, which
            /// do not carry it).
            pub reason_code: ReasonCode,
            /// MQTT 5 properties (Reason String, User Property); `None` when there
            /// are none.
            pub properties: Option<Box<Properties>>,
        }

        impl $name {
            /// The packet for `packet_id`, with reason code SUCCESS and no properties.
            pub fn new(packet_id: PacketId) -> $name {
                $name {
                    packet_id,
                    reason_code: ReasonCode::SUCCESS,
                    properties: None,
                }
            }

            /// The MQTT 5 properties (empty when there are none).
            pub fn properties(&self) -> &Properties {
                properties::or_empty(&self.properties)
            }

            /// Appends the packet's bytes for `version` to `out`.
            pub(crate) fn encode_for(
                &self,
                version: ProtocolVersion,
                out: &mut Vec<u8>,
            ) -> Result<(), EncodeError> {
                encode_ack(
                    PacketType::$name,
                    PropertyContext::$name,
                    self.packet_id,
                    self.reason_code,
                    properties::present(&self.properties),
                    version,
                    out,
                )
            }

            pub(crate) fn decode(reader: &mut Reader, v5: bool) -> Result<$name, DecodeError> {
                let packet_id = reader.packet_id()?;
                let mut ack = $name::new(packet_id);
                if v5 && !reader.is_empty() {
                    ack.reason_code = reason_code(reader)?;
                    if !reader.is_empty() {
                        ack.properties =
                            properties::decode(reader, PropertyContext::$name)?;
                    }
                }
                Ok(ack)
            }
        }
    };
}

/// Reads one reason code and checks that the packet may carry it.
pub(crate) fn reason_code(reader: &mut Reader) -> Result<ReasonCode, DecodeError> {
    let code = ReasonCode(reader.u8("reason code")?);
    let packet_type = reader.packet_type();
    if !code.allowed_in(packet_type) {
        return Err(DecodeError::InvalidReasonCode {
            packet_type,
            code: code.0,
        });
    }
    Ok(code)
}

/// Checks that `packet_type` may carry `code` before it is encoded.
pub(crate) fn check_reason_code(
    packet_type: PacketType,
    code: ReasonCode,
) -> Result<(), EncodeError> {
    if code.allowed_in(packet_type) {
        Ok(())
    } else {
        Err(EncodeError::InvalidReasonCode { packet_type, code })
    }
}

fn encode_ack(
    packet_type: PacketType,
    context: PropertyContext,
    packet_id: PacketId,
    code: ReasonCode,
    props: Option<&Properties>,
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if version != ProtocolVersion::V5 || (code == ReasonCode::SUCCESS && props.is_none()) {
        write_fixed_header(out, first_byte(packet_type), 2)?;
        write_u16(out, packet_id.get());
        return Ok(());
    }
    check_reason_code(packet_type, code)?;
    let props_len = match props {
        None => 0,
        Some(_) => properties::encoded_len(props, context)?,
    };
    write_fixed_header(out, first_byte(packet_type), 3 + props_len)?;
    write_u16(out, packet_id.get());
    out.push(code.0);
    if props.is_some() {
        properties::write(out, props);
    }
    Ok(())
}

ack_packet!(
    /// PUBACK: the receiver of a QoS 1 PUBLISH has it.
    PubAck
);
ack_packet!(
    /// PUBREC: QoS 2, step 2: the receiver of the PUBLISH has it and holds its
    /// packet identifier.
    PubRec
);
ack_packet!(
    /// PUBREL: QoS 2, step 3: the sender lets the receiver release the identifier.
    PubRel
);
ack_packet!(
    /// PUBCOMP: QoS 2, step 4: the exchange is complete.
    PubComp
);

/// UNSUBACK: the server has processed an UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnsubAck {
    /// The identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// MQTT 5: one reason code per filter of the UNSUBSCRIBE, in order (at least
    /// one). Empty for 3.1 and 3.1.1, which do not carry them.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5 properties (Reason String, User Property); `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

impl UnsubAck {
    /// The UNSUBACK for `packet_id`, without reason codes (as 3.1.1 has it) or
    /// properties.
    pub fn new(packet_id: PacketId) -> UnsubAck {
        UnsubAck {
            packet_id,
            reason_codes: Vec::new(),
            properties: None,
        }
    }

    /// The MQTT 5 properties (empty when there are none).
    pub fn properties(&self) -> &Properties {
        properties::or_empty(&self.properties)
    }

    pub(crate) fn encode_for(
        &self,
        version: ProtocolVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if version != ProtocolVersion::V5 {
            write_fixed_header(out, first_byte(PacketType::UnsubAck), 2)?;
            write_u16(out, self.packet_id.get());
            return Ok(());
        }
        if self.reason_codes.is_empty() {
            return Err(EncodeError::EmptyList(PacketType::UnsubAck));
        }
        for &code in &self.reason_codes {
            check_reason_code(PacketType::UnsubAck, code)?;
        }
        let props = properties::present(&self.properties);
        let len = 2
            + properties::encoded_len(props, PropertyContext::UnsubAck)?
            + self.reason_codes.len();
        write_fixed_header(out, first_byte(PacketType::UnsubAck), len)?;
        write_u16(out, self.packet_id.get());
        properties::write(out, props);
        out.extend(self.reason_codes.iter().map(|code| code.0));
        Ok(())
    }
}

pub(crate) fn decode_unsuback(reader: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let mut unsuback = UnsubAck::new(reader.packet_id()?);
    if v5 {
        unsuback.properties = properties::decode(reader, PropertyContext::UnsubAck)?;
        unsuback.reason_codes.reserve_exact(reader.remaining());
        while !reader.is_empty() {
            unsuback.reason_codes.push(reason_code(reader)?);
        }
        if unsuback.reason_codes.is_empty() {
            return Err(DecodeError::NoUnsubAckReasonCodes);
        }
    }
    Ok(unsuback)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::{Decoder, Packet};

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    #[test]
    fn each_ack_has_its_first_byte_mqtt_2_2_2_1() {
        let cases = [
            (Packet::PubAck(PubAck::new(id(0x1234))), 0x40),
            (Packet::PubRec(PubRec::new(id(0x1234))), 0x50),
            (Packet::PubRel(PubRel::new(id(0x1234))), 0x62),
            (Packet::PubComp(PubComp::new(id(0x1234))), 0x70),
            (Packet::UnsubAck(UnsubAck::new(id(0x1234))), 0xB0),
        ];
        for (packet, first) in cases {
            let mut out = Vec::new();
            packet.encode(&mut out).unwrap();
            assert_eq!(out, [first, 2, 0x12, 0x34]);
            let decoded = Decoder::new().decode(&mut BytesMut::from(&out[..]));
            assert_eq!(decoded, Ok(Some(packet)));
        }
    }

    #[test]
    fn a_v5_ack_with_a_reason_code_and_no_properties_takes_three_bytes() {
        let mut ack = PubAck::new(id(7));
        ack.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
        let mut out = Vec::new();
        Packet::PubAck(ack.clone())
            .encode_for(ProtocolVersion::V5, &mut out)
            .unwrap();
        assert_eq!(out, [0x40, 3, 0, 7, 0x10]);
        let mut decoder = Decoder::new().with_version(ProtocolVersion::V5);
        assert_eq!(
            decoder.decode(&mut BytesMut::from(&out[..])),
            Ok(Some(Packet::PubAck(ack)))
        );
    }
}
