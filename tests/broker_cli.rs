//! The `wren-broker` program: options, its first log line, and a clean stop on
//! SIGTERM.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::process::{Lines, Stream};
use common::raw::Raw;
use common::wren_broker::WrenBrokerProgram;

const PROGRAM: &str = env!("CARGO_BIN_EXE_wren-broker");

#[test]
fn version_and_help_print_and_exit_0() {
    let output = Command::new(PROGRAM).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("wren-broker version {}", env!("CARGO_PKG_VERSION"))
    );
    let output = Command::new(PROGRAM).arg("--help").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("-p PORT"));
}

#[test]
fn an_unknown_option_is_named_and_exits_1() {
    let output = Command::new(PROGRAM).arg("--bogus").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--bogus"), "{stderr}");
}

#[test]
fn it_says_first_that_it_is_local_only_serves_and_stops_cleanly_on_sigterm() {
    let port = common::free_port();
    let mut broker = Lines::spawn(
        Command::new(PROGRAM)
            .args(["-p", &port.to_string()])
            .env("RUST_LOG", "info"),
        Stream::Stderr,
        "it is built with the tests",
    );
    let next_line = || broker.next_line().expect("wren-broker logs");
    assert!(
        next_line().contains("local only mode"),
        "the first log line"
    );
    loop {
        if next_line().contains("Opening listener default-ipv4") {
            break;
        }
    }
    let mut client = Raw::connect(SocketAddr::from(([127, 0, 0, 1], port)), "cli", true, false);
    client.ping();

    // The shell's own `kill`, so no extra package is needed.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", broker.id())])
        .status()
        .expect("run sh");
    assert!(status.success());
    client.expect_eof();
    let exit = broker.wait();
    assert!(exit.success(), "{exit:?}");
    // Everything it logged until its stderr closed.
    let rest: Vec<String> = std::iter::from_fn(|| broker.next_line()).collect();
    assert!(
        rest.iter().any(|l| l.contains("Broker stopped")),
        "{rest:?}"
    );
}

#[test]
fn c_reads_a_yaml_file_and_a_bad_one_is_named_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let output = Command::new(PROGRAM)
        .arg("-c")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.yaml"), "{stderr}");

    let broker = WrenBrokerProgram::with_yaml(
        "listeners:\n  default:\n    bind: 127.0.0.1:{port}\nsys_interval: 0\n",
    );
    let addr = broker.address();
    Raw::connect(addr, "from-yaml", true, false).disconnect();
}
