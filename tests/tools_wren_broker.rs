//! Golden tests against wren's own broker: wren-sub prints what mosquitto_sub
//! prints, and wren-pub sends what mosquitto_pub sends, when both talk to
//! wren-broker instead of mosquitto.
//!
//! The broker is embedded in the test; a recording hook tells when a subscriber
//! has subscribed and when a message has reached it, and the broker's counters
//! tell when every QoS 1 and 2 handshake is over. What legitimately differs
//! between the two brokers (the `-d` trace, assigned client ids, timing) is not
//! compared.

mod common;
mod tools_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::wren_broker::WrenBroker;
use tools_support::{command, mosquitto_program, run, scratch_dir, Running};
use wren::broker::{AuthDecision, ConnectInfo, Hook, HookError};
use wren::protocol::{ConnectReturnCode, QoS};

fn wren_sub() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wren-sub"))
}

fn wren_pub() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wren-pub"))
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// One message: topic under the case's prefix, payload, QoS, retain.
type Message = (&'static str, &'static [u8], u8, bool);

/// Published before the subscribers connect.
const RETAINED: &[Message] = &[
    ("r1", b"retained one", 1, true),
    ("rbin", b"\x00\x01\xfe\xff", 0, true),
];

/// Published once both subscribers have subscribed, one at a time.
const LIVE: &[Message] = &[
    ("text", b"hello world", 0, false),
    ("bin", b"\x00\xff\n\x1b\"\\", 1, false),
    ("empty", b"", 2, false),
    ("json", br#"{"a":[1,2.5],"b":"x"}"#, 1, false),
    (
        "long",
        b"a somewhat longer payload that runs past every field width used here",
        2,
        false,
    ),
];

const ALL: usize = RETAINED.len() + LIVE.len();

struct SubCase {
    name: &'static str,
    args: &'static [&'static str],
    count: Option<usize>,
    live: bool,
}

const fn sub(name: &'static str, args: &'static [&'static str], count: usize) -> SubCase {
    SubCase {
        name,
        args,
        count: Some(count),
        live: true,
    }
}

struct Tools {
    broker: WrenBroker,
    config: tempfile::TempDir,
}

impl Tools {
    fn new(test: &str) -> Tools {
        Tools::with_hooks(test, Vec::new())
    }

    fn with_hooks(test: &str, hooks: Vec<Arc<dyn Hook>>) -> Tools {
        Tools {
            broker: WrenBroker::with_hooks(hooks),
            config: scratch_dir(&format!("wren-{test}-config")),
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = command(program, &self.config);
        command.args(["-h", "127.0.0.1", "-p", &self.broker.port().to_string()]);
        command
    }

    fn publish(&self, prefix: &str, (topic, payload, level, retain): &Message) {
        self.broker
            .publish(
                &format!("{prefix}/{topic}"),
                payload.to_vec(),
                qos(*level),
                *retain,
            )
            .expect("the embedded broker takes the message");
    }

    fn start_sub(&self, program: &Path, id: &str, prefix: &str, case: &SubCase) -> Running {
        let mut subscriber = self.command(program);
        subscriber
            .args(["-t", &format!("{prefix}/#"), "-i", id, "-q", "2"])
            .args(case.args);
        if let Some(count) = case.count {
            subscriber.args(["-C", &count.to_string()]);
        }
        Running::start(&mut subscriber)
    }

    /// Runs one subscriber case with both programs; returns (mosquitto's, ours).
    fn run_sub_case(&self, index: usize, case: &SubCase) -> (Output, Output) {
        let prefix = format!("c{index}");
        for message in RETAINED {
            self.publish(&prefix, message);
        }
        let ids = [format!("{prefix}-mosquitto"), format!("{prefix}-wren")];
        let theirs = self.start_sub(&mosquitto_program("mosquitto_sub"), &ids[0], &prefix, case);
        let ours = self.start_sub(&wren_sub(), &ids[1], &prefix, case);
        for id in &ids {
            self.broker
                .wait_until(&format!("{id} subscribe"), |b| b.subscribed(id) >= 1);
        }
        if case.live {
            for message in LIVE {
                // One message at a time, each fully delivered to both before the
                // next: a QoS 2 message is printed a round trip later than a QoS 0
                // one, so otherwise the order would be left to chance.
                let before: Vec<usize> = ids.iter().map(|id| self.broker.delivered(id)).collect();
                self.publish(&prefix, message);
                for (id, before) in ids.iter().zip(before) {
                    self.broker.wait_until(&format!("a delivery to {id}"), |b| {
                        b.delivered(id) > before || b.gone(id) > 0
                    });
                }
                self.broker.wait_until_settled();
            }
        }
        (theirs.finish(), ours.finish())
    }
}

fn assert_same(what: &str, theirs: &Output, ours: &Output) {
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "exit code, {what}: our stderr {:?}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout),
        "stdout, {what}"
    );
    assert_eq!(ours.stdout, theirs.stdout, "stdout bytes, {what}");
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&theirs.stderr),
        "stderr, {what}"
    );
}

