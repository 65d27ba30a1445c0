//! `wren-pub`: publish MQTT messages, as mosquitto_pub does: same options, same
//! messages, same exit codes.
//!
//! ```text
//! wren-pub -h broker.local -t lights/kitchen -m on -q 1 -r
//! tail -f app.log | wren-pub -t logs/app -l
//! ```

#[path = "../common/mod.rs"]
mod common;
// What is wren-pub's own: its options, its help text and where its messages come
// from.
mod input;
mod options;
mod usage;

use std::collections::VecDeque;
use std::io;
use std::process::ExitCode;
use std::time::Duration;

use wren::client::{Client, Error, Pending, Publish, Reconnect};
use wren::protocol::{Properties, ProtocolVersion, QoS};

use common::cli::{self, to_properties, ArgError, ConnectArgs, ToolOptions};
use common::connect::{self, Goodbye};
use common::exit::{self, Reporter};
use input::Lines;
use options::{PubOptions, Source};

/// How many unacknowledged `-l` messages are kept before waiting for the oldest.
/// The client bounds what is in flight; this bounds what we hold on to.
const PENDING_LIMIT: usize = 1024;

/// The line mosquitto_pub adds after `Connection error: ...` when the broker
/// refuses the connection (mosquitto_sub adds none).
const REFUSED_NOTE: &str = "Error: The connection was refused.\n";

/// mosquitto's `MOSQ_ERR_CONN_LOST`, the exit code when the connection ends
/// before the message is through.
const CONNECTION_LOST: u8 = 7;

/// mosquitto's `MOSQ_ERR_NOT_SUPPORTED`, the exit code of `-l` when the messages
/// cannot be sent as asked.
const NOT_SUPPORTED: u8 = 10;

fn main() -> ExitCode {
    match cli::from_env::<PubOptions>(usage::usage, usage::version) {
        Ok((connect, options)) => exit::code(run(&connect, &options)),
        Err(code) => code,
    }
}

/// What to publish, once the input has been read.
enum Payload {
    /// One message, sent `--repeat` times.
    Once(Vec<u8>),
    /// One message per line of stdin.
    Lines,
}

/// Reads the input, connects, publishes; returns the exit code.
fn run(args: &ConnectArgs, options: &PubOptions) -> u8 {
    let report = Reporter::new(args.quiet);
    // As in mosquitto_pub, -f and -s are read before anything else is checked.
    let payload = match &options.source {
        Some(Source::Message(message)) => Some(Payload::Once(message.clone())),
        Some(Source::Null) => Some(Payload::Once(Vec::new())),
        Some(Source::File(path)) => match input::read_file(path) {
            Ok(contents) => Some(Payload::Once(contents)),
            Err(text) => {
                report.error(&text);
                return exit::FAILURE;
            }
        },
        Some(Source::Stdin) => match input::read_all(io::stdin().lock()) {
            Ok(contents) => Some(Payload::Once(contents)),
            Err(text) => {
                report.error(&text);
                return exit::FAILURE;
            }
        },
        Some(Source::StdinLines) => Some(Payload::Lines),
        None => None,
    };
    let (Some(topic), Some(payload)) = (&options.topic, payload) else {
        let error = ArgError::bare("Error: Both topic and message must be supplied.\n");
        eprint!("{}", error.render(PubOptions::NAME));
        print!("{}", usage::usage());
        return exit::FAILURE;
    };
    common::debug::init(args.debug);
    // mosquitto_pub keeps a -l session alive across broker restarts; a single
    // message is simply reported as failed.
    let reconnect = match payload {
        Payload::Lines => Reconnect::default(),
        Payload::Once(_) => Reconnect::disabled(),
    };
    let client = match connect::connect(args, reconnect, Some(REFUSED_NOTE), &report) {
        Ok(client) => client,
        Err(code) => return code,
    };
    if args.protocol != ProtocolVersion::V5 && !args.properties.publish.is_empty() {
        // `-D publish` and then -V 3.x: mosquitto_pub's library refuses each
        // PUBLISH. A single message is silently not sent; -l stops at once, with
        // mosquitto's "not supported" error code, without DISCONNECT.
        if let Payload::Lines = payload {
            report.error("Error: This feature is not supported.\n");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            std::process::exit(i32::from(NOT_SUPPORTED));
        }
        let _ = client.disconnect();
        return exit::SUCCESS;
    }
    let template = Template {
        topic: topic.as_str(),
        qos: options.qos.unwrap_or(args.qos),
        retain: options.retain,
        properties: to_properties(&args.properties.publish),
    };
    let result = match payload {
        Payload::Once(message) => publish_repeatedly(&client, &template, message, options, &report),
        Payload::Lines => publish_lines(&client, &template, io::stdin().lock(), &report),
    };
    let code = match result {
        Ok(()) => exit::SUCCESS,
        Err(Error::Disconnected(_) | Error::Io { .. } | Error::DisconnectedByBroker { .. }) => {
            // The broker closed the connection (or it broke) before the message
            // was through: mosquitto_pub's MOSQ_ERR_CONN_LOST.
            report.error("Error: The connection was lost.\n");
            CONNECTION_LOST
        }
        Err(e) => {
            report.error(&format!("Error: {e}\n"));
            exit::FAILURE
        }
    };
    // DISCONNECT waits for what is still in flight.
    let _ = Goodbye::new(args).send(&client, false);
    code
}

