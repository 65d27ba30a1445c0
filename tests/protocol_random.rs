//! The decoder against hostile input, MQTT 3.1.1 and MQTT 5: random bytes and mutated
//! valid packets never panic it, whatever it decodes re-encodes to itself, and memory follows what
//! arrived, never what the peer announced.
//!
//! Allocations are counted by a global allocator that keeps one tally per thread, so
//! tests running side by side do not disturb each other's figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;
use wren::protocol::{
    Auth, ConnAck, Connect, DecodeError, Decoder, Disconnect, Packet, PacketId, PacketType,
    Properties, ProtocolVersion, PubAck, PubRel, Publish, QoS, ReasonCode, SubAck, Subscribe,
    SubscribeFilter, TopicFilter, TopicName, UnsubAck, Unsubscribe, Will, DEFAULT_MAX_PACKET_SIZE,
    MAX_REMAINING_LENGTH,
};

// ---------------------------------------------------------------------------------
// Counting allocator.
// ---------------------------------------------------------------------------------

struct CountingAllocator;

thread_local! {
    // `const` initialisation and no destructor: reading these from inside the
    // allocator never allocates.
    static ALLOCATED_BYTES: Cell<usize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn record(bytes: usize) {
    let _ = ALLOCATED_BYTES.try_with(|total| total.set(total.get() + bytes));
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every call is passed on unchanged to the system allocator; the counters
// only observe.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as a new allocation of the new size: an upper bound.
        record(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// What `f` allocated on this thread: (bytes, number of allocations).
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let bytes_before = ALLOCATED_BYTES.with(Cell::get);
    let count_before = ALLOCATIONS.with(Cell::get);
    let result = f();
    let bytes = ALLOCATED_BYTES.with(Cell::get) - bytes_before;
    let count = ALLOCATIONS.with(Cell::get) - count_before;
    (result, bytes, count)
}

// ---------------------------------------------------------------------------------
// Input generation.
// ---------------------------------------------------------------------------------

/// xorshift64*: small, fast, and the same sequence on every machine, so a failure
/// names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

/// Valid packets of every type to mutate, short and long.
fn corpus() -> Vec<Vec<u8>> {
    let field = |s: &[u8]| [&(s.len() as u16).to_be_bytes()[..], s].concat();
    let packet = |first: u8, body: Vec<u8>| {
        let mut bytes = vec![first];
        let mut len = body.len();
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            bytes.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        bytes.extend(body);
        bytes
    };
    let connect_header = |flags: u8| [&b"\x00\x04MQTT\x04"[..], &[flags, 0, 60]].concat();
    vec![
        packet(0x10, [connect_header(0x02), field(b"client")].concat()),
        packet(
            0x10,
            [
                connect_header(0xEE),
                field(b"c"),
                field(b"will/topic"),
                field(b"bye"),
                field(b"user"),
                field(b"pass"),
            ]
            .concat(),
        ),
        packet(
            0x10,
            [&b"\x00\x06MQIsdp\x03\x02\x00\x0A"[..], &field(b"old")].concat(),
        ),
        vec![0x20, 0x02, 0x01, 0x00],
        packet(0x30, [field(b"a/b"), b"hello".to_vec()].concat()),
        packet(
            0x3B,
            [field(b"a/b/c"), vec![0x12, 0x34], vec![7; 200]].concat(),
        ),
        packet(0x35, [field("é/€".as_bytes()), vec![0, 9]].concat()),
        vec![0x40, 0x02, 0x00, 0x01],
        vec![0x50, 0x02, 0x00, 0x02],
        vec![0x62, 0x02, 0x00, 0x03],
        vec![0x70, 0x02, 0x00, 0x04],
        packet(
            0x82,
            [vec![0, 5], field(b"a/#"), vec![1], field(b"+/b"), vec![2]].concat(),
        ),
        vec![0x90, 0x05, 0x00, 0x05, 0x00, 0x01, 0x80],
        packet(0xA2, [vec![0, 6], field(b"a/#"), field(b"x")].concat()),
        vec![0xB0, 0x02, 0x00, 0x06],
        vec![0xC0, 0x00],
        vec![0xD0, 0x00],
        vec![0xE0, 0x00],
    ]
}

/// One to four random edits of a valid packet.
fn mutate(rng: &mut Rng, original: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(8) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
            1 if at < bytes.len() => bytes[at] = rng.byte(),
            2 => bytes.insert(at, rng.byte()),
            3 if at < bytes.len() => {
                bytes.remove(at);
            }
            4 => bytes.truncate(at),
            5 => {
                let len = rng.below(8);
                bytes.extend(rng.bytes(len));
            }
            // A plausible but wrong remaining length.
            6 if bytes.len() > 1 => bytes[1] = rng.byte() & 0x7F,
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                bytes.splice(at..at, other.iter().copied());
            }
        }
    }
    bytes
}

