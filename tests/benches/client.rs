//! Publish throughput of wren's blocking client against rumqttc's blocking `Client`,
//! both talking to the same mosquitto broker on loopback, over MQTT 3.1.1 and over
//! MQTT 5 (rumqttc's separate `v5` client; wren's one `Client` with
//! `with_protocol(V5)`).
//!
//! `cargo bench --bench client`. `WREN_BENCH_COUNT` sets the messages per run
//! (20,000 by default); each figure is the median of `WREN_BENCH_RUNS` runs (3 by
//! default). `WREN_BENCH_VERSION=311` or `5` runs one version only.
//!
//! Both clients get the same inflight window (20, mosquitto's
//! `max_inflight_messages`) and the same payload. A QoS 0 run ends with one QoS 1
//! publish: its PUBACK proves the broker has read everything before it.

#[path = "../client_support/mod.rs"]
mod client_support;
#[path = "../common/mod.rs"]
mod common;

use std::thread;
use std::time::{Duration, Instant};

use client_support::Mosquitto;

const PAYLOAD: [u8; 64] = [b'x'; 64];
const INFLIGHT: u16 = 20;
fn main() {
    let count: usize = setting("WREN_BENCH_COUNT").unwrap_or(20_000);
    let runs: usize = setting("WREN_BENCH_RUNS").unwrap_or(3).max(1);
    // For profiling one side alone: WREN_BENCH_ONLY=wren or rumqttc, WREN_BENCH_QOS=0 or 1.
    let only = std::env::var("WREN_BENCH_ONLY").ok();
    let levels: Vec<u8> = match setting("WREN_BENCH_QOS") {
        Some(qos) => vec![qos],
        None => vec![0, 1],
    };
    let wanted = |side: &str| only.as_deref().is_none_or(|only| only == side);
    let versions: Vec<Version> = match std::env::var("WREN_BENCH_VERSION").as_deref() {
        Ok("5") => vec![Version::V5],
        Ok("311") => vec![Version::V311],
        _ => vec![Version::V311, Version::V5],
    };
    let broker = Mosquitto::start();
    println!(
        "publishing {count} messages of {} bytes to mosquitto, median of {runs} runs",
        PAYLOAD.len()
    );
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    for version in versions {
        for &qos in &levels {
            let ours = wanted("wren").then(|| {
                median(
                    (0..runs)
                        .map(|_| wren_run(&broker, count, qos, version))
                        .collect(),
                )
            });
            let theirs = wanted("rumqttc").then(|| {
                median(
                    (0..runs)
                        .map(|_| match version {
                            Version::V311 => rumqttc_run(&broker, count, qos),
                            Version::V5 => rumqttc_v5_run(&broker, count, qos),
                        })
                        .collect(),
                )
            });
            let name = version.name();
            match (ours, theirs) {
                (Some(ours), Some(theirs)) => println!(
                    "{name} QoS {qos}: wren {:>9.0} msg/s   rumqttc {:>9.0} msg/s   wren/rumqttc {:.2}",
                    rate(ours),
                    rate(theirs),
                    rate(ours) / rate(theirs)
                ),
                (Some(ours), None) => println!("{name} QoS {qos}: wren {:>9.0} msg/s", rate(ours)),
                (None, Some(theirs)) => {
                    println!("{name} QoS {qos}: rumqttc {:>9.0} msg/s", rate(theirs))
                }
                (None, None) => {}
            }
        }
    }
}

/// The version of MQTT a run speaks.
#[derive(Debug, Clone, Copy)]
enum Version {
    V311,
    V5,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Version::V311 => "MQTT 3.1.1",
            Version::V5 => "MQTT 5    ",
        }
    }
}

