//! wren-pub publishes what mosquitto_pub publishes: for each case both programs run
//! with the same arguments and input, and a mosquitto_sub subscribed beforehand
//! prints what reached the broker (topic level, retain flag, QoS, length and the
//! payload in hex). Both printouts must be identical, as must the exit codes and
//! error messages.

mod common;
mod tools_support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::mosquitto::Mosquitto;
use tools_support::{command, mosquitto_program, run, scratch_dir, Running};

struct Tools {
    broker: Mosquitto,
    config: tempfile::TempDir,
    files: tempfile::TempDir,
    next: std::cell::Cell<usize>,
}

/// What one publisher run produced: the subscriber's printout and the publisher's
/// own output.
struct Outcome {
    received: String,
    publisher: Output,
}

fn wren_pub() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wren-pub"))
}

impl Tools {
    fn new(test: &str, extra: &str) -> Tools {
        Tools {
            broker: Mosquitto::anonymous(extra),
            config: scratch_dir(&format!("{test}-config")),
            files: scratch_dir(&format!("{test}-files")),
            next: std::cell::Cell::new(0),
        }
    }

    fn port(&self) -> String {
        self.broker.port().to_string()
    }

    /// A topic no other run uses.
    fn fresh_topic(&self) -> String {
        let n = self.next.get();
        self.next.set(n + 1);
        format!("t{n}/x")
    }

    /// Subscribes to a fresh topic, runs `publisher` with `args` (`{t}` is the
    /// topic) and `stdin`, and collects the `expected` messages that arrive.
    fn publish(
        &self,
        publisher: &Path,
        args: &[&str],
        stdin: Option<&[u8]>,
        expected: usize,
    ) -> Outcome {
        let topic = self.fresh_topic();
        let id = format!("watch-{}", topic.replace('/', "-"));
        let subscriber = Running::start(
            command(mosquitto_program("mosquitto_sub"), &self.config)
                .args(["-p", &self.port(), "-t", &topic, "-q", "2", "-i", &id])
                .args(["-F", "%r|%q|%l|%x", "-W", "10"])
                .args(["-C", &expected.max(1).to_string()]),
        );
        self.broker
            .wait_for_log(&format!("Sending SUBACK to {id}\n"), 1);
        let args: Vec<String> = args.iter().map(|a| a.replace("{t}", &topic)).collect();
        let publisher = run(
            command(publisher, &self.config)
                .args(["-p", &self.port()])
                .args(&args),
            stdin,
        );
        if expected == 0 {
            // Nothing should come: end the subscriber with a marker message.
            let marker = run(
                command(mosquitto_program("mosquitto_pub"), &self.config).args([
                    "-p",
                    &self.port(),
                    "-t",
                    &topic,
                    "-m",
                    "END",
                ]),
                None,
            );
            assert!(marker.status.success());
        }
        let received = subscriber.finish();
        Outcome {
            received: String::from_utf8_lossy(&received.stdout).into_owned(),
            publisher,
        }
    }

    /// Runs the case with both publishers and checks they did the same.
    fn same(&self, args: &[&str], stdin: Option<&[u8]>, expected: usize) {
        let theirs = self.publish(&mosquitto_program("mosquitto_pub"), args, stdin, expected);
        let ours = self.publish(&wren_pub(), args, stdin, expected);
        assert_eq!(ours.received, theirs.received, "what arrived, for {args:?}");
        assert_eq!(
            ours.publisher.status.code(),
            theirs.publisher.status.code(),
            "exit code for {args:?}: {:?}",
            String::from_utf8_lossy(&ours.publisher.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.publisher.stderr),
            String::from_utf8_lossy(&theirs.publisher.stderr).replace("mosquitto_pub", "wren-pub"),
            "stderr for {args:?}"
        );
    }

    fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.files.path().join(name);
        std::fs::write(&path, contents).expect("cannot write a test file");
        path.display().to_string()
    }
}