/// Random bytes behind a first byte that names a real packet type, so that the
/// body parsers, not just the fixed header, see the noise.
fn random_packet(rng: &mut Rng) -> Vec<u8> {
    const FIRST_BYTES: [u8; 13] = [
        0x10, 0x20, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0, 0xC0, 0xD0, 0xE0,
    ];
    let first = if rng.below(3) == 0 {
        0x30 | (rng.byte() & 0x0F) // PUBLISH with any flags
    } else {
        FIRST_BYTES[rng.below(FIRST_BYTES.len())]
    };
    let len = rng.below(48);
    let body = rng.bytes(len);
    [vec![first, body.len() as u8], body].concat()
}

// ---------------------------------------------------------------------------------
// The decoding loop every input goes through.
// ---------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes `input` the way a connection does, until it needs more bytes or meets an
/// error, and checks on the way that:
/// - nothing panics;
/// - every call either consumes a whole packet, or leaves the buffer as it was;
/// - every decoded packet encodes, and those bytes decode to the same packet;
/// - no call allocates more than `ALLOCATION_FACTOR` times the bytes it was given.
fn drain(input: &[u8], max_packet_size: usize, version: ProtocolVersion) -> Result<usize, String> {
    let mut buffer = BytesMut::from(input);
    let mut decoder = Decoder::new().with_max_packet_size(max_packet_size);
    let slack = if version == ProtocolVersion::V5 {
        // Up to two boxed sets of properties (a CONNECT's and its will's), whatever
        // their size on the wire.
        decoder = decoder.with_version(version);
        ALLOCATION_SLACK + 2 * std::mem::size_of::<Properties>()
    } else {
        ALLOCATION_SLACK
    };
    let mut packets = 0;
    // Each packet takes at least two bytes, so this bounds the loop.
    for _ in 0..=input.len() / 2 {
        let before = buffer.len();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            allocations(|| decoder.decode(&mut buffer))
        }));
        let Ok((result, allocated, _)) = outcome else {
            return Err("decode panicked".into());
        };
        if allocated > ALLOCATION_FACTOR * before + slack {
            return Err(format!(
                "allocated {allocated} bytes for {before} bytes of input"
            ));
        }
        match result {
            Ok(Some(packet)) => {
                if buffer.len() >= before {
                    return Err(format!("{packet} decoded without consuming bytes"));
                }
                // The version the packet was decoded in (a CONNECT writes its own).
                let version = decoder.version();
                let mut encoded = Vec::new();
                packet
                    .encode_for(version, &mut encoded)
                    .map_err(|error| format!("{packet} does not encode: {error}"))?;
                let mut again = BytesMut::from(&encoded[..]);
                let redecoded = Decoder::new()
                    .with_max_packet_size(MAX_REMAINING_LENGTH + 5)
                    .with_version(version)
                    .decode(&mut again);
                if redecoded != Ok(Some(packet.clone())) || !again.is_empty() {
                    return Err(format!(
                        "{packet} re-encodes as {} which decodes to {redecoded:?}",
                        hex(&encoded)
                    ));
                }
                packets += 1;
            }
            Ok(None) => {
                if buffer.len() != before {
                    return Err("Ok(None) changed the buffer".into());
                }
                return Ok(packets);
            }
            Err(_) => return Ok(packets),
        }
    }
    Err("the decoder went round more often than the input allows".into())
}

