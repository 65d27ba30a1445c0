//! How `wren-sub` prints a message: byte for byte as mosquitto_sub 2.0 does.
//!
//! - plain: the payload as it is, then `\n`; an empty payload prints nothing;
//! - `-v`: `topic payload\n`, or `topic (null)\n` for an empty payload;
//! - `-N`: no `\n` after a message (with `-v`, an empty payload then prints nothing);
//! - `-F format`: a template; it overrides `-v`, and `-N` drops the `\n` after it.
//!
//! A template mixes text with `%` fields (`%[-][0][width][.precision]c`), `@`
//! time conversions (`@H` is strftime's `%H`, `@N` nanoseconds, `@@` an `@`) and
//! backslash escapes (`\n`, `\e`, ...). The widths follow mosquitto's quirks, which
//! are easy to get wrong: `%q` and `%r` ignore the width, a width *cuts* `%p`, and a
//! width on `%x` prints only half as many bytes as fit, in hex.

use std::fmt;

use wren::protocol::Properties;

use crate::clock::Now;
use crate::json::{self, Value};

/// What is printed of one message.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The topic it was published to.
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// The QoS it was delivered with.
    pub qos: u8,
    /// Whether it came from the broker's retained store.
    pub retain: bool,
    /// Its packet identifier, 0 for QoS 0.
    pub packet_id: u16,
    /// Its MQTT 5 properties (none in MQTT 3.1.1).
    pub properties: &'a Properties,
}

/// A `-F` template that [`Format::parse`] found well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text printed as it is, escapes already resolved.
    Text(Vec<u8>),
    /// A `%` field.
    Field(Field),
    /// `@X`: strftime's `%X` of the local time.
    Time(u8),
    /// `@N`: the nanoseconds of the time, nine digits.
    Nanos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    conversion: u8,
    left_align: bool,
    zero_pad: bool,
    width: usize,
    precision: Option<usize>,
}

/// Why a template was refused, in mosquitto's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// A `%`, `@` or flag, width or precision with nothing after it.
    IncompleteSpecifier,
    /// A `\` at the very end.
    IncompleteEscape,
    /// A `%` conversion that does not exist.
    InvalidSpecifier(char),
    /// A `\` escape that does not exist.
    InvalidEscape(char),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::IncompleteSpecifier => f.write_str("Incomplete format specifier."),
            FormatError::IncompleteEscape => f.write_str("Incomplete escape specifier."),
            FormatError::InvalidSpecifier(c) => write!(f, "Invalid format specifier '{c}'."),
            FormatError::InvalidEscape(c) => write!(f, "Invalid escape specifier '{c}'."),
        }
    }
}

/// The `%` conversions mosquitto_sub knows. The MQTT 5 property fields
/// (`%A %C %D %E %F %P %R %S`) print as mosquitto_sub prints an absent property
/// for a message without it, which is every MQTT 3.1.1 message.
const CONVERSIONS: &[u8] = b"%ACDEFIlmPpqRSrtjJUxX";

