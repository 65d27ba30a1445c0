//! Golden tests for MQTT 5 in the tools: wren-pub and wren-sub with `-V 5`, `-D`,
//! `-x`, `--retain-as-published` and `-R` print and exit as mosquitto_pub and
//! mosquitto_sub 2.0.11 do with the same arguments.
//!
//! Argument errors are compared without a broker. Everything else runs both
//! programs against one mosquitto broker (with an ACL that denies `denied/#`, so
//! that a QoS 1 or 2 publish there gets reason code 0x87), side by side, and
//! compares stdout, stderr and the exit code. Only what must differ is masked: the
//! `"tst"` timestamp of `%j`.

mod common;
mod tools_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::mosquitto::Mosquitto;
use tools_support::{command, mosquitto_program, run, scratch_dir, Running};

const WREN_PUB: &str = env!("CARGO_BIN_EXE_wren-pub");
const WREN_SUB: &str = env!("CARGO_BIN_EXE_wren-sub");

/// The two programs of one kind: (mosquitto's, ours).
fn pair(tool: &str) -> (PathBuf, PathBuf) {
    match tool {
        "pub" => (mosquitto_program("mosquitto_pub"), PathBuf::from(WREN_PUB)),
        _ => (mosquitto_program("mosquitto_sub"), PathBuf::from(WREN_SUB)),
    }
}

/// A broker for these tests: anyone may connect, nobody may publish to `denied/#`.
fn broker() -> Mosquitto {
    Mosquitto::with_config(
        "allow_anonymous true\nacl_file {dir}/acl\n",
        &[("acl", "topic readwrite #\ntopic deny denied/#\n")],
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that two runs printed and exited alike, `mosquitto` standing for the
/// program name in mosquitto's texts.
fn assert_same(theirs: &Output, ours: &Output, name: &str, what: &str) {
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "exit code of {what}; our stderr {:?}",
        text(&ours.stderr)
    );
    assert_eq!(
        text(&ours.stdout),
        text(&theirs.stdout).replace(&format!("mosquitto_{name}"), &format!("wren-{name}")),
        "stdout of {what}"
    );
    assert_eq!(
        text(&ours.stderr),
        text(&theirs.stderr).replace(&format!("mosquitto_{name}"), &format!("wren-{name}")),
        "stderr of {what}"
    );
}

/// Runs `args` through both programs of `tool` (no broker needed: they fail
/// before connecting) and compares.
fn same_refusal(tool: &str, cases: &[&[&str]]) {
    let config = scratch_dir(&format!("v5-args-{tool}"));
    let (theirs, ours) = pair(tool);
    for args in cases {
        let expected = run(command(&theirs, config.path()).args(*args), None);
        let actual = run(command(&ours, config.path()).args(*args), None);
        assert_eq!(expected.status.code(), Some(1), "mosquitto {tool} {args:?}");
        assert_same(&expected, &actual, tool, &format!("{tool} {args:?}"));
    }
}

/// `-D` mistakes mosquitto finds while reading the option, shared by both tools.
const PROPERTY_ERRORS: &[&[&str]] = &[
    &["-D"],
    &["-D", "publish"],
    &["-D", "publish", "content-type"],
    &["-D", "bogus", "content-type", "x"],
    &["-D", "publish", "bogus", "x"],
    &["-D", "connect", "content-type", "x"],
    &["-D", "subscribe", "content-type", "x"],
    &["-D", "Connect", "Will-Delay-Interval", "5"],
    &["-D", "publish", "subscription-identifier", "3"],
    &["-D", "subscribe", "user-property", "k"],
    &["-D", "subscribe", "subscription-identifier", "268435456"],
    &["-D", "subscribe", "subscription-identifier", "-1"],
    &["-D", "puback", "reason-string", "x"],
    &["-D", "puback", "content-type", "x"],
    &["-D", "pubrec", "user-property", "k", "v"],
    &["-D", "auth", "authentication-method", "x"],
    &["-D", "connack", "assigned-client-identifier", "x"],
    &["-D", "suback", "reason-string", "x"],
    &["-D", "publish", "message-expiry-interval", "-1"],
    &["-D", "publish", "message-expiry-interval", "4294967296"],
    &["-D", "publish", "topic-alias", "65536"],
    &["-D", "publish", "payload-format-indicator", "256"],
    &["-D", "publish", "content-type", "a\u{1}b"],
    &["-D", "will", "response-topic", "\u{7f}"],
    &["-D", "connect", "user-property", "a\u{1}", "v"],
    // Checked once every option has been read.
    &["-D", "connect", "request-problem-information", "2"],
    &["-D", "connect", "receive-maximum", "0"],
    &["-D", "connect", "maximum-packet-size", "0"],
    &["-D", "publish", "topic-alias", "0"],
    &[
        "-D",
        "publish",
        "content-type",
        "a",
        "-D",
        "publish",
        "content-type",
        "b",
    ],
    &[
        "-D",
        "will",
        "will-delay-interval",
        "1",
        "-D",
        "will",
        "will-delay-interval",
        "2",
    ],
    &["-D", "connect", "session-expiry-interval", "5", "-x", "6"],
    &[
        "-D",
        "disconnect",
        "reason-string",
        "a",
        "-D",
        "disconnect",
        "reason-string",
        "b",
    ],
    &[
        "-D",
        "unsubscribe",
        "user-property",
        "k",
        "v",
        "-D",
        "connect",
        "receive-maximum",
        "0",
        "--quiet",
    ],
    // -x and the session.
    &["-x"],
    &["-x", "abc"],
    &["-x", "-2"],
    &["-x", "4294967296"],
    &["-x", "12z"],
    &["-V", "5", "-c"],
    &["-V", "5", "-c", "-I", "pre"],
    &["-V", "5", "-x", "-1"],
    &["-V", "5", "-x", "∞", "-i", "a", "-I", "b"],
    &[
        "-x",
        "0x10",
        "-D",
        "connect",
        "session-expiry-interval",
        "1",
    ],
    &["-V", "mqttv5", "-x", "4294967295"],
    &["-V", "5", "-c", "-x", "0"],
];

#[test]
fn property_and_session_expiry_mistakes_are_refused_like_mosquitto_pub() {
    let cases: Vec<Vec<&str>> = PROPERTY_ERRORS
        .iter()
        .map(|args| [&["-t", "a", "-m", "x", "-p", "1"][..], args].concat())
        .collect();
    let cases: Vec<&[&str]> = cases.iter().map(Vec::as_slice).collect();
    same_refusal("pub", &cases);
}

#[test]
fn property_and_session_expiry_mistakes_are_refused_like_mosquitto_sub() {
    let cases: Vec<Vec<&str>> = PROPERTY_ERRORS
        .iter()
        .map(|args| [&["-t", "a", "-p", "1"][..], args].concat())
        .collect();
    let mut cases: Vec<&[&str]> = cases.iter().map(Vec::as_slice).collect();
    // wren-sub's own: --retain-as-published with -R and --retained-only.
    cases.push(&["-t", "a", "-V", "5", "-R", "--retained-only"]);
    same_refusal("sub", &cases);
}

/// One message for the format tests, published by mosquitto_pub or wren-pub.
struct Message {
    topic: &'static str,
    payload: &'static str,
    qos: u8,
    args: &'static [&'static str],
}

