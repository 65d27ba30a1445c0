//! CONNECT: the first packet a client sends (section 3.1).
//!
//! ```text
//! fixed header   0x10, remaining length
//! protocol name  00 04 'M' 'Q' 'T' 'T'  (MQTT 3.1: 00 06 'M' 'Q' 'I' 's' 'd' 'p')
//! level          04                     (MQTT 3.1: 03, MQTT 5: 05); a bridge
//!                sets bit 7 (0x84), mosquitto's "try_private"
//! flags          bit 7 user name, 6 password, 5 will retain, 4-3 will QoS,
//!                2 will flag, 1 clean session (clean start), 0 reserved (must be 0)
//! keep alive     two bytes, seconds
//! MQTT 5:        properties
//! payload        client id, [will properties (MQTT 5), will topic, will message],
//!                [user name], [password]
//! ```
//!
//! MQTT 5 allows a password without a user name (section 3.1.2.9).

use bytes::Bytes;

use super::codec::{field_len, first_byte, write_fixed_header, write_prefixed, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketType, ProtocolVersion, QoS, TopicName};

const USERNAME: u8 = 0b1000_0000;
const PASSWORD: u8 = 0b0100_0000;
const WILL_RETAIN: u8 = 0b0010_0000;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_QOS: u8 = 0b0001_1000;
const WILL: u8 = 0b0000_0100;
const CLEAN_SESSION: u8 = 0b0000_0010;
const RESERVED: u8 = 0b0000_0001;
/// Bit 7 of the protocol level: the client is a bridge between brokers
/// (mosquitto's `try_private`). Not in the specification; brokers that know it do
/// not send a bridge back the messages it published.
const BRIDGE_LEVEL_BIT: u8 = 0x80;

/// CONNECT: a client asks to open a session.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// The version of MQTT the client speaks.
    pub protocol: ProtocolVersion,
    /// Start a new session and discard it on disconnect (`true`), or continue the
    /// session stored under `client_id` (`false`).
    pub clean_session: bool,
    /// The longest silence, in seconds, after which the server may consider the
    /// client gone (it waits one and a half times this). 0 turns keep-alive off.
    pub keep_alive: u16,
    /// Identifies the client and its session. May be empty with a clean session; the
    /// server then assigns one.
    pub client_id: String,
    /// The message the server publishes if the client disappears without a
    /// DISCONNECT.
    pub will: Option<Will>,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password: binary data, not necessarily UTF-8. Needs a user name
    /// before MQTT 5 ([MQTT-3.1.2-22]).
    pub password: Option<Bytes>,
    /// MQTT 5 properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
    /// The client is a bridge from another broker: bit 7 of the protocol level
    /// (0x83, 0x84), mosquitto's `try_private`. A broker that knows the bit sends a
    /// bridge none of the messages it published itself, as if every subscription
    /// of it had MQTT 5's No Local, so that two bridged brokers do not pass a
    /// message back and forth. MQTT 5 bridges use No Local instead: the bit is not
    /// sent with level 5, and a broker that does not know it refuses the CONNECT.
    pub bridge: bool,
}

/// The will message of a CONNECT: published by the server for a client that goes
/// away without saying DISCONNECT.
///
/// This is the wire form, with a checked [`TopicName`]; a client program gives its
/// will as [`wren::client::Will`](crate::client::Will), which the client turns into
/// this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Where the will is published.
    pub topic: TopicName,
    /// What it says.
    pub payload: Bytes,
    /// The QoS it is published with.
    pub qos: QoS,
    /// Whether it is retained.
    pub retain: bool,
    /// MQTT 5 will properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

impl Will {
    /// A will without properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Will {
        Will {
            topic,
            payload: payload.into(),
            qos,
            retain,
            properties: None,
        }
    }

    /// The MQTT 5 will properties (empty when there are none).
    pub fn properties(&self) -> &Properties {
        properties::or_empty(&self.properties)
    }
}

impl Connect {
    /// A CONNECT for MQTT 3.1.1 with a clean session and a 60-second keep-alive.
    pub fn new(client_id: impl Into<String>) -> Connect {
        Connect {
            protocol: ProtocolVersion::V3_1_1,
            clean_session: true,
            keep_alive: 60,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: None,
            bridge: false,
        }
    }

    /// The MQTT 5 properties (empty when there are none).
    pub fn properties(&self) -> &Properties {
        properties::or_empty(&self.properties)
    }