fn compare_sub(tools: &Tools, cases: &[SubCase]) {
    for (index, case) in cases.iter().enumerate() {
        let (theirs, ours) = tools.run_sub_case(index, case);
        assert_same(case.name, &theirs, &ours);
    }
}

#[test]
fn wren_sub_prints_what_mosquitto_sub_prints() {
    let tools = Tools::new("sub-output");
    compare_sub(
        &tools,
        &[
            sub("plain", &[], ALL),
            sub("verbose", &["-v"], ALL),
            sub("no end of line", &["-v", "-N"], ALL),
            sub(
                "format fields",
                &["-F", "%t|%p|%q|%r|%l|%%|%x|%X|\\t|\\\\"],
                ALL,
            ),
            sub("format widths", &["-F", "[%10t][%-6l][%05q]"], ALL),
            sub("requested QoS 0", &["-q", "0", "-v"], ALL),
            sub("requested QoS 1", &["-q", "1", "-v"], ALL),
            sub("count", &["-v"], 3),
            sub("no retained", &["-v", "-R"], LIVE.len()),
            SubCase {
                name: "retained only",
                // Ends at the first message that is not retained.
                args: &["-v", "--retained-only"],
                count: None,
                live: true,
            },
            SubCase {
                name: "exit after subscribing",
                args: &["-E"],
                count: None,
                live: false,
            },
        ],
    );
}

#[test]
fn timeout_exit_code_matches_mosquitto_sub() {
    let tools = Tools::new("sub-timeout");
    let outputs: Vec<Output> = [mosquitto_program("mosquitto_sub"), wren_sub()]
        .iter()
        .map(|program| {
            let mut subscriber = tools.command(program);
            subscriber.args(["-t", "nothing/here", "-W", "1"]);
            run(&mut subscriber, None)
        })
        .collect();
    assert_ne!(outputs[0].status.code(), Some(0), "-W ends with an error");
    assert_same("-W 1", &outputs[0], &outputs[1]);
}

#[test]
fn remove_retained_clears_like_mosquitto_sub() {
    let tools = Tools::new("sub-remove-retained");
    for (prefix, program) in [("m", mosquitto_program("mosquitto_sub")), ("w", wren_sub())] {
        for message in RETAINED {
            tools.publish(prefix, message);
        }
        // The embedded broker takes a publication asynchronously.
        let kept = RETAINED.len() as u64;
        tools.broker.wait_until("the retained messages", |b| {
            b.stats().retained_messages == kept
        });
        let mut subscriber = tools.command(&program);
        subscriber.args([
            "-t",
            &format!("{prefix}/#"),
            "--remove-retained",
            "-v",
            "-C",
            "2",
        ]);
        let mut running = Running::start(&mut subscriber);
        tools
            .broker
            .wait_until(&format!("{program:?} remove the retained messages"), |b| {
                b.stats().retained_messages == 0
            });
        if program == wren_sub() {
            let output = running.finish();
            assert!(output.status.success(), "{output:?}");
        } else {
            // mosquitto_sub 2.0 sends DISCONNECT after `-C` with --remove-retained
            // but then waits forever (against either broker): only what it did to
            // the broker is compared.
            running.kill();
        }
    }
}

