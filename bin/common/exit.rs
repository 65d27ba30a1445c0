//! Exit codes, the same numbers mosquitto_pub and mosquitto_sub use, so scripts
//! that test `$?` keep working.
//!
//! | code | when |
//! |---|---|
//! | 0 | success (also `-C`, `-E`, `--retained-only` finishing normally) |
//! | 1 | bad arguments, `--help`, `--version`, cannot connect, I/O errors |
//! | 1–5 | the broker refused the connection: the CONNACK return code |
//! | 27 | `-W` ran out (mosquitto's `MOSQ_ERR_TIMEOUT`) |

use std::process::ExitCode;

/// Everything went as asked.
pub const SUCCESS: u8 = 0;
/// Bad arguments, help or version shown, or a runtime failure.
pub const FAILURE: u8 = 1;

/// Turns one of the codes above (or a CONNACK return code) into the process's exit.
pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}

/// Where runtime errors go: stderr, unless `--quiet` asked for silence. Argument
/// errors are always printed; `--quiet` only hides what happens once running, as in
/// mosquitto.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    quiet: bool,
}

impl Reporter {
    /// A reporter that prints unless `quiet`.
    pub fn new(quiet: bool) -> Reporter {
        Reporter { quiet }
    }

    /// Prints `text` (which carries its own newlines) on stderr unless quiet.
    pub fn error(&self, text: &str) {
        if !self.quiet {
            eprint!("{text}");
        }
    }
}
