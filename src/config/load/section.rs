//! The `Section`/`Field` reading machinery: taking keys from a YAML mapping and
//! converting values, with the wording of every problem.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::super::yaml::{Node, Step};
use super::super::WarningKind;
use crate::protocol::QoS;

/// The longest time a setting may give, in seconds: ten years. Longer ones would
/// overflow when added to the time now.
const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A value that cannot be used, and where it is.
#[derive(Debug)]
pub(super) struct Problem {
    pub(super) path: Vec<Step>,
    pub(super) message: String,
}

/// Warnings gathered while reading, positioned later.
#[derive(Default)]
pub(super) struct Warnings(pub(super) Vec<(Vec<Step>, WarningKind, String)>);

impl Warnings {
    pub(super) fn add(&mut self, path: &[Step], kind: WarningKind, message: impl Into<String>) {
        self.0.push((path.to_vec(), kind, message.into()));
    }
}

/// One YAML mapping being read.
#[derive(Debug, Clone)]
pub(super) struct Section {
    pub(super) path: Vec<Step>,
    /// Key, value, and which repeat of the key the value came from (a key given
    /// twice keeps its last value, and messages point at that one).
    entries: Vec<(String, Node, usize)>,
}

impl Section {
    /// Reads `node` as a mapping. Nothing at all is an empty one; a key given twice
    /// keeps its last value, with a warning.
    pub(super) fn new(
        path: Vec<Step>,
        node: Node,
        warnings: &mut Warnings,
    ) -> Result<Section, Problem> {
        let pairs = match node {
            Node::Null => Vec::new(),
            Node::Map(pairs) => pairs,
            other => {
                return Err(Problem {
                    path,
                    message: format!("expected a mapping of settings, found {}", other.describe()),
                })
            }
        };
        let mut section = Section {
            path,
            entries: Vec::with_capacity(pairs.len()),
        };
        for (key, value) in pairs {
            if let Some(earlier) = section.entries.iter_mut().find(|(k, ..)| *k == key) {
                earlier.1 = value;
                earlier.2 += 1;
                let at = section.child_path(&key);
                warnings.add(
                    &at,
                    WarningKind::DuplicateKey,
                    "given more than once; the last value is used",
                );
            } else {
                section.entries.push((key, value, 0));
            }
        }
        Ok(section)
    }

    pub(super) fn child_path(&self, key: &str) -> Vec<Step> {
        let nth = self
            .entries
            .iter()
            .find(|(k, ..)| k == key)
            .map_or(0, |(.., nth)| *nth);
        let mut path = self.path.clone();
        path.push(Step::Key(key.to_owned(), nth));
        path
    }

    /// Removes `key` and returns its value; a key with no value counts as absent.
    pub(super) fn take(&mut self, key: &str) -> Option<Field> {
        let field = self.get(key);
        self.entries.retain(|(k, ..)| k != key);
        field
    }

    /// Like [`take`](Self::take) but leaves the key in place.
    pub(super) fn get(&self, key: &str) -> Option<Field> {
        let (_, node, _) = self.entries.iter().find(|(k, ..)| k == key)?;
        (*node != Node::Null).then(|| Field {
            path: self.child_path(key),
            node: node.clone(),
        })
    }

    /// Takes a key that hbmqtt or amqtt know and that has no effect here.
    pub(super) fn not_supported(&mut self, key: &str, warnings: &mut Warnings, why: &str) {
        if let Some(field) = self.take(key) {
            warnings.add(&field.path, WarningKind::NotSupported, why);
        }
    }

    /// Takes a nested mapping; absent is an empty one.
    pub(super) fn section(
        &mut self,
        key: &str,
        warnings: &mut Warnings,
    ) -> Result<Section, Problem> {
        let path = self.child_path(key);
        let node = self.take(key).map_or(Node::Null, |field| field.node);
        Section::new(path, node, warnings)
    }

    /// Ends reading: every key still here is unknown.
    pub(super) fn finish(self, warnings: &mut Warnings) {
        for (key, ..) in &self.entries {
            warnings.add(
                &self.child_path(key),
                WarningKind::UnknownKey,
                "unknown key, ignored",
            );
        }
    }

    /// The remaining entries, each as a field, for mappings whose keys are names
    /// (listeners, users, topics).
    pub(super) fn drain(self) -> impl Iterator<Item = (String, Field)> {
        let path = self.path;
        self.entries.into_iter().map(move |(key, node, nth)| {
            let mut at = path.clone();
            at.push(Step::Key(key.clone(), nth));
            (key, Field { path: at, node })
        })
    }
}

