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
//! Authorization is split between a connection's reader, which asks the hooks
//! about each PUBLISH and SUBSCRIBE filter and passes the answer along, and the
//! router, which checks read access at each delivery: see "Who checks what" in
//! `connection/mod.rs`.
//!
//! A publisher is paced by its subscribers (`pacing.rs`): its acknowledgements are
//! held back, or its reader paused, while the sessions its messages go to are behind.
//!
//! The rules live in one file per kind of packet, as mosquitto's `handle_*.c` do:
//!
//! - `connect.rs`: CONNECT, takeovers, sessions and their expiry, DISCONNECT, wills;
//! - `publish.rs`: PUBLISH in, the retain rules, routing and delivery;
//! - `acks.rs`: PUBACK, PUBREC, PUBREL and PUBCOMP;
//! - `subscribe.rs`: SUBSCRIBE, UNSUBSCRIBE and retained replays;
//! - `pacing.rs`: publishers held back by the subscribers they feed;
//! - `durable.rs`: changes written down for the store, and packets that wait for
//!   their commit (group commit);
//! - `housekeeping.rs`: session records, session expiry, `$SYS` and statistics.
//!
//! The thread blocks for one event, then handles whatever else is already waiting
//! before it publishes its statistics: under load it works in batches, and when idle
//! it sleeps until the next event or `$SYS` tick.
//!
//! `RouterState::handle` is plain code over plain data: the tests (`harness.rs`)
//! drive it with events and read the outboxes, with no thread and no socket.

mod acks;
mod connect;
mod durable;
mod housekeeping;
mod pacing;
mod publish;
mod subscribe;

#[cfg(test)]
mod harness;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, TryRecvError};

use crate::broker::event::{
    Ack, Closer, ConnectionId, Event, Outbox, PendingWrites, ReadGate, SendFailure,
};
use crate::broker::hashing::{ClientMap, ClientSet, IdMap};
use crate::broker::hooks::{ClientInfo, DisconnectReason, Hooks};
use crate::broker::log_limit::LogLimit;
use crate::broker::retain::RetainedMessages;
use crate::broker::session::{Footprint, Session};
use crate::broker::stats::{Counters, Limit};
use crate::broker::store::{Commit, Storage, StorageError, StorageThread};
use crate::broker::subs::{ClientKey, Match, Subscriptions};
use crate::broker::sys::SysTopics;
use crate::config::{Limits, SysConfig};
use crate::protocol::{Packet, ProtocolVersion, Publish, Will};

use self::durable::{Durable, WaitingPackets, MAX_WAITING_PACKETS};
use self::pacing::Pacing;
use self::subscribe::Replay;

/// The router's view of a connected client.
struct ConnectedClient {
    client_key: ClientKey,
    info: ClientInfo,
    will: Option<Will>,
    outbox: Outbox,
    closer: Closer,
    /// PUBACK and PUBCOMP packets held back to pace this publisher, in order.
    held_acks: VecDeque<Packet>,
    /// The sessions those acknowledgements wait for.
    waiting_on: ClientSet,
    /// Pauses this client's reader.
    gate: Arc<ReadGate>,
    /// How many crowded outboxes this client's reader is paused for.
    paused_for: usize,
    /// PUBLISH packets of this client handled so far, reported to its reader.
    handled: u64,
    /// Whether its session is persistent (its QoS 1/2 traffic waits for the store).
    persistent: bool,
    /// Packets waiting for a commit of the store before they leave, in order.
    waiting: WaitingPackets,
    /// The MQTT version the client speaks.
    version: ProtocolVersion,
    /// MQTT 5: the largest packet the client accepts (its Maximum Packet Size);
    /// `usize::MAX` when it set none.
    max_packet_size: usize,
    /// A bridge from another broker (mosquitto's try_private): its subscriptions
    /// all take No Local, so what it published does not go back to it.
    bridge: bool,
}