/// Decoding may allocate this many times the bytes it is given, plus
/// `ALLOCATION_SLACK`. The worst case is a list of one-character topic filters: four
/// bytes on the wire (three for UNSUBSCRIBE) become a 40-byte (32-byte) entry.
const ALLOCATION_FACTOR: usize = 12;
/// The fixed part: the shared header `bytes` gives a buffer when the first packet
/// is split off it.
const ALLOCATION_SLACK: usize = 128;

/// Decodes `count` generated inputs; at least `min_decoded` packets must come out,
/// so that the noise demonstrably reaches the packet parsers.
fn run(
    name: &str,
    count: usize,
    min_decoded: usize,
    seed: u64,
    version: ProtocolVersion,
    mut input: impl FnMut(&mut Rng) -> Vec<u8>,
) {
    let mut rng = Rng(seed);
    let mut decoded = 0;
    for index in 0..count {
        let bytes = input(&mut rng);
        // Alternate between the default limit and a tight one, so the size check
        // meets the noise too.
        let max = if index % 4 == 0 {
            32
        } else {
            DEFAULT_MAX_PACKET_SIZE
        };
        match drain(&bytes, max, version) {
            Ok(packets) => decoded += packets,
            Err(why) => panic!(
                "{name}, input {index} (seed {seed:#x}), max packet size {max}: {why}\n    bytes: {}",
                hex(&bytes)
            ),
        }
    }
    assert!(
        decoded >= min_decoded,
        "{name}: only {decoded} packets decoded from {count} inputs"
    );
    println!("{name}: {decoded} packets decoded from {count} inputs");
}

// ---------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------

#[test]
fn two_hundred_thousand_random_packets_never_panic_the_decoder() {
    let v3 = ProtocolVersion::V3_1_1;
    run(
        "random packet",
        100_000,
        500,
        0x5EED_0001,
        v3,
        random_packet,
    );
    run("random bytes", 100_000, 1, 0x5EED_0002, v3, |rng| {
        let len = rng.below(64);
        rng.bytes(len)
    });
}

#[test]
fn two_hundred_thousand_mutated_valid_packets_never_panic_the_decoder() {
    let corpus = corpus();
    for packet in &corpus {
        assert_eq!(
            drain(packet, DEFAULT_MAX_PACKET_SIZE, ProtocolVersion::V3_1_1),
            Ok(1),
            "{}",
            hex(packet)
        );
    }
    let v3 = ProtocolVersion::V3_1_1;
    run("mutated packet", 200_000, 20_000, 0x5EED_0003, v3, |rng| {
        let original = &corpus[rng.below(corpus.len())];
        mutate(rng, original, &corpus)
    });
}

