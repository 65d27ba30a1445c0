//! `wren-sub`: subscribe to MQTT topics and print the messages, as mosquitto_sub
//! does: same options, same output byte for byte, same exit codes.
//!
//! ```text
//! wren-sub -h broker.local -t 'sensors/#' -v
//! wren-sub -t 'a/#' -F '%I %t %p' -C 10
//! ```

#[path = "../common/mod.rs"]
mod common;
// What is wren-sub's own: its options, its help text and how it prints messages.
mod clock;
mod filter;
mod json;
mod options;
mod output;
mod signals;
mod usage;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wren::client::{Client, Error, QoS, Reconnect, Subscription};
use wren::protocol::{ProtocolVersion, RetainHandling, SubscribeFilter};

use clock::Now;
use common::cli::to_properties;
use common::cli::{self, ConnectArgs};
use common::connect::{self, Goodbye};
use common::exit::{self, Reporter};
use filter::{Decision, MessageFilter};
use options::SubOptions;
use output::Delivery;
use signals::Interrupt;

/// The exit code when `-W` runs out: mosquitto's `MOSQ_ERR_TIMEOUT`.
const TIMED_OUT: u8 = 27;

fn main() -> ExitCode {
    match cli::from_env::<SubOptions>(usage::usage, usage::version) {
        Ok((mut connect, options)) => {
            // mosquitto_sub asks for no more unacknowledged messages than it will
            // print.
            if let Some(count) = options.count.filter(|&c| c < 20) {
                connect.receive_maximum = count as u16;
            }
            exit::code(run(&connect, &options))
        }
        Err(code) => code,
    }
}

/// Connects, subscribes and prints until told to stop; returns the exit code.
fn run(args: &ConnectArgs, options: &SubOptions) -> u8 {
    let report = Reporter::new(args.quiet);
    common::debug::init(args.debug);
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(e) => {
            report.error(&format!("Error: cannot watch for signals: {e}\n"));
            return exit::FAILURE;
        }
    };
    // Like mosquitto_sub, keep reconnecting for as long as it takes.
    let client = match connect::connect(args, Reconnect::default(), None, &report) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let goodbye = Goodbye::new(args);
    interrupt.arm(client.clone(), goodbye.clone());
    let leave = |code: u8, with_will: bool| {
        // Already disconnected (by a signal, or the broker went away for good): fine.
        let _ = goodbye.send(&client, with_will);
        code
    };
    // -W counts from the connection, as mosquitto's alarm does.
    let deadline = options.timeout.map(|timeout| Instant::now() + timeout);

    let properties = match args.protocol {
        ProtocolVersion::V5 => to_properties(&args.properties.subscribe),
        _ => Default::default(),
    };
    let filters = subscribe_filters(args, options);
    let count = filters.len();
    let subscription = match client.subscribe_with(filters, properties) {
        Ok(subscription) => subscription,
        Err(Error::SubscriptionRefused { code, .. }) => {
            if args.debug && !args.quiet {
                // Every filter was refused; the error carries the first code, and
                // mosquitto_sub's SUBSCRIBE is the first packet with an id.
                let codes = vec![code.0.to_string(); count];
                println!("Subscribed (mid: 1): {}", codes.join(", "));
            }
            let code = leave(exit::SUCCESS, false);
            report.error("All subscription requests were denied.\n");
            return code;
        }
        Err(e) => return fail(&report, &interrupt, &e, leave),
    };
    if args.debug && !args.quiet {
        // mosquitto_sub's line after the SUBACK: the SUBSCRIBE's id and the code
        // (the QoS granted, or why not) for each filter.
        let codes: Vec<String> = subscription
            .reason_codes()
            .iter()
            .map(|code| code.0.to_string())
            .collect();
        let id = subscription.packet_id().map_or(0, |id| id.get());
        println!("Subscribed (mid: {id}): {}", codes.join(", "));
    }
    // One UNSUBSCRIBE per -U, in order, as mosquitto_sub sends them; none when
    // `-D unsubscribe` gave properties that MQTT 3.x cannot carry (mosquitto's
    // library refuses them, silently).
    let unsubscribe =
        if args.protocol == ProtocolVersion::V5 || args.properties.unsubscribe.is_empty() {
            &options.unsubscribe[..]
        } else {
            &[]
        };
    for filter in unsubscribe {
        let properties = match args.protocol {
            ProtocolVersion::V5 => to_properties(&args.properties.unsubscribe),
            _ => Default::default(),
        };
        if let Err(e) = client.unsubscribe_with(&[filter.as_str()], properties) {
            return fail(&report, &interrupt, &e, leave);
        }
    }
    if options.exit_after_subscribe {
        return leave(exit::SUCCESS, false);
    }
    let code = receive(
        &client,
        &subscription,
        options,
        deadline,
        &report,
        &interrupt,
    );
    // -W ends as a signal does: in MQTT 5 the will is published.
    leave(code, code == TIMED_OUT)
}

