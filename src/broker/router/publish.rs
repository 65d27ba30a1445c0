//! PUBLISH in and out: the retain rules, routing to every matching session, and
//! delivery at the lower of the published and granted QoS.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::broker::event::{ConnectionId, Qos0Room, HANDLED_REPORT_EVERY};
use crate::broker::hooks::DisconnectReason;
use crate::broker::hooks::{ClientInfo, Hooks};
use crate::broker::session::{set_remaining, Delivery, QueueFull};
use crate::broker::stats::{bump, Limit};
use crate::broker::store::Change;
use crate::broker::subs::ClientKey;
use crate::protocol::{
    Packet, ProtocolVersion, PubAck, PubRec, Publish, QoS, ReasonCode, TopicName,
};

use super::{add_footprint, is_sys_topic, send_to, sub_footprint, touched, RouterState};

/// Whether a client may publish to `topic`: not to `$SYS`, which is the broker's
/// (invariant 5; mosquitto lets clients write `$SYS/broker/connection/NAME/state`
/// for bridges, which wren's own bridges have no need of), nor to a `$share/` name
/// (section 4.8.2).
fn may_publish_to(topic: &str) -> bool {
    !is_sys_topic(topic) && !topic.starts_with("$share/")
}

/// What a session was granted for one message: the QoS, RETAIN and subscription
/// identifiers its copy goes with.
pub(super) struct Grant<'a> {
    /// The highest QoS the session may get it at.
    pub(super) qos: QoS,
    /// The RETAIN flag of its copy.
    pub(super) retain: bool,
    /// MQTT 5 Subscription Identifiers of the subscriptions it matched.
    pub(super) identifiers: &'a [u32],
    /// MQTT 5: when the message expires (its Message Expiry Interval after it
    /// arrived), if it does.
    pub(super) expires: Option<Instant>,
    /// When this delivery started: a message whose expiry is not past then goes
    /// out, even one with an interval of 0 routed the moment it came.
    pub(super) now: Instant,
    /// The message's own copy of its topic and payload, for the sessions that
    /// queue it.
    pub(super) compacted: &'a Compacted,
}

/// The topic and payload of the message being routed, copied out of the buffer
/// it was read into when the first session queues it, and shared by every
/// session that queues it after. A message read from a client is a slice of that
/// buffer, and one queued for long would pin all of it; a copy per session, as
/// each queue used to make, cost a hundred subscribers a hundred copies.
#[derive(Default)]
pub(super) struct Compacted(RefCell<Option<(TopicName, Bytes)>>);

impl Compacted {
    /// For a message that holds its own copy already (a retained one).
    pub(super) fn already(message: &Publish) -> Compacted {
        Compacted(RefCell::new(Some((
            message.topic.clone(),
            message.payload.clone(),
        ))))
    }

    /// `publish` with the shared copy of the topic and payload, made now if this
    /// is the first session to queue the message.
    fn apply(&self, mut publish: Publish) -> Publish {
        let mut shared = self.0.borrow_mut();
        match &*shared {
            Some((topic, payload)) => {
                publish.topic = topic.clone();
                publish.payload = payload.clone();
            }
            None => {
                publish.compact();
                *shared = Some((publish.topic.clone(), publish.payload.clone()));
            }
        }
        publish
    }
}

/// What became of one message for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivered {
    /// Handed to the connection.
    Sent,
    /// Waiting in the session's queue.
    Queued,
    /// Dropped by a limit, and counted.
    Dropped,
    /// QoS 0, handed to (or, when full, dropped at) a connection whose outbox is
    /// crowded.
    Crowded(ConnectionId),
    /// Nobody to give it to: no session, or QoS 0 for an offline one.
    Skipped,
}

/// Where a message went, for pacing its publisher.
#[derive(Default)]
pub(super) struct Routed {
    /// Sessions it was queued for that are behind and still acknowledging.
    pub(super) behind: Vec<ClientKey>,
    /// Connections whose outboxes it crowds (QoS 0).
    pub(super) crowded: Vec<ConnectionId>,
    /// Whether any subscription matched it.
    pub(super) matched: bool,
}

