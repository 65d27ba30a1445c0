//! mosquitto's programs as test peers: `mosquitto_pub`, `mosquitto_sub`, and the
//! `mosquitto` broker itself.
//!
//! A missing program fails the test with a message saying what to install; it never
//! lets a test pass without its peer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::process::{self, Lines, Stream, PROCESS_TIMEOUT};

/// What to install when a mosquitto program is missing.
const INSTALL: &str = "apt-get install mosquitto mosquitto-clients";

/// The path of a mosquitto program, or a panic naming the Debian package to install.
pub fn program(name: &str) -> PathBuf {
    let candidates = [
        PathBuf::from(format!("/usr/bin/{name}")),
        PathBuf::from(format!("/usr/sbin/{name}")),
        PathBuf::from(format!("/usr/local/bin/{name}")),
        PathBuf::from(format!("/usr/local/sbin/{name}")),
    ];
    for candidate in candidates {
        if candidate.exists() {
            return candidate;
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    let package = if name == "mosquitto" {
        "mosquitto"
    } else {
        "mosquitto-clients"
    };
    panic!("{name} is not installed: this test needs it as a peer (apt-get install {package})");
}

/// Runs a mosquitto program to completion (see [`process::run`]).
pub fn run(name: &str, args: &[&str]) -> Output {
    process::run(program(name), args, None, b"", INSTALL)
}

/// Runs `mosquitto_pub` against `addr` with extra `args`, and checks it succeeded.
pub fn publish(addr: SocketAddr, args: &[&str]) {
    let port = addr.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    let output = run("mosquitto_pub", &all);
    assert!(
        output.status.success(),
        "mosquitto_pub {all:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `mosquitto_pub` once against the broker on `port` as `user` with
/// `password`: one QoS 1 message of `payload` on `topic`. Returns its exit code and
/// what it printed on stderr.
pub fn publish_as(
    port: u16,
    user: &str,
    password: &str,
    topic: &str,
    payload: &str,
) -> (Option<i32>, String) {
    let port = port.to_string();
    let output = run(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            user,
            "-P",
            password,
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            payload,
        ],
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running `mosquitto_sub` whose output lines are read with a deadline.
pub struct Subscriber {
    lines: Lines,
}

impl Subscriber {
    /// Starts `mosquitto_sub` against `addr` with extra `args` (`-t`, `-q`, `-v`...).
    /// It may not have subscribed yet when this returns: wait on the broker's
    /// statistics, or on a first message.
    pub fn start(addr: SocketAddr, args: &[&str]) -> Subscriber {
        let port = addr.port().to_string();
        let mut command = Command::new(program("mosquitto_sub"));
        command.args(["-h", "127.0.0.1", "-p", &port]).args(args);
        Subscriber {
            lines: Lines::spawn(&mut command, Stream::Stdout, INSTALL),
        }
    }

    /// The next line of output, or a failure after [`PROCESS_TIMEOUT`].
    pub fn line(&mut self) -> String {
        self.lines
            .next_line()
            .unwrap_or_else(|| panic!("mosquitto_sub printed nothing within {PROCESS_TIMEOUT:?}"))
    }

    /// Waits for the process to exit by itself (after `-C n` messages, say).
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.lines.wait()
    }

    /// Kills the process without a DISCONNECT (so its will is published).
    pub fn kill(mut self) {
        self.lines.kill();
    }
}

/// A mosquitto broker on `127.0.0.1` and a free port, killed when dropped. Its
/// configuration, the files a test gives it and its log live in a temporary
/// directory removed with it.
///
/// The configuration keeps root's rights (`user root`) when the tests run as root, so
/// that the broker can read files in that private directory. `WREN_TEST_BROKER_LOG=1`
/// prints the broker's log when it is dropped.
pub struct Mosquitto {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// How many times it has started, so that a restart waits for a new "running".
    starts: usize,
}

impl Mosquitto {
    /// A broker that lets anyone in.
    pub fn start() -> Mosquitto {
        Mosquitto::with_config("allow_anonymous true\n", &[])
    }

    /// A broker that lets anyone in, with `extra` configuration lines (which may
    /// add listeners).
    pub fn anonymous(extra: &str) -> Mosquitto {
        Mosquitto::with_config(&format!("allow_anonymous true\n{extra}\n"), &[])
    }

    /// A broker with `config` after its `listener` line, and `files` (name,
    /// contents) written next to its configuration file; `{dir}` in `config` is
    /// replaced by that directory. Returns once its log says it is running.
    pub fn with_config(config: &str, files: &[(&str, &str)]) -> Mosquitto {
        let program = program("mosquitto");
        let mut dir = tempfile::tempdir().expect("cannot create the broker's directory");
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).expect("cannot write a broker file");
        }
        let config = config.replace("{dir}", &dir.path().display().to_string());
        // The port is found by binding port 0 and handing the number over; another
        // process may take it in between, so a failed start is retried.
        for attempt in 1..=5 {
            let port = super::free_port();
            std::fs::write(
                dir.path().join("mosquitto.conf"),
                format!(
                    "listener {port} 127.0.0.1\nlog_dest stderr\nlog_type all\nuser root\n{config}"
                ),
            )
            .expect("cannot write mosquitto.conf");
            let child = spawn(&program, dir.path());
            let mut broker = Mosquitto {
                child,
                port,
                dir,
                starts: attempt,
            };
            if broker.wait_until_running() {
                return broker;
            }
            let _ = broker.child.kill();
            let _ = broker.child.wait();
            let log = broker.log();
            if attempt == 5 {
                panic!("mosquitto did not start; its log:\n{log}");
            }
            dir = broker.take_dir();
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Waits until the log holds one "running" line per start, or the broker has
    /// exited (its port was taken, say): then false.
    fn wait_until_running(&mut self) -> bool {
        let log = self.dir.path().join("mosquitto.log");
        let (starts, child) = (self.starts, &mut self.child);
        let mut exited = false;
        super::wait_until("mosquitto says it is running", || {
            let running = std::fs::read_to_string(&log)
                .is_ok_and(|log| log.matches(" running").count() >= starts);
            exited = !running && !matches!(child.try_wait(), Ok(None));
            running || exited
        });
        !exited
    }

    fn take_dir(&mut self) -> tempfile::TempDir {
        let empty = tempfile::tempdir().expect("cannot create a directory");
        std::mem::replace(&mut self.dir, empty)
    }

    /// Stops the broker (as a crash would: SIGKILL) and starts it again on the
    /// same port with the same configuration. Without persistence it forgets every
    /// session.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&program("mosquitto"), self.dir.path());
        self.starts += 1;
        assert!(
            self.wait_until_running(),
            "mosquitto did not start again on port {}; its log:\n{}",
            self.port,
            self.log()
        );
    }

    /// Stops the broker with SIGTERM, as a service manager would (with
    /// persistence on it saves its sessions on the way out), and starts it again
    /// on the same port with the same configuration.
    pub fn restart_gracefully(&mut self) {
        // SAFETY: kill(2) with the id of a child this fixture started and has not
        // yet waited for.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        self.child = spawn(&program("mosquitto"), self.dir.path());
        self.starts += 1;
        assert!(
            self.wait_until_running(),
            "mosquitto did not start again on port {}; its log:\n{}",
            self.port,
            self.log()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The directory of its configuration and files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Waits until the broker's log holds `line` `times` times (mosquitto logs
    /// each packet, so this is how a test knows a client has subscribed).
    pub fn wait_for_log(&self, line: &str, times: usize) {
        super::wait_until(&format!("mosquitto logs {line:?} {times} times"), || {
            self.log().matches(line).count() >= times
        });
    }

    /// Waits until the log holds `line` `times` times, or client `id` has left
    /// (a subscriber with `-C` stops before the last messages).
    pub fn wait_for_log_or_gone(&self, line: &str, times: usize, id: &str) {
        // With or without DISCONNECT.
        let gone = [
            format!("Client {id} disconnected"),
            format!("Client {id} closed its connection"),
        ];
        super::wait_until(
            &format!("mosquitto logs {line:?} {times} times or {id} leaves"),
            || {
                let log = self.log();
                log.matches(line).count() >= times || gone.iter().any(|g| log.contains(g))
            },
        );
    }
}

/// Starts mosquitto with the configuration in `dir`, its output appended to the log
/// there.
fn spawn(program: &Path, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("mosquitto.log"))
        .expect("cannot open the broker's log");
    Command::new(program)
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("cannot share the log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL}", program.display()))
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("WREN_TEST_BROKER_LOG").is_some() {
            eprintln!("mosquitto's log:\n{}", self.log());
        }
    }
}