fn setting<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn wren_run(broker: &Mosquitto, count: usize, qos: u8, version: Version) -> Duration {
    use wren::client::{Client, ClientOptions, ProtocolVersion, QoS};
    let options = ClientOptions::from_url(&broker.url())
        .expect("broker URL")
        .with_max_inflight(INFLIGHT)
        .with_protocol(match version {
            Version::V311 => ProtocolVersion::V3_1_1,
            Version::V5 => ProtocolVersion::V5,
        });
    let client = Client::connect(options).expect("wren connects");
    let start = Instant::now();
    if qos == 0 {
        for _ in 0..count {
            client
                .publish("bench/wren", &PAYLOAD[..], QoS::AtMostOnce, false)
                .expect("QoS 0 publish");
        }
        client
            .publish("bench/wren", &PAYLOAD[..], QoS::AtLeastOnce, false)
            .expect("closing QoS 1 publish");
    } else {
        let mut pending = Vec::with_capacity(count);
        for _ in 0..count {
            pending.push(
                client
                    .publish_nowait("bench/wren", &PAYLOAD[..], QoS::AtLeastOnce, false)
                    .expect("QoS 1 publish"),
            );
        }
        for publish in pending {
            publish.wait().expect("PUBACK");
        }
    }
    let elapsed = start.elapsed();
    client.disconnect().expect("disconnect");
    elapsed
}

/// One timed run of a rumqttc client. rumqttc has two clients with the same
/// shape and different types (`rumqttc` for 3.1.1, `rumqttc::v5` for 5): one body
/// for both.
macro_rules! rumqttc_run {
    ($name:ident, $client:path, $options:path, $event:path, $packet:path, $qos:path,
     $topic:literal, |$opts:ident| $window:expr) => {
        fn $name(broker: &Mosquitto, count: usize, qos: u8) -> Duration {
            use $client as Client;
            use $event as Event;
            use $options as MqttOptions;
            use $packet as Packet;
            use $qos as QoS;
            static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let id = format!(
                "{}-{}",
                $topic.replace('/', "-"),
                RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut $opts = MqttOptions::new(id, "127.0.0.1", broker.port());
            $opts.set_keep_alive(Duration::from_secs(30));
            $window;
            let (client, mut connection) = Client::new($opts, 64);
            // rumqttc's blocking client needs a thread driving its connection.
            let acks_wanted = if qos == 0 { 1 } else { count };
            let (done, finished) = crossbeam_channel::bounded(1);
            let (connected, ready) = crossbeam_channel::bounded(1);
            let driver = thread::spawn(move || {
                let mut acks = 0;
                for event in connection.iter() {
                    match event {
                        // rumqttc connects on its first poll; the clock starts after
                        // CONNACK, as it does for wren, whose `connect` returns after
                        // CONNACK.
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = connected.send(());
                        }
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            acks += 1;
                            if acks == acks_wanted {
                                let _ = done.send(Instant::now());
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            ready
                .recv_timeout(Duration::from_secs(10))
                .expect("rumqttc never connected");
            let start = Instant::now();
            let level = if qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            for _ in 0..count {
                client
                    .publish($topic, level, false, PAYLOAD.to_vec())
                    .expect("rumqttc publish");
            }
            if qos == 0 {
                client
                    .publish($topic, QoS::AtLeastOnce, false, PAYLOAD.to_vec())
                    .expect("rumqttc closing publish");
            }
            let end = finished
                .recv_timeout(Duration::from_secs(120))
                .expect("rumqttc never got its acknowledgements");
            let _ = client.disconnect();
            let _ = driver.join();
            end - start
        }
    };
}

rumqttc_run!(
    rumqttc_run,
    rumqttc::Client,
    rumqttc::MqttOptions,
    rumqttc::Event,
    rumqttc::Packet,
    rumqttc::QoS,
    "bench/rumqttc",
    |options| options.set_inflight(INFLIGHT)
);

// rumqttc's MQTT 5 client: its own `v5` module, with its own event loop and state.
// Its window is the broker's Receive Maximum (mosquitto's is 20, as INFLIGHT).
rumqttc_run!(
    rumqttc_v5_run,
    rumqttc::v5::Client,
    rumqttc::v5::MqttOptions,
    rumqttc::v5::Event,
    rumqttc::v5::mqttbytes::v5::Packet,
    rumqttc::v5::mqttbytes::QoS,
    "bench/rumqttc-v5",
    |options| options.set_outgoing_inflight_upper_limit(INFLIGHT)
);
