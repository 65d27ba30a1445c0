//! CONNACK: the server's answer to CONNECT (section 3.2).
//!
//! ```text
//! fixed header   0x20 0x02
//! flags          bit 0 session present, bits 7-1 reserved (0)
//! return code    0 accepted, 1-5 refused (see ConnectReturnCode)
//! MQTT 5:        the byte is a reason code (section 3.2.2.2), followed by properties
//! ```

use std::fmt;

use super::ack::{check_reason_code, reason_code};
use super::codec::{first_byte, write_fixed_header, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketType, ProtocolVersion, ReasonCode};

/// CONNACK: the server accepts or refuses a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server continued a stored session (only with clean session 0;
    /// always `false` on a refusal [MQTT-3.2.2-4]).
    pub session_present: bool,
    /// Accepted ([`ReasonCode::SUCCESS`]), or why not, as an MQTT 5 reason code. A
    /// 3.1/3.1.1 return code is held as its MQTT 5 equivalent
    /// ([`ConnectReturnCode::reason_code`]) and written back as the nearest 3.1.1
    /// return code ([`ConnectReturnCode::from_reason`]).
    pub code: ReasonCode,
    /// MQTT 5 properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

/// The CONNACK return code: whether the connection is accepted, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0x00: connection accepted.
    Accepted = 0,
    /// 0x01: the server does not speak the protocol level the client asked for.
    UnacceptableProtocolVersion = 1,
    /// 0x02: the client id is well-formed UTF-8 but the server does not allow it (an
    /// empty id with clean session 0, for instance).
    IdentifierRejected = 2,
    /// 0x03: the server is up but the MQTT service is not available.
    ServerUnavailable = 3,
    /// 0x04: the user name or password is wrong.
    BadUserNameOrPassword = 4,
    /// 0x05: the client is not authorised to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The return code for `value`, or `None` for the reserved values 6 to 255.
    pub fn from_u8(value: u8) -> Option<ConnectReturnCode> {
        use ConnectReturnCode::*;
        Some(match value {
            0 => Accepted,
            1 => UnacceptableProtocolVersion,
            2 => IdentifierRejected,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }
}

impl ConnectReturnCode {
    /// The MQTT 5 reason code with the same meaning: 0x00, 0x84, 0x85, 0x88, 0x86,
    /// 0x87.
    pub fn reason_code(self) -> ReasonCode {
        match self {
            ConnectReturnCode::Accepted => ReasonCode::SUCCESS,
            ConnectReturnCode::UnacceptableProtocolVersion => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            ConnectReturnCode::IdentifierRejected => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            ConnectReturnCode::ServerUnavailable => ReasonCode::SERVER_UNAVAILABLE,
            ConnectReturnCode::BadUserNameOrPassword => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ConnectReturnCode::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
        }
    }

    /// The 3.1.1 return code nearest to an MQTT 5 CONNACK reason code, as mosquitto
    /// answers a 3.1.1 client: success is 0 (Accepted); 0x84 Unsupported Protocol
    /// Version is 1; 0x85 Client Identifier not valid is 2; 0x86 Bad User Name or
    /// Password is 4; 0x87 Not authorized, 0x8A Banned and 0x8C Bad authentication
    /// method are 5 (Not authorized); every other error (0x80 to 0x83, 0x88 Server
    /// unavailable, 0x89 Server busy, 0x95, 0x97, 0x99 to 0x9F, ...) is 3 (Server
    /// unavailable).
    pub fn from_reason(code: ReasonCode) -> ConnectReturnCode {
        match code {
            c if !c.is_error() => ConnectReturnCode::Accepted,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => {
                ConnectReturnCode::UnacceptableProtocolVersion
            }
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => ConnectReturnCode::IdentifierRejected,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD => ConnectReturnCode::BadUserNameOrPassword,
            ReasonCode::NOT_AUTHORIZED
            | ReasonCode::BANNED
            | ReasonCode::BAD_AUTHENTICATION_METHOD => ConnectReturnCode::NotAuthorized,
            _ => ConnectReturnCode::ServerUnavailable,
        }
    }
}

impl From<ConnectReturnCode> for ReasonCode {
    fn from(code: ConnectReturnCode) -> ReasonCode {
        code.reason_code()
    }
}

impl From<ReasonCode> for ConnectReturnCode {
    fn from(code: ReasonCode) -> ConnectReturnCode {
        ConnectReturnCode::from_reason(code)
    }
}

impl PartialEq<ConnectReturnCode> for ReasonCode {
    fn eq(&self, other: &ConnectReturnCode) -> bool {
        *self == other.reason_code()
    }
}

impl fmt::Display for ConnectReturnCode {
    /// The wording mosquitto's tools use, so scripts and people see the same text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectReturnCode::Accepted => "Connection Accepted.",
            ConnectReturnCode::UnacceptableProtocolVersion => {
                "Connection Refused: unacceptable protocol version."
            }
            ConnectReturnCode::IdentifierRejected => "Connection Refused: identifier rejected.",
            ConnectReturnCode::ServerUnavailable => "Connection Refused: broker unavailable.",
            ConnectReturnCode::BadUserNameOrPassword => {
                "Connection Refused: bad user name or password."
            }
            ConnectReturnCode::NotAuthorized => "Connection Refused: not authorised.",
        })
    }
}

impl ConnAck {
    /// A CONNACK that accepts, saying whether a session was present.
    pub fn accepted(session_present: bool) -> ConnAck {
        ConnAck {
            session_present,
            code: ReasonCode::SUCCESS,
            properties: None,
        }
    }

    /// A CONNACK that refuses with `code`: a [`ConnectReturnCode`] or an MQTT 5
    /// [`ReasonCode`].
    pub fn refused(code: impl Into<ReasonCode>) -> ConnAck {
        ConnAck {
            session_present: false,
            code: code.into(),
            properties: None,
        }
    }

    /// The 3.1.1 return code of the answer: the nearest one for an MQTT 5 code.
    pub fn return_code(&self) -> ConnectReturnCode {
        ConnectReturnCode::from_reason(self.code)
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
            write_fixed_header(out, first_byte(PacketType::ConnAck), 2)?;
            out.push(self.session_present as u8);
            out.push(self.return_code() as u8);
            return Ok(());
        }
        check_reason_code(PacketType::ConnAck, self.code)?;
        let props = properties::present(&self.properties);
        let len = 2 + properties::encoded_len(props, PropertyContext::ConnAck)?;
        write_fixed_header(out, first_byte(PacketType::ConnAck), len)?;
        out.push(self.session_present as u8);
        out.push(self.code.0);
        properties::write_ordered(out, props, properties::CONNACK_ORDER);
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader, v5: bool) -> Result<ConnAck, DecodeError> {
    let flags = reader.u8("acknowledge flags")?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    let session_present = flags & 1 != 0;
    let (value, code, properties) = if v5 {
        let code = reason_code(reader)?;
        let properties = properties::decode(reader, PropertyContext::ConnAck)?;
        (code.0, code, properties)
    } else {
        let value = reader.u8("return code")?;
        let code = ConnectReturnCode::from_u8(value)
            .ok_or(DecodeError::InvalidConnectReturnCode(value))?;
        (value, code.reason_code(), None)
    };
    if session_present && code != ReasonCode::SUCCESS {
        return Err(DecodeError::SessionPresentOnRefusal(value));
    }
    Ok(ConnAck {
        session_present,
        code,
        properties,
    })
}