/// A session and the connection currently attached to it, if any.
struct SessionEntry {
    session: Session,
    connection: Option<ConnectionId>,
    /// The client the session last belonged to, for read checks while it is
    /// offline (restored from the store with it after a restart); `None` only for a
    /// clean session before its client is attached.
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
    /// Seconds the session outlives its connection (its Session Expiry Interval):
    /// 0 ends it with the connection, `u32::MAX` never. MQTT 3.1.1 sessions have
    /// 0 (clean session 1) or `u32::MAX` (clean session 0).
    expiry: u32,
    /// MQTT 5: a will waiting for its Will Delay Interval, and when it is due. A
    /// client that comes back to the session first cancels it; the end of the
    /// session publishes it at once [MQTT-3.1.3-9].
    pending_will: Option<(Publish, Instant)>,
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
            expiry: 0,
            pending_will: None,
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

/// All broker state, and the rules that change it.
pub(crate) struct RouterState {
    sessions: ClientMap<SessionEntry>,
    connections: IdMap<ConnectedClient>,
    subscriptions: Subscriptions,
    retained: RetainedMessages,
    /// The store's half of the router, when there is a store.
    durable: Option<Durable>,
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
    /// Whose acknowledgements are held back, and whose readers paused, for whom.
    pacing: Pacing,
    /// The subscribers of the message being routed (kept to reuse its memory).
    matched: Vec<Match>,
    /// Persistent (clean session 0) sessions held, for `max_persistent_sessions`.
    persistent_sessions: usize,
    /// When the next session expires or delayed will is due, if any.
    expiry_check: Option<Instant>,
    /// Retained replays waiting for their next turn, in order.
    replays: VecDeque<Replay>,
    /// Log lines about denied packets, rate-limited.
    denied_log: LogLimit,
    /// Log lines about dropped messages and limits reached, rate-limited.
    limit_log: LogLimit,
    /// The connections whose packets this thread writes itself after each batch.
    pending_writes: Arc<PendingWrites>,
}

impl RouterState {
    /// Loads the stored retained messages and persistent sessions, if there is a
    /// store, and starts the thread that commits to it.
    pub(crate) fn new(
        limits: Limits,
        sys: &SysConfig,
        hooks: Hooks,
        counters: Arc<Counters>,
        storage: Option<Box<dyn Storage>>,
    ) -> Result<RouterState, StorageError> {
        let now = Instant::now();
        let (stored, durable) = match storage {
            Some(mut storage) => {
                let stored = storage.load()?;
                let thread = StorageThread::start(storage)?;
                (stored, Some(Durable::new(thread)))
            }
            None => Default::default(),
        };
        let mut state = RouterState {
            sessions: ClientMap::default(),
            connections: IdMap::default(),
            subscriptions: Subscriptions::default(),
            retained: RetainedMessages::default(),
            durable,
            hooks,
            limits,
            counters,
            held: Footprint::default(),
            maximum_sessions: 0,
            connects: 0,
            sys: SysTopics::new(sys.interval, now),
            started: now,
            to_close: Vec::new(),
            pacing: Pacing::new(),
            matched: Vec::new(),
            persistent_sessions: 0,
            expiry_check: None,
            replays: VecDeque::new(),
            denied_log: LogLimit::new("denied packets"),
            limit_log: LogLimit::new("limits reached and messages dropped"),
            pending_writes: Arc::default(),
        };
        for message in stored.retained {
            state.retained.apply(&message);
        }
        for session in stored.sessions {
            state.restore_session(session);
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

    /// When the router must wake up even without events (the next `$SYS` tick).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if !self.replays.is_empty() || !self.pending_writes.is_empty() {
            // A replay is under way, or writes are left from the last batch: come
            // back as soon as the inbox is served.
            return Some(Instant::now());
        }
        let sys = self.sys.as_ref().map(SysTopics::deadline);
        let retry = self.durable.as_ref().and_then(Durable::deadline);
        [sys, self.pacing.deadline(), self.expiry_check, retry]
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
            Event::Disconnect {
                connection,
                reason,
                session_expiry,
            } => self.client_disconnect(connection, reason, session_expiry),
            Event::Send { connection, packet } => self.send(connection, packet),
            Event::Drained { connection } => self.drained(connection),
            Event::InlinePublish(publish) => self.inline_publish(publish),
            Event::SessionPublish {
                connection,
                publish,
            } => self.session_publish(connection, publish),
            Event::SessionQuery { connection, reply } => self.session_held(connection, reply),
            Event::SessionFilters { connection, reply } => self.session_filters(connection, reply),
            Event::Shutdown => {
                self.shutdown();
                return false;
            }
        }
        self.close_pending();
        true
    }

