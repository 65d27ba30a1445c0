//! A bridge's state on this broker: mosquitto's notification topic, and
//! `$SYS/broker/bridges/NAME/`: `connected` (1 or 0), `sent`, `received`,
//! `dropped` and `queued` (what waits in the bridge's local session, queued or
//! sent and not yet acknowledged by the remote), all retained; the counters are
//! published when the state changes and every five seconds if they changed.

use std::sync::Arc;

use parking_lot::Mutex;

use super::BridgeStatus;
use crate::broker::Publisher;
use crate::config::BridgeConfig;
use crate::protocol::{Publish, QoS, TopicName};

/// Publishes a bridge's state here, retained.
pub(super) struct Notifier {
    publisher: Publisher,
    /// mosquitto's `$SYS/broker/connection/CLIENT-ID/state`, with notifications on.
    state_topic: Option<String>,
    /// `$SYS/broker/bridges/NAME/`.
    sys_prefix: String,
    status: Arc<BridgeStatus>,
    /// The counters last published: sent, received, dropped, queued.
    last: Mutex<Option<[u64; 4]>>,
}

impl Notifier {
    pub(super) fn new(
        config: &BridgeConfig,
        publisher: Publisher,
        status: Arc<BridgeStatus>,
    ) -> Notifier {
        Notifier {
            publisher,
            state_topic: config
                .notifications
                .then(|| config.notification_topic.clone()),
            sys_prefix: format!("$SYS/broker/bridges/{}/", config.name),
            status,
            last: Mutex::new(None),
        }
    }

    /// The bridge connected (`true`) or lost its connection; `queued` is what its
    /// local session holds, if known.
    pub(super) fn connection_changed(&self, connected: bool, queued: Option<usize>) {
        let flag = if connected { "1" } else { "0" };
        if let Some(topic) = &self.state_topic {
            self.publish(topic, flag);
        }
        self.publish(&format!("{}connected", self.sys_prefix), flag);
        *self.last.lock() = None;
        self.counters(queued);
    }

    /// The counters, if they changed since they were last published; `queued` is
    /// what the local session holds (queued or sent and unacknowledged), if known.
    pub(super) fn counters(&self, queued: Option<usize>) {
        let last_queued = self.last.lock().map_or(0, |last| last[3]);
        let now = [
            self.status.sent(),
            self.status.received(),
            self.status.dropped(),
            queued.map_or(last_queued, |queued| queued as u64),
        ];
        self.status
            .queued
            .store(now[3], std::sync::atomic::Ordering::Relaxed);
        let mut last = self.last.lock();
        if *last == Some(now) {
            return;
        }
        *last = Some(now);
        for (name, value) in ["sent", "received", "dropped", "queued"].iter().zip(now) {
            self.publish(&format!("{}{name}", self.sys_prefix), &value.to_string());
        }
    }

    fn publish(&self, topic: &str, payload: &str) {
        let Ok(name) = TopicName::new(topic) else {
            return; // checked when the configuration was read
        };
        let message = Publish::new(name, payload.to_owned(), QoS::AtMostOnce, true);
        // A broker shutting down has nobody left to tell.
        let _ = self.publisher.publish(message);
    }
}
