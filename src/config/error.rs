//! What can go wrong reading a settings file, and what is worth a warning.

use std::fmt;
use std::path::PathBuf;

/// Why a settings file could not be used.
///
/// Every message starts with where the problem is, `file:line: key:` as compilers
/// do, so that an editor or a person can jump to it:
///
/// ```text
/// broker.yaml:7: listeners.default.max-connections: expected a whole number, found "many"
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file as it was named.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not valid YAML, or not one document.
    #[error("{}: {message}", Place { origin, line: *line, key: None })]
    Syntax {
        /// The file name (or the name given to `from_yaml_str`).
        origin: String,
        /// The 1-based line the YAML parser stopped at, when it knows.
        line: Option<usize>,
        /// What the YAML parser said.
        message: String,
    },
    /// A setting has a value that cannot be used, or a required one is missing.
    #[error("{}: {message}", Place { origin, line: *line, key: Some(key) })]
    Invalid {
        /// The file name (or the name given to `from_yaml_str`).
        origin: String,
        /// The 1-based line of the key, or of the nearest enclosing key when the
        /// value came from elsewhere (a listener inheriting from `default`).
        line: Option<usize>,
        /// The full path of the key, `listeners.my-tcp.bind`.
        key: String,
        /// What is wrong and, where it helps, what would be right.
        message: String,
    },
}

impl ConfigError {
    /// The full path of the offending key (`listeners.default.max-connections`), for
    /// [`ConfigError::Invalid`].
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The 1-based line in the file the problem was found at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => *line,
            ConfigError::Read { .. } => None,
        }
    }
}

/// Something in a settings file that was accepted but deserves the user's attention:
/// a key that means nothing here (a typo, most likely), a key hbmqtt or amqtt know
/// that wren-mqtt does not act on, a key given twice.
///
/// Warnings are logged with `log::warn!` as the file is read, and also returned by
/// the `load_yaml_*` functions so that programs and tests can look at them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigWarning {
    /// The file name (or the name given to `load_yaml_str`).
    pub origin: String,
    /// The 1-based line of the key, when known.
    pub line: Option<usize>,
    /// The full path of the key, `listeners.my-tcp.bnd`.
    pub key: String,
    /// What kind of warning this is.
    pub kind: WarningKind,
    /// The sentence to show.
    pub message: String,
}

/// The kinds of [`ConfigWarning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// The key is not a setting at all; it is ignored. Usually a typo.
    UnknownKey,
    /// hbmqtt or amqtt know the key, wren-mqtt accepts it and does not act on it.
    NotSupported,
    /// The key appears twice in one mapping; the last value is used, as PyYAML does.
    DuplicateKey,
    /// The setting is valid but probably not what was meant.
    Suspicious,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = Place {
            origin: &self.origin,
            line: self.line,
            key: Some(&self.key),
        };
        write!(f, "{place}: {}", self.message)
    }
}

/// `origin:line: key`, leaving out what is not known.
struct Place<'a> {
    origin: &'a str,
    line: Option<usize>,
    key: Option<&'a str>,
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        match self.key {
            Some(key) if !key.is_empty() => write!(f, ": {key}"),
            _ => Ok(()),
        }
    }
}
