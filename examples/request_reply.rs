//! Request and reply over MQTT 3.1.1: the request carries the topic to answer on.
//!
//! ```text
//! cargo run --example request_reply -- mqtt://127.0.0.1:1883
//! ```
//!
//! A responder thread serves `services/square`; the requester sends numbers and
//! waits for each answer on a reply topic of its own (MQTT 5 has a field for the
//! reply topic; in 3.1.1 it travels in the payload, here as JSON).

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wren::client::{Client, QoS};

#[derive(Serialize, Deserialize)]
struct Request {
    reply_to: String,
    number: i64,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    square: i64,
}

/// Answers requests until the client is disconnected.
fn serve(client: Client, requests: wren::client::Subscription) {
    for message in requests.iter() {
        match message.json::<Request>() {
            Ok(request) => {
                let reply = Reply {
                    square: request.number * request.number,
                };
                if let Err(error) =
                    client.publish_json(&request.reply_to, &reply, QoS::AtLeastOnce, false)
                {
                    eprintln!("responder: {error}");
                }
            }
            Err(error) => eprintln!("responder: ignoring a bad request: {error}"),
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).ok_or("usage: request_reply URL")?;

    let responder = Client::connect(url.as_str())?;
    let requests = responder.subscribe("services/square", QoS::AtLeastOnce)?;
    let server = thread::spawn({
        let responder = responder.clone();
        move || serve(responder, requests)
    });

    let requester = Client::connect(url.as_str())?;
    let reply_to = format!("replies/{}", requester.client_id());
    let replies = requester.subscribe(&reply_to, QoS::AtLeastOnce)?;
    for number in 1..=5 {
        let request = Request {
            reply_to: reply_to.clone(),
            number,
        };
        requester.publish_json("services/square", &request, QoS::AtLeastOnce, false)?;
        let reply: Reply = replies
            .recv_timeout(Duration::from_secs(5))?
            .ok_or("no reply within 5 s")?
            .json()?;
        println!("{number}² = {}", reply.square);
    }

    responder.disconnect()?;
    server.join().map_err(|_| "the responder thread panicked")?;
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
