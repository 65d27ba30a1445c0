//! JSON for `-F %j` and `-F %J`, byte for byte as mosquitto_sub writes it.
//!
//! mosquitto_sub builds its JSON with cJSON, so "the same output" means cJSON's
//! rules, not just any valid JSON:
//!
//! - strings escape `"`, `\`, `\b \f \n \r \t` and other bytes below 0x20 as
//!   `\u00xx` (lower-case hex); every other byte, invalid UTF-8 included, is written
//!   as it is, and a string ends at its first NUL byte (cJSON strings are C strings);
//! - numbers print as C's `%1.15g`, or `%1.17g` when 15 digits do not give the
//!   same double back (so `-0` stays `-0`); infinities print as `null`;
//! - `--pretty` indents with tabs and writes `"key":<TAB>value`, arrays as `[a, b]`;
//! - `%J` re-reads the payload with cJSON's parser, which is more lenient than the
//!   JSON grammar in a few ways (leading zeros, `1.`, any escape `\u` with bad hex
//!   reads as U+0000) and stricter in none that matter; a payload it cannot read in
//!   full is "not valid JSON".

/// A JSON value as cJSON holds one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Every number is a double, as in cJSON.
    Number(f64),
    /// A string's bytes, not necessarily UTF-8.
    String(Vec<u8>),
    /// `[...]`.
    Array(Vec<Value>),
    /// `{...}`, keys in their order, duplicates kept.
    Object(Vec<(Vec<u8>, Value)>),
}

/// How deep arrays and objects may nest: cJSON's `CJSON_NESTING_LIMIT`.
const NESTING_LIMIT: usize = 1000;

/// Reads `input` as cJSON's `cJSON_ParseWithOpts(.., require_null_terminated)` does,
/// and as mosquitto then checks it: the whole input must be one value, with only
/// whitespace around it. `None` if it is not.
pub fn parse(input: &[u8]) -> Option<Value> {
    // cJSON sees a C string: a NUL inside the payload ends it early, and mosquitto
    // then finds the parse did not reach the payload's end.
    if input.contains(&0) {
        return None;
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut reader = Reader { input, at: 0 };
    reader.skip_whitespace();
    let value = reader.value(0)?;
    reader.skip_whitespace();
    (reader.at == input.len()).then_some(value)
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    /// cJSON treats every byte up to and including the space as whitespace.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b) if b <= b' ') {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        if self.input[self.at..].starts_with(word) {
            self.at += word.len();
            Some(value)
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        match self.peek()? {
            b'n' => self.literal(b"null", Value::Null),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'"' => self.string().map(Value::String),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            b'[' => self.array(depth),
            b'{' => self.object(depth),
            _ => None,
        }
    }

    /// cJSON copies up to 63 bytes from `0-9 + - e E .` and lets `strtod` take the
    /// longest number it can from them.
    fn number(&mut self) -> Option<f64> {
        let candidates = self.input[self.at..]
            .iter()
            .take(63)
            .take_while(|b| matches!(b, b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' | b'.'))
            .count();
        let text = &self.input[self.at..self.at + candidates];
        let length = strtod_prefix(text);
        if length == 0 {
            return None;
        }
        let value = std::str::from_utf8(&text[..length])
            .ok()?
            .parse::<f64>()
            .ok()?;
        self.at += length;
        Some(value)
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        // The opening quote; then find the closing one, stepping over escapes.
        let start = self.at + 1;
        let mut end = start;
        loop {
            match self.input.get(end)? {
                b'"' => break,
                b'\\' => {
                    self.input.get(end + 1)?;
                    end += 2;
                }
                _ => end += 1,
            }
        }
        let body = &self.input[start..end];
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            if body[i] != b'\\' {
                out.push(body[i]);
                i += 1;
                continue;
            }
            match body[i + 1] {
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'"' | b'\\' | b'/' => out.push(body[i + 1]),
                b'u' => {
                    i += utf16_escape(&body[i..], &mut out)?;
                    continue;
                }
                _ => return None,
            }
            i += 2;
        }
        self.at = end + 1;
        Some(out)
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        if depth >= NESTING_LIMIT {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        if depth >= NESTING_LIMIT {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        let mut members = Vec::new();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(Value::Object(members));
                }
                _ => return None,
            }
        }
    }
}

