//! A sensor that reports forever and survives broker restarts.
//!
//! ```text
//! cargo run --example sensor_loop -- mqtt://127.0.0.1:1883 kitchen 10
//! ```
//!
//! Arguments: broker URL, sensor name, how many readings (forever when left out).
//!
//! It announces itself with a retained `online` status and leaves a will saying
//! `offline`, so that subscribers to `sensors/+/status` always know who is there.
//! If the connection breaks the client reconnects by itself; a reading published
//! meanwhile waits (up to the operation timeout) and then goes out.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wren::client::{Client, ClientOptions, QoS, Reconnect, Will};

#[derive(Serialize)]
struct Reading {
    sensor: String,
    celsius: f64,
    at: u64,
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: sensor_loop URL NAME [COUNT]";
    let url = args.next().ok_or(usage)?;
    let name = args.next().ok_or(usage)?;
    let count = match args.next() {
        Some(count) => count.parse::<u64>()?,
        None => u64::MAX,
    };
    let status = format!("sensors/{name}/status");

    let options = ClientOptions::from_url(&url)?
        .with_client_id(format!("sensor-{name}"))
        .with_keep_alive(Duration::from_secs(15))
        .with_will(Will::new(
            status.as_str(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ))
        .with_reconnect(Reconnect {
            max_interval: Duration::from_secs(5),
            ..Reconnect::default()
        });
    let client = Client::connect(options)?;
    client.publish(&status, "online", QoS::AtLeastOnce, true)?;

    for n in 0..count {
        let reading = Reading {
            sensor: name.clone(),
            // A made-up temperature that drifts with time.
            celsius: 20.0 + (n % 50) as f64 / 10.0,
            at: SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
        };
        match client.publish_json(
            &format!("sensors/{name}/temperature"),
            &reading,
            QoS::AtLeastOnce,
            false,
        ) {
            Ok(()) => println!("sent {:.1} °C", reading.celsius),
            // Not connected for longer than the operation timeout: skip this one.
            Err(error) => eprintln!("reading {n} not sent: {error}"),
        }
        if n + 1 < count {
            thread::sleep(Duration::from_secs(1));
        }
    }

    // A clean goodbye: the will is discarded, so say it ourselves.
    client.publish(&status, "offline", QoS::AtLeastOnce, true)?;
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
