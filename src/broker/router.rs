//! The router: one thread that owns all broker state.
//!
//! Sessions (connected and offline), the subscription tree, retained messages and the
//! `$SYS` counters live in one [`RouterState`], touched only by the router thread, so
//! none of it needs a lock. Connection threads reach it through [`Event`]s in a
//! bounded inbox; it answers by `try_send`ing packets into each connection's bounded
//! outbox, and never waits on one (DESIGN invariant 1):
//!
//! - a QoS 0 message for a connection whose outbox is full is dropped and counted;
//! - a QoS 1/2 message waits in its session (inflight window, then queue) and moves on
//!   as acknowledgements arrive; a session whose queue is full drops and counts;
//! - a reply (PUBACK, SUBACK, ...) that does not fit means the client stopped reading:
//!   that connection is closed [MQTT-4.8.0-2].
//!
//! A publisher is paced by its subscribers, as MQTT allows: while a message of its
//! has gone to a session that is behind (half its queue used) yet still
//! acknowledging, its PUBACK or PUBREC is held back. As that session's queue drains
//! below half, held acknowledgements go out one per freed slot, in turn across the
//! waiting publishers. A client that respects its own inflight window then publishes
//! no faster than its slowest working subscriber reads, and nothing is dropped
//! unless the publishers' windows together exceed the other half of the queue. A
//! session that stops acknowledging for [`STALL_TIMEOUT`] no longer holds anyone
//! back: its queue fills and drops, and the others go on.
//!
//! QoS 0 has no acknowledgement to hold back, so the router pauses the publisher's
//! reader instead: a QoS 0 message that finds a subscriber's outbox *crowded* (see
//! [`OUTBOX_CROWDED_SLOTS`](super::event::OUTBOX_CROWDED_SLOTS)) closes its
//! publisher's [`ReadGate`], and the router asks that outbox to report when it has
//! drained ([`Event::Drained`]), which opens the gates again. A reader has at most
//! [`READER_QUEUE_LIMIT`](super::event::READER_QUEUE_LIMIT) messages in the inbox,
//! so what paused publishers still have on the way fits in the room above the
//! crowded mark. A connection never pauses itself, and one that does not drain
//! within [`STALL_TIMEOUT`] lets its publishers go and pauses nobody until it does.
//!
//! The thread blocks for one event, then handles whatever else is already waiting
//! before it publishes its statistics: under load it works in batches, and when idle
//! it sleeps until the next event or `$SYS` tick.
//!
//! `RouterState::handle` is plain code over plain data: the tests at the bottom drive
//! it with events and read the outboxes, with no thread and no socket.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::event::{
    Ack, Closer, ConnectionId, Event, NewConnection, Outbox, Qos0Room, ReadGate, SendFailure,
    HANDLED_REPORT_EVERY,
};
use super::hooks::{ClientInfo, DisconnectReason, Hooks};
use super::log_limit::LogLimit;
use super::retain::{ReplayCursor, RetainedMessages};
use super::session::{Delivery, Footprint, Inflight, QueueFull, Session};
use super::stats::{bump, Counters, Gauges, Limit};
use super::storage::{Storage, StorageError, StoredInflight, StoredSession};
use super::subs::{ClientKey, SubscriptionTree};
use super::sys::{SysExtra, SysTopics};
use crate::config::{Limits, SysConfig};
use crate::protocol::{
    ConnAck, ConnectReturnCode, Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, SubAck, Subscribe, SubscribeReturnCode, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, Will,
};

/// How long a session may go without acknowledging anything before it stops
/// pacing its publishers (see the module documentation).
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a session may hold its publishers back, however steadily it
/// acknowledges. One that stays behind longer (a subscriber that acknowledges once a
/// second, say) is given up on: it paces nobody until its queue is back below half,
/// and what does not fit its queue meanwhile is dropped and counted.
pub(crate) const PACING_CEILING: Duration = Duration::from_secs(5);

/// Acknowledgements held back for one publisher at most. A client that ignores its
/// own inflight window could otherwise grow this list without bound; beyond it,
/// the oldest held acknowledgement goes out.
const MAX_HELD_ACKS: usize = 1024;

/// Nodes of the retained-message tree one turn of a retained replay may visit.
/// A SUBSCRIBE matching more is served this much at a time, between batches of
/// other clients' events, so that nobody waits for one subscriber's replay.
const REPLAY_BUDGET: usize = 2048;

/// What became of one message for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
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

/// The router's view of a connected client.
struct Connection {
    client_key: ClientKey,
    info: ClientInfo,
    will: Option<Will>,
    outbox: Outbox,
    closer: Closer,
    /// PUBACK and PUBREC packets held back to pace this publisher, in order.
    held_acks: VecDeque<Packet>,
    /// The sessions those acknowledgements wait for.
    waiting_on: HashSet<ClientKey>,
    /// Pauses this client's reader.
    gate: Arc<ReadGate>,
    /// How many crowded outboxes this client's reader is paused for.
    paused_for: usize,
    /// PUBLISH packets of this client handled so far, reported to its reader.
    handled: u64,
}

/// A connection whose outbox is crowded with QoS 0 messages, and the publishers
/// paused until it drains.
struct Crowding {
    paused: HashSet<ConnectionId>,
    /// When the connection counts as stalled if it has not drained by then.
    deadline: Instant,
}

/// Where a message went, for pacing its publisher.
#[derive(Default)]
struct Routed {
    /// Sessions it was queued for that are behind and still acknowledging.
    behind: Vec<ClientKey>,
    /// Connections whose outboxes it crowds (QoS 0).
    crowded: Vec<ConnectionId>,
}

/// A retained replay too large for one turn, to be resumed between other work.
struct Replay {
    client: ClientKey,
    filter: TopicFilter,
    qos: QoS,
    /// Where the last slice stopped; `None` before the first.
    cursor: Option<ReplayCursor>,
}

/// A session and the connection currently attached to it, if any.
struct SessionEntry {
    session: Session,
    connection: Option<ConnectionId>,
    /// The client the session last belonged to, for read checks while it is
    /// offline; `None` for a session restored from storage and not yet reclaimed.
    owner: Option<ClientInfo>,
    /// The user name of the client that made the session: another user with the
    /// same client identifier gets a fresh session (invariant 5).
    username: Option<String>,
    /// The session of an inline client of the embedding program: no read checks.
    trusted: bool,
    /// Since when a persistent session's client has been away.
    offline_since: Option<Instant>,
    /// Since when the session's queue has been at least half full.
    behind_since: Option<Instant>,
    /// Limits already logged for this client, one bit per [`Limit`], so that each
    /// is logged once per client.
    limits_logged: u32,
    /// When the client last showed it is working: it acknowledged a message,
    /// connected, or was sent one with nothing else unacknowledged.
    last_progress: Instant,
}

impl SessionEntry {
    fn new(session: Session, username: Option<String>, now: Instant) -> SessionEntry {
        SessionEntry {
            session,
            connection: None,
            owner: None,
            username,
            trusted: false,
            offline_since: None,
            behind_since: None,
            limits_logged: 0,
            last_progress: now,
        }
    }

    /// Whether `limit` is reached for this client for the first time (to log it
    /// once per client).
    fn first_time(&mut self, limit: Limit) -> bool {
        let bit = 1u32 << (limit as u32);
        let first = self.limits_logged & bit == 0;
        self.limits_logged |= bit;
        first
    }
}

/// A user name for the log.
fn describe_user(username: Option<&str>) -> String {
    username.map_or_else(
        || "no user name".to_string(),
        |name| format!("user '{name}'"),
    )
}

