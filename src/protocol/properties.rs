//! MQTT 5 properties (section 2.2.2): optional, typed fields that most packets carry
//! after their variable header.
//!
//! ```text
//! property length   variable byte integer: the bytes of properties that follow
//! properties        identifier (variable byte integer), then a value of the
//!                   identifier's type: byte, two- or four-byte integer, variable
//!                   byte integer, UTF-8 string, binary data or string pair
//! ```
//!
//! [`Properties`] has one field per property. Decoding refuses a property the packet
//! may not carry ([`PropertyContext`]), a repeated one (except User Property, and
//! Subscription Identifier in PUBLISH), an unknown identifier and a value out of
//! range; encoding refuses the same and writes the properties in ascending identifier
//! order (a CONNACK's in mosquitto's order, see `CONNACK_ORDER`), user properties
//! in their order.

use bytes::Bytes;

use super::codec::{write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::topic::MAX_STRING_LEN;
use super::PacketType;

/// The largest value of a variable byte integer: 268,435,455, also the largest
/// Subscription Identifier.
pub const MAX_VARIABLE_BYTE_INTEGER: u32 = 268_435_455;

/// The properties of one MQTT 5 packet or will: every field `None` (or empty) when
/// the property is absent.
///
/// Which property a packet may carry is the table of section 2.2.2.2; see
/// [`PropertyContext`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)] // the names are the specification's, see the identifiers
pub struct Properties {
    /// 0x01 Payload Format Indicator: 0 unspecified bytes, 1 UTF-8 (PUBLISH, will).
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval, seconds (PUBLISH, will).
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type (PUBLISH, will).
    pub content_type: Option<String>,
    /// 0x08 Response Topic: a topic name, no wildcards (PUBLISH, will).
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data (PUBLISH, will).
    pub correlation_data: Option<Bytes>,
    /// 0x0B Subscription Identifier, 1 to 268,435,455: one in SUBSCRIBE, any number
    /// in a PUBLISH from the server.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11 Session Expiry Interval, seconds (CONNECT, CONNACK, DISCONNECT).
    pub session_expiry_interval: Option<u32>,
    /// 0x12 Assigned Client Identifier (CONNACK).
    pub assigned_client_identifier: Option<String>,
    /// 0x13 Server Keep Alive, seconds (CONNACK).
    pub server_keep_alive: Option<u16>,
    /// 0x15 Authentication Method (CONNECT, CONNACK, AUTH).
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data (CONNECT, CONNACK, AUTH); needs a method.
    pub authentication_data: Option<Bytes>,
    /// 0x17 Request Problem Information, 0 or 1 (CONNECT).
    pub request_problem_information: Option<u8>,
    /// 0x18 Will Delay Interval, seconds (will).
    pub will_delay_interval: Option<u32>,
    /// 0x19 Request Response Information, 0 or 1 (CONNECT).
    pub request_response_information: Option<u8>,
    /// 0x1A Response Information (CONNACK).
    pub response_information: Option<String>,
    /// 0x1C Server Reference (CONNACK, DISCONNECT).
    pub server_reference: Option<String>,
    /// 0x1F Reason String (every packet with a reason code).
    pub reason_string: Option<String>,
    /// 0x21 Receive Maximum, not 0 (CONNECT, CONNACK).
    pub receive_maximum: Option<u16>,
    /// 0x22 Topic Alias Maximum (CONNECT, CONNACK).
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 Topic Alias, not 0 (PUBLISH).
    pub topic_alias: Option<u16>,
    /// 0x24 Maximum QoS, 0 or 1 (CONNACK).
    pub maximum_qos: Option<u8>,
    /// 0x25 Retain Available, 0 or 1 (CONNACK).
    pub retain_available: Option<u8>,
    /// 0x26 User Property: name and value pairs, in order, names may repeat (every
    /// packet with properties).
    pub user_properties: Vec<(String, String)>,
    /// 0x27 Maximum Packet Size, not 0 (CONNECT, CONNACK).
    pub maximum_packet_size: Option<u32>,
    /// 0x28 Wildcard Subscription Available, 0 or 1 (CONNACK).
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29 Subscription Identifier Available, 0 or 1 (CONNACK).
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A Shared Subscription Available, 0 or 1 (CONNACK).
    pub shared_subscription_available: Option<u8>,
}

/// No properties: what the accessors of packets without properties return.
pub(crate) static EMPTY: Properties = Properties::new();

/// Where a set of properties sits: each packet type with properties, and the will of
/// a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names are the packets'
pub enum PropertyContext {
    Connect,
    Will,
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
    Auth,
}

impl PropertyContext {
    /// The packet that holds the properties (CONNECT for a will).
    pub fn packet_type(self) -> PacketType {
        use PropertyContext::*;
        match self {
            Connect | Will => PacketType::Connect,
            ConnAck => PacketType::ConnAck,
            Publish => PacketType::Publish,
            PubAck => PacketType::PubAck,
            PubRec => PacketType::PubRec,
            PubRel => PacketType::PubRel,
            PubComp => PacketType::PubComp,
            Subscribe => PacketType::Subscribe,
            SubAck => PacketType::SubAck,
            Unsubscribe => PacketType::Unsubscribe,
            UnsubAck => PacketType::UnsubAck,
            Disconnect => PacketType::Disconnect,
            Auth => PacketType::Auth,
        }
    }

    /// Whether the property `id` may appear here (table of section 2.2.2.2).
    pub fn allows(self, id: u8) -> bool {
        use PropertyContext::*;
        match id {
            0x01 | 0x02 | 0x03 | 0x08 | 0x09 => matches!(self, Publish | Will),
            0x0B => matches!(self, Publish | Subscribe),
            0x11 => matches!(self, Connect | ConnAck | Disconnect),
            0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => self == ConnAck,
            0x15 | 0x16 => matches!(self, Connect | ConnAck | Auth),
            0x17 | 0x19 => self == Connect,
            0x18 => self == Will,
            0x1C => matches!(self, ConnAck | Disconnect),
            0x1F => !matches!(self, Connect | Will | Publish | Subscribe | Unsubscribe),
            0x21 | 0x22 | 0x27 => matches!(self, Connect | ConnAck),
            0x23 => self == Publish,
            0x26 => true,
            _ => false,
        }
    }
}

/// The name of property `id` in the specification's words.
pub fn property_name(id: u8) -> &'static str {
    match id {
        0x01 => "Payload Format Indicator",
        0x02 => "Message Expiry Interval",
        0x03 => "Content Type",
        0x08 => "Response Topic",
        0x09 => "Correlation Data",
        0x0B => "Subscription Identifier",
        0x11 => "Session Expiry Interval",
        0x12 => "Assigned Client Identifier",
        0x13 => "Server Keep Alive",
        0x15 => "Authentication Method",
        0x16 => "Authentication Data",
        0x17 => "Request Problem Information",
        0x18 => "Will Delay Interval",
        0x19 => "Request Response Information",
        0x1A => "Response Information",
        0x1C => "Server Reference",
        0x1F => "Reason String",
        0x21 => "Receive Maximum",
        0x22 => "Topic Alias Maximum",
        0x23 => "Topic Alias",
        0x24 => "Maximum QoS",
        0x25 => "Retain Available",
        0x26 => "User Property",
        0x27 => "Maximum Packet Size",
        0x28 => "Wildcard Subscription Available",
        0x29 => "Subscription Identifier Available",
        0x2A => "Shared Subscription Available",
        _ => "unknown property",
    }
}

