//! The `$SYS/broker/...` topics: the broker describing itself, as mosquitto does.
//!
//! Every `sys.interval` the router asks [`SysTopics::tick`] for the values that
//! changed since the last tick (all of them on the first) and publishes each as a
//! retained QoS 0 message, so a new subscriber to `$SYS/#` sees the latest values at
//! once. Names, payload formats and meanings are mosquitto 2.0's, so dashboards
//! written for it work unchanged:
//!
//! - `version` (once), `uptime` (`<n> seconds`);
//! - `clients/total|maximum|connected|active|disconnected|inactive|expired`;
//! - `messages/received|sent|stored`, `store/messages/count|bytes`,
//!   `retained messages/count` (with its space);
//! - `publish/messages/received|sent|dropped`, `publish/bytes/received|sent`,
//!   `bytes/received|sent`, `subscriptions/count`, `shared_subscriptions/count`;
//! - `load/<metric>/1min|5min|15min`: a per-minute rate averaged with exponential
//!   decay over 1, 5 and 15 minutes, printed `%.2f` and republished when it moves by
//!   0.01 or more.
//!
//! `heap/*` is left out: the broker does not measure its memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::stats::Stats;

/// What every topic of the tree starts with.
pub(crate) const PREFIX: &str = "$SYS/broker/";

/// The metrics that have load averages, in mosquitto's order.
const LOAD_METRICS: [&str; 9] = [
    "messages/received",
    "messages/sent",
    "publish/received",
    "publish/sent",
    "publish/dropped",
    "bytes/received",
    "bytes/sent",
    "sockets",
    "connections",
];

/// The three averaging windows, with their topic suffix.
const LOAD_WINDOWS: [(&str, f64); 3] = [("1min", 60.0), ("5min", 300.0), ("15min", 900.0)];

/// The state behind the `$SYS` tree: when to publish next and what was published.
#[derive(Debug)]
pub(crate) struct SysTopics {
    interval: Duration,
    next_tick: Instant,
    published: HashMap<String, String>,
    /// Counter values at the previous tick, for the load rates.
    last_counts: [u64; 9],
    last_time: Option<Instant>,
    loads: [[f64; 3]; 9],
}

/// Counts the `$SYS` tree needs beyond [`Stats`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SysExtra {
    /// MQTT connections accepted (CONNACK 0) since start.
    pub(crate) connects: u64,
}

impl SysTopics {
    /// `None` when `interval` is zero: `$SYS` is off.
    pub(crate) fn new(interval: Duration, now: Instant) -> Option<SysTopics> {
        if interval.is_zero() {
            return None;
        }
        Some(SysTopics {
            interval,
            next_tick: now,
            published: HashMap::new(),
            last_counts: [0; 9],
            last_time: None,
            loads: [[0.0; 3]; 9],
        })
    }

    /// When the next tick is due.
    pub(crate) fn deadline(&self) -> Instant {
        self.next_tick
    }

    /// The topics (full names) and payloads to publish now: every value on the first
    /// tick, then only those that changed.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        stats: &Stats,
        extra: SysExtra,
    ) -> Vec<(String, String)> {
        // Schedule from the previous deadline, not from now, so ticks do not drift;
        // after a long stall, skip ahead instead of firing a burst.
        self.next_tick += self.interval;
        if self.next_tick <= now {
            self.next_tick = now + self.interval;
        }
        let first = self.last_time.is_none();
        let mut out = Vec::new();
        for (topic, value) in values(stats) {
            if self.published.get(&topic) != Some(&value) {
                out.push((format!("{PREFIX}{topic}"), value.clone()));
                self.published.insert(topic, value);
            }
        }

        let counts = [
            stats.messages_received,
            stats.messages_sent,
            stats.publish_received,
            stats.publish_sent,
            stats.publish_dropped,
            stats.bytes_received,
            stats.bytes_sent,
            stats.connections_accepted,
            extra.connects,
        ];
        let elapsed = self
            .last_time
            .map(|last| now.saturating_duration_since(last).as_secs_f64())
            .unwrap_or(0.0);
        for (metric, name) in LOAD_METRICS.iter().enumerate() {
            let rate = if elapsed > 0.0 {
                counts[metric].saturating_sub(self.last_counts[metric]) as f64 * 60.0 / elapsed
            } else {
                0.0
            };
            for (window, (suffix, seconds)) in LOAD_WINDOWS.iter().enumerate() {
                let current = self.loads[metric][window];
                let decay = (-elapsed / seconds).exp();
                let new = rate + decay * (current - rate);
                let topic = format!("{PREFIX}load/{name}/{suffix}");
                if first || (new - current).abs() >= 0.01 {
                    out.push((topic, format!("{new:.2}")));
                }
                self.loads[metric][window] = new;
            }
        }
        self.last_counts = counts;
        self.last_time = Some(now);
        out
    }
}

