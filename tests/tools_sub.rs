//! Golden tests: wren-sub prints what mosquitto_sub prints, byte for byte.
//!
//! Each case starts mosquitto_sub and wren-sub with the same arguments against one
//! mosquitto broker, waits (in the broker's log) until both have subscribed, has
//! mosquitto_pub publish the same messages (text, binary, empty, JSON, QoS 0/1/2,
//! retained and live), and compares both programs' stdout, stderr and exit code.
//! Only the timestamp inside `%j` JSON is masked, since the two programs print at
//! different instants.

mod common;
mod tools_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::mosquitto::Mosquitto;
use tools_support::{command, mosquitto_program, run, scratch_dir, Running};

/// One message to publish, under the case's own topic prefix.
struct Message {
    topic: &'static str,
    payload: &'static [u8],
    qos: u8,
    retain: bool,
}

/// Published before the subscribers connect: they arrive first, flagged retained.
const RETAINED: &[Message] = &[
    Message {
        topic: "r1",
        payload: b"retained one",
        qos: 1,
        retain: true,
    },
    Message {
        topic: "rbin",
        payload: b"\x00\x01\xfe\xff",
        qos: 0,
        retain: true,
    },
];

/// Published once both subscribers have their SUBACK.
const LIVE: &[Message] = &[
    Message {
        topic: "text",
        payload: b"hello world",
        qos: 0,
        retain: false,
    },
    Message {
        topic: "bin",
        payload: b"\x00\xff\n\x1b\"\\",
        qos: 1,
        retain: false,
    },
    Message {
        topic: "empty",
        payload: b"",
        qos: 2,
        retain: false,
    },
    Message {
        topic: "json",
        payload: br#"{ "a" : [1, 2.50, -0, 1e10], "b": "\u00e9" }"#,
        qos: 1,
        retain: false,
    },
    Message {
        topic: "skip",
        payload: b"filtered out",
        qos: 0,
        retain: false,
    },
    Message {
        topic: "long",
        payload: b"a somewhat longer payload that runs past every field width used here",
        qos: 2,
        retain: false,
    },
];

const ALL: usize = RETAINED.len() + LIVE.len();

struct Case {
    name: &'static str,
    /// Arguments after the shared ones; `{p}` stands for the case's topic prefix.
    args: &'static [&'static str],
    /// `-C` to add, if any.
    count: Option<usize>,
    /// Publish the live messages (cases that end before them say no).
    live: bool,
}

