//! `GET /api/sys` and `GET /api/stats`: the figures as JSON.
//!
//! `/api/sys` is the `$SYS` tree: an object from each full topic name
//! (`$SYS/broker/clients/connected`) to the payload `$SYS` publishes for it
//! (`"3"`, `"12 seconds"`), made from the live counters at the time of the
//! request. The load averages (`$SYS/broker/load/...`) are not in it: they are
//! smoothed over the `$SYS` interval and exist only there; a reader of the live
//! counters computes rates of its own. `/api/stats` is [`Metrics`] with numbers as
//! numbers, which is what the dashboard reads.

use serde_json::{json, Map, Value};

use crate::broker::stats::{Metrics, Stats};
use crate::broker::sys;

/// The `$SYS` tree of `stats`.
pub(crate) fn sys_tree(stats: &Stats) -> String {
    let tree: Map<String, Value> = sys::values(stats)
        .into_iter()
        .map(|(topic, value)| (format!("{}{topic}", sys::PREFIX), Value::String(value)))
        .collect();
    Value::Object(tree).to_string()
}

/// The snapshot, field by field.
pub(crate) fn stats(metrics: &Metrics) -> String {
    let s = &metrics.stats;
    let limits: Map<String, Value> = s
        .limits_reached
        .iter()
        .map(|(limit, count)| (limit.key().to_string(), json!(count)))
        .collect();
    let listeners: Vec<Value> = metrics
        .listeners
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "protocol": l.protocol,
                "address": l.address.to_string(),
                "connections": l.connections,
                "max_connections": l.max_connections,
            })
        })
        .collect();
    let bridges: Vec<Value> = metrics
        .bridges
        .iter()
        .map(|b| {
            json!({
                "name": b.name,
                "remote": b.remote,
                "connected": b.connected,
                "sent": b.sent,
                "received": b.received,
                "dropped": b.dropped,
                "queued": b.queued,
            })
        })
        .collect();
    json!({
        "version": metrics.version,
        "uptime_seconds": s.uptime.as_secs(),
        "connected_clients": s.connected_clients,
        "disconnected_clients": s.disconnected_clients,
        "maximum_clients": s.maximum_clients,
        "subscriptions": s.subscriptions,
        "retained_messages": s.retained_messages,
        "queued_messages": s.queued_messages,
        "inflight_messages": s.inflight_messages,
        "stored_bytes": s.stored_bytes,
        "messages_received": s.messages_received,
        "messages_sent": s.messages_sent,
        "publish_received": s.publish_received,
        "publish_sent": s.publish_sent,
        "publish_dropped": s.publish_dropped,
        "publish_bytes_received": s.publish_bytes_received,
        "publish_bytes_sent": s.publish_bytes_sent,
        "bytes_received": s.bytes_received,
        "bytes_sent": s.bytes_sent,
        "connections_accepted": s.connections_accepted,
        "store_commits": s.store_commits,
        "store_failures": s.store_failures,
        "limits_reached": limits,
        "listeners": listeners,
        "bridges": bridges,
    })
    .to_string()
}
