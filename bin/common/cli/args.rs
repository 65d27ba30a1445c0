//! The tokens still to be read, the numbers they hold, and the errors about them,
//! worded as mosquitto words them.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;

use wren::protocol::QoS;

/// A problem with the arguments, printed as mosquitto prints it: `Error: ...`, then
/// (usually) a blank line and `Use 'wren-sub --help' to see usage.`. Exit code 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    text: String,
    hint: bool,
}

impl ArgError {
    /// `Error: <message>` on one line, then the usage hint.
    pub fn line(message: impl fmt::Display) -> ArgError {
        ArgError {
            text: format!("Error: {message}\n"),
            hint: true,
        }
    }

    /// `Error: <message>` and an empty line, then the usage hint: the layout mosquitto
    /// uses for most option errors.
    pub fn spaced(message: impl fmt::Display) -> ArgError {
        ArgError {
            text: format!("Error: {message}\n\n"),
            hint: true,
        }
    }

    /// Exactly `text` (which may be empty), then the usage hint.
    pub fn hinted(text: impl Into<String>) -> ArgError {
        ArgError {
            text: text.into(),
            hint: true,
        }
    }

    /// Exactly `text`, without the usage hint.
    pub fn bare(text: impl Into<String>) -> ArgError {
        ArgError {
            text: text.into(),
            hint: false,
        }
    }

    /// The message as it goes to stderr, from the program called `tool`.
    pub fn render(&self, tool: &str) -> String {
        if self.hint {
            format!("{}\nUse '{tool} --help' to see usage.\n", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// The argument tokens still to be read.
#[derive(Debug)]
pub struct Args {
    tokens: VecDeque<OsString>,
}

impl Args {
    /// The tokens, without the program name.
    pub fn new(tokens: impl IntoIterator<Item = OsString>) -> Args {
        Args {
            tokens: tokens.into_iter().collect(),
        }
    }

    pub(super) fn next_token(&mut self) -> Option<OsString> {
        self.tokens.pop_front()
    }

    /// Whether every token has been read.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// How many tokens are left.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Token `i` of those left, as text (invalid UTF-8 replaced), without taking it.
    pub fn lossy(&self, i: usize) -> String {
        self.tokens
            .get(i)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Takes the next token as raw bytes (empty when there is none).
    pub fn take(&mut self) -> Vec<u8> {
        self.tokens
            .pop_front()
            .map(OsString::into_vec)
            .unwrap_or_default()
    }

    /// The value after `option` as raw bytes (payloads and passwords may be any
    /// bytes). `option` and `missing` fill mosquitto's message:
    /// `<option> argument given but no <missing> specified.`
    pub fn bytes(&mut self, option: &str, missing: &str) -> Result<Vec<u8>, ArgError> {
        match self.tokens.pop_front() {
            Some(value) => Ok(value.into_vec()),
            None => Err(ArgError::spaced(format!(
                "{option} argument given but no {missing} specified."
            ))),
        }
    }

    /// The value after `option`, which must be UTF-8 (topics, host names, ...).
    pub fn text(&mut self, option: &str, missing: &str) -> Result<String, ArgError> {
        let bytes = self.bytes(option, missing)?;
        String::from_utf8(bytes)
            .map_err(|_| ArgError::spaced(format!("Malformed UTF-8 in {option} argument.")))
    }
}

/// A whole number as mosquitto's tools take it, but strict: `12abc` and `abc` are
/// errors here, where `atoi` would read 12 and 0.
pub fn parse_int(text: &str) -> Option<i64> {
    text.parse().ok()
}

/// `0`, `1` or `2`.
pub fn parse_qos(text: &str) -> Option<QoS> {
    parse_int(text)
        .and_then(|q| u8::try_from(q).ok())
        .and_then(QoS::from_u8)
}
