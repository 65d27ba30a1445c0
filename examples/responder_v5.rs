//! Answers MQTT 5 requests: every message on `services/square` that names a
//! Response Topic gets the square of its number there, with the request's
//! Correlation Data. `requester_v5` makes such requests.
//!
//! ```text
//! cargo run --example responder_v5 -- mqtt://127.0.0.1:1883
//! ```

use std::process::ExitCode;

use wren::client::{Client, ClientOptions, Publish, QoS};
use wren::protocol::ProtocolVersion;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).ok_or("usage: responder_v5 URL")?;
    let options = ClientOptions::from_url(&url)?.with_protocol(ProtocolVersion::V5);
    let client = Client::connect(options)?;
    let requests = client.subscribe("services/square", QoS::AtLeastOnce)?;
    println!("answering requests on services/square");
    for request in requests.iter() {
        let answer = match request.payload_str()?.trim().parse::<i64>() {
            Ok(number) => number.saturating_mul(number).to_string(),
            Err(_) => "not a number".to_owned(),
        };
        // A request without a Response Topic cannot be answered: skipped.
        if let Some(response) = Publish::response_to(&request, answer) {
            client.send(response.qos(QoS::AtLeastOnce))?;
        }
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
