//! What the tool tests share: running a program with a deadline, in an environment
//! both tool families see alike. The brokers are the fixtures of `tests/common`.
//!
//! The tests compare wren-pub and wren-sub with mosquitto_pub and mosquitto_sub
//! (Debian package `mosquitto-clients`) against a real mosquitto broker (package
//! `mosquitto`). A missing program fails the test with a message naming the package;
//! it never lets a test pass without having compared anything.

#![allow(dead_code)] // each test file uses its own part

pub use crate::common::mosquitto::program as mosquitto_program;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any one program may run before the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(20);

/// An empty directory for one test's files, removed when dropped. `test` names it,
/// so that a failing test's leftovers are recognisable.
pub fn scratch_dir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("tools-{test}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("cannot create the test's scratch directory")
}

/// A program to run, with the environment both tool families see: no defaults
/// file (XDG_CONFIG_HOME points at an empty directory) and UTC time.
pub fn command(program: impl AsRef<Path>, config_dir: impl AsRef<Path>) -> Command {
    let mut command = Command::new(program.as_ref());
    command
        .env("XDG_CONFIG_HOME", config_dir.as_ref())
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `command` to completion, feeding it `stdin`; kills it and fails the test if
/// it runs longer than [`RUN_LIMIT`].
pub fn run(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input)
            .expect("cannot write the program's stdin");
    }
    wait(child, RUN_LIMIT, &format!("{command:?}"))
}

/// A program started by a test, killed if the test ends (or fails) before it was
/// waited for, so that no process outlives its test.
pub struct Running {
    child: Option<Child>,
    what: String,
}

impl Running {
    /// Starts `command`.
    pub fn start(command: &mut Command) -> Running {
        let what = format!("{command:?}");
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Running {
            child: Some(child),
            what,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills it now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for it to exit, at most [`RUN_LIMIT`], and collects its output.
    pub fn finish(mut self) -> Output {
        let child = self.child.take().expect("not yet waited for");
        wait(child, RUN_LIMIT, &self.what)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for `child` to exit and collects its output, killing it after `limit`.
pub fn wait(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match result.recv_timeout(limit) {
        Ok(output) => output.expect("cannot collect the program's output"),
        Err(_) => {
            // SAFETY: plain kill(2) on the pid of a child we started and have not
            // reaped (the waiting thread still holds it).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("{what} did not finish within {limit:?}");
        }
    }
}
