//! What the router does besides handling events: recording sessions, expiring them,
//! `$SYS` topics and the gauges behind [`Broker::stats`](crate::broker::Broker::stats).

use std::time::Instant;

use crate::broker::stats::{Gauges, Limit};
use crate::broker::store::{Change, SessionRecord, StoredOwner};
use crate::broker::subs::ClientKey;
use crate::broker::sys::SysExtra;
use crate::protocol::{Publish, QoS, TopicName};

use super::RouterState;

impl RouterState {
    /// Starts a new period of the rate-limited logs.
    pub(super) fn renew_logs(&mut self, now: Instant) {
        self.denied_log.renew(now);
        self.limit_log.renew(now);
    }

    /// Writes down a persistent session's record for the store: the client that
    /// owns it and its subscriptions. Its messages are written down as they change
    /// (`durable.rs`).
    pub(super) fn record_session(&mut self, key: &ClientKey) {
        let Some(durable) = &mut self.durable else {
            return;
        };
        let Some(entry) = self.sessions.get(key) else {
            return;
        };
        let Some(owner) = entry.owner.as_ref().filter(|_| !entry.session.clean) else {
            return;
        };
        durable.record(Change::Session(SessionRecord {
            client_id: key.to_string(),
            owner: StoredOwner {
                username: owner.username.clone(),
                remote_addr: Some(owner.remote_addr),
                listener: owner.listener.clone(),
                protocol: owner.protocol,
            },
            subscriptions: self
                .subscriptions
                .of(key)
                .map(|(filter, options)| (filter.clone(), options.qos))
                .collect(),
        }));
    }

    /// Removes the persistent sessions whose client has been away longer than
    /// `persistent_client_expiration`, as mosquitto's option of that name does.
    pub(super) fn expire_sessions(&mut self, now: Instant) {
        let (Some(check), Some(expiry)) =
            (self.expiry_check, self.limits.persistent_client_expiration)
        else {
            return;
        };
        if check > now {
            return;
        }
        let expired: Vec<ClientKey> = self
            .sessions
            .iter()
            .filter(|(_, entry)| {
                entry
                    .offline_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= expiry)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            log::info!("Expiring the session of client {key}: away longer than {expiry:?}.");
            self.counters
                .limit_reached(Limit::PersistentClientExpiration);
            self.remove_session(&key);
        }
        self.expiry_check = self
            .sessions
            .values()
            .filter_map(|entry| entry.offline_since)
            .min()
            .map(|since| since + expiry);
    }

    /// Publishes the `$SYS` topics that changed, if a tick is due.
    pub(super) fn sys_tick(&mut self, now: Instant) {
        let due = self.sys.as_ref().is_some_and(|sys| sys.deadline() <= now);
        if !due {
            return;
        }
        self.publish_gauges();
        let stats = self
            .counters
            .snapshot(now.saturating_duration_since(self.started));
        let extra = SysExtra {
            connects: self.connects,
        };
        let Some(sys) = self.sys.as_mut() else {
            return;
        };
        for (topic, payload) in sys.tick(now, &stats, extra) {
            let Ok(topic) = TopicName::new(topic) else {
                continue;
            };
            self.publish(Publish::new(topic, payload, QoS::AtMostOnce, true));
        }
        self.close_pending();
    }

    pub(super) fn publish_gauges(&self) {
        let connected = self.connections.len() as u64;
        let sessions = self.sessions.len() as u64;
        let gauges = Gauges {
            connected,
            disconnected: sessions.saturating_sub(connected),
            maximum: self.maximum_sessions,
            subscriptions: self.subscriptions.len() as u64,
            retained: self.retained.len() as u64,
            queued: self.held.queued as u64,
            inflight: self.held.inflight as u64,
            stored_bytes: (self.held.bytes + self.retained.bytes()) as u64,
        };
        *self.counters.gauges.lock() = gauges;
    }
}