    /// Dispatches an acknowledgement to the rules of its kind (`acks.rs`).
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
            Ack::PubRec(packet_id) => self.pubrec(id, &key, packet_id),
            Ack::PubRecRefused(packet_id) => {
                self.acknowledged(id, &key, packet_id, Session::pubrec_refused, "PUBREC")
            }
            Ack::PubRel(packet_id) => self.pubrel(id, &key, packet_id),
        }
    }

    /// Sends a packet that must not be lost (a reply, or a QoS 1/2 message the
    /// session tracks), after the commit it waits for if there is a store. A full
    /// outbox means the client stopped reading.
    fn send(&mut self, id: ConnectionId, packet: Packet) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        send_to(
            &mut self.to_close,
            self.durable.as_mut(),
            id,
            connection,
            packet,
        );
    }

    /// A commit of the store came back: the packets that waited for it leave.
    pub(crate) fn committed(&mut self, commit: Commit) {
        let Some(durable) = self.durable.as_mut() else {
            return;
        };
        let finished = durable.finished(commit, Instant::now());
        let counter = match finished {
            Some(_) => &self.counters.store_commits,
            None => &self.counters.store_failures,
        };
        crate::broker::stats::bump(counter, 1);
        if let Some(batch) = finished {
            let connections = &mut self.connections;
            let to_close = &mut self.to_close;
            durable.waiting.retain(|id| {
                let Some(connection) = connections.get_mut(id) else {
                    return false;
                };
                while let Some(packet) = connection.waiting.pop_ready(batch) {
                    try_send(to_close, *id, &connection.outbox, packet);
                }
                !connection.waiting.is_empty()
            });
        }
        self.close_pending();
    }

    /// Does what is due at `now`: `$SYS` and the check for stalled sessions.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.continue_replays();
        self.stall_tick(now);
        self.expire_sessions(now);
        self.renew_logs(now);
        self.sys_tick(now);
        self.close_pending();
    }

    /// Closes the connections marked for closing while an event was handled
    /// (closing one can publish its will, which must not happen in the middle of
    /// another delivery).
    fn close_pending(&mut self) {
        while let Some((connection, reason)) = self.to_close.pop() {
            self.disconnect(connection, reason);
        }
    }

    /// Writes to the connections whose outbox wakes `pending` at the end of each
    /// batch (see `connection/writer.rs`).
    pub(crate) fn write_through(&mut self, pending: Arc<PendingWrites>) {
        self.pending_writes = pending;
    }

    /// Copies the router's gauges where [`Broker::stats`](super::Broker::stats)
    /// reads them, writes what the batch left for connections without a writer
    /// thread (or, when `more_events` wait, hands it to writer threads: see
    /// `event/flush.rs`), and
    /// hands what the batch wrote down to the store. Called after each batch of
    /// events. The gauges go first, so that a client that has read the broker's
    /// answer finds the statistics at least as new as that answer.
    pub(crate) fn end_batch(&mut self, more_events: bool) {
        self.publish_gauges();
        self.write_pending(!more_events);
        self.collect_changes();
        if let Some(durable) = &mut self.durable {
            durable.send_batch(Instant::now());
        }
    }

    /// Writes the packets of this batch to the connections that have no writer
    /// thread, or hands them to writer threads (see `event/flush.rs`). An outbox
    /// drained by it may let paused publishers go on, whose acknowledgements are
    /// written in the next round; the rounds are bounded, and what a last round
    /// leaves is written at the end of the next batch, which comes at once (see
    /// [`deadline`](Self::deadline)).
    fn write_pending(&mut self, write: bool) {
        const ROUNDS: usize = 4;
        for _ in 0..ROUNDS {
            let drained = self.pending_writes.flush(write);
            if drained.is_empty() {
                break;
            }
            for connection in drained {
                self.drained(connection);
            }
        }
    }

    /// Moves the changes of the sessions touched since the last call into the
    /// batch for the store.
    pub(super) fn collect_changes(&mut self) {
        let Some(durable) = &mut self.durable else {
            return;
        };
        for key in std::mem::take(&mut durable.touched) {
            if let Some(entry) = self.sessions.get_mut(&key) {
                let changes = entry.session.take_changes();
                if !changes.is_empty() {
                    durable.record_session(&key, changes);
                }
            }
        }
    }
}