/// One property value, borrowed, for encoding and checking.
enum Value<'a> {
    Byte(u8),
    Two(u16),
    Four(u32),
    Variable(u32),
    String(&'a str),
    Binary(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl Value<'_> {
    fn len(&self) -> usize {
        match self {
            Value::Byte(_) => 1,
            Value::Two(_) => 2,
            Value::Four(_) => 4,
            Value::Variable(v) => variable_len(*v as usize),
            Value::String(s) => 2 + s.len(),
            Value::Binary(b) => 2 + b.len(),
            Value::Pair(k, v) => 4 + k.len() + v.len(),
        }
    }
}

impl Properties {
    /// No properties.
    pub const fn new() -> Properties {
        Properties {
            payload_format_indicator: None,
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            subscription_identifiers: Vec::new(),
            session_expiry_interval: None,
            assigned_client_identifier: None,
            server_keep_alive: None,
            authentication_method: None,
            authentication_data: None,
            request_problem_information: None,
            will_delay_interval: None,
            request_response_information: None,
            response_information: None,
            server_reference: None,
            reason_string: None,
            receive_maximum: None,
            topic_alias_maximum: None,
            topic_alias: None,
            maximum_qos: None,
            retain_available: None,
            user_properties: Vec::new(),
            maximum_packet_size: None,
            wildcard_subscription_available: None,
            subscription_identifier_available: None,
            shared_subscription_available: None,
        }
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self == &EMPTY
    }

    /// Calls `f` for every property present, in ascending identifier order (user
    /// properties and subscription identifiers in their order).
    fn for_each<'a, E>(
        &'a self,
        mut f: impl FnMut(u8, Value<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        macro_rules! opt {
            ($id:expr, $field:ident, $wrap:expr) => {
                if let Some(value) = &self.$field {
                    f($id, $wrap(value))?;
                }
            };
        }
        opt!(0x01, payload_format_indicator, |v: &u8| Value::Byte(*v));
        opt!(0x02, message_expiry_interval, |v: &u32| Value::Four(*v));
        opt!(0x03, content_type, |v: &'a String| Value::String(v));
        opt!(0x08, response_topic, |v: &'a String| Value::String(v));
        opt!(0x09, correlation_data, |v: &'a Bytes| Value::Binary(v));
        for id in &self.subscription_identifiers {
            f(0x0B, Value::Variable(*id))?;
        }
        opt!(0x11, session_expiry_interval, |v: &u32| Value::Four(*v));
        opt!(0x12, assigned_client_identifier, |v: &'a String| {
            Value::String(v)
        });
        opt!(0x13, server_keep_alive, |v: &u16| Value::Two(*v));
        opt!(0x15, authentication_method, |v: &'a String| Value::String(
            v
        ));
        opt!(0x16, authentication_data, |v: &'a Bytes| Value::Binary(v));
        opt!(0x17, request_problem_information, |v: &u8| Value::Byte(*v));
        opt!(0x18, will_delay_interval, |v: &u32| Value::Four(*v));
        opt!(0x19, request_response_information, |v: &u8| Value::Byte(*v));
        opt!(0x1A, response_information, |v: &'a String| Value::String(v));
        opt!(0x1C, server_reference, |v: &'a String| Value::String(v));
        opt!(0x1F, reason_string, |v: &'a String| Value::String(v));
        opt!(0x21, receive_maximum, |v: &u16| Value::Two(*v));
        opt!(0x22, topic_alias_maximum, |v: &u16| Value::Two(*v));
        opt!(0x23, topic_alias, |v: &u16| Value::Two(*v));
        opt!(0x24, maximum_qos, |v: &u8| Value::Byte(*v));
        opt!(0x25, retain_available, |v: &u8| Value::Byte(*v));
        for (name, value) in &self.user_properties {
            f(0x26, Value::Pair(name, value))?;
        }
        opt!(0x27, maximum_packet_size, |v: &u32| Value::Four(*v));
        opt!(0x28, wildcard_subscription_available, |v: &u8| Value::Byte(
            *v
        ));
        opt!(0x29, subscription_identifier_available, |v: &u8| {
            Value::Byte(*v)
        });
        opt!(0x2A, shared_subscription_available, |v: &u8| Value::Byte(
            *v
        ));
        Ok(())
    }

    /// These properties without those that may not appear in `context` (section
    /// 2.2.2.2's table): what a sender keeps of properties given for a packet.
    ///
    /// ```
    /// use wren::protocol::{Properties, PropertyContext};
    ///
    /// let mut properties = Properties::new();
    /// properties.content_type = Some("text/plain".into());
    /// properties.session_expiry_interval = Some(60);
    /// let will = properties.restricted_to(PropertyContext::Will);
    /// assert_eq!(will.content_type.as_deref(), Some("text/plain"));
    /// assert_eq!(will.session_expiry_interval, None);
    /// ```
    pub fn restricted_to(mut self, context: PropertyContext) -> Properties {
        macro_rules! keep {
            ($($id:expr => $field:ident),* $(,)?) => {
                $(if !context.allows($id) {
                    self.$field = Default::default();
                })*
            };
        }
        keep!(
            0x01 => payload_format_indicator,
            0x02 => message_expiry_interval,
            0x03 => content_type,
            0x08 => response_topic,
            0x09 => correlation_data,
            0x0B => subscription_identifiers,
            0x11 => session_expiry_interval,
            0x12 => assigned_client_identifier,
            0x13 => server_keep_alive,
            0x15 => authentication_method,
            0x16 => authentication_data,
            0x17 => request_problem_information,
            0x18 => will_delay_interval,
            0x19 => request_response_information,
            0x1A => response_information,
            0x1C => server_reference,
            0x1F => reason_string,
            0x21 => receive_maximum,
            0x22 => topic_alias_maximum,
            0x23 => topic_alias,
            0x24 => maximum_qos,
            0x25 => retain_available,
            0x26 => user_properties,
            0x27 => maximum_packet_size,
            0x28 => wildcard_subscription_available,
            0x29 => subscription_identifier_available,
            0x2A => shared_subscription_available,
        );
        self
    }

    /// Checks the properties against the rules a receiver applies in `context`:
    /// allowed there, not repeated, values in range.
    pub fn check(&self, context: PropertyContext) -> Result<(), DecodeError> {
        let packet_type = context.packet_type();
        self.for_each(|id, value| {
            let property = property_name(id);
            if !context.allows(id) {
                return Err(DecodeError::PropertyNotAllowed { packet_type, id });
            }
            match (id, value) {
                (0x0B, Value::Variable(0 | 268_435_456..)) => {
                    return Err(DecodeError::SubscriptionIdentifierOutOfRange { packet_type })
                }
                (0x21 | 0x23, Value::Two(0)) | (0x27, Value::Four(0)) => {
                    return Err(DecodeError::ZeroProperty {
                        packet_type,
                        property,
                    })
                }
                (0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A, Value::Byte(v))
                    if v > 1 =>
                {
                    return Err(DecodeError::PropertyNotZeroOrOne {
                        packet_type,
                        property,
                        value: v,
                    })
                }
                (0x08, Value::String(topic)) if topic.contains(['+', '#']) => {
                    return Err(DecodeError::WildcardInResponseTopic { packet_type })
                }
                (_, Value::String(s)) if s.contains('\0') => {
                    return Err(DecodeError::NullCharacter {
                        packet_type,
                        field: property,
                    })
                }
                (_, Value::Pair(k, v)) if k.contains('\0') || v.contains('\0') => {
                    return Err(DecodeError::NullCharacter {
                        packet_type,
                        field: property,
                    })
                }
                _ => {}
            }
            Ok(())
        })?;
        if context == PropertyContext::Subscribe && self.subscription_identifiers.len() > 1 {
            return Err(DecodeError::DuplicateProperty {
                packet_type,
                id: 0x0B,
            });
        }
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(DecodeError::AuthenticationDataWithoutMethod { packet_type });
        }
        Ok(())
    }

    /// The bytes of the properties alone, without the property length.
    fn body_len(&self) -> Result<usize, EncodeError> {
        let mut len = 0;
        self.for_each(|id, value| {
            let field = property_name(id);
            match value {
                Value::String(s) if s.len() > MAX_STRING_LEN => {
                    return Err(EncodeError::FieldTooLong {
                        field,
                        len: s.len(),
                    })
                }
                Value::Binary(b) if b.len() > MAX_STRING_LEN => {
                    return Err(EncodeError::FieldTooLong {
                        field,
                        len: b.len(),
                    })
                }
                Value::Pair(k, v) if k.len().max(v.len()) > MAX_STRING_LEN => {
                    return Err(EncodeError::FieldTooLong {
                        field,
                        len: k.len().max(v.len()),
                    })
                }
                _ => {}
            }
            len += 1 + value.len();
            Ok(())
        })?;
        Ok(len)
    }
}

/// The properties to write: `None` for none or an empty set, which encode alike.
pub(crate) fn present(properties: &Option<Box<Properties>>) -> Option<&Properties> {
    properties.as_deref().filter(|p| !p.is_empty())
}

/// The properties, or the empty set: what packet accessors return.
pub(crate) fn or_empty(properties: &Option<Box<Properties>>) -> &Properties {
    properties.as_deref().unwrap_or(&EMPTY)
}

/// The bytes `properties` take on the wire in `context`, property length included,
/// after checking them as a receiver would.
pub(crate) fn encoded_len(
    properties: Option<&Properties>,
    context: PropertyContext,
) -> Result<usize, EncodeError> {
    let Some(properties) = properties else {
        return Ok(1);
    };
    properties
        .check(context)
        .map_err(EncodeError::InvalidProperties)?;
    let body = properties.body_len()?;
    if body > MAX_VARIABLE_BYTE_INTEGER as usize {
        return Err(EncodeError::PacketTooLarge(body));
    }
    Ok(variable_len(body) + body)
}

/// Appends the property length and the properties; they must have been measured by
/// [`encoded_len`].
pub(crate) fn write(out: &mut Vec<u8>, properties: Option<&Properties>) {
    write_ordered(out, properties, &[]);
}

/// The order in which mosquitto writes the properties of a CONNACK. The
/// specification leaves the order free; brokers' tests compare bytes, so wren
/// writes a CONNACK's properties in the order of the broker most tests are written
/// against: these first, the rest after them in ascending identifier order.
pub(crate) const CONNACK_ORDER: &[u8] = &[0x22, 0x13, 0x12, 0x15, 0x16, 0x25, 0x27, 0x21, 0x24];

/// [`write`], with the properties whose identifiers are in `first` written first,
/// in that order.
pub(crate) fn write_ordered(out: &mut Vec<u8>, properties: Option<&Properties>, first: &[u8]) {
    let Some(properties) = properties else {
        out.push(0);
        return;
    };
    let body = properties.body_len().unwrap_or(0);
    write_variable(out, body);
    for &wanted in first {
        let _ = properties.for_each(|id, value| {
            if id == wanted {
                write_property(out, id, value);
            }
            Ok::<(), ()>(())
        });
    }
    let _ = properties.for_each(|id, value| {
        if !first.contains(&id) {
            write_property(out, id, value);
        }
        Ok::<(), ()>(())
    });
}

fn write_property(out: &mut Vec<u8>, id: u8, value: Value<'_>) {
    out.push(id);
    match value {
        Value::Byte(v) => out.push(v),
        Value::Two(v) => write_u16(out, v),
        Value::Four(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Variable(v) => write_variable(out, v as usize),
        Value::String(s) => write_bytes(out, s.as_bytes()),
        Value::Binary(b) => write_bytes(out, b),
        Value::Pair(k, v) => {
            write_bytes(out, k.as_bytes());
            write_bytes(out, v.as_bytes());
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_u16(out, bytes.len() as u16);
    out.extend_from_slice(bytes);
}

/// How many bytes `value` takes as a variable byte integer (1 to 4).
pub(crate) fn variable_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` as a variable byte integer (at most 268,435,455).
pub(crate) fn write_variable(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            return;
        }
    }
}

/// Reads the property length and the properties of a packet or will; `None` when
/// there are none.
pub(crate) fn decode(
    reader: &mut Reader,
    context: PropertyContext,
) -> Result<Option<Box<Properties>>, DecodeError> {
    let packet_type = reader.packet_type();
    let length = reader.variable("property length")? as usize;
    if length > reader.remaining() {
        return Err(DecodeError::PropertyLengthOverrun {
            packet_type,
            length,
            remaining: reader.remaining(),
        });
    }
    if length == 0 {
        return Ok(None);
    }
    let mut inner = reader.take(length);
    let mut p = Properties::new();
    while !inner.is_empty() {
        let id = inner.variable("property identifier")?;
        let Ok(id) = u8::try_from(id) else {
            return Err(DecodeError::UnknownProperty { packet_type, id });
        };
        let name = property_name(id);
        if name == "unknown property" {
            return Err(DecodeError::UnknownProperty {
                packet_type,
                id: u32::from(id),
            });
        }
        if !context.allows(id) {
            return Err(DecodeError::PropertyNotAllowed { packet_type, id });
        }
        let duplicate = DecodeError::DuplicateProperty { packet_type, id };
        macro_rules! once {
            ($field:ident, $value:expr) => {{
                if p.$field.is_some() {
                    return Err(duplicate);
                }
                p.$field = Some($value);
            }};
        }
        match id {
            0x01 => once!(payload_format_indicator, inner.u8(name)?),
            0x02 => once!(message_expiry_interval, inner.u32(name)?),
            0x03 => once!(content_type, inner.string(name)?),
            0x08 => once!(response_topic, inner.string(name)?),
            0x09 => once!(correlation_data, inner.binary(name)?),
            0x0B => {
                if context != PropertyContext::Publish && !p.subscription_identifiers.is_empty() {
                    return Err(duplicate);
                }
                let value = inner.variable(name)?;
                p.subscription_identifiers.push(value);
            }
            0x11 => once!(session_expiry_interval, inner.u32(name)?),
            0x12 => once!(assigned_client_identifier, inner.string(name)?),
            0x13 => once!(server_keep_alive, inner.u16(name)?),
            0x15 => once!(authentication_method, inner.string(name)?),
            0x16 => once!(authentication_data, inner.binary(name)?),
            0x17 => once!(request_problem_information, inner.u8(name)?),
            0x18 => once!(will_delay_interval, inner.u32(name)?),
            0x19 => once!(request_response_information, inner.u8(name)?),
            0x1A => once!(response_information, inner.string(name)?),
            0x1C => once!(server_reference, inner.string(name)?),
            0x1F => once!(reason_string, inner.string(name)?),
            0x21 => once!(receive_maximum, inner.u16(name)?),
            0x22 => once!(topic_alias_maximum, inner.u16(name)?),
            0x23 => once!(topic_alias, inner.u16(name)?),
            0x24 => once!(maximum_qos, inner.u8(name)?),
            0x25 => once!(retain_available, inner.u8(name)?),
            0x26 => {
                if p.user_properties.capacity() == 0 {
                    // Room for all that can follow (each takes at least five bytes),
                    // at once: memory follows the bytes received.
                    p.user_properties.reserve_exact(1 + inner.remaining() / 5);
                }
                let key = inner.string(name)?;
                let value = inner.string(name)?;
                p.user_properties.push((key, value));
            }
            0x27 => once!(maximum_packet_size, inner.u32(name)?),
            0x28 => once!(wildcard_subscription_available, inner.u8(name)?),
            0x29 => once!(subscription_identifier_available, inner.u8(name)?),
            0x2A => once!(shared_subscription_available, inner.u8(name)?),
            _ => unreachable!("named above"),
        }
    }
    p.check(context)?;
    Ok(Some(Box::new(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_byte_integers_take_one_to_four_bytes_mqtt5_1_5_5_1() {
        for (value, bytes) in [
            (0usize, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = Vec::new();
            write_variable(&mut out, value);
            assert_eq!(out, bytes);
            assert_eq!(variable_len(value), bytes.len());
        }
    }

    #[test]
    fn the_empty_value_is_empty() {
        assert!(EMPTY.is_empty());
        assert!(Properties::default().is_empty());
        let p = Properties {
            topic_alias: Some(3),
            ..Properties::new()
        };
        assert!(!p.is_empty());
    }
}