/// Valid MQTT 5 packets of every type, with properties, to mutate.
fn corpus_v5() -> Vec<Vec<u8>> {
    let id = |n| PacketId::new(n).unwrap();
    let props = |p: Properties| Some(Box::new(p));
    let reason = || Properties {
        reason_string: Some("why".into()),
        user_properties: vec![("k".into(), "v".into())],
        ..Properties::new()
    };
    let mut connect = Connect::new("client");
    connect.protocol = ProtocolVersion::V5;
    connect.username = Some("user".into());
    connect.properties = props(Properties {
        session_expiry_interval: Some(60),
        receive_maximum: Some(10),
        maximum_packet_size: Some(1000),
        request_problem_information: Some(1),
        authentication_method: Some("m".into()),
        authentication_data: Some(bytes::Bytes::from_static(b"d")),
        ..Properties::new()
    });
    let mut will = Will::new(
        TopicName::new("w/t").unwrap(),
        "bye",
        QoS::AtLeastOnce,
        true,
    );
    will.properties = props(Properties {
        will_delay_interval: Some(5),
        payload_format_indicator: Some(1),
        response_topic: Some("r/t".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"c")),
        ..Properties::new()
    });
    connect.will = Some(will);
    let mut connack = ConnAck::accepted(true);
    connack.properties = props(Properties {
        assigned_client_identifier: Some("id".into()),
        server_keep_alive: Some(30),
        maximum_qos: Some(1),
        retain_available: Some(0),
        topic_alias_maximum: Some(10),
        wildcard_subscription_available: Some(1),
        shared_subscription_available: Some(1),
        subscription_identifier_available: Some(1),
        ..Properties::new()
    });
    let mut publish = Publish::new(
        TopicName::new("a/b").unwrap(),
        "hello",
        QoS::AtLeastOnce,
        false,
    );
    publish.packet_id = Some(id(1));
    publish.properties = props(Properties {
        topic_alias: Some(3),
        message_expiry_interval: Some(9),
        content_type: Some("text/plain".into()),
        subscription_identifiers: vec![1, 300],
        user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        ..Properties::new()
    });
    let mut puback = PubAck::new(id(2));
    puback.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    puback.properties = props(reason());
    let mut pubrel = PubRel::new(id(3));
    pubrel.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
    let mut entry = SubscribeFilter::new(TopicFilter::new("a/#").unwrap(), QoS::ExactlyOnce);
    entry.no_local = true;
    let mut subscribe = Subscribe::new(id(4), vec![entry]);
    subscribe.properties = props(Properties {
        subscription_identifiers: vec![7],
        ..Properties::new()
    });
    let mut suback = SubAck::new(
        id(4),
        [ReasonCode::GRANTED_QOS_2, ReasonCode::NOT_AUTHORIZED],
    );
    suback.properties = props(reason());
    let unsubscribe = Unsubscribe::new(id(5), vec![TopicFilter::new("x").unwrap()]);
    let mut unsuback = UnsubAck::new(id(5));
    unsuback.reason_codes = vec![ReasonCode::NO_SUBSCRIPTION_EXISTED];
    let mut disconnect = Disconnect::new(ReasonCode::SERVER_MOVED);
    disconnect.properties = props(Properties {
        server_reference: Some("elsewhere".into()),
        ..reason()
    });
    let mut auth = Auth::new(ReasonCode::CONTINUE_AUTHENTICATION);
    auth.properties = props(Properties {
        authentication_method: Some("m".into()),
        ..Properties::new()
    });
    let packets = [
        Packet::from(connect),
        Packet::ConnAck(connack),
        Packet::Publish(publish),
        Packet::PubAck(puback),
        Packet::PubRel(pubrel),
        Packet::Subscribe(subscribe),
        Packet::SubAck(suback),
        Packet::Unsubscribe(unsubscribe),
        Packet::UnsubAck(unsuback),
        Packet::PingReq,
        Packet::Disconnect(disconnect),
        Packet::Auth(auth),
    ];
    packets
        .iter()
        .map(|packet| {
            let mut out = Vec::new();
            packet.encode_for(ProtocolVersion::V5, &mut out).unwrap();
            out
        })
        .collect()
}

#[test]
fn mqtt_5_random_and_mutated_packets_never_panic_the_decoder() {
    let v5 = ProtocolVersion::V5;
    run(
        "MQTT 5 random packet",
        100_000,
        500,
        0x5EED_0005,
        v5,
        |rng| {
            if rng.below(14) == 0 {
                let len = rng.below(48);
                [vec![0xF0, len as u8], rng.bytes(len)].concat()
            } else {
                random_packet(rng)
            }
        },
    );
    let corpus = corpus_v5();
    for packet in &corpus {
        assert_eq!(
            drain(packet, DEFAULT_MAX_PACKET_SIZE, v5),
            Ok(1),
            "{}",
            hex(packet)
        );
    }
    run(
        "MQTT 5 mutated packet",
        200_000,
        20_000,
        0x5EED_0006,
        v5,
        |rng| {
            let original = &corpus[rng.below(corpus.len())];
            mutate(rng, original, &corpus)
        },
    );
}