/// Hands a packet to a connection: at once, or, with a store, after the commit it
/// waits for (see `durable.rs`). A packet behind one that waits, waits too, so the
/// connection's order stays as made.
fn send_to(
    to_close: &mut Vec<(ConnectionId, DisconnectReason)>,
    durable: Option<&mut Durable>,
    id: ConnectionId,
    connection: &mut ConnectedClient,
    packet: Packet,
) {
    if let Some(durable) = durable {
        let behind = connection.waiting.last_batch();
        if behind.is_some() || Durable::must_wait(&packet, connection.persistent) {
            if let Some(batch) = durable.wait_for().max(behind) {
                if connection.waiting.len() >= MAX_WAITING_PACKETS {
                    to_close.push((id, DisconnectReason::StoreBehind));
                    return;
                }
                connection.waiting.push(batch, packet);
                durable.waiting.insert(id);
                return;
            }
        }
    }
    try_send(to_close, id, &connection.outbox, packet);
}

/// Notes that a session may have changes for the store.
fn touched(durable: &mut Option<Durable>, key: &ClientKey, session: &mut Session) {
    if let Some(durable) = durable {
        if session.announce_changes() {
            durable.touched.push(key.clone());
        }
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

/// `$SYS` and everything below it.
fn is_sys_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// What woke the router.
enum Woken {
    Event(Event),
    Commit(Commit),
    Deadline,
}

/// Blocks until an event arrives, a commit of the store returns, or the router's
/// next deadline passes. Without a store it waits on the inbox alone, the cheaper
/// wait on the hot path of a broker in memory.
fn wait(state: &RouterState, inbox: &Receiver<Event>, commits: Option<&Receiver<Commit>>) -> Woken {
    let deadline = state.deadline();
    let Some(commits) = commits else {
        let received = match deadline {
            Some(deadline) => inbox.recv_deadline(deadline).map_err(|e| e.is_timeout()),
            None => inbox.recv().map_err(|_| false),
        };
        return match received {
            Ok(event) => Woken::Event(event),
            Err(true) => Woken::Deadline,
            Err(false) => Woken::Event(Event::Shutdown),
        };
    };
    let mut select = Select::new();
    let from_inbox = select.recv(inbox);
    select.recv(commits);
    let ready = match deadline {
        Some(deadline) => select.ready_deadline(deadline).ok(),
        None => Some(select.ready()),
    };
    match ready {
        None => Woken::Deadline,
        Some(index) if index == from_inbox => match inbox.try_recv() {
            Ok(event) => Woken::Event(event),
            Err(TryRecvError::Empty) => Woken::Deadline,
            Err(TryRecvError::Disconnected) => Woken::Event(Event::Shutdown),
        },
        Some(_) => match commits.try_recv() {
            Ok(commit) => Woken::Commit(commit),
            Err(_) => Woken::Deadline,
        },
    }
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
    let commits = state.durable.as_ref().map(Durable::commits);
    state.tick(Instant::now());
    loop {
        let first = match wait(&state, &inbox, commits.as_ref()) {
            Woken::Event(event) => Some(event),
            Woken::Commit(commit) => {
                state.committed(commit);
                None
            }
            Woken::Deadline => None,
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
        state.end_batch(!inbox.is_empty());
    }
    // Connections that finished their handshake after the shutdown began are closed
    // here, so their threads do not wait for a router that is gone.
    for event in inbox.try_iter() {
        if let Event::Connect(new) = event {
            new.closer.close();
        }
    }
}
