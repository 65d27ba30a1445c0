//! The load scenarios: publishers and subscribers together, and idle connections.
//!
//! Every subscriber subscribes to every publisher's messages; each payload carries a
//! stamp (send time, publisher, sequence), so every delivery is checked: a broker
//! that loses or duplicates messages cannot look fast, and latency is measured end
//! to end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;
use serde::Serialize;
use wren::protocol::{
    Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec, PubRel, Publish, QoS, ReasonCode,
    Subscribe, SubscribeFilter, TopicFilter, TopicName,
};
use wren::transport::Dialer;

use crate::stats::{read_stamp, stamp, Deliveries, Latency, Usage, STAMP_LEN};
use crate::wire::{describe, version_label, Inbound, Outbound, Wire, WireError};

/// A publish/subscribe run.
#[derive(Debug, Clone)]
pub struct PubSub {
    pub target: Dialer,
    /// Where subscribers connect, when not to `target`: another broker, bridged
    /// to the publishers' one, to measure the bridge.
    pub subscribe_target: Option<Box<Dialer>>,
    /// What every connection of the run speaks.
    pub version: ProtocolVersion,
    pub publishers: usize,
    pub subscribers: usize,
    pub qos: QoS,
    /// Bytes per payload, at least [`STAMP_LEN`].
    pub payload_size: usize,
    pub messages_per_publisher: u64,
    /// Messages per second per publisher; `None` for as fast as possible.
    pub rate: Option<f64>,
    /// One topic per publisher (subscribers use a wildcard) instead of one shared.
    pub topic_per_publisher: bool,
    /// QoS 1/2 messages in flight per publisher; over MQTT 5, no more than the
    /// broker's Receive Maximum.
    pub inflight: usize,
    /// Upper bound on the whole run.
    pub timeout: Duration,
    pub broker_pid: Option<u32>,
    /// Unique per run, so runs never see each other's messages.
    pub prefix: String,
    /// Subscribers ask for persistent sessions (CleanSession 0), so a broker with
    /// persistence stores what it queues for them.
    pub persistent_subscribers: bool,
}

/// What a publish/subscribe run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PubSubReport {
    /// "3.1.1" or "5".
    pub mqtt_version: &'static str,
    pub publishers: usize,
    pub subscribers: usize,
    pub qos: u8,
    pub payload_size: usize,
    /// QoS 1/2 messages each publisher kept in flight at most: `--inflight`, or
    /// less when the broker's Receive Maximum is smaller (the smallest over the
    /// publishers). `None` for QoS 0.
    pub inflight: Option<usize>,
    /// The smallest Receive Maximum the publishers' CONNACKs announced (MQTT 5).
    pub receive_maximum: Option<u16>,
    /// The `--inflight` asked for, when the broker's Receive Maximum lowered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inflight_lowered_from: Option<usize>,
    /// Messages sent and, for QoS 1/2, accepted by the broker.
    pub sent: u64,
    pub sent_per_second: f64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub delivered_per_second: f64,
    pub lost: u64,
    pub duplicated: u64,
    /// QoS 1/2 messages the broker refused (MQTT 5 PUBACK / PUBREC / PUBCOMP with a
    /// reason code of 0x80 or more): neither sent nor expected.
    pub refused: u64,
    /// The refusals by reason, `"0x87 not authorized": 12`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub refused_by_reason: BTreeMap<String, u64>,
    pub latency: Latency,
    pub seconds: f64,
    pub broker_cpu_seconds: Option<f64>,
    pub broker_cpu_seconds_per_million: Option<f64>,
    pub broker_rss_bytes: Option<u64>,
    pub generator_cpu_seconds: f64,
    /// Bytes in the broker's store directory at the end of the run (`compare`
    /// with a `{dir}` placeholder only).
    pub store_bytes: Option<u64>,
    /// Instructions the broker executed per delivered message (`compare
    /// --instructions`, counted by callgrind).
    pub broker_instructions_per_delivery: Option<f64>,
}

/// Progress counters shared with the progress line.
#[derive(Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
}

struct SubscriberResult {
    deliveries: Deliveries,
    latencies: Vec<u64>,
    last_delivery: Option<Instant>,
}

/// Most latency samples one subscriber keeps; beyond this every k-th is kept.
const MAX_SAMPLES: usize = 2_000_000;

fn filter_for(run: &PubSub) -> String {
    if run.topic_per_publisher {
        format!("{}/+", run.prefix)
    } else {
        format!("{}/shared", run.prefix)
    }
}

