//! wren-bench keeps working: a tiny run against mosquitto's broker, a tiny run over
//! MQTT 5 against wren-broker, a tiny comparison of two brokers, and the kill
//! scenario of the persistence set. Figures are not checked (timing never fails a
//! test); only that every message is accounted for and the output has its shape.

mod common;

use std::process::Command;

use common::mosquitto::{program, Mosquitto};
use common::wren_broker::WrenBrokerProgram;

/// Runs `wren-bench` with `args`; its standard output, once it succeeded.
fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wren-bench"))
        .args(args)
        .output()
        .expect("wren-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn compare_runs_the_chosen_scenarios_against_two_brokers() {
    let mosquitto = program("mosquitto").display().to_string();
    let stdout = bench(&[
        "compare",
        "--quick",
        "--only",
        "qos1,fan-out",
        "--broker",
        &format!("first={mosquitto} -p {{port}}"),
        "--broker",
        &format!("second={mosquitto} -p {{port}}"),
    ]);
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

/// The persistence set's kill scenario: wren-broker with a store loses nothing it
/// acknowledged to `kill -9`; the same broker in memory loses everything.
#[test]
fn the_kill_scenario_counts_what_a_broker_loses_to_kill_9() {
    let broker = env!("CARGO_BIN_EXE_wren-broker");
    let with_store = format!(
        "stored=sh -c 'printf \"listeners: {{default: {{type: tcp, bind: \\\"127.0.0.1:{{port}}\\\"}}}}\\npersistence: {{enabled: true, path: {{dir}}/store}}\\n\" > {{dir}}/w.yaml; exec {broker} -c {{dir}}/w.yaml'"
    );
    let stdout = bench(&[
        "compare",
        "--persistent",
        "--quick",
        "--only",
        "kill",
        "--broker",
        &with_store,
        "--broker",
        &format!("memory={broker} -p {{port}}"),
    ]);
    assert!(
        stdout.contains("| kill -9 after acknowledged qos1 | acknowledged ↑ | 20 | 20 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "| kill -9 after acknowledged qos1 | acknowledged, lost to kill -9 ↓ | 0 | 20 |"
        ),
        "{stdout}"
    );
}

#[test]
fn a_json_run_accounts_for_every_message() {
    let broker = Mosquitto::start();
    let address = broker.address();
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
    drop(broker);
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

/// `--version 5`: a small QoS 1 run over MQTT 5 against wren-broker, whose CONNACK
/// announces a Receive Maximum of 20: the bench keeps its 64 in flight down to that
/// (more would be disconnected with 0x93) and every message arrives once.
#[test]
fn a_qos1_run_over_mqtt_5_stays_within_the_receive_maximum_and_loses_nothing() {
    let broker = WrenBrokerProgram::with_yaml(
        "listeners: {default: {type: tcp, bind: \"127.0.0.1:{port}\"}}\n",
    );
    let stdout = bench(&[
        "run",
        "--url",
        &format!("mqtt://{}", broker.address()),
        "--version",
        "5",
        "-q",
        "1",
        "-n",
        "2000",
        "--inflight",
        "64",
        "--json",
        "--timeout",
        "60",
    ]);
    drop(broker);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(report["mqtt_version"], "5", "{stdout}");
    assert_eq!(report["sent"], 2000, "{stdout}");
    assert_eq!(report["delivered"], 2000, "{stdout}");
    assert_eq!(report["lost"], 0, "{stdout}");
    assert_eq!(report["duplicated"], 0, "{stdout}");
    assert_eq!(report["refused"], 0, "{stdout}");
    assert_eq!(report["receive_maximum"], 20, "{stdout}");
    assert_eq!(report["inflight"], 20, "{stdout}");
}
