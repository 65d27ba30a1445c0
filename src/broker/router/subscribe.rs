//! SUBSCRIBE and UNSUBSCRIBE, and the retained messages replayed to a new
//! subscription a slice at a time.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::broker::event::{ConnectionId, Qos0Room};
use crate::broker::retain::ReplayCursor;
use crate::broker::stats::Limit;
use crate::broker::subs::{subscription_cost, ClientKey, SubscriptionOptions};
use crate::protocol::{
    Packet, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, TopicFilter, UnsubAck, Unsubscribe,
};

use super::publish::{Compacted, Delivered, Grant};
use super::RouterState;

/// Nodes of the retained-message tree one turn of a retained replay may visit.
/// A SUBSCRIBE matching more is served this much at a time, between batches of
/// other clients' events, so that nobody waits for one subscriber's replay.
pub(super) const REPLAY_BUDGET: usize = 2048;

/// Replays given a slice in one turn of the router, in order: what a turn may cost
/// stays bounded however many subscribers wait for their retained messages.
const REPLAYS_PER_TURN: usize = 8;

/// A retained replay too large for one turn, to be resumed between other work.
pub(super) struct Replay {
    pub(super) client: ClientKey,
    pub(super) filter: TopicFilter,
    pub(super) qos: QoS,
    /// MQTT 5: the Subscription Identifier of the subscription.
    pub(super) identifier: Option<NonZeroU32>,
    /// Where the last slice stopped; `None` before the first.
    pub(super) cursor: Option<ReplayCursor>,
}

impl RouterState {
    pub(super) fn subscribe(
        &mut self,
        id: ConnectionId,
        subscribe: Subscribe,
        authorized: Vec<bool>,
    ) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        let key = connection.client_key.clone();
        let info = connection.info.clone();
        let bridge = connection.bridge;
        let now = Instant::now();
        // MQTT 5: one Subscription Identifier for every filter of the packet.
        let identifier = subscribe
            .properties()
            .subscription_identifiers
            .first()
            .copied()
            .and_then(NonZeroU32::new);