/// What every message of this run has in common: topic, QoS, retain flag and the
/// MQTT 5 properties of `-D publish`.
struct Template<'a> {
    topic: &'a str,
    qos: QoS,
    retain: bool,
    properties: Properties,
}

impl Template<'_> {
    /// The message with `payload`.
    fn message(&self, payload: impl Into<bytes::Bytes>) -> Publish {
        let p = &self.properties;
        let mut message = Publish::new(self.topic, payload)
            .qos(self.qos)
            .retain(self.retain);
        if p.payload_format_indicator == Some(1) {
            message = message.utf8_payload();
        }
        if let Some(expiry) = p.message_expiry_interval {
            message = message.message_expiry(Duration::from_secs(u64::from(expiry)));
        }
        if let Some(content_type) = &p.content_type {
            message = message.content_type(content_type.as_str());
        }
        if let Some(topic) = &p.response_topic {
            message = message.response_topic(topic.as_str());
        }
        if let Some(data) = &p.correlation_data {
            message = message.correlation_data(data.clone());
        }
        for (name, value) in &p.user_properties {
            message = message.user_property(name.as_str(), value.as_str());
        }
        message
    }
}

/// mosquitto_pub's message ids: one per message, from 1, as its library numbers
/// every PUBLISH (QoS 0 included).
struct MessageIds(u16);

impl MessageIds {
    fn next(&mut self) -> u16 {
        self.0 = if self.0 == u16::MAX { 1 } else { self.0 + 1 };
        self.0
    }
}

/// How one publish ended: a refusal by an MQTT 5 broker (a PUBACK or PUBREC
/// reason code of 0x80 or more) is a warning, as with mosquitto_pub, and the run
/// goes on; any other failure ends it.
fn settle(result: Result<(), Error>, mid: u16, report: &Reporter) -> Result<(), Error> {
    match result {
        Err(Error::PublishRefused(code)) => {
            report.error(&format!(
                "Warning: Publish {mid} failed: {}.\n",
                connect::reason_string(code)
            ));
            Ok(())
        }
        other => other,
    }
}

/// `-m`, `-f`, `-s`, `-n`: one message, `--repeat` times, `--repeat-delay` apart
/// (counted from each acknowledgement, as in mosquitto_pub).
fn publish_repeatedly(
    client: &Client,
    template: &Template<'_>,
    message: Vec<u8>,
    options: &PubOptions,
    report: &Reporter,
) -> Result<(), Error> {
    let message = bytes::Bytes::from(message);
    let mut ids = MessageIds(0);
    for sent in 1..=options.repeat {
        let mid = ids.next();
        settle(client.send(template.message(message.clone())), mid, report)?;
        if sent < options.repeat && !options.repeat_delay.is_zero() {
            // The delay is the feature here: the user asked for the gap.
            std::thread::sleep(options.repeat_delay);
        }
    }
    Ok(())
}

/// `-l`: a message per line, sent as lines arrive without waiting for each
/// acknowledgement; every one is acknowledged before returning.
fn publish_lines(
    client: &Client,
    template: &Template<'_>,
    input: impl io::BufRead,
    report: &Reporter,
) -> Result<(), Error> {
    let mut pending: VecDeque<(u16, Pending)> = VecDeque::new();
    let mut ids = MessageIds(0);
    for line in Lines::new(input) {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                report.error(&format!("Error: cannot read stdin: {e}\n"));
                break;
            }
        };
        let mid = ids.next();
        match client.send_nowait(template.message(line)) {
            Ok(publish) => pending.push_back((mid, publish)),
            // A QoS 0 line while reconnecting is lost, as with mosquitto_pub.
            Err(Error::Disconnected(_)) => {
                report.error("Warning: not connected; a line was not sent.\n");
            }
            Err(e) => return Err(e),
        }
        if pending.len() > PENDING_LIMIT {
            if let Some((mid, oldest)) = pending.pop_front() {
                settle(oldest.wait(), mid, report)?;
            }
        }
    }
    for (mid, publish) in pending {
        settle(publish.wait(), mid, report)?;
    }
    Ok(())
}
