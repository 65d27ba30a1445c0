//! One client shared by many threads: eight publishers and one reader.
//!
//! ```text
//! cargo run --example shared_client -- mqtt://127.0.0.1:1883
//! ```
//!
//! `Client` is a cheap handle (`Clone + Send + Sync`): each thread gets a clone,
//! and all of them use the same connection. Each publish returns once the broker
//! acknowledged it, whichever thread made it.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use wren::client::{Client, QoS};

const THREADS: usize = 8;
const PER_THREAD: usize = 100;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).ok_or("usage: shared_client URL")?;
    let client = Client::connect(url.as_str())?;
    let subscription =
        client.subscribe(&format!("{}/work/#", client.client_id()), QoS::AtLeastOnce)?;

    let publishers: Vec<_> = (0..THREADS)
        .map(|n| {
            let client = client.clone();
            thread::spawn(move || -> Result<(), wren::client::Error> {
                let topic = format!("{}/work/{n}", client.client_id());
                for i in 0..PER_THREAD {
                    client.publish(
                        &topic,
                        format!("job {i} from thread {n}"),
                        QoS::AtLeastOnce,
                        false,
                    )?;
                }
                Ok(())
            })
        })
        .collect();
    for publisher in publishers {
        publisher
            .join()
            .map_err(|_| "a publisher thread panicked")??;
    }

    let mut received = 0;
    while received < THREADS * PER_THREAD {
        subscription
            .recv_timeout(Duration::from_secs(10))?
            .ok_or("a message did not come within 10 s")?;
        received += 1;
    }
    println!("{THREADS} threads published {received} messages over one connection");
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