/// One value being read.
#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) path: Vec<Step>,
    pub(super) node: Node,
}

impl Field {
    pub(super) fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    pub(super) fn expected(&self, what: &str) -> Problem {
        self.problem(format!("expected {what}, found {}", self.node.describe()))
    }

    /// `true`/`false`, and the YAML 1.1 words PyYAML reads as booleans (`on`, `off`,
    /// `yes`, `no`), since hbmqtt files say `ssl: on`.
    pub(super) fn flag(&self) -> Result<bool, Problem> {
        match &self.node {
            Node::Bool(b) => Ok(*b),
            Node::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" => Ok(true),
                "false" | "off" | "no" => Ok(false),
                _ => Err(self.expected("on or off (or true/false, yes/no)")),
            },
            _ => Err(self.expected("on or off (or true/false, yes/no)")),
        }
    }

    /// A whole number, which may be negative.
    pub(super) fn integer(&self) -> Result<i128, Problem> {
        match &self.node {
            Node::Int(i) => Ok(*i),
            Node::Float(_) => Err(self.expected("a whole number")),
            _ => Err(self.expected("a number")),
        }
    }

    /// A whole number within `range`.
    pub(super) fn count(&self, range: RangeInclusive<u64>) -> Result<u64, Problem> {
        let value = self.integer()?;
        if value < 0 {
            return Err(self.problem(format!("must not be negative, found {value}")));
        }
        match u64::try_from(value) {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(self.problem(format!(
                "must be from {} to {}, found {value}",
                range.start(),
                range.end()
            ))),
        }
    }

    /// A number of seconds, whole or not, zero or more, and at most
    /// [`MAX_SECONDS`] so that adding it to the time now cannot overflow.
    pub(super) fn seconds(&self) -> Result<Duration, Problem> {
        let seconds = match &self.node {
            Node::Int(i) => *i as f64,
            Node::Float(f) => *f,
            _ => return Err(self.expected("a number of seconds")),
        };
        if seconds.is_nan() || seconds < 0.0 {
            return Err(self.problem(format!("must not be negative, found {seconds}")));
        }
        if seconds > MAX_SECONDS as f64 {
            return Err(self.problem(format!(
                "must be at most {MAX_SECONDS} seconds (10 years), found {seconds}"
            )));
        }
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| self.problem(format!("{seconds} is not a usable number of seconds")))
    }

    /// A number of seconds more than zero (see [`seconds`](Self::seconds)).
    pub(super) fn positive_seconds(&self) -> Result<Duration, Problem> {
        let seconds = self.seconds()?;
        if seconds.is_zero() {
            return Err(self.problem("must be more than 0 seconds"));
        }
        Ok(seconds)
    }

    /// A cap on a count or a size: a whole number, where 0 means "no limit" (as in
    /// mosquitto) and is read as `usize::MAX`.
    pub(super) fn limit(&self) -> Result<usize, Problem> {
        match self.count(0..=u64::MAX)? {
            0 => Ok(usize::MAX),
            n => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }

    /// Text. A number is taken as its digits (a user or topic may be named `1234`).
    pub(super) fn text(&self) -> Result<String, Problem> {
        match &self.node {
            Node::Str(s) => Ok(s.clone()),
            Node::Int(i) => Ok(i.to_string()),
            _ => Err(self.expected("text")),
        }
    }

    /// A file or directory name.
    pub(super) fn file(&self) -> Result<PathBuf, Problem> {
        let text = self.text()?;
        if text.is_empty() {
            return Err(self.problem("expected a file name, found an empty string"));
        }
        Ok(PathBuf::from(text))
    }

    /// A QoS level, 0, 1 or 2.
    pub(super) fn qos(&self) -> Result<QoS, Problem> {
        let level = self.count(0..=2)?;
        // `count` bounded it to 0..=2, which `from_u8` maps.
        QoS::from_u8(level as u8).ok_or_else(|| self.expected("0, 1 or 2"))
    }

    pub(super) fn list(self) -> Result<Vec<Field>, Problem> {
        match self.node {
            Node::Seq(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, node)| {
                    let mut path = self.path.clone();
                    path.push(Step::Index(i));
                    Field { path, node }
                })
                .collect()),
            other => Err(Problem {
                path: self.path,
                message: format!("expected a list, found {}", other.describe()),
            }),
        }
    }

    pub(super) fn section(self, warnings: &mut Warnings) -> Result<Section, Problem> {
        Section::new(self.path, self.node, warnings)
    }
}
