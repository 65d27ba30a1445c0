//! From a YAML tree to typed settings, checking every value on the way.
//!
//! A [`Section`] is one YAML mapping being read. Each setting is *taken* from it by
//! name and converted by a [`Field`](section::Field) method that knows the wording of the problem
//! (`expected a number, found "many"`). Whatever is left in a section at the end was
//! not a setting, and becomes an unknown-key warning. Problems carry the path of
//! their key; the line is looked up only when a message is actually made.
//!
//! `section.rs` holds that machinery and its wording; `broker.rs` and `client.rs`
//! read the keys of the two files; `compat.rs` says what files written for hbmqtt
//! and amqtt meet here that wren-mqtt does not act on.

mod bridge;
mod broker;
mod client;
mod compat;
mod section;

use super::yaml::{self, Step};
use super::{BrokerConfig, ClientConfig, ConfigError, ConfigWarning};
use broker::read_broker;
use client::read_client;
use compat::syntax_hint;
use section::{Problem, Section, Warnings};

/// Settings read from a file, with the warnings reading them gave.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Loaded<T> {
    /// The settings.
    pub config: T,
    /// What was accepted but deserves attention (already logged with `log::warn!`).
    pub warnings: Vec<ConfigWarning>,
}

/// Reads a broker settings file's text.
pub(crate) fn broker(text: &str, origin: &str) -> Result<Loaded<BrokerConfig>, ConfigError> {
    read(text, origin, read_broker)
}

/// Reads a client settings file's text.
pub(crate) fn client(text: &str, origin: &str) -> Result<Loaded<ClientConfig>, ConfigError> {
    read(text, origin, read_client)
}

/// Reads a whole file's text with `f`, the shared part of [`broker()`] and [`client()`].
pub(crate) fn read_file<T>(
    path: &std::path::Path,
    f: fn(&str, &str) -> Result<Loaded<T>, ConfigError>,
) -> Result<Loaded<T>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    f(&text, &path.display().to_string())
}

fn read<T>(
    text: &str,
    origin: &str,
    f: fn(Section, &mut Warnings) -> Result<T, Problem>,
) -> Result<Loaded<T>, ConfigError> {
    let root = yaml::parse(text).map_err(|error| ConfigError::Syntax {
        origin: origin.to_owned(),
        line: error.line,
        message: error.message + &syntax_hint(text, error.line),
    })?;
    let mut warnings = Warnings::default();
    let result =
        Section::new(Vec::new(), root, &mut warnings).and_then(|top| f(top, &mut warnings));
    let config = result.map_err(|problem| ConfigError::Invalid {
        origin: origin.to_owned(),
        line: line_of(text, &problem.path),
        key: path_text(&problem.path),
        message: problem.message,
    })?;
    let mut warnings: Vec<ConfigWarning> = warnings
        .0
        .into_iter()
        .map(|(path, kind, message)| ConfigWarning {
            origin: origin.to_owned(),
            line: line_of(text, &path),
            key: path_text(&path),
            kind,
            message,
        })
        .collect();
    // In file order, as a person reads them; unplaced ones last.
    warnings.sort_by_key(|w| w.line.unwrap_or(usize::MAX));
    for warning in &warnings {
        log::warn!("{warning}");
    }
    Ok(Loaded { config, warnings })
}

/// The line of `path`, or of the nearest enclosing key that is in the file (a value
/// a listener inherits from `default` is not under the listener's own key).
fn line_of(text: &str, path: &[Step]) -> Option<usize> {
    (1..=path.len())
        .rev()
        .find_map(|len| yaml::line_of(text, &path[..len]))
}

/// `listeners.my-tcp.bind`, `topic-check.acl.alice[2]`.
fn path_text(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key, _) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}
