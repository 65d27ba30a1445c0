//! Publishes one message and returns once the broker has it.
//!
//! ```text
//! cargo run --example publish -- mqtt://127.0.0.1:1883 greetings/world "hello" 1
//! ```
//!
//! Arguments: broker URL, topic, message, QoS (0, 1 or 2; 1 by default).

use std::process::ExitCode;

use wren::client::{Client, QoS};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: publish URL TOPIC MESSAGE [QOS]";
    let url = args.next().ok_or(usage)?;
    let topic = args.next().ok_or(usage)?;
    let message = args.next().ok_or(usage)?;
    let qos = match args.next().as_deref() {
        None | Some("1") => QoS::AtLeastOnce,
        Some("0") => QoS::AtMostOnce,
        Some("2") => QoS::ExactlyOnce,
        Some(other) => return Err(format!("QoS must be 0, 1 or 2, not {other}").into()),
    };

    let client = Client::connect(url.as_str())?;
    // Returns after PUBACK (QoS 1) or PUBCOMP (QoS 2): the broker has the message.
    client.publish(&topic, message, qos, false)?;
    println!("published to {topic} with QoS {qos}");
    client.disconnect()?;
    Ok(())
}

fn main() -> ExitCode {
    env_logger::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::FAILURE
        }
    }
}