fn topic_for(run: &PubSub, publisher: usize) -> String {
    if run.topic_per_publisher {
        format!("{}/{publisher}", run.prefix)
    } else {
        format!("{}/shared", run.prefix)
    }
}

/// A client id from the run's topic prefix: without `/`, which some brokers refuse in
/// client identifiers.
fn client_id(prefix: &str, role: &str, index: usize) -> String {
    format!("{}-{role}-{index}", prefix.replace('/', "-"))
}

fn id(n: u64) -> PacketId {
    // 1..=65535, cycling; safe while fewer than 65535 are in flight.
    PacketId::new((n % 65_535 + 1) as u16).unwrap_or(PacketId::MIN)
}

pub fn run_pubsub(run: &PubSub, progress: &Arc<Progress>) -> Result<PubSubReport, WireError> {
    let deadline = Instant::now() + run.timeout;
    let payload_size = run.payload_size.max(STAMP_LEN);
    let broker_pid = run.broker_pid.map(|pid| pid.to_string());
    let broker_before = broker_pid.as_deref().and_then(Usage::of);
    let generator_before = Usage::of("self").unwrap_or_default();

    // Everyone connects and subscribes before anyone publishes.
    let ready = Arc::new(Barrier::new(run.publishers + run.subscribers + 1));
    let publishing_done = Arc::new(AtomicBool::new(false));
    let failure: Arc<Mutex<Option<WireError>>> = Arc::new(Mutex::new(None));

    let mut subscribers = Vec::new();
    for index in 0..run.subscribers {
        let wire = Wire::connect_with(
            run.subscribe_target.as_deref().unwrap_or(&run.target),
            run.version,
            &client_id(&run.prefix, "sub", index),
            600,
            Duration::from_secs(10),
            !run.persistent_subscribers,
        )?;
        let run = run.clone();
        let ready = Arc::clone(&ready);
        let done = Arc::clone(&publishing_done);
        let progress = Arc::clone(progress);
        subscribers.push(
            thread::Builder::new()
                .name(format!("sub-{index}"))
                .spawn(move || subscriber(wire, &run, &ready, &done, deadline, &progress))?,
        );
    }

    let mut publishers = Vec::new();
    for index in 0..run.publishers {
        let wire = Wire::connect(
            &run.target,
            run.version,
            &client_id(&run.prefix, "pub", index),
            600,
            Duration::from_secs(10),
        )?;
        let run = run.clone();
        let ready = Arc::clone(&ready);
        let failure = Arc::clone(&failure);
        let progress = Arc::clone(progress);
        publishers.push(
            thread::Builder::new()
                .name(format!("pub-{index}"))
                .spawn(move || {
                    match publisher(wire, &run, index, payload_size, &ready, deadline, &progress) {
                        Ok(published) => Some(published),
                        Err(e) => {
                            failure.lock().get_or_insert(e);
                            None
                        }
                    }
                })?,
        );
    }

    ready.wait();
    let start = Instant::now();
    let mut sent = 0;
    let mut last_send = start;
    let mut window: Option<usize> = None;
    let mut receive_maximum: Option<u16> = None;
    let mut refused = BTreeMap::new();
    for handle in publishers {
        if let Ok(Some(published)) = handle.join() {
            sent += published.accepted;
            last_send = last_send.max(published.finished);
            window = Some(window.map_or(published.window, |w| w.min(published.window)));
            if run.version == ProtocolVersion::V5 {
                let announced = published.receive_maximum;
                receive_maximum = Some(receive_maximum.map_or(announced, |r| r.min(announced)));
            }
            for (code, count) in published.refused {
                *refused.entry(code).or_insert(0) += count;
            }
        }
    }
    publishing_done.store(true, Ordering::SeqCst);

    let mut report = PubSubReport {
        mqtt_version: version_label(run.version),
        publishers: run.publishers,
        subscribers: run.subscribers,
        qos: run.qos as u8,
        payload_size,
        inflight: window.filter(|_| run.qos != QoS::AtMostOnce),
        receive_maximum,
        inflight_lowered_from: window
            .filter(|&used| run.qos != QoS::AtMostOnce && used < run.inflight)
            .map(|_| run.inflight),
        sent,
        expected_deliveries: sent * run.subscribers as u64,
        refused: refused.values().sum(),
        refused_by_reason: refused
            .into_iter()
            .map(|(code, count)| (describe(ReasonCode(code)), count))
            .collect(),
        ..PubSubReport::default()
    };
    let mut latencies = Vec::new();
    let mut last_delivery = start;
    for handle in subscribers {
        let result = handle
            .join()
            .map_err(|_| WireError("a subscriber thread panicked".into()))??;
        report.delivered += result.deliveries.received;
        report.duplicated += result.deliveries.duplicated + result.deliveries.foreign;
        report.lost += result.deliveries.lost();
        latencies.extend(result.latencies);
        if let Some(at) = result.last_delivery {
            last_delivery = last_delivery.max(at);
        }
    }
    if let Some(error) = failure.lock().take() {
        return Err(error);
    }
    // Losses count against what was really sent, not what was planned.
    let planned = run.publishers as u64 * run.messages_per_publisher;
    report.lost = report
        .lost
        .saturating_sub((planned - sent.min(planned)) * run.subscribers as u64);

    let send_seconds = last_send.duration_since(start).as_secs_f64().max(1e-9);
    let delivery_seconds = last_delivery.duration_since(start).as_secs_f64().max(1e-9);
    report.sent_per_second = sent as f64 / send_seconds;
    report.delivered_per_second = report.delivered as f64 / delivery_seconds;
    report.seconds = send_seconds.max(delivery_seconds);
    report.latency = Latency::from_nanos(latencies);
    if let (Some(before), Some(after)) = (broker_before, broker_pid.as_deref().and_then(Usage::of))
    {
        let cpu = after.cpu_since(&before);
        report.broker_cpu_seconds = Some(cpu);
        report.broker_rss_bytes = Some(after.rss_bytes);
        if report.delivered > 0 {
            report.broker_cpu_seconds_per_million = Some(cpu * 1e6 / report.delivered as f64);
        }
    }
    report.generator_cpu_seconds = Usage::of("self")
        .unwrap_or_default()
        .cpu_since(&generator_before);
    Ok(report)
}

