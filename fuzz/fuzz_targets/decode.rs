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
//! stream.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wren::protocol::{Decoder, DEFAULT_MAX_PACKET_SIZE, MAX_REMAINING_LENGTH};

fuzz_target!(|data: &[u8]| {
    let Some((&limit, stream)) = data.split_first() else {
        return;
    };
    let max_packet_size = match limit {
        0..=127 => DEFAULT_MAX_PACKET_SIZE,
        limit => usize::from(limit - 126), // 2 to 129 bytes
    };
    let mut decoder = Decoder::new().max_packet_size(max_packet_size);
    let mut buffer = BytesMut::from(stream);
    loop {
        let before = buffer.len();
        match decoder.decode(&mut buffer) {
            Ok(Some(packet)) => {
                assert!(buffer.len() < before, "{packet} consumed no bytes");
                let mut encoded = Vec::new();
                packet.encode(&mut encoded).unwrap_or_else(|error| {
                    panic!("{packet} decoded but does not encode: {error}")
                });
                let mut again = BytesMut::from(&encoded[..]);
                let redecoded = Decoder::new()
                    .max_packet_size(MAX_REMAINING_LENGTH + 5)
                    .decode(&mut again);
                assert_eq!(redecoded, Ok(Some(packet)));
                assert!(again.is_empty(), "re-encoded packet has trailing bytes");
            }
            Ok(None) => {
                assert_eq!(buffer.len(), before, "Ok(None) changed the buffer");
                return;
            }
            Err(_) => return,
        }
    }
});