impl RouterState {
    /// A message of the embedding program. Nobody to pace: the embedding program
    /// is blocked on the inbox at most.
    pub(super) fn inline_publish(&mut self, publish: Publish) {
        let _ = self.publish(publish);
    }

    /// A message of an inline session: routed as the session's own, so No Local
    /// keeps it from the session's subscriptions; nothing to acknowledge.
    pub(super) fn session_publish(&mut self, id: ConnectionId, publish: Publish) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        let publisher = connection.client_key.clone();
        let _ = self.route(Some(&publisher), publish);
    }

    pub(super) fn client_publish(&mut self, id: ConnectionId, publish: Publish, authorized: bool) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        // `$SYS` belongs to the broker, and `$share/` names subscriptions, not
        // topics: a client's message there is refused like one the hooks deny.
        let authorized = authorized && may_publish_to(&publish.topic);
        connection.handled += 1;
        if connection.handled % HANDLED_REPORT_EVERY == 0 {
            connection.gate.handled(connection.handled);
        }
        let key = connection.client_key.clone();
        let qos = publish.qos;
        if connection.version == ProtocolVersion::V5 && qos != QoS::AtMostOnce {
            // An MQTT 5 client may have at most `receive-maximum` QoS 1/2 messages
            // unacknowledged: those whose PUBACK or PUBCOMP pacing holds back, and
            // QoS 2 ones waiting for their PUBREL [MQTT-3.3.4-7]. A QoS 2 message
            // sent again is not a new one.
            let session = self.sessions.get(&key).map(|entry| &entry.session);
            let repeat = qos == QoS::ExactlyOnce
                && publish
                    .packet_id
                    .zip(session)
                    .is_some_and(|(packet_id, session)| session.awaits_pubrel(packet_id));
            let unacknowledged =
                connection.held_acks.len() + session.map_or(0, |session| session.awaiting_pubrel());
            if !repeat && unacknowledged >= usize::from(self.limits.receive_maximum) {
                self.to_close.push((
                    id,
                    DisconnectReason::ProtocolViolation {
                        code: Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED),
                        why: format!(
                            "more than {} QoS 1/2 messages unacknowledged (receive-maximum) \
                             [MQTT-3.3.4-7]",
                            self.limits.receive_maximum
                        ),
                    },
                ));
                return;
            }
        }
        let v5 = connection.version == ProtocolVersion::V5;
        // Answer per QoS [MQTT-3.3.4-1]. A QoS 2 message whose packet identifier is
        // still held (no PUBREL yet) is a re-delivery: answered, not routed again
        // [MQTT-4.3.3-2].
        let (route, ack) = match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => (true, None),
            (QoS::AtLeastOnce, Some(packet_id)) => (true, Some(packet_id)),
            (QoS::ExactlyOnce, Some(packet_id)) if v5 && !authorized => {
                // MQTT 5 can say no: the PUBREC ends the exchange, and the packet
                // identifier is not held for a PUBREL [MQTT-4.3.3-9].
                let mut refusal = PubRec::new(packet_id);
                refusal.reason_code = ReasonCode::NOT_AUTHORIZED;
                if let Some(durable) = &mut self.durable {
                    durable.expect_changes();
                }
                self.send(id, Packet::PubRec(refusal));
                let _ = self.route_from(id, publish, authorized);
                return;
            }
            (QoS::ExactlyOnce, Some(packet_id)) => {
                let new = self.sessions.get_mut(&key).is_some_and(|entry| {
                    let new = entry.session.receive_qos2(packet_id);
                    touched(&mut self.durable, &key, &mut entry.session);
                    new
                });
                // The PUBREC goes before any copy of the message, the publisher's
                // own included, as mosquitto (which routes only on PUBREL) does: a
                // client subscribed to its own topic sees PUBREC first. Pacing
                // holds back the PUBCOMP instead (see `pubrel`). With a store it
                // waits for the commit of the copies routed just below.
                if let Some(durable) = &mut self.durable {
                    durable.expect_changes();
                }
                self.send(id, Packet::PubRec(PubRec::new(packet_id)));
                (new, None)
            }
            // The decoder guarantees a packet identifier for QoS 1 and 2.
            (_, None) => (false, None),
        };
        let routed = if route {
            self.route_from(id, publish, authorized)
        } else {
            Routed::default()
        };
        if !routed.crowded.is_empty() {
            self.pause_publisher(id, routed.crowded);
        }
        match ack {
            Some(packet_id) => {
                let mut ack = PubAck::new(packet_id);
                // MQTT 5 says what became of the message: refused, or nobody
                // subscribed [MQTT-3.4.2-1].
                if v5 && !authorized {
                    ack.reason_code = ReasonCode::NOT_AUTHORIZED;
                } else if v5 && !routed.matched {
                    ack.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
                }
                self.acknowledge(id, Packet::PubAck(ack), routed.behind)
            }
            None if qos == QoS::ExactlyOnce && !routed.behind.is_empty() => {
                // Remembered until the PUBREL, whose PUBCOMP they may hold.
                if let Some(connection) = self.connections.get_mut(&id) {
                    connection.waiting_on.extend(routed.behind);
                }
            }
            None => {}
        }
    }

    /// Routes a client's message, and says where it went.
    fn route_from(&mut self, id: ConnectionId, publish: Publish, authorized: bool) -> Routed {
        let Some(connection) = self.connections.get(&id) else {
            return Routed::default();
        };
        if !authorized {
            // MQTT 3.1.1 cannot refuse a PUBLISH: it is acknowledged and dropped
            // [MQTT-3.3.5-2].
            if self.denied_log.allow(Instant::now()) {
                log::info!(
                    "Denied PUBLISH from {} to '{}'.",
                    connection.info.client_id,
                    publish.topic
                );
            }
            return Routed::default();
        }
        if !self.hooks.is_empty() {
            let info = connection.info.clone();
            self.hooks
                .observe("on_published", |h| h.on_published(&info, &publish));
        }
        let publisher = connection.client_key.clone();
        self.route(Some(&publisher), publish)
    }

    /// Applies the retain rules and routes a message of the broker's own (`$SYS`,
    /// wills, the embedding program's) to every matching session.
    pub(super) fn publish(&mut self, publish: Publish) -> Routed {
        self.route(None, publish)
    }

    /// Applies the retain rules and routes a message to every matching session;
    /// `publisher` is the client that sent it, for No Local.
    fn route(&mut self, publisher: Option<&ClientKey>, publish: Publish) -> Routed {
        if publish.retain {
            self.retain(&publish);
        }
        // The list of matches is kept from one message to the next: no allocation.
        let mut matches = std::mem::take(&mut self.matched);
        let sessions = &self.sessions;
        self.subscriptions
            .matches_into(&publish.topic, publisher, &mut matches, |key| {
                sessions
                    .get(key)
                    .is_some_and(|entry| entry.connection.is_some())
            });
        // "No matching subscribers" (MQTT 5's PUBACK 0x10) means no subscription
        // matched at all: one left out by its own No Local still counts, as in
        // mosquitto. Looked at again only in that rare case.
        let matched = !matches.is_empty()
            || publisher.is_some_and(|publisher| {
                self.subscriptions.count_of(publisher) > 0
                    && self.subscriptions.any_match(&publish.topic)
            });
        let mut routed = Routed {
            matched,
            ..Routed::default()
        };
        let now = Instant::now();
        let expires = publish
            .properties()
            .message_expiry_interval
            .map(|seconds| now + Duration::from_secs(seconds.into()));
        let compacted = Compacted::default();
        for found in matches.drain(..) {
            let client = found.client;
            // Messages to existing subscriptions carry RETAIN=0 [MQTT-3.3.1-9],
            // unless the subscription asked for Retain As Published
            // [MQTT-3.3.1-12] [MQTT-3.3.1-13]; DUP is never copied from the
            // publisher [MQTT-3.3.1-3].
            let grant = Grant {
                qos: found.qos,
                retain: found.retain_as_published && publish.retain,
                identifiers: &found.identifiers,
                expires,
                now,
                compacted: &compacted,
            };
            match self.deliver(&client, &publish, &grant) {
                // A message dropped by a full queue paces its publisher too: that is
                // when pacing matters most.
                Delivered::Queued | Delivered::Dropped if self.is_behind(&client, now) => {
                    routed.behind.push(client)
                }
                Delivered::Crowded(connection) => routed.crowded.push(connection),
                _ => {}
            }
        }
        self.matched = matches;
        routed
    }

    pub(super) fn retain(&mut self, publish: &Publish) {
        // With `retain-available: false` clients' messages are routed, not kept
        // (an MQTT 5 client's RETAIN was refused already); `$SYS` is the broker's.
        if !self.limits.retain_available && !is_sys_topic(&publish.topic) {
            return;
        }
        if !publish.payload.is_empty() && !self.retained_has_room(publish) {
            return;
        }
        if !self.retained.apply(publish) || is_sys_topic(&publish.topic) {
            return;
        }
        if let Some(durable) = &mut self.durable {
            durable.record(if publish.payload.is_empty() {
                Change::ClearRetained(publish.topic.to_string())
            } else {
                let mut retained = publish.clone();
                retained.packet_id = None;
                retained.dup = false;
                Change::Retain(retained)
            });
        }
    }

    /// Removes the retained message of `topic` (it expired), from the store too.
    pub(super) fn clear_retained(&mut self, topic: &str) {
        if self.retained.remove(topic) {
            if let Some(durable) = &mut self.durable {
                durable.record(Change::ClearRetained(topic.to_string()));
            }
        }
    }

    /// Whether retaining `publish` stays within `max_retained_messages` and
    /// `max_retained_bytes`; if not, the limit is counted and logged (the message
    /// is still delivered to current subscribers, only not retained). The broker's
    /// own `$SYS` topics are not counted against them.
    fn retained_has_room(&mut self, publish: &Publish) -> bool {
        if is_sys_topic(&publish.topic) {
            return true;
        }
        let new_topic = self.retained.size_of(&publish.topic).is_none();
        let limit = if new_topic && self.retained.len() >= self.limits.max_retained_messages {
            Limit::RetainedMessages
        } else if self.retained.footprint_with(publish) > self.limits.max_retained_bytes {
            Limit::RetainedBytes
        } else {
            return true;
        };
        self.counters.limit_reached(limit);
        if self.limit_log.allow(Instant::now()) {
            log::warn!(
                "Not retaining the message on '{}': the broker holds {} retained messages \
                 in {} bytes ({}).",
                publish.topic,
                self.retained.len(),
                self.retained.footprint(),
                limit.key()
            );
        }
        false
    }

    /// Hands one message to one session at min(published, granted) QoS
    /// [MQTT-3.8.4-6].
    pub(super) fn deliver(
        &mut self,
        client: &ClientKey,
        message: &Publish,
        grant: &Grant<'_>,
    ) -> Delivered {
        let half_queue = self.half_queue();
        let Some(entry) = self.sessions.get_mut(client) else {
            return Delivered::Skipped;
        };
        // Read access, checked per delivery, for the client that owns the session
        // (restored with it from the store after a restart); a session with no
        // known owner gets nothing while hooks decide (fail closed, invariant 5).
        if !self.hooks.is_empty()
            && !entry.trusted
            && !entry
                .owner
                .as_ref()
                .is_some_and(|owner| self.hooks.authorize_receive(owner, &message.topic))
        {
            log::debug!(
                "Not delivering '{}' to client {client}: no read access.",
                message.topic
            );
            return Delivered::Skipped;
        }
        let mut publish = message.clone();
        publish.qos = message.qos.min(grant.qos);
        publish.retain = grant.retain;
        publish.dup = false;
        publish.packet_id = None;
        if !grant.identifiers.is_empty() {
            // MQTT 5: the identifiers of the subscriptions it matched [MQTT-3.3.4-3];
            // an MQTT 3.1.1 client's encoding leaves them out.
            publish
                .properties
                .get_or_insert_with(Default::default)
                .subscription_identifiers = grant.identifiers.to_vec();
        }
        if let Some(expires) = grant.expires {
            // A retained message that waited is sent with the time it has left
            // [MQTT-3.3.2-6]; one past its expiry is not sent [MQTT-3.3.2-5].
            // Onward delivery of a message just routed starts now, so one with an
            // interval of 0 still reaches the subscribers there are, as mosquitto
            // delivers it.
            if !set_remaining(&mut publish, expires, grant.now) {
                return Delivered::Skipped;
            }
        }
        let connection = entry
            .connection
            .and_then(|id| Some((id, self.connections.get_mut(&id)?)));
        if let Some((_, connection)) = &connection {
            // Never more than the client accepts [MQTT-3.1.2-24]: a message too large
            // for it is left out, as if it had been delivered [MQTT-3.1.2-25].
            if connection.max_packet_size != usize::MAX
                && publish.encoded_len_for(connection.version) > connection.max_packet_size
            {
                log::debug!(
                    "Not sending '{}' to client {client}: larger than its Maximum Packet \
                     Size ({} bytes).",
                    message.topic,
                    connection.max_packet_size
                );
                return Delivered::Skipped;
            }
        }

        if publish.qos == QoS::AtMostOnce && connection.is_none() {
            // QoS 0 is never stored for an offline session.
            return Delivered::Skipped;
        }
        if publish.qos == QoS::AtMostOnce && entry.session.footprint().queued == 0 {
            // Dropped when the connection's outbox has no QoS 0 room left. (Behind
            // queued messages it waits in the session instead, below, to keep the
            // publisher's order.)
            let Some((id, connection)) = connection else {
                return Delivered::Skipped;
            };
            let room = connection.outbox.qos0_room();
            // Behind packets that wait for the store it would wait too: bounded
            // like the outbox.
            if room == Qos0Room::Full || connection.waiting.full_for_qos0() {
                bump(&self.counters.publish_dropped, 1);
                return Delivered::Crowded(id);
            }
            observe_delivery(&self.hooks, &connection.info, &publish);
            send_to(
                &mut self.to_close,
                self.durable.as_mut(),
                id,
                connection,
                Packet::Publish(publish),
            );
            return if room == Qos0Room::Crowded {
                Delivered::Crowded(id)
            } else {
                Delivered::Sent
            };
        }

        let before = entry.session.footprint();
        if before.inflight == 0 && connection.is_some() {
            // Nothing was waiting for an acknowledgement: the wait starts now.
            entry.last_progress = Instant::now();
        }
        let delivery = match entry.session.send_now(publish, connection.is_some()) {
            Ok(sent) => sent,
            Err(publish) => entry
                .session
                .enqueue(grant.compacted.apply(publish), grant.expires),
        };
        // What the session wrote down waits for the store before anything is sent.
        touched(&mut self.durable, client, &mut entry.session);
        let after = entry.session.footprint();
        add_footprint(&mut self.held, after);
        sub_footprint(&mut self.held, before);
        if after.queued >= half_queue {
            entry.behind_since.get_or_insert_with(Instant::now);
        }
        match delivery {
            Delivery::Send(publish) => {
                if let Some((id, connection)) = connection {
                    observe_delivery(&self.hooks, &connection.info, &publish);
                    send_to(
                        &mut self.to_close,
                        self.durable.as_mut(),
                        id,
                        connection,
                        Packet::Publish(publish),
                    );
                }
            }
            Delivery::Queued => {
                entry.session.dropping = false;
                return Delivered::Queued;
            }
            Delivery::Dropped(full) => {
                bump(&self.counters.publish_dropped, 1);
                if full == QueueFull::Bytes {
                    self.counters.limit_reached(Limit::QueuedBytes);
                }
                if !entry.session.dropping {
                    entry.session.dropping = true;
                    if self.limit_log.allow(Instant::now()) {
                        let (held, key) = match full {
                            QueueFull::Messages => (
                                format!("{} messages", self.limits.max_queued_messages),
                                "max-queued-messages",
                            ),
                            QueueFull::Bytes => (
                                format!("{} bytes", self.limits.max_queued_bytes),
                                "max-queued-bytes",
                            ),
                        };
                        log::warn!(
                            "Queue of client {client} is full ({held}): dropping new messages \
                             until it drains ({key})."
                        );
                    }
                } else {
                    log::debug!("Dropped a message for client {client}: queue full.");
                }
                return Delivered::Dropped;
            }
        }
        Delivered::Sent
    }

    /// Moves queued messages into the session's inflight window and sends them.
    pub(super) fn fill_window(&mut self, key: &ClientKey) {
        let half_queue = self.half_queue();
        let Some(entry) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(id) = entry.connection else {
            return;
        };
        // Read access is checked again as messages leave the queue: the client's
        // rights may have changed while they waited (invariant 5).
        let hooks = &self.hooks;
        let check = !hooks.is_empty() && !entry.trusted;
        let owner = entry.owner.as_ref();
        let before = entry.session.footprint();
        let (ready, denied) = entry.session.fill_window(Instant::now(), |publish| {
            !check || owner.is_some_and(|owner| hooks.authorize_receive(owner, &publish.topic))
        });
        touched(&mut self.durable, key, &mut entry.session);
        let after = entry.session.footprint();
        add_footprint(&mut self.held, after);
        sub_footprint(&mut self.held, before);
        if after.queued < half_queue {
            entry.behind_since = None;
        }
        if denied > 0 {
            log::debug!("Dropped {denied} queued messages for client {key}: no read access.");
        }
        for publish in ready {
            if let Some(connection) = self.connections.get(&id) {
                observe_delivery(&self.hooks, &connection.info, &publish);
            }
            self.send(id, Packet::Publish(publish));
        }
    }
}

