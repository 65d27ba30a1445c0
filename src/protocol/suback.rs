//! SUBACK: the server's answer to SUBSCRIBE (section 3.9).
//!
//! ```text
//! fixed header   0x90, remaining length
//! packet id      two bytes, that of the SUBSCRIBE [MQTT-3.8.4-2]
//! payload        one return code per filter, in order [MQTT-3.8.4-5]:
//!                0x00, 0x01, 0x02 granted QoS; 0x80 failure [MQTT-3.9.3-2]
//! ```

use super::codec::{first_byte, write_fixed_header, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::{PacketId, PacketType, QoS};

/// SUBACK: one return code for each filter of the SUBSCRIBE it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One per filter, in the order of the SUBSCRIBE.
    pub return_codes: Vec<SubscribeReturnCode>,
}

/// The outcome of one filter of a SUBSCRIBE.
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

impl SubAck {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.return_codes.is_empty() {
            return Err(EncodeError::EmptyList(PacketType::SubAck));
        }
        write_fixed_header(
            out,
            first_byte(PacketType::SubAck),
            2 + self.return_codes.len(),
        )?;
        write_u16(out, self.packet_id.get());
        out.extend(self.return_codes.iter().map(|code| code.to_u8()));
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader) -> Result<SubAck, DecodeError> {
    let packet_id = reader.packet_id()?;
    // One byte per return code: the rest of the body is the exact count.
    let mut return_codes = Vec::with_capacity(reader.remaining());
    while !reader.is_empty() {
        let byte = reader.u8("return code")?;
        let code =
            SubscribeReturnCode::from_u8(byte).ok_or(DecodeError::InvalidSubAckReturnCode(byte))?;
        return_codes.push(code);
    }
    if return_codes.is_empty() {
        return Err(DecodeError::NoSubAckReturnCodes);
    }
    Ok(SubAck {
        packet_id,
        return_codes,
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
        let suback = SubAck {
            packet_id: PacketId::new(7).unwrap(),
            return_codes: vec![
                SubscribeReturnCode::Success(QoS::AtMostOnce),
                SubscribeReturnCode::Success(QoS::ExactlyOnce),
                SubscribeReturnCode::Failure,
            ],
        };
        let mut out = Vec::new();
        suback.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(
            Decoder::new().decode(&mut BytesMut::from(bytes)),
            Ok(Some(Packet::SubAck(suback)))
        );
    }
}
