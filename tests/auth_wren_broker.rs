//! `wren-broker -c broker.yaml` with `auth.password-file` and `topic-check.acl`:
//! mosquitto_pub gets in with the right password, is refused with a wrong one, and
//! may publish only where the ACL says.

use std::process::Output;

mod common;
use common::process;
use common::wren_broker::WrenBrokerProgram;

const WREN_PASSWD: &str = env!("CARGO_BIN_EXE_wren-passwd");

const INSTALL: &str = "install the Debian package `mosquitto-clients`";

fn run(program: &str, args: &[&str]) -> Output {
    process::run(program, args, None, b"", INSTALL)
}

#[test]
fn wren_broker_applies_the_configured_password_file_and_acl() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let passwd_text = passwd.to_string_lossy().into_owned();
    for args in [
        &["-c", "-b", &passwd_text, "sensor", "s3cret"][..],
        &["-b", &passwd_text, "viewer", "v1ew"],
    ] {
        let output = run(WREN_PASSWD, args);
        assert!(output.status.success(), "wren-passwd {args:?}");
    }

    let broker = WrenBrokerProgram::with_yaml(&format!(
        "listeners:\n  local:\n    bind: 127.0.0.1:{{port}}\n\
         auth:\n  allow-anonymous: false\n  password-file: {passwd_text}\n\
         topic-check:\n  enabled: true\n  acl:\n    sensor: ['sensors/#']\n    viewer: ['dashboard/+']\n"
    ));
    let port = broker.port().to_string();
    let publish = |user: &str, password: &str, topic: &str| {
        common::mosquitto::publish_as(broker.port(), user, password, topic, "x")
    };
    let (code, stderr) = publish("sensor", "s3cret", "sensors/t1");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = publish("sensor", "wrong", "sensors/t1");
    assert_eq!(code, Some(5), "{stderr}");
    let (code, stderr) = publish("nobody", "s3cret", "sensors/t1");
    assert_eq!(code, Some(5), "{stderr}");

    // viewer may subscribe to dashboard/+ but not to sensors/#.
    let subscribe = |filter: &str| {
        let output = run(
            "mosquitto_sub",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                "viewer",
                "-P",
                "v1ew",
                "-t",
                filter,
                "-E",
            ],
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert_eq!(subscribe("dashboard/+"), "");
    assert!(subscribe("sensors/#").contains("All subscription requests were denied."));
}