/// The filters to subscribe to, with MQTT 5's subscription options: Retain As
/// Published for `--retain-as-published`, and for `-R` Retain Handling 2 (the
/// broker sends no retained messages), as mosquitto_sub asks. MQTT 3.1.1 has no
/// options.
fn subscribe_filters(args: &ConnectArgs, options: &SubOptions) -> Vec<SubscribeFilter> {
    let v5 = args.protocol == ProtocolVersion::V5;
    options
        .topics
        .iter()
        .map(|topic| {
            let mut filter = SubscribeFilter::new(topic.clone(), args.qos);
            if v5 {
                filter.retain_as_published = options.retain_as_published;
                if options.skip_retained {
                    filter.retain_handling = RetainHandling::DoNotSend;
                }
            }
            filter
        })
        .collect()
}

/// Prints messages until `-C`, `--retained-only`, `-W`, a signal or a failure ends
/// it; returns the exit code.
fn receive(
    client: &Client,
    subscription: &Subscription,
    options: &SubOptions,
    deadline: Option<Instant>,
    report: &Reporter,
    interrupt: &Interrupt,
) -> u8 {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut filter = MessageFilter::new(options, seed);
    let mut buffer = Vec::new();
    loop {
        let next = match deadline {
            Some(deadline) => {
                subscription.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => subscription.recv().map(Some),
        };
        let message = match next {
            Ok(Some(message)) => message,
            Ok(None) => {
                report.error("Timed out\n");
                return TIMED_OUT;
            }
            Err(_) if interrupt.fired() => return exit::SUCCESS,
            Err(e) => {
                report.error(&format!("Error: {e}\n"));
                return exit::FAILURE;
            }
        };
        let (clear_retained, print, last) = match filter.decide(message.topic(), message.retain()) {
            Decision::Skip => continue,
            Decision::Stop => return exit::SUCCESS,
            Decision::Handle {
                clear_retained,
                print,
                last,
            } => (clear_retained, print, last),
        };
        if clear_retained {
            if let Err(e) = client.publish(message.topic(), Vec::new(), QoS::AtLeastOnce, true) {
                report.error(&format!("Error: {e}\n"));
            }
        }
        if print {
            let delivery = Delivery {
                topic: message.topic(),
                payload: message.payload(),
                qos: message.qos() as u8,
                retain: message.retain(),
                packet_id: message.packet_id().map_or(0, |id| id.get()),
                properties: message.properties(),
            };
            buffer.clear();
            let warnings = options.printer.print(&delivery, &Now::local(), &mut buffer);
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&buffer)
                .and_then(|()| stdout.flush())
                .is_err()
            {
                // Whoever read our output has gone (`| head -1`): stop quietly,
                // as mosquitto_sub does when stdout fails.
                return exit::SUCCESS;
            }
            for warning in warnings {
                report.error(&warning);
            }
        }
        if last {
            return exit::SUCCESS;
        }
    }
}

/// Reports a failure after connecting and leaves with exit code 1, or 0 if the
/// failure was our own disconnect after a signal.
fn fail(
    report: &Reporter,
    interrupt: &Interrupt,
    error: &Error,
    leave: impl Fn(u8, bool) -> u8,
) -> u8 {
    if interrupt.fired() {
        return leave(exit::SUCCESS, false);
    }
    report.error(&format!("Error: {error}\n"));
    leave(exit::FAILURE, false)
}