/// What a subscriber inside the broker received: (topic, payload, QoS, retain).
type Received = (String, Vec<u8>, u8, bool);

fn receive(subscription: &wren::broker::Subscription, prefix: &str, n: usize) -> Vec<Received> {
    (0..n)
        .map(|i| {
            let publish = subscription
                .recv_timeout(Duration::from_secs(15))
                .unwrap_or_else(|e| panic!("message {i} of {n}: {e}"))
                .unwrap_or_else(|| panic!("message {i} of {n} never came"));
            let topic = publish.topic.as_str();
            (
                topic.strip_prefix(prefix).unwrap_or(topic).to_string(),
                publish.payload.to_vec(),
                publish.qos as u8,
                publish.retain,
            )
        })
        .collect()
}

struct PubCase<'a> {
    name: &'static str,
    args: &'a [&'a str],
    stdin: Option<&'static [u8]>,
    messages: usize,
}

#[test]
fn wren_pub_sends_what_mosquitto_pub_sends() {
    let tools = Tools::new("pub-messages");
    let files = scratch_dir("wren-pub-messages-files");
    let payload_file = files.path().join("payload");
    std::fs::write(&payload_file, b"\x00file\xff\npayload\n").expect("cannot write a file");
    let file_arg = payload_file.display().to_string();
    let cases = [
        PubCase {
            name: "message QoS 0",
            args: &["-m", "hello"],
            stdin: None,
            messages: 1,
        },
        PubCase {
            name: "message QoS 1",
            args: &["-m", "hello one", "-q", "1"],
            stdin: None,
            messages: 1,
        },
        PubCase {
            name: "message QoS 2",
            args: &["-m", "hello two", "-q", "2"],
            stdin: None,
            messages: 1,
        },
        PubCase {
            name: "null message",
            args: &["-n", "-q", "1"],
            stdin: None,
            messages: 1,
        },
        PubCase {
            name: "file",
            args: &["-f", &file_arg, "-q", "2"],
            stdin: None,
            messages: 1,
        },
        PubCase {
            name: "stdin whole",
            args: &["-s", "-q", "1"],
            stdin: Some(b"\x00binary\nstdin\xff"),
            messages: 1,
        },
        PubCase {
            name: "stdin lines",
            args: &["-l", "-q", "1"],
            stdin: Some(b"one\ntwo\n\nlast without newline"),
            messages: 4,
        },
    ];
    for (index, case) in cases.iter().enumerate() {
        let mut received = Vec::new();
        for (side, program) in [("m", mosquitto_program("mosquitto_pub")), ("w", wren_pub())] {
            let prefix = format!("p{index}{side}");
            let subscription = tools
                .broker
                .subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce)
                .expect("an inline subscription");
            let mut publisher = tools.command(&program);
            publisher
                .args(["-t", &format!("{prefix}/t")])
                .args(case.args);
            let output = run(&mut publisher, case.stdin);
            received.push((output, receive(&subscription, &prefix, case.messages)));
        }
        let (theirs, ours) = (&received[0], &received[1]);
        assert_same(case.name, &theirs.0, &ours.0);
        assert_eq!(ours.1, theirs.1, "messages, case {}", case.name);
    }
}

#[test]
fn retain_flag_matches_mosquitto_pub() {
    let tools = Tools::new("pub-retain");
    let mut seen = Vec::new();
    for (prefix, program) in [("m", mosquitto_program("mosquitto_pub")), ("w", wren_pub())] {
        let topic = format!("{prefix}/kept");
        let mut publisher = tools.command(&program);
        publisher.args(["-t", &topic, "-m", "kept", "-q", "1", "-r"]);
        let output = run(&mut publisher, None);
        assert!(output.status.success(), "{program:?}: {output:?}");
        // Subscribing afterwards proves the broker kept it.
        let subscription = tools
            .broker
            .subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce)
            .expect("an inline subscription");
        seen.push(receive(&subscription, prefix, 1));
    }
    assert_eq!(seen[1], seen[0]);
    assert!(seen[0][0].3, "a retained message comes flagged retained");
}