fn subscriber(
    mut wire: Wire,
    run: &PubSub,
    ready: &Barrier,
    publishing_done: &AtomicBool,
    deadline: Instant,
    progress: &Progress,
) -> Result<SubscriberResult, WireError> {
    let filter = TopicFilter::new(filter_for(run)).map_err(|e| WireError(e.to_string()))?;
    wire.queue(&Packet::Subscribe(Subscribe {
        packet_id: id(0),
        filters: vec![SubscribeFilter::new(filter, run.qos)],
        properties: None,
    }));
    wire.flush()?;
    loop {
        match wire.recv(Some(Instant::now() + Duration::from_secs(10)))? {
            Some(Packet::SubAck(_)) => break,
            Some(_) => continue,
            None => return Err(WireError("no SUBACK within 10 s".into())),
        }
    }
    ready.wait();

    let expected = run.publishers as u64 * run.messages_per_publisher;
    let mut result = SubscriberResult {
        deliveries: Deliveries::new(run.publishers, run.messages_per_publisher),
        latencies: Vec::with_capacity((expected as usize).min(MAX_SAMPLES)),
        last_delivery: None,
    };
    let keep_every = (expected as usize / MAX_SAMPLES).max(1);
    let mut idle_since = Instant::now();
    while result.deliveries.received < expected && Instant::now() < deadline {
        // Short waits so the end of publishing is noticed; this is the generator,
        // not the system under test.
        let packet = match wire.recv(Some(Instant::now() + Duration::from_millis(100)))? {
            Some(packet) => packet,
            None => {
                // Once publishing is over, two silent seconds mean nothing more comes.
                if publishing_done.load(Ordering::SeqCst)
                    && idle_since.elapsed() > Duration::from_secs(2)
                {
                    break;
                }
                continue;
            }
        };
        let mut next = Some(packet);
        while let Some(packet) = next {
            match packet {
                Packet::Publish(publish) => {
                    let now = crate::stats::now_nanos();
                    if let Some((sent, publisher, sequence)) = read_stamp(&publish.payload) {
                        let before = result.deliveries.received;
                        result.deliveries.record(publisher, sequence);
                        if result.deliveries.received > before
                            && (result.deliveries.received as usize) % keep_every == 0
                        {
                            result.latencies.push(now.saturating_sub(sent));
                        }
                    }
                    match (publish.qos, publish.packet_id) {
                        (QoS::AtLeastOnce, Some(id)) => wire.queue(&PubAck::new(id).into()),
                        (QoS::ExactlyOnce, Some(id)) => wire.queue(&PubRec::new(id).into()),
                        _ => {}
                    }
                }
                Packet::PubRel(rel) => wire.queue(&PubComp::new(rel.packet_id).into()),
                _ => {}
            }
            next = wire.try_decode()?;
        }
        wire.flush()?;
        let now = Instant::now();
        result.last_delivery = Some(now);
        idle_since = now;
        progress
            .delivered
            .store(result.deliveries.received, Ordering::Relaxed);
    }
    wire.queue(&Packet::Disconnect(Default::default()));
    let _ = wire.flush();
    Ok(result)
}