/// Properties in identifier order (see `json_properties` in wren-sub's output):
/// mosquitto's broker forwards them as the publisher sent them.
const FULL: &[&str] = &[
    "-D",
    "publish",
    "payload-format-indicator",
    "1",
    "-D",
    "publish",
    "message-expiry-interval",
    "3600",
    "-D",
    "publish",
    "content-type",
    "text/plain; charset=utf-8",
    "-D",
    "publish",
    "response-topic",
    "reply/here",
    "-D",
    "publish",
    "correlation-data",
    "req-42",
    "-D",
    "publish",
    "user-property",
    "k1",
    "v1",
    "-D",
    "publish",
    "user-property",
    "k2",
    "v 2",
    "-D",
    "publish",
    "user-property",
    "k1",
    "again",
];

const MESSAGES: &[Message] = &[
    Message {
        topic: "plain",
        payload: "no properties",
        qos: 0,
        args: &[],
    },
    Message {
        topic: "full",
        payload: "every property",
        qos: 1,
        args: FULL,
    },
    Message {
        topic: "some",
        payload: "{\"a\":1}",
        qos: 2,
        args: &[
            "-D",
            "publish",
            "content-type",
            "application/json",
            "-D",
            "publish",
            "user-property",
            "only",
            "one",
        ],
    },
    Message {
        topic: "zero",
        payload: "",
        qos: 1,
        args: &[
            "-D",
            "publish",
            "payload-format-indicator",
            "0",
            "-D",
            "publish",
            "message-expiry-interval",
            "0",
            "-D",
            "publish",
            "correlation-data",
            "",
        ],
    },
];

/// Replaces each `"tst":"..."` value with `"T"`.
fn mask_tst(output: &[u8]) -> String {
    let text = text(output);
    let mut masked = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\"tst\":") {
        masked.push_str(&rest[..at + 6]);
        rest = &rest[at + 6..];
        let start = rest.find('"').expect("a tst value");
        let end = start + 1 + rest[start + 1..].find('"').expect("tst ends");
        masked.push_str(&rest[..start]);
        masked.push_str("\"T\"");
        rest = &rest[end + 1..];
    }
    masked.push_str(rest);
    masked
}