/// All broker state, and the rules that change it.
pub(crate) struct RouterState {
    sessions: HashMap<ClientKey, SessionEntry>,
    connections: HashMap<ConnectionId, Connection>,
    subscriptions: SubscriptionTree,
    retained: RetainedMessages,
    storage: Box<dyn Storage>,
    hooks: Hooks,
    limits: Limits,
    counters: Arc<Counters>,
    /// Sum of every session's footprint, kept up to date as sessions change.
    held: Footprint,
    maximum_sessions: u64,
    connects: u64,
    sys: Option<SysTopics>,
    started: Instant,
    /// Connections to close once the current event is handled (closing one can
    /// publish its will, which must not happen in the middle of another delivery).
    to_close: Vec<(ConnectionId, DisconnectReason)>,
    /// Sessions that are behind, with the publishers whose acknowledgements wait
    /// for them.
    behind: HashMap<ClientKey, VecDeque<ConnectionId>>,
    /// Connections with crowded outboxes, and the publishers paused for them.
    crowded: HashMap<ConnectionId, Crowding>,
    /// The subscribers of the message being routed (kept to reuse its memory).
    matched: Vec<(ClientKey, QoS)>,
    /// Connections that did not drain in time: they pause nobody until they do.
    stalled: HashSet<ConnectionId>,
    /// When to look for sessions in `behind` that stopped acknowledging, and for
    /// crowded connections that stopped draining.
    stall_check: Option<Instant>,
    /// [`STALL_TIMEOUT`], except in tests.
    stall_timeout: Duration,
    /// [`PACING_CEILING`], except in tests.
    pacing_ceiling: Duration,
    /// Persistent (clean session 0) sessions held, for `max_persistent_sessions`.
    persistent_sessions: usize,
    /// When to look for persistent sessions past `persistent_client_expiration`.
    expiry_check: Option<Instant>,
    /// Retained replays waiting for their next turn, in order.
    replays: VecDeque<Replay>,
    /// Log lines about denied packets, rate-limited.
    denied_log: LogLimit,
    /// Log lines about dropped messages and limits reached, rate-limited.
    limit_log: LogLimit,
}

impl RouterState {
    /// Loads the stored retained messages and persistent sessions.
    pub(crate) fn new(
        limits: Limits,
        sys: &SysConfig,
        hooks: Hooks,
        counters: Arc<Counters>,
        mut storage: Box<dyn Storage>,
    ) -> Result<RouterState, StorageError> {
        let now = Instant::now();
        let retained_messages = storage.load_retained()?;
        let stored_sessions = storage.load_sessions()?;
        let mut state = RouterState {
            sessions: HashMap::new(),
            connections: HashMap::new(),
            subscriptions: SubscriptionTree::default(),
            retained: RetainedMessages::default(),
            storage,
            hooks,
            limits,
            counters,
            held: Footprint::default(),
            maximum_sessions: 0,
            connects: 0,
            sys: SysTopics::new(sys.interval, now),
            started: now,
            to_close: Vec::new(),
            behind: HashMap::new(),
            crowded: HashMap::new(),
            matched: Vec::new(),
            stalled: HashSet::new(),
            stall_check: None,
            stall_timeout: STALL_TIMEOUT,
            pacing_ceiling: PACING_CEILING,
            persistent_sessions: 0,
            expiry_check: None,
            replays: VecDeque::new(),
            denied_log: LogLimit::new("denied packets"),
            limit_log: LogLimit::new("limits reached and messages dropped"),
        };
        for message in retained_messages {
            state.retained.apply(&message);
        }
        for stored in stored_sessions {
            state.restore_session(stored);
        }
        if !state.sessions.is_empty() || state.retained.len() > 0 {
            log::info!(
                "Loaded {} persistent sessions and {} retained messages.",
                state.sessions.len(),
                state.retained.len()
            );
        }
        state.publish_gauges();
        Ok(state)
    }

    fn restore_session(&mut self, stored: StoredSession) {
        let key: ClientKey = Arc::from(stored.client_id.as_str());
        let mut session = self.new_session(false);
        for (filter, qos) in stored.subscriptions {
            self.subscriptions.subscribe(&key, &filter, qos);
            session.subscriptions.insert(filter, qos);
        }
        let inflight = stored
            .inflight
            .into_iter()
            .map(|entry| match entry {
                StoredInflight::Publish(publish) => Inflight::Publish(publish),
                StoredInflight::PubRel(id) => Inflight::PubRel(id),
            })
            .collect();
        session.restore(inflight, stored.queued, stored.awaiting_pubrel);
        add_footprint(&mut self.held, session.footprint());
        let now = Instant::now();
        let mut entry = SessionEntry::new(session, stored.username, now);
        entry.offline_since = Some(now);
        self.sessions.insert(key, entry);
        self.persistent_sessions += 1;
        self.schedule_expiry(now);
    }

    fn new_session(&self, clean: bool) -> Session {
        Session::new(
            clean,
            self.limits.max_inflight_messages,
            self.limits.max_queued_messages,
        )
        .with_max_queued_bytes(self.limits.max_queued_bytes)
    }