const fn case(name: &'static str, args: &'static [&'static str], count: usize) -> Case {
    Case {
        name,
        args,
        count: Some(count),
        live: true,
    }
}

struct Tools {
    broker: Mosquitto,
    config: tempfile::TempDir,
    files: tempfile::TempDir,
}

impl Tools {
    fn new(test: &str) -> Tools {
        Tools {
            broker: Mosquitto::anonymous(""),
            config: scratch_dir(&format!("{test}-config")),
            files: scratch_dir(&format!("{test}-files")),
        }
    }

    fn publish(&self, prefix: &str, message: &Message) {
        let mut publisher = command(mosquitto_program("mosquitto_pub"), &self.config);
        publisher
            .args(["-p", &self.broker.port().to_string()])
            .args(["-t", &format!("{prefix}/{}", message.topic)])
            .args(["-q", &message.qos.to_string()]);
        if message.retain {
            publisher.arg("-r");
        }
        if message.payload.is_empty() {
            publisher.arg("-n");
        } else {
            // -f takes any bytes, NUL included.
            let file = self
                .files
                .path()
                .join(format!("{prefix}-{}", message.topic));
            std::fs::write(&file, message.payload).expect("cannot write the payload file");
            publisher.arg("-f").arg(&file);
        }
        let output = run(&mut publisher, None);
        assert!(output.status.success(), "mosquitto_pub failed: {output:?}");
    }

    fn start(&self, program: &Path, id: &str, prefix: &str, case: &Case) -> Running {
        let mut subscriber = command(program, &self.config);
        subscriber
            .args(["-p", &self.broker.port().to_string()])
            .args(["-t", &format!("{prefix}/#"), "-i", id, "-q", "2"])
            .args(case.args.iter().map(|a| a.replace("{p}", prefix)));
        if let Some(count) = case.count {
            subscriber.args(["-C", &count.to_string()]);
        }
        Running::start(&mut subscriber)
    }

    /// Runs one case with both programs; returns (mosquitto's, ours).
    fn run_case(&self, index: usize, case: &Case) -> (Output, Output) {
        let prefix = format!("c{index}");
        for message in RETAINED {
            self.publish(&prefix, message);
        }
        let theirs_id = format!("{prefix}-mosquitto");
        let ours_id = format!("{prefix}-wren");
        let theirs = self.start(
            &mosquitto_program("mosquitto_sub"),
            &theirs_id,
            &prefix,
            case,
        );
        let ours = self.start(
            Path::new(env!("CARGO_BIN_EXE_wren-sub")),
            &ours_id,
            &prefix,
            case,
        );
        self.broker
            .wait_for_log(&format!("Sending SUBACK to {theirs_id}\n"), 1);
        self.broker
            .wait_for_log(&format!("Sending SUBACK to {ours_id}\n"), 1);
        if case.live {
            let requested = requested_qos(case);
            for message in LIVE {
                // Publish the next message only once both subscribers have this one:
                // a QoS 2 delivery takes a round trip more than the others, so
                // without waiting the order of arrival would be left to chance.
                let delivered = message.qos.min(requested);
                let seen: Vec<(String, usize)> = [&theirs_id, &ours_id]
                    .into_iter()
                    .map(|id| {
                        let line = delivery_line(delivered, id);
                        let count = self.broker.log().matches(&line).count();
                        (line, count)
                    })
                    .collect();
                self.publish(&prefix, message);
                for ((line, count), id) in seen.iter().zip([&theirs_id, &ours_id]) {
                    self.broker.wait_for_log_or_gone(line, count + 1, id);
                }
            }
        }
        (theirs.finish(), ours.finish())
    }
}

/// The QoS a case subscribes with: its last `-q`, or the shared `-q 2`.
fn requested_qos(case: &Case) -> u8 {
    case.args
        .windows(2)
        .rev()
        .find(|pair| pair[0] == "-q")
        .map_or(2, |pair| pair[1].parse().expect("a QoS"))
}

/// The broker's log line that says a message of `qos` reached client `id`: the
/// end of its handshake (for QoS 2 mosquitto_sub hands the message over on PUBREL,
/// so only PUBCOMP proves it printed).
fn delivery_line(qos: u8, id: &str) -> String {
    match qos {
        0 => format!("Sending PUBLISH to {id} "),
        1 => format!("Received PUBACK from {id} "),
        _ => format!("Received PUBCOMP from {id} "),
    }
}

/// Replaces the value of every `"tst":` with `T`: the one thing that may differ.
/// The `"mid":` values go too: they are the packet ids the broker chose for each
/// subscriber's connection, which need not agree (the key itself is compared).
fn mask_timestamps(output: &[u8]) -> Vec<u8> {
    mask_mids(&mask_tst(output))
}

fn mask_mids(output: &[u8]) -> Vec<u8> {
    let key: &[u8] = b"\"mid\":";
    let mut masked = Vec::with_capacity(output.len());
    let mut rest = output;
    while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
        masked.extend_from_slice(&rest[..at + key.len()]);
        rest = &rest[at + key.len()..];
        let digits = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'\t')
            .count();
        masked.push(b'M');
        rest = &rest[digits..];
    }
    masked.extend_from_slice(rest);
    masked
}

fn mask_tst(output: &[u8]) -> Vec<u8> {
    let key: &[u8] = b"\"tst\":";
    let mut masked = Vec::with_capacity(output.len());
    let mut rest = output;
    while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
        masked.extend_from_slice(&rest[..at + key.len()]);
        rest = &rest[at + key.len()..];
        // Optional tab (--pretty), then a quoted string.
        let start = rest
            .iter()
            .position(|&b| b == b'"')
            .expect("tst has a value");
        let end = start
            + 1
            + rest[start + 1..]
                .iter()
                .position(|&b| b == b'"')
                .expect("tst ends");
        masked.extend_from_slice(&rest[..start]);
        masked.extend_from_slice(b"\"T\"");
        rest = &rest[end + 1..];
    }
    masked.extend_from_slice(rest);
    masked
}

fn compare(tools: &Tools, cases: &[Case]) {
    for (index, case) in cases.iter().enumerate() {
        let (theirs, ours) = tools.run_case(index, case);
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "exit code, case {}: stderr {:?}",
            case.name,
            String::from_utf8_lossy(&ours.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&mask_timestamps(&ours.stdout)),
            String::from_utf8_lossy(&mask_timestamps(&theirs.stdout)),
            "stdout, case {}",
            case.name
        );
        assert_eq!(
            mask_timestamps(&ours.stdout),
            mask_timestamps(&theirs.stdout),
            "stdout bytes, case {}",
            case.name
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&theirs.stderr),
            "stderr, case {}",
            case.name
        );
    }
}

#[test]
fn plain_and_verbose_output_match_mosquitto_sub() {
    let tools = Tools::new("sub-plain");
    compare(
        &tools,
        &[
            case("plain", &[], ALL),
            case("verbose", &["-v"], ALL),
            case("no end of line", &["-N"], ALL),
            case("verbose without end of line", &["-v", "-N"], ALL),
            case("requested QoS 0", &["-q", "0", "-v"], ALL),
            case("requested QoS 1", &["-q", "1", "-v"], ALL),
            case("count", &["-v"], 3),
        ],
    );
}

