//! Subscribes to a filter and prints each message as `topic payload`.
//!
//! ```text
//! cargo run --example subscribe -- mqtt://127.0.0.1:1883 'sensors/#' 10
//! ```
//!
//! Arguments: broker URL, topic filter, how many messages to print before leaving
//! (forever when left out). `RUST_LOG=wren::client::packets=debug` shows every
//! packet, as `mosquitto_sub -d` does.

use std::process::ExitCode;

use wren::client::{Client, QoS};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: subscribe URL FILTER [COUNT]";
    let url = args.next().ok_or(usage)?;
    let filter = args.next().ok_or(usage)?;
    let count = match args.next() {
        Some(count) => count.parse::<usize>()?,
        None => usize::MAX,
    };

    let client = Client::connect(url.as_str())?;
    let subscription = client.subscribe(&filter, QoS::AtLeastOnce)?;
    eprintln!(
        "subscribed to {filter} (granted QoS {})",
        subscription.granted_qos()
    );
    for message in subscription.iter().take(count) {
        // Payloads are bytes; show them as text where they are text.
        println!(
            "{} {}",
            message.topic(),
            String::from_utf8_lossy(message.payload())
        );
    }
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