    /// Appends the CONNECT's bytes, in the version of [`protocol`](Self::protocol).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let v5 = self.protocol == ProtocolVersion::V5;
        if self.password.is_some() && self.username.is_none() && !v5 {
            return Err(EncodeError::PasswordWithoutUsername);
        }
        // Topics are checked when they are made; these two are plain strings, so
        // check here what the receiver will check [MQTT-1.5.3-2].
        check_no_null("client id", &self.client_id)?;
        if let Some(username) = &self.username {
            check_no_null("user name", username)?;
        }
        let name = self.protocol.name();
        let mut len = field_len("protocol name", name.len())? + 1 + 1 + 2;
        let props = properties::present(&self.properties);
        let will_props = self
            .will
            .as_ref()
            .and_then(|will| properties::present(&will.properties));
        if v5 {
            len += properties::encoded_len(props, PropertyContext::Connect)?;
        }
        len += field_len("client id", self.client_id.len())?;
        if let Some(will) = &self.will {
            if will.topic.is_empty() {
                return Err(EncodeError::NotInVersion {
                    what: "a will without topic",
                    version: self.protocol,
                });
            }
            if v5 {
                len += properties::encoded_len(will_props, PropertyContext::Will)?;
            }
            len += field_len("will topic", will.topic.len())?;
            len += field_len("will message", will.payload.len())?;
        }
        if let Some(username) = &self.username {
            len += field_len("user name", username.len())?;
        }
        if let Some(password) = &self.password {
            len += field_len("password", password.len())?;
        }

        let mut flags = 0;
        if self.clean_session {
            flags |= CLEAN_SESSION;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }

        write_fixed_header(out, first_byte(PacketType::Connect), len)?;
        write_prefixed(out, name.as_bytes());
        // The bridge bit only where mosquitto reads it: MQTT 3.1 and 3.1.1.
        let bridge = if self.bridge && !v5 {
            BRIDGE_LEVEL_BIT
        } else {
            0
        };
        out.push(self.protocol.level() | bridge);
        out.push(flags);
        write_u16(out, self.keep_alive);
        if v5 {
            properties::write(out, props);
        }
        write_prefixed(out, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                properties::write(out, will_props);
            }
            write_prefixed(out, will.topic.as_bytes());
            write_prefixed(out, &will.payload);
        }
        if let Some(username) = &self.username {
            write_prefixed(out, username.as_bytes());
        }
        if let Some(password) = &self.password {
            write_prefixed(out, password);
        }
        Ok(())
    }
}

fn check_no_null(field: &'static str, value: &str) -> Result<(), EncodeError> {
    if value.contains('\0') {
        return Err(EncodeError::NullCharacter { field });
    }
    Ok(())
}