#[test]
fn messages_from_the_command_line_arrive_as_with_mosquitto_pub() {
    let tools = Tools::new("pub-message", "");
    tools.same(&["-t", "{t}", "-m", "hello"], None, 1);
    tools.same(&["-t", "{t}", "-m", "hello", "-q", "1"], None, 1);
    tools.same(&["-t", "{t}", "-m", "hello", "-q", "2", "-r"], None, 1);
    tools.same(&["-t", "{t}", "-m", ""], None, 1);
    tools.same(&["-t", "{t}", "-n", "-q", "1"], None, 1);
    tools.same(
        &["--topic", "{t}", "--message", "long options", "--qos", "2"],
        None,
        1,
    );
    let url = format!("mqtt://127.0.0.1:{}/{{t}}", tools.port());
    tools.same(&["-L", &url, "-m", "by URL"], None, 1);
}

#[test]
fn files_and_stdin_arrive_as_with_mosquitto_pub() {
    let tools = Tools::new("pub-input", "");
    let binary = tools.file("binary", b"\x00\x01\xfe\xff\nend");
    let empty = tools.file("empty", b"");
    tools.same(&["-t", "{t}", "-f", &binary, "-q", "2"], None, 1);
    tools.same(&["-t", "{t}", "-f", &empty, "-q", "1"], None, 1);
    tools.same(
        &["-t", "{t}", "-s", "-q", "1"],
        Some(b"all of\nstdin\x00\xff"),
        1,
    );
    tools.same(
        &["-t", "{t}", "-l", "-q", "1"],
        Some(b"one\r\n\ntwo\nlast"),
        4,
    );
    tools.same(&["-t", "{t}", "-l"], Some(b""), 0);
}

#[test]
fn repeats_arrive_as_with_mosquitto_pub() {
    let tools = Tools::new("pub-repeat", "");
    tools.same(&["-t", "{t}", "-m", "again", "--repeat", "3"], None, 3);
    tools.same(
        &[
            "-t",
            "{t}",
            "-m",
            "slowly",
            "-q",
            "1",
            "--repeat",
            "2",
            "--repeat-delay",
            "0.2",
        ],
        None,
        2,
    );
}

#[test]
fn retained_messages_are_kept_and_cleared_as_with_mosquitto_pub() {
    let tools = Tools::new("pub-retain", "");
    for publisher in [mosquitto_program("mosquitto_pub"), wren_pub()] {
        let topic = tools.fresh_topic();
        let retained = |args: &[&str]| {
            let output = run(
                command(&publisher, &tools.config)
                    .args(["-p", &tools.port(), "-t", &topic])
                    .args(args),
                None,
            );
            assert!(
                output.status.success(),
                "{publisher:?} {args:?}: {output:?}"
            );
        };
        let stored = || {
            run(
                command(mosquitto_program("mosquitto_sub"), &tools.config).args([
                    "-p",
                    &tools.port(),
                    "-t",
                    &topic,
                    "-W",
                    "1",
                    "-F",
                    "%r|%p",
                ]),
                None,
            )
        };
        retained(&["-m", "kept", "-r", "-q", "1"]);
        let seen = stored();
        assert_eq!(seen.stdout, b"1|kept\n", "{publisher:?}");
        retained(&["-n", "-r"]);
        let seen = stored();
        assert_eq!(seen.status.code(), Some(27), "{publisher:?}");
        assert!(
            seen.stdout.is_empty(),
            "{publisher:?} left {:?}",
            seen.stdout
        );
    }
}

#[test]
fn input_errors_are_reported_as_by_mosquitto_pub() {
    let tools = Tools::new("pub-errors", "");
    let missing = tools.files.path().join("missing").display().to_string();
    for (args, stdin) in [
        (vec!["-t", "t", "-f", missing.as_str()], None),
        (vec!["-t", "t", "-s"], Some(&b""[..])),
        (vec!["-t", "t", "-s", "--quiet"], Some(&b""[..])),
        (vec!["-t", "t"], None),
        (vec!["-m", "x"], None),
    ] {
        let theirs = run(
            command(mosquitto_program("mosquitto_pub"), &tools.config).args(&args),
            stdin,
        );
        let ours = run(command(wren_pub(), &tools.config).args(&args), stdin);
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&theirs.stderr).replace("mosquitto_pub", "wren-pub"),
            "{args:?}"
        );
    }
}

