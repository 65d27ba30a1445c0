//! CONNECT and DISCONNECT: sessions made, taken over, resumed, expired and ended.
//!
//! A session outlives its connection when the client asks for one (CleanSession=0)
//! and belongs to the user who made it (invariant 5). A takeover closes the old
//! connection first; a will is published after its session is detached.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::broker::event::{ConnectionId, NewConnection};
use crate::broker::hashing::ClientSet;
use crate::broker::hooks::{ClientInfo, DisconnectReason};
use crate::broker::session::{Inflight, Session};
use crate::broker::stats::Limit;
use crate::broker::store::{Change, StoredSession};
use crate::broker::subs::{ClientKey, SubscriptionOptions};
use crate::protocol::{
    ConnAck, ConnectReturnCode, Disconnect, Packet, Properties, ProtocolVersion, PubRel, Publish,
    QoS, Will, MAX_REMAINING_LENGTH,
};

use super::{
    add_footprint, is_sys_topic, session_op, sub_footprint, touched, ConnectedClient, RouterState,
    SessionEntry,
};

/// A user name for the log.
fn describe_user(username: Option<&str>) -> String {
    username.map_or_else(
        || "no user name".to_string(),
        |name| format!("user '{name}'"),
    )
}

impl RouterState {
    pub(super) fn connect(&mut self, new: NewConnection) {
        let NewConnection {
            id,
            connect,
            client,
            outbox,
            closer,
            gate,
            trusted,
            connack,
        } = new;
        let key = ClientKey::new(&connect.client_id);
        let now = Instant::now();
        let v5 = connect.protocol == ProtocolVersion::V5;
        // How long the session outlives this connection: MQTT 5 says so in the
        // CONNECT (absent is 0); MQTT 3.1.1's clean session 0 means "for ever".
        let expiry = if v5 {
            connect.properties().session_expiry_interval.unwrap_or(0)
        } else if connect.clean_session {
            0
        } else {
            u32::MAX
        };
        // MQTT 3.1.1's clean session is MQTT 5's Clean Start: a new session.
        let clean_start = connect.clean_session;

        // Takeover: the session's current connection is closed. Its will is published
        // as if the network had failed [MQTT-3.1.4-2], unless the same client is
        // resuming its persistent session with a persistent connection (mosquitto
        // 2.0's rule, which MQTT 5 makes explicit).
        if let Some(entry) = self.sessions.get(&key) {
            if let Some(old) = entry.connection {
                let reason = if !entry.session.clean && !clean_start && expiry > 0 {
                    DisconnectReason::SessionResumed
                } else {
                    DisconnectReason::TakenOver
                };
                self.disconnect(old, reason);
            }
        }

        // A session belongs to the user who made it (invariant 5): another user
        // with the same client identifier starts afresh and sees none of it.
        if let Some(entry) = self.sessions.get(&key) {
            if !entry.session.clean && entry.username != client.username {
                log::warn!(
                    "Client {key} connected as {}, but its stored session belongs to {}: \
                     the old session is discarded and a fresh one started.",
                    describe_user(client.username.as_deref()),
                    describe_user(entry.username.as_deref())
                );
                self.remove_session(&key);
            }
        }

        let session_present = if clean_start {
            // A clean start throws away whatever was stored [MQTT-3.1.2-6]
            // (publishing a will still waiting for its delay: its session ends).
            if self.sessions.contains_key(&key) {
                self.remove_session(&key);
            }
            if expiry > 0 && !self.has_room_for_persistent_session(&key, &outbox) {
                return;
            }
            self.insert_session(&key, expiry == 0, client.username.clone());
            false
        } else if self.sessions.contains_key(&key) {
            true
        } else {
            if expiry > 0 && !self.has_room_for_persistent_session(&key, &outbox) {
                return;
            }
            self.insert_session(&key, expiry == 0, client.username.clone());
            false
        };
        self.connects += 1;

        let mut persistent = false;
        if let Some(entry) = self.sessions.get_mut(&key) {
            entry.connection = Some(id);
            entry.owner = Some(client.clone());
            entry.trusted = trusted;
            entry.last_progress = now;
            entry.offline_since = None;
            entry.expiry = expiry;
            // The client is back before its delayed will was due: it is not
            // published [MQTT-3.1.3-9].
            entry.pending_will = None;
            // The client's Receive Maximum bounds what it is sent unacknowledged
            // [MQTT-3.3.4-9].
            let receive_maximum = connect.properties().receive_maximum.unwrap_or(u16::MAX);
            entry.session.set_max_inflight(
                self.limits
                    .max_inflight_messages
                    .min(usize::from(receive_maximum)),
            );
            persistent = !entry.session.clean;
        }
        let max_packet_size = connect
            .properties()
            .maximum_packet_size
            .map_or(usize::MAX, |size| size as usize);
        self.connections.insert(
            id,
            ConnectedClient {
                client_key: key.clone(),
                info: client.clone(),
                will: connect.will,
                outbox,
                closer,
                held_acks: VecDeque::new(),
                waiting_on: ClientSet::default(),
                gate,
                paused_for: 0,
                handled: 0,
                persistent,
                waiting: Default::default(),
                version: connect.protocol,
                max_packet_size,
                bridge: connect.bridge,
            },
        );
        // The session's record (its owner, as of this connection) is written down
        // before the CONNACK, which waits for it.
        self.record_session(&key);
        // MQTT 3.1 has no session-present flag: the byte is reserved.
        let present = session_present && connect.protocol != ProtocolVersion::V3_1;
        let mut ack = ConnAck::accepted(present);
        if v5 {
            ack.properties = self.connack_properties(connack);
            // Not even the CONNACK fits what the client accepts: it cannot be
            // served [MQTT-3.1.2-24].
            let mut bytes = Vec::new();
            let _ = Packet::ConnAck(ack.clone()).encode_for(ProtocolVersion::V5, &mut bytes);
            if bytes.len() > max_packet_size {
                self.to_close.push((
                    id,
                    DisconnectReason::protocol_violation(format!(
                        "its Maximum Packet Size ({max_packet_size}) is smaller than the \
                         CONNACK"
                    )),
                ));
                return;
            }
        }
        self.send(id, Packet::ConnAck(ack));

        if let Some(entry) = self.sessions.get_mut(&key) {
            // Messages the client may no longer read are not sent again
            // (invariant 5: read access is checked on delivery, not only on queueing).
            let hooks = &self.hooks;
            if !hooks.is_empty() && !trusted {
                let denied = session_op(&mut self.held, &mut entry.session, |session| {
                    session.drop_denied_inflight(|p| hooks.authorize_receive(&client, &p.topic))
                });
                touched(&mut self.durable, &key, &mut entry.session);
                if denied > 0 {
                    log::info!(
                        "Not sending {denied} unacknowledged messages again to client {key}: \
                         no read access any more."
                    );
                }
            }
            // Unacknowledged messages go again first, in their order [MQTT-4.4.0-1],
            // then queued ones as the window allows.
            let resend = entry.session.resend();
            for entry in resend {
                let packet = match entry {
                    Inflight::Publish(publish) => Packet::Publish(publish),
                    Inflight::PubRel(packet_id) => Packet::PubRel(PubRel::new(packet_id)),
                };
                self.send(id, packet);
            }
            self.fill_window(&key);
        }
        if !self.hooks.is_empty() {
            self.hooks
                .observe("on_connected", |h| h.on_connected(&client));
        }
    }

