//! The YAML-facing side: text in, a plain tree of [`Node`]s out.
//!
//! This is the only file that names `serde_yaml`. The tree is our own type, built
//! through serde's generic `Deserialize`, so another YAML library (or any serde
//! format) can replace `serde_yaml` by changing the two functions at the bottom.
//!
//! Why a tree and not `#[derive(Deserialize)]` structs? Three things the settings
//! files need that derive cannot give: an unknown key must be a *warning*, not an
//! error or a silent skip; a key given twice must be accepted (PyYAML, which hbmqtt
//! and amqtt use, keeps the last one, and amqtt's own sample has a duplicate); and
//! every message must be worded for a person editing the file. The typed reading
//! lives in `load/`.
//!
//! serde gives no positions, so line numbers are found only when a message needs one:
//! [`line_of`] parses the text again and stops at the key it is looking for, and the
//! parser's error location is that key's line.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One YAML value, with mappings kept in file order and duplicates kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// `~`, `null`, or a key with nothing after its colon.
    Null,
    /// `true` / `false`. (`on`, `yes`... are strings in YAML 1.2; `load/section.rs` reads
    /// them as booleans where a boolean is expected, as PyYAML's YAML 1.1 does.)
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// A number with a fraction or exponent.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// `[a, b]` or `- a` lines.
    Seq(Vec<Node>),
    /// `key: value` pairs, in file order; scalar keys are kept as their text.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// How the value is described in a message: `"many"`, `a list`, `42`...
    pub(crate) fn describe(&self) -> String {
        match self {
            Node::Null => "nothing".to_owned(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Str(s) => format!("{s:?}"),
            Node::Seq(_) => "a list".to_owned(),
            Node::Map(_) => "a mapping".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        i128::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom(format!("the number {v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let key = key_text(&key).ok_or_else(|| {
                de::Error::custom(format!("a key must be plain text, not {}", key.describe()))
            })?;
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

/// The text of a scalar used as a key (`1883:` and `true:` are keys too).
fn key_text(key: &Node) -> Option<String> {
    match key {
        Node::Str(s) => Some(s.clone()),
        Node::Int(i) => Some(i.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        Node::Float(f) => Some(f.to_string()),
        Node::Null => Some("null".to_owned()),
        Node::Seq(_) | Node::Map(_) => None,
    }
}

/// One step of a path to a value: a key of a mapping or an index into a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A key, and which of its repeats in the mapping is meant (0: the first).
    Key(String, usize),
    /// An item of a list, from 0.
    Index(usize),
}

/// A YAML syntax error, or a document that is not a tree of plain values.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

/// Parses one YAML document. An empty document is [`Node::Null`].
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    serde_yaml::from_str(text).map_err(|error| {
        let location = error.location();
        let mut message = error.to_string();
        // serde_yaml ends its messages with the location, which the caller shows in
        // its own `file:line:` form.
        if let Some(at) = &location {
            let suffix = format!(" at line {} column {}", at.line(), at.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        SyntaxError {
            line: location.map(|at| at.line()),
            message,
        }
    })
}

/// The 1-based line of the key (or list item) at `path` in `text`, if it is there.
///
/// Works by parsing `text` again with a seed that follows `path` and fails on
/// purpose at its end: the parser then reports where it was.
pub(crate) fn line_of(text: &str, path: &[Step]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let deserializer = serde_yaml::Deserializer::from_str(text);
    match (Seek { path }).deserialize(deserializer) {
        Ok(()) => None,
        Err(error) => error.location().map(|at| at.line()),
    }
}

/// Walks to `path`; `Ok(())` if it is not there, an error positioned on it if it is.
struct Seek<'p> {
    path: &'p [Step],
}

const FOUND: &str = "found";

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    // Scalars end the walk without a find.
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let wanted = match self.path.first() {
            Some(Step::Index(i)) => Some(*i),
            _ => None,
        };
        let mut index = 0;
        loop {
            if Some(index) == wanted {
                if self.path.len() == 1 {
                    // Any failure inside the item is positioned on the item.
                    seq.next_element_seed(Here)?;
                    return Ok(());
                }
                if seq
                    .next_element_seed(Seek {
                        path: &self.path[1..],
                    })?
                    .is_none()
                {
                    return Ok(());
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(Step::Key(wanted, nth)) = self.path.first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let last = self.path.len() == 1;
        let mut hits = 0;
        while let Some(hit) = map.next_key_seed(KeySeek {
            wanted,
            last: last && hits == *nth,
        })? {
            // Only the wanted repeat of the key is walked into.
            let wanted_repeat = hit && hits == *nth;
            if hit {
                hits += 1;
            }
            if wanted_repeat {
                map.next_value_seed(Seek {
                    path: &self.path[1..],
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads a key; fails (positioned on the key) if it is the last step's key.
///
/// The failure has to come from inside a visitor: the parser adds its position only
/// to errors raised while it is handing over a value.
struct KeySeek<'w> {
    wanted: &'w str,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeek<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl KeySeek<'_> {
    fn check<E: de::Error>(&self, key: Node) -> Result<bool, E> {
        let hit = key_text(&key).as_deref() == Some(self.wanted);
        if hit && self.last {
            return Err(E::custom(FOUND));
        }
        Ok(hit)
    }
}

impl<'de> Visitor<'de> for KeySeek<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.check(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.check(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.check(Node::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.check(Node::Int(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.check(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.check(Node::Str(v.to_owned()))
    }
    // A list or mapping used as a key is never the one looked for.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// Fails at once, so the parser reports the position of the value it was handed.
struct Here;

impl<'de> DeserializeSeed<'de> for Here {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Here {
    type Value = ();

    // Every `visit_*` is left to its default, which is an error: whatever the value
    // is, the walk ends on it.
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(FOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.to_owned(), 0)
    }

    #[test]
    fn mappings_keep_order_and_duplicates() {
        let node = parse("b: 1\na: x\nb: on\n").unwrap();
        assert_eq!(
            node,
            Node::Map(vec![
                ("b".into(), Node::Int(1)),
                ("a".into(), Node::Str("x".into())),
                ("b".into(), Node::Str("on".into())),
            ])
        );
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap(), Node::Null);
        assert_eq!(parse("# only a comment\n").unwrap(), Node::Null);
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let error = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert_eq!(error.line, Some(3), "{error:?}");
    }

    #[test]
    fn type_errors_lose_the_location_suffix() {
        let error = parse("a: 1\n? [x]\n: 2\n").unwrap_err();
        assert!(error.line.is_some(), "{error:?}");
        assert_eq!(error.message, "a key must be plain text, not a list");
    }

    #[test]
    fn line_of_finds_nested_keys_and_list_items() {
        let text = "a:\n  b: 1\n  c:\n    - x\n    - y\nd: 2\n";
        assert_eq!(line_of(text, &[key("a")]), Some(1));
        assert_eq!(line_of(text, &[key("a"), key("c")]), Some(3));
        assert_eq!(
            line_of(text, &[key("a"), key("c"), Step::Index(1)]),
            Some(5)
        );
        assert_eq!(line_of(text, &[key("d")]), Some(6));
        assert_eq!(line_of(text, &[key("a"), key("zz")]), None);
        assert_eq!(line_of(text, &[key("a"), key("c"), Step::Index(7)]), None);
    }

    #[test]
    fn line_of_finds_the_nth_of_a_repeated_key() {
        let text = "a:\n  b: 1\n  b: 2\n  b: 3\n";
        let nth = |n| [key("a"), Step::Key("b".to_owned(), n)];
        assert_eq!(line_of(text, &nth(0)), Some(2));
        assert_eq!(line_of(text, &nth(2)), Some(4));
        assert_eq!(line_of(text, &nth(3)), None);
    }

    #[test]
    fn line_of_works_in_flow_style() {
        let text = "a: {b: 1,\n     c: 2}\n";
        assert_eq!(line_of(text, &[key("a"), key("c")]), Some(2));
    }
}