/// Starts both subscribers with `args`, waits for both SUBACKs, publishes
/// [`MESSAGES`] with `publisher`, and returns both outputs (mosquitto's, ours).
fn subscribe_both(
    broker: &Mosquitto,
    config: &Path,
    prefix: &str,
    args: &[&str],
    publisher: &Path,
) -> (Output, Output) {
    let (theirs_program, ours_program) = pair("sub");
    let port = broker.port().to_string();
    let start = |program: &Path, id: &str| {
        let mut subscriber = command(program, config);
        subscriber
            .args(["-p", &port, "-V", "5", "-q", "2", "-i", id])
            .args(["-t", &format!("{prefix}/#")])
            .args(["-C", &MESSAGES.len().to_string()])
            .args(args);
        Running::start(&mut subscriber)
    };
    let theirs_id = format!("{prefix}-mosquitto");
    let ours_id = format!("{prefix}-wren");
    let theirs = start(&theirs_program, &theirs_id);
    let ours = start(&ours_program, &ours_id);
    broker.wait_for_log(&format!("Sending SUBACK to {theirs_id}\n"), 1);
    broker.wait_for_log(&format!("Sending SUBACK to {ours_id}\n"), 1);
    for (i, message) in MESSAGES.iter().enumerate() {
        let mut publish = command(publisher, config);
        publish
            .args(["-p", &port, "-V", "5", "-i", &format!("{prefix}-pub{i}")])
            .args(["-t", &format!("{prefix}/{}", message.topic)])
            .args(["-q", &message.qos.to_string()])
            .args(message.args);
        if message.payload.is_empty() {
            publish.arg("-n");
        } else {
            publish.args(["-m", message.payload]);
        }
        // One message at a time, so that both see the same order: wait until
        // each subscriber has this one (or has left).
        let line = |id: &str| match message.qos {
            0 => format!("Sending PUBLISH to {id} "),
            1 => format!("Received PUBACK from {id} "),
            _ => format!("Received PUBCOMP from {id} "),
        };
        let seen: Vec<usize> = [&theirs_id, &ours_id]
            .iter()
            .map(|id| broker.log().matches(&line(id)).count())
            .collect();
        let output = run(&mut publish, None);
        assert!(output.status.success(), "{publish:?}: {output:?}");
        for (id, count) in [&theirs_id, &ours_id].into_iter().zip(seen) {
            broker.wait_for_log_or_gone(&line(id), count + 1, id);
        }
    }
    (theirs.finish(), ours.finish())
}

#[test]
fn v5_format_fields_and_json_match_mosquitto_sub() {
    let broker = broker();
    let config = scratch_dir("v5-format");
    let cases: &[&[&str]] = &[
        &["-F", "%t|%p|%A|%C|%D|%E|%F|%P|%R|%S"],
        &["-F", "[%5A][%-12C][%.4C][%06E][%-3F][%12R][%.3R][%04S][%P]"],
        &["-F", "%j"],
        &["-F", "%J"],
        &["-F", "%j", "--pretty"],
        &[
            "-D",
            "subscribe",
            "subscription-identifier",
            "42",
            "-F",
            "%S|%t|%P",
        ],
        &[
            "-D",
            "subscribe",
            "subscription-identifier",
            "42",
            "-F",
            "%j",
        ],
        &["-v", "-D", "subscribe", "user-property", "a", "b"],
    ];
    for (publisher, name) in [
        (mosquitto_program("mosquitto_pub"), "mosquitto_pub"),
        (PathBuf::from(WREN_PUB), "wren-pub"),
    ] {
        for (i, args) in cases.iter().enumerate() {
            let prefix = format!("f{}{i}", &name[..1]);
            let (theirs, ours) = subscribe_both(&broker, config.path(), &prefix, args, &publisher);
            let what = format!("wren-sub {args:?}, messages from {name}");
            assert_eq!(
                ours.status.code(),
                theirs.status.code(),
                "exit code of {what}"
            );
            assert_eq!(
                mask_tst(&ours.stdout),
                mask_tst(&theirs.stdout),
                "stdout of {what}"
            );
            assert_eq!(text(&ours.stderr), text(&theirs.stderr), "stderr of {what}");
        }
    }
}

/// Runs a publisher with `args` against `broker`, both programs, and compares
/// everything they print, `-d` lines included.
fn same_publish(broker: &Mosquitto, config: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let (theirs, ours) = pair("pub");
    let port = broker.port().to_string();
    let full: Vec<&str> = [&["-p", &port][..], args].concat();
    let expected = run(command(&theirs, config).args(&full), stdin);
    let actual = run(command(&ours, config).args(&full), stdin);
    assert_same(&expected, &actual, "pub", &format!("pub {args:?}"));
    actual
}

