//! Decode and encode speed of the protocol codec, side by side with `mqttbytes` (the
//! MQTT 3.1.1 codec of rumqtt, module `v4`) on the same bytes.
//!
//! ```text
//! cargo bench --bench codec
//! ```
//!
//! Each case is encoded once by wren; `mqttbytes` must decode those bytes to the same
//! packet and encode it back to the same bytes, so both sides do the same work. After
//! the measurements a table of median nanoseconds per operation and the ratio
//! wren / mqttbytes is printed (below 1.00: wren is faster).
//!
//! Decoding starts from a fresh `BytesMut` holding one packet, built outside the timed
//! part; dropping the decoded packet is not timed either. Encoding appends to a
//! buffer that is cleared, not reallocated, between iterations.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion};
use mqttbytes::v4 as theirs;
use wren::protocol::{
    Connect, Decoder, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter, TopicFilter,
    TopicName, Will,
};

/// Large enough for every case.
const MAX_PACKET_SIZE: usize = 1024 * 1024;

/// One packet to measure, as wren's value, mqttbytes' value and the wire bytes.
struct Case {
    name: &'static str,
    ours: Packet,
    theirs: theirs::Packet,
    wire: Vec<u8>,
}

fn publish(payload_len: usize) -> Packet {
    let mut publish = Publish::new(
        TopicName::new("sensors/kitchen/temperature").expect("valid topic"),
        Bytes::from((0..payload_len).map(|i| i as u8).collect::<Vec<u8>>()),
        QoS::AtLeastOnce,
        false,
    );
    publish.packet_id = PacketId::new(42);
    Packet::Publish(publish)
}

fn subscribe() -> Packet {
    let filters = (0..10)
        .map(|i| {
            let filter = match i % 3 {
                0 => format!("sensors/room{i}/+/temperature"),
                1 => format!("devices/{i}/status/#"),
                _ => format!("home/floor/{i}/light"),
            };
            SubscribeFilter::new(
                TopicFilter::new(filter).expect("valid filter"),
                QoS::AtLeastOnce,
            )
        })
        .collect();
    Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(7).expect("non-zero"),
        filters,
        properties: None,
    })
}

fn connect() -> Packet {
    let mut connect = Connect::new("wren-bench-client-0001");
    connect.keep_alive = 30;
    connect.will = Some(Will {
        topic: TopicName::new("clients/wren-bench-client-0001/status").expect("valid topic"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: None,
    });
    connect.username = Some("sensor-gateway".into());
    connect.password = Some(Bytes::from_static(b"correct horse battery staple"));
    Packet::from(connect)
}

fn cases() -> Vec<Case> {
    [
        ("PUBLISH 16 B", publish(16)),
        ("PUBLISH 256 B", publish(256)),
        ("PUBLISH 64 KiB", publish(64 * 1024)),
        ("SUBSCRIBE 10 filters", subscribe()),
        ("CONNECT", connect()),
    ]
    .into_iter()
    .map(|(name, ours)| {
        let mut wire = Vec::new();
        ours.encode(&mut wire).expect("benchmark packets encode");
        let theirs = theirs::read(&mut BytesMut::from(&wire[..]), MAX_PACKET_SIZE)
            .unwrap_or_else(|error| panic!("mqttbytes cannot decode {name}: {error:?}"));
        let mut again = BytesMut::new();
        encode_theirs(&theirs, &mut again);
        assert_eq!(
            &again[..],
            &wire[..],
            "{name}: mqttbytes re-encodes different bytes"
        );
        Case {
            name,
            ours,
            theirs,
            wire,
        }
    })
    .collect()
}

fn encode_theirs(packet: &theirs::Packet, out: &mut BytesMut) {
    let written = match packet {
        theirs::Packet::Publish(p) => p.write(out),
        theirs::Packet::Subscribe(p) => p.write(out),
        theirs::Packet::Connect(p) => p.write(out),
        other => panic!("no benchmark encodes {other:?}"),
    };
    written.expect("mqttbytes encodes the benchmark packets");
}

fn bench_decode(c: &mut Criterion, cases: &[Case]) {
    let mut group = c.benchmark_group("decode");
    for case in cases {
        group.bench_with_input(BenchmarkId::new("wren", case.name), case, |b, case| {
            let mut decoder = Decoder::new().with_max_packet_size(MAX_PACKET_SIZE);
            b.iter_batched(
                || BytesMut::from(&case.wire[..]),
                |mut buffer| {
                    decoder
                        .decode(&mut buffer)
                        .expect("valid")
                        .expect("complete")
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("mqttbytes", case.name), case, |b, case| {
            b.iter_batched(
                || BytesMut::from(&case.wire[..]),
                |mut buffer| theirs::read(&mut buffer, MAX_PACKET_SIZE).expect("valid"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion, cases: &[Case]) {
    let mut group = c.benchmark_group("encode");
    for case in cases {
        group.bench_with_input(BenchmarkId::new("wren", case.name), case, |b, case| {
            let mut out = Vec::with_capacity(case.wire.len());
            b.iter(|| {
                out.clear();
                black_box(&case.ours).encode(&mut out).expect("encodes");
                black_box(out.len())
            })
        });
        group.bench_with_input(BenchmarkId::new("mqttbytes", case.name), case, |b, case| {
            let mut out = BytesMut::with_capacity(case.wire.len());
            b.iter(|| {
                out.clear();
                encode_theirs(black_box(&case.theirs), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// Where criterion keeps its results: `$CARGO_TARGET_DIR/criterion` or
/// `target/criterion` beside Cargo.toml (criterion's own rule, unless
/// `CRITERION_HOME` says otherwise).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion")
}

/// The median time of one measured benchmark in nanoseconds, from criterion's
/// `estimates.json`. The median, not the mean: on a shared machine a burst of other
/// work drags the mean of whichever benchmark it lands on.
fn median_ns(group: &str, function: &str, case: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join(case)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn print_ratio_table(cases: &[Case]) {
    println!();
    println!(
        "median ns/op        | decode: wren  mqttbytes  ratio | encode: wren  mqttbytes  ratio"
    );
    println!(
        "--------------------+---------------------------------+--------------------------------"
    );
    for case in cases {
        let mut line = format!("{:<20}|", case.name);
        for group in ["decode", "encode"] {
            match (
                median_ns(group, "wren", case.name),
                median_ns(group, "mqttbytes", case.name),
            ) {
                (Some(ours), Some(theirs)) => line.push_str(&format!(
                    " {:>12.1} {:>10.1} {:>6.2} |",
                    ours,
                    theirs,
                    ours / theirs
                )),
                _ => line.push_str(&format!(" {:>31} |", "no estimate")),
            }
        }
        println!("{}", line.trim_end_matches('|').trim_end());
    }
    println!("(ratio = wren / mqttbytes; below 1.00 wren is faster)");
}

fn main() {
    let cases = cases();
    // Short runs: the whole benchmark takes a few minutes on two cores. Command-line
    // options (`--measurement-time`, `--sample-size`, ...) still override these.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
        .configure_from_args();
    bench_decode(&mut criterion, &cases);
    bench_encode(&mut criterion, &cases);
    criterion.final_summary();
    // `cargo test --benches` runs each benchmark once without measuring; only a real
    // `cargo bench` run (which passes `--bench`) has figures to compare.
    if std::env::args().any(|arg| arg == "--bench") {
        print_ratio_table(&cases);
    }
}
