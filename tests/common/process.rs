//! Other programs as test peers (mosquitto's tools, `mkpasswd`, our own binaries):
//! run one to its end, or watch the lines it prints while it runs.
//!
//! Every wait is bounded by [`PROCESS_TIMEOUT`], and a program that is not
//! installed fails the test with the caller's hint on what to install: a test never
//! passes without its peer.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long a program may run, or a line be awaited, before the test fails.
/// Generous: password hashing in a debug build is slow.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `program` with `args` (in `dir`, if given), writes `input` to its stdin,
/// and returns what it printed and how it exited. Fails the test, naming
/// `install`, if the program cannot be started, and kills it (failing the test)
/// if it runs longer than [`PROCESS_TIMEOUT`]. Meant for programs that print little:
/// output is collected once the program has ended.
pub fn run(
    program: impl AsRef<Path>,
    args: &[&str],
    dir: Option<&Path>,
    input: &[u8],
    install: &str,
) -> Output {
    let program = program.as_ref();
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {install}", program.display()));
    if let Some(mut stdin) = child.stdin.take() {
        // A program that exits before reading everything closes the pipe; fine.
        let _ = stdin.write_all(input);
    }
    if exit_within(&mut child, PROCESS_TIMEOUT).is_none() {
        panic!(
            "{} {args:?} did not finish within {PROCESS_TIMEOUT:?}",
            program.display()
        );
    }
    child
        .wait_with_output()
        .expect("collecting a child's output")
}

/// Waits for `child` to exit, at most `limit`; after that it is killed and reaped,
/// and the answer is `None`.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let mut status = None;
    let exited = super::poll(limit, || {
        status = child.try_wait().expect("waiting for a child process");
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Which of a program's outputs [`Lines`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A running program whose printed lines arrive on a channel, read to the end by a
/// thread of their own so that the program never blocks on a full pipe. Killed when
/// dropped, however the test ends.
pub struct Lines {
    child: Child,
    lines: Receiver<String>,
}

impl Lines {
    /// Starts `command`, reading the lines it prints on `stream`; the other output
    /// goes where the test's goes. Fails the test, naming `install`, if it cannot
    /// be started.
    pub fn spawn(command: &mut Command, stream: Stream, install: &str) -> Lines {
        let (stdout, stderr) = match stream {
            Stream::Stdout => (Stdio::piped(), Stdio::inherit()),
            Stream::Stderr => (Stdio::inherit(), Stdio::piped()),
        };
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {install}"));
        let output: Box<dyn Read + Send> = match stream {
            Stream::Stdout => Box::new(child.stdout.take().expect("piped stdout")),
            Stream::Stderr => Box::new(child.stderr.take().expect("piped stderr")),
        };
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { child, lines }
    }

    /// The next line, or `None` if none came within [`PROCESS_TIMEOUT`] or the
    /// program ended.
    pub fn next_line(&self) -> Option<String> {
        self.lines.recv_timeout(PROCESS_TIMEOUT).ok()
    }

    /// The lines printed up to and including the first that satisfies `done`; if
    /// the program ended or [`PROCESS_TIMEOUT`] passed first, the lines seen as an
    /// error.
    pub fn until(&self, done: impl Fn(&str) -> bool) -> Result<Vec<String>, Vec<String>> {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                return Err(seen);
            };
            let finished = done(&line);
            seen.push(line);
            if finished {
                return Ok(seen);
            }
        }
    }

    /// Waits for the program to end by itself, failing the test after
    /// [`PROCESS_TIMEOUT`].
    pub fn wait(&mut self) -> ExitStatus {
        exit_within(&mut self.child, PROCESS_TIMEOUT).expect("a child process did not exit in time")
    }

    /// The program's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the program now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.kill();
    }
}