#[test]
fn refused_publishes_warn_and_debug_lines_match_mosquitto_pub() {
    let broker = broker();
    let config = scratch_dir("v5-pub");
    let cases: &[&[&str]] = &[
        // mosquitto's broker knows no authentication method: CONNACK 0x8C.
        &[
            "-V",
            "5",
            "-i",
            "p",
            "-d",
            "-t",
            "ok/a",
            "-m",
            "x",
            "-D",
            "connect",
            "authentication-method",
            "foo",
            "-D",
            "connect",
            "authentication-data",
            "bar",
        ],
        &[
            "-V",
            "5",
            "-i",
            "p",
            "-d",
            "-t",
            "ok/ta",
            "-m",
            "x",
            "--repeat",
            "2",
            "-D",
            "publish",
            "topic-alias",
            "1",
        ],
        &[
            "-V",
            "5",
            "-i",
            "p",
            "-d",
            "-t",
            "ok/ta",
            "-m",
            "x",
            "--repeat",
            "2",
            "-q",
            "1",
            "-D",
            "publish",
            "topic-alias",
            "1",
        ],
        &[
            "-V", "5", "-i", "p", "-d", "-t", "ok/a", "-m", "x", "-q", "1",
        ],
        &[
            "-V", "5", "-i", "p", "-d", "-t", "ok/a", "-m", "x", "-q", "2",
        ],
        &[
            "-V", "5", "-i", "p", "-d", "-t", "ok/a", "-m", "x", "-q", "0",
        ],
        &[
            "-V", "5", "-i", "p", "-d", "-t", "denied/a", "-m", "x", "-q", "1",
        ],
        &[
            "-V", "5", "-i", "p", "-d", "-t", "denied/a", "-m", "x", "-q", "2",
        ],
        &[
            "-V", "5", "-i", "p", "-t", "denied/a", "-m", "x", "-q", "1", "--repeat", "3",
        ],
        &[
            "-V", "5", "-i", "p", "-t", "denied/a", "-m", "x", "-q", "1", "--quiet",
        ],
        &["-i", "p", "-d", "-t", "denied/a", "-m", "x", "-q", "1"],
        &[
            "-i",
            "p",
            "-d",
            "-D",
            "publish",
            "user-property",
            "a",
            "b",
            "-t",
            "ok/b",
            "-m",
            "x",
            "-q",
            "1",
        ],
        &[
            "-i", "p", "-d", "-x", "30", "-V", "mqttv5", "-t", "ok/b", "-m", "x",
        ],
        &["-i", "p", "-d", "-x", "30", "-t", "ok/b", "-m", "x"],
        &[
            "-i",
            "p",
            "-d",
            "-D",
            "publish",
            "content-type",
            "t",
            "-V",
            "311",
            "-t",
            "ok/b",
            "-m",
            "x",
            "-q",
            "1",
        ],
        &[
            "-V", "5", "-i", "p", "-d", "-c", "-t", "ok/c", "-m", "x", "-q", "1",
        ],
        &[
            "-V",
            "5",
            "-i",
            "p",
            "-d",
            "-t",
            "ok/c",
            "-m",
            "x",
            "-q",
            "1",
            "-D",
            "connect",
            "user-property",
            "who",
            "me",
            "-D",
            "connect",
            "request-problem-information",
            "1",
            "-D",
            "disconnect",
            "session-expiry-interval",
            "0",
        ],
    ];
    for args in cases {
        same_publish(&broker, config.path(), args, None);
    }
    same_publish(
        &broker,
        config.path(),
        &["-V", "5", "-i", "p", "-t", "denied/l", "-l", "-q", "1"],
        Some(b"one\ntwo\n"),
    );
    // Properties, then -V 311: mosquitto_pub cannot send them and says so in its
    // own ways (a message is silently not sent; -l stops with exit code 10).
    same_publish(
        &broker,
        config.path(),
        &[
            "-i",
            "p",
            "-d",
            "-D",
            "publish",
            "content-type",
            "t",
            "-V",
            "311",
            "-t",
            "ok/l",
            "-l",
        ],
        Some(b"one\ntwo\n"),
    );
    for args in [
        &["-D", "connect", "user-property", "a", "b", "-V", "311"][..],
        &[
            "-D",
            "will",
            "user-property",
            "a",
            "b",
            "--will-topic",
            "w",
            "-V",
            "311",
        ],
        &[
            "-D",
            "will",
            "user-property",
            "a",
            "b",
            "--will-topic",
            "w",
            "-V",
            "311",
            "--quiet",
        ],
    ] {
        let full = [&["-i", "p", "-d", "-t", "ok/v", "-m", "x"][..], args].concat();
        same_publish(&broker, config.path(), &full, None);
    }
}

#[test]
fn v5_subscription_options_and_debug_lines_match_mosquitto_sub() {
    let broker = broker();
    let config = scratch_dir("v5-sub-debug");
    let (theirs, ours) = pair("sub");
    let port = broker.port().to_string();
    // A retained message: -R asks the broker (Retain Handling 2) not to send it.
    let retained = run(
        command(mosquitto_program("mosquitto_pub"), config.path())
            .args(["-p", &port, "-t", "keep/r", "-m", "kept", "-r", "-q", "1"]),
        None,
    );
    assert!(retained.status.success());
    // -U is compared without -d: mosquitto_sub sends its UNSUBSCRIBE without
    // waiting for the SUBACK, wren-sub after it.
    // With -E the program leaves at the SUBACK, and whether a retained message
    // that follows it gets logged first is a race: -E cases subscribe where
    // nothing is retained, or with -R in MQTT 5, where the broker sends nothing.
    let cases: &[&[&str]] = &[
        &[
            "-V", "5", "-t", "none/#", "-t", "other", "-q", "1", "-d", "-E",
        ],
        &[
            "-V",
            "5",
            "-t",
            "keep/#",
            "-R",
            "--retain-as-published",
            "-d",
            "-E",
        ],
        &["-V", "5", "-t", "keep/#", "-R", "-q", "2", "-d", "-E"],
        &["-t", "none/#", "-R", "--retain-as-published", "-d", "-E"],
        &["-V", "5", "-t", "keep/#", "-d", "-C", "1", "-F", "%t %p %r"],
        &[
            "-V",
            "5",
            "-t",
            "keep/#",
            "--retain-as-published",
            "-d",
            "-C",
            "1",
            "-F",
            "%t %p %r",
        ],
        &[
            "-V",
            "5",
            "-t",
            "keep/#",
            "-D",
            "subscribe",
            "subscription-identifier",
            "9",
            "-d",
            "-C",
            "1",
            "-F",
            "%S",
        ],
        &[
            "-V",
            "5",
            "-t",
            "none/#",
            "-U",
            "other",
            "-D",
            "unsubscribe",
            "user-property",
            "a",
            "b",
            "-E",
        ],
        &[
            "-t",
            "none/#",
            "-U",
            "other",
            "-D",
            "unsubscribe",
            "user-property",
            "a",
            "b",
            "-V",
            "311",
            "-E",
        ],
        &["-V", "5", "-c", "-x", "60", "-t", "none/#", "-d", "-E"],
    ];
    for (n, args) in cases.iter().enumerate() {
        let id = format!("s{n}");
        let full: Vec<&str> = [&["-p", &port, "-i", &id][..], args].concat();
        let expected = run(command(&theirs, config.path()).args(&full), None);
        let actual = run(command(&ours, config.path()).args(&full), None);
        assert_same(&expected, &actual, "sub", &format!("sub {args:?}"));
    }
}

