//! `-D COMMAND PROPERTY VALUE` (`--property`): MQTT 5 properties for the packets
//! the tools send, read and checked as mosquitto_pub and mosquitto_sub 2.0.11 do.
//!
//! mosquitto checks in two rounds, and so does this module:
//!
//! 1. while reading the option ([`parse_property`]): enough arguments, a known
//!    command (`connect`, `publish`, `subscribe`, `unsubscribe`, `disconnect`,
//!    `will`, and packets the tools cannot send), a known property name (both
//!    case-insensitive), a property the command may carry, one the tools support
//!    for that command, and a value of the property's type and range;
//! 2. once every option has been read ([`PropertyArgs::check`]): values a property
//!    may not take (a Receive Maximum of 0, Request Problem Information 2, ...) and
//!    a property given twice, with `Error in PUBLISH properties: ...`.
//!
//! A `-D` makes the tools speak MQTT 5 (a later `-V` still wins, and then the
//! properties are not sent, as with mosquitto).

use wren::protocol::Properties;

use super::{ArgError, Args};

/// The packets (and the will) a `-D` can give properties to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyCommand {
    /// CONNECT.
    Connect,
    /// Every PUBLISH of wren-pub.
    Publish,
    /// wren-sub's SUBSCRIBE.
    Subscribe,
    /// wren-sub's UNSUBSCRIBEs (`-U`).
    Unsubscribe,
    /// The DISCONNECT at the end.
    Disconnect,
    /// The will message, carried by CONNECT.
    Will,
}

/// The commands mosquitto knows by name, including those it refuses for `-D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NamedCommand {
    Usable(PropertyCommand),
    ConnAck,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Auth,
}

impl NamedCommand {
    fn from_name(name: &str) -> Option<NamedCommand> {
        use PropertyCommand::*;
        Some(match name.to_ascii_lowercase().as_str() {
            "connect" => NamedCommand::Usable(Connect),
            "connack" => NamedCommand::ConnAck,
            "publish" => NamedCommand::Usable(Publish),
            "puback" => NamedCommand::PubAck,
            "pubrec" => NamedCommand::PubRec,
            "pubrel" => NamedCommand::PubRel,
            "pubcomp" => NamedCommand::PubComp,
            "subscribe" => NamedCommand::Usable(Subscribe),
            "unsubscribe" => NamedCommand::Usable(Unsubscribe),
            "disconnect" => NamedCommand::Usable(Disconnect),
            "auth" => NamedCommand::Auth,
            "will" => NamedCommand::Usable(Will),
            // SUBACK and UNSUBACK have no name that mosquitto's tools accept.
            _ => return None,
        })
    }

    /// Whether property `id` may be in this packet: the table of the MQTT 5
    /// specification, as mosquitto applies it to client input.
    fn allows(self, id: u8) -> bool {
        use NamedCommand::*;
        use PropertyCommand::*;
        let is = |c: PropertyCommand| self == Usable(c);
        match id {
            // Payload Format, Message Expiry, Content Type, Response Topic,
            // Correlation Data.
            0x01 | 0x02 | 0x03 | 0x08 | 0x09 => is(Publish) || is(Will),
            0x0B => is(Publish) || is(Subscribe),
            0x11 => is(Connect) || self == ConnAck || is(Disconnect),
            0x15 | 0x16 => is(Connect) || self == ConnAck || self == Auth,
            0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => self == ConnAck,
            0x18 => is(Will),
            0x17 | 0x19 => is(Connect),
            0x1C => self == ConnAck || is(Disconnect),
            0x1F => !(is(Connect) || is(Publish) || is(Subscribe) || is(Unsubscribe)),
            0x21 | 0x22 | 0x27 => is(Connect) || self == ConnAck,
            0x23 => is(Publish),
            0x26 => true,
            _ => false,
        }
    }
}

/// How a property's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Byte,
    Int16,
    Int32,
    VarInt,
    Binary,
    String,
    Pair,
}