    /// Whether one more persistent session fits `max_persistent_sessions`; if not,
    /// the client is refused with "server unavailable" (0x88 in MQTT 5, 0x97 "quota
    /// exceeded" being for a client's own quota) and the limit counted.
    fn has_room_for_persistent_session(
        &mut self,
        key: &ClientKey,
        outbox: &crate::broker::event::Outbox,
    ) -> bool {
        if self.persistent_sessions < self.limits.max_persistent_sessions {
            return true;
        }
        self.counters.limit_reached(Limit::PersistentSessions);
        if self.limit_log.allow(Instant::now()) {
            log::warn!(
                "Client {key} refused: the broker holds {} persistent sessions \
                 (max-persistent-sessions).",
                self.persistent_sessions
            );
        }
        // The writer sends the refusal, then closes the socket as the outbox is
        // dropped by the caller; the reader's disconnect is then for an unknown
        // connection.
        let _ = outbox.try_send(Packet::ConnAck(ConnAck::refused(
            ConnectReturnCode::ServerUnavailable,
        )));
        false
    }

    /// The properties of an MQTT 5 CONNACK: what the connection's thread had to say
    /// (`from_connection`: server keep alive, assigned identifier, authentication)
    /// and what the broker offers, wherever it differs from what a client assumes
    /// when the property is absent [MQTT-3.2.2-9 .. 3.2.2-22].
    fn connack_properties(
        &self,
        from_connection: Option<Box<Properties>>,
    ) -> Option<Box<Properties>> {
        let limits = &self.limits;
        let mut properties = from_connection.unwrap_or_default();
        if limits.topic_alias_maximum > 0 {
            properties.topic_alias_maximum = Some(limits.topic_alias_maximum);
        }
        if !limits.retain_available {
            properties.retain_available = Some(0);
        }
        if limits.max_packet_size < MAX_REMAINING_LENGTH + 5 {
            properties.maximum_packet_size = Some(limits.max_packet_size as u32);
        }
        properties.receive_maximum = Some(limits.receive_maximum);
        if limits.max_qos != QoS::ExactlyOnce {
            properties.maximum_qos = Some(limits.max_qos as u8);
        }
        if !limits.wildcard_subscriptions {
            properties.wildcard_subscription_available = Some(0);
        }
        if !limits.subscription_identifiers {
            properties.subscription_identifier_available = Some(0);
        }
        if !limits.shared_subscriptions {
            properties.shared_subscription_available = Some(0);
        }
        Some(properties)
    }