#[test]
fn refused_v5_connections_exit_with_the_reason_code_like_mosquitto() {
    let broker = Mosquitto::with_config("allow_anonymous false\n", &[]);
    let config = scratch_dir("v5-refused");
    let port = broker.port().to_string();
    for tool in ["pub", "sub"] {
        let (theirs, ours) = pair(tool);
        let args: &[&str] = match tool {
            "pub" => &["-V", "5", "-t", "a", "-m", "x", "-i", "r"],
            _ => &["-V", "5", "-t", "a", "-i", "r"],
        };
        let full: Vec<&str> = [&["-p", &port][..], args].concat();
        let expected = run(command(&theirs, config.path()).args(&full), None);
        let actual = run(command(&ours, config.path()).args(&full), None);
        assert_eq!(expected.status.code(), Some(135));
        assert_same(&expected, &actual, tool, &format!("{tool} {args:?}"));
    }
}

/// `-x` (and `-c`) keep an MQTT 5 session on the broker: a QoS 1 message
/// published while the subscriber is away waits for it, as with mosquitto_sub.
#[test]
fn a_session_expiry_keeps_messages_for_an_absent_subscriber_like_mosquitto_sub() {
    let broker = broker();
    let config = scratch_dir("v5-expiry");
    let (theirs, ours) = pair("sub");
    let port = broker.port().to_string();
    for (program, id) in [(&theirs, "keep-mosquitto"), (&ours, "keep-wren")] {
        let topic = format!("{id}/t");
        for session in [&["-x", "300"][..], &["-c"]] {
            let first = run(
                command(program, config.path())
                    .args([
                        "-p", &port, "-V", "5", "-i", id, "-q", "1", "-t", &topic, "-E",
                    ])
                    .args(session),
                None,
            );
            assert!(first.status.success(), "{first:?}");
            let published = run(
                command(mosquitto_program("mosquitto_pub"), config.path())
                    .args(["-p", &port, "-t", &topic, "-m", "waited", "-q", "1"]),
                None,
            );
            assert!(published.status.success());
            let second = run(
                command(program, config.path()).args([
                    "-p", &port, "-V", "5", "-i", id, "-q", "1", "-t", &topic, "-C", "1", "-c",
                ]),
                None,
            );
            assert_eq!(text(&second.stdout), "waited\n", "{program:?} {session:?}");
        }
    }
}