impl Kind {
    /// mosquitto's number for the type, which its "Error adding property" shows.
    fn number(self) -> u8 {
        match self {
            Kind::Byte => 1,
            Kind::Int16 => 2,
            Kind::Int32 => 3,
            Kind::VarInt => 4,
            Kind::Binary => 5,
            Kind::String => 6,
            Kind::Pair => 7,
        }
    }
}

/// Every property by the name mosquitto gives it: identifier and type.
const PROPERTIES: &[(&str, u8, Kind)] = &[
    ("payload-format-indicator", 0x01, Kind::Byte),
    ("message-expiry-interval", 0x02, Kind::Int32),
    ("content-type", 0x03, Kind::String),
    ("response-topic", 0x08, Kind::String),
    ("correlation-data", 0x09, Kind::Binary),
    ("subscription-identifier", 0x0B, Kind::VarInt),
    ("session-expiry-interval", 0x11, Kind::Int32),
    ("assigned-client-identifier", 0x12, Kind::String),
    ("server-keep-alive", 0x13, Kind::Int16),
    ("authentication-method", 0x15, Kind::String),
    ("authentication-data", 0x16, Kind::Binary),
    ("request-problem-information", 0x17, Kind::Byte),
    ("will-delay-interval", 0x18, Kind::Int32),
    ("request-response-information", 0x19, Kind::Byte),
    ("response-information", 0x1A, Kind::String),
    ("server-reference", 0x1C, Kind::String),
    ("reason-string", 0x1F, Kind::String),
    ("receive-maximum", 0x21, Kind::Int16),
    ("topic-alias-maximum", 0x22, Kind::Int16),
    ("topic-alias", 0x23, Kind::Int16),
    ("maximum-qos", 0x24, Kind::Byte),
    ("retain-available", 0x25, Kind::Byte),
    ("user-property", 0x26, Kind::Pair),
    ("maximum-packet-size", 0x27, Kind::Int32),
    ("wildcard-subscription-available", 0x28, Kind::Byte),
    ("subscription-identifier-available", 0x29, Kind::Byte),
    ("shared-subscription-available", 0x2A, Kind::Byte),
];

/// Session Expiry Interval, which `-x` adds to CONNECT.
pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;

/// One property value as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    /// A byte, two- or four-byte integer or variable byte integer.
    Number(u32),
    /// A UTF-8 string.
    Text(String),
    /// Binary data.
    Bytes(Vec<u8>),
    /// A User Property: name and value.
    Pair(String, String),
}

/// One `-D`: the property's identifier and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The MQTT 5 identifier (0x01 Payload Format Indicator, ...).
    pub id: u8,
    /// The value.
    pub value: PropertyValue,
}

/// The properties given with `-D`, per command, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyArgs {
    /// `-D connect ...` (and `-x` in MQTT 5).
    pub connect: Vec<Property>,
    /// `-D publish ...`.
    pub publish: Vec<Property>,
    /// `-D subscribe ...`.
    pub subscribe: Vec<Property>,
    /// `-D unsubscribe ...`.
    pub unsubscribe: Vec<Property>,
    /// `-D disconnect ...`.
    pub disconnect: Vec<Property>,
    /// `-D will ...`.
    pub will: Vec<Property>,
}

impl PropertyArgs {
    fn list(&mut self, command: PropertyCommand) -> &mut Vec<Property> {
        match command {
            PropertyCommand::Connect => &mut self.connect,
            PropertyCommand::Publish => &mut self.publish,
            PropertyCommand::Subscribe => &mut self.subscribe,
            PropertyCommand::Unsubscribe => &mut self.unsubscribe,
            PropertyCommand::Disconnect => &mut self.disconnect,
            PropertyCommand::Will => &mut self.will,
        }
    }

