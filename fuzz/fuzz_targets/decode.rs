//! Feeds arbitrary bytes to the decoder the way a connection does, and checks that
//! whatever decodes survives a round trip.
//!
//! From the repository root, starting from one valid packet of every type:
//!
//! ```text
//! mkdir -p fuzz/corpus/decode
//! cargo +nightly fuzz run decode fuzz/corpus/decode fuzz/seeds/decode
//! ```
//!
//! The first input byte sets up the decoder: bit 7 picks the maximum packet size
//! (clear: the default; set: 2 to 65 bytes from bits 5-0, so that the size check
//! meets the fuzzer too), bit 6 the version it starts with (clear: MQTT 3.1.1, which
//! a level-5 CONNECT in the stream turns into MQTT 5; set: MQTT 5, as for a client
//! that sent a level-5 CONNECT). The rest is the stream. It is decoded twice: all at
//! once, and one byte at a time as a slow connection delivers it. Both must give the
//! same packets and the same error.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wren::protocol::{
    DecodeError, Decoder, Packet, ProtocolVersion, DEFAULT_MAX_PACKET_SIZE, MAX_REMAINING_LENGTH,
};

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let max_packet_size = match control & 0x80 {
        0 => DEFAULT_MAX_PACKET_SIZE,
        _ => usize::from(control & 0x3F) + 2, // 2 to 65 bytes
    };
    let version = match control & 0x40 {
        0 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let at_once = decode(max_packet_size, version, stream, stream.len().max(1));
    for (packet, version) in &at_once.0 {
        assert_round_trip(packet, *version);
    }
    let byte_by_byte = decode(max_packet_size, version, stream, 1);
    assert_eq!(
        at_once, byte_by_byte,
        "decoding depends on how the bytes arrive"
    );
});

/// What a stream decodes to: each packet with the version it was decoded in, and the
/// error that ended the stream, if any.
type Decoded = (Vec<(Packet, ProtocolVersion)>, Option<DecodeError>);

/// Decodes `stream` with one decoder, appending `read` bytes to its buffer at a
/// time.
fn decode(max_packet_size: usize, version: ProtocolVersion, stream: &[u8], read: usize) -> Decoded {
    let mut decoder = Decoder::new().with_max_packet_size(max_packet_size);
    if version == ProtocolVersion::V5 {
        decoder = decoder.with_version(version);
    }
    let mut buffer = BytesMut::new();
    let mut packets = Vec::new();
    for bytes in stream.chunks(read) {
        buffer.extend_from_slice(bytes);
        loop {
            let before = buffer.len();
            match decoder.decode(&mut buffer) {
                Ok(Some(packet)) => {
                    assert!(buffer.len() < before, "{packet} consumed no bytes");
                    // A CONNECT switches the decoder to its own version, in which it
                    // is also encoded.
                    packets.push((packet, decoder.version()));
                }
                Ok(None) => {
                    assert_eq!(buffer.len(), before, "Ok(None) changed the buffer");
                    break;
                }
                Err(error) => return (packets, Some(error)),
            }
        }
    }
    (packets, None)
}

/// A decoded packet encodes in its version, and decodes again to itself with no bytes
/// left over.
fn assert_round_trip(packet: &Packet, version: ProtocolVersion) {
    let mut encoded = Vec::new();
    packet
        .encode_for(version, &mut encoded)
        .unwrap_or_else(|error| panic!("{packet} decoded but does not encode: {error}"));
    let mut again = BytesMut::from(&encoded[..]);
    let redecoded = Decoder::new()
        .with_max_packet_size(MAX_REMAINING_LENGTH + 5)
        .with_version(version)
        .decode(&mut again);
    assert_eq!(redecoded, Ok(Some(packet.clone())));
    assert!(again.is_empty(), "re-encoded packet has trailing bytes");
}