        // Identical filters in one SUBSCRIBE are one subscription: each replaces the
        // one before [MQTT-3.8.4-3], so the last one's QoS stands and the work (and
        // the retained replay) is done once per distinct filter.
        let mut last_of: HashMap<&TopicFilter, usize> = HashMap::new();
        for (index, entry) in subscribe.filters.iter().enumerate() {
            last_of.insert(&entry.filter, index);
        }
        let mut codes = vec![ReasonCode::UNSPECIFIED_ERROR; subscribe.filters.len()];
        let mut granted = Vec::new();
        for (index, (entry, allowed)) in subscribe
            .filters
            .iter()
            .zip(authorized.iter().copied())
            .enumerate()
        {
            if last_of.get(&entry.filter) != Some(&index) {
                continue; // A later copy of the same filter decides.
            }
            if !allowed {
                if self.denied_log.allow(now) {
                    log::info!(
                        "Denied SUBSCRIBE from {} to '{}'.",
                        info.client_id,
                        entry.filter
                    );
                }
                codes[index] = self.limits.denied_subscription_code;
                continue;
            }
            // `$share/GROUP/filter`: a member of a shared subscription.
            let shared = match entry.filter.shared() {
                Ok(shared) => shared.is_some(),
                Err(error) => {
                    log::debug!(
                        "Client {} sent an invalid shared filter '{}': {error}.",
                        info.client_id,
                        entry.filter
                    );
                    codes[index] = ReasonCode::TOPIC_FILTER_INVALID;
                    continue;
                }
            };
            if shared && !self.limits.shared_subscriptions {
                codes[index] = ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED;
                continue;
            }
            if !self.limits.wildcard_subscriptions && entry.filter.has_wildcards() {
                codes[index] = ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED;
                continue;
            }
            let Some(session) = self.sessions.get_mut(&key) else {
                continue;
            };
            let held = self.subscriptions.count_of(&key);
            let cost = self.subscriptions.cost_of(&key);
            let limit = if self.subscriptions.contains(&key, &entry.filter) {
                None
            } else if held >= self.limits.max_subscriptions_per_client {
                Some(Limit::SubscriptionsPerClient)
            } else if cost + subscription_cost(&entry.filter)
                > self.limits.max_subscription_bytes_per_client
            {
                Some(Limit::SubscriptionBytesPerClient)
            } else {
                None
            };
            if let Some(limit) = limit {
                self.counters.limit_reached(limit);
                if session.first_time(limit) && self.limit_log.allow(now) {
                    log::warn!(
                        "Client {} holds {held} subscriptions of {cost} bytes: refusing more \
                         ({}).",
                        info.client_id,
                        limit.key()
                    );
                }
                codes[index] = ReasonCode::QUOTA_EXCEEDED;
                continue;
            }
            // The QoS asked for, up to the most the broker offers (`max-qos`).
            let options = SubscriptionOptions {
                qos: entry.qos.min(self.limits.max_qos),
                // A bridge never gets its own messages back, and gets the RETAIN
                // flag as published so that retained messages stay retained on
                // the other side, as in mosquitto.
                no_local: entry.no_local || bridge,
                retain_as_published: entry.retain_as_published || bridge,
                identifier,
            };
            let new = self.subscriptions.subscribe(&key, &entry.filter, options);
            codes[index] = ReasonCode(options.qos as u8);
            // Retained messages on subscribing: never for a shared subscription
            // (section 4.8.2), and as Retain Handling says: always (0), for a new
            // subscription only (1), never (2) [MQTT-3.3.1-9 .. 11].
            let replay = !shared
                && match entry.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => new,
                    RetainHandling::DoNotSend => false,
                };
            granted.push((entry.filter.clone(), options, replay));
        }
        // Copies of a filter get the answer of the one that decided.
        for (index, entry) in subscribe.filters.iter().enumerate() {
            if let Some(&decided) = last_of.get(&entry.filter) {
                codes[index] = codes[decided];
            }
        }
        drop(last_of);
        // Written down before the SUBACK, which waits for it.
        self.record_session(&key);
        // One reason code per filter, in order [MQTT-3.8.4-5] [MQTT-3.9.3-1]; 3.1.1
        // clients get 0x80 for every refusal.
        self.send(id, Packet::SubAck(SubAck::new(subscribe.packet_id, codes)));
        for (filter, options, replay) in granted {
            if !self.hooks.is_empty() {
                self.hooks.observe("on_subscribed", |h| {
                    h.on_subscribed(&info, &filter, options.qos)
                });
            }
            if !replay {
                continue;
            }
            // Retained messages are sent on every subscribe, even a repeated one
            // [MQTT-3.3.1-6] [MQTT-3.8.4-3], with RETAIN=1 [MQTT-3.3.1-8]: the
            // first slice now, the rest between other clients' work. A replay of
            // the same filter still under way is replaced by this one, so that a
            // client subscribing again and again keeps one replay going, not many.
            self.replays
                .retain(|replay| !(replay.client == key && replay.filter == filter));
            self.replay(Replay {
                client: key.clone(),
                filter,
                qos: options.qos,
                identifier: options.identifier,
                cursor: None,
            });
        }
    }

    pub(super) fn unsubscribe(&mut self, id: ConnectionId, unsubscribe: Unsubscribe) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        let key = connection.client_key.clone();
        let info = connection.info.clone();
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let existed = self.subscriptions.unsubscribe(&key, filter);
            codes.push(if existed {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            });
            if !self.hooks.is_empty() {
                self.hooks
                    .observe("on_unsubscribed", |h| h.on_unsubscribed(&info, filter));
            }
        }
        self.record_session(&key);
        // Answered even when nothing matched [MQTT-3.10.4-5], once for all filters
        // [MQTT-3.10.4-6]; MQTT 5 says for each filter whether it was there
        // [MQTT-3.11.3-1].
        let mut ack = UnsubAck::new(unsubscribe.packet_id);
        ack.reason_codes = codes;
        self.send(id, Packet::UnsubAck(ack));
    }

    /// Tells an inline session how many messages its session holds: (queued,
    /// inflight). The asker waits with a timeout; if it has gone, nobody reads.
    pub(super) fn session_held(&mut self, id: ConnectionId, reply: Sender<(usize, usize)>) {
        let held = self
            .connections
            .get(&id)
            .and_then(|connection| self.sessions.get(&connection.client_key))
            .map(|entry| entry.session.footprint());
        if let Some(held) = held {
            let _ = reply.try_send((held.queued, held.inflight));
        }
    }

    /// Tells an inline session the filters its session is subscribed to.
    pub(super) fn session_filters(&mut self, id: ConnectionId, reply: Sender<Vec<TopicFilter>>) {
        if let Some(connection) = self.connections.get(&id) {
            let filters = self
                .subscriptions
                .of(&connection.client_key)
                .map(|(filter, _)| filter.clone())
                .collect();
            let _ = reply.try_send(filters);
        }
    }

    /// Delivers the next slice of a retained replay, and queues the rest for a
    /// later turn. A replay ends early when its subscription is gone (unsubscribed,
    /// or its session ended) or the session cannot take more (its queue or outbox
    /// is full: what remains would only be dropped).
    pub(super) fn replay(&mut self, replay: Replay) {
        if !self.subscriptions.contains(&replay.client, &replay.filter) {
            return;
        }
        let chunk = self
            .retained
            .replay(&replay.filter, replay.cursor.as_ref(), REPLAY_BUDGET);
        let now = Instant::now();
        let identifiers = replay.identifier.map(NonZeroU32::get);
        for message in &chunk.messages {
            if message.expires.is_some_and(|expires| expires <= now) {
                // Past its Message Expiry Interval: nobody gets it any more
                // [MQTT-3.3.2-5], and it is no longer kept.
                self.clear_retained(&message.topic);
                continue;
            }
            let grant = Grant {
                qos: replay.qos,
                retain: true,
                identifiers: identifiers.as_slice(),
                expires: message.expires,
                now,
                compacted: &Compacted::already(message),
            };
            match self.deliver(&replay.client, message, &grant) {
                Delivered::Skipped if !self.sessions.contains_key(&replay.client) => return,
                Delivered::Dropped => return self.replay_cut(&replay),
                Delivered::Crowded(id) if self.outbox_full(id) => return self.replay_cut(&replay),
                _ => {}
            }
        }
        if let Some(cursor) = chunk.next {
            self.replays.push_back(Replay {
                cursor: Some(cursor),
                ..replay
            });
        }
    }

    fn replay_cut(&self, replay: &Replay) {
        log::debug!(
            "Retained replay of '{}' to client {} cut short: it cannot take more now.",
            replay.filter,
            replay.client
        );
    }

    /// Gives the next few replays under way their next slice, in turn.
    pub(super) fn continue_replays(&mut self) {
        for _ in 0..self.replays.len().min(REPLAYS_PER_TURN) {
            if let Some(replay) = self.replays.pop_front() {
                self.replay(replay);
            }
        }
    }

    /// Whether a connection's outbox takes no more QoS 0 messages.
    fn outbox_full(&self, id: ConnectionId) -> bool {
        self.connections
            .get(&id)
            .is_some_and(|connection| connection.outbox.qos0_room() == Qos0Room::Full)
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::*;
    use crate::protocol::{ReasonCode, SubscribeReturnCode, Unsubscribe};

    #[test]
    fn identical_filters_count_once_and_subscriptions_beyond_the_cap_get_0x80() {
        let mut h = Harness::with_limits(Limits {
            max_subscriptions_per_client: 2,
            ..limits()
        });
        let client = h.connect("c", true);
        client.received();
        let filter = |f: &str, qos| SubscribeFilter::new(TopicFilter::new(f).unwrap(), qos);
        h.state.handle(Event::Subscribe {
            connection: client.id,
            subscribe: Subscribe {
                packet_id: pid(7),
                filters: vec![
                    filter("a", QoS::AtMostOnce),
                    filter("a", QoS::AtLeastOnce),
                    filter("b", QoS::AtMostOnce),
                    filter("c", QoS::AtMostOnce),
                ],
                properties: None,
            },
            authorized: vec![true; 4],
        });
        // MQTT 5 says which limit (0x97 "quota exceeded"); 3.1.1 clients get 0x80.
        let Some(Packet::SubAck(suback)) = client.received().pop() else {
            panic!("expected a SUBACK");
        };
        assert_eq!(suback.packet_id, pid(7));
        assert_eq!(
            suback.reason_codes,
            [
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::GRANTED_QOS_0,
                ReasonCode::QUOTA_EXCEEDED,
            ]
        );
        let granted = SubscribeReturnCode::Success;
        assert_eq!(
            suback.return_codes(),
            [
                granted(QoS::AtLeastOnce),
                granted(QoS::AtLeastOnce),
                granted(QoS::AtMostOnce),
                SubscribeReturnCode::Failure,
            ]
        );
        assert_eq!(h.state.subscriptions.len(), 2);
        assert_eq!(limit_count(&h, Limit::SubscriptionsPerClient), 1);
    }

    #[test]
    fn deep_filters_are_refused_once_a_client_holds_its_bytes_of_subscriptions() {
        use crate::broker::subs::subscription_cost;
        let deep = "/".repeat(199); // 200 levels: allowed, but dear.
        let cost = subscription_cost(&TopicFilter::new(deep.clone()).unwrap());
        let mut h = Harness::with_limits(Limits {
            max_subscription_bytes_per_client: 2 * cost + cost / 2,
            ..limits()
        });
        let client = h.connect("c", true);
        client.received();
        let filters: Vec<SubscribeFilter> = ["a", "b", "c"]
            .iter()
            .map(|first| {
                let filter = TopicFilter::new(format!("{first}{deep}")).unwrap();
                SubscribeFilter::new(filter, QoS::AtMostOnce)
            })
            .collect();
        h.state.handle(Event::Subscribe {
            connection: client.id,
            subscribe: Subscribe {
                packet_id: pid(9),
                filters,
                properties: None,
            },
            authorized: vec![true; 3],
        });
        let Some(Packet::SubAck(suback)) = client.received().pop() else {
            panic!("expected a SUBACK");
        };
        let granted = SubscribeReturnCode::Success(QoS::AtMostOnce);
        assert_eq!(
            suback.return_codes(),
            [granted, granted, SubscribeReturnCode::Failure]
        );
        assert_eq!(limit_count(&h, Limit::SubscriptionBytesPerClient), 1);
        // Short filters still fit in what is left.
        h.subscribe(&client, "short/filter", QoS::AtMostOnce);
        assert_eq!(h.state.subscriptions.len(), 3);
    }

    /// Retains `count` messages on `r/0`, `r/1`, ...: more than one replay slice.
    fn retain_many(h: &mut Harness, count: usize) {
        for n in 0..count {
            let topic = TopicName::new(format!("r/{n}")).unwrap();
            h.state.handle(Event::InlinePublish(Publish::new(
                topic,
                "x",
                QoS::AtMostOnce,
                true,
            )));
        }
    }

    #[test]
    fn a_retained_replay_stops_when_its_subscription_is_gone() {
        let mut h = Harness::new();
        retain_many(&mut h, 3 * super::REPLAY_BUDGET);
        let client = h.connect("c", true);
        h.subscribe(&client, "r/#", QoS::AtMostOnce);
        let first = publishes(&client.received()).len();
        assert!(first > 0 && first < 3 * super::REPLAY_BUDGET, "{first}");
        assert_eq!(h.state.replays.len(), 1, "the rest waits for a later turn");
        h.packet(
            &client,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(2),
                filters: vec![TopicFilter::new("r/#").unwrap()],
                properties: None,
            }),
        );
        client.received();
        h.state.tick(Instant::now());
        assert!(publishes(&client.received()).is_empty());
        assert!(h.state.replays.is_empty());
    }

    #[test]
    fn subscribing_again_keeps_one_replay_going_not_many() {
        let mut h = Harness::new();
        retain_many(&mut h, 3 * super::REPLAY_BUDGET);
        let client = h.connect("c", true);
        for _ in 0..5 {
            h.subscribe(&client, "r/#", QoS::AtMostOnce);
        }
        assert_eq!(h.state.replays.len(), 1);
    }
}