#[test]
fn format_fields_match_mosquitto_sub() {
    let tools = Tools::new("sub-format");
    compare(
        &tools,
        &[
            case(
                "fields",
                &["-F", "%t|%p|%q|%r|%l|%%|@@|\\t|%x|%X|\\e\\a\\v\\0\\r\\\\"],
                ALL,
            ),
            case(
                "widths",
                &[
                    "-F",
                    "[%10t][%-10t][%.3t][%05l][%8p][%08p][%-8p][%8x][%-x][%03q][%5r]",
                ],
                ALL,
            ),
            case(
                "absent MQTT 5 properties",
                &["-F", "[%5A][%05E][%3C][%D%P%R][%2S][%F]"],
                ALL,
            ),
            case("format without end of line", &["-F", "%t=%p;", "-N"], ALL),
            case("format wins over verbose", &["-v", "-F", "%l"], ALL),
        ],
    );
}

#[test]
fn json_output_matches_mosquitto_sub() {
    let tools = Tools::new("sub-json");
    compare(
        &tools,
        &[
            case("json", &["-F", "%j"], ALL),
            case("json pretty", &["-F", "%j", "--pretty"], ALL),
            case("raw json", &["-F", "<%J>"], ALL),
            case("raw json pretty", &["-F", "%J", "--pretty"], ALL),
        ],
    );
}

#[test]
fn message_selection_matches_mosquitto_sub() {
    let tools = Tools::new("sub-select");
    compare(
        &tools,
        &[
            case("skip retained", &["-R", "-v"], ALL - RETAINED.len()),
            case(
                "filter out",
                &["-T", "{p}/skip", "-T", "{p}/r1", "-v"],
                ALL - 2,
            ),
            Case {
                name: "retained only",
                args: &["--retained-only", "-v"],
                count: None,
                live: true,
            },
            Case {
                name: "exit after SUBACK",
                args: &["-E", "-v"],
                count: None,
                live: false,
            },
            Case {
                name: "timeout",
                args: &["-W", "2", "-v"],
                count: None,
                live: false,
            },
        ],
    );
}

#[test]
fn remove_retained_clears_what_it_prints() {
    let tools = Tools::new("sub-remove");
    let prefix = "rm";
    for message in RETAINED {
        tools.publish(prefix, message);
    }
    let port = tools.broker.port().to_string();
    let topic = format!("{prefix}/#");
    let ours = run(
        command(env!("CARGO_BIN_EXE_wren-sub"), &tools.config).args([
            "-p",
            &port,
            "-t",
            &topic,
            "--remove-retained",
            "-v",
            "-C",
            "2",
        ]),
        None,
    );
    assert_eq!(ours.status.code(), Some(0), "{ours:?}");
    assert_eq!(
        ours.stdout,
        b"rm/r1 retained one\nrm/rbin \x00\x01\xfe\xff\n".to_vec(),
        "both retained messages printed"
    );
    // Nothing retained is left: mosquitto_sub sees nothing and times out.
    let check = run(
        command(mosquitto_program("mosquitto_sub"), &tools.config)
            .args(["-p", &port, "-t", &topic, "-W", "1"]),
        None,
    );
    assert_eq!(check.status.code(), Some(27));
    assert!(
        check.stdout.is_empty(),
        "still retained: {:?}",
        check.stdout
    );
}

#[test]
fn connection_failures_are_reported_like_mosquitto_sub() {
    let locked = Mosquitto::with_config(
        "allow_anonymous false
",
        &[],
    );
    let config = scratch_dir("sub-refused-config");
    // A port nothing listens on: bound, read, released.
    let closed_port = common::free_port();
    let cases = [
        (
            locked.port(),
            Some(5),
            "Connection error: Connection Refused: not authorised.\n",
        ),
        (closed_port, Some(1), "Error: Connection refused\n"),
    ];
    for (port, code, stderr) in cases {
        for program in [
            mosquitto_program("mosquitto_sub"),
            PathBuf::from(env!("CARGO_BIN_EXE_wren-sub")),
        ] {
            let output = run(
                command(&program, &config).args(["-p", &port.to_string(), "-t", "a"]),
                None,
            );
            assert_eq!(output.status.code(), code, "{program:?} on port {port}");
            assert_eq!(
                String::from_utf8_lossy(&output.stderr),
                stderr,
                "{program:?}"
            );
        }
    }
}

