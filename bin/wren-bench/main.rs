//! wren-bench: a load generator for any MQTT 3.1.1 or MQTT 5 broker.
//!
//! ```text
//! wren-bench run  --url mqtt://127.0.0.1:1883 --publishers 1 --subscribers 100 -q 1
//! wren-bench run  --url mqtt://127.0.0.1:1883 --version 5 -q 2 --inflight 64
//! wren-bench run  --url mqtt://127.0.0.1:1883 --subscribe-url mqtt://127.0.0.1:1884 -q 1
//! wren-bench pub  --url mqtt://127.0.0.1:1883 -c 10 -n 100000
//! wren-bench conn --url mqtt://127.0.0.1:1883 -c 10000 --pid 1234
//! wren-bench compare --broker "mosquitto=mosquitto -p {port}" \
//!                    --broker "wren=wren-broker -p {port}" [--version 5]
//! wren-bench compare --instructions --broker "wren=wren-broker -p {port}" \
//!                    --broker "rumqttd=rumqttd -c rumqttd-{port}.toml"
//! wren-bench compare --persistent \
//!     --broker "mosquitto=sh -c 'printf \"listener {port} 127.0.0.1\npersistence true\npersistence_location {dir}/\n\" > {dir}/m.conf; exec mosquitto -c {dir}/m.conf'" \
//!     --broker "wren=sh -c 'printf \"listeners: {default: {type: tcp, bind: 127.0.0.1:{port}}}\npersistence: {enabled: true, path: {dir}/store}\n\" > {dir}/w.yaml; exec wren-broker -c {dir}/w.yaml'"
//! ```
//!
//! Every payload carries a send time, a publisher number and a sequence number, so
//! each delivery is checked (lost and duplicated messages are counted exactly) and
//! latency is measured end to end. Given the broker's process id it also reports the
//! broker's CPU time and resident memory from `/proc`.
//!
//! `--version 5` makes every connection of a run speak MQTT 5; a publisher then
//! keeps no more QoS 1/2 messages in flight than the broker's Receive Maximum, and
//! counts PUBACK / PUBREC reason codes of 0x80 and above as refused messages.

mod callgrind;
mod compare;
mod crash;
mod scenario;
mod stats;
mod wire;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wren::protocol::{ProtocolVersion, QoS};
use wren::transport::{Dialer, Kind};

use compare::BrokerCommand;
use scenario::{Idle, Progress, PubSub};

const HELP: &str = "\
wren-bench: load any MQTT 3.1.1 or MQTT 5 broker and measure it

