//! CONNACK: the server's answer to CONNECT (section 3.2).
//!
//! ```text
//! fixed header   0x20 0x02
//! flags          bit 0 session present, bits 7-1 reserved (0)
//! return code    0 accepted, 1-5 refused (see ConnectReturnCode)
//! ```

use std::fmt;

use super::codec::{first_byte, write_fixed_header, Reader};
use super::error::{DecodeError, EncodeError};
use super::PacketType;

/// CONNACK: the server accepts or refuses a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server continued a stored session (only with clean session 0;
    /// always `false` on a refusal [MQTT-3.2.2-4]).
    pub session_present: bool,
    /// Accepted, or why not.
    pub code: ConnectReturnCode,
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
            code: ConnectReturnCode::Accepted,
        }
    }

    /// A CONNACK that refuses with `code`.
    pub fn refused(code: ConnectReturnCode) -> ConnAck {
        ConnAck {
            session_present: false,
            code,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_fixed_header(out, first_byte(PacketType::ConnAck), 2)?;
        out.push(self.session_present as u8);
        out.push(self.code as u8);
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader) -> Result<ConnAck, DecodeError> {
    let flags = reader.u8("acknowledge flags")?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    let value = reader.u8("return code")?;
    let code =
        ConnectReturnCode::from_u8(value).ok_or(DecodeError::InvalidConnectReturnCode(value))?;
    let session_present = flags & 1 != 0;
    if session_present && code != ConnectReturnCode::Accepted {
        return Err(DecodeError::SessionPresentOnRefusal(value));
    }
    Ok(ConnAck {
        session_present,
        code,
    })
}
