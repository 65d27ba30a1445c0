//! How the router's maps hash their keys: connection numbers and client
//! identifiers, each looked up several times for every message.
//!
//! The standard library hashes with SipHash under a random key, so that nobody who
//! chooses the keys can make them collide and turn every lookup into a walk; it
//! costs a hundred instructions or more a lookup. Counted with callgrind, it took a
//! third of the broker's instructions on a QoS 1 / QoS 2 run. So:
//!
//! - A connection's number ([`ConnectionId`]) is the broker's own, counted up from
//!   1: nobody else chooses it, and [`IdMap`] and [`IdSet`] hash it with one
//!   multiplication.
//! - A client identifier is chosen by the client, so it keeps SipHash under the
//!   process's random key, computed once when the [`ClientKey`] is made (at
//!   CONNECT, or when a stored session is loaded) and kept beside it. The maps of
//!   [`ClientMap`] and [`ClientSet`] take that number as it is.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use super::event::ConnectionId;

/// A map keyed by connection number, hashed by [`IdHasher`].
pub(crate) type IdMap<V> = HashMap<ConnectionId, V, BuildHasherDefault<IdHasher>>;

/// A set of connection numbers, hashed by [`IdHasher`].
pub(crate) type IdSet = HashSet<ConnectionId, BuildHasherDefault<IdHasher>>;

/// A map keyed by client identifier, hashed by the SipHash its [`ClientKey`] holds.
pub(crate) type ClientMap<V> = HashMap<ClientKey, V, BuildHasherDefault<IdHasher>>;

/// A set of client identifiers, hashed by the SipHash each [`ClientKey`] holds.
pub(crate) type ClientSet = HashSet<ClientKey, BuildHasherDefault<IdHasher>>;

/// The key SipHash hashes client identifiers under: random, and the same for the
/// life of the process.
static CLIENT_ID_HASHING: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// A client identifier as the router keys sessions and subscriptions by: shared,
/// so a clone copies a pointer, and hashed once, when made.
///
/// Two keys are equal when their identifiers are. Its `Hash` writes the stored
/// SipHash, so a map of them must not be looked up by `&str`, whose hash differs;
/// `ClientKey` does not implement `Borrow<str>`, and the compiler holds to that.
#[derive(Clone)]
pub(crate) struct ClientKey {
    id: Arc<str>,
    hash: u64,
}

impl ClientKey {
    /// The key of client identifier `id`.
    pub(crate) fn new(id: &str) -> ClientKey {
        ClientKey {
            hash: CLIENT_ID_HASHING.hash_one(id),
            id: Arc::from(id),
        }
    }
}

impl From<&str> for ClientKey {
    fn from(id: &str) -> ClientKey {
        ClientKey::new(id)
    }
}

impl Deref for ClientKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.id
    }
}

impl PartialEq for ClientKey {
    fn eq(&self, other: &ClientKey) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.id, &other.id) || self.id == other.id)
    }
}

impl Eq for ClientKey {}

impl PartialOrd for ClientKey {
    fn partial_cmp(&self, other: &ClientKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ClientKey {
    /// In the order of the identifiers.
    fn cmp(&self, other: &ClientKey) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl Hash for ClientKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.id, f)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Hashes one number by multiplying it by an odd constant (2^64 divided by the
/// golden ratio): a number the broker gave out, or a hash already made. Numbers
/// counted up one by one then spread evenly over a table's low bits, which pick
/// the bucket, and the high bits, which the table compares first, are well mixed.
/// Not for keys a client chooses.
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

    #[test]
    fn client_keys_of_one_identifier_are_equal_and_find_each_other() {
        let (a, b) = (ClientKey::new("sensor-1"), ClientKey::from("sensor-1"));
        assert_eq!(a, b);
        assert_ne!(a, ClientKey::new("sensor-2"));
        let mut map: ClientMap<u32> = ClientMap::default();
        map.insert(a.clone(), 1);
        assert_eq!(map.get(&b), Some(&1));
        assert_eq!(map.get(&ClientKey::new("sensor-2")), None);
        assert_eq!(&*a, "sensor-1");
        assert_eq!(format!("{a} {a:?}"), "sensor-1 \"sensor-1\"");
        let mut keys = [ClientKey::new("b"), ClientKey::new("a"), ClientKey::new("")];
        keys.sort();
        assert_eq!(keys.map(|k| k.to_string()), ["", "a", "b"]);
    }
}
