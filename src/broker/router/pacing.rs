//! Pacing: publishers held back by the subscribers they feed.
//!
//! A publisher is paced by its subscribers, as MQTT allows: while a message of its
//! has gone to a session that is behind (half its queue used) yet still
//! acknowledging, its PUBACK (QoS 1) or PUBCOMP (QoS 2, answering its PUBREL: the
//! PUBREC goes at once, before any copy of the message) is held back. As that session's queue drains
//! below half, held acknowledgements go out one per freed slot, in turn across the
//! waiting publishers. A client that respects its own inflight window then publishes
//! no faster than its slowest working subscriber reads, and nothing is dropped
//! unless the publishers' windows together exceed the other half of the queue. A
//! session that stops acknowledging for [`STALL_TIMEOUT`] no longer holds anyone
//! back: its queue fills and drops, and the others go on.
//!
//! QoS 0 has no acknowledgement to hold back, so the router pauses the publisher's
//! reader instead: a QoS 0 message that finds a subscriber's outbox *crowded* (see
//! [`OUTBOX_CROWDED_SLOTS`](crate::broker::event::OUTBOX_CROWDED_SLOTS)) closes its
//! publisher's [`ReadGate`](crate::broker::event::ReadGate), and the router asks
//! that outbox to report when it has drained
//! ([`Event::Drained`](crate::broker::event::Event::Drained)), which opens the gates
//! again. A reader has at most
//! [`READER_QUEUE_LIMIT`](crate::broker::event::READER_QUEUE_LIMIT) messages in the
//! inbox, so what paused publishers still have on the way fits in the room above
//! the crowded mark. A connection never pauses itself, and one that does not drain
//! within [`STALL_TIMEOUT`] lets its publishers go and pauses nobody until it does.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::broker::event::ConnectionId;
use crate::broker::hashing::{ClientMap, IdMap, IdSet};
use crate::broker::stats::Limit;
use crate::broker::subs::ClientKey;
use crate::protocol::Packet;

use super::{RouterState, SessionEntry};

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
pub(super) const MAX_HELD_ACKS: usize = 1024;

/// A connection whose outbox is crowded with QoS 0 messages, and the publishers
/// paused until it drains.
struct Crowding {
    paused: IdSet,
    /// When the connection counts as stalled if it has not drained by then.
    deadline: Instant,
}

/// Who holds whom back, for the whole broker.
///
/// What belongs to one publisher (its held acknowledgements, the sessions they
/// wait for, the number of outboxes its reader is paused for) stays on the
/// router's `ConnectedClient`, so that it goes away with the connection.
pub(super) struct Pacing {
    /// Sessions that are behind, with the publishers whose acknowledgements wait
    /// for them, in turn.
    behind: ClientMap<VecDeque<ConnectionId>>,
    /// Connections with crowded outboxes, and the publishers paused for them.
    crowded: IdMap<Crowding>,
    /// Connections that did not drain in time: they pause nobody until they do.
    stalled: IdSet,
    /// When to look for sessions in `behind` that stopped acknowledging, and for
    /// crowded connections that stopped draining.
    check: Option<Instant>,
    /// [`STALL_TIMEOUT`], except in tests.
    pub(super) stall_timeout: Duration,
    /// [`PACING_CEILING`], except in tests.
    pub(super) ceiling: Duration,
}

impl Pacing {
    pub(super) fn new() -> Pacing {
        Pacing {
            behind: ClientMap::default(),
            crowded: IdMap::default(),
            stalled: IdSet::default(),
            check: None,
            stall_timeout: STALL_TIMEOUT,
            ceiling: PACING_CEILING,
        }
    }

