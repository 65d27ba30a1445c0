//! What the tool tests share: finding mosquitto's programs, starting a mosquitto
//! broker on a free loopback port (or wren's own, in [`wren`]), and running a
//! program with a deadline.
//!
//! The tests compare wren-pub and wren-sub with mosquitto_pub and mosquitto_sub
//! (Debian package `mosquitto-clients`) against a real mosquitto broker (package
//! `mosquitto`). A missing program fails the test with a message naming the package;
//! it never lets a test pass without having compared anything.

#![allow(dead_code)] // each test file uses its own part

#[path = "../common/certs.rs"]
pub mod certs;
pub mod wren;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one program may run before the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(20);

/// The path of a mosquitto program, or a panic that says how to install it.
pub fn mosquitto_program(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{name} is not installed; these tests compare wren's tools with mosquitto's \
         (apt-get install mosquitto mosquitto-clients)"
    );
}

/// A directory under the target directory for this test's files, emptied first.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tools-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create the test's scratch directory");
    dir
}

/// A program to run, with the environment both tool families see: no defaults
/// file (XDG_CONFIG_HOME points at an empty directory) and UTC time.
pub fn command(program: impl AsRef<Path>, config_dir: &Path) -> Command {
    let mut command = Command::new(program.as_ref());
    command
        .env("XDG_CONFIG_HOME", config_dir)
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

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` different loopback ports nothing listens on right now (all are held open
/// until every one is chosen, so none comes out twice).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("cannot find a free port"))
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .expect("a bound listener has an address")
            .port()
    })
}

/// A mosquitto broker on a free loopback port, stopped when dropped.
pub struct Broker {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    dir: PathBuf,
}

impl Broker {
    /// Starts a broker allowing anonymous clients, with `extra` configuration lines
    /// (which may add listeners), and waits until its first listener accepts MQTT.
    pub fn start(test: &str, extra: &str) -> Broker {
        let mosquitto = mosquitto_program("mosquitto");
        let dir = scratch_dir(&format!("{test}-broker"));
        // Ask the kernel for a free port, then hand it to mosquitto. Another
        // program could take it in between; the readiness check below would then
        // fail loudly rather than test the wrong thing.
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            // The log goes to stderr (unbuffered), a file opened here: mosquitto
            // started as root drops to its own user and could not open one itself.
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\n\
                 log_dest stderr\nlog_type all\n{extra}\n"
            ),
        )
        .expect("cannot write mosquitto.conf");
        let log = std::fs::File::create(dir.join("mosquitto.log")).expect("cannot create log");
        let child = Command::new(mosquitto)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot share the log file"))
            .stderr(log)
            .spawn()
            .expect("cannot start mosquitto");
        let broker = Broker { child, port, dir };
        broker.wait_until_ready();
        broker
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Waits until the broker's log holds `line` `times` times (mosquitto logs
    /// each packet, so this is how a test knows a client has subscribed).
    pub fn wait_for_log(&self, line: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.log().matches(line).count() < times {
            assert!(
                Instant::now() < deadline,
                "mosquitto never logged {line:?} {times} times; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the log holds `line` `times` times, or client `id` has left
    /// (a subscriber with `-C` stops before the last messages).
    pub fn wait_for_log_or_gone(&self, line: &str, times: usize, id: &str) {
        // With or without DISCONNECT.
        let gone = [
            format!("Client {id} disconnected"),
            format!("Client {id} closed its connection"),
        ];
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.log();
            if log.matches(line).count() >= times || gone.iter().any(|g| log.contains(g)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto never logged {line:?} {times} times; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Connects with a raw MQTT CONNECT until a CONNACK comes back.
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.answers_connect() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on port {}; see {}",
                self.port,
                self.dir.join("mosquitto.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_connect(&self) -> bool {
        let Ok(mut socket) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
        // CONNECT, MQTT 3.1.1, clean session, keep-alive 10 s, empty client id.
        let connect = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 10, 0, 0];
        let mut connack = [0u8; 4];
        // Any CONNACK will do: a broker that refuses anonymous clients is ready too.
        socket.write_all(&connect).is_ok()
            && socket.read_exact(&mut connack).is_ok()
            && connack[..2] == [0x20, 2]
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
