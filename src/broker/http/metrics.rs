//! `GET /metrics`: the figures in Prometheus's text exposition format (0.0.4).
//!
//! Names follow Prometheus's conventions: the `wren_` prefix, the unit in the name
//! (`_seconds`, `_bytes`), `_total` on counters, which only go up; gauges go up and
//! down. Each family has its `# HELP` and `# TYPE` lines. Per-limit and
//! per-listener figures are one family each, told apart by labels.

use std::fmt::Write;

use crate::broker::stats::{BridgeMetrics, Metrics};

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One family of samples being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

fn family<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out }
}

/// A label value with `\`, `"` and line feeds escaped, as the format requires.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The whole exposition.
pub(crate) fn render(metrics: &Metrics) -> String {
    let s = &metrics.stats;
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "wren_info",
        "gauge",
        "Always 1; the version label says which wren-mqtt is running.",
    )
    .sample("wren_info", &[("version", metrics.version)], 1);
    family(
        &mut out,
        "wren_uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
    )
    .sample("wren_uptime_seconds", &[], s.uptime.as_secs());

    let gauges: [(&str, &str, u64); 9] = [
        ("wren_clients_connected", "Clients connected now.", s.connected_clients),
        (
            "wren_clients_disconnected",
            "Persistent sessions whose client is not connected.",
            s.disconnected_clients,
        ),
        (
            "wren_clients_maximum",
            "Most sessions, connected or not, seen at once.",
            s.maximum_clients,
        ),
        ("wren_subscriptions", "Subscriptions of all sessions.", s.subscriptions),
        ("wren_retained_messages", "Retained messages held.", s.retained_messages),
        (
            "wren_queued_messages",
            "QoS 1/2 messages waiting in session queues, not yet sent.",
            s.queued_messages,
        ),
        (
            "wren_inflight_messages",
            "QoS 1/2 messages sent and not yet acknowledged.",
            s.inflight_messages,
        ),
        (
            "wren_stored_bytes",
            "Payload bytes of queued and inflight messages, and topic and payload bytes of retained ones.",
            s.stored_bytes,
        ),
        (
            "wren_sessions",
            "Sessions known, connected or not.",
            s.connected_clients + s.disconnected_clients,
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help).sample(name, &[], value);
    }

    let counters: [(&str, &str, u64); 12] = [
        (
            "wren_messages_received_total",
            "MQTT control packets received, all kinds.",
            s.messages_received,
        ),
        (
            "wren_messages_sent_total",
            "MQTT control packets sent, all kinds.",
            s.messages_sent,
        ),
        (
            "wren_publish_received_total",
            "PUBLISH packets received from clients.",
            s.publish_received,
        ),
        (
            "wren_publish_sent_total",
            "PUBLISH packets sent to clients.",
            s.publish_sent,
        ),
        (
            "wren_publish_dropped_total",
            "Messages dropped because a client's queue was full.",
            s.publish_dropped,
        ),
        (
            "wren_publish_received_bytes_total",
            "PUBLISH payload bytes received.",
            s.publish_bytes_received,
        ),
        (
            "wren_publish_sent_bytes_total",
            "PUBLISH payload bytes sent.",
            s.publish_bytes_sent,
        ),
        (
            "wren_received_bytes_total",
            "Bytes read from all MQTT connections.",
            s.bytes_received,
        ),
        (
            "wren_sent_bytes_total",
            "Bytes written to all MQTT connections.",
            s.bytes_sent,
        ),
        (
            "wren_connections_accepted_total",
            "Network connections accepted by the MQTT listeners.",
            s.connections_accepted,
        ),
        (
            "wren_store_commits_total",
            "Batches of changes committed to the store.",
            s.store_commits,
        ),
        (
            "wren_store_failures_total",
            "Commits to the store that failed.",
            s.store_failures,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help).sample(name, &[], value);
    }

    let mut limits = family(
        &mut out,
        "wren_limit_reached_total",
        "counter",
        "Times each limit against hostile or runaway clients refused something, by configuration key.",
    );
    for (limit, count) in &s.limits_reached {
        limits.sample(
            "wren_limit_reached_total",
            &[("limit", limit.key())],
            *count,
        );
    }

    let mut open = family(
        &mut out,
        "wren_listener_connections",
        "gauge",
        "Connections open now on each listener.",
    );
    for l in &metrics.listeners {
        let address = l.address.to_string();
        let labels = [
            ("listener", l.name.as_str()),
            ("protocol", l.protocol),
            ("address", address.as_str()),
        ];
        open.sample("wren_listener_connections", &labels, l.connections);
    }
    let mut max = family(
        &mut out,
        "wren_listener_max_connections",
        "gauge",
        "The max-connections of each listener.",
    );
    for l in &metrics.listeners {
        max.sample(
            "wren_listener_max_connections",
            &[("listener", l.name.as_str())],
            l.max_connections,
        );
    }
    if !metrics.bridges.is_empty() {
        bridges(&mut out, &metrics.bridges);
    }
    out
}

/// A bridge figure: its name, type, help line, and how to read it.
type BridgeFigure = (
    &'static str,
    &'static str,
    &'static str,
    fn(&BridgeMetrics) -> u64,
);

/// One family per bridge figure, told apart by the `bridge` label.
fn bridges(out: &mut String, bridges: &[BridgeMetrics]) {
    let figures: [BridgeFigure; 5] = [
        (
            "wren_bridge_connected",
            "gauge",
            "1 while the bridge is connected to its remote, else 0.",
            |b| u64::from(b.connected),
        ),
        (
            "wren_bridge_messages_sent_total",
            "counter",
            "Messages the remote accepted from the bridge.",
            |b| b.sent,
        ),
        (
            "wren_bridge_messages_received_total",
            "counter",
            "Messages the bridge received from the remote and published here.",
            |b| b.received,
        ),
        (
            "wren_bridge_messages_dropped_total",
            "counter",
            "Messages the bridge could not pass on.",
            |b| b.dropped,
        ),
        (
            "wren_bridge_queued_messages",
            "gauge",
            "Messages waiting here for the remote, as the bridge last looked.",
            |b| b.queued,
        ),
    ];
    for (name, kind, help, value) in figures {
        let mut samples = family(out, name, kind, help);
        for b in bridges {
            samples.sample(name, &[("bridge", b.name.as_str())], value(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
    #[test]
    fn each_bridge_is_a_labelled_sample_of_each_bridge_family() {
        let mut cloud = BridgeMetrics::new("cloud", "mqtts://cluster:8883");
        cloud.connected = true;
        cloud.sent = 7;
        let metrics = Metrics {
            version: "0",
            stats: Default::default(),
            listeners: Vec::new(),
            bridges: vec![cloud, BridgeMetrics::new("backup", "mqtt://other:1883")],
        };
        let text = render(&metrics);
        for line in [
            "# TYPE wren_bridge_connected gauge",
            "wren_bridge_connected{bridge=\"cloud\"} 1",
            "wren_bridge_connected{bridge=\"backup\"} 0",
            "# TYPE wren_bridge_messages_sent_total counter",
            "wren_bridge_messages_sent_total{bridge=\"cloud\"} 7",
            "wren_bridge_queued_messages{bridge=\"backup\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
    }
}
