//! `wren-bench compare`: the standard scenarios against several brokers in one run,
//! one broker at a time, with the ratios between them, over MQTT 3.1.1 or MQTT 5
//! (`--version`): every connection of every scenario speaks it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use wren::protocol::{ProtocolVersion, QoS};
use wren::transport::{Dialer, Kind};

use crate::callgrind;
use crate::crash::{self, CrashReport};
use crate::scenario::{run_idle, run_pubsub, Idle, IdleReport, Progress, PubSub, PubSubReport};
use crate::wire::{version_label, Wire};

/// A broker to start: a name for the table and a shell command with `{port}` and,
/// optionally, `{dir}` (a fresh directory per scenario, for the broker's store).
#[derive(Debug, Clone, Serialize)]
pub struct BrokerCommand {
    pub name: String,
    pub command: String,
}

impl BrokerCommand {
    /// Parses `NAME=COMMAND`.
    pub fn parse(text: &str) -> Result<BrokerCommand, String> {
        let (name, command) = text
            .split_once('=')
            .ok_or_else(|| format!("--broker '{text}': expected NAME=COMMAND"))?;
        if !command.contains("{port}") {
            return Err(format!(
                "--broker '{text}': the command needs a {{port}} placeholder"
            ));
        }
        Ok(BrokerCommand {
            name: name.trim().to_string(),
            command: command.trim().to_string(),
        })
    }
}

/// One scenario's result for one broker.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    // Boxed: a report is several times larger than the other outcomes.
    PubSub(Box<PubSubReport>),
    Idle(IdleReport),
    Crash(CrashReport),
    Failed { error: String },
}

/// The results for one broker.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerResults {
    pub broker: BrokerCommand,
    /// What the scenarios spoke: "3.1.1" or "5".
    pub mqtt_version: &'static str,
    /// Why no scenario ran: the broker refused a CONNECT of this version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub scenarios: Vec<(String, Outcome)>,
}

/// A scenario of the standard set.
struct Scenario {
    name: &'static str,
    build: Box<dyn Fn(SocketAddr, Option<u32>, String) -> Plan>,
}

enum Plan {
    PubSub(PubSub),
    Idle(Idle),
    /// The kill scenario (`crash.rs`) with this many messages.
    Crash(u64),
}

fn pubsub(
    address: SocketAddr,
    pid: Option<u32>,
    prefix: String,
    shape: (usize, usize),
    qos: QoS,
    count: u64,
    rate: Option<f64>,
) -> Plan {
    Plan::PubSub(PubSub {
        target: local(address),
        subscribe_target: None,
        // `compare` sets the run's version on every plan (`run_on_fresh_broker`).
        version: ProtocolVersion::V3_1_1,
        publishers: shape.0,
        subscribers: shape.1,
        qos,
        payload_size: 64,
        messages_per_publisher: count,
        rate,
        topic_per_publisher: shape.0 > 1,
        inflight: 64,
        timeout: Duration::from_secs(120),
        broker_pid: pid,
        prefix,
        persistent_subscribers: false,
    })
}

/// The same, with persistent subscribers.
fn persistent(plan: Plan) -> Plan {
    match plan {
        Plan::PubSub(run) => Plan::PubSub(PubSub {
            persistent_subscribers: true,
            ..run
        }),
        other => other,
    }
}

/// The standard set; `scale` divides message and connection counts (1 for the full
/// run, more for a quick one).
fn standard_set(scale: u64) -> Vec<Scenario> {
    let n = move |full: u64| (full / scale).max(10);
    vec![
        Scenario {
            name: "qos0 1->1",
            build: Box::new(move |a, p, x| {
                pubsub(a, p, x, (1, 1), QoS::AtMostOnce, n(200_000), None)
            }),
        },
        Scenario {
            name: "qos1 1->1",
            build: Box::new(move |a, p, x| {
                pubsub(a, p, x, (1, 1), QoS::AtLeastOnce, n(100_000), None)
            }),
        },
        Scenario {
            name: "qos2 1->1 (64 in flight)",
            build: Box::new(move |a, p, x| {
                pubsub(a, p, x, (1, 1), QoS::ExactlyOnce, n(50_000), None)
            }),
        },
        Scenario {
            name: "fan-out 1->100",
            build: Box::new(move |a, p, x| {
                pubsub(a, p, x, (1, 100), QoS::AtMostOnce, n(5_000), None)
            }),
        },
        Scenario {
            name: "fan-in 100->1",
            build: Box::new(move |a, p, x| {
                pubsub(a, p, x, (100, 1), QoS::AtMostOnce, n(2_000), None)
            }),
        },
        Scenario {
            name: "latency qos0 @1000/s",
            build: Box::new(move |a, p, x| {
                pubsub(a, p, x, (1, 1), QoS::AtMostOnce, n(5_000), Some(1000.0))
            }),
        },
        Scenario {
            name: "latency qos1 @1000/s",
            build: Box::new(move |a, p, x| {
                pubsub(a, p, x, (1, 1), QoS::AtLeastOnce, n(5_000), Some(1000.0))
            }),
        },
        Scenario {
            name: "10k idle connections",
            build: Box::new(move |address, broker_pid, prefix| {
                Plan::Idle(Idle {
                    target: local(address),
                    version: ProtocolVersion::V3_1_1,
                    connections: (10_000 / scale as usize).max(10),
                    idle_for: Duration::from_secs(if scale > 1 { 1 } else { 5 }),
                    broker_pid,
                    prefix,
                })
            }),
        },
    ]
}