    /// The second round of checks, made once every option has been read: values a
    /// property may not take, and properties given twice. The message (hidden by
    /// `--quiet`, as mosquitto hides it) is `Error in CONNECT properties: ...`.
    pub fn check(&self, quiet: bool) -> Result<(), ArgError> {
        let lists = [
            ("CONNECT", &self.connect),
            ("PUBLISH", &self.publish),
            ("SUBSCRIBE", &self.subscribe),
            ("UNSUBSCRIBE", &self.unsubscribe),
            ("DISCONNECT", &self.disconnect),
            ("Will", &self.will),
        ];
        for (name, list) in lists {
            if let Some(problem) = problem_in(list) {
                let text = if quiet {
                    String::new()
                } else {
                    format!("Error in {name} properties: {problem}\n")
                };
                return Err(ArgError::hinted(text));
            }
        }
        Ok(())
    }
}

/// mosquitto's check of a whole list: the first bad value or repeated property.
fn problem_in(list: &[Property]) -> Option<&'static str> {
    const PROTOCOL: &str = "A network protocol error occurred when communicating with the broker.";
    const DUPLICATE: &str = "Duplicate property in property list";
    for (i, property) in list.iter().enumerate() {
        let number = match property.value {
            PropertyValue::Number(n) => n,
            _ => 1,
        };
        let bad_value = match property.id {
            0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => number > 1,
            0x27 | 0x21 | 0x23 => number == 0,
            _ => false,
        };
        if bad_value {
            return Some(PROTOCOL);
        }
        if property.id != 0x26 && list[i + 1..].iter().any(|p| p.id == property.id) {
            return Some(DUPLICATE);
        }
    }
    None
}

/// Reads `-D`'s arguments (after the `-D` itself) into `properties`.
pub fn parse_property(args: &mut Args, properties: &mut PropertyArgs) -> Result<(), ArgError> {
    let not_enough =
        || ArgError::spaced("--property argument given but not enough arguments specified.");
    if args.len() < 3 {
        return Err(not_enough());
    }
    let command_name = args.lossy(0);
    let command = NamedCommand::from_name(&command_name)
        .ok_or_else(|| ArgError::spaced("Invalid command given in --property argument."))?;
    let property_name = args.lossy(1);
    let &(_, id, kind) = PROPERTIES
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(&property_name))
        .ok_or_else(|| ArgError::spaced("Invalid property name given in --property argument."))?;
    if !command.allows(id) {
        return Err(ArgError::spaced(format!(
            "{property_name} property not allowed for {command_name} in --property argument."
        )));
    }
    if kind == Kind::Pair && args.len() < 4 {
        return Err(not_enough());
    }
    // The command and the property name, already looked at.
    args.take();
    args.take();
    let key = if kind == Kind::Pair {
        Some(args.take())
    } else {
        None
    };
    let value = args.take();
    let not_supported = || {
        ArgError::spaced(format!(
            "{property_name} property not supported for {command_name} in --property argument."
        ))
    };
    let command = match command {
        NamedCommand::Usable(PropertyCommand::Publish) if id == 0x0B => return Err(not_supported()),
        NamedCommand::Usable(PropertyCommand::Subscribe) if id != 0x0B && id != 0x26 => {
            return Err(not_supported())
        }
        NamedCommand::Usable(command) => command,
        NamedCommand::ConnAck => return Err(ArgError::hinted(String::new())),
        _ => return Err(not_supported()),
    };
    let out_of_range = |n: i64| {
        ArgError::spaced(format!(
            "Property value ({n}) out of range for property {property_name}."
        ))
    };
    let adding_failed = || {
        ArgError::hinted(format!(
            "Error adding property {property_name} {}\n",
            kind.number()
        ))
    };
    let value = match kind {
        Kind::Byte | Kind::Int16 | Kind::Int32 | Kind::VarInt => {
            let n = atol(&value);
            let max = match kind {
                Kind::Byte => i64::from(u8::MAX),
                Kind::Int16 => i64::from(u16::MAX),
                _ => i64::from(u32::MAX),
            };
            if !(0..=max).contains(&n) {
                return Err(out_of_range(n));
            }
            if kind == Kind::VarInt && n > 268_435_455 {
                return Err(adding_failed());
            }
            PropertyValue::Number(n as u32)
        }
        Kind::Binary => {
            if value.len() > usize::from(u16::MAX) {
                return Err(ArgError::spaced(format!(
                    "Property value too long for property {property_name}."
                )));
            }
            PropertyValue::Bytes(value)
        }
        Kind::String => match mqtt_utf8(&value) {
            Some(text) => PropertyValue::Text(text),
            None => return Err(adding_failed()),
        },
        Kind::Pair => {
            let key = key.unwrap_or_default();
            let Some(name) = mqtt_utf8(&key) else {
                return Err(adding_failed());
            };
            // mosquitto checks the name of a user property, not its value.
            PropertyValue::Pair(name, String::from_utf8_lossy(&value).into_owned())
        }
    };
    properties.list(command).push(Property { id, value });
    Ok(())
}