#[test]
fn mqtt_5_properties_allocate_what_arrived() {
    let framed = |first: u8, body: Vec<u8>| {
        let mut bytes = vec![first];
        let mut len = body.len();
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            bytes.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        bytes.extend(body);
        bytes
    };
    let variable = |mut n: usize| {
        let mut out = Vec::new();
        loop {
            let byte = (n % 128) as u8;
            n /= 128;
            out.push(if n > 0 { byte | 0x80 } else { byte });
            if n == 0 {
                return out;
            }
        }
    };
    let with_properties = |first: u8, head: &[u8], properties: Vec<u8>| {
        framed(
            first,
            [head.to_vec(), variable(properties.len()), properties].concat(),
        )
    };
    let cases = [
        (
            "PUBACK with 20,000 empty user properties",
            with_properties(0x40, &[0, 1, 0], b"\x26\x00\x00\x00\x00".repeat(20_000)),
        ),
        (
            "PUBLISH with 20,000 subscription identifiers",
            with_properties(0x30, b"\x00\x01t", b"\x0B\x01".repeat(20_000)),
        ),
    ];
    for (what, bytes) in cases {
        let allowed =
            ALLOCATION_FACTOR * bytes.len() + ALLOCATION_SLACK + std::mem::size_of::<Properties>();
        let mut buffer = BytesMut::from(&bytes[..]);
        let mut decoder = Decoder::new()
            .with_max_packet_size(MAX_REMAINING_LENGTH + 5)
            .with_version(ProtocolVersion::V5);
        let (result, allocated, count) = allocations(|| decoder.decode(&mut buffer));
        assert!(matches!(result, Ok(Some(_))), "{what}: {result:?}");
        assert!(
            allocated <= allowed,
            "{what}: {allocated} bytes in {count} allocations for {} bytes, at most {allowed}",
            bytes.len()
        );
        println!(
            "{what}: {} bytes on the wire, {allocated} bytes in {count} allocations",
            bytes.len()
        );
        drop(result);
    }
}

#[test]
fn ten_bytes_announcing_256_mib_allocate_nothing() {
    // PUBLISH, remaining length 268,435,455, and the first bytes of a body.
    let input: &[u8] = &[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x03, b'a', b'/', b'b'];

    // A decoder allowed to take such a packet waits for it without reserving room.
    let mut patient = Decoder::new().with_max_packet_size(MAX_REMAINING_LENGTH + 5);
    let mut buffer = BytesMut::from(input);
    let (result, bytes, count) = allocations(|| patient.decode(&mut buffer));
    assert_eq!(result, Ok(None));
    assert_eq!(
        (bytes, count),
        (0, 0),
        "bytes and allocations while waiting"
    );
    assert_eq!(buffer.capacity(), input.len(), "the buffer was not grown");

    // The default decoder refuses it from the fixed header, still without allocating.
    let mut buffer = BytesMut::from(input);
    let (result, bytes, count) = allocations(|| Decoder::new().decode(&mut buffer));
    assert_eq!(
        result,
        Err(DecodeError::PacketTooLarge {
            packet_type: PacketType::Publish,
            size: MAX_REMAINING_LENGTH + 5,
            max: DEFAULT_MAX_PACKET_SIZE
        })
    );
    assert_eq!(
        (bytes, count),
        (0, 0),
        "bytes and allocations while refusing"
    );

    // Nor when the bytes arrive one by one.
    let mut buffer = BytesMut::with_capacity(input.len());
    let mut decoder = Decoder::new().with_max_packet_size(MAX_REMAINING_LENGTH + 5);
    for &byte in input {
        buffer.extend_from_slice(&[byte]);
        let (result, bytes, _) = allocations(|| decoder.decode(&mut buffer));
        assert_eq!(result, Ok(None));
        assert_eq!(bytes, 0);
    }
}