    fn insert_session(&mut self, key: &ClientKey, clean: bool, username: Option<String>) {
        let session = self.new_session(clean);
        self.sessions.insert(
            key.clone(),
            SessionEntry::new(session, username, Instant::now()),
        );
        if !clean {
            self.persistent_sessions += 1;
        }
        self.maximum_sessions = self.maximum_sessions.max(self.sessions.len() as u64);
    }

    fn new_session(&self, clean: bool) -> Session {
        let session = Session::new(
            clean,
            self.limits.max_inflight_messages,
            self.limits.max_queued_messages,
        )
        .with_max_queued_bytes(self.limits.max_queued_bytes);
        // Only a persistent session is stored, and only when there is a store.
        if !clean && self.durable.is_some() {
            session.with_journal()
        } else {
            session
        }
    }

    /// Takes back a session loaded from the store. It receives messages for its
    /// subscriptions while its client is away, checked against the client that
    /// owned it, as before the restart. Its expiry counts from now.
    pub(super) fn restore_session(&mut self, stored: StoredSession) {
        let record = stored.record;
        let key = ClientKey::new(&record.client_id);
        let mut session = self.new_session(false);
        for sub in &record.subscriptions {
            let options = SubscriptionOptions {
                qos: sub.qos,
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                identifier: sub.identifier.and_then(std::num::NonZeroU32::new),
            };
            self.subscriptions.subscribe(&key, &sub.filter, options);
        }
        session.restore(stored.messages, stored.awaiting_pubrel);
        add_footprint(&mut self.held, session.footprint());
        let now = Instant::now();
        let owner = record.owner;
        let mut entry = SessionEntry::new(session, owner.username.clone(), now);
        entry.owner = Some(ClientInfo {
            client_id: record.client_id.clone(),
            username: owner.username,
            remote_addr: owner
                .remote_addr
                .unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
            listener: owner.listener,
            protocol: owner.protocol,
        });
        entry.offline_since = Some(now);
        entry.expiry = record.session_expiry_interval;
        if let Some(at) = self.expires_at(&entry) {
            self.schedule_expiry(at);
        }
        self.sessions.insert(key, entry);
        self.persistent_sessions += 1;
        self.maximum_sessions = self.maximum_sessions.max(self.sessions.len() as u64);
    }