    /// When the router must look for sessions and connections that stalled.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.check
    }

    /// Plans a look no later than `at`.
    fn check_by(&mut self, at: Instant) {
        self.check = Some(self.check.map_or(at, |check| check.min(at)));
    }

    /// When a session stops holding publishers back unless it acknowledges
    /// something: at the stall timeout, or at the pacing ceiling if that is
    /// sooner.
    fn gives_up_at(&self, entry: &SessionEntry) -> Instant {
        let stall = entry.last_progress + self.stall_timeout;
        entry
            .behind_since
            .map_or(stall, |since| stall.min(since + self.ceiling))
    }

    /// Whether a session may hold publishers back at all: its client is connected,
    /// acknowledged something within the stall timeout, and has not been behind
    /// for longer than the pacing ceiling.
    fn is_working(&self, entry: &SessionEntry, now: Instant) -> bool {
        entry.connection.is_some()
            && now.saturating_duration_since(entry.last_progress) < self.stall_timeout
            && !self.over_ceiling(entry, now)
    }

    /// Whether a session has been behind for the pacing ceiling or longer.
    fn over_ceiling(&self, entry: &SessionEntry, now: Instant) -> bool {
        entry
            .behind_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.ceiling)
    }

    /// Notes that `publisher` waits for session `key` (found as `entry`, if it
    /// still exists): it takes one place in the session's turns.
    fn wait_for(
        &mut self,
        key: ClientKey,
        publisher: ConnectionId,
        entry: Option<&SessionEntry>,
        now: Instant,
    ) {
        let gives_up = entry.map_or(now + self.stall_timeout, |entry| self.gives_up_at(entry));
        let waiting = self.behind.entry(key).or_default();
        if !waiting.contains(&publisher) {
            waiting.push_back(publisher);
        }
        self.check_by(gives_up);
    }

    /// Whether publishers wait for session `key`.
    pub(super) fn holds_back(&self, key: &ClientKey) -> bool {
        self.behind.contains_key(key)
    }

    /// The next publisher in session `key`'s turns, taken out of them.
    fn next_turn(&mut self, key: &ClientKey) -> Option<ConnectionId> {
        self.behind.get_mut(key).and_then(VecDeque::pop_front)
    }

    /// Puts `publisher` back at the end of session `key`'s turns.
    fn another_turn(&mut self, key: &ClientKey, publisher: ConnectionId) {
        if let Some(waiting) = self.behind.get_mut(key) {
            waiting.push_back(publisher);
        }
    }

    /// How many publishers wait for session `key`.
    fn turns(&self, key: &ClientKey) -> usize {
        self.behind.get(key).map_or(0, VecDeque::len)
    }

    /// Forgets session `key` if nobody waits for it any more.
    fn tidy(&mut self, key: &ClientKey) {
        if self.behind.get(key).is_some_and(VecDeque::is_empty) {
            self.behind.remove(key);
        }
    }

    /// Session `key` holds nobody back any more: the publishers that waited for it.
    fn release(&mut self, key: &ClientKey) -> VecDeque<ConnectionId> {
        self.behind.remove(key).unwrap_or_default()
    }

    /// Whether connection `id`'s crowded outbox may pause a publisher now: it
    /// did not stall.
    fn may_pause(&self, id: ConnectionId) -> bool {
        !self.stalled.contains(&id)
    }

    /// Whether publishers are paused for connection `id`'s outbox.
    fn is_crowded(&self, id: ConnectionId) -> bool {
        self.crowded.contains_key(&id)
    }

    /// Connection `id`'s outbox is crowded from `now`: it must drain within the
    /// stall timeout.
    fn crowd(&mut self, id: ConnectionId, now: Instant) {
        let deadline = now + self.stall_timeout;
        self.crowded.insert(
            id,
            Crowding {
                paused: IdSet::default(),
                deadline,
            },
        );
        self.check_by(deadline);
    }

    /// Notes that `publisher` is paused for `subscriber`'s crowded outbox;
    /// `false` if it was already, or that outbox is not crowded.
    fn pause(&mut self, publisher: ConnectionId, subscriber: ConnectionId) -> bool {
        self.crowded
            .get_mut(&subscriber)
            .is_some_and(|crowding| crowding.paused.insert(publisher))
    }

    /// Connection `id`'s outbox is no longer crowded: the publishers paused for it.
    fn uncrowd(&mut self, id: ConnectionId) -> IdSet {
        self.crowded
            .remove(&id)
            .map(|crowding| crowding.paused)
            .unwrap_or_default()
    }

    /// Connection `id`'s outbox drained, or the connection is gone: it no longer
    /// counts as stalled.
    fn drained(&mut self, id: ConnectionId) {
        self.stalled.remove(&id);
    }

    /// The crowded connections that did not drain by `now`, marked stalled.
    fn stall_overdue(&mut self, now: Instant) -> Vec<ConnectionId> {
        let overdue: Vec<ConnectionId> = self
            .crowded
            .iter()
            .filter(|(_, crowding)| crowding.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        self.stalled.extend(overdue.iter().copied());
        overdue
    }

    /// Plans the next look from what is still waited for: sessions that must
    /// acknowledge, outboxes that must drain.
    fn replan(&mut self, sessions: &ClientMap<SessionEntry>) {
        let acknowledging = self
            .behind
            .keys()
            .filter_map(|key| sessions.get(key))
            .map(|entry| self.gives_up_at(entry));
        let draining = self.crowded.values().map(|crowding| crowding.deadline);
        self.check = acknowledging.chain(draining).min();
    }
}