/// Replaces the identifiers mosquitto's broker assigns (`auto-` and a UUID).
fn mask_assigned_ids(output: &[u8]) -> String {
    let text = text(output);
    let mut masked = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("auto-") {
        masked.push_str(&rest[..at]);
        masked.push_str("auto-ID");
        let id_len = rest[at + 5..]
            .find(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            .unwrap_or(rest.len() - at - 5);
        rest = &rest[at + 5 + id_len..];
    }
    masked.push_str(rest);
    masked
}

/// Without `-i`, MQTT 5 lets the broker assign the identifier: `-d` shows
/// `(null)` until the CONNACK names it, as mosquitto's library does.
#[test]
fn an_assigned_client_identifier_shows_in_the_debug_lines_like_mosquitto_pub() {
    let broker = broker();
    let config = scratch_dir("v5-assigned");
    let (theirs, ours) = pair("pub");
    let port = broker.port().to_string();
    let args = [
        "-p", &port, "-V", "5", "-d", "-t", "ok/n", "-m", "x", "-q", "1",
    ];
    let expected = run(command(&theirs, config.path()).args(args), None);
    let actual = run(command(&ours, config.path()).args(args), None);
    assert_eq!(actual.status.code(), expected.status.code());
    assert_eq!(
        mask_assigned_ids(&actual.stdout),
        mask_assigned_ids(&expected.stdout)
    );
    assert!(text(&actual.stdout).contains("Client (null) sending CONNECT\n"));
    assert_eq!(text(&actual.stderr), text(&expected.stderr));
}

/// MQTT 5 allows a password without a user name; 3.1.1 does not. Both tools
/// agree on each.
#[test]
fn a_password_alone_goes_over_mqtt_5_and_is_refused_over_3_1_1_like_mosquitto_pub() {
    let broker = broker();
    let config = scratch_dir("v5-password-alone");
    let (theirs, ours) = pair("pub");
    let port = broker.port().to_string();
    for version in ["5", "311"] {
        let args = [
            "-p", &port, "-V", version, "-P", "token", "-t", "ok/p", "-m", "x",
        ];
        let expected = run(command(&theirs, config.path()).args(args), None);
        let actual = run(command(&ours, config.path()).args(args), None);
        assert_same(
            &expected,
            &actual,
            "pub",
            &format!("-P alone over -V {version}"),
        );
    }
}

/// The will's `-D will` properties reach its subscribers, and over MQTT 5 `-W`
/// leaves with reason code 4 so that the broker publishes the will, as with
/// mosquitto_sub.
#[test]
fn a_will_carries_its_properties_and_w_publishes_it_like_mosquitto_sub() {
    let broker = broker();
    let config = scratch_dir("v5-will");
    let (theirs, ours) = pair("sub");
    let port = broker.port().to_string();
    let mut seen = Vec::new();
    for (program, id) in [(&theirs, "will-mosquitto"), (&ours, "will-wren")] {
        let observer_id = format!("{id}-observer");
        let observer = Running::start(
            command(mosquitto_program("mosquitto_sub"), config.path()).args([
                "-p",
                &port,
                "-V",
                "5",
                "-i",
                &observer_id,
                "-t",
                &format!("{id}/#"),
                "-C",
                "1",
                "-F",
                "%p|%P|%C|%F|%R|%D|%q|%r",
            ]),
        );
        broker.wait_for_log(&format!("Sending SUBACK to {observer_id}\n"), 1);
        let leaving = run(
            command(program, config.path()).args([
                "-p",
                &port,
                "-V",
                "5",
                "-i",
                id,
                "-t",
                "nothing/here",
                "-W",
                "1",
                "--will-topic",
                &format!("{id}/gone"),
                "--will-payload",
                "bye",
                "--will-qos",
                "1",
                "-D",
                "will",
                "payload-format-indicator",
                "1",
                "-D",
                "will",
                "content-type",
                "text/plain",
                "-D",
                "will",
                "response-topic",
                "reply/to",
                "-D",
                "will",
                "correlation-data",
                "xyz",
                "-D",
                "will",
                "user-property",
                "why",
                "timeout",
            ]),
            None,
        );
        let observed = observer.finish();
        seen.push((
            leaving.status.code(),
            text(&leaving.stdout),
            text(&leaving.stderr),
            text(&observed.stdout),
        ));
    }
    assert_eq!(seen[0].0, Some(27));
    assert_eq!(seen[0].3, "bye|why:timeout|text/plain|1|reply/to|xyz|0|0\n");
    assert_eq!(seen[1], seen[0]);
}

/// A one-connection MQTT 5 "broker" that records every packet the client sends:
/// it accepts the CONNECT, acknowledges QoS 1 publishes, grants subscriptions and
/// unsubscriptions, and stops at DISCONNECT.
fn capture(program: &Path, args: &[&str]) -> (Output, Vec<wren::protocol::Packet>) {
    use std::io::{Read, Write};
    use wren::protocol::{ConnAck, Packet, ProtocolVersion, PubAck, ReasonCode, SubAck, UnsubAck};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    let recorder = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut decoder = wren::protocol::Decoder::new().with_version(ProtocolVersion::V5);
        let mut buffer = bytes::BytesMut::new();
        let mut packets = Vec::new();
        let mut chunk = [0u8; 4096];
        // Bounded: at most 100 reads, each within the read timeout.
        for _ in 0..100 {
            while let Some(packet) = decoder.decode(&mut buffer).expect("a valid packet") {
                let answer: Option<Packet> = match &packet {
                    Packet::Connect(_) => Some(
                        ConnAck {
                            session_present: false,
                            code: ReasonCode::SUCCESS,
                            properties: None,
                        }
                        .into(),
                    ),
                    Packet::Publish(p) => p.packet_id.map(|id| PubAck::new(id).into()),
                    Packet::Subscribe(s) => Some(
                        SubAck {
                            packet_id: s.packet_id,
                            reason_codes: s
                                .filters
                                .iter()
                                // Filters under `no/` are refused: Not authorized.
                                .map(|f| match f.filter.as_str().starts_with("no/") {
                                    true => ReasonCode::NOT_AUTHORIZED,
                                    false => ReasonCode(f.qos as u8),
                                })
                                .collect(),
                            properties: None,
                        }
                        .into(),
                    ),
                    Packet::Unsubscribe(u) => {
                        let mut ack = UnsubAck::new(u.packet_id);
                        ack.reason_codes = vec![ReasonCode::SUCCESS; u.filters.len()];
                        Some(ack.into())
                    }
                    _ => None,
                };
                let done = matches!(packet, Packet::Disconnect(_));
                packets.push(packet);
                if let Some(answer) = answer {
                    let mut out = Vec::new();
                    answer
                        .encode_for(ProtocolVersion::V5, &mut out)
                        .expect("encode");
                    // The client may already have gone (mosquitto_sub -E leaves
                    // at the SUBACK, before the UNSUBACK).
                    let _ = stream.write_all(&out);
                }
                if done {
                    return packets;
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return packets,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        packets
    });
    let config = scratch_dir("v5-capture");
    let full: Vec<&str> = [&["-p", &port, "-h", "127.0.0.1"][..], args].concat();
    let output = run(command(program, config.path()).args(&full), None);
    (output, recorder.join().expect("the recorder"))
}

/// What a test compares of a packet: its MQTT 5 properties (and the will's), by
/// kind; user properties in order.
fn properties_sent(packets: &[wren::protocol::Packet]) -> Vec<(String, String)> {
    use wren::protocol::Packet;
    packets
        .iter()
        .flat_map(|packet| {
            let (kind, properties, extra): (&str, wren::protocol::Properties, Option<String>) =
                match packet {
                    Packet::Connect(c) => (
                        "CONNECT",
                        c.properties().clone(),
                        c.will.as_ref().map(|w| format!("will {:?}", w.properties)),
                    ),
                    Packet::Publish(p) => ("PUBLISH", p.properties().clone(), None),
                    Packet::Subscribe(s) => (
                        "SUBSCRIBE",
                        s.properties.as_deref().cloned().unwrap_or_default(),
                        Some(format!("{:?}", s.filters)),
                    ),
                    Packet::Unsubscribe(u) => (
                        "UNSUBSCRIBE",
                        u.properties.as_deref().cloned().unwrap_or_default(),
                        None,
                    ),
                    Packet::Disconnect(d) => (
                        "DISCONNECT",
                        d.properties.as_deref().cloned().unwrap_or_default(),
                        Some(format!("{:?}", d.reason_code)),
                    ),
                    other => (
                        "OTHER",
                        Default::default(),
                        Some(format!("{:?}", other.packet_type())),
                    ),
                };
            [
                Some((kind.to_owned(), format!("{properties:?}"))),
                extra.map(|e| (kind.to_owned(), e)),
            ]
            .into_iter()
            .flatten()
        })
        .collect()
}

/// The properties of `-D`, `-x` and `-c` go out as mosquitto_pub sends them.
#[test]
fn properties_given_with_d_are_sent_as_mosquitto_pub_sends_them() {
    let (theirs, ours) = pair("pub");
    let args: &[&str] = &[
        "-V",
        "5",
        "-i",
        "cap",
        "-t",
        "c/t",
        "-m",
        "hi",
        "-q",
        "1",
        "-x",
        "120",
        "-D",
        "connect",
        "user-property",
        "site",
        "north",
        "-D",
        "connect",
        "request-problem-information",
        "1",
        "-D",
        "connect",
        "request-response-information",
        "1",
        "-D",
        "connect",
        "receive-maximum",
        "7",
        "-D",
        "connect",
        "topic-alias-maximum",
        "3",
        "-D",
        "connect",
        "maximum-packet-size",
        "100000",
        "--will-topic",
        "w/t",
        "--will-payload",
        "bye",
        "-D",
        "will",
        "will-delay-interval",
        "30",
        "-D",
        "will",
        "message-expiry-interval",
        "60",
        "-D",
        "will",
        "content-type",
        "text/plain",
        "-D",
        "will",
        "user-property",
        "w",
        "1",
        "-D",
        "publish",
        "payload-format-indicator",
        "1",
        "-D",
        "publish",
        "message-expiry-interval",
        "90",
        "-D",
        "publish",
        "content-type",
        "application/x",
        "-D",
        "publish",
        "response-topic",
        "re/ply",
        "-D",
        "publish",
        "correlation-data",
        "c0",
        "-D",
        "publish",
        "user-property",
        "a",
        "1",
        "-D",
        "publish",
        "user-property",
        "a",
        "2",
        "-D",
        "disconnect",
        "reason-string",
        "done",
        "-D",
        "disconnect",
        "user-property",
        "d",
        "x",
    ];
    let (theirs_output, theirs_packets) = capture(&theirs, args);
    let (ours_output, ours_packets) = capture(&ours, args);
    assert!(theirs_output.status.success(), "{theirs_output:?}");
    assert!(ours_output.status.success(), "{ours_output:?}");
    assert_eq!(
        properties_sent(&ours_packets),
        properties_sent(&theirs_packets)
    );
    // Without -D: libmosquitto's Receive Maximum of 20, no Maximum Packet Size;
    // -c alone means a session that never expires, -c -x 0 one that ends at once.
    for plain in [
        &["-V", "5", "-i", "cap", "-t", "c/t", "-m", "hi"][..],
        &["-V", "5", "-i", "cap", "-t", "c/t", "-m", "hi", "-c"],
        &[
            "-V", "5", "-i", "cap", "-t", "c/t", "-m", "hi", "-c", "-x", "0",
        ],
        &["-V", "5", "-i", "cap", "-t", "c/t", "-m", "hi", "-x", "∞"],
    ] {
        let (_, theirs_packets) = capture(&theirs, plain);
        let (_, ours_packets) = capture(&ours, plain);
        assert_eq!(
            properties_sent(&ours_packets),
            properties_sent(&theirs_packets),
            "{plain:?}"
        );
    }
}

/// wren-sub's SUBSCRIBE options and properties, and its UNSUBSCRIBE properties,
/// are mosquitto_sub's.
#[test]
fn subscribe_options_and_properties_are_sent_as_mosquitto_sub_sends_them() {
    let (theirs, ours) = pair("sub");
    let args: &[&str] = &[
        "-V",
        "5",
        "-i",
        "cap",
        "-t",
        "s/1",
        "-t",
        "s/2",
        "-q",
        "2",
        "-R",
        "--retain-as-published",
        "-U",
        "s/2",
        "-E",
        "-D",
        "subscribe",
        "subscription-identifier",
        "5",
        "-D",
        "subscribe",
        "user-property",
        "s",
        "p",
        "-D",
        "unsubscribe",
        "user-property",
        "u",
        "p",
    ];
    let (theirs_output, theirs_packets) = capture(&theirs, args);
    let (ours_output, ours_packets) = capture(&ours, args);
    assert!(theirs_output.status.success(), "{theirs_output:?}");
    assert!(ours_output.status.success(), "{ours_output:?}");
    // mosquitto_sub -E sends DISCONNECT at the SUBACK and closes, sometimes
    // before the recorder has answered the UNSUBSCRIBE: whether its DISCONNECT is
    // read is a race, so DISCONNECT is left out here.
    let without_disconnect = |packets: &[wren::protocol::Packet]| {
        let mut sent = properties_sent(packets);
        sent.retain(|(kind, _)| kind != "DISCONNECT");
        sent
    };
    assert_eq!(
        without_disconnect(&ours_packets),
        without_disconnect(&theirs_packets)
    );
    // -C below 20 lowers the Receive Maximum to the count.
    let counted: &[&str] = &["-V", "5", "-i", "cap", "-t", "s/1", "-C", "3", "-W", "1"];
    let (theirs_output, theirs_packets) = capture(&theirs, counted);
    let (ours_output, ours_packets) = capture(&ours, counted);
    assert_eq!(ours_output.status.code(), theirs_output.status.code());
    assert_eq!(
        properties_sent(&ours_packets),
        properties_sent(&theirs_packets)
    );
}

/// A SUBACK that refuses some filters is reported with its reason codes; one that
/// refuses them all ends the run, in mosquitto_sub's words. (With -E as well,
/// mosquitto_sub logs a second DISCONNECT, which wren-sub does not.)
#[test]
fn refused_subscriptions_are_reported_like_mosquitto_sub() {
    let (theirs, ours) = pair("sub");
    for args in [
        &[
            "-V", "5", "-i", "cap", "-d", "-t", "ok/1", "-t", "no/2", "-q", "1", "-E",
        ][..],
        &["-V", "5", "-i", "cap", "-d", "-t", "no/1"],
        &["-V", "5", "-i", "cap", "-t", "no/1", "-t", "no/2"],
        &["-V", "5", "-i", "cap", "-t", "no/1", "--quiet"],
    ] {
        let (expected, _) = capture(&theirs, args);
        let (actual, _) = capture(&ours, args);
        assert_same(&expected, &actual, "sub", &format!("sub {args:?}"));
    }
}

/// Against wren's own broker too, wren-sub prints the MQTT 5 fields of what
/// wren-pub sends as mosquitto_sub prints them. (`%E` is left out: each copy
/// carries the expiry that remains when it leaves the broker; `%j` too, as its
/// properties follow the order of the packet, see `json_properties`.)
#[test]
fn v5_fields_through_wren_broker_match_mosquitto_sub() {
    let broker = common::wren_broker::WrenBroker::start();
    let config = scratch_dir("v5-wren-broker");
    let (theirs_program, ours_program) = pair("sub");
    let port = broker.port().to_string();
    let format = "%t|%p|%A|%C|%D|%F|%P|%R|%S|%q|%r";
    // Not the message with a Message Expiry Interval of 0: wren's broker treats it
    // as expired at once, where mosquitto's delivers it to those subscribed.
    let messages = &MESSAGES[..3];
    let start = |program: &Path, id: &str| {
        Running::start(
            command(program, config.path())
                .args(["-p", &port, "-V", "5", "-q", "2", "-i", id, "-t", "w/#"])
                .args(["-D", "subscribe", "subscription-identifier", "3"])
                .args(["-C", &messages.len().to_string(), "-F", format]),
        )
    };
    let theirs = start(&theirs_program, "wb-mosquitto");
    let ours = start(&ours_program, "wb-wren");
    for id in ["wb-mosquitto", "wb-wren"] {
        broker.wait_until(&format!("{id} subscribed"), |b| b.subscribed(id) >= 1);
    }
    for (i, message) in messages.iter().enumerate() {
        let mut publish = command(WREN_PUB, config.path());
        publish
            .args(["-p", &port, "-V", "5", "-i", &format!("wb-pub{i}")])
            .args(["-t", &format!("w/{}", message.topic)])
            .args(["-q", &message.qos.to_string()])
            .args(message.args);
        if message.payload.is_empty() {
            publish.arg("-n");
        } else {
            publish.args(["-m", message.payload]);
        }
        let output = run(&mut publish, None);
        assert!(output.status.success(), "{publish:?}: {output:?}");
        // One message at a time, so that both see the same order.
        for id in ["wb-mosquitto", "wb-wren"] {
            broker.wait_until(&format!("{id} has message {i}"), |b| {
                b.delivered(id) > i || b.gone(id) > 0
            });
        }
        broker.wait_until_settled();
    }
    let (theirs, ours) = (theirs.finish(), ours.finish());
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_eq!(text(&ours.stdout), text(&theirs.stdout));
    assert_eq!(text(&ours.stderr), text(&theirs.stderr));
    assert!(text(&ours.stdout).contains("|3|"), "{}", text(&ours.stdout));
}

/// A broker that closes the connection on a message it will not take: over
/// MQTT 3.1.1 a QoS above its `max_qos`. mosquitto_pub says the connection was
/// lost and exits with 7, its MOSQ_ERR_CONN_LOST.
#[test]
fn a_connection_lost_while_publishing_exits_7_like_mosquitto_pub() {
    let broker = Mosquitto::with_config("allow_anonymous true\nmax_qos 1\n", &[]);
    let config = scratch_dir("v5-lost");
    let output = same_publish(
        &broker,
        config.path(),
        &["-i", "lost", "-d", "-t", "a", "-m", "x", "-q", "2"],
        None,
    );
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(text(&output.stderr), "Error: The connection was lost.\n");
}