impl Format {
    /// Checks and compiles a template.
    pub fn parse(template: &str) -> Result<Format, FormatError> {
        let bytes = template.as_bytes();
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut i = 0;
        let incomplete_at = |i: usize| i >= bytes.len();
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let mut field = Field {
                        conversion: 0,
                        left_align: false,
                        zero_pad: false,
                        width: 0,
                        precision: None,
                    };
                    i += 1;
                    // One flag only: `%-0` and `%0-` are read as mosquitto reads them.
                    match bytes.get(i) {
                        Some(b'-') => {
                            field.left_align = true;
                            i += 1;
                        }
                        Some(b'0') => {
                            field.zero_pad = true;
                            i += 1;
                        }
                        _ => {}
                    }
                    // After `-`, a `0` is both allowed and taken as zero padding.
                    if field.left_align && bytes.get(i) == Some(&b'0') {
                        field.zero_pad = true;
                        i += 1;
                    }
                    while let Some(d @ b'0'..=b'9') = bytes.get(i) {
                        field.width = field
                            .width
                            .saturating_mul(10)
                            .saturating_add(usize::from(d - b'0'));
                        i += 1;
                    }
                    if bytes.get(i) == Some(&b'.') {
                        i += 1;
                        let mut precision = 0usize;
                        while let Some(d @ b'0'..=b'9') = bytes.get(i) {
                            precision = precision
                                .saturating_mul(10)
                                .saturating_add(usize::from(d - b'0'));
                            i += 1;
                        }
                        field.precision = Some(precision);
                    }
                    if incomplete_at(i) {
                        return Err(FormatError::IncompleteSpecifier);
                    }
                    let conversion = bytes[i];
                    if !CONVERSIONS.contains(&conversion) {
                        return Err(FormatError::InvalidSpecifier(char_at(template, i)));
                    }
                    field.conversion = conversion;
                    flush_text(&mut text, &mut pieces);
                    pieces.push(Piece::Field(field));
                    i += 1;
                }
                b'@' => {
                    i += 1;
                    match bytes.get(i) {
                        None => return Err(FormatError::IncompleteSpecifier),
                        Some(b'@') => text.push(b'@'),
                        Some(b'N') => {
                            flush_text(&mut text, &mut pieces);
                            pieces.push(Piece::Nanos);
                        }
                        Some(&c) => {
                            flush_text(&mut text, &mut pieces);
                            pieces.push(Piece::Time(c));
                        }
                    }
                    i += 1;
                }
                b'\\' => {
                    i += 1;
                    let escaped = match bytes.get(i) {
                        None => return Err(FormatError::IncompleteEscape),
                        Some(b'\\') => b'\\',
                        Some(b'0') => 0,
                        Some(b'a') => 0x07,
                        Some(b'e') => 0x1b,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'v') => 0x0b,
                        Some(_) => return Err(FormatError::InvalidEscape(char_at(template, i))),
                    };
                    text.push(escaped);
                    i += 1;
                }
                other => {
                    text.push(other);
                    i += 1;
                }
            }
        }
        flush_text(&mut text, &mut pieces);
        Ok(Format { pieces })
    }
}

