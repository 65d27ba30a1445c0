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
//! The first input byte picks the maximum packet size (0 to 127: the default; 128 to
//! 255: 2 to 129 bytes, so that the size check meets the fuzzer too); the rest is the
//! stream. It is decoded twice: all at once, and one byte at a time as a slow
//! connection delivers it. Both must give the same packets and the same error.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wren::protocol::{DecodeError, Decoder, Packet, DEFAULT_MAX_PACKET_SIZE, MAX_REMAINING_LENGTH};

fuzz_target!(|data: &[u8]| {
    let Some((&limit, stream)) = data.split_first() else {
        return;
    };
    let max_packet_size = match limit {
        0..=127 => DEFAULT_MAX_PACKET_SIZE,
        limit => usize::from(limit - 126), // 2 to 129 bytes
    };
    let at_once = decode(max_packet_size, stream, stream.len().max(1));
    for packet in &at_once.0 {
        assert_round_trip(packet);
    }
    let byte_by_byte = decode(max_packet_size, stream, 1);
    assert_eq!(
        at_once, byte_by_byte,
        "decoding depends on how the bytes arrive"
    );
});

/// Decodes `stream` with one decoder, appending `read` bytes to its buffer at a
/// time; returns the packets and the error that ended the stream, if any.
fn decode(
    max_packet_size: usize,
    stream: &[u8],
    read: usize,
) -> (Vec<Packet>, Option<DecodeError>) {
    let mut decoder = Decoder::new().with_max_packet_size(max_packet_size);
    let mut buffer = BytesMut::new();
    let mut packets = Vec::new();
    for bytes in stream.chunks(read) {
        buffer.extend_from_slice(bytes);
        loop {
            let before = buffer.len();
            match decoder.decode(&mut buffer) {
                Ok(Some(packet)) => {
                    assert!(buffer.len() < before, "{packet} consumed no bytes");
                    packets.push(packet);
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

/// A decoded packet encodes, and decodes again to itself with no bytes left over.
fn assert_round_trip(packet: &Packet) {
    let mut encoded = Vec::new();
    packet
        .encode(&mut encoded)
        .unwrap_or_else(|error| panic!("{packet} decoded but does not encode: {error}"));
    let mut again = BytesMut::from(&encoded[..]);
    let redecoded = Decoder::new()
        .with_max_packet_size(MAX_REMAINING_LENGTH + 5)
        .decode(&mut again);
    assert_eq!(redecoded, Ok(Some(packet.clone())));
    assert!(again.is_empty(), "re-encoded packet has trailing bytes");
}
