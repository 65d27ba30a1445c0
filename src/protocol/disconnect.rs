//! DISCONNECT (section 3.14) and AUTH (section 3.15, MQTT 5 only).
//!
//! ```text
//! fixed header   0xE0 DISCONNECT, 0xF0 AUTH; remaining length
//! MQTT 5 only:   reason code (one byte), properties; both may be left out when
//!                the code is 0x00 and there are no properties (remaining length 0),
//!                the properties alone when there are none (remaining length 1)
//! ```
//!
//! A 3.1 or 3.1.1 DISCONNECT is the fixed header alone; AUTH does not exist there.

use super::ack::{check_reason_code, reason_code};
use super::codec::{first_byte, write_fixed_header, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketType, ProtocolVersion, ReasonCode};

/// DISCONNECT: the last packet of a connection. A 3.1.1 client sends it to leave
/// cleanly; in MQTT 5 either side may send it, with a reason code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Disconnect {
    /// MQTT 5: why ([`ReasonCode::NORMAL_DISCONNECTION`] for 3.1 and 3.1.1).
    pub reason_code: ReasonCode,
    /// MQTT 5 properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

/// AUTH: a step of MQTT 5 enhanced authentication.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Auth {
    /// [`ReasonCode::SUCCESS`], [`ReasonCode::CONTINUE_AUTHENTICATION`] or
    /// [`ReasonCode::RE_AUTHENTICATE`].
    pub reason_code: ReasonCode,
    /// Properties (Authentication Method and Data, Reason String, User Property);
    /// `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

impl Disconnect {
    /// A DISCONNECT with `reason_code` and no properties.
    pub fn new(reason_code: ReasonCode) -> Disconnect {
        Disconnect {
            reason_code,
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
            return write_fixed_header(out, first_byte(PacketType::Disconnect), 0);
        }
        encode_v5(
            PacketType::Disconnect,
            PropertyContext::Disconnect,
            self.reason_code,
            properties::present(&self.properties),
            out,
        )
    }
}

impl Auth {
    /// An AUTH with `reason_code` and no properties.
    pub fn new(reason_code: ReasonCode) -> Auth {
        Auth {
            reason_code,
            properties: None,
        }
    }

    /// The properties (empty when there are none).
    pub fn properties(&self) -> &Properties {
        properties::or_empty(&self.properties)
    }

    pub(crate) fn encode_for(
        &self,
        version: ProtocolVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if version != ProtocolVersion::V5 {
            return Err(EncodeError::NotInVersion {
                what: "AUTH",
                version,
            });
        }
        encode_v5(
            PacketType::Auth,
            PropertyContext::Auth,
            self.reason_code,
            properties::present(&self.properties),
            out,
        )
    }
}

fn encode_v5(
    packet_type: PacketType,
    context: PropertyContext,
    code: ReasonCode,
    props: Option<&Properties>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    check_reason_code(packet_type, code)?;
    if props.is_none() {
        if code == ReasonCode::SUCCESS {
            return write_fixed_header(out, first_byte(packet_type), 0);
        }
        write_fixed_header(out, first_byte(packet_type), 1)?;
        out.push(code.0);
        return Ok(());
    }
    let len = 1 + properties::encoded_len(props, context)?;
    write_fixed_header(out, first_byte(packet_type), len)?;
    out.push(code.0);
    properties::write(out, props);
    Ok(())
}

/// Reads the optional reason code and properties of an MQTT 5 DISCONNECT or AUTH.
fn decode_v5(
    reader: &mut Reader,
    context: PropertyContext,
) -> Result<(ReasonCode, Option<Box<Properties>>), DecodeError> {
    if reader.is_empty() {
        return Ok((ReasonCode::SUCCESS, None));
    }
    let code = reason_code(reader)?;
    if reader.is_empty() {
        return Ok((code, None));
    }
    Ok((code, properties::decode(reader, context)?))
}

pub(crate) fn decode_disconnect(reader: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    if !v5 {
        return Ok(Disconnect::default());
    }
    let (reason_code, properties) = decode_v5(reader, PropertyContext::Disconnect)?;
    Ok(Disconnect {
        reason_code,
        properties,
    })
}

pub(crate) fn decode_auth(reader: &mut Reader) -> Result<Auth, DecodeError> {
    let (reason_code, properties) = decode_v5(reader, PropertyContext::Auth)?;
    Ok(Auth {
        reason_code,
        properties,
    })
}