    /// Removes a session with its subscriptions and stored copy. A will still
    /// waiting for its delay is published: its session has ended [MQTT-3.1.3-9].
    pub(super) fn remove_session(&mut self, key: &ClientKey) {
        let Some(entry) = self.sessions.remove(key) else {
            return;
        };
        self.release_publishers(key);
        self.subscriptions.remove_client(key);
        sub_footprint(&mut self.held, entry.session.footprint());
        if !entry.session.clean {
            self.persistent_sessions -= 1;
            // What the session wrote down and was not yet collected goes with it.
            if let Some(durable) = &mut self.durable {
                durable.record(Change::RemoveSession(key.to_string()));
            }
        }
        if let Some((will, _)) = entry.pending_will {
            log::debug!("Publishing the delayed will of {key}: its session ended.");
            self.publish(will);
        }
    }

    /// When the session of `entry` expires if its client stays away: its Session
    /// Expiry Interval, or `persistent_client_expiration` if sooner; `None` while
    /// it is connected or when neither applies.
    pub(super) fn expires_at(&self, entry: &SessionEntry) -> Option<Instant> {
        if entry.connection.is_some() {
            return None;
        }
        let since = entry.offline_since?;
        let own = (entry.expiry != u32::MAX).then(|| Duration::from_secs(entry.expiry.into()));
        let configured = self.limits.persistent_client_expiration;
        let after = [own, configured].into_iter().flatten().min()?;
        Some(since + after)
    }

    /// Plans a look for expired sessions and due wills at `at`, unless one is
    /// planned sooner.
    pub(super) fn schedule_expiry(&mut self, at: Instant) {
        self.expiry_check = Some(self.expiry_check.map_or(at, |check| check.min(at)));
    }

    /// A connection ended, as its reader tells: an MQTT 5 DISCONNECT may first have
    /// set a new Session Expiry Interval [MQTT-3.14.2-2] (the reader refused one
    /// from 0 to another value).
    pub(super) fn client_disconnect(
        &mut self,
        id: ConnectionId,
        reason: DisconnectReason,
        session_expiry: Option<u32>,
    ) {
        if let Some(expiry) = session_expiry {
            let key = self.connections.get(&id).map(|c| c.client_key.clone());
            if let Some(key) = key {
                if let Some(entry) = self.sessions.get_mut(&key) {
                    if entry.connection == Some(id) && entry.expiry != expiry {
                        entry.expiry = expiry;
                        self.record_session(&key);
                    }
                }
            }
        }
        self.disconnect(id, reason);
    }