    /// When the router must wake up even without events (the next `$SYS` tick).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if !self.replays.is_empty() {
            // A replay is under way: come back as soon as the inbox is served.
            return Some(Instant::now());
        }
        let sys = self.sys.as_ref().map(SysTopics::deadline);
        [sys, self.stall_check, self.expiry_check]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles one event. Returns `false` for [`Event::Shutdown`].
    pub(crate) fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Connect(new) => self.connect(*new),
            Event::Publish {
                connection,
                publish,
                authorized,
            } => self.client_publish(connection, publish, authorized),
            Event::Subscribe {
                connection,
                subscribe,
                authorized,
            } => self.subscribe(connection, subscribe, authorized),
            Event::Unsubscribe {
                connection,
                unsubscribe,
            } => self.unsubscribe(connection, unsubscribe),
            Event::Ack { connection, ack } => self.ack(connection, ack),
            Event::PingReq { connection } => self.send(connection, Packet::PingResp),
            Event::Disconnect { connection, reason } => self.disconnect(connection, reason),
            Event::Drained { connection } => {
                self.stalled.remove(&connection);
                self.resume_publishers(connection);
            }
            Event::InlinePublish(publish) => {
                // Nobody to pace: the embedding program is blocked on the inbox at most.
                let _ = self.publish(publish);
            }
            Event::Shutdown => {
                self.shutdown();
                return false;
            }
        }
        while let Some((connection, reason)) = self.to_close.pop() {
            self.disconnect(connection, reason);
        }
        true
    }

    // --- CONNECT and DISCONNECT ------------------------------------------------

    fn connect(&mut self, new: NewConnection) {
        let NewConnection {
            id,
            connect,
            client,
            outbox,
            closer,
            gate,
            trusted,
        } = new;
        let key: ClientKey = Arc::from(connect.client_id.as_str());
        let now = Instant::now();

        // Takeover: the session's current connection is closed. Its will is published
        // as if the network had failed [MQTT-3.1.4-2], unless the same client is
        // resuming its persistent session with a persistent connection (mosquitto
        // 2.0's rule, which MQTT 5 makes explicit).
        if let Some(entry) = self.sessions.get(&key) {
            if let Some(old) = entry.connection {
                let reason = if !entry.session.clean && !connect.clean_session {
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

        let session_present = if connect.clean_session {
            // A clean session throws away whatever was stored [MQTT-3.1.2-6].
            if self.sessions.contains_key(&key) {
                self.remove_session(&key);
            }
            self.insert_session(&key, true, client.username.clone());
            false
        } else if self.sessions.contains_key(&key) {
            true
        } else if self.persistent_sessions >= self.limits.max_persistent_sessions {
            self.counters.limit_reached(Limit::PersistentSessions);
            if self.limit_log.allow(now) {
                log::warn!(
                    "Client {key} refused: the broker holds {} persistent sessions \
                     (max-persistent-sessions).",
                    self.persistent_sessions
                );
            }
            // The writer sends the refusal, then closes the socket as the outbox is
            // dropped here; the reader's disconnect is then for an unknown connection.
            let _ = outbox.try_send(Packet::ConnAck(ConnAck::refused(
                ConnectReturnCode::ServerUnavailable,
            )));
            return;
        } else {
            self.insert_session(&key, false, client.username.clone());
            false
        };
        self.connects += 1;

        self.connections.insert(
            id,
            Connection {
                client_key: key.clone(),
                info: client.clone(),
                will: connect.will,
                outbox,
                closer,
                held_acks: VecDeque::new(),
                waiting_on: HashSet::new(),
                gate,
                paused_for: 0,
                handled: 0,
            },
        );
        // MQTT 3.1 has no session-present flag: the byte is reserved.
        let present = session_present && connect.protocol == ProtocolVersion::V3_1_1;
        self.send(id, Packet::ConnAck(ConnAck::accepted(present)));

        if let Some(entry) = self.sessions.get_mut(&key) {
            entry.connection = Some(id);
            entry.owner = Some(client.clone());
            entry.trusted = trusted;
            entry.last_progress = now;
            entry.offline_since = None;
            // Messages the client may no longer read are not sent again
            // (invariant 5: read access is checked on delivery, not only on queueing).
            let hooks = &self.hooks;
            if !hooks.is_empty() && !trusted {
                let denied = session_op(&mut self.held, &mut entry.session, |session| {
                    session.drop_denied_inflight(|p| hooks.authorize_receive(&client, &p.topic))
                });
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

    /// Removes a session with its subscriptions and stored copy.
    fn remove_session(&mut self, key: &ClientKey) {
        let Some(entry) = self.sessions.remove(key) else {
            return;
        };
        self.release_publishers(key);
        for filter in entry.session.subscriptions.keys() {
            self.subscriptions.unsubscribe(key, filter);
        }
        sub_footprint(&mut self.held, entry.session.footprint());
        if !entry.session.clean {
            self.persistent_sessions -= 1;
            if let Err(error) = self.storage.remove_session(key) {
                log::error!("Cannot remove the stored session of {key}: {error}.");
            }
        }
    }

    /// Plans the next look for expired sessions, if sessions expire at all.
    fn schedule_expiry(&mut self, from: Instant) {
        if let Some(expiry) = self.limits.persistent_client_expiration {
            let at = from + expiry;
            self.expiry_check = Some(self.expiry_check.map_or(at, |check| check.min(at)));
        }
    }

    /// Removes the persistent sessions whose client has been away longer than
    /// `persistent_client_expiration`, as mosquitto's option of that name does.
    fn expire_sessions(&mut self, now: Instant) {
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

    fn disconnect(&mut self, id: ConnectionId, reason: DisconnectReason) {
        // Events of a connection already closed (after a takeover, say) are ignored.
        let Some(connection) = self.connections.remove(&id) else {
            return;
        };
        connection.closer.close();
        // A paused reader must see the closed socket, not wait at its gate.
        connection.gate.release();
        self.stalled.remove(&id);
        self.resume_publishers(id);
        let client_id = &connection.info.client_id;
        match &reason {
            DisconnectReason::Disconnect => log::info!("Client {client_id} disconnected."),
            DisconnectReason::ProtocolViolation(why) => {
                log::warn!("Client {client_id} disconnected: protocol violation: {why}.")
            }
            DisconnectReason::SlowConsumer => {
                log::warn!("Client {client_id} disconnected: {reason}.")
            }
            other => log::info!("Client {client_id} disconnected: {other}."),
        }

        let key = connection.client_key.clone();
        let mut clean = false;
        let now = Instant::now();
        let mut detached = false;
        if let Some(entry) = self.sessions.get_mut(&key) {
            if entry.connection == Some(id) {
                entry.connection = None;
                entry.offline_since = Some(now);
                clean = entry.session.clean;
                detached = true;
            }
        }
        if clean {
            self.remove_session(&key);
        } else {
            if detached {
                self.schedule_expiry(now);
            }
            self.release_publishers(&key);
            self.save_session(&key);
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
                    let publish = Publish::new(will.topic, will.payload, will.qos, will.retain);
                    log::debug!("Publishing the will of {client_id} on '{}'.", publish.topic);
                    self.publish(publish);
                }
            }
        }
        if !self.hooks.is_empty() {
            let info = connection.info.clone();
            self.hooks
                .observe("on_disconnected", |h| h.on_disconnected(&info, &reason));
        }
    }

    fn shutdown(&mut self) {
        let ids: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for id in ids {
            self.disconnect(id, DisconnectReason::Shutdown);
        }
        // Offline sessions may have queued messages since they were last saved.
        let keys: Vec<ClientKey> = self.sessions.keys().cloned().collect();
        for key in keys {
            self.save_session(&key);
        }
        self.flush_storage();
        self.publish_gauges();
    }

    // --- PUBLISH in ---------------------------------------------------------------

    fn client_publish(&mut self, id: ConnectionId, publish: Publish, authorized: bool) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        connection.handled += 1;
        if connection.handled % HANDLED_REPORT_EVERY == 0 {
            connection.gate.handled(connection.handled);
        }
        let key = connection.client_key.clone();
        // Answer per QoS [MQTT-3.3.4-1]. A QoS 2 message whose packet identifier is
        // still held (no PUBREL yet) is a re-delivery: answered, not routed again
        // [MQTT-4.3.3-2].
        let (route, ack) = match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => (true, None),
            (QoS::AtLeastOnce, Some(packet_id)) => {
                (true, Some(Packet::PubAck(PubAck::new(packet_id))))
            }
            (QoS::ExactlyOnce, Some(packet_id)) => {
                let new = self
                    .sessions
                    .get_mut(&key)
                    .is_some_and(|entry| entry.session.receive_qos2(packet_id));
                // The PUBREC goes before any copy of the message, the publisher's
                // own included, as mosquitto (which routes only on PUBREL) does: a
                // client subscribed to its own topic sees PUBREC first. Pacing
                // holds back the PUBCOMP instead (see `pubrel`).
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
            Some(ack) => self.acknowledge(id, ack, routed.behind),
            None if !routed.behind.is_empty() => {
                // QoS 2: remembered until the PUBREL, whose PUBCOMP they may hold.
                if let Some(connection) = self.connections.get_mut(&id) {
                    connection.waiting_on.extend(routed.behind);
                }
            }
            None => {}
        }
    }

    /// Releases an inbound QoS 2 packet identifier and answers PUBCOMP, even for an
    /// identifier not held (a PUBREL repeated after a lost PUBCOMP) [MQTT-4.3.3-2].
    /// While a session the publisher's messages went to is behind, the PUBCOMP is
    /// held back like a PUBACK: that is what paces a QoS 2 publisher.
    fn pubrel(&mut self, id: ConnectionId, key: &ClientKey, packet_id: PacketId) {
        if let Some(entry) = self.sessions.get_mut(key) {
            entry.session.pubrel(packet_id);
        }
        let now = Instant::now();
        let behind: Vec<ClientKey> = self
            .connections
            .get(&id)
            .map(|connection| {
                connection
                    .waiting_on
                    .iter()
                    .filter(|session| self.is_behind(session, now))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(connection) = self.connections.get_mut(&id) {
            if connection.held_acks.is_empty() {
                // Sessions no longer behind are forgotten.
                connection
                    .waiting_on
                    .retain(|session| behind.contains(session));
            }
        }
        self.acknowledge(id, Packet::PubComp(PubComp::new(packet_id)), behind);
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
        if is_sys_topic(&publish.topic) {
            // `$SYS` belongs to the broker: clients cannot overwrite it.
            log::debug!(
                "Dropped PUBLISH from {} to '{}': $SYS is the broker's.",
                connection.info.client_id,
                publish.topic
            );
            return Routed::default();
        }
        if !self.hooks.is_empty() {
            let info = connection.info.clone();
            self.hooks
                .observe("on_published", |h| h.on_published(&info, &publish));
        }
        self.publish(publish)
    }

    /// Sends a publisher its PUBACK or PUBREC, or holds it back while sessions its
    /// message went to are behind. Held acknowledgements keep their order: once one
    /// is held, the following ones wait behind it.
    fn acknowledge(&mut self, id: ConnectionId, ack: Packet, behind: Vec<ClientKey>) {
        let now = Instant::now();
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        if behind.is_empty() && connection.held_acks.is_empty() {
            self.send(id, ack);
            return;
        }
        connection.held_acks.push_back(ack);
        let overflow = (connection.held_acks.len() > MAX_HELD_ACKS)
            .then(|| connection.held_acks.pop_front())
            .flatten();
        connection.waiting_on.extend(behind.iter().cloned());
        let waiting_on: Vec<ClientKey> = connection.waiting_on.iter().cloned().collect();
        for key in behind {
            let (last_progress, behind_since) =
                self.sessions.get(&key).map_or((now, None), |entry| {
                    (entry.last_progress, entry.behind_since)
                });
            let waiting = self.behind.entry(key).or_default();
            if !waiting.contains(&id) {
                waiting.push_back(id);
            }
            let stall = last_progress + self.stall_timeout;
            let check = behind_since.map_or(stall, |since| stall.min(since + self.pacing_ceiling));
            self.stall_check = Some(self.stall_check.map_or(check, |c| c.min(check)));
        }
        if let Some(oldest) = overflow {
            self.send(id, oldest);
        }
        if waiting_on.is_empty() {
            self.release_acks(id);
        }
        // A session it waits for may have room already: it drained while this
        // publisher's earlier acknowledgements were held.
        for key in waiting_on {
            self.check_behind(&key, now);
        }
    }

    /// Half the queue: the mark past which a session holds its publishers back.
    fn half_queue(&self) -> usize {
        (self.limits.max_queued_messages / 2).max(1)
    }

    /// Whether session `key` holds publishers back now: connected, acknowledging,
    /// with at least half its queue used, and not behind for longer than the
    /// pacing ceiling.
    fn is_behind(&self, key: &ClientKey, now: Instant) -> bool {
        self.sessions.get(key).is_some_and(|entry| {
            self.is_working(entry, now) && entry.session.footprint().queued >= self.half_queue()
        })
    }

    /// Whether a session may hold publishers back at all: its client is connected,
    /// acknowledged something within the stall timeout, and has not been behind
    /// for longer than the pacing ceiling.
    fn is_working(&self, entry: &SessionEntry, now: Instant) -> bool {
        entry.connection.is_some()
            && now.saturating_duration_since(entry.last_progress) < self.stall_timeout
            && entry
                .behind_since
                .is_none_or(|since| now.saturating_duration_since(since) < self.pacing_ceiling)
    }

    /// Session `key` no longer holds anyone back (it stopped acknowledging, went
    /// offline or is gone): publishers that waited only for it get all their held
    /// acknowledgements.
    fn release_publishers(&mut self, key: &ClientKey) {
        let Some(waiting) = self.behind.remove(key) else {
            return;
        };
        for id in waiting {
            let Some(connection) = self.connections.get_mut(&id) else {
                continue;
            };
            connection.waiting_on.remove(key);
            if connection.waiting_on.is_empty() {
                self.release_acks(id);
            }
        }
    }

    fn release_acks(&mut self, id: ConnectionId) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        connection.waiting_on.clear();
        let held = std::mem::take(&mut connection.held_acks);
        for ack in held {
            self.send(id, ack);
        }
    }

    /// Lets publishers waiting for `key` go on: one held acknowledgement per queue
    /// slot below half, in turn across them, skipping those another session still
    /// holds back; all of them if `key` stopped acknowledging or is gone.
    fn check_behind(&mut self, key: &ClientKey, now: Instant) {
        let working = self
            .sessions
            .get(key)
            .is_some_and(|entry| self.is_working(entry, now));
        if !working {
            self.give_up_pacing(key, now);
            self.release_publishers(key);
            return;
        }
        let queued = self
            .sessions
            .get(key)
            .map_or(0, |entry| entry.session.footprint().queued);
        let mut budget = self.half_queue().saturating_sub(queued);
        let mut turns = self.behind.get(key).map_or(0, VecDeque::len);
        while budget > 0 && turns > 0 {
            turns -= 1;
            let Some(id) = self.behind.get_mut(key).and_then(VecDeque::pop_front) else {
                break;
            };
            let Some(connection) = self.connections.get(&id) else {
                continue;
            };
            if connection.held_acks.is_empty() {
                continue;
            }
            let held_elsewhere = connection
                .waiting_on
                .iter()
                .any(|other| other != key && self.is_behind(other, now));
            if held_elsewhere {
                if let Some(waiting) = self.behind.get_mut(key) {
                    waiting.push_back(id);
                }
                continue;
            }
            let Some(connection) = self.connections.get_mut(&id) else {
                continue;
            };
            let Some(ack) = connection.held_acks.pop_front() else {
                continue;
            };
            if connection.held_acks.is_empty() {
                connection.waiting_on.clear();
            } else if let Some(waiting) = self.behind.get_mut(key) {
                waiting.push_back(id);
                turns += 1;
            }
            self.send(id, ack);
            budget -= 1;
        }
        if self.behind.get(key).is_some_and(VecDeque::is_empty) {
            self.behind.remove(key);
        }
    }

    /// Logs and counts, once per episode, a connected session that has been behind
    /// for longer than the pacing ceiling and no longer holds its publishers back.
    fn give_up_pacing(&mut self, key: &ClientKey, now: Instant) {
        let ceiling = self.pacing_ceiling;
        let Some(entry) = self.sessions.get_mut(key) else {
            return;
        };
        let over_ceiling = entry.connection.is_some()
            && entry
                .behind_since
                .is_some_and(|since| now.saturating_duration_since(since) >= ceiling);
        if over_ceiling && self.behind.contains_key(key) {
            self.counters.limit_reached(Limit::SlowSubscriber);
            if entry.first_time(Limit::SlowSubscriber) && self.limit_log.allow(now) {
                log::warn!(
                    "Client {key} has been behind for {ceiling:?}: its publishers go on \
                     without it, and what does not fit its queue is dropped."
                );
            }
        }
    }

    /// Pauses the reader of `publisher`, whose QoS 0 message went into the crowded
    /// outboxes of `crowded`, until they have drained. A connection's own messages
    /// never pause it (its reader and writer would wait for each other), and a
    /// connection that stalled pauses nobody.
    fn pause_publisher(&mut self, publisher: ConnectionId, crowded: Vec<ConnectionId>) {
        let now = Instant::now();
        for subscriber in crowded {
            if subscriber == publisher || self.stalled.contains(&subscriber) {
                continue;
            }
            if !self.crowded.contains_key(&subscriber) {
                let watching = self
                    .connections
                    .get(&subscriber)
                    .is_some_and(|connection| connection.outbox.watch_for_drain());
                if !watching {
                    continue; // Drained already.
                }
                let deadline = now + self.stall_timeout;
                self.crowded.insert(
                    subscriber,
                    Crowding {
                        paused: HashSet::new(),
                        deadline,
                    },
                );
                self.stall_check = Some(self.stall_check.map_or(deadline, |c| c.min(deadline)));
            }
            self.pause(publisher, subscriber);
        }
    }

    /// Pauses `publisher` until `subscriber`'s crowded outbox drains.
    fn pause(&mut self, publisher: ConnectionId, subscriber: ConnectionId) {
        let Some(connection) = self.connections.get_mut(&publisher) else {
            return;
        };
        let Some(crowding) = self.crowded.get_mut(&subscriber) else {
            return;
        };
        if crowding.paused.insert(publisher) {
            connection.paused_for += 1;
            connection.gate.close();
        }
    }

    /// Lets go the publishers paused for connection `id`'s outbox: it drained, it
    /// stalled, or it is gone.
    fn resume_publishers(&mut self, id: ConnectionId) {
        let Some(crowding) = self.crowded.remove(&id) else {
            return;
        };
        for publisher in &crowding.paused {
            let Some(connection) = self.connections.get_mut(publisher) else {
                continue;
            };
            connection.paused_for = connection.paused_for.saturating_sub(1);
            if connection.paused_for == 0 {
                connection.gate.open();
            }
        }
    }

    /// Looks for sessions that stopped acknowledging, and crowded connections that
    /// stopped draining, while publishers wait for them.
    fn stall_tick(&mut self, now: Instant) {
        if self.stall_check.is_some_and(|check| check <= now) {
            let keys: Vec<ClientKey> = self.behind.keys().cloned().collect();
            for key in keys {
                self.check_behind(&key, now);
            }
            let stalled: Vec<ConnectionId> = self
                .crowded
                .iter()
                .filter(|(_, crowding)| crowding.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in stalled {
                log::debug!(
                    "Connection {id} did not drain within {:?}: its publishers go on.",
                    self.stall_timeout
                );
                self.stalled.insert(id);
                self.resume_publishers(id);
            }
            let acknowledging = self
                .behind
                .keys()
                .filter_map(|key| self.sessions.get(key))
                .map(|entry| {
                    let stall = entry.last_progress + self.stall_timeout;
                    entry
                        .behind_since
                        .map_or(stall, |since| stall.min(since + self.pacing_ceiling))
                });
            let draining = self.crowded.values().map(|crowding| crowding.deadline);
            self.stall_check = acknowledging.chain(draining).min();
        }
    }

    /// Applies the retain rules and routes a message to every matching session.
    fn publish(&mut self, publish: Publish) -> Routed {
        if publish.retain {
            self.retain(&publish);
        }
        // The list of matches is kept from one message to the next: no allocation.
        let mut matches = std::mem::take(&mut self.matched);
        self.subscriptions
            .matches_into(&publish.topic, &mut matches);
        let mut routed = Routed::default();
        let now = Instant::now();
        for (client, granted) in matches.drain(..) {
            // Messages to existing subscriptions carry RETAIN=0 [MQTT-3.3.1-9], and DUP
            // is never copied from the publisher [MQTT-3.3.1-3].
            match self.deliver(&client, &publish, granted, false) {
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

    fn retain(&mut self, publish: &Publish) {
        if !publish.payload.is_empty() && !self.retained_has_room(publish) {
            return;
        }
        if !self.retained.apply(publish) || is_sys_topic(&publish.topic) {
            return;
        }
        let saved = if publish.payload.is_empty() {
            self.storage.remove_retained(&publish.topic)
        } else {
            self.storage.save_retained(publish)
        };
        if let Err(error) = saved {
            log::error!(
                "Cannot store retained message on '{}': {error}.",
                publish.topic
            );
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
    fn deliver(
        &mut self,
        client: &ClientKey,
        message: &Publish,
        granted: QoS,
        retain: bool,
    ) -> Delivered {
        let half_queue = self.half_queue();
        let Some(entry) = self.sessions.get_mut(client) else {
            return Delivered::Skipped;
        };
        // Read access, checked per delivery. A restored session whose client has not
        // come back has no known user: it gets nothing while hooks decide (fail
        // closed, invariant 5).
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
        publish.qos = message.qos.min(granted);
        publish.retain = retain;
        publish.dup = false;
        publish.packet_id = None;
        let connection = entry
            .connection
            .and_then(|id| Some((id, self.connections.get(&id)?)));

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
            if room == Qos0Room::Full {
                bump(&self.counters.publish_dropped, 1);
                return Delivered::Crowded(id);
            }
            observe_delivery(&self.hooks, &connection.info, &publish);
            try_send(
                &mut self.to_close,
                id,
                &connection.outbox,
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
        let delivery = entry.session.deliver(publish, connection.is_some());
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
                    try_send(
                        &mut self.to_close,
                        id,
                        &connection.outbox,
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
    fn fill_window(&mut self, key: &ClientKey) {
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
        let (ready, denied) = entry.session.fill_window(|publish| {
            !check || owner.is_some_and(|owner| hooks.authorize_receive(owner, &publish.topic))
        });
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

    // --- SUBSCRIBE, UNSUBSCRIBE and acknowledgements ------------------------------

    fn subscribe(&mut self, id: ConnectionId, subscribe: Subscribe, authorized: Vec<bool>) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        let key = connection.client_key.clone();
        let info = connection.info.clone();
        let now = Instant::now();

        // Identical filters in one SUBSCRIBE are one subscription: each replaces the
        // one before [MQTT-3.8.4-3], so the last one's QoS stands and the work (and
        // the retained replay) is done once per distinct filter.
        let mut last_of: HashMap<&TopicFilter, usize> = HashMap::new();
        for (index, entry) in subscribe.filters.iter().enumerate() {
            last_of.insert(&entry.filter, index);
        }
        let mut codes = vec![SubscribeReturnCode::Failure; subscribe.filters.len()];
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
                continue;
            }
            let Some(session) = self.sessions.get_mut(&key) else {
                continue;
            };
            let held = session.session.subscriptions.len();
            if !session.session.subscriptions.contains_key(&entry.filter)
                && held >= self.limits.max_subscriptions_per_client
            {
                self.counters.limit_reached(Limit::SubscriptionsPerClient);
                if session.first_time(Limit::SubscriptionsPerClient) && self.limit_log.allow(now) {
                    log::warn!(
                        "Client {} holds {held} subscriptions: refusing more \
                         (max-subscriptions-per-client).",
                        info.client_id
                    );
                }
                continue;
            }
            let subscriptions = &mut session.session.subscriptions;
            // Stored in its own allocation: a subscription lives long, and must not
            // keep the whole SUBSCRIBE packet's buffer alive.
            let mut filter = entry.filter.clone();
            filter.compact();
            // Every QoS is supported, so the requested one is granted.
            subscriptions.insert(filter.clone(), entry.qos);
            self.subscriptions.subscribe(&key, &filter, entry.qos);
            codes[index] = SubscribeReturnCode::Success(entry.qos);
            granted.push((filter, entry.qos));
        }
        // Copies of a filter get the answer of the one that decided.
        for (index, entry) in subscribe.filters.iter().enumerate() {
            if let Some(&decided) = last_of.get(&entry.filter) {
                codes[index] = codes[decided];
            }
        }
        drop(last_of);
        // One return code per filter, in order [MQTT-3.8.4-5] [MQTT-3.9.3-1].
        self.send(
            id,
            Packet::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                return_codes: codes,
            }),
        );
        for (filter, qos) in granted {
            if !self.hooks.is_empty() {
                self.hooks
                    .observe("on_subscribed", |h| h.on_subscribed(&info, &filter, qos));
            }
            // Retained messages are sent on every subscribe, even a repeated one
            // [MQTT-3.3.1-6] [MQTT-3.8.4-3], with RETAIN=1 [MQTT-3.3.1-8]: the
            // first slice now, the rest between other clients' work.
            self.replay(Replay {
                client: key.clone(),
                filter,
                qos,
                cursor: None,
            });
        }
        self.save_session(&key);
    }

    /// Delivers the next slice of a retained replay, and queues the rest for a
    /// later turn. A replay ends early when the session is gone or cannot take
    /// more (its queue or outbox is full: what remains would only be dropped).
    fn replay(&mut self, replay: Replay) {
        let chunk = self
            .retained
            .replay(&replay.filter, replay.cursor.as_ref(), REPLAY_BUDGET);
        for message in &chunk.messages {
            match self.deliver(&replay.client, message, replay.qos, true) {
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

    /// Gives every replay under way its next slice.
    fn continue_replays(&mut self) {
        for _ in 0..self.replays.len() {
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

    fn unsubscribe(&mut self, id: ConnectionId, unsubscribe: Unsubscribe) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        let key = connection.client_key.clone();
        let info = connection.info.clone();
        for filter in &unsubscribe.filters {
            self.subscriptions.unsubscribe(&key, filter);
            if let Some(entry) = self.sessions.get_mut(&key) {
                entry.session.subscriptions.remove(filter);
            }
            if !self.hooks.is_empty() {
                self.hooks
                    .observe("on_unsubscribed", |h| h.on_unsubscribed(&info, filter));
            }
        }
        // Answered even when nothing matched [MQTT-3.10.4-5], once for all filters
        // [MQTT-3.10.4-6].
        self.send(id, Packet::UnsubAck(UnsubAck::new(unsubscribe.packet_id)));
        self.save_session(&key);
    }

    fn ack(&mut self, id: ConnectionId, ack: Ack) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        let key = connection.client_key.clone();
        match ack {
            Ack::PubAck(packet_id) => {
                self.acknowledged(id, &key, packet_id, Session::puback, "PUBACK")
            }
            Ack::PubComp(packet_id) => {
                self.acknowledged(id, &key, packet_id, Session::pubcomp, "PUBCOMP")
            }
            Ack::PubRec(packet_id) => {
                let known = self.sessions.get_mut(&key).is_some_and(|entry| {
                    session_op(&mut self.held, &mut entry.session, |s| s.pubrec(packet_id))
                });
                if known {
                    self.progressed(&key);
                    self.send(id, Packet::PubRel(PubRel::new(packet_id)));
                } else {
                    self.wrong_acknowledgement(id, &key, packet_id, "PUBREC");
                }
            }
            Ack::PubRel(packet_id) => self.pubrel(id, &key, packet_id),
        }
    }

    fn acknowledged(
        &mut self,
        id: ConnectionId,
        key: &ClientKey,
        packet_id: PacketId,
        ack: fn(&mut Session, PacketId) -> bool,
        what: &str,
    ) {
        let known = self.sessions.get_mut(key).is_some_and(|entry| {
            session_op(&mut self.held, &mut entry.session, |s| ack(s, packet_id))
        });
        if known {
            self.progressed(key);
            self.fill_window(key);
            if self.behind.contains_key(key) {
                self.check_behind(key, Instant::now());
            }
        } else {
            self.wrong_acknowledgement(id, key, packet_id, what);
        }
    }

    /// An acknowledgement that matched nothing: ignored if its packet identifier is
    /// not in flight (a late or repeated one), a protocol violation if it is, but
    /// for a message of another QoS or in another state (a PUBACK for QoS 2, say),
    /// which closes the connection as mosquitto does.
    fn wrong_acknowledgement(
        &mut self,
        id: ConnectionId,
        key: &ClientKey,
        packet_id: PacketId,
        what: &str,
    ) {
        let in_flight = self
            .sessions
            .get(key)
            .is_some_and(|entry| entry.session.is_inflight(packet_id));
        if in_flight {
            self.to_close.push((
                id,
                DisconnectReason::ProtocolViolation(format!(
                    "{what} for packet {packet_id}, which waits for another acknowledgement"
                )),
            ));
        } else {
            log::debug!(
                "Client {key} sent {what} for unknown packet {packet_id} (connection {id})."
            );
        }
    }

    /// Notes that a session's client acknowledged something: it is working.
    fn progressed(&mut self, key: &ClientKey) {
        if let Some(entry) = self.sessions.get_mut(key) {
            entry.last_progress = Instant::now();
        }
    }

    // --- Sending ------------------------------------------------------------------

    /// Sends a packet that must not be lost (a reply, or a QoS 1/2 message the
    /// session tracks). A full outbox means the client stopped reading.
    fn send(&mut self, id: ConnectionId, packet: Packet) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        try_send(&mut self.to_close, id, &connection.outbox, packet);
    }

    // --- Persistence, statistics, $SYS --------------------------------------------

    fn save_session(&mut self, key: &ClientKey) {
        let Some(entry) = self.sessions.get(key) else {
            return;
        };
        if entry.session.clean {
            return;
        }
        let session = &entry.session;
        let stored = StoredSession {
            client_id: key.to_string(),
            username: entry.username.clone(),
            subscriptions: session
                .subscriptions
                .iter()
                .map(|(filter, qos)| (filter.clone(), *qos))
                .collect(),
            inflight: session
                .inflight()
                .map(|entry| match entry {
                    Inflight::Publish(publish) => StoredInflight::Publish(publish.clone()),
                    Inflight::PubRel(id) => StoredInflight::PubRel(*id),
                })
                .collect(),
            queued: session.queued().cloned().collect(),
            awaiting_pubrel: session.awaiting_pubrel().copied().collect(),
        };
        if let Err(error) = self.storage.save_session(&stored) {
            log::error!("Cannot save the session of {key}: {error}.");
        }
    }

    fn flush_storage(&mut self) {
        if let Err(error) = self.storage.flush() {
            log::error!("Cannot flush the broker's store: {error}.");
        }
    }

    /// Does what is due at `now`: `$SYS` and the check for stalled sessions.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.continue_replays();
        self.stall_tick(now);
        self.expire_sessions(now);
        self.denied_log.renew(now);
        self.limit_log.renew(now);
        self.sys_tick(now);
        while let Some((connection, reason)) = self.to_close.pop() {
            self.disconnect(connection, reason);
        }
    }

    /// Publishes the `$SYS` topics that changed, if a tick is due.
    fn sys_tick(&mut self, now: Instant) {
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
        while let Some((connection, reason)) = self.to_close.pop() {
            self.disconnect(connection, reason);
        }
    }

    /// Copies the router's gauges where [`Broker::stats`](super::Broker::stats) reads
    /// them, and flushes the store. Called after each batch of events.
    pub(crate) fn end_batch(&mut self) {
        self.publish_gauges();
        self.flush_storage();
    }

    fn publish_gauges(&self) {
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

/// Puts a packet in a connection's outbox without waiting. A full outbox marks the
/// connection for closing; a disconnected one means its writer is gone already and
/// its reader will report why.
fn try_send(
    to_close: &mut Vec<(ConnectionId, DisconnectReason)>,
    id: ConnectionId,
    outbox: &Outbox,
    packet: Packet,
) {
    if let Err(SendFailure::Full) = outbox.try_send(packet) {
        to_close.push((id, DisconnectReason::SlowConsumer));
    }
}

/// Runs a session change and keeps the broker's totals in step with it.
fn session_op<R>(
    held: &mut Footprint,
    session: &mut Session,
    op: impl FnOnce(&mut Session) -> R,
) -> R {
    let before = session.footprint();
    let result = op(session);
    add_footprint(held, session.footprint());
    sub_footprint(held, before);
    result
}

fn add_footprint(total: &mut Footprint, part: Footprint) {
    total.inflight += part.inflight;
    total.queued += part.queued;
    total.bytes += part.bytes;
}

fn sub_footprint(total: &mut Footprint, part: Footprint) {
    total.inflight -= part.inflight;
    total.queued -= part.queued;
    total.bytes -= part.bytes;
}

fn observe_delivery(hooks: &Hooks, client: &ClientInfo, publish: &Publish) {
    if !hooks.is_empty() {
        hooks.observe("on_delivered", |h| h.on_delivered(client, publish));
    }
}

/// `$SYS` and everything below it.
fn is_sys_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// The router thread: blocks for an event (or the next `$SYS` tick), handles it and
/// everything else already waiting, gives their bytes back to the inbox's `budget`,
/// then publishes statistics.
pub(crate) fn run(
    mut state: RouterState,
    inbox: Receiver<Event>,
    budget: &super::event::InboxBudget,
) {
    // Bounds a batch so statistics and `$SYS` stay fresh under a constant flood.
    const MAX_BATCH: usize = 1024;
    state.tick(Instant::now());
    loop {
        let first = match state.deadline() {
            Some(deadline) => match inbox.recv_deadline(deadline) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Event::Shutdown),
            },
            None => Some(inbox.recv().unwrap_or(Event::Shutdown)),
        };
        if let Some(event) = first {
            let mut handled = event.cost();
            if !state.handle(event) {
                break;
            }
            let mut stopped = false;
            for _ in 1..MAX_BATCH {
                let Ok(event) = inbox.try_recv() else {
                    break;
                };
                handled += event.cost();
                if !state.handle(event) {
                    stopped = true;
                    break;
                }
            }
            // Room for the whole batch at once: waiting senders wake once per batch.
            budget.give_back(handled);
            if stopped {
                break;
            }
        }
        state.tick(Instant::now());
        state.end_batch();
    }
    // Connections that finished their handshake after the shutdown began are closed
    // here, so their threads do not wait for a router that is gone.
    for event in inbox.try_iter() {
        if let Event::Connect(new) = event {
            new.closer.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::event::{
        outbox, OutboxReceiver, OUTBOX_CROWDED_SLOTS, OUTBOX_QOS0_SLOTS, OUTBOX_REPLY_RESERVE,
    };
    use crate::broker::storage::MemoryStorage;
    use crate::protocol::{Connect, SubscribeFilter, TopicFilter};
    use bytes::Bytes;
    use std::time::Duration;

    struct Harness {
        state: RouterState,
        next_id: ConnectionId,
    }

    struct Client {
        id: ConnectionId,
        outbox: OutboxReceiver,
        gate: Arc<ReadGate>,
    }

    impl Client {
        fn received(&self) -> Vec<Packet> {
            std::iter::from_fn(|| self.outbox.try_recv().ok()).collect()
        }

        /// Whether the router dropped this connection's outbox (after anything
        /// still in it).
        fn is_closed(&self) -> bool {
            loop {
                match self.outbox.try_recv() {
                    Ok(_) => continue,
                    Err(error) => return error.is_disconnected(),
                }
            }
        }
    }

    fn limits() -> Limits {
        Limits {
            max_inflight_messages: 2,
            max_queued_messages: 3,
            ..Limits::default()
        }
    }

    impl Harness {
        fn new() -> Harness {
            Harness::with_limits(limits())
        }

        fn with_limits(limits: Limits) -> Harness {
            let sys = SysConfig {
                interval: std::time::Duration::ZERO,
                ..SysConfig::default()
            };
            let state = RouterState::new(
                limits,
                &sys,
                Hooks::default(),
                Arc::new(Counters::default()),
                Box::new(MemoryStorage::new()),
            )
            .unwrap();
            Harness { state, next_id: 1 }
        }

        fn connect_with(&mut self, connect: Connect) -> Client {
            let id = self.next_id;
            self.next_id += 1;
            let (tx, rx) = outbox(2);
            let gate = Arc::new(ReadGate::default());
            let client = ClientInfo {
                client_id: connect.client_id.clone(),
                username: connect.username.clone(),
                remote_addr: ([127, 0, 0, 1], 1).into(),
                listener: "test".into(),
                protocol: connect.protocol,
            };
            self.state.handle(Event::Connect(Box::new(NewConnection {
                id,
                connect,
                client,
                outbox: tx,
                closer: Closer::detached(),
                gate: gate.clone(),
                trusted: false,
            })));
            Client {
                id,
                outbox: rx,
                gate,
            }
        }

        fn connect(&mut self, client_id: &str, clean: bool) -> Client {
            let mut connect = Connect::new(client_id);
            connect.clean_session = clean;
            self.connect_with(connect)
        }

        fn subscribe(&mut self, client: &Client, filter: &str, qos: QoS) {
            self.state.handle(Event::Subscribe {
                connection: client.id,
                subscribe: Subscribe {
                    packet_id: pid(100),
                    filters: vec![SubscribeFilter::new(TopicFilter::new(filter).unwrap(), qos)],
                },
                authorized: vec![true],
            });
        }

        fn publish(
            &mut self,
            client: &Client,
            topic: &str,
            payload: &'static str,
            qos: QoS,
            retain: bool,
            packet_id: u16,
        ) {
            let mut publish = Publish::new(TopicName::new(topic).unwrap(), payload, qos, retain);
            publish.packet_id = PacketId::new(packet_id);
            self.state.handle(Event::Publish {
                connection: client.id,
                publish,
                authorized: true,
            });
        }

        fn packet(&mut self, client: &Client, packet: Packet) {
            self.state.handle(Event::from_packet(client.id, packet));
        }

        fn disconnect(&mut self, client: &Client, reason: DisconnectReason) {
            self.state.handle(Event::Disconnect {
                connection: client.id,
                reason,
            });
        }
    }

    fn pid(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    fn publishes(packets: &[Packet]) -> Vec<&Publish> {
        packets
            .iter()
            .filter_map(|p| match p {
                Packet::Publish(publish) => Some(publish),
                _ => None,
            })
            .collect()
    }

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
        });
        let client = h.connect_with(connect);
        h.disconnect(&client, DisconnectReason::Disconnect);
        assert!(watcher.received().is_empty());
        assert_eq!(h.state.retained.len(), 0);
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

    /// Publishes QoS 0 messages to `t` from `publisher` until its gate closes;
    /// returns how many it took, or `None` if the gate stayed open for `most`.
    fn publish_until_paused(h: &mut Harness, publisher: &Client, most: usize) -> Option<usize> {
        (1..=most).find(|_| {
            h.publish(publisher, "t", "x", QoS::AtMostOnce, false, 0);
            publisher.gate.is_closed()
        })
    }

    fn dropped(h: &Harness) -> u64 {
        h.state
            .counters
            .publish_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn a_qos_0_publisher_is_paused_while_it_crowds_a_subscriber_until_that_drains() {
        let mut h = Harness::new();
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtMostOnce);
        sub.received();
        let publisher = h.connect("pub", true);
        // The message that finds the outbox crowded pauses its publisher.
        let crowded = OUTBOX_CROWDED_SLOTS;
        assert_eq!(
            publish_until_paused(&mut h, &publisher, OUTBOX_QOS0_SLOTS),
            Some(crowded + 1)
        );
        // The subscriber's writer takes everything and reports it once.
        assert_eq!(publishes(&sub.received()).len(), crowded + 1);
        assert!(sub.outbox.drained());
        assert!(!sub.outbox.drained(), "reported once");
        h.state.handle(Event::Drained { connection: sub.id });
        assert!(!publisher.gate.is_closed());
        assert_eq!(dropped(&h), 0);
    }

    #[test]
    fn a_publisher_paused_by_two_subscribers_waits_for_both() {
        let mut h = Harness::new();
        let a = h.connect("a", true);
        let b = h.connect("b", true);
        h.subscribe(&a, "t", QoS::AtMostOnce);
        h.subscribe(&b, "t", QoS::AtMostOnce);
        a.received();
        b.received();
        let publisher = h.connect("pub", true);
        assert!(publish_until_paused(&mut h, &publisher, OUTBOX_QOS0_SLOTS).is_some());
        a.received();
        assert!(a.outbox.drained());
        h.state.handle(Event::Drained { connection: a.id });
        assert!(publisher.gate.is_closed(), "b is still crowded");
        h.disconnect(&b, DisconnectReason::Disconnect);
        assert!(!publisher.gate.is_closed(), "b is gone");
    }

    #[test]
    fn a_crowded_subscriber_that_stops_draining_pauses_nobody_until_it_drains() {
        let mut h = Harness::new();
        h.state.stall_timeout = Duration::from_millis(10);
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtMostOnce);
        sub.received();
        let publisher = h.connect("pub", true);
        assert!(publish_until_paused(&mut h, &publisher, OUTBOX_QOS0_SLOTS).is_some());
        let due = h.state.deadline().expect("a stall check is scheduled");
        h.state.tick(due + Duration::from_millis(1));
        assert!(
            !publisher.gate.is_closed(),
            "let go after the stall timeout"
        );
        // Stalled: its outbox fills and drops instead, as QoS 0 may.
        assert_eq!(
            publish_until_paused(&mut h, &publisher, OUTBOX_QOS0_SLOTS),
            None
        );
        assert!(dropped(&h) > 0);
        // Once it drains again it paces its publishers again.
        sub.received();
        assert!(sub.outbox.drained());
        h.state.handle(Event::Drained { connection: sub.id });
        assert!(publish_until_paused(&mut h, &publisher, OUTBOX_QOS0_SLOTS).is_some());
    }

    #[test]
    fn a_client_is_not_paused_by_its_own_subscription() {
        let mut h = Harness::new();
        let client = h.connect("echo", true);
        h.subscribe(&client, "t", QoS::AtMostOnce);
        assert_eq!(
            publish_until_paused(&mut h, &client, OUTBOX_CROWDED_SLOTS * 2),
            None
        );
    }

    #[test]
    fn a_paused_publisher_that_is_disconnected_is_let_go() {
        let mut h = Harness::new();
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtMostOnce);
        sub.received();
        let publisher = h.connect("pub", true);
        assert!(publish_until_paused(&mut h, &publisher, OUTBOX_QOS0_SLOTS).is_some());
        h.disconnect(&publisher, DisconnectReason::TakenOver);
        assert!(!publisher.gate.is_closed());
        // The subscriber's later drain report finds nobody to let go.
        sub.received();
        assert!(sub.outbox.drained());
        h.state.handle(Event::Drained { connection: sub.id });
    }

    fn pubacks(packets: &[Packet]) -> Vec<u16> {
        packets
            .iter()
            .filter_map(|p| match p {
                Packet::PubAck(ack) => Some(ack.packet_id.get()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_publisher_is_paced_by_a_subscriber_that_is_behind_but_acknowledging() {
        // Window 2, queue 3: a session is behind once one message waits.
        let mut h = Harness::new();
        h.state.stall_timeout = Duration::from_secs(3600);
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtLeastOnce);
        let publisher = h.connect("pub", true);
        publisher.received();
        for n in 1..=4 {
            h.publish(&publisher, "t", "x", QoS::AtLeastOnce, false, n);
        }
        // 1 and 2 went out, 3 and 4 wait: their PUBACKs are held.
        assert_eq!(pubacks(&publisher.received()), [1, 2]);
        assert_eq!(publishes(&sub.received()).len(), 2);
        // Each acknowledgement that empties the queue lets one PUBACK go, in order.
        h.packet(&sub, Packet::PubAck(PubAck::new(pid(1))));
        assert_eq!(pubacks(&publisher.received()), Vec::<u16>::new());
        h.packet(&sub, Packet::PubAck(PubAck::new(pid(2))));
        assert_eq!(pubacks(&publisher.received()), [3]);
        h.packet(&sub, Packet::PubAck(PubAck::new(pid(3))));
        assert_eq!(pubacks(&publisher.received()), [4]);
        assert_eq!(
            h.state
                .counters
                .publish_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn a_subscriber_that_stops_acknowledging_stops_pacing_its_publishers() {
        let mut h = Harness::new();
        h.state.stall_timeout = Duration::from_secs(3600);
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtLeastOnce);
        let publisher = h.connect("pub", true);
        publisher.received();
        for n in 1..=4 {
            h.publish(&publisher, "t", "x", QoS::AtLeastOnce, false, n);
        }
        assert_eq!(pubacks(&publisher.received()), [1, 2]);
        assert!(h.state.deadline().is_some(), "a stall check is scheduled");
        h.state.tick(Instant::now() + Duration::from_secs(7200));
        assert_eq!(pubacks(&publisher.received()), [3, 4]);
        assert!(h.state.behind.is_empty());
    }

    #[test]
    fn a_subscriber_going_offline_releases_its_publishers() {
        let mut h = Harness::new();
        h.state.stall_timeout = Duration::from_secs(3600);
        let sub = h.connect("sub", false);
        h.subscribe(&sub, "t", QoS::AtLeastOnce);
        let publisher = h.connect("pub", true);
        publisher.received();
        for n in 1..=3 {
            h.publish(&publisher, "t", "x", QoS::AtLeastOnce, false, n);
        }
        assert_eq!(pubacks(&publisher.received()), [1, 2]);
        h.disconnect(&sub, DisconnectReason::ConnectionLost("gone".into()));
        assert_eq!(pubacks(&publisher.received()), [3]);
    }

    fn limit_count(h: &Harness, limit: Limit) -> u64 {
        h.state
            .counters
            .snapshot(Duration::ZERO)
            .limit_reached(limit)
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
            },
            authorized: vec![true; 4],
        });
        let granted = SubscribeReturnCode::Success;
        assert_eq!(
            client.received(),
            vec![Packet::SubAck(SubAck {
                packet_id: pid(7),
                return_codes: vec![
                    granted(QoS::AtLeastOnce),
                    granted(QoS::AtLeastOnce),
                    granted(QoS::AtMostOnce),
                    SubscribeReturnCode::Failure,
                ],
            })]
        );
        assert_eq!(h.state.subscriptions.len(), 2);
        assert_eq!(limit_count(&h, Limit::SubscriptionsPerClient), 1);
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
        });
        let spoofer = h.connect_with(connect);
        h.disconnect(&spoofer, DisconnectReason::ConnectionLost("gone".into()));
        assert!(publishes(&watcher.received()).is_empty());
        assert_eq!(h.state.retained.len(), 0);
    }

    #[test]
    fn a_subscriber_behind_for_longer_than_the_ceiling_stops_pacing_its_publishers() {
        let mut h = Harness::new();
        h.state.stall_timeout = Duration::from_secs(3600);
        h.state.pacing_ceiling = Duration::from_secs(10);
        let sub = h.connect("sub", true);
        h.subscribe(&sub, "t", QoS::AtLeastOnce);
        let publisher = h.connect("pub", true);
        publisher.received();
        for n in 1..=4 {
            h.publish(&publisher, "t", "x", QoS::AtLeastOnce, false, n);
        }
        assert_eq!(pubacks(&publisher.received()), [1, 2]);
        // Still acknowledging, but behind for longer than the ceiling.
        let check = h.state.deadline().expect("a ceiling check is planned");
        assert!(check < Instant::now() + Duration::from_secs(11));
        h.state.tick(Instant::now() + Duration::from_secs(20));
        assert_eq!(pubacks(&publisher.received()), [3, 4]);
        assert!(h.state.behind.is_empty());
        assert_eq!(limit_count(&h, Limit::SlowSubscriber), 1);
    }
}
