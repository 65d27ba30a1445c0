//! Makes an MQTT 5 request and waits for its response: `Client::request` sends the
//! number to `services/square` with a Response Topic and Correlation Data, and
//! returns the answer `responder_v5` sends back.
//!
//! ```text
//! cargo run --example requester_v5 -- mqtt://127.0.0.1:1883 12
//! ```

use std::process::ExitCode;
use std::time::Duration;

use wren::client::{Client, ClientOptions, Publish, QoS};
use wren::protocol::ProtocolVersion;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: requester_v5 URL NUMBER";
    let url = args.next().ok_or(usage)?;
    let number = args.next().ok_or(usage)?;
    let options = ClientOptions::from_url(&url)?.with_protocol(ProtocolVersion::V5);
    let client = Client::connect(options)?;
    let request = Publish::new("services/square", number.clone()).qos(QoS::AtLeastOnce);
    let answer = client.request(request, Duration::from_secs(5))?;
    println!("{number} squared is {}", answer.payload_str()?);
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