Usage:
  wren-bench run     [options]   publishers and subscribers together
  wren-bench pub     [options]   publishers only (-c publishers)
  wren-bench conn    [options]   open idle connections (-c connections)
  wren-bench compare --broker NAME=COMMAND --broker NAME=COMMAND [--quick]
                     [--instructions]
  wren-bench --help | --version   (--version alone: wren-bench's own version)

Options:
  --url URL              broker to load: mqtt://, mqtts://, ws:// or wss://
                         (default mqtt://127.0.0.1:1883)
  --subscribe-url URL    run: subscribers connect here instead (a broker bridged
                         to --url, to measure the bridge)
  --cafile FILE          CA certificates to trust for mqtts:// and wss://
  --insecure             do not check the broker's certificate (tests only)
  --version 3.1.1|5      MQTT version of every connection (default 3.1.1; also
                         4, mqttv311, mqttv5). Over MQTT 5 a publisher keeps at
                         most the broker's Receive Maximum in flight, and PUBACK /
                         PUBREC reason codes >= 0x80 count as refused messages
  -c, --connections N    publishers (pub), connections (conn)
  --publishers N         publishers (run; default 1)
  --subscribers N        subscribers (run; default 1)
  -q, --qos 0|1|2        quality of service (default 0)
  -s, --size BYTES       payload size, at least 20 (default 64)
  -n, --count N          messages per publisher (default 10000)
  --rate N               messages per second per publisher (default: unlimited)
  --topic-per-publisher  one topic per publisher instead of one shared topic
  --inflight N           QoS 1/2 messages in flight per publisher (default 64;
                         MQTT 5: at most the broker's Receive Maximum)
  --idle SECS            conn: how long to watch the idle broker (default 5)
  --timeout SECS         upper bound on a run (default 120)
  --pid PID              broker process to measure (CPU, resident memory)
  --json                 print results as JSON
compare:
  --broker NAME=CMD      a broker command line with a {port} placeholder (2 or more)
  --version 5            run the set over MQTT 5; a broker that refuses an MQTT 5
                         CONNECT is reported and skipped
  --quick                a small run (counts / 50), for smoke tests
  --only NAME,...        only the scenarios whose names start with these
  --persistent           the persistence set: persistent subscribers, the store's
                         size, and what a kill -9 loses of acknowledged messages;
                         a {dir} placeholder in CMD is a fresh directory per run
  --instructions         each broker under valgrind's callgrind: instructions
                         per delivered message, a count that machine noise
                         hardly moves (throughput scenarios only, counts / 10)
run:
  --persistent           subscribers ask for persistent sessions (clean session 0)
";

fn main() -> ExitCode {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wren-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse<T>(
    args: &mut pico_args::Arguments,
    keys: impl Into<pico_args::Keys>,
    name: &str,
) -> Result<Option<T>, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    args.opt_value_from_str(keys)
        .map_err(|e| format!("option {name}: {e}"))
}

/// The connection to make for `url`: `mqtt://`, `mqtts://`, `ws://` or `wss://`,
/// `host[:port][/path]`.
fn target(url: &str, cafile: Option<PathBuf>, insecure: bool) -> Result<Dialer, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("--url '{url}': expected SCHEME://HOST[:PORT]"))?;
    let kind = Kind::from_scheme(scheme)
        .ok_or_else(|| format!("--url '{url}': unknown scheme '{scheme}'"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/mqtt"),
    };
    // "[v6]:port", "[v6]", "host:port" or "host".
    let (host, port) = match authority
        .strip_prefix('[')
        .and_then(|v6| v6.split_once(']'))
    {
        Some((host, rest)) => (host, rest.strip_prefix(':')),
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| format!("--url '{url}': bad port '{port}'"))?,
        None => kind.default_port(),
    };
    if host.is_empty() {
        return Err(format!("--url '{url}': no host"));
    }
    let mut dialer = Dialer::new(kind, host, port);
    dialer.path = path.to_string();
    dialer.tls.ca_file = cafile;
    dialer.tls.insecure = insecure;
    if kind.is_tls() {
        // Built once: a load generator opens thousands of connections.
        dialer
            .prepare_tls()
            .map_err(|e| format!("--url '{url}': {e}"))?;
    }
    Ok(dialer)
}

/// Prints sent / delivered counts on one line while a run goes, on a terminal only.
fn progress_line(progress: &Arc<Progress>) -> Option<(Arc<AtomicBool>, thread::JoinHandle<()>)> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = Arc::clone(&stop);
        let progress = Arc::clone(progress);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(500));
                eprint!(
                    "\r  sent {:>10}  delivered {:>10}",
                    progress.sent.load(Ordering::Relaxed),
                    progress.delivered.load(Ordering::Relaxed)
                );
            }
            eprintln!();
        })
    };
    Some((stop, handle))
}