#[test]
fn wills_match_mosquitto() {
    let tools = Tools::new("wills");
    let mut wills = Vec::new();
    for (prefix, program) in [("m", mosquitto_program("mosquitto_sub")), ("w", wren_sub())] {
        let subscription = tools
            .broker
            .subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce)
            .expect("an inline subscription");
        let id = format!("{prefix}-will");
        let mut subscriber = tools.command(&program);
        subscriber.args([
            "-t",
            "will/unused",
            "-i",
            &id,
            "--will-topic",
            &format!("{prefix}/will"),
            "--will-payload",
            "gone \u{e9}",
            "--will-qos",
            "1",
            "--will-retain",
        ]);
        let mut running = Running::start(&mut subscriber);
        tools
            .broker
            .wait_until(&format!("{id} subscribe"), |b| b.subscribed(&id) >= 1);
        // Killed, so the connection drops without DISCONNECT and the will goes out.
        running.kill();
        wills.push(receive(&subscription, prefix, 1));
    }
    assert_eq!(wills[1], wills[0]);
}

/// Refuses every client, as a broker with a password file refuses strangers.
struct RefuseAll;

impl Hook for RefuseAll {
    fn authenticate(&self, _: &ConnectInfo) -> Result<AuthDecision, HookError> {
        Ok(AuthDecision::Deny(ConnectReturnCode::NotAuthorized))
    }
}

#[test]
fn refused_connection_matches_mosquitto() {
    let tools = Tools::with_hooks("refused", vec![Arc::new(RefuseAll)]);
    let pairs = [
        (
            mosquitto_program("mosquitto_sub"),
            wren_sub(),
            ["-t", "a/b"],
        ),
        (
            mosquitto_program("mosquitto_pub"),
            wren_pub(),
            ["-t", "a/b"],
        ),
    ];
    for (theirs, ours, args) in pairs {
        let outputs: Vec<Output> = [&theirs, &ours]
            .iter()
            .map(|program| {
                let mut client = tools.command(program);
                client.args(args).args(["-u", "stranger", "-P", "wrong"]);
                if program.ends_with("mosquitto_pub") || program.ends_with("wren-pub") {
                    client.args(["-m", "refused"]);
                }
                run(&mut client, None)
            })
            .collect();
        assert_ne!(outputs[0].status.code(), Some(0), "{theirs:?} is refused");
        assert_same(&format!("{ours:?} refused"), &outputs[0], &outputs[1]);
    }
}

#[test]
fn tls_listener_serves_wren_sub_and_wren_pub() {
    // Fresh keys each run, in a directory of their own.
    let dir = scratch_dir("wren-tls-certs");
    let (ca, cert, key) = common::certs::write(&common::certs::pem(), dir.path());
    let broker = WrenBroker::with_tls(&cert, &key);
    let config = scratch_dir("wren-tls-config");
    let port = broker.port().to_string();
    let tls = |program: PathBuf| {
        let mut command = command(program, &config);
        command
            .args(["-h", "127.0.0.1", "-p", &port, "--cafile"])
            .arg(&ca);
        command
    };
    let mut subscriber = tls(wren_sub());
    subscriber.args(["-t", "secure/#", "-v", "-C", "1", "-i", "tls-sub"]);
    let running = Running::start(&mut subscriber);
    broker.wait_until("tls-sub subscribe", |b| b.subscribed("tls-sub") >= 1);
    let mut publisher = tls(wren_pub());
    publisher.args(["-t", "secure/topic", "-m", "over tls", "-q", "1"]);
    let published = run(&mut publisher, None);
    assert!(
        published.status.success(),
        "wren-pub over TLS: {published:?}"
    );
    let received = running.finish();
    assert!(received.status.success(), "wren-sub over TLS: {received:?}");
    assert_eq!(
        String::from_utf8_lossy(&received.stdout),
        "secure/topic over tls\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