/// What one publisher did.
struct Published {
    /// Messages sent (QoS 0) or sent and accepted by the broker (QoS 1/2).
    accepted: u64,
    /// When the last was sent (QoS 0) or answered (QoS 1/2).
    finished: Instant,
    /// QoS 1/2 messages it kept in flight at most.
    window: usize,
    /// What its CONNACK announced (65,535 when nothing, and on 3.1.1).
    receive_maximum: u16,
    /// Refused QoS 1/2 messages, per reason code.
    refused: BTreeMap<u8, u64>,
}

/// Publishes; returns how many were sent (accepted, for QoS 1/2) and when the last
/// was done.
fn publisher(
    wire: Wire,
    run: &PubSub,
    index: usize,
    payload_size: usize,
    ready: &Barrier,
    deadline: Instant,
    progress: &Progress,
) -> Result<Published, WireError> {
    let topic = TopicName::new(topic_for(run, index)).map_err(|e| WireError(e.to_string()))?;
    // MQTT 5: never more unacknowledged than the broker's Receive Maximum, which
    // it enforces by disconnecting with 0x93. (3.1.1 connections say 65,535, so
    // `--inflight` stands.)
    let receive_maximum = wire.receive_maximum();
    let window = run.inflight.max(1).min(usize::from(receive_maximum));
    let too_large = too_large(&wire, run, &topic, payload_size);
    let Wire {
        inbound,
        mut outbound,
        closer,
        ..
    } = wire;
    // QoS 1/2: a token per message in flight, given back by its acknowledgement; the
    // acknowledgements are read on a thread of their own, which also answers PUBREC
    // with PUBREL through a second handle on the connection's writer. When that
    // thread ends, the token channel closes, which wakes a publisher waiting for one.
    let (tokens, returned) = bounded::<()>(window);
    let closing = Arc::new(AtomicBool::new(false));
    let (inbound, acks) = match run.qos {
        QoS::AtMostOnce => (Some(inbound), None),
        _ => {
            let answers = outbound.handle();
            let closing = Arc::clone(&closing);
            let handle = thread::Builder::new()
                .name(format!("acks-{index}"))
                .spawn(move || read_acks(inbound, answers, returned, &closing, deadline))?;
            (None, Some(handle))
        }
    };
    ready.wait();
    let sent = match too_large {
        Some(error) => Err(error),
        None => send(
            &mut outbound,
            run,
            &topic,
            index,
            payload_size,
            &tokens,
            deadline,
            progress,
        ),
    };
    let finished = match &acks {
        None => Instant::now(),
        Some(handle) => {
            // Done when every token has come back, the reader has stopped, or time
            // is up.
            while !tokens.is_empty() && !handle.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            Instant::now()
        }
    };
    if let Some(mut inbound) = inbound {
        // QoS 0 reads nothing while it publishes, so the broker's DISCONNECT is
        // looked for at the end, before the bench's own: at once after a failed
        // write, and briefly after an MQTT 5 run (an MQTT 5 broker says why it
        // closes; a 3.1.1 one cannot, and its runs stay as they were).
        let look = match (&sent, run.version) {
            (Err(_), _) => Some(Duration::from_millis(500)),
            (Ok(_), ProtocolVersion::V5) => Some(Duration::from_millis(20)),
            _ => None,
        };
        if let Some(wait) = look {
            if let Err(error) = inbound.recv(Some(Instant::now() + wait)) {
                closer.close();
                return Err(error);
            }
        }
    }
    // From here on, the connection ending is ours, not the broker's doing.
    closing.store(true, Ordering::SeqCst);
    outbound.queue(&Packet::Disconnect(Default::default()));
    let _ = outbound.flush();
    // Closing also ends the acknowledgement reader's wait.
    closer.close();
    let (accepted, refused) = match acks {
        Some(handle) => {
            let acks = handle
                .join()
                .map_err(|_| WireError("an acknowledgement reader panicked".into()))?;
            // What the broker said (its DISCONNECT) explains a failed write better
            // than the write's own error.
            if let Some(error) = acks.error {
                return Err(error);
            }
            sent?;
            (acks.accepted, acks.refused)
        }
        None => (sent?, BTreeMap::new()),
    };
    Ok(Published {
        accepted,
        finished,
        window,
        receive_maximum,
        refused,
    })
}

