//! mosquitto's programs as test peers: `mosquitto_pub`, `mosquitto_sub`, and the
//! `mosquitto` broker itself.
//!
//! A missing program fails the test with a message saying what to install; it never
//! lets a test pass without its peer.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
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

/// A mosquitto broker on a free port of 127.0.0.1, for comparing behaviour or for
/// testing clients against it. Killed on drop.
pub struct MosquittoBroker {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl MosquittoBroker {
    /// Starts `mosquitto` with anonymous access and `extra_config` lines, and waits
    /// until it accepts connections.
    pub fn start(extra_config: &str) -> MosquittoBroker {
        let program = program("mosquitto");
        // Pick a free port; mosquitto binds it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let dir = TempDir::new("mosquitto");
        let config_path = dir.path().join("mosquitto.conf");
        let mut config = std::fs::File::create(&config_path).expect("write mosquitto.conf");
        writeln!(
            config,
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra_config}"
        )
        .expect("write mosquitto.conf");
        let child = Command::new(program)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        super::wait_until("mosquitto accepts connections", || {
            TcpStream::connect(addr).is_ok()
        });
        MosquittoBroker {
            child,
            addr,
            _dir: dir,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MosquittoBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new(prefix: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "wren-test-{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