impl RouterState {
    /// Connection `id`'s outbox drained, or the connection is gone: it no longer
    /// counts as stalled, and the publishers paused for it go on.
    pub(super) fn drained(&mut self, id: ConnectionId) {
        self.pacing.drained(id);
        self.resume_publishers(id);
    }

    /// Sends a publisher its PUBACK or PUBCOMP, or holds it back while sessions its
    /// message went to are behind. Held acknowledgements keep their order: once one
    /// is held, the following ones wait behind it.
    pub(super) fn acknowledge(&mut self, id: ConnectionId, ack: Packet, behind: Vec<ClientKey>) {
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
            let entry = self.sessions.get(&key);
            self.pacing.wait_for(key, id, entry, now);
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
    pub(super) fn half_queue(&self) -> usize {
        (self.limits.max_queued_messages / 2).max(1)
    }

    /// Whether session `key` holds publishers back now: connected, acknowledging,
    /// with at least half its queue used, and not behind for longer than the
    /// pacing ceiling.
    pub(super) fn is_behind(&self, key: &ClientKey, now: Instant) -> bool {
        self.sessions.get(key).is_some_and(|entry| {
            self.pacing.is_working(entry, now)
                && entry.session.footprint().queued >= self.half_queue()
        })
    }

    /// Session `key` no longer holds anyone back (it stopped acknowledging, went
    /// offline or is gone): publishers that waited only for it get all their held
    /// acknowledgements.
    pub(super) fn release_publishers(&mut self, key: &ClientKey) {
        for id in self.pacing.release(key) {
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
    pub(super) fn check_behind(&mut self, key: &ClientKey, now: Instant) {
        let working = self
            .sessions
            .get(key)
            .is_some_and(|entry| self.pacing.is_working(entry, now));
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
        let mut turns = self.pacing.turns(key);
        while budget > 0 && turns > 0 {
            turns -= 1;
            let Some(id) = self.pacing.next_turn(key) else {
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
                self.pacing.another_turn(key, id);
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
            } else if self.pacing.holds_back(key) {
                self.pacing.another_turn(key, id);
                turns += 1;
            }
            self.send(id, ack);
            budget -= 1;
        }
        self.pacing.tidy(key);
    }

    /// Logs and counts, once per episode, a connected session that has been behind
    /// for longer than the pacing ceiling and no longer holds its publishers back.
    fn give_up_pacing(&mut self, key: &ClientKey, now: Instant) {
        let Some(entry) = self.sessions.get_mut(key) else {
            return;
        };
        let over_ceiling = entry.connection.is_some() && self.pacing.over_ceiling(entry, now);
        if over_ceiling && self.pacing.holds_back(key) {
            self.counters.limit_reached(Limit::SlowSubscriber);
            if entry.first_time(Limit::SlowSubscriber) && self.limit_log.allow(now) {
                log::warn!(
                    "Client {key} has been behind for {:?}: its publishers go on \
                     without it, and what does not fit its queue is dropped.",
                    self.pacing.ceiling
                );
            }
        }
    }

    /// Pauses the reader of `publisher`, whose QoS 0 message went into the crowded
    /// outboxes of `crowded`, until they have drained. A connection's own messages
    /// never pause it (its reader and writer would wait for each other), and a
    /// connection that stalled pauses nobody.
    pub(super) fn pause_publisher(&mut self, publisher: ConnectionId, crowded: Vec<ConnectionId>) {
        let now = Instant::now();
        for subscriber in crowded {
            if subscriber == publisher || !self.pacing.may_pause(subscriber) {
                continue;
            }
            if !self.pacing.is_crowded(subscriber) {
                let watching = self
                    .connections
                    .get(&subscriber)
                    .is_some_and(|connection| connection.outbox.watch_for_drain());
                if !watching {
                    continue; // Drained already.
                }
                self.pacing.crowd(subscriber, now);
            }
            self.pause(publisher, subscriber);
        }
    }

    /// Pauses `publisher` until `subscriber`'s crowded outbox drains.
    fn pause(&mut self, publisher: ConnectionId, subscriber: ConnectionId) {
        let Some(connection) = self.connections.get_mut(&publisher) else {
            return;
        };
        if self.pacing.pause(publisher, subscriber) {
            connection.paused_for += 1;
            connection.gate.close();
        }
    }

    /// Lets go the publishers paused for connection `id`'s outbox: it drained, it
    /// stalled, or it is gone.
    fn resume_publishers(&mut self, id: ConnectionId) {
        for publisher in self.pacing.uncrowd(id) {
            let Some(connection) = self.connections.get_mut(&publisher) else {
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
    pub(super) fn stall_tick(&mut self, now: Instant) {
        if self.pacing.deadline().is_some_and(|check| check <= now) {
            let keys: Vec<ClientKey> = self.pacing.behind.keys().cloned().collect();
            for key in keys {
                self.check_behind(&key, now);
            }
            for id in self.pacing.stall_overdue(now) {
                log::debug!(
                    "Connection {id} did not drain within {:?}: its publishers go on.",
                    self.pacing.stall_timeout
                );
                self.resume_publishers(id);
            }
            self.pacing.replan(&self.sessions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::*;
    use super::{Pacing, SessionEntry};
    use crate::broker::hashing::ClientMap;
    use crate::broker::session::Session;
    use crate::broker::subs::ClientKey;

    fn connected_entry(now: Instant) -> SessionEntry {
        let mut entry = SessionEntry::new(Session::new(false, 2, 4), None, now);
        entry.connection = Some(1);
        entry
    }

    #[test]
    fn a_publisher_takes_one_turn_per_session_however_often_it_waits() {
        let mut pacing = Pacing::new();
        let now = Instant::now();
        let key = ClientKey::new("s");
        let entry = connected_entry(now);
        pacing.wait_for(key.clone(), 7, Some(&entry), now);
        pacing.wait_for(key.clone(), 7, Some(&entry), now);
        pacing.wait_for(key.clone(), 8, Some(&entry), now);
        assert_eq!(pacing.turns(&key), 2);
        assert_eq!(pacing.next_turn(&key), Some(7));
        pacing.another_turn(&key, 7);
        assert_eq!(pacing.next_turn(&key), Some(8));
        assert_eq!(pacing.next_turn(&key), Some(7));
        pacing.tidy(&key);
        assert!(!pacing.holds_back(&key));
    }

    #[test]
    fn a_session_gives_up_at_the_stall_timeout_or_the_ceiling_whichever_is_sooner() {
        let mut pacing = Pacing::new();
        pacing.stall_timeout = Duration::from_secs(1);
        pacing.ceiling = Duration::from_secs(5);
        let now = Instant::now();
        let mut entry = connected_entry(now);
        assert_eq!(pacing.gives_up_at(&entry), now + Duration::from_secs(1));
        entry.behind_since = Some(now - Duration::from_secs(10));
        assert_eq!(pacing.gives_up_at(&entry), now - Duration::from_secs(5));
        assert!(pacing.over_ceiling(&entry, now));
        assert!(!pacing.is_working(&entry, now));

        entry.behind_since = None;
        assert!(pacing.is_working(&entry, now));
        assert!(!pacing.is_working(&entry, now + Duration::from_secs(1)));
        entry.connection = None;
        assert!(
            !pacing.is_working(&entry, now),
            "an offline session paces nobody"
        );
    }

    #[test]
    fn a_crowded_outbox_that_does_not_drain_in_time_stalls_and_pauses_nobody() {
        let mut pacing = Pacing::new();
        let now = Instant::now();
        pacing.crowd(1, now);
        assert_eq!(pacing.deadline(), Some(now + pacing.stall_timeout));
        assert!(pacing.pause(2, 1));
        assert!(!pacing.pause(2, 1), "paused once per crowded outbox");
        assert!(!pacing.pause(2, 3), "only a crowded outbox pauses");

        assert!(pacing.stall_overdue(now).is_empty());
        assert_eq!(pacing.stall_overdue(now + pacing.stall_timeout), [1]);
        assert!(!pacing.may_pause(1));
        assert_eq!(pacing.uncrowd(1).into_iter().collect::<Vec<_>>(), [2]);
        pacing.replan(&ClientMap::default());
        assert_eq!(pacing.deadline(), None, "nothing left to wait for");

        pacing.drained(1);
        assert!(pacing.may_pause(1));
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
        h.state.pacing.stall_timeout = Duration::from_millis(10);
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
        h.state.pacing.stall_timeout = Duration::from_secs(3600);
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
        h.state.pacing.stall_timeout = Duration::from_secs(3600);
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
        assert!(h.state.pacing.behind.is_empty());
    }

    #[test]
    fn a_subscriber_going_offline_releases_its_publishers() {
        let mut h = Harness::new();
        h.state.pacing.stall_timeout = Duration::from_secs(3600);
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

    #[test]
    fn a_subscriber_behind_for_longer_than_the_ceiling_stops_pacing_its_publishers() {
        let mut h = Harness::new();
        h.state.pacing.stall_timeout = Duration::from_secs(3600);
        h.state.pacing.ceiling = Duration::from_secs(10);
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
        assert!(h.state.pacing.behind.is_empty());
        assert_eq!(limit_count(&h, Limit::SlowSubscriber), 1);
    }
}
