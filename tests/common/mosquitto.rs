//! mosquitto's programs as test peers: `mosquitto_pub`, `mosquitto_sub`, and the
//! `mosquitto` broker itself.
//!
//! A missing program fails the test with a message saying what to install; it never
//! lets a test pass without its peer.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TIMEOUT;

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

/// Runs a program to completion, killing it (and failing) if it takes longer than
/// [`TIMEOUT`].
pub fn run(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(program(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if child.try_wait().expect("wait for child").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "{name} {args:?} did not finish within {TIMEOUT:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Subscriber {
    /// Starts `mosquitto_sub` against `addr` with extra `args` (`-t`, `-q`, `-v`...).
    /// It may not have subscribed yet when this returns: wait on the broker's
    /// statistics, or on a first message.
    pub fn start(addr: SocketAddr, args: &[&str]) -> Subscriber {
        let port = addr.port().to_string();
        let mut child = Command::new(program("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mosquitto_sub: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Subscriber { child, lines }
    }

    /// The next line of output, or a failure after [`TIMEOUT`].
    pub fn line(&mut self) -> String {
        self.lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("mosquitto_sub printed nothing within {TIMEOUT:?}"))
    }

    /// Waits for the process to exit by itself (after `-C n` messages, say).
    pub fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for mosquitto_sub") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto_sub did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the process without a DISCONNECT (so its will is published).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