/// How many bytes of `text` C's `strtod` would read as a decimal number: a sign,
/// digits with at most one point (at least one digit), and an exponent only if it
/// has digits. `text` holds only `0-9 + - e E .`.
fn strtod_prefix(text: &[u8]) -> usize {
    let digits = |from: usize| {
        text[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = 0;
    if matches!(text.first(), Some(b'+' | b'-')) {
        at = 1;
    }
    let whole = digits(at);
    at += whole;
    let mut fraction = 0;
    if text.get(at) == Some(&b'.') {
        fraction = digits(at + 1);
        if whole + fraction > 0 {
            at += 1 + fraction;
        }
    }
    if whole + fraction == 0 {
        return 0;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        let mut exponent = at + 1;
        if matches!(text.get(exponent), Some(b'+' | b'-')) {
            exponent += 1;
        }
        let exponent_digits = digits(exponent);
        if exponent_digits > 0 {
            at = exponent + exponent_digits;
        }
    }
    at
}

/// Decodes `\uXXXX` (and a following low surrogate) at the start of `escape` into
/// UTF-8, as cJSON does: a bad hex digit makes the whole code 0. Returns how many
/// bytes were read.
fn utf16_escape(escape: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    fn hex4(digits: &[u8]) -> u32 {
        let mut code = 0;
        for &d in digits {
            let nibble = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return 0,
            };
            code = code << 4 | u32::from(nibble);
        }
        code
    }
    if escape.len() < 6 {
        return None;
    }
    let first = hex4(&escape[2..6]);
    let (code, used) = match first {
        0xDC00..=0xDFFF => return None,
        0xD800..=0xDBFF => {
            let second = escape.get(6..12)?;
            if &second[..2] != b"\\u" {
                return None;
            }
            let low = hex4(&second[2..6]);
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            (0x10000 + (((first & 0x3FF) << 10) | (low & 0x3FF)), 12)
        }
        _ => (first, 6),
    };
    let ch = char::from_u32(code)?;
    let mut buf = [0; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    Some(used)
}

/// Writes `value` as cJSON's `cJSON_PrintUnformatted` (or `cJSON_Print` when
/// `pretty`) would.
pub fn write(value: &Value, pretty: bool, out: &mut Vec<u8>) {
    write_at(value, pretty, 0, out);
}

fn write_at(value: &Value, pretty: bool, depth: usize, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(number(*n).as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                    if pretty {
                        out.push(b' ');
                    }
                }
                write_at(item, pretty, depth + 1, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            if pretty {
                out.push(b'\n');
            }
            for (i, (key, member)) in members.iter().enumerate() {
                if pretty {
                    out.extend(std::iter::repeat_n(b'\t', depth + 1));
                }
                write_string(key, out);
                out.push(b':');
                if pretty {
                    out.push(b'\t');
                }
                write_at(member, pretty, depth + 1, out);
                if i + 1 < members.len() {
                    out.push(b',');
                }
                if pretty {
                    out.push(b'\n');
                }
            }
            if pretty {
                out.extend(std::iter::repeat_n(b'\t', depth));
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as cJSON writes it; it ends at the first NUL byte.
pub fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in bytes.iter().take_while(|&&b| b != 0) {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A number as cJSON 1.7.15 (the version mosquitto 2.0.11 is built with on Debian)
/// prints it.
pub fn number(n: f64) -> String {
    if !n.is_finite() {
        return "null".to_owned();
    }
    let short = c_format_g(n, 15);
    match short.parse::<f64>() {
        Ok(back) if (back - n).abs() <= back.abs().max(n.abs()) * f64::EPSILON => short,
        _ => c_format_g(n, 17),
    }
}

/// C's `printf("%1.<precision>g", n)` for a finite `n`.
fn c_format_g(n: f64, precision: usize) -> String {
    // Round to `precision` significant digits first: the exponent after rounding
    // decides between fixed and scientific notation, as C specifies.
    let scientific = format!("{:.*e}", precision - 1, n);
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        trim_fraction(&format!("{n:.decimals$}")).to_owned()
    }
}

/// `%g` drops trailing zeros of the fraction, and the point if nothing is left.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reprint(input: &str, pretty: bool) -> Option<String> {
        let value = parse(input.as_bytes())?;
        let mut out = Vec::new();
        write(&value, pretty, &mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn compact_output_drops_whitespace() {
        assert_eq!(
            reprint(" { \"a\" : [1, 2.5, true, null], \"b\": {} } ", false).as_deref(),
            Some(r#"{"a":[1,2.5,true,null],"b":{}}"#)
        );
    }

    #[test]
    fn pretty_output_indents_with_tabs() {
        assert_eq!(
            reprint(r#"{"a":[1,2],"b":{"c":"d"},"e":{}}"#, true).as_deref(),
            Some("{\n\t\"a\":\t[1, 2],\n\t\"b\":\t{\n\t\t\"c\":\t\"d\"\n\t},\n\t\"e\":\t{\n\t}\n}")
        );
    }

    #[test]
    fn numbers_print_like_cjson() {
        let cases = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (3.0, "3"),
            (-17.0, "-17"),
            (2147483647.0, "2147483647"),
            (-2147483648.0, "-2147483648"),
            (1e10, "10000000000"),
            (0.1, "0.1"),
            (2.5, "2.5"),
            (1.0 / 3.0, "0.33333333333333331"),
            (1e-5, "1e-05"),
            (1.5e300, "1.5e+300"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (f64::INFINITY, "null"),
        ];
        for (n, text) in cases {
            assert_eq!(number(n), text, "for {n:e}");
        }
    }

    #[test]
    fn strings_escape_like_cjson() {
        let mut out = Vec::new();
        write_string(b"a\"b\\c\n\t\x1b\x7f\xff/\x00hidden", &mut out);
        assert_eq!(out, b"\"a\\\"b\\\\c\\n\\t\\u001b\x7f\xff/\"");
    }

    #[test]
    fn parsing_is_lenient_where_cjson_is() {
        assert_eq!(reprint("01", false).as_deref(), Some("1"));
        assert_eq!(reprint("1.", false).as_deref(), Some("1"));
        assert_eq!(reprint("\u{feff}[]", false).as_deref(), Some("[]"));
        assert_eq!(reprint(r#""\u00e9\/""#, false).as_deref(), Some("\"é/\""));
        assert_eq!(
            reprint(r#""\ud83d\ude00""#, false).as_deref(),
            Some("\"😀\"")
        );
        assert_eq!(reprint("1e400", false).as_deref(), Some("null"));
    }

    #[test]
    fn parsing_rejects_what_cjson_rejects() {
        for bad in [
            "",
            " ",
            "hello",
            "[1,]",
            "{\"a\"}",
            "{a:1}",
            "1 2",
            "\"abc",
            r#""\x""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            "[1}",
            "nul",
            "-",
            "1e",
            "tru",
            "{\"a\":1,}",
            "1\u{0}",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn nesting_is_limited() {
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(parse(deep.as_bytes()).is_some());
        let deeper = "[".repeat(1001) + &"]".repeat(1001);
        assert!(parse(deeper.as_bytes()).is_none());
    }
}