fn run() -> Result<(), String> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        print!("{HELP}");
        return Ok(());
    }
    // `--version` alone is the program's version; after a command, with a value,
    // it is the MQTT version the command speaks.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|first| first == "--version")
    {
        println!("wren-bench {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let command = args
        .subcommand()
        .map_err(|e| e.to_string())?
        .ok_or("a command is needed: run, pub, conn or compare (see --help)")?;
    let json = args.contains("--json");
    let version = match parse::<String>(&mut args, "--version", "--version")? {
        Some(text) => wire::parse_version(&text)?,
        None => ProtocolVersion::V3_1_1,
    };
    let url: String = parse(&mut args, "--url", "--url")?.unwrap_or("mqtt://127.0.0.1:1883".into());
    let subscribe_url: Option<String> = parse(&mut args, "--subscribe-url", "--subscribe-url")?;
    let pid: Option<u32> = parse(&mut args, "--pid", "--pid")?;
    let timeout = Duration::from_secs(parse(&mut args, "--timeout", "--timeout")?.unwrap_or(120));
    let connections: Option<usize> = parse(&mut args, ["-c", "--connections"], "-c")?;
    let publishers: Option<usize> = parse(&mut args, "--publishers", "--publishers")?;
    let subscribers: Option<usize> = parse(&mut args, "--subscribers", "--subscribers")?;
    let qos: u8 = parse(&mut args, ["-q", "--qos"], "-q")?.unwrap_or(0);
    let qos = QoS::from_u8(qos).ok_or(format!("option -q: QoS must be 0, 1 or 2, not {qos}"))?;
    let size: usize = parse(&mut args, ["-s", "--size"], "-s")?.unwrap_or(64);
    if size < stats::STAMP_LEN {
        return Err(format!(
            "option -s: payloads need at least {} bytes",
            stats::STAMP_LEN
        ));
    }
    let count: u64 = parse(&mut args, ["-n", "--count"], "-n")?.unwrap_or(10_000);
    let rate: Option<f64> = parse(&mut args, "--rate", "--rate")?;
    let topic_per_publisher = args.contains("--topic-per-publisher");
    let inflight: usize = parse(&mut args, "--inflight", "--inflight")?.unwrap_or(64);
    let idle: u64 = parse(&mut args, "--idle", "--idle")?.unwrap_or(5);
    let quick = args.contains("--quick");
    let persistent = args.contains("--persistent");
    let instructions = args.contains("--instructions");
    let cafile: Option<PathBuf> = parse(&mut args, "--cafile", "--cafile")?;
    let insecure = args.contains("--insecure");
    let only: Option<String> = parse(&mut args, "--only", "--only")?;
    let mut brokers = Vec::new();
    while let Some(text) = parse::<String>(&mut args, "--broker", "--broker")? {
        brokers.push(BrokerCommand::parse(&text)?);
    }
    let rest = args.finish();
    if let Some(unknown) = rest.first() {
        return Err(format!("unknown option {}", unknown.to_string_lossy()));
    }

    let progress = Arc::new(Progress::default());
    let prefix = format!("wren-bench/{}", std::process::id());
    let line = progress_line(&progress);
    let output = match command.as_str() {
        "run" | "pub" => {
            let (publishers, subscribers) = if command == "pub" {
                (connections.unwrap_or(1), 0)
            } else {
                (publishers.unwrap_or(1), subscribers.unwrap_or(1))
            };
            let run = PubSub {
                target: target(&url, cafile.clone(), insecure)?,
                subscribe_target: subscribe_url
                    .as_deref()
                    .map(|url| target(url, cafile.clone(), insecure).map(Box::new))
                    .transpose()?,
                version,
                publishers,
                subscribers,
                qos,
                payload_size: size,
                messages_per_publisher: count,
                rate,
                topic_per_publisher,
                inflight,
                timeout,
                broker_pid: pid,
                prefix,
                persistent_subscribers: persistent,
            };
            let report = scenario::run_pubsub(&run, &progress).map_err(|e| e.0)?;
            if json {
                serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
            } else {
                summary(&report)
            }
        }
        "conn" => {
            let run = Idle {
                target: target(&url, cafile.clone(), insecure)?,
                version,
                connections: connections.unwrap_or(1000),
                idle_for: Duration::from_secs(idle),
                broker_pid: pid,
                prefix,
            };
            let report = scenario::run_idle(&run, &progress).map_err(|e| e.0)?;
            if json {
                serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
            } else {
                format!("{report:#?}")
            }
        }
        "compare" => {
            if brokers.len() < 2 {
                return Err("compare needs at least two --broker NAME=COMMAND".into());
            }
            let only: Option<Vec<String>> =
                only.map(|o| o.split(',').map(|s| s.trim().to_string()).collect());
            if instructions {
                callgrind::check_installed()?;
            }
            let settings = compare::Settings {
                version,
                // Under callgrind a broker runs tens of times slower.
                scale: match (quick, instructions) {
                    (true, _) => 50,
                    (false, true) => 10,
                    (false, false) => 1,
                },
                persistence: persistent,
                only: only.as_deref(),
                instructions,
            };
            let results = compare::compare(&brokers, &settings, &progress);
            if json {
                serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?
            } else {
                compare::table(&results)
            }
        }
        other => return Err(format!("unknown command '{other}' (see --help)")),
    };
    if let Some((stop, handle)) = line {
        stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
    }
    println!("{output}");
    Ok(())
}

fn summary(report: &scenario::PubSubReport) -> String {
    let mut out = format!(
        "{} publisher(s) -> {} subscriber(s), QoS {}, {} B payloads, MQTT {}\n\
         sent        {:>12} msgs  {:>12.0} msg/s\n\
         delivered   {:>12} msgs  {:>12.0} msg/s  (expected {})\n\
         lost        {:>12}\n\
         duplicated  {:>12}\n",
        report.publishers,
        report.subscribers,
        report.qos,
        report.payload_size,
        report.mqtt_version,
        report.sent,
        report.sent_per_second,
        report.delivered,
        report.delivered_per_second,
        report.expected_deliveries,
        report.lost,
        report.duplicated,
    );
    if report.refused > 0 {
        out += &format!(
            "refused     {:>12} msgs  ({})\n",
            report.refused,
            compare::refusals(report)
        );
    }
    if let (Some(used), Some(asked)) = (report.inflight, report.inflight_lowered_from) {
        out += &format!(
            "inflight    {used:>12} per publisher  (--inflight {asked} lowered to the broker's \
             Receive Maximum)\n"
        );
    }
    if report.latency.samples > 0 {
        out += &format!(
            "latency     p50 {:.0} us  p99 {:.0} us  p99.9 {:.0} us  max {:.0} us\n",
            report.latency.p50_us,
            report.latency.p99_us,
            report.latency.p999_us,
            report.latency.max_us
        );
    }
    if let Some(cpu) = report.broker_cpu_seconds {
        out += &format!(
            "broker      {:.2} CPU s ({:.2} per million deliveries), {} KiB resident\n",
            cpu,
            report.broker_cpu_seconds_per_million.unwrap_or(0.0),
            report.broker_rss_bytes.unwrap_or(0) / 1024
        );
    }
    out += &format!("generator   {:.2} CPU s\n", report.generator_cpu_seconds);
    out
}