#[test]
fn masking_touches_only_timestamps_and_packet_ids() {
    assert_eq!(
        mask_timestamps(b"{\"tst\":\"2026\",\"topic\":\"t\",\"mid\":12}\n{\n\t\"tst\":\t\"x\"}"),
        b"{\"tst\":\"T\",\"topic\":\"t\",\"mid\":M}\n{\n\t\"tst\":\t\"T\"}".to_vec()
    );
}

/// Sends `signal` to a running child.
fn signal(child: &Running, signal: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "cannot signal the subscriber");
}

#[test]
fn an_interrupt_disconnects_cleanly_and_exits_0_like_mosquitto_sub() {
    let tools = Tools::new("sub-signal");
    let programs = [
        ("mosquitto", mosquitto_program("mosquitto_sub")),
        ("wren", PathBuf::from(env!("CARGO_BIN_EXE_wren-sub"))),
    ];
    for (name, program) in programs {
        for (sig, sig_name) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
            let id = format!("{name}-{sig_name}");
            let child = Running::start(
                command(&program, &tools.config)
                    .args([
                        "-p",
                        &tools.broker.port().to_string(),
                        "-t",
                        "s/#",
                        "-i",
                        &id,
                    ])
                    .args(["--will-topic", "s/will", "--will-payload", "lost"]),
            );
            tools
                .broker
                .wait_for_log(&format!("Sending SUBACK to {id}\n"), 1);
            signal(&child, sig);
            let output = child.finish();
            assert_eq!(output.status.code(), Some(0), "{id}: {output:?}");
            // A DISCONNECT, so the broker drops the will instead of publishing it.
            tools
                .broker
                .wait_for_log(&format!("Received DISCONNECT from {id}\n"), 1);
        }
    }
}

#[test]
fn a_persistent_session_outlives_the_subscriber_and_u_removes_a_subscription() {
    let tools = Tools::new("sub-session");
    let port = tools.broker.port().to_string();
    let wren_sub = PathBuf::from(env!("CARGO_BIN_EXE_wren-sub"));
    let mosquitto_sub = mosquitto_program("mosquitto_sub");
    for (name, program) in [("mosquitto", &mosquitto_sub), ("wren", &wren_sub)] {
        let id = format!("keep-{name}");
        let kept = format!("{name}/kept");
        let dropped = format!("{name}/dropped");
        // Subscribe to both with a persistent session, then leave at once.
        let first = run(
            command(program, &tools.config)
                .args(["-p", &port, "-c", "-i", &id, "-q", "1", "-E"])
                .args(["-t", &kept, "-t", &dropped]),
            None,
        );
        assert_eq!(first.status.code(), Some(0), "{name}: {first:?}");
        // Come back only to unsubscribe from one of them.
        let second = run(
            command(program, &tools.config)
                .args(["-p", &port, "-c", "-i", &id, "-q", "1", "-E"])
                .args(["-t", &kept, "-U", &dropped]),
            None,
        );
        assert_eq!(second.status.code(), Some(0), "{name}: {second:?}");
        tools
            .broker
            .wait_for_log(&format!("Received UNSUBSCRIBE from {id}\n"), 1);
        // While the client is away, one message for each.
        for topic in [&dropped, &kept] {
            let published = run(
                command(mosquitto_program("mosquitto_pub"), &tools.config)
                    .args(["-p", &port, "-t", topic, "-m", "queued", "-q", "1"]),
                None,
            );
            assert!(published.status.success());
        }
        // The session kept the one still subscribed, and only that one.
        let back = run(
            command(&mosquitto_sub, &tools.config)
                .args(["-p", &port, "-c", "-i", &id, "-q", "1", "-t", &kept])
                .args(["-v", "-W", "2"]),
            None,
        );
        assert_eq!(
            String::from_utf8_lossy(&back.stdout),
            format!("{kept} queued\n"),
            "{name}"
        );
    }
}

#[test]
fn debug_output_matches_mosquitto_sub() {
    let tools = Tools::new("sub-debug");
    let port = tools.broker.port().to_string();
    tools.publish(
        "dbg",
        &Message {
            topic: "r",
            payload: b"abc",
            qos: 1,
            retain: true,
        },
    );
    let args = [
        "-p", &port, "-t", "dbg/#", "-q", "2", "-i", "dbg", "-d", "-C", "1",
    ];
    let theirs = run(
        command(mosquitto_program("mosquitto_sub"), &tools.config).args(args),
        None,
    );
    let ours = run(
        command(env!("CARGO_BIN_EXE_wren-sub"), &tools.config).args(args),
        None,
    );
    // Compare the debug lines. Where the message itself falls among them is left
    // out: wren's connection thread logs the PUBACK while the main thread prints.
    let packets = |output: &Output| -> Vec<String> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.starts_with("Client ") || line.starts_with("Subscribed"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(packets(&ours), packets(&theirs));
    for output in [&ours, &theirs] {
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(printed.contains("\nabc\n"), "{printed}");
    }
}
