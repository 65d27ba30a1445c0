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

#[test]
fn p_moves_the_mqtt_listeners_and_the_dashboard_keeps_its_port() {
    let [mqtt_port, http_port] = common::free_ports::<2>();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  default:\n    bind: 127.0.0.1:1883\n  dashboard:\n    \
             bind: 127.0.0.1:{http_port}\n    type: http\nsys_interval: 0\n"
        ),
    )
    .unwrap();
    let broker = Lines::spawn(
        Command::new(PROGRAM)
            .arg("-c")
            .arg(&config)
            .args(["-p", &mqtt_port.to_string()])
            .env("RUST_LOG", "info"),
        Stream::Stderr,
        "it is built with the tests",
    );
    let started = broker.until(|line| line.contains("Opening HTTP listener dashboard"));
    assert!(started.is_ok(), "{started:?}");
    Raw::connect(
        SocketAddr::from(([127, 0, 0, 1], mqtt_port)),
        "cli",
        true,
        false,
    )
    .disconnect();

    let mut http = std::net::TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    http.set_read_timeout(Some(common::TIMEOUT)).unwrap();
    std::io::Write::write_all(&mut http, b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
}