    pub(super) fn disconnect(&mut self, id: ConnectionId, reason: DisconnectReason) {
        // Events of a connection already closed (after a takeover, say) are ignored.
        let Some(connection) = self.connections.remove(&id) else {
            return;
        };
        // An MQTT 5 client is told why the broker ends its connection
        // [MQTT-3.14.0-1]: the writer sends the DISCONNECT when the outbox goes with
        // `connection` at the end of this function, and closes the socket once the
        // client has (or a moment has passed). Its reader reads on meanwhile, its
        // events ignored, so that nothing the client sends is left unread.
        let told = connection.version == ProtocolVersion::V5
            && reason.reason_code().is_some_and(|code| {
                // The reason code alone, as mosquitto sends it: the log has the
                // details.
                let packet = Packet::Disconnect(Disconnect::new(code));
                connection.outbox.try_send(packet).is_ok()
            });
        if !told {
            connection.closer.close();
        }
        // A paused reader must see the closed socket, not wait at its gate.
        connection.gate.release();
        self.drained(id);
        let client_id = &connection.info.client_id;
        match &reason {
            DisconnectReason::Disconnect => log::info!("Client {client_id} disconnected."),
            DisconnectReason::ProtocolViolation { why, .. } => {
                log::warn!("Client {client_id} disconnected: protocol violation: {why}.")
            }
            DisconnectReason::SlowConsumer => {
                log::warn!("Client {client_id} disconnected: {reason}.")
            }
            other => log::info!("Client {client_id} disconnected: {other}."),
        }

        let key = connection.client_key.clone();
        let now = Instant::now();
        let mut ends = false;
        let mut delay_will_until = None;
        if let Some(entry) = self.sessions.get_mut(&key) {
            if entry.connection == Some(id) {
                entry.connection = None;
                entry.offline_since = Some(now);
                ends = entry.expiry == 0;
                // A will with a delay waits, at most until the session ends
                // [MQTT-3.1.3-9].
                let delay = connection
                    .will
                    .as_ref()
                    .and_then(|will| will.properties.as_ref())
                    .and_then(|properties| properties.will_delay_interval)
                    .unwrap_or(0)
                    .min(entry.expiry);
                if delay > 0 && !ends {
                    delay_will_until = Some(now + Duration::from_secs(delay.into()));
                }
            }
        }
        if ends {
            self.remove_session(&key);
        } else {
            if let Some(at) = self.sessions.get(&key).and_then(|e| self.expires_at(e)) {
                self.schedule_expiry(at);
            }
            self.release_publishers(&key);
        }

        // The will goes out after the session is detached, so a persistent session
        // subscribed to its own will topic gets it queued like any other message.
        if reason.publishes_will() {
            if let Some(will) = connection.will {
                if is_sys_topic(&will.topic) {
                    // `$SYS` belongs to the broker, wills included (invariant 5).
                    log::warn!(
                        "Not publishing the will of {client_id} on '{}': $SYS is the broker's.",
                        will.topic
                    );
                } else {
                    let publish = will_message(will);
                    match (delay_will_until, self.sessions.get_mut(&key)) {
                        (Some(at), Some(entry)) => {
                            log::debug!(
                                "The will of {client_id} on '{}' waits for its delay.",
                                publish.topic
                            );
                            entry.pending_will = Some((publish, at));
                            self.schedule_expiry(at);
                        }
                        _ => {
                            log::debug!(
                                "Publishing the will of {client_id} on '{}'.",
                                publish.topic
                            );
                            self.publish(publish);
                        }
                    }
                }
            }
        }
        if !self.hooks.is_empty() {
            let info = connection.info.clone();
            self.hooks
                .observe("on_disconnected", |h| h.on_disconnected(&info, &reason));
        }
    }

    pub(super) fn shutdown(&mut self) {
        let ids: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for id in ids {
            self.disconnect(id, DisconnectReason::Shutdown);
        }
        // Everything written down is committed before the router stops (invariant 7).
        self.collect_changes();
        if let Some(durable) = &mut self.durable {
            if !durable.finish() {
                log::error!(
                    "The last changes could not be committed to the store at shutdown; \
                     what they acknowledged was never acknowledged to clients."
                );
            }
        }
        self.publish_gauges();
    }
}

/// The message a will becomes: its topic, payload, QoS and RETAIN, and the will
/// properties a PUBLISH carries too (all but the Will Delay Interval).
fn will_message(will: Will) -> Publish {
    let mut publish = Publish::new(will.topic, will.payload, will.qos, will.retain);
    if let Some(mut properties) = will.properties {
        properties.will_delay_interval = None;
        if !properties.is_empty() {
            publish.properties = Some(properties);
        }
    }
    publish
}

#[cfg(test)]
mod tests {
    use super::super::harness::*;
    use crate::protocol::{ConnectReturnCode, Will};

    #[test]
    fn connect_is_answered_with_connack_and_session_present_mqtt_3_2_2() {
        let mut h = Harness::new();
        let first = h.connect("c", false);
        assert_eq!(
            first.received(),
            vec![Packet::ConnAck(ConnAck::accepted(false))]
        );
        h.disconnect(&first, DisconnectReason::Disconnect);
        let second = h.connect("c", false);
        assert_eq!(
            second.received(),
            vec![Packet::ConnAck(ConnAck::accepted(true))]
        );
        h.disconnect(&second, DisconnectReason::Disconnect);
        let clean = h.connect("c", true);
        assert_eq!(
            clean.received(),
            vec![Packet::ConnAck(ConnAck::accepted(false))]
        );
    }

