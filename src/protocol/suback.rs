//! SUBACK: the server's answer to SUBSCRIBE (section 3.9).
//!
//! ```text
//! fixed header   0x90, remaining length
//! packet id      two bytes, that of the SUBSCRIBE [MQTT-3.8.4-2]
//! payload        one return code per filter, in order [MQTT-3.8.4-5]:
//!                0x00, 0x01, 0x02 granted QoS; 0x80 failure [MQTT-3.9.3-2]
//! MQTT 5:        properties after the packet id; the payload holds reason codes
//!                (granted QoS, or an error 0x80 and above)
//! ```

use super::ack::{check_reason_code, reason_code};
use super::codec::{first_byte, write_fixed_header, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketId, PacketType, ProtocolVersion, QoS, ReasonCode};

/// SUBACK: one reason code for each filter of the SUBSCRIBE it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One per filter, in the order of the SUBSCRIBE: the QoS granted
    /// ([`ReasonCode::GRANTED_QOS_0`] to [`ReasonCode::GRANTED_QOS_2`]) or an error.
    /// MQTT 3.1.1 carries any error as 0x80.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5 properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

/// The outcome of one filter of a SUBSCRIBE in MQTT 3.1.1 terms; converts to and from
/// [`ReasonCode`] (every error code is a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeReturnCode {
    /// Subscribed; messages come with at most this QoS.
    Success(QoS),
    /// 0x80: refused (not authorised, or the server could not do it).
    Failure,
}

impl SubscribeReturnCode {
    /// The byte on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            SubscribeReturnCode::Success(qos) => qos as u8,
            SubscribeReturnCode::Failure => 0x80,
        }
    }

    /// The return code for `byte`, or `None` if it is not one of 0x00, 0x01, 0x02,
    /// 0x80.
    pub fn from_u8(byte: u8) -> Option<SubscribeReturnCode> {
        match byte {
            0x80 => Some(SubscribeReturnCode::Failure),
            _ => QoS::from_u8(byte).map(SubscribeReturnCode::Success),
        }
    }
}

impl From<SubscribeReturnCode> for ReasonCode {
    fn from(code: SubscribeReturnCode) -> ReasonCode {
        match code {
            SubscribeReturnCode::Success(qos) => ReasonCode(qos as u8),
            SubscribeReturnCode::Failure => ReasonCode::UNSPECIFIED_ERROR,
        }
    }
}

impl From<ReasonCode> for SubscribeReturnCode {
    /// A granted QoS, or a failure for anything else.
    fn from(code: ReasonCode) -> SubscribeReturnCode {
        match QoS::from_u8(code.0) {
            Some(qos) => SubscribeReturnCode::Success(qos),
            None => SubscribeReturnCode::Failure,
        }
    }
}

impl SubAck {
    /// The SUBACK for `packet_id` with `reason_codes` (anything that converts: a
    /// [`SubscribeReturnCode`] or a [`ReasonCode`]) and no properties.
    pub fn new<C: Into<ReasonCode>>(
        packet_id: PacketId,
        reason_codes: impl IntoIterator<Item = C>,
    ) -> SubAck {
        SubAck {
            packet_id,
            reason_codes: reason_codes.into_iter().map(Into::into).collect(),
            properties: None,
        }
    }

    /// The codes in MQTT 3.1.1 terms: a granted QoS, or a failure for any error.
    pub fn return_codes(&self) -> Vec<SubscribeReturnCode> {
        self.reason_codes.iter().map(|&code| code.into()).collect()
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
        if self.reason_codes.is_empty() {
            return Err(EncodeError::EmptyList(PacketType::SubAck));
        }
        for &code in &self.reason_codes {
            check_reason_code(PacketType::SubAck, code)?;
        }
        if version != ProtocolVersion::V5 {
            write_fixed_header(
                out,
                first_byte(PacketType::SubAck),
                2 + self.reason_codes.len(),
            )?;
            write_u16(out, self.packet_id.get());
            out.extend(
                self.reason_codes
                    .iter()
                    .map(|&code| SubscribeReturnCode::from(code).to_u8()),
            );
            return Ok(());
        }
        let props = properties::present(&self.properties);
        let len =
            2 + properties::encoded_len(props, PropertyContext::SubAck)? + self.reason_codes.len();
        write_fixed_header(out, first_byte(PacketType::SubAck), len)?;
        write_u16(out, self.packet_id.get());
        properties::write(out, props);
        out.extend(self.reason_codes.iter().map(|code| code.0));
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let packet_id = reader.packet_id()?;
    let properties = if v5 {
        properties::decode(reader, PropertyContext::SubAck)?
    } else {
        None
    };
    // One byte per return code: the rest of the body is the exact count.
    let mut reason_codes = Vec::with_capacity(reader.remaining());
    while !reader.is_empty() {
        let code = if v5 {
            reason_code(reader)?
        } else {
            let byte = reader.u8("return code")?;
            SubscribeReturnCode::from_u8(byte)
                .ok_or(DecodeError::InvalidSubAckReturnCode(byte))?
                .into()
        };
        reason_codes.push(code);
    }
    if reason_codes.is_empty() {
        return Err(DecodeError::NoSubAckReturnCodes);
    }
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::{Decoder, Packet};

    #[test]
    fn suback_carries_one_code_per_filter() {
        let bytes: &[u8] = &[0x90, 5, 0x00, 0x07, 0x00, 0x02, 0x80];
        let suback = SubAck::new(
            PacketId::new(7).unwrap(),
            [
                SubscribeReturnCode::Success(QoS::AtMostOnce),
                SubscribeReturnCode::Success(QoS::ExactlyOnce),
                SubscribeReturnCode::Failure,
            ],
        );
        let mut out = Vec::new();
        Packet::SubAck(suback.clone()).encode(&mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(
            Decoder::new().decode(&mut BytesMut::from(bytes)),
            Ok(Some(Packet::SubAck(suback)))
        );
    }
}