/// C's `atol`: leading blanks, a sign, the digits up to the first other character
/// (none read gives 0), saturating at the ends of a 64-bit `long`.
pub fn atol(text: &[u8]) -> i64 {
    let mut rest = text;
    while let [b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c, tail @ ..] = rest {
        rest = tail;
    }
    let negative = match rest {
        [b'-', tail @ ..] => {
            rest = tail;
            true
        }
        [b'+', tail @ ..] => {
            rest = tail;
            false
        }
        _ => false,
    };
    let mut value: i64 = 0;
    for &b in rest.iter().take_while(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        value = if negative {
            value.saturating_mul(10).saturating_sub(digit)
        } else {
            value.saturating_mul(10).saturating_add(digit)
        };
    }
    value
}

/// `bytes` as a string if MQTT (and mosquitto) take it as one: well-formed UTF-8
/// without NUL, control characters or non-characters.
pub fn mqtt_utf8(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let bad = |c: char| {
        let c = u32::from(c);
        c <= 0x1F
            || (0x7F..=0x9F).contains(&c)
            || (0xFDD0..=0xFDEF).contains(&c)
            || (c & 0xFFFF) >= 0xFFFE
    };
    if text.chars().any(bad) {
        None
    } else {
        Some(text.to_owned())
    }
}