pub(crate) fn decode(
    reader: &mut Reader,
    max_version: ProtocolVersion,
) -> Result<Connect, DecodeError> {
    let name = reader.binary("protocol name")?;
    let level = reader.u8("protocol level")?;
    let bridge = level & BRIDGE_LEVEL_BIT != 0 && level & !BRIDGE_LEVEL_BIT < 5;
    let protocol = match (
        &name[..],
        if bridge {
            level & !BRIDGE_LEVEL_BIT
        } else {
            level
        },
    ) {
        (b"MQTT", 4) => ProtocolVersion::V3_1_1,
        (b"MQIsdp", 3) => ProtocolVersion::V3_1,
        (b"MQTT", 5) => ProtocolVersion::V5,
        // A known protocol at a level we do not speak is answered with CONNACK 0x01
        // [MQTT-3.1.2-2].
        (b"MQTT" | b"MQIsdp", level) => return Err(DecodeError::UnsupportedProtocolLevel(level)),
        (other, _) => {
            return Err(DecodeError::InvalidProtocolName(
                String::from_utf8_lossy(other).into_owned(),
            ))
        }
    };

    if protocol > max_version {
        return Err(DecodeError::UnsupportedProtocolLevel(level));
    }

    let flags = reader.u8("connect flags")?;
    if flags & RESERVED != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let has_will = flags & WILL != 0;
    if !has_will && flags & (WILL_QOS | WILL_RETAIN) != 0 {
        return Err(DecodeError::WillFlagsWithoutWill);
    }
    let will_qos =
        QoS::from_u8((flags & WILL_QOS) >> WILL_QOS_SHIFT).ok_or(DecodeError::InvalidQoS {
            packet_type: PacketType::Connect,
        })?;
    let v5 = protocol == ProtocolVersion::V5;
    if flags & PASSWORD != 0 && flags & USERNAME == 0 && !v5 {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = reader.u16("keep alive")?;
    let properties = if v5 {
        properties::decode(reader, PropertyContext::Connect)?
    } else {
        None
    };

    // The payload, in the order of [MQTT-3.1.3-1].
    let client_id = reader.string("client id")?;
    let will = if has_will {
        let properties = if v5 {
            properties::decode(reader, PropertyContext::Will)?
        } else {
            None
        };
        Some(Will {
            properties,
            topic: reader.topic_name("will topic")?,
            payload: reader.binary("will message")?,
            qos: will_qos,
            retain: flags & WILL_RETAIN != 0,
        })
    } else {
        None
    };
    let username = if flags & USERNAME != 0 {
        Some(reader.string("user name")?)
    } else {
        None
    };
    let password = if flags & PASSWORD != 0 {
        Some(reader.binary("password")?)
    } else {
        None
    };

    Ok(Connect {
        protocol,
        clean_session: flags & CLEAN_SESSION != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
        bridge,
    })
}

impl std::fmt::Debug for Connect {
    /// Shows everything but the password, which logs must never hold.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("protocol", &self.protocol)
            .field("clean_session", &self.clean_session)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("properties", &self.properties)
            .field("bridge", &self.bridge)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::{Decoder, Packet};

    fn decode_bytes(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
        Decoder::new().decode(&mut BytesMut::from(bytes))
    }

    #[test]
    fn a_bridge_sets_bit_7_of_the_level_in_3_1_1_only() {
        let mut connect = Connect::new("edge");
        connect.bridge = true;
        let mut out = Vec::new();
        connect.encode(&mut out).unwrap();
        assert_eq!(out[8], 0x84, "level 4 with mosquitto's try_private bit");
        assert_eq!(decode_bytes(&out), Ok(Some(Packet::from(connect.clone()))));

        connect.protocol = ProtocolVersion::V5;
        let mut out = Vec::new();
        connect.encode(&mut out).unwrap();
        assert_eq!(out[8], 5, "MQTT 5 bridges use No Local instead");
        // A level 5 with the bit is no level anyone speaks.
        out[8] = 0x85;
        assert_eq!(
            decode_bytes(&out),
            Err(DecodeError::UnsupportedProtocolLevel(0x85))
        );
    }

    #[test]
    fn a_full_connect_round_trips_through_exact_bytes() {
        let connect = Connect {
            protocol: ProtocolVersion::V3_1_1,
            clean_session: false,
            keep_alive: 10,
            client_id: "c1".into(),
            will: Some(Will {
                topic: TopicName::new("w").unwrap(),
                payload: Bytes::from_static(b"bye"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: None,
            }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(b"p")),
            properties: None,
            bridge: false,
        };
        #[rustfmt::skip]
        let bytes: &[u8] = &[
            0x10, 28,                         // CONNECT, remaining length
            0, 4, b'M', b'Q', b'T', b'T',     // protocol name
            4,                                // level
            0b1110_1100,                      // user name, password, will retain, will QoS 1, will
            0, 10,                            // keep alive
            0, 2, b'c', b'1',                 // client id
            0, 1, b'w',                       // will topic
            0, 3, b'b', b'y', b'e',           // will message
            0, 1, b'u',                       // user name
            0, 1, b'p',                       // password
        ];
        let mut out = Vec::new();
        connect.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(decode_bytes(bytes), Ok(Some(Packet::from(connect))));
    }

    #[test]
    fn mqtt_3_1_connect_is_understood() {
        let bytes: &[u8] = &[
            0x10, 14, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0b10, 0, 60, 0, 0,
        ];
        let Ok(Some(Packet::Connect(connect))) = decode_bytes(bytes) else {
            panic!("not decoded");
        };
        assert_eq!(connect.protocol, ProtocolVersion::V3_1);
        assert_eq!(connect.client_id, "");
        let mut out = Vec::new();
        connect.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn a_null_character_in_client_id_or_user_name_is_refused_mqtt_1_5_3_2() {
        let mut out = Vec::new();
        let connect = Connect::new("a\0b");
        assert_eq!(
            connect.encode(&mut out),
            Err(EncodeError::NullCharacter { field: "client id" })
        );
        let mut connect = Connect::new("c");
        connect.username = Some("\0".into());
        assert_eq!(
            connect.encode(&mut out),
            Err(EncodeError::NullCharacter { field: "user name" })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mut connect = Connect::new("c");
        connect.username = Some("user".into());
        connect.password = Some(Bytes::from_static(b"secret"));
        let shown = format!("{connect:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<hidden>"));
    }
}
