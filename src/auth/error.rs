//! Errors of the auth layer.
//!
//! Every message names the file and line it comes from (or the user and filter of a
//! `topic-check` entry) and says what was expected, so that an administrator can fix
//! the file without reading this code.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::protocol::TopicError;

/// Why loading, checking or saving a password file or an ACL failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done: `read`, `write`, `replace`.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A line of a password file is not `user:hash` with a hash wren can verify.
    #[error("{path}, line {line}: {reason}")]
    PasswordLine {
        /// The file (or the name given to [`PasswordFile::parse`](super::PasswordFile::parse)).
        path: String,
        /// The line number, counting from 1.
        line: usize,
        /// What is wrong with the line.
        reason: PasswordLineError,
    },
    /// A user name cannot be stored in a password file.
    #[error("invalid user name {user:?}: {reason}")]
    InvalidUserName {
        /// The user name refused.
        user: String,
        /// Why: it holds `:`, a line break, or starts with `#`.
        reason: &'static str,
    },
    /// A line of a mosquitto ACL file is not a valid rule.
    #[error("{path}, line {line}: {reason}")]
    AclLine {
        /// The file (or the name given to [`Acl::parse_mosquitto`](super::Acl::parse_mosquitto)).
        path: String,
        /// The line number, counting from 1.
        line: usize,
        /// What is wrong with the line.
        reason: AclLineError,
    },
    /// A `topic-check` entry holds something that is not a topic filter.
    #[error(
        "topic-check {section} of user {user:?}: {filter:?} is not a valid topic filter: {source}"
    )]
    TopicCheckFilter {
        /// `acl` or `publish-acl`.
        section: &'static str,
        /// The user (or `anonymous`) the entry belongs to.
        user: String,
        /// The filter as written.
        filter: String,
        /// Which rule of MQTT it breaks.
        source: TopicError,
    },
    /// The iteration count for PBKDF2 is zero.
    #[error("the PBKDF2 iteration count must be at least 1")]
    ZeroIterations,
    /// The operating system could not provide random bytes for a salt.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// What is wrong with one line of a password file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordLineError {
    /// The line has no `:` between user name and hash.
    MissingColon,
    /// The line starts with `:`.
    EmptyUserName,
    /// The same user appears twice; which line counts would be a guess.
    DuplicateUser {
        /// The user.
        user: String,
        /// The line where the user first appeared.
        first_line: usize,
    },
    /// The password is not hashed.
    Plaintext {
        /// The user whose password is in the clear.
        user: String,
    },
    /// The hash is not one of the formats wren reads.
    InvalidHash {
        /// The user whose hash is refused.
        user: String,
        /// What is wrong with it.
        reason: HashError,
    },
}

impl fmt::Display for PasswordLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordLineError::MissingColon => f.write_str("expected `user:hash`, found no ':'"),
            PasswordLineError::EmptyUserName => f.write_str("the user name before ':' is empty"),
            PasswordLineError::DuplicateUser { user, first_line } => {
                write!(f, "user {user:?} already appeared on line {first_line}")
            }
            PasswordLineError::Plaintext { user } => write!(
                f,
                "the password of user {user:?} is in plain text, which is refused; \
                 hash the file with `wren-passwd -U FILE`"
            ),
            PasswordLineError::InvalidHash { user, reason } => {
                write!(f, "the password hash of user {user:?} is invalid: {reason}")
            }
        }
    }
}

/// Why a string is not a password hash wren can verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The string does not start with `$`: it is a password in the clear.
    #[error("not a hash (a hash starts with '$6$' or '$7$')")]
    Plaintext,
    /// The string names a scheme wren does not implement, such as `$argon2id$` or `$5$`.
    #[error("unsupported hash scheme {0:?}; wren reads '$6$' (SHA-512-crypt or mosquitto SHA-512) and '$7$' (PBKDF2-SHA512)")]
    UnsupportedScheme(String),
    /// The string starts like a known scheme but its fields are wrong.
    #[error("malformed {scheme} hash: {reason}")]
    Malformed {
        /// The scheme the prefix announced.
        scheme: &'static str,
        /// Which field is wrong and what was expected.
        reason: String,
    },
}

/// What is wrong with one line of a mosquitto ACL file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclLineError {
    /// The line starts with a word other than `user`, `topic` or `pattern`.
    UnknownKeyword(String),
    /// `user` with no name after it.
    MissingUserName,
    /// `topic` or `pattern` with no topic filter after it.
    MissingTopic,
    /// The topic filter breaks a rule of MQTT.
    InvalidFilter {
        /// The filter as written.
        filter: String,
        /// The rule it breaks.
        source: TopicError,
    },
    /// `%u` or `%c` shares its level with other characters (`a%u/b`); mosquitto
    /// substitutes only whole levels.
    PartialSubstitution {
        /// The offending level.
        level: String,
    },
}

impl fmt::Display for AclLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclLineError::UnknownKeyword(word) => write!(
                f,
                "unknown keyword {word:?}; expected `user`, `topic` or `pattern`"
            ),
            AclLineError::MissingUserName => f.write_str("`user` needs a user name"),
            AclLineError::MissingTopic => f.write_str("missing topic filter"),
            AclLineError::InvalidFilter { filter, source } => {
                write!(f, "{filter:?} is not a valid topic filter: {source}")
            }
            AclLineError::PartialSubstitution { level } => write!(
                f,
                "level {level:?}: `%u` and `%c` must fill a whole topic level"
            ),
        }
    }
}

impl std::error::Error for PasswordLineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PasswordLineError::InvalidHash { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl std::error::Error for AclLineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AclLineError::InvalidFilter { source, .. } => Some(source),
            _ => None,
        }
    }
}