/// The properties of `list` as the library takes them.
pub fn to_properties(list: &[Property]) -> Properties {
    let mut p = Properties::new();
    for property in list {
        let number = match &property.value {
            PropertyValue::Number(n) => *n,
            _ => 0,
        };
        let text = || match &property.value {
            PropertyValue::Text(t) => t.clone(),
            _ => String::new(),
        };
        let bytes = || match &property.value {
            PropertyValue::Bytes(b) => bytes::Bytes::from(b.clone()),
            _ => bytes::Bytes::new(),
        };
        let byte = number as u8;
        let two = number as u16;
        match property.id {
            0x01 => p.payload_format_indicator = Some(byte),
            0x02 => p.message_expiry_interval = Some(number),
            0x03 => p.content_type = Some(text()),
            0x08 => p.response_topic = Some(text()),
            0x09 => p.correlation_data = Some(bytes()),
            0x0B => p.subscription_identifiers.push(number),
            0x11 => p.session_expiry_interval = Some(number),
            0x12 => p.assigned_client_identifier = Some(text()),
            0x13 => p.server_keep_alive = Some(two),
            0x15 => p.authentication_method = Some(text()),
            0x16 => p.authentication_data = Some(bytes()),
            0x17 => p.request_problem_information = Some(byte),
            0x18 => p.will_delay_interval = Some(number),
            0x19 => p.request_response_information = Some(byte),
            0x1A => p.response_information = Some(text()),
            0x1C => p.server_reference = Some(text()),
            0x1F => p.reason_string = Some(text()),
            0x21 => p.receive_maximum = Some(two),
            0x22 => p.topic_alias_maximum = Some(two),
            0x23 => p.topic_alias = Some(two),
            0x24 => p.maximum_qos = Some(byte),
            0x25 => p.retain_available = Some(byte),
            0x26 => {
                if let PropertyValue::Pair(name, value) = &property.value {
                    p.user_properties.push((name.clone(), value.clone()));
                }
            }
            0x27 => p.maximum_packet_size = Some(number),
            0x28 => p.wildcard_subscription_available = Some(byte),
            0x29 => p.subscription_identifier_available = Some(byte),
            0x2A => p.shared_subscription_available = Some(byte),
            _ => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn parse(tokens: &[&str]) -> Result<PropertyArgs, String> {
        let mut args = Args::new(tokens.iter().map(OsString::from));
        let mut properties = PropertyArgs::default();
        parse_property(&mut args, &mut properties).map_err(|e| e.render("wren-pub"))?;
        Ok(properties)
    }

    #[test]
    fn atol_reads_like_c() {
        assert_eq!(atol(b"12"), 12);
        assert_eq!(atol(b"  -7x"), -7);
        assert_eq!(atol(b"abc"), 0);
        assert_eq!(atol(b"+4"), 4);
        assert_eq!(atol(b"99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn values_are_read_by_type() {
        let p = parse(&["PUBLISH", "Message-Expiry-Interval", "60"]).unwrap();
        assert_eq!(
            p.publish,
            [Property {
                id: 0x02,
                value: PropertyValue::Number(60)
            }]
        );
        let p = parse(&["connect", "user-property", "k", "v"]).unwrap();
        assert_eq!(
            p.connect[0].value,
            PropertyValue::Pair("k".into(), "v".into())
        );
        let p = parse(&["will", "correlation-data", "\u{1}"]).unwrap();
        assert_eq!(p.will[0].value, PropertyValue::Bytes(vec![1]));
    }

    #[test]
    fn errors_are_mosquittos() {
        let hint = "\nUse 'wren-pub --help' to see usage.\n";
        let cases: &[(&[&str], &str)] = &[
            (&["publish", "content-type"], "Error: --property argument given but not enough arguments specified.\n\n"),
            (&["foo", "content-type", "x"], "Error: Invalid command given in --property argument.\n\n"),
            (&["publish", "foo", "x"], "Error: Invalid property name given in --property argument.\n\n"),
            (&["connect", "content-type", "x"], "Error: content-type property not allowed for connect in --property argument.\n\n"),
            (&["publish", "subscription-identifier", "3"], "Error: subscription-identifier property not supported for publish in --property argument.\n\n"),
            (&["puback", "reason-string", "x"], "Error: reason-string property not supported for puback in --property argument.\n\n"),
            (&["publish", "message-expiry-interval", "-1"], "Error: Property value (-1) out of range for property message-expiry-interval.\n\n"),
            (&["publish", "topic-alias", "65536"], "Error: Property value (65536) out of range for property topic-alias.\n\n"),
            (&["publish", "user-property", "a"], "Error: --property argument given but not enough arguments specified.\n\n"),
            (&["publish", "content-type", "\u{1}"], "Error adding property content-type 6\n"),
            (&["subscribe", "subscription-identifier", "268435456"], "Error adding property subscription-identifier 4\n"),
            (&["connack", "assigned-client-identifier", "x"], ""),
        ];
        for (tokens, text) in cases {
            assert_eq!(
                parse(tokens).unwrap_err(),
                format!("{text}{hint}"),
                "{tokens:?}"
            );
        }
    }

    #[test]
    fn lists_are_checked_for_bad_values_and_repeats() {
        let mut p = PropertyArgs::default();
        for tokens in [
            &["publish", "user-property", "a", "b"][..],
            &["publish", "user-property", "a", "c"],
        ] {
            let mut args = Args::new(tokens.iter().map(OsString::from));
            parse_property(&mut args, &mut p).unwrap();
        }
        assert!(p.check(false).is_ok());
        let mut args = Args::new(["connect", "receive-maximum", "0"].map(OsString::from));
        parse_property(&mut args, &mut p).unwrap();
        assert_eq!(
            p.check(false).unwrap_err().render("wren-pub"),
            "Error in CONNECT properties: A network protocol error occurred when communicating with the broker.\n\nUse 'wren-pub --help' to see usage.\n"
        );
        assert_eq!(
            p.check(true).unwrap_err().render("wren-pub"),
            "\nUse 'wren-pub --help' to see usage.\n"
        );
    }
}
