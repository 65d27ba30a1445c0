//! A bridge's state on this broker: mosquitto's notification topic, and
//! `$SYS/broker/bridges/NAME/...`.

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
    /// The counters last published: sent, received, dropped.
    last: Mutex<Option<[u64; 3]>>,
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

    /// The bridge connected (`true`) or lost its connection.
    pub(super) fn connection_changed(&self, connected: bool) {
        let flag = if connected { "1" } else { "0" };
        if let Some(topic) = &self.state_topic {
            self.publish(topic, flag);
        }
        self.publish(&format!("{}connected", self.sys_prefix), flag);
        *self.last.lock() = None;
        self.counters();
    }

    /// The counters, if they changed since they were last published.
    pub(super) fn counters(&self) {
        let now = [
            self.status.sent(),
            self.status.received(),
            self.status.dropped(),
        ];
        let mut last = self.last.lock();
        if *last == Some(now) {
            return;
        }
        *last = Some(now);
        for (name, value) in ["sent", "received", "dropped"].iter().zip(now) {
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