fn flush_text(text: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

/// The character starting at byte `i` of `text` (`i` is always at an ASCII byte or
/// the start of a character, as everything before it was ASCII).
fn char_at(text: &str, i: usize) -> char {
    text.get(i..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or('?')
}

/// The output style chosen by `-v`, `-F`, `-N` and `--pretty`.
#[derive(Debug, Clone)]
pub struct Printer {
    /// `-F`, which wins over `-v`.
    pub format: Option<Format>,
    /// `-v`.
    pub verbose: bool,
    /// Not `-N`: end each message with `\n`.
    pub end_of_line: bool,
    /// `--pretty`: indented JSON for `%j` and `%J`.
    pub pretty: bool,
}

impl Printer {
    /// Appends what mosquitto_sub prints for `message` to `out`, at time `now`.
    /// Returns the runtime warnings to print on stderr (`%J` with a payload that is
    /// not JSON), each a complete line.
    pub fn print(&self, message: &Delivery<'_>, now: &Now, out: &mut Vec<u8>) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(format) = &self.format {
            for piece in &format.pieces {
                match piece {
                    Piece::Text(text) => out.extend_from_slice(text),
                    Piece::Field(field) => self.field(field, message, now, out, &mut warnings),
                    Piece::Time(c) => out.extend_from_slice(&now.strftime(&[b'%', *c])),
                    Piece::Nanos => out.extend_from_slice(format!("{:09}", now.nanos).as_bytes()),
                }
            }
            if self.end_of_line {
                out.push(b'\n');
            }
        } else if self.verbose {
            if !message.payload.is_empty() {
                out.extend_from_slice(message.topic.as_bytes());
                out.push(b' ');
                out.extend_from_slice(message.payload);
                if self.end_of_line {
                    out.push(b'\n');
                }
            } else if self.end_of_line {
                out.extend_from_slice(message.topic.as_bytes());
                out.extend_from_slice(b" (null)\n");
            }
        } else if !message.payload.is_empty() {
            out.extend_from_slice(message.payload);
            if self.end_of_line {
                out.push(b'\n');
            }
        }
        warnings
    }

    fn field(
        &self,
        field: &Field,
        message: &Delivery<'_>,
        now: &Now,
        out: &mut Vec<u8>,
        warnings: &mut Vec<String>,
    ) {
        let pad = if field.zero_pad { b'0' } else { b' ' };
        let properties = message.properties;
        // An absent number prints its padding, an absent Content Type a blank
        // field, and an absent Correlation Data, Response Topic or User Property
        // nothing.
        let number = |value: Option<u32>, out: &mut Vec<u8>| match value {
            Some(value) => write_int(i64::from(value as i32), field, out),
            None => out.extend(std::iter::repeat_n(pad, field.width)),
        };
        match field.conversion {
            b'%' => out.push(b'%'),
            b'A' => number(properties.topic_alias.map(u32::from), out),
            b'E' => number(properties.message_expiry_interval, out),
            b'F' => number(properties.payload_format_indicator.map(u32::from), out),
            b'S' => number(properties.subscription_identifiers.first().copied(), out),
            b'C' => match &properties.content_type {
                Some(content_type) => write_str(content_type.as_bytes(), field, out),
                None => out.extend(std::iter::repeat_n(b' ', field.width)),
            },
            b'D' => {
                if let Some(data) = &properties.correlation_data {
                    out.extend_from_slice(data);
                }
            }
            b'P' => {
                for (i, (name, value)) in properties.user_properties.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(name.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(value.as_bytes());
                }
            }
            b'R' => {
                if let Some(topic) = &properties.response_topic {
                    write_str(topic.as_bytes(), field, out);
                }
            }
            b'I' => {
                let time = now.strftime(b"%FT%T%z");
                if time.is_empty() {
                    out.extend(std::iter::repeat_n(b' ', field.width));
                } else {
                    write_str(&time, field, out);
                }
            }
            b'j' => {
                // `%j` always succeeds: the payload is written as a string.
                write_json(message, now, self.pretty, false, out);
            }
            b'J' => {
                let written = write_json(message, now, self.pretty, true, out);
                if !written {
                    warnings.push(format!(
                        "Error: Message payload is not valid JSON on topic {}.\n",
                        message.topic
                    ));
                }
            }
            b'l' => write_int(message.payload.len() as i64, field, out),
            b'm' => write_int(i64::from(message.packet_id), field, out),
            b'p' => write_payload(message.payload, Hex::No, field, out),
            b'q' => out.push(b'0' + message.qos),
            b'r' => out.push(if message.retain { b'1' } else { b'0' }),
            b't' => write_str(message.topic.as_bytes(), field, out),
            b'U' => out.extend_from_slice(format!("{}.{:09}", now.secs, now.nanos).as_bytes()),
            b'x' => write_payload(message.payload, Hex::Lower, field, out),
            b'X' => write_payload(message.payload, Hex::Upper, field, out),
            _ => {}
        }
    }
}

/// `printf("%d")` with mosquitto's choice of flags: `-` wins over `0`.
fn write_int(value: i64, field: &Field, out: &mut Vec<u8>) {
    let width = field.width;
    let text = if width == 0 {
        value.to_string()
    } else if field.left_align {
        format!("{value:<width$}")
    } else if field.zero_pad {
        format!("{value:0width$}")
    } else {
        format!("{value:>width$}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// `printf("%-*.*s")`: precision cuts, width pads with spaces, both in bytes.
fn write_str(value: &[u8], field: &Field, out: &mut Vec<u8>) {
    let value = match field.precision {
        Some(precision) => &value[..value.len().min(precision)],
        None => value,
    };
    let padding = field.width.saturating_sub(value.len());
    if !field.left_align {
        out.extend(std::iter::repeat_n(b' ', padding));
    }
    out.extend_from_slice(value);
    if field.left_align {
        out.extend(std::iter::repeat_n(b' ', padding));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hex {
    No,
    Lower,
    Upper,
}

/// mosquitto's `write_payload`. A width first cuts the payload to that many bytes
/// (half as many for hex, rounded down) and then pads what is printed up to it.
/// Without a width, `%-p` still pads, by the payload's own length: mosquitto
/// hands `printf` a negative width there, which means "left-align".
fn write_payload(payload: &[u8], hex: Hex, field: &Field, out: &mut Vec<u8>) {
    let (shown, padding) = if field.width > 0 {
        let mut shown = payload.len().min(field.width);
        let printed = if hex == Hex::No {
            shown
        } else {
            shown /= 2;
            shown * 2
        };
        (shown, field.width - printed)
    } else {
        (payload.len(), 0)
    };
    let pad = if field.zero_pad { b'0' } else { b' ' };
    if !field.left_align {
        out.extend(std::iter::repeat_n(pad, padding));
    }
    let bytes = &payload[..shown];
    match hex {
        Hex::No => out.extend_from_slice(bytes),
        Hex::Lower => bytes
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02x}").as_bytes())),
        Hex::Upper => bytes
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02X}").as_bytes())),
    }
    if field.left_align {
        let trailing = if field.width > 0 {
            padding
        } else {
            payload.len()
        };
        out.extend(std::iter::repeat_n(b' ', trailing));
    }
}

/// `%j` (payload as a JSON string) or `%J` (payload as JSON). Returns false, having
/// written nothing, when `%J`'s payload is not JSON.
fn write_json(
    message: &Delivery<'_>,
    now: &Now,
    pretty: bool,
    raw: bool,
    out: &mut Vec<u8>,
) -> bool {
    let payload = if message.payload.is_empty() {
        // libmosquitto hands over no payload buffer at all for an empty payload.
        Value::Null
    } else if raw {
        match json::parse(message.payload) {
            Some(value) => value,
            None => return false,
        }
    } else {
        Value::String(message.payload.to_vec())
    };
    // mosquitto 2.0.11's timestamp: local time, microseconds, a literal `Z`, and
    // then the zone offset.
    let mut tst = now.strftime(b"%Y-%m-%dT%H:%M:%S");
    tst.extend_from_slice(format!(".{:06}Z", now.nanos / 1000).as_bytes());
    tst.extend_from_slice(&now.strftime(b"%z"));
    let mut members = vec![
        (b"tst".to_vec(), Value::String(tst)),
        (
            b"topic".to_vec(),
            Value::String(message.topic.as_bytes().to_vec()),
        ),
        (b"qos".to_vec(), Value::Number(f64::from(message.qos))),
        (
            b"retain".to_vec(),
            Value::Number(f64::from(u8::from(message.retain))),
        ),
        (
            b"payloadlen".to_vec(),
            Value::Number(message.payload.len() as f64),
        ),
    ];
    if message.qos > 0 {
        members.push((b"mid".to_vec(), Value::Number(f64::from(message.packet_id))));
    }
    if let Some(properties) = json_properties(message.properties) {
        members.push((b"properties".to_vec(), properties));
    }
    members.push((b"payload".to_vec(), payload));
    json::write(&Value::Object(members), pretty, out);
    true
}

/// `%j`'s `properties` object, or `None` for a message without properties.
///
/// mosquitto_sub lists them in the order they came in the PUBLISH. The client
/// library hands them over by kind, so they are listed in the order mosquitto's
/// broker forwards a message whose publisher sent them in identifier order (as
/// wren-pub, and mosquitto_pub given them in that order, do): the Subscription
/// Identifier the broker puts first, the publisher's properties, and the Message
/// Expiry Interval the broker puts last.
fn json_properties(p: &Properties) -> Option<Value> {
    let text = |s: &str| Value::String(s.as_bytes().to_vec());
    let number = |n: u32| Value::Number(f64::from(n));
    let mut members: Vec<(Vec<u8>, Value)> = Vec::new();
    for id in &p.subscription_identifiers {
        members.push((b"subscription-identifier".to_vec(), number(*id)));
    }
    if let Some(format) = p.payload_format_indicator {
        members.push((
            b"payload-format-indicator".to_vec(),
            number(u32::from(format)),
        ));
    }
    if let Some(content_type) = &p.content_type {
        members.push((b"content-type".to_vec(), text(content_type)));
    }
    if let Some(topic) = &p.response_topic {
        members.push((b"response-topic".to_vec(), text(topic)));
    }
    if let Some(data) = &p.correlation_data {
        members.push((b"correlation-data".to_vec(), Value::String(data.to_vec())));
    }
    if let Some(alias) = p.topic_alias {
        members.push((b"topic-alias".to_vec(), number(u32::from(alias))));
    }
    if !p.user_properties.is_empty() {
        let pairs = p
            .user_properties
            .iter()
            .map(|(name, value)| (name.as_bytes().to_vec(), text(value)))
            .collect();
        members.push((b"user-properties".to_vec(), Value::Object(pairs)));
    }
    if let Some(expiry) = p.message_expiry_interval {
        members.push((b"message-expiry-interval".to_vec(), number(expiry)));
    }
    (!members.is_empty()).then_some(Value::Object(members))
}

#[cfg(test)]
mod tests {
    use super::*;

    static NONE: Properties = Properties::new();

    // 2026-11-23 08:48:44.273677123 UTC.
    fn now() -> Now {
        Now::utc(1_795_423_724, 273_677_123)
    }

    fn hello() -> Delivery<'static> {
        Delivery {
            topic: "f/one",
            payload: b"hello",
            qos: 0,
            retain: false,
            packet_id: 0,
            properties: &NONE,
        }
    }

    fn printed(printer: &Printer, message: &Delivery<'_>) -> String {
        let mut out = Vec::new();
        let warnings = printer.print(message, &now(), &mut out);
        assert!(warnings.is_empty(), "{warnings:?}");
        String::from_utf8(out).unwrap()
    }

    fn formatted(template: &str, message: &Delivery<'_>) -> String {
        let printer = Printer {
            format: Some(Format::parse(template).unwrap()),
            verbose: false,
            end_of_line: false,
            pretty: false,
        };
        printed(&printer, message)
    }

    fn plain(verbose: bool, end_of_line: bool) -> Printer {
        Printer {
            format: None,
            verbose,
            end_of_line,
            pretty: false,
        }
    }

    #[test]
    fn plain_output_is_the_payload_and_a_newline() {
        let empty = Delivery {
            payload: b"",
            ..hello()
        };
        assert_eq!(printed(&plain(false, true), &hello()), "hello\n");
        assert_eq!(printed(&plain(false, true), &empty), "");
        assert_eq!(printed(&plain(false, false), &hello()), "hello");
    }

    #[test]
    fn verbose_output_is_topic_and_payload() {
        let empty = Delivery {
            payload: b"",
            ..hello()
        };
        assert_eq!(printed(&plain(true, true), &hello()), "f/one hello\n");
        assert_eq!(printed(&plain(true, true), &empty), "f/one (null)\n");
        assert_eq!(printed(&plain(true, false), &hello()), "f/one hello");
        assert_eq!(printed(&plain(true, false), &empty), "");
    }

    #[test]
    fn binary_payloads_pass_untouched() {
        let binary = Delivery {
            payload: b"\x00\xff\n",
            ..hello()
        };
        let mut out = Vec::new();
        plain(false, true).print(&binary, &now(), &mut out);
        assert_eq!(out, b"\x00\xff\n\n");
    }

    #[test]
    fn fields_match_mosquittos_examples() {
        let two = Delivery {
            topic: "f/two",
            payload: b"AbC",
            qos: 1,
            retain: false,
            packet_id: 1,
            properties: &NONE,
        };
        let three = Delivery {
            topic: "f/three",
            payload: b"",
            qos: 2,
            retain: false,
            packet_id: 2,
            properties: &NONE,
        };
        let fields = "%t|%p|%q|%r|%m|%l";
        assert_eq!(formatted(fields, &hello()), "f/one|hello|0|0|0|5");
        assert_eq!(formatted(fields, &two), "f/two|AbC|1|0|1|3");
        assert_eq!(formatted(fields, &three), "f/three||2|0|2|0");
        let hex = "%x|%X|%%|@@";
        assert_eq!(formatted(hex, &hello()), "68656c6c6f|68656C6C6F|%|@");
        assert_eq!(formatted(hex, &two), "416243|416243|%|@");
        assert_eq!(formatted(hex, &three), "||%|@");
        assert_eq!(
            formatted("[%10t][%-10t][%.3t][%05l][%8p][%08p]", &hello()),
            "[     f/one][f/one     ][f/o][00005][   hello][000hello]"
        );
    }

    #[test]
    fn width_quirks_are_mosquittos() {
        assert_eq!(formatted("%03q|%5r", &hello()), "0|0");
        assert_eq!(formatted("%4m|%04m|%-4m|", &hello()), "   0|0000|0   |");
        assert_eq!(formatted("%2p", &hello()), "he");
        assert_eq!(formatted("%8x", &hello()), "    6865");
        assert_eq!(formatted("%2x", &hello()), "68");
        assert_eq!(formatted("%-8X|", &hello()), "6865    |");
        assert_eq!(formatted("%-p|", &hello()), "hello     |");
        assert_eq!(formatted("%-7p|", &hello()), "hello  |");
        assert_eq!(formatted("%-05t|", &hello()), "f/one|");
        assert_eq!(formatted("%.t|%10.2t|", &hello()), "|        f/|");
        assert_eq!(
            formatted("%5A|%05E|%3C|%D%P%R|%2S", &hello()),
            "     |00000|   ||  "
        );
    }

    #[test]
    fn v5_fields_print_the_properties() {
        let mut properties = Properties::new();
        properties.content_type = Some("text/x".into());
        properties.correlation_data = Some(bytes::Bytes::from_static(b"cd"));
        properties.message_expiry_interval = Some(60);
        properties.payload_format_indicator = Some(1);
        properties.user_properties = vec![("a".into(), "b".into()), ("a".into(), "z".into())];
        properties.response_topic = Some("r/t".into());
        properties.subscription_identifiers = vec![7];
        let message = Delivery {
            properties: &properties,
            ..hello()
        };
        assert_eq!(
            formatted("%A|%C|%D|%E|%F|%P|%R|%S", &message),
            "|text/x|cd|60|1|a:b a:z|r/t|7"
        );
        assert_eq!(
            formatted("%3A|%-8C|%.2C|%04E|%-3F|%5R|%03S", &message),
            "   |text/x  |te|0060|1  |  r/t|007"
        );
        assert_eq!(
            formatted("%j", &message),
            r#"{"tst":"2026-11-23T08:48:44.273677Z+0000","topic":"f/one","qos":0,"retain":0,"payloadlen":5,"properties":{"subscription-identifier":7,"payload-format-indicator":1,"content-type":"text/x","response-topic":"r/t","correlation-data":"cd","user-properties":{"a":"b","a":"z"},"message-expiry-interval":60},"payload":"hello"}"#
        );
    }

    #[test]
    fn escapes_and_times() {
        assert_eq!(
            formatted("\\\\\\0\\a\\e\\n\\r\\t\\v", &hello()),
            "\\\0\x07\x1b\n\r\t\x0b"
        );
        assert_eq!(formatted("%U", &hello()), "1795423724.273677123");
        assert_eq!(formatted("%I", &hello()), "2026-11-23T08:48:44+0000");
        assert_eq!(formatted("%.10I", &hello()), "2026-11-23");
        assert_eq!(
            formatted("@Y/@m/@d @H:@M:@S.@N", &hello()),
            "2026/11/23 08:48:44.273677123"
        );
    }

    #[test]
    fn json_has_mosquittos_keys_and_escapes() {
        assert_eq!(
            formatted("%j", &hello()),
            r#"{"tst":"2026-11-23T08:48:44.273677Z+0000","topic":"f/one","qos":0,"retain":0,"payloadlen":5,"payload":"hello"}"#
        );
        let tricky = Delivery {
            topic: "t\"q",
            payload: b"a\x1bb\x00c",
            qos: 1,
            retain: true,
            packet_id: 7,
            properties: &NONE,
        };
        assert_eq!(
            formatted("%j", &tricky),
            r#"{"tst":"2026-11-23T08:48:44.273677Z+0000","topic":"t\"q","qos":1,"retain":1,"payloadlen":5,"mid":7,"payload":"a\u001bb"}"#
        );
        let empty = Delivery {
            payload: b"",
            ..hello()
        };
        assert!(formatted("%j", &empty).ends_with(r#""payloadlen":0,"payload":null}"#));
    }

    #[test]
    fn raw_json_is_reprinted_and_refused_when_invalid() {
        let json = Delivery {
            payload: br#"{ "a" : [1, 2.50] }"#,
            ..hello()
        };
        assert!(formatted("%J", &json).ends_with(r#""payload":{"a":[1,2.5]}}"#));
        let printer = Printer {
            format: Some(Format::parse("<%J>").unwrap()),
            verbose: false,
            end_of_line: true,
            pretty: false,
        };
        let mut out = Vec::new();
        let not_json = Delivery {
            topic: "j/b",
            payload: b"hello",
            ..hello()
        };
        let warnings = printer.print(&not_json, &now(), &mut out);
        assert_eq!(out, b"<>\n");
        assert_eq!(
            warnings,
            ["Error: Message payload is not valid JSON on topic j/b.\n"]
        );
    }

    #[test]
    fn pretty_json_is_tab_indented() {
        let printer = Printer {
            format: Some(Format::parse("%j").unwrap()),
            verbose: false,
            end_of_line: false,
            pretty: true,
        };
        assert_eq!(
            printed(&printer, &hello()),
            "{\n\t\"tst\":\t\"2026-11-23T08:48:44.273677Z+0000\",\n\t\"topic\":\t\"f/one\",\n\
             \t\"qos\":\t0,\n\t\"retain\":\t0,\n\t\"payloadlen\":\t5,\n\t\"payload\":\t\"hello\"\n}"
        );
    }

    #[test]
    fn bad_templates_are_refused_in_mosquittos_words() {
        let cases = [
            ("%", "Incomplete format specifier."),
            ("%-", "Incomplete format specifier."),
            ("%5", "Incomplete format specifier."),
            ("%5.", "Incomplete format specifier."),
            ("@", "Incomplete format specifier."),
            ("%z", "Invalid format specifier 'z'."),
            ("%0-5t", "Invalid format specifier '-'."),
            ("\\", "Incomplete escape specifier."),
            ("\\z", "Invalid escape specifier 'z'."),
        ];
        for (template, message) in cases {
            assert_eq!(
                Format::parse(template).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{template:?}"
            );
        }
    }
}