/// The persistence set: QoS 1 and 2 throughput and QoS 1 latency with subscribers
/// in persistent sessions (what a broker with persistence stores), then the kill
/// scenario.
fn persistence_set(scale: u64) -> Vec<Scenario> {
    let n = move |full: u64| (full / scale).max(10);
    vec![
        Scenario {
            name: "persistent qos1 1->1",
            build: Box::new(move |a, p, x| {
                persistent(pubsub(a, p, x, (1, 1), QoS::AtLeastOnce, n(100_000), None))
            }),
        },
        Scenario {
            name: "persistent qos2 1->1 (64 in flight)",
            build: Box::new(move |a, p, x| {
                persistent(pubsub(a, p, x, (1, 1), QoS::ExactlyOnce, n(50_000), None))
            }),
        },
        Scenario {
            name: "persistent fan-in 10->1 qos1",
            build: Box::new(move |a, p, x| {
                persistent(pubsub(a, p, x, (10, 1), QoS::AtLeastOnce, n(10_000), None))
            }),
        },
        Scenario {
            name: "latency persistent qos1 @1000/s",
            build: Box::new(move |a, p, x| {
                persistent(pubsub(
                    a,
                    p,
                    x,
                    (1, 1),
                    QoS::AtLeastOnce,
                    n(5_000),
                    Some(1000.0),
                ))
            }),
        },
        Scenario {
            name: "kill -9 after acknowledged qos1",
            build: Box::new(move |_, _, _| Plan::Crash(n(1000))),
        },
    ]
}

