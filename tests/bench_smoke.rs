//! wren-bench keeps working: a tiny run against mosquitto's broker, and a tiny
//! comparison of two brokers. Figures are not checked (timing never fails a test);
//! only that every message is accounted for and the output has its shape.

use std::process::Command;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn require_mosquitto() {
    assert!(
        std::path::Path::new(MOSQUITTO).exists(),
        "{MOSQUITTO} is missing: install Debian's mosquitto package (.ci/run does)"
    );
}

#[test]
fn compare_runs_the_chosen_scenarios_against_two_brokers() {
    require_mosquitto();
    let output = Command::new(env!("CARGO_BIN_EXE_wren-bench"))
        .args([
            "compare",
            "--quick",
            "--only",
            "qos1,fan-out",
            "--broker",
            &format!("first={MOSQUITTO} -p {{port}}"),
            "--broker",
            &format!("second={MOSQUITTO} -p {{port}}"),
        ])
        .output()
        .expect("wren-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("| scenario | metric | first | second | second / first |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| qos1 1->1 | delivered msg/s ↑ |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| fan-out 1->100 | lost ↓ | 0 | 0 |"),
        "{stdout}"
    );
    assert!(!stdout.contains("failed"), "{stdout}");
}

#[test]
fn a_json_run_accounts_for_every_message() {
    require_mosquitto();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = Command::new(MOSQUITTO)
        .args(["-p", &port.to_string()])
        .spawn()
        .expect("mosquitto starts");
    let address = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = Command::new(env!("CARGO_BIN_EXE_wren-bench"))
        .args([
            "run",
            "--url",
            &format!("mqtt://{address}"),
            "-q",
            "2",
            "-n",
            "200",
        ])
        .args([
            "--inflight",
            "10",
            "--subscribers",
            "2",
            "--json",
            "--timeout",
            "60",
        ])
        .output()
        .expect("wren-bench runs");
    let _ = broker.kill();
    let _ = broker.wait();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(report["sent"], 200);
    assert_eq!(report["delivered"], 400);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicated"], 0);
}