fn observe_delivery(hooks: &Hooks, client: &ClientInfo, publish: &Publish) {
    if !hooks.is_empty() {
        hooks.observe("on_delivered", |h| h.on_delivered(client, publish));
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::*;

    #[test]
    fn sessions_that_queue_a_message_share_one_copy_out_of_the_read_buffer() {
        use super::Compacted;
        // A message as decoded: topic and payload are slices of the read buffer.
        let buffer = Bytes::from(b"t/1hello, and the rest of a large read buffer".to_vec());
        let in_buffer = |bytes: &[u8]| buffer.as_ptr_range().contains(&bytes.as_ptr());
        let topic = TopicName::from_bytes(buffer.slice(..3)).unwrap();
        let message = Publish::new(topic, buffer.slice(3..8), QoS::AtLeastOnce, false);
        let compacted = Compacted::default();
        let first = compacted.apply(message.clone());
        let second = compacted.apply(message.clone());
        for queued in [&first, &second] {
            assert_eq!(
                (queued.topic.as_str(), &queued.payload[..]),
                ("t/1", &b"hello"[..])
            );
            assert!(!in_buffer(queued.topic.as_bytes()) && !in_buffer(&queued.payload));
        }
        // One copy for both sessions, not one each.
        assert_eq!(first.payload.as_ptr(), second.payload.as_ptr());
        assert_eq!(
            first.topic.as_bytes().as_ptr(),
            second.topic.as_bytes().as_ptr()
        );
        // A retained message is its own copy already: nothing is copied again.
        let retained = Compacted::already(&first);
        assert_eq!(
            retained.apply(message).payload.as_ptr(),
            first.payload.as_ptr()
        );
    }

    #[test]
    fn delivered_qos_is_the_lower_of_published_and_granted_mqtt_3_8_4_6() {
        let mut h = Harness::new();
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtLeastOnce);
        let publisher = h.connect("pub", true);
        sub.received();
        h.publish(&publisher, "t", "two", QoS::ExactlyOnce, false, 1);
        h.publish(&publisher, "t", "zero", QoS::AtMostOnce, false, 0);
        let got = sub.received();
        let got = publishes(&got);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].qos, got[0].packet_id),
            (QoS::AtLeastOnce, Some(pid(1)))
        );
        assert_eq!((got[1].qos, got[1].packet_id), (QoS::AtMostOnce, None));
        assert_eq!(
            publisher.received(),
            vec![
                Packet::ConnAck(ConnAck::accepted(false)),
                Packet::PubRec(PubRec::new(pid(1)))
            ]
        );
    }

    #[test]
    fn an_inbound_qos_2_repeat_before_pubrel_is_not_delivered_twice_mqtt_4_3_3_2() {
        let mut h = Harness::new();
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtMostOnce);
        let publisher = h.connect("pub", true);
        sub.received();
        publisher.received();
        h.publish(&publisher, "t", "x", QoS::ExactlyOnce, false, 9);
        h.publish(&publisher, "t", "x", QoS::ExactlyOnce, false, 9);
        h.packet(&publisher, Packet::PubRel(PubRel::new(pid(9))));
        assert_eq!(publishes(&sub.received()).len(), 1);
        assert_eq!(
            publisher.received(),
            vec![
                Packet::PubRec(PubRec::new(pid(9))),
                Packet::PubRec(PubRec::new(pid(9))),
                Packet::PubComp(PubComp::new(pid(9)))
            ]
        );
    }

    #[test]
    fn retained_messages_go_to_new_subscribers_with_retain_set_mqtt_3_3_1_6_and_8() {
        let mut h = Harness::new();
        let publisher = h.connect("pub", true);
        h.publish(&publisher, "a/1", "one", QoS::AtLeastOnce, true, 1);
        h.publish(&publisher, "a/2", "two", QoS::AtMostOnce, true, 0);
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "a/+", QoS::ExactlyOnce);
        let got = sub.received();
        assert!(
            matches!(got[1], Packet::SubAck(_)),
            "SUBACK comes before retained"
        );
        let mut got: Vec<(Vec<u8>, bool, QoS)> = publishes(&got)
            .iter()
            .map(|p| (p.payload.to_vec(), p.retain, p.qos))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (b"one".to_vec(), true, QoS::AtLeastOnce),
                (b"two".to_vec(), true, QoS::AtMostOnce)
            ]
        );
        // Live delivery to an existing subscription has RETAIN=0 [MQTT-3.3.1-9].
        h.publish(&publisher, "a/1", "", QoS::AtMostOnce, true, 0);
        let got = sub.received();
        assert!(!publishes(&got)[0].retain);
        assert_eq!(h.state.retained.len(), 1);
    }

    #[test]
    fn clients_cannot_publish_into_sys() {
        let mut h = Harness::new();
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "$SYS/#", QoS::AtMostOnce);
        let publisher = h.connect("pub", true);
        sub.received();
        h.publish(
            &publisher,
            "$SYS/broker/uptime",
            "forged",
            QoS::AtMostOnce,
            true,
            0,
        );
        assert!(sub.received().is_empty());
        assert_eq!(h.state.retained.len(), 0);
    }

    #[test]
    fn a_reader_that_stops_reading_loses_qos_0_and_then_its_connection() {
        let mut h = Harness::new();
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtMostOnce);
        let publisher = h.connect("pub", true);
        for _ in 0..OUTBOX_QOS0_SLOTS + 10 {
            h.publish(&publisher, "t", "x", QoS::AtMostOnce, false, 0);
        }
        let dropped = h
            .state
            .counters
            .publish_dropped
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(dropped >= 10, "{dropped}");
        assert!(
            h.state.connections.contains_key(&sub.id),
            "QoS 0 drops do not disconnect"
        );
        for _ in 0..OUTBOX_REPLY_RESERVE + 10 {
            h.packet(&sub, Packet::PingReq);
        }
        assert!(
            !h.state.connections.contains_key(&sub.id),
            "unread replies disconnect"
        );
    }
}