#[test]
fn decoding_allocates_at_most_a_small_multiple_of_the_packet_size() {
    let field = |s: &[u8]| [&(s.len() as u16).to_be_bytes()[..], s].concat();
    let framed = |first: u8, body: Vec<u8>| {
        let mut bytes = vec![first];
        let mut len = body.len();
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            bytes.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        bytes.extend(body);
        bytes
    };
    let many = |entry: &[u8], n: usize| entry.repeat(n);
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        // (what, bytes, allowed bytes): a PUBLISH shares the buffer, whatever its size.
        (
            "PUBLISH of 16 bytes",
            framed(0x32, [field(b"a/b"), vec![0, 1], vec![1; 16]].concat()),
            ALLOCATION_SLACK,
        ),
        (
            "PUBLISH of 512 KiB",
            framed(
                0x32,
                [field(b"a/b"), vec![0, 1], vec![1; 512 * 1024]].concat(),
            ),
            ALLOCATION_SLACK,
        ),
        (
            "CONNECT with every field",
            framed(
                0x10,
                [
                    b"\x00\x04MQTT\x04\xEE\x00\x3C".to_vec(),
                    field(&[b'c'; 200]),
                    field(&[b'w'; 200]),
                    field(&[b'm'; 200]),
                    field(&[b'u'; 200]),
                    field(&[b'p'; 200]),
                ]
                .concat(),
            ),
            2 * 1024 + ALLOCATION_SLACK,
        ),
        (
            "SUBSCRIBE with 10,000 one-character filters",
            framed(0x82, [vec![0, 1], many(b"\x00\x01a\x01", 10_000)].concat()),
            0,
        ),
        (
            "UNSUBSCRIBE with 10,000 one-character filters",
            framed(0xA2, [vec![0, 1], many(b"\x00\x01a", 10_000)].concat()),
            0,
        ),
        (
            "UNSUBSCRIBE full of empty filters (refused)",
            framed(0xA2, [vec![0, 1], many(b"\x00\x00", 100_000)].concat()),
            ALLOCATION_SLACK,
        ),
        (
            "SUBACK with 100,000 return codes",
            framed(0x90, [vec![0, 1], vec![0x01; 100_000]].concat()),
            100_000 + ALLOCATION_SLACK,
        ),
    ];
    for (what, bytes, allowed) in cases {
        let allowed = if allowed == 0 {
            ALLOCATION_FACTOR * bytes.len() + ALLOCATION_SLACK
        } else {
            allowed
        };
        let mut buffer = BytesMut::from(&bytes[..]);
        let mut decoder = Decoder::new().with_max_packet_size(MAX_REMAINING_LENGTH + 5);
        let (result, allocated, count) = allocations(|| decoder.decode(&mut buffer));
        assert!(
            result.is_ok() || what.ends_with("(refused)"),
            "{what}: {result:?}"
        );
        assert!(
            allocated <= allowed,
            "{what}: {allocated} bytes in {count} allocations for a packet of {} bytes, \
             at most {allowed} allowed",
            bytes.len()
        );
        println!(
            "{what}: {} bytes on the wire, {allocated} bytes in {count} allocations",
            bytes.len()
        );
        // Keep the decoded packet alive until after the count.
        drop(result);
    }
}

#[test]
fn the_counting_allocator_counts() {
    // The allocation tests above would pass vacuously if nothing were counted.
    let (vector, bytes, count) = allocations(|| Vec::<u8>::with_capacity(1000));
    assert_eq!((bytes, count), (1000, 1));
    drop(vector);
    let (packet, bytes, _) = allocations(|| {
        Decoder::new().decode(&mut BytesMut::from(
            &b"\x10\x0D\x00\x04MQTT\x04\x02\x00\x3C\x00\x01c"[..],
        ))
    });
    assert!(matches!(packet, Ok(Some(Packet::Connect(_)))));
    assert!(bytes > 0, "a CONNECT copies its client id");
}