#[test]
fn refusals_are_reported_as_by_mosquitto_pub() {
    let locked = Mosquitto::with_config(
        "allow_anonymous false
",
        &[],
    );
    let config = scratch_dir("pub-refused-config");
    let closed_port = common::free_port();
    for port in [locked.port(), closed_port] {
        for quiet in [false, true] {
            let mut args = vec![
                "-p".to_owned(),
                port.to_string(),
                "-t".into(),
                "a".into(),
                "-m".into(),
                "x".into(),
            ];
            if quiet {
                args.push("--quiet".into());
            }
            let theirs = run(
                command(mosquitto_program("mosquitto_pub"), &config).args(&args),
                None,
            );
            let ours = run(command(wren_pub(), &config).args(&args), None);
            assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
            assert_eq!(
                String::from_utf8_lossy(&ours.stderr),
                String::from_utf8_lossy(&theirs.stderr),
                "{args:?}"
            );
        }
    }
}

#[test]
fn the_will_is_published_when_the_publisher_dies() {
    let tools = Tools::new("pub-will", "");
    for (n, publisher) in [mosquitto_program("mosquitto_pub"), wren_pub()]
        .into_iter()
        .enumerate()
    {
        let will = format!("will{n}/gone");
        let id = format!("dying{n}");
        let watcher = Running::start(
            command(mosquitto_program("mosquitto_sub"), &tools.config)
                .args(["-p", &tools.port(), "-t", &will, "-i", &format!("watch{n}")])
                .args(["-q", "2", "-C", "1", "-W", "15", "-F", "%t|%q|%p"]),
        );
        tools
            .broker
            .wait_for_log(&format!("Sending SUBACK to watch{n}\n"), 1);
        // -l keeps the publisher connected while its stdin stays open.
        let mut dying = Running::start(
            command(&publisher, &tools.config)
                .args(["-p", &tools.port(), "-t", "any", "-l", "-i", &id])
                .args([
                    "--will-topic",
                    &will,
                    "--will-payload",
                    "bye",
                    "--will-qos",
                    "1",
                ])
                .stdin(Stdio::piped()),
        );
        tools
            .broker
            .wait_for_log(&format!("Sending CONNACK to {id} "), 1);
        // SIGKILL: the connection drops without DISCONNECT.
        dying.kill();
        let seen = watcher.finish();
        assert_eq!(
            String::from_utf8_lossy(&seen.stdout),
            format!("{will}|1|bye\n"),
            "{publisher:?}"
        );
    }
}

#[test]
fn debug_output_matches_mosquitto_pub() {
    let tools = Tools::new("pub-debug", "");
    for qos in ["1", "2"] {
        let args = [
            "-p",
            &tools.port(),
            "-t",
            "d/x",
            "-m",
            "hello",
            "-q",
            qos,
            "-i",
            "dbg",
            "-d",
        ];
        let theirs = run(
            command(mosquitto_program("mosquitto_pub"), &tools.config).args(args),
            None,
        );
        let ours = run(command(wren_pub(), &tools.config).args(args), None);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "-d -q {qos}"
        );
    }
}

#[test]
fn an_hbmqtt_config_file_sets_the_broker_and_publishing_defaults() {
    let tools = Tools::new("pub-config", "");
    let config = tools.file(
        "client.yaml",
        format!(
            "broker:\n  uri: mqtt://127.0.0.1:{}\ndefault_qos: 1\n\
             topics:\n  cfg/special: {{qos: 2, retain: true}}\n",
            tools.port()
        )
        .as_bytes(),
    );
    // `same` adds -p; the file's uri names the same broker.
    let publish = |args: &[&str]| {
        let output = run(
            command(wren_pub(), &tools.config)
                .args(["--config", &config])
                .args(args),
            None,
        );
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
    };
    let stored = |topic: &str| {
        let output = run(
            command(mosquitto_program("mosquitto_sub"), &tools.config).args([
                "-p",
                &tools.port(),
                "-t",
                topic,
                "-q",
                "2",
                "-F",
                "%q|%r|%p",
                "-W",
                "1",
            ]),
            None,
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // default_qos applies; -r keeps the message for the check below.
    publish(&["-t", "cfg/plain", "-m", "one", "-r"]);
    assert_eq!(stored("cfg/plain"), "1|1|one\n");
    // The topic's own defaults: QoS 2 and retained, without -q or -r.
    publish(&["-t", "cfg/special", "-m", "two"]);
    assert_eq!(stored("cfg/special"), "2|1|two\n");
    // -q on the command line wins over the file.
    publish(&["-t", "cfg/special", "-m", "three", "-q", "0"]);
    assert_eq!(stored("cfg/special"), "0|1|three\n");
}