/// Every topic of the tree but the load averages (which need the previous tick),
/// without [`PREFIX`], with its payload as published: what `$SYS` says about
/// `stats` now. The HTTP listener's `/api/sys` shows the same list.
pub(crate) fn values(stats: &Stats) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(48);
    let mut set = |topic: &str, value: String| out.push((topic.to_string(), value));
    set(
        "version",
        format!("wren-mqtt version {}", env!("CARGO_PKG_VERSION")),
    );
    set("uptime", format!("{} seconds", stats.uptime.as_secs()));
    let total = stats.connected_clients + stats.disconnected_clients;
    set("clients/total", total.to_string());
    set("clients/maximum", stats.maximum_clients.to_string());
    set("clients/connected", stats.connected_clients.to_string());
    set("clients/active", stats.connected_clients.to_string());
    set(
        "clients/disconnected",
        stats.disconnected_clients.to_string(),
    );
    set("clients/inactive", stats.disconnected_clients.to_string());
    set(
        "clients/expired",
        stats
            .limit_reached(super::stats::Limit::PersistentClientExpiration)
            .to_string(),
    );
    for (limit, count) in &stats.limits_reached {
        set(&format!("limits/{}", limit.key()), count.to_string());
    }
    set("messages/received", stats.messages_received.to_string());
    set("messages/sent", stats.messages_sent.to_string());
    let stored = stats.queued_messages + stats.inflight_messages + stats.retained_messages;
    set("messages/stored", stored.to_string());
    set("store/messages/count", stored.to_string());
    set("store/messages/bytes", stats.stored_bytes.to_string());
    set(
        "retained messages/count",
        stats.retained_messages.to_string(),
    );
    set(
        "publish/messages/received",
        stats.publish_received.to_string(),
    );
    set("publish/messages/sent", stats.publish_sent.to_string());
    set(
        "publish/messages/dropped",
        stats.publish_dropped.to_string(),
    );
    set(
        "publish/bytes/received",
        stats.publish_bytes_received.to_string(),
    );
    set("publish/bytes/sent", stats.publish_bytes_sent.to_string());
    set("bytes/received", stats.bytes_received.to_string());
    set("bytes/sent", stats.bytes_sent.to_string());
    set("subscriptions/count", stats.subscriptions.to_string());
    set("store/commits", stats.store_commits.to_string());
    set("store/failures", stats.store_failures.to_string());
    set("shared_subscriptions/count", "0".to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_first_tick_without_the_load_averages() {
        let start = Instant::now();
        let mut sys = SysTopics::new(Duration::from_secs(10), start).unwrap();
        let stats = Stats {
            connected_clients: 3,
            ..Stats::default()
        };
        let ticked: Vec<(String, String)> = sys
            .tick(start, &stats, SysExtra::default())
            .into_iter()
            .filter(|(topic, _)| !topic.starts_with("$SYS/broker/load/"))
            .collect();
        let values: Vec<(String, String)> = values(&stats)
            .into_iter()
            .map(|(topic, value)| (format!("{PREFIX}{topic}"), value))
            .collect();
        assert_eq!(ticked, values);
        assert!(values.contains(&("$SYS/broker/clients/connected".into(), "3".into())));
    }

    #[test]
    fn a_zero_interval_turns_sys_off() {
        assert!(SysTopics::new(Duration::ZERO, Instant::now()).is_none());
    }

    #[test]
    fn the_first_tick_publishes_everything_then_only_changes() {
        let start = Instant::now();
        let mut sys = SysTopics::new(Duration::from_secs(10), start).unwrap();
        let mut stats = Stats {
            uptime: Duration::from_secs(0),
            ..Stats::default()
        };
        let first = sys.tick(start, &stats, SysExtra::default());
        let topics: HashMap<_, _> = first.iter().cloned().collect();
        assert_eq!(topics.len(), 24 + 29);
        assert_eq!(
            topics["$SYS/broker/version"],
            format!("wren-mqtt version {}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(topics["$SYS/broker/uptime"], "0 seconds");
        assert_eq!(topics["$SYS/broker/retained messages/count"], "0");
        assert_eq!(topics["$SYS/broker/load/connections/15min"], "0.00");

        stats.uptime = Duration::from_secs(10);
        stats.messages_received = 600;
        let second = sys.tick(start + Duration::from_secs(10), &stats, SysExtra::default());
        let topics: HashMap<_, _> = second.iter().cloned().collect();
        assert_eq!(topics["$SYS/broker/uptime"], "10 seconds");
        assert_eq!(topics["$SYS/broker/messages/received"], "600");
        // 600 in 10 s is 3600 per minute; the 1-minute average moves a sixth-ish of the way.
        let load: f64 = topics["$SYS/broker/load/messages/received/1min"]
            .parse()
            .unwrap();
        assert!(
            (load - 3600.0 * (1.0 - (-10.0f64 / 60.0).exp())).abs() < 0.01,
            "{load}"
        );
        assert!(!topics.contains_key("$SYS/broker/version"));
        assert!(!topics.contains_key("$SYS/broker/clients/total"));
        assert!(!topics.contains_key("$SYS/broker/load/bytes/sent/1min"));
        assert_eq!(sys.deadline(), start + Duration::from_secs(20));
    }
}
