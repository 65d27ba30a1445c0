//! What a run measures: payload stamps, delivery bookkeeping, latency percentiles and
//! process usage from `/proc`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Bytes at the start of every payload: send time (ns since the Unix epoch, 8 bytes),
/// publisher number (4 bytes), sequence number (8 bytes). The rest is padding.
pub const STAMP_LEN: usize = 20;

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Fills `payload[..STAMP_LEN]`.
pub fn stamp(payload: &mut [u8], publisher: u32, sequence: u64) {
    payload[0..8].copy_from_slice(&now_nanos().to_be_bytes());
    payload[8..12].copy_from_slice(&publisher.to_be_bytes());
    payload[12..20].copy_from_slice(&sequence.to_be_bytes());
}

/// Reads a stamp: (sent at, publisher, sequence), or `None` if the payload is too
/// short to carry one.
pub fn read_stamp(payload: &[u8]) -> Option<(u64, u32, u64)> {
    let stamp = payload.get(..STAMP_LEN)?;
    let sent = u64::from_be_bytes(stamp[0..8].try_into().ok()?);
    let publisher = u32::from_be_bytes(stamp[8..12].try_into().ok()?);
    let sequence = u64::from_be_bytes(stamp[12..20].try_into().ok()?);
    Some((sent, publisher, sequence))
}

/// Which messages one subscriber has seen, to count losses and duplicates exactly.
pub struct Deliveries {
    seen: Vec<Vec<u64>>,
    per_publisher: u64,
    pub received: u64,
    pub duplicated: u64,
    pub foreign: u64,
}

impl Deliveries {
    pub fn new(publishers: usize, per_publisher: u64) -> Deliveries {
        let words = per_publisher.div_ceil(64) as usize;
        Deliveries {
            seen: vec![vec![0; words]; publishers],
            per_publisher,
            received: 0,
            duplicated: 0,
            foreign: 0,
        }
    }

    /// Records one delivery.
    pub fn record(&mut self, publisher: u32, sequence: u64) {
        let Some(bits) = self.seen.get_mut(publisher as usize) else {
            self.foreign += 1;
            return;
        };
        if sequence >= self.per_publisher {
            self.foreign += 1;
            return;
        }
        let (word, bit) = ((sequence / 64) as usize, sequence % 64);
        if bits[word] & (1 << bit) != 0 {
            self.duplicated += 1;
        } else {
            bits[word] |= 1 << bit;
            self.received += 1;
        }
    }

    /// Distinct messages expected and not seen.
    pub fn lost(&self) -> u64 {
        self.seen.len() as u64 * self.per_publisher - self.received
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn from_nanos(mut samples: Vec<u64>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[index] as f64 / 1000.0
        };
        Latency {
            samples: samples.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: at(1.0),
        }
    }
}

/// CPU time and resident memory of a process, read from `/proc`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

impl Usage {
    /// Reads `/proc/<pid>` (`"self"` for this process). `None` off Linux or when the
    /// process is gone.
    pub fn of(pid: &str) -> Option<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        // Linux reports CPU time in clock ticks of 1/100 s on every platform it runs
        // on today (USER_HZ).
        Some(Usage {
            cpu_seconds: ticks / 100.0,
            rss_bytes: rss_kib * 1024,
        })
    }

    /// The CPU used between two readings.
    pub fn cpu_since(&self, earlier: &Usage) -> f64 {
        (self.cpu_seconds - earlier.cpu_seconds).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back() {
        let mut payload = [0u8; 64];
        stamp(&mut payload, 7, 123_456);
        let (sent, publisher, sequence) = read_stamp(&payload).unwrap();
        assert!(sent > 0);
        assert_eq!((publisher, sequence), (7, 123_456));
        assert!(read_stamp(&payload[..10]).is_none());
    }

    #[test]
    fn deliveries_count_losses_and_duplicates() {
        let mut deliveries = Deliveries::new(2, 100);
        deliveries.record(0, 5);
        deliveries.record(0, 5);
        deliveries.record(1, 99);
        deliveries.record(1, 100);
        deliveries.record(2, 0);
        assert_eq!(deliveries.received, 2);
        assert_eq!(deliveries.duplicated, 1);
        assert_eq!(deliveries.foreign, 2);
        assert_eq!(deliveries.lost(), 198);
    }

    #[test]
    fn percentiles_come_from_sorted_samples() {
        let latency = Latency::from_nanos((1..=1000).rev().map(|n| n * 1000).collect());
        assert_eq!(latency.samples, 1000);
        assert_eq!(latency.p50_us, 501.0);
        assert_eq!(latency.max_us, 1000.0);
    }

    #[test]
    fn this_process_has_usage() {
        let usage = Usage::of("self").expect("/proc is readable on Linux");
        assert!(usage.rss_bytes > 0);
    }
}