    #[test]
    fn offline_persistent_sessions_queue_and_get_everything_on_return_mqtt_3_1_2_5() {
        let mut h = Harness::new();
        let sub = h.connect("sub", false);
        h.subscribe(&sub, "t", QoS::AtLeastOnce);
        h.disconnect(&sub, DisconnectReason::Disconnect);
        let publisher = h.connect("pub", true);
        for (n, payload) in ["1", "2", "3", "4"].into_iter().enumerate() {
            h.publish(
                &publisher,
                "t",
                payload,
                QoS::AtLeastOnce,
                false,
                n as u16 + 1,
            );
        }
        // The queue holds 3: the fourth is dropped and counted.
        assert_eq!(
            h.state
                .counters
                .publish_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(h.state.held.queued, 3);
        let back = h.connect("sub", false);
        let got = back.received();
        assert_eq!(got[0], Packet::ConnAck(ConnAck::accepted(true)));
        let got = publishes(&got);
        // The inflight window is 2: two now, the third after an acknowledgement.
        assert_eq!(
            got.iter().map(|p| &p.payload[..]).collect::<Vec<_>>(),
            [b"1", b"2"]
        );
        h.packet(&back, Packet::PubAck(PubAck::new(pid(1))));
        let got = back.received();
        assert_eq!(&publishes(&got)[0].payload[..], b"3");
        assert_eq!((h.state.held.queued, h.state.held.inflight), (0, 2));
    }

    #[test]
    fn unacknowledged_messages_are_resent_with_dup_after_reconnect_mqtt_4_4_0_1() {
        let mut h = Harness::new();
        let sub = h.connect("sub", false);
        h.subscribe(&sub, "t", QoS::ExactlyOnce);
        let publisher = h.connect("pub", true);
        h.publish(&publisher, "t", "a", QoS::ExactlyOnce, false, 1);
        h.publish(&publisher, "t", "b", QoS::AtLeastOnce, false, 2);
        sub.received();
        h.packet(&sub, Packet::PubRec(PubRec::new(pid(1))));
        assert_eq!(sub.received(), vec![Packet::PubRel(PubRel::new(pid(1)))]);
        h.disconnect(&sub, DisconnectReason::ConnectionLost("test".into()));
        assert!(sub.is_closed());
        let back = h.connect("sub", false);
        let got = back.received();
        assert_eq!(got[1], Packet::PubRel(PubRel::new(pid(1))));
        match &got[2] {
            Packet::Publish(p) => assert!(p.dup && p.packet_id == Some(pid(2))),
            other => panic!("expected PUBLISH, got {other}"),
        }
    }

    #[test]
    fn takeover_closes_the_old_connection_and_publishes_its_will_mqtt_3_1_4_2() {
        let mut h = Harness::new();
        let watcher = h.connect("watcher", true);
        h.subscribe(&watcher, "will", QoS::AtMostOnce);
        watcher.received();
        let mut connect = Connect::new("x");
        connect.will = Some(Will {
            topic: TopicName::new("will").unwrap(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: None,
        });
        let old = h.connect_with(connect);
        let new = h.connect("x", true);
        assert!(old.is_closed());
        assert_eq!(
            new.received(),
            vec![Packet::ConnAck(ConnAck::accepted(false))]
        );
        assert_eq!(&publishes(&watcher.received())[0].payload[..], b"gone");
        // A late event of the old connection changes nothing.
        h.disconnect(&old, DisconnectReason::ConnectionLost("late".into()));
        assert!(!new.is_closed());
    }

    #[test]
    fn a_will_is_discarded_on_disconnect_mqtt_3_1_2_10() {
        let mut h = Harness::new();
        let watcher = h.connect("watcher", true);
        h.subscribe(&watcher, "#", QoS::AtMostOnce);
        watcher.received();
        let mut connect = Connect::new("x");
        connect.will = Some(Will {
            topic: TopicName::new("will").unwrap(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: None,
        });
        let client = h.connect_with(connect);
        h.disconnect(&client, DisconnectReason::Disconnect);
        assert!(watcher.received().is_empty());
        assert_eq!(h.state.retained.len(), 0);
    }

    #[test]
    fn a_will_on_sys_is_not_published() {
        let mut h = Harness::new();
        let watcher = h.connect("watcher", true);
        h.subscribe(&watcher, "$SYS/#", QoS::AtMostOnce);
        watcher.received();
        let mut connect = Connect::new("spoofer");
        connect.will = Some(Will {
            topic: TopicName::new("$SYS/broker/version").unwrap(),
            payload: Bytes::from_static(b"spoofed"),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: None,
        });
        let spoofer = h.connect_with(connect);
        h.disconnect(&spoofer, DisconnectReason::ConnectionLost("gone".into()));
        assert!(publishes(&watcher.received()).is_empty());
        assert_eq!(h.state.retained.len(), 0);
    }

    fn connect_as(h: &mut Harness, client_id: &str, user: &str) -> Client {
        let mut connect = Connect::new(client_id);
        connect.clean_session = false;
        connect.username = Some(user.into());
        h.connect_with(connect)
    }

    #[test]
    fn a_session_resumed_under_another_user_name_starts_afresh() {
        let mut h = Harness::new();
        let alice = connect_as(&mut h, "shared", "alice");
        h.subscribe(&alice, "alice/#", QoS::AtLeastOnce);
        h.disconnect(&alice, DisconnectReason::Disconnect);
        let publisher = h.connect("pub", true);
        h.publish(&publisher, "alice/secret", "x", QoS::AtLeastOnce, false, 1);

        let mallory = connect_as(&mut h, "shared", "mallory");
        assert_eq!(
            mallory.received(),
            vec![Packet::ConnAck(ConnAck::accepted(false))]
        );
        assert_eq!(h.state.subscriptions.len(), 0);
        // Alice's own reconnection finds mallory's session, not hers: also fresh.
        h.disconnect(&mallory, DisconnectReason::Disconnect);
        let alice = connect_as(&mut h, "shared", "alice");
        assert_eq!(
            alice.received(),
            vec![Packet::ConnAck(ConnAck::accepted(false))]
        );
    }

    #[test]
    fn persistent_sessions_beyond_the_cap_are_refused_with_server_unavailable() {
        let mut h = Harness::with_limits(Limits {
            max_persistent_sessions: 1,
            ..limits()
        });
        let first = h.connect("p1", false);
        first.received();
        let second = h.connect("p2", false);
        assert_eq!(
            second.received(),
            vec![Packet::ConnAck(ConnAck::refused(
                ConnectReturnCode::ServerUnavailable
            ))]
        );
        assert!(second.is_closed());
        assert_eq!(limit_count(&h, Limit::PersistentSessions), 1);
        // Clean sessions do not count, and the first client may come back.
        let clean = h.connect("c", true);
        assert_eq!(
            clean.received(),
            vec![Packet::ConnAck(ConnAck::accepted(false))]
        );
        h.disconnect(&first, DisconnectReason::Disconnect);
        let again = h.connect("p1", false);
        assert_eq!(
            again.received(),
            vec![Packet::ConnAck(ConnAck::accepted(true))]
        );
    }

    #[test]
    fn a_persistent_session_whose_client_stays_away_expires() {
        let mut h = Harness::with_limits(Limits {
            persistent_client_expiration: Some(Duration::from_secs(60)),
            ..limits()
        });
        let client = h.connect("p", false);
        h.subscribe(&client, "t", QoS::AtLeastOnce);
        h.disconnect(&client, DisconnectReason::Disconnect);
        let deadline = h.state.deadline().expect("an expiry check is planned");
        assert!(deadline > Instant::now() + Duration::from_secs(30));
        h.state.tick(Instant::now() + Duration::from_secs(61));
        assert!(h.state.sessions.is_empty());
        assert_eq!(h.state.subscriptions.len(), 0);
        assert_eq!(h.state.deadline(), None, "nothing left to expire");
        assert_eq!(limit_count(&h, Limit::PersistentClientExpiration), 1);
        let back = h.connect("p", false);
        assert_eq!(
            back.received(),
            vec![Packet::ConnAck(ConnAck::accepted(false))]
        );
    }
}