/// Plain MQTT to a broker this run started.
fn local(address: SocketAddr) -> Dialer {
    Dialer::new(Kind::Tcp, address.ip().to_string(), address.port())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A broker process, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh directory for one scenario's store, removed on drop.
struct StoreDir(std::path::PathBuf);

impl StoreDir {
    fn new(broker: &str, index: usize) -> Result<StoreDir, String> {
        let name: String = broker
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path =
            std::env::temp_dir().join(format!("wren-bench-{}-{name}-{index}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot make {}: {e}", path.display()))?;
        Ok(StoreDir(path))
    }

    /// Bytes in the files below it.
    fn size(&self) -> u64 {
        let mut total = 0;
        let mut stack = vec![self.0.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                match entry.metadata() {
                    Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                    Ok(meta) => total += meta.len(),
                    Err(_) => {}
                }
            }
        }
        total
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(
    broker: &BrokerCommand,
    dir: &StoreDir,
    counted: bool,
) -> Result<(Running, SocketAddr), String> {
    let port = free_port().map_err(|e| format!("finding a free port: {e}"))?;
    start_at(broker, port, dir, counted)
}

/// Starts `broker` on `port`; `counted`, under callgrind (see `callgrind.rs`).
fn start_at(
    broker: &BrokerCommand,
    port: u16,
    dir: &StoreDir,
    counted: bool,
) -> Result<(Running, SocketAddr), String> {
    let mut command = broker
        .command
        .replace("{port}", &port.to_string())
        .replace("{dir}", &dir.0.to_string_lossy());
    if counted {
        command = callgrind::wrap(&command, &dir.0)?;
    }
    // Under callgrind a broker starts tens of times slower.
    let wait = Duration::from_secs(if counted { 120 } else { 15 });
    // `exec` makes the broker the child itself, so its process id is ours to measure.
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: cannot start '{command}': {e}", broker.name))?;
    let mut running = Running(child);
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + wait;
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = running.0.try_wait() {
            return Err(format!("{}: '{command}' exited with {status}", broker.name));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{}: nothing listens on port {port} after {} s",
                broker.name,
                wait.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok((running, address))
}

/// Runs the kill scenario: start, subscribe, publish, kill, start again on the same
/// store, count what came back.
fn run_crash(
    broker: &BrokerCommand,
    dir: &StoreDir,
    version: ProtocolVersion,
    count: u64,
) -> Result<CrashReport, String> {
    let port = free_port().map_err(|e| format!("finding a free port: {e}"))?;
    let (running, address) = start_at(broker, port, dir, false)?;
    crash::subscribe(&local(address), version).map_err(|e| e.0)?;
    let acknowledged = crash::publish(&local(address), version, count).map_err(|e| e.0)?;
    // Dropping it sends SIGKILL: no chance to save anything on the way out.
    drop(running);
    // The port may take a moment to be free again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (running, address) = loop {
        match start_at(broker, port, dir, false) {
            Ok(started) => break started,
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    };
    let report = crash::recover(&local(address), version, acknowledged).map_err(|e| e.0);
    drop(running);
    report
}

/// Whether `broker` accepts a CONNECT of `version`: started once on its own, it
/// is sent one; the error says how it refused.
fn accepts(broker: &BrokerCommand, version: ProtocolVersion) -> Result<(), String> {
    let dir = StoreDir::new(&broker.name, usize::MAX)?;
    let (running, address) = start(broker, &dir, false)?;
    let probe = Wire::connect(
        &local(address),
        version,
        &format!("wren-bench-{}-probe", std::process::id()),
        60,
        Duration::from_secs(10),
    );
    drop(running);
    probe.map(drop).map_err(|e| e.0)
}

/// What `compare` runs, besides the brokers.
pub struct Settings<'a> {
    /// Every connection speaks it.
    pub version: ProtocolVersion,
    /// Divides message and connection counts (1 for the full run).
    pub scale: u64,
    /// The persistence set instead of the standard one.
    pub persistence: bool,
    /// Only the scenarios whose names start with one of these.
    pub only: Option<&'a [String]>,
    /// Each broker runs under callgrind, and only the throughput scenarios run:
    /// instructions per delivered message (see `callgrind.rs`).
    pub instructions: bool,
}

/// Runs the standard set (or, with `persistence`, the persistence set) against
/// each broker in turn, every connection speaking `version`. A broker that
/// refuses a CONNECT of that version is skipped, with the reason.
pub fn compare(
    brokers: &[BrokerCommand],
    settings: &Settings<'_>,
    progress: &Arc<Progress>,
) -> Vec<BrokerResults> {
    let Settings {
        version,
        scale,
        persistence,
        only,
        instructions,
    } = *settings;
    let mut results = Vec::new();
    for broker in brokers {
        // Every broker speaks 3.1.1; not every one speaks 5, and one that does not
        // would fail every scenario the same way.
        if version != ProtocolVersion::V3_1_1 {
            eprintln!("{}: {version} CONNECT ...", broker.name);
            if let Err(error) = accepts(broker, version) {
                results.push(BrokerResults {
                    broker: broker.clone(),
                    mqtt_version: version_label(version),
                    skipped: Some(format!("refused an {version} CONNECT: {error}")),
                    scenarios: Vec::new(),
                });
                continue;
            }
        }
        let mut scenarios = Vec::new();
        let set = if persistence {
            persistence_set(scale)
        } else {
            standard_set(scale)
        };
        for (index, scenario) in set.into_iter().enumerate() {
            if only.is_some_and(|only| !only.iter().any(|o| scenario.name.starts_with(o.as_str())))
            {
                continue;
            }
            // The plan with no broker yet: what kind of scenario it is.
            let placeholder = SocketAddr::from(([127, 0, 0, 1], 0));
            let sketch = (scenario.build)(placeholder, None, String::new());
            let throughput = matches!(sketch, Plan::PubSub(PubSub { rate: None, .. }));
            if instructions && !throughput {
                // Latency, idle connections and kills say nothing under callgrind.
                continue;
            }
            eprintln!("{}: {} ...", broker.name, scenario.name);
            // A fresh broker, and a fresh store directory, per scenario: no scenario
            // inherits another's state.
            let dir = match StoreDir::new(&broker.name, index) {
                Ok(dir) => dir,
                Err(error) => {
                    scenarios.push((scenario.name.to_string(), Outcome::Failed { error }));
                    continue;
                }
            };
            let outcome = match sketch {
                Plan::Crash(count) => run_crash(broker, &dir, version, count)
                    .map(Outcome::Crash)
                    .unwrap_or_else(|error| Outcome::Failed { error }),
                _ => run_on_fresh_broker(broker, &dir, &scenario, version, instructions, progress),
            };
            scenarios.push((scenario.name.to_string(), outcome));
        }
        results.push(BrokerResults {
            broker: broker.clone(),
            mqtt_version: version_label(version),
            skipped: None,
            scenarios,
        });
    }
    results
}

/// Starts `broker` (under callgrind when `counted`), runs one load scenario on
/// it, and stops it.
fn run_on_fresh_broker(
    broker: &BrokerCommand,
    dir: &StoreDir,
    scenario: &Scenario,
    version: ProtocolVersion,
    counted: bool,
    progress: &Arc<Progress>,
) -> Outcome {
    let (running, address) = match start(broker, dir, counted) {
        Ok(started) => started,
        Err(error) => return Outcome::Failed { error },
    };
    let pid = running.0.id();
    if counted {
        if let Err(error) = callgrind::zero(pid) {
            return Outcome::Failed { error };
        }
    }
    let prefix = format!("bench/{}", std::process::id());
    let outcome = match (scenario.build)(address, Some(running.0.id()), prefix) {
        Plan::PubSub(run) => run_pubsub(&PubSub { version, ..run }, progress)
            .map_err(|e| e.0)
            .and_then(|mut report| {
                if run.persistent_subscribers {
                    report.store_bytes = Some(dir.size());
                }
                if counted {
                    let executed = callgrind::instructions_since_zero(pid, &dir.0)?;
                    report.broker_instructions_per_delivery =
                        Some(executed as f64 / report.delivered.max(1) as f64);
                }
                Ok(Outcome::PubSub(Box::new(report)))
            })
            .unwrap_or_else(|error| Outcome::Failed { error }),
        Plan::Idle(run) => run_idle(&Idle { version, ..run }, progress)
            .map(Outcome::Idle)
            .unwrap_or_else(|e| Outcome::Failed { error: e.0 }),
        Plan::Crash(_) => Outcome::Failed {
            error: "the kill scenario needs its own brokers".into(),
        },
    };
    drop(running);
    outcome
}

/// One printable row: a scenario's metric for every broker.
struct Row {
    scenario: String,
    metric: &'static str,
    higher_is_better: bool,
    values: Vec<Option<f64>>,
}

fn rows(results: &[BrokerResults]) -> Vec<Row> {
    let Some(first) = results.first() else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for (index, (name, outcome)) in first.scenarios.iter().enumerate() {
        let pick = |metric: fn(&Outcome) -> Option<f64>| -> Vec<Option<f64>> {
            results
                .iter()
                .map(|r| r.scenarios.get(index).and_then(|(_, o)| metric(o)))
                .collect()
        };
        let mut add = |metric: &'static str, higher: bool, f: fn(&Outcome) -> Option<f64>| {
            rows.push(Row {
                scenario: name.clone(),
                metric,
                higher_is_better: higher,
                values: pick(f),
            })
        };
        match outcome {
            Outcome::PubSub(report) if report.payload_size > 0 && name.starts_with("latency") => {
                add("p50 latency (us)", false, |o| lat(o, |l| l.p50_us));
                add("p99 latency (us)", false, |o| lat(o, |l| l.p99_us));
                add("p99.9 latency (us)", false, |o| lat(o, |l| l.p999_us));
                add("max latency (us)", false, |o| lat(o, |l| l.max_us));
                add("lost", false, |o| ps(o, |r| r.lost as f64));
            }
            Outcome::PubSub(_) => {
                add("delivered msg/s", true, |o| {
                    ps(o, |r| r.delivered_per_second)
                });
                add("lost", false, |o| ps(o, |r| r.lost as f64));
                add("duplicated", false, |o| ps(o, |r| r.duplicated as f64));
                add("p99 latency (us)", false, |o| lat(o, |l| l.p99_us));
                if matches!(outcome, Outcome::PubSub(r) if r.store_bytes.is_some()) {
                    add("store KiB after the run", false, |o| match o {
                        Outcome::PubSub(r) => r.store_bytes.map(|b| b as f64 / 1024.0),
                        _ => None,
                    });
                }
                if matches!(outcome, Outcome::PubSub(r) if r.broker_instructions_per_delivery.is_some())
                {
                    add("broker instructions / delivery", false, |o| match o {
                        Outcome::PubSub(r) => r.broker_instructions_per_delivery,
                        _ => None,
                    });
                }
                add("broker CPU s / M msgs", false, |o| match o {
                    Outcome::PubSub(r) => r.broker_cpu_seconds_per_million,
                    _ => None,
                });
                add("generator CPU s", false, |o| {
                    ps(o, |r| r.generator_cpu_seconds)
                });
            }
            Outcome::Idle(_) => {
                add("connected", true, |o| idle(o, |r| Some(r.connected as f64)));
                add("connects/s", true, |o| {
                    idle(o, |r| Some(r.connects_per_second))
                });
                add("RSS KiB / connection", false, |o| {
                    idle(o, |r| r.broker_rss_bytes_per_connection.map(|b| b / 1024.0))
                });
                add("idle CPU %", false, |o| {
                    idle(o, |r| r.broker_idle_cpu_percent)
                });
            }
            Outcome::Crash(_) => {
                add("acknowledged", true, |o| match o {
                    Outcome::Crash(r) => Some(r.acknowledged as f64),
                    _ => None,
                });
                add("acknowledged, lost to kill -9", false, |o| match o {
                    Outcome::Crash(r) => Some(r.lost as f64),
                    _ => None,
                });
            }
            Outcome::Failed { .. } => add("failed", false, |_| None),
        }
    }
    rows
}

fn ps(outcome: &Outcome, f: fn(&PubSubReport) -> f64) -> Option<f64> {
    match outcome {
        Outcome::PubSub(report) => Some(f(report)),
        _ => None,
    }
}

fn lat(outcome: &Outcome, f: fn(&crate::stats::Latency) -> f64) -> Option<f64> {
    match outcome {
        Outcome::PubSub(report) if report.latency.samples > 0 => Some(f(&report.latency)),
        _ => None,
    }
}

fn idle(outcome: &Outcome, f: fn(&IdleReport) -> Option<f64>) -> Option<f64> {
    match outcome {
        Outcome::Idle(report) => f(report),
        _ => None,
    }
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The comparison as a Markdown table under a line naming the MQTT version: a
/// column per broker that ran, then each broker's ratio to the first. Brokers that
/// were skipped, failed scenarios, lowered in-flight windows and refused messages
/// are listed below it.
pub fn table(all: &[BrokerResults]) -> String {
    let results: Vec<BrokerResults> = all
        .iter()
        .filter(|r| r.skipped.is_none())
        .cloned()
        .collect();
    let names: Vec<&str> = results.iter().map(|r| r.broker.name.as_str()).collect();
    let version = all.first().map_or("3.1.1", |r| r.mqtt_version);
    let mut out = format!("MQTT {version}\n\n");
    for skipped in all.iter().filter(|r| r.skipped.is_some()) {
        out += &format!(
            "{} skipped: {}\n",
            skipped.broker.name,
            skipped.skipped.as_deref().unwrap_or_default()
        );
    }
    if names.is_empty() {
        return out;
    }
    out += "| scenario | metric |";
    for name in &names {
        out += &format!(" {name} |");
    }
    for name in names.iter().skip(1) {
        out += &format!(" {name} / {} |", names[0]);
    }
    out += "\n|---|---|";
    out += &"---:|".repeat(names.len() * 2 - 1);
    out.push('\n');
    for row in rows(&results) {
        out += &format!(
            "| {} | {}{} |",
            row.scenario,
            row.metric,
            if row.higher_is_better { " ↑" } else { " ↓" }
        );
        for value in &row.values {
            out += &format!(" {} |", number(*value));
        }
        for value in row.values.iter().skip(1) {
            let ratio = match (row.values[0], value) {
                (Some(base), Some(v)) if base != 0.0 => format!("{:.2}×", v / base),
                _ => "-".into(),
            };
            out += &format!(" {ratio} |");
        }
        out.push('\n');
    }
    for result in &results {
        for (name, outcome) in &result.scenarios {
            match outcome {
                Outcome::Failed { error } => {
                    out += &format!("\n{} / {name} failed: {error}", result.broker.name);
                }
                Outcome::PubSub(report) => out += &notes(&result.broker.name, name, report),
                _ => {}
            }
        }
    }
    out
}

/// What a row of numbers does not show: a window lowered to the broker's Receive
/// Maximum (the scenario's name says 64 in flight), refused messages.
fn notes(broker: &str, scenario: &str, report: &PubSubReport) -> String {
    let mut out = String::new();
    if let (Some(used), Some(asked)) = (report.inflight, report.inflight_lowered_from) {
        out += &format!(
            "\n{broker} / {scenario}: {used} in flight, not {asked} (the broker's Receive Maximum)"
        );
    }
    if report.refused > 0 {
        out += &format!(
            "\n{broker} / {scenario}: {} refused ({})",
            report.refused,
            refusals(report)
        );
    }
    out
}

/// `0x87 not authorized: 12, 0x97 quota exceeded: 3`.
pub fn refusals(report: &PubSubReport) -> String {
    report
        .refused_by_reason
        .iter()
        .map(|(reason, count)| format!("{reason}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}
