//! wren-pub and wren-sub refuse bad arguments exactly as mosquitto_pub and
//! mosquitto_sub do: the same message on stderr (with the program's own name) and
//! the same exit code. Each case runs both programs with the same arguments.

mod common;
mod tools_support;

use std::path::Path;

use tools_support::{command, mosquitto_program, run, scratch_dir};

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

fn outcome(program: &Path, args: &[&str], stdin: Option<&[u8]>, config: &Path) -> Outcome {
    let output = run(command(program, config).args(args), stdin);
    Outcome {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `args` through wren's tool and mosquitto's, and compares.
fn same_refusal(wren: &str, mosquitto: &str, cases: &[&[&str]]) {
    let config = scratch_dir(&format!("args-{wren}"));
    let ours = Path::new(match wren {
        "wren-pub" => env!("CARGO_BIN_EXE_wren-pub"),
        _ => env!("CARGO_BIN_EXE_wren-sub"),
    });
    let theirs = mosquitto_program(mosquitto);
    for args in cases {
        let expected = outcome(&theirs, args, None, config.path());
        let actual = outcome(ours, args, None, config.path());
        assert_eq!(expected.code, Some(1), "{mosquitto} {args:?} should fail");
        assert_eq!(actual.code, expected.code, "exit code of {wren} {args:?}");
        assert_eq!(
            actual.stderr,
            expected.stderr.replace(mosquitto, wren),
            "stderr of {wren} {args:?}"
        );
    }
}

#[test]
fn wren_sub_refuses_bad_arguments_like_mosquitto_sub() {
    same_refusal(
        "wren-sub",
        "mosquitto_sub",
        &[
            &["-t", "a", "-q", "3"],
            &["-t", "a", "-q", "-1"],
            &["-t", "a", "-p", "70000"],
            &["-t", "a", "-k", "2"],
            &["-t", "a", "-k", "65536"],
            &["-t", "a", "-V", "4"],
            &["-i", "a", "-I", "b", "-t", "a"],
            &["-I", "b", "-i", "a", "-t", "a"],
            &["-t", "a", "-F", "%z"],
            &["-t", "a", "-F", "%"],
            &["-t", "a", "-F", "%-"],
            &["-t", "a", "-F", "%10.2"],
            &["-t", "a", "-F", "abc@"],
            &["-t", "a", "-F", "\\z"],
            &["-t", "a", "-F", "x\\"],
            &["-t", "a", "-F", "%0-5t"],
            &["-t", "a", "-C", "0"],
            &["-t", "a", "-W", "0"],
            &["-L", "http://x/t"],
            &["-L", "mqtt://host"],
            &["--will-payload", "x", "-t", "a"],
            &["--will-retain", "-t", "a"],
            &["-v"],
            &[],
            &["-t", "a/#/b"],
            &["-t", "a", "-T", "a/#/b"],
            &["-t", "a", "-U", "a/#/b"],
            &["-t", "a", "--will-topic", "a/+"],
            &["-t", "a", "--will-qos", "3"],
            &["-t", "a", "-x", "abc"],
            &["-t", "a", "-x", "-2"],
            &["-t", "a", "-M", "0"],
            &["-t", "a", "-c"],
            &["-t", "a", "-c", "-I", "p"],
            &["-t", "a", "-R", "--retained-only"],
            &["-t", "a", "-S"],
            &["-t", "a", "-m", "x"],
            &["-t", "a", "-r"],
            &["-t", "a", "-l"],
            &["-t", "a", "--repeat", "2"],
            &["-t", "a", "--bogus"],
            &["-t", "a", "-h"],
            &["-t", "a", "-p"],
            &["-t"],
            &["-t", "a", "-T"],
            &["-t", "a", "-U"],
            &["-t", "a", "-F"],
            &["-t", "a", "-C"],
            &["-t", "a", "-W"],
            &["-t", "a", "-i"],
            &["-t", "a", "-I"],
            &["-t", "a", "-u"],
            &["-t", "a", "-P"],
            &["-t", "a", "-k"],
            &["-t", "a", "-q"],
            &["-t", "a", "-V"],
            &["-t", "a", "-A"],
            &["-t", "a", "-M"],
            &["-t", "a", "-x"],
            &["-t", "a", "-L"],
            &["-t", "a", "--will-topic"],
            &["-t", "a", "--will-payload"],
            &["-t", "a", "--will-qos"],
            &["-t", "a", "--random-filter"],
            &["-t", "a", "--random-filter", "2000"],
            &["-t", "a", "--cert", "c.pem"],
            &["-t", "a", "--key", "k.pem"],
            &["-t", "a", "--cafile"],
        ],
    );
}

#[test]
fn wren_pub_refuses_bad_arguments_like_mosquitto_pub() {
    same_refusal(
        "wren-pub",
        "mosquitto_pub",
        &[
            &["-t", "a", "-m", "a", "-n"],
            &["-t", "a", "-l", "-m", "x"],
            &["-t", "a", "-s", "-l"],
            &["-t", "a", "-n", "-f", "x"],
            &["-t", "a", "-m"],
            &["-t", "a", "-f"],
            &["-t", "a", "-n", "--repeat", "0"],
            &["-t", "a", "-n", "--repeat"],
            &["-t", "a", "-n", "--repeat-delay", "-1"],
            &["-t", "a/+", "-n"],
            &["-t", "a/#", "-n"],
            &["-t", "a", "-n", "-v"],
            &["-t", "a", "-n", "-C", "1"],
            &["-t", "a", "-n", "-F", "%t"],
            &["-t", "a", "-n", "-T", "x"],
            &["-t", "a", "-n", "-R"],
            &["-t", "a", "-n", "-E"],
            &["-t", "a", "-n", "-q", "3"],
            &["-t", "a", "-n", "-c"],
            &["-t", "a", "-n", "-V", "3"],
            &["-t", "a", "-n", "--will-retain"],
            &["-L", "mqtt://h"],
            &["-L", "ftp://h/t"],
            &["-t", "a", "-n", "--cert", "c.pem"],
        ],
    );
}

#[test]
fn help_and_version_exit_with_1_like_mosquitto() {
    let config = scratch_dir("args-help");
    for (ours, theirs) in [
        (env!("CARGO_BIN_EXE_wren-pub"), "mosquitto_pub"),
        (env!("CARGO_BIN_EXE_wren-sub"), "mosquitto_sub"),
    ] {
        for option in ["--help", "--version"] {
            let expected = run(
                command(mosquitto_program(theirs), &config).arg(option),
                None,
            );
            let actual = run(command(ours, &config).arg(option), None);
            assert_eq!(
                actual.status.code(),
                expected.status.code(),
                "{ours} {option}"
            );
            assert!(actual.stderr.is_empty(), "{ours} {option} wrote to stderr");
            let text = String::from_utf8(actual.stdout).expect("help is text");
            assert!(text.contains(" version "), "{ours} {option}: {text}");
        }
    }
}

#[test]
fn features_not_supported_yet_are_refused_with_a_reason() {
    let config = scratch_dir("args-unsupported");
    let sub = env!("CARGO_BIN_EXE_wren-sub");
    for args in [
        &["-t", "a", "--proxy", "socks5h://localhost"][..],
        &["-t", "a", "--unix", "/tmp/mosquitto.sock"],
    ] {
        let output = run(command(sub, &config).args(args), None);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not supported yet"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_defaults_file_is_read_before_the_arguments() {
    let config = scratch_dir("args-defaults");
    std::fs::write(config.path().join("wren-sub"), "# defaults\n-q 3\n").expect("write defaults");
    let output = run(
        command(env!("CARGO_BIN_EXE_wren-sub"), &config).args(["-t", "a"]),
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Error: Invalid QoS given: 3\n\nUse 'wren-sub --help' to see usage.\n"
    );
}