/// An error when a PUBLISH of this run is larger than the broker's Maximum Packet
/// Size (MQTT 5): the broker would disconnect with 0x95 at the first one.
fn too_large(
    wire: &Wire,
    run: &PubSub,
    topic: &TopicName,
    payload_size: usize,
) -> Option<WireError> {
    let max = wire.limits.maximum_packet_size?;
    let mut publish = Publish::new(topic.clone(), vec![0u8; payload_size], run.qos, false);
    publish.packet_id = (run.qos != QoS::AtMostOnce).then_some(PacketId::MIN);
    let mut bytes = Vec::new();
    let _ = Packet::Publish(publish).encode_for(run.version, &mut bytes);
    (bytes.len() > max as usize).then(|| {
        WireError(format!(
            "a PUBLISH of {} bytes is larger than the broker's Maximum Packet Size {max}: \
             use a smaller -s",
            bytes.len()
        ))
    })
}

/// Sends the run's messages, at most `tokens`' capacity of QoS 1/2 ones
/// unacknowledged; how many were sent.
#[allow(clippy::too_many_arguments)]
fn send(
    outbound: &mut Outbound,
    run: &PubSub,
    topic: &TopicName,
    index: usize,
    payload_size: usize,
    tokens: &Sender<()>,
    deadline: Instant,
    progress: &Progress,
) -> Result<u64, WireError> {
    let mut payload = vec![0u8; payload_size];
    let start = Instant::now();
    let mut sent = 0;
    let mut unreported = 0;
    for sequence in 0..run.messages_per_publisher {
        if Instant::now() > deadline {
            break;
        }
        if let Some(rate) = run.rate {
            let due = start + Duration::from_secs_f64(sequence as f64 / rate);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
        if run.qos != QoS::AtMostOnce && tokens.try_send(()).is_err() {
            // The window is full: send what is buffered, then wait for an ack (or
            // for the reader to stop, which closes the channel).
            outbound.flush()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if tokens.send_timeout((), left).is_err() {
                break;
            }
        }
        stamp(&mut payload, index as u32, sequence);
        let mut publish = Publish::new(topic.clone(), payload.clone(), run.qos, false);
        if run.qos != QoS::AtMostOnce {
            publish.packet_id = Some(id(sequence));
        }
        outbound.queue(&Packet::Publish(publish));
        sent += 1;
        unreported += 1;
        if run.rate.is_some() || outbound.queued() >= 16 * 1024 {
            outbound.flush()?;
            progress.sent.fetch_add(unreported, Ordering::Relaxed);
            unreported = 0;
        }
    }
    outbound.flush()?;
    progress.sent.fetch_add(unreported, Ordering::Relaxed);
    Ok(sent)
}

/// What a publisher's acknowledgement reader saw.
#[derive(Default)]
struct Acks {
    /// Messages the broker accepted: PUBACK (QoS 1) or PUBCOMP (QoS 2) with a
    /// success code (0x10 "no matching subscribers" is one).
    accepted: u64,
    /// Messages it refused, per reason code (0x80 and above, MQTT 5).
    refused: BTreeMap<u8, u64>,
    /// Why the connection ended before the publisher closed it.
    error: Option<WireError>,
}

/// Reads a publisher's acknowledgements until its socket is shut or time is up;
/// each gives a token back.
fn read_acks(
    mut reader: Inbound,
    mut answers: Outbound,
    returned: Receiver<()>,
    closing: &AtomicBool,
    deadline: Instant,
) -> Acks {
    let mut acks = Acks::default();
    let answered = |acks: &mut Acks, code: ReasonCode| {
        let _ = returned.try_recv();
        if code.is_error() {
            *acks.refused.entry(code.0).or_insert(0) += 1;
        } else {
            acks.accepted += 1;
        }
    };
    while Instant::now() < deadline {
        match reader.recv(Some(deadline)) {
            Ok(Some(Packet::PubAck(PubAck { reason_code, .. })))
            | Ok(Some(Packet::PubComp(PubComp { reason_code, .. }))) => {
                answered(&mut acks, reason_code)
            }
            // A refused PUBREC ends the exchange (MQTT 5, 4.3.3): no PUBREL, and
            // the message no longer counts against the Receive Maximum.
            Ok(Some(Packet::PubRec(rec))) if rec.reason_code.is_error() => {
                answered(&mut acks, rec.reason_code)
            }
            Ok(Some(Packet::PubRec(rec))) => {
                answers.queue(&PubRel::new(rec.packet_id).into());
                if let Err(error) = answers.flush() {
                    if !closing.load(Ordering::SeqCst) {
                        acks.error = Some(error);
                    }
                    break;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(error) => {
                if !closing.load(Ordering::SeqCst) {
                    acks.error = Some(error);
                }
                break;
            }
        }
    }
    acks
}

/// The keep-alive of an idle connection, in seconds.
const IDLE_KEEP_ALIVE: u16 = 3600;

/// An idle-connections run: open many connections, then measure what they cost the
/// broker while nobody says anything.
#[derive(Debug, Clone)]
pub struct Idle {
    pub target: Dialer,
    /// What every connection speaks.
    pub version: ProtocolVersion,
    pub connections: usize,
    /// How long to watch the idle broker.
    pub idle_for: Duration,
    pub broker_pid: Option<u32>,
    pub prefix: String,
}

/// What an idle-connections run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdleReport {
    pub connections: usize,
    pub connected: usize,
    pub connects_per_second: f64,
    pub broker_rss_bytes_per_connection: Option<f64>,
    /// Broker CPU while idle, as a percentage of one core.
    pub broker_idle_cpu_percent: Option<f64>,
    pub errors: usize,
}

pub fn run_idle(run: &Idle, progress: &Arc<Progress>) -> Result<IdleReport, WireError> {
    let pid = run.broker_pid.map(|pid| pid.to_string());
    let before = pid.as_deref().and_then(Usage::of);
    let start = Instant::now();
    // A few threads connect in parallel: connection setup, not the generator, should
    // be what is measured.
    let threads = 4.min(run.connections.max(1));
    let per_thread = run.connections.div_ceil(threads);
    let mut handles = Vec::new();
    for t in 0..threads {
        let run = run.clone();
        let progress = Arc::clone(progress);
        handles.push(thread::spawn(move || {
            let mut wires = Vec::new();
            let mut errors = 0;
            let first = t * per_thread;
            for n in first..(first + per_thread).min(run.connections) {
                // An hour's keep-alive: no pings while the broker is watched, so
                // it has no reason to wake. (Not 0, which rumqttd refuses.)
                match Wire::connect(
                    &run.target,
                    run.version,
                    &client_id(&run.prefix, "idle", n),
                    IDLE_KEEP_ALIVE,
                    Duration::from_secs(10),
                ) {
                    Ok(wire) => wires.push(wire),
                    Err(_) => errors += 1,
                }
                progress.sent.fetch_add(1, Ordering::Relaxed);
            }
            (wires, errors)
        }));
    }
    let mut wires = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let (mut w, e) = handle
            .join()
            .map_err(|_| WireError("a connecting thread panicked".into()))?;
        wires.append(&mut w);
        errors += e;
    }
    let connect_seconds = start.elapsed().as_secs_f64().max(1e-9);
    let mut report = IdleReport {
        connections: run.connections,
        connected: wires.len(),
        connects_per_second: wires.len() as f64 / connect_seconds,
        errors,
        ..IdleReport::default()
    };
    if let (Some(before), Some(pid)) = (before, pid.as_deref()) {
        // Let the broker settle after the burst of connects, then watch it idle.
        thread::sleep(Duration::from_secs(1));
        if let Some(loaded) = Usage::of(pid) {
            // Nothing to divide by when the broker refused every connection.
            report.broker_rss_bytes_per_connection = (!wires.is_empty())
                .then(|| (loaded.rss_bytes as f64 - before.rss_bytes as f64) / wires.len() as f64);
            thread::sleep(run.idle_for);
            if let Some(after) = Usage::of(pid) {
                report.broker_idle_cpu_percent =
                    Some(after.cpu_since(&loaded) * 100.0 / run.idle_for.as_secs_f64());
            }
        }
    }
    for mut wire in wires {
        wire.queue(&Packet::Disconnect(Default::default()));
        let _ = wire.flush();
    }
    Ok(report)
}
