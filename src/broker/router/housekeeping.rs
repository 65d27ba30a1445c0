//! What the router does besides handling events: recording sessions, expiring them,
//! `$SYS` topics and the gauges behind [`Broker::stats`](crate::broker::Broker::stats).

use std::time::Instant;

use crate::broker::stats::{Gauges, Limit};
use crate::broker::store::{Change, SessionRecord, StoredOwner, StoredSubscription};
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
                .map(|(filter, options)| {
                    StoredSubscription::new(filter.clone(), options.qos)
                        .with_no_local(options.no_local)
                        .with_retain_as_published(options.retain_as_published)
                        .with_identifier(options.identifier.map(|id| id.get()))
                })
                .collect(),
            session_expiry_interval: entry.expiry,
        }));
    }

    /// Publishes the delayed wills that are due and removes the sessions that have
    /// expired: whose client has been away longer than its Session Expiry Interval
    /// or `persistent_client_expiration` (mosquitto's option of that name),
    /// whichever is shorter. Then plans the next look.
    pub(super) fn expire_sessions(&mut self, now: Instant) {
        if self.expiry_check.is_none_or(|check| check > now) {
            return;
        }
        let mut wills_due = Vec::new();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (key, entry) in &self.sessions {
            if let Some((_, at)) = &entry.pending_will {
                if *at <= now {
                    wills_due.push(key.clone());
                } else {
                    next = Some(next.map_or(*at, |next| next.min(*at)));
                }
            }
            if let Some(at) = self.expires_at(entry) {
                if at <= now {
                    expired.push(key.clone());
                } else {
                    next = Some(next.map_or(at, |next| next.min(at)));
                }
            }
        }
        self.expiry_check = next;
        for key in wills_due {
            if let Some((will, _)) = self
                .sessions
                .get_mut(&key)
                .and_then(|entry| entry.pending_will.take())
            {
                log::debug!("Publishing the will of {key}: its delay has passed.");
                self.publish(will);
            }
        }
        for key in expired {
            let by_configuration = self.sessions.get(&key).is_some_and(|entry| {
                let own = u64::from(entry.expiry);
                self.limits
                    .persistent_client_expiration
                    .is_some_and(|configured| configured.as_secs() < own)
            });
            if by_configuration {
                log::info!(
                    "Expiring the session of client {key}: away longer than \
                     persistent-client-expiration."
                );
                self.counters
                    .limit_reached(Limit::PersistentClientExpiration);
            } else {
                log::info!("Expiring the session of client {key}: its expiry interval passed.");
            }
            self.remove_session(&key);
        }
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
