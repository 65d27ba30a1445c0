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

use wren::client::{Client, Error, Pending, Reconnect};

use common::cli::{self, ArgError, ConnectArgs, ToolOptions};
use common::connect;
use common::exit::{self, Reporter};
use input::Lines;
use options::{PubOptions, Source};

/// How many unacknowledged `-l` messages are kept before waiting for the oldest.
/// The client bounds what is in flight; this bounds what we hold on to.
const PENDING_LIMIT: usize = 1024;

/// The line mosquitto_pub adds after `Connection error: ...` when the broker
/// refuses the connection (mosquitto_sub adds none).
const REFUSED_NOTE: &str = "Error: The connection was refused.\n";

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
    let topic = topic.as_str();
    let result = match payload {
        Payload::Once(message) => publish_repeatedly(&client, topic, message, args, options),
        Payload::Lines => publish_lines(&client, topic, io::stdin().lock(), args, options, &report),
    };
    let code = match result {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            report.error(&format!("Error: {e}\n"));
            exit::FAILURE
        }
    };
    // DISCONNECT waits for what is still in flight.
    let _ = client.disconnect();
    code
}

/// `-m`, `-f`, `-s`, `-n`: one message, `--repeat` times, `--repeat-delay` apart
/// (counted from each acknowledgement, as in mosquitto_pub).
fn publish_repeatedly(
    client: &Client,
    topic: &str,
    message: Vec<u8>,
    args: &ConnectArgs,
    options: &PubOptions,
) -> Result<(), Error> {
    let message = bytes::Bytes::from(message);
    let qos = options.qos.unwrap_or(args.qos);
    for sent in 1..=options.repeat {
        client.publish(topic, message.clone(), qos, options.retain)?;
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
    topic: &str,
    input: impl io::BufRead,
    args: &ConnectArgs,
    options: &PubOptions,
    report: &Reporter,
) -> Result<(), Error> {
    let qos = options.qos.unwrap_or(args.qos);
    let mut pending: VecDeque<Pending> = VecDeque::new();
    for line in Lines::new(input) {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                report.error(&format!("Error: cannot read stdin: {e}\n"));
                break;
            }
        };
        match client.publish_nowait(topic, line, qos, options.retain) {
            Ok(publish) => pending.push_back(publish),
            // A QoS 0 line while reconnecting is lost, as with mosquitto_pub.
            Err(Error::Disconnected(_)) => {
                report.error("Warning: not connected; a line was not sent.\n");
            }
            Err(e) => return Err(e),
        }
        if pending.len() > PENDING_LIMIT {
            if let Some(oldest) = pending.pop_front() {
                oldest.wait()?;
            }
        }
    }
    for publish in pending {
        publish.wait()?;
    }
    Ok(())
}
