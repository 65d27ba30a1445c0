//! How the router's maps keyed by the broker's own numbers hash them.
//!
//! The standard library hashes with SipHash under a random key, so that nobody who
//! chooses the keys can make them collide and turn every lookup into a walk: the
//! right choice for client identifiers and topic levels, which clients choose. A
//! connection's number ([`ConnectionId`]) is the broker's own, counted up from 1,
//! and there SipHash buys nothing and costs about a hundred instructions a lookup.
//! Counted with callgrind, SipHash took a third of the broker's instructions on a
//! QoS 1 / QoS 2 run, and the router looks connections up several times for every
//! message. [`IdMap`] and [`IdSet`] hash a connection number with one multiplication.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::event::ConnectionId;

/// A map keyed by connection number, hashed by [`IdHasher`].
pub(crate) type IdMap<V> = HashMap<ConnectionId, V, BuildHasherDefault<IdHasher>>;

/// A set of connection numbers, hashed by [`IdHasher`].
pub(crate) type IdSet = HashSet<ConnectionId, BuildHasherDefault<IdHasher>>;

/// Hashes one number the broker gave out by multiplying it by an odd constant
/// (2^64 divided by the golden ratio). Numbers counted up one by one then spread
/// evenly over a table's low bits, which pick the bucket, and the high bits,
/// which the table compares first, are well mixed. Not for keys a client chooses.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
}

impl Hasher for IdHasher {
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(Self::MULTIPLIER);
    }

    /// Any other key type: folded in eight bytes at a time. The maps above only
    /// ever hash a `u64`.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn numbers_counted_up_fill_a_tables_buckets_evenly() {
        let hasher = BuildHasherDefault::<IdHasher>::default();
        // 1,024 buckets, chosen by the low ten bits, as a hash table does.
        let mut buckets = [0u32; 1024];
        for id in 1..=1024u64 {
            buckets[(hasher.hash_one(id) & 1023) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n == 1));
    }

    #[test]
    fn an_id_map_finds_what_it_holds() {
        let mut map: IdMap<&str> = IdMap::default();
        for id in 1..=10_000u64 {
            map.insert(id, "x");
        }
        assert!((1..=10_000u64).all(|id| map.contains_key(&id)));
        assert!(!map.contains_key(&0) && !map.contains_key(&10_001));
        let set: IdSet = [3u64, 1 << 40, u64::MAX].into_iter().collect();
        assert!(set.contains(&(1 << 40)) && set.contains(&u64::MAX) && !set.contains(&4));
    }
}
