//! What waits for the store: the router's half of group commit.
//!
//! While it handles a batch of events, the router writes down every change to what
//! must survive ([`Change`]): retained messages and session records directly, and
//! the changes sessions make to their QoS 1/2 state, collected from the sessions it
//! touched. At the end of the batch the changes go to the storage thread as one
//! commit, unless one is already under way (then they wait, and go as soon as it
//! returns: group commit, one commit in flight and the next one growing).
//!
//! Packets that acknowledge a change, and the QoS 2 PUBLISH and PUBREL packets to a
//! persistent session's client, wait until the commit that holds everything written
//! down before them returns ([`Durable::wait_for`]): a packet waits for all that
//! came before it, not only its own change, which is simpler and costs at most one
//! commit more. Packets behind them on the same connection wait too, so the order
//! on each connection stays as it was made. A failed commit keeps them waiting: its
//! changes go again with the next commit, a second later.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::time::{Duration, Instant};

use crate::broker::hashing::{IdHasher, IdSet};
use crate::broker::session::SessionChange;
use crate::broker::store::{Change, Commit, StorageThread, StoredMessage};
use crate::broker::subs::ClientKey;
use crate::protocol::{Packet, QoS};

/// How long after a failed commit the next one is tried.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Packets one connection may have waiting for a commit before it is closed: a
/// client that keeps publishing while the store cannot commit would otherwise
/// grow them without bound.
pub(super) const MAX_WAITING_PACKETS: usize = 16_384;

/// Payload bytes waiting for a commit on one connection beyond which QoS 0
/// messages for it are dropped (and counted), as when its outbox is full.
pub(super) const MAX_WAITING_QOS0_BYTES: usize = 1024 * 1024;

/// Changes on their way to the store, and the commits under way.
pub(super) struct Durable {
    thread: StorageThread,
    /// Changes written down since the last commit was sent; `None` where one was
    /// cancelled by a later one (see `record_session`).
    pending: Vec<Option<Change>>,
    /// Where each message put in `pending` is, and whether it entered its session
    /// in this batch, to cancel it if the message is done before the batch is
    /// sent.
    puts: HashMap<(ClientKey, u64), (usize, bool), BuildHasherDefault<IdHasher>>,
    /// Where each session record in `pending` is: a later record of the same
    /// session replaces it (a client reconnecting in a loop while the store
    /// cannot commit adds one record, not one per connection).
    records: HashMap<String, usize>,
    /// Sessions whose own changes are still to be collected into `pending`.
    pub(super) touched: Vec<ClientKey>,
    /// The number the batch `pending` becomes when it is sent.
    next_batch: u64,
    /// The batch under way, if any.
    committing: Option<u64>,
    /// The last batch known durable.
    committed: u64,
    /// After a failure: no commit before this.
    retry_at: Option<Instant>,
    /// Connections with packets waiting for a commit.
    pub(super) waiting: IdSet,
    /// Failed commits so far, for the log.
    failures: u64,
    /// Set when the storage thread is gone with a batch: that batch never became
    /// durable.
    lost: bool,
    /// Set when a packet is sent ahead of the changes it acknowledges (the PUBREC
    /// of a QoS 2 message goes before its copies): the next batch is committed
    /// even if it turns out empty.
    forced: bool,
}

impl Durable {
    pub(super) fn new(thread: StorageThread) -> Durable {
        Durable {
            thread,
            pending: Vec::new(),
            puts: HashMap::default(),
            records: HashMap::new(),
            touched: Vec::new(),
            next_batch: 1,
            committing: None,
            committed: 0,
            retry_at: None,
            waiting: IdSet::default(),
            failures: 0,
            lost: false,
            forced: false,
        }
    }

    /// Writes down a change.
    pub(super) fn record(&mut self, change: Change) {
        match &change {
            Change::RemoveSession(_) => {
                // A new session under the same identifier numbers its messages
                // afresh: they must not cancel the old one's.
                self.puts.clear();
            }
            Change::Session(record) => {
                let at = self.pending.len();
                if let Some(earlier) = self.records.insert(record.client_id.clone(), at) {
                    self.pending[earlier] = None;
                }
            }
            _ => {}
        }
        self.pending.push(Some(change));
    }

    /// Writes down what a session changed. A message that enters a session and is
    /// done again before the batch is sent (a QoS 1 message acknowledged within one
    /// commit's time, which under load is most of them) never reaches the store:
    /// its changes cancel. A later state of a message replaces an earlier one of
    /// the same batch; the removal of a message stored by an earlier batch is
    /// always written.
    pub(super) fn record_session(&mut self, client: &ClientKey, changes: Vec<SessionChange>) {
        for change in changes {
            let change = match change {
                SessionChange::Add(seq, message) => self.put(client, seq, message, true),
                SessionChange::Put(seq, message) => self.put(client, seq, message, false),
                SessionChange::Remove(seq) => {
                    if let Some((put, new_here)) = self.puts.remove(&(client.clone(), seq)) {
                        self.pending[put] = None;
                        if new_here {
                            continue;
                        }
                    }
                    Change::RemoveMessage {
                        client_id: client.to_string(),
                        seq,
                    }
                }
                SessionChange::Receive(packet_id) => Change::Receive {
                    client_id: client.to_string(),
                    packet_id,
                },
                SessionChange::Release(packet_id) => Change::Release {
                    client_id: client.to_string(),
                    packet_id,
                },
            };
            self.pending.push(Some(change));
        }
    }

    /// The change that puts a message in the store, noting where it is. `added`
    /// says the message entered its session just now (nothing of it is stored
    /// yet); a put after another of the same batch keeps that one's answer.
    fn put(&mut self, client: &ClientKey, seq: u64, message: StoredMessage, added: bool) -> Change {
        let at = self.pending.len();
        let key = (client.clone(), seq);
        let new_here = match self.puts.get(&key) {
            Some(&(earlier, new_here)) => {
                self.pending[earlier] = None;
                new_here
            }
            None => added,
        };
        self.puts.insert(key, (at, new_here));
        Change::PutMessage {
            client_id: client.to_string(),
            seq,
            message,
        }
    }

    /// Says that changes are about to be written down which a packet sent now
    /// acknowledges: that packet waits for the batch that will hold them.
    pub(super) fn expect_changes(&mut self) {
        self.forced = true;
    }

    /// The batch a packet sent now must wait for: the one that will hold what is
    /// written down so far, or the one under way; `None` when everything written
    /// down is durable already.
    pub(super) fn wait_for(&self) -> Option<u64> {
        if self.forced || !self.pending.is_empty() || !self.touched.is_empty() {
            Some(self.next_batch)
        } else {
            self.committing
        }
    }

    /// Whether `packet` waits for the store before it leaves: acknowledgements of
    /// changes, and what a persistent session's client is sent about its QoS 2
    /// messages, so that a crash cannot make it receive one twice (a QoS 2 PUBLISH
    /// sent before its state is durable could be sent again, as new, after a
    /// restart; a PUBREL likewise). A QoS 1 copy leaves at once: after a crash it
    /// may come again, which QoS 1 allows, and not waiting keeps the subscriber's
    /// window moving.
    pub(super) fn must_wait(packet: &Packet, persistent: bool) -> bool {
        match packet {
            Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubComp(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::ConnAck(_) => true,
            Packet::Publish(publish) => persistent && publish.qos == QoS::ExactlyOnce,
            Packet::PubRel(_) => persistent,
            _ => false,
        }
    }

    /// Sends what is written down, if no commit is under way (and none failed a
    /// moment ago). Returns whether a commit was sent.
    pub(super) fn send_batch(&mut self, now: Instant) -> bool {
        if self.committing.is_some() || (self.pending.is_empty() && !self.forced) {
            return false;
        }
        if self.retry_at.is_some_and(|at| at > now) {
            return false;
        }
        self.retry_at = None;
        self.forced = false;
        let batch = self.next_batch;
        self.next_batch += 1;
        self.committing = Some(batch);
        self.puts.clear();
        self.records.clear();
        let changes = std::mem::take(&mut self.pending)
            .into_iter()
            .flatten()
            .collect();
        self.thread.send(batch, changes);
        true
    }

    /// A commit came back. Returns the batch now durable, if it succeeded.
    pub(super) fn finished(&mut self, commit: Commit, now: Instant) -> Option<u64> {
        if self.committing == Some(commit.batch) {
            self.committing = None;
        }
        match commit.result {
            Ok(()) => {
                if self.failures > 0 {
                    log::info!(
                        "The store {} commits again after {} failed attempts.",
                        self.thread.describe(),
                        self.failures
                    );
                    self.failures = 0;
                }
                self.committed = self.committed.max(commit.batch);
                Some(self.committed)
            }
            Err(error) => {
                self.failures += 1;
                if self.failures == 1 || self.failures.is_power_of_two() {
                    log::error!(
                        "Cannot commit to the store {} ({error}); acknowledgements are withheld \
                         and the commit is tried again (attempt {}).",
                        self.thread.describe(),
                        self.failures
                    );
                }
                // They go first next time, before what came since. (The positions
                // of the puts move, so those written since are no longer
                // cancelled: they are written and removed, which is only slower.)
                let mut retry: Vec<Option<Change>> = commit.changes.into_iter().map(Some).collect();
                retry.append(&mut self.pending);
                self.pending = retry;
                self.puts.clear();
                self.records.clear();
                self.retry_at = Some(now + RETRY_AFTER);
                None
            }
        }
    }

    /// When the router must wake up to try a failed commit again.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Where commits come back.
    pub(super) fn commits(&self) -> crossbeam_channel::Receiver<Commit> {
        self.thread.commits.clone()
    }

    /// At shutdown: commits everything written down and waits for it (and for the
    /// commit under way), then stops the storage thread. Returns whether all of it
    /// is durable.
    pub(super) fn finish(&mut self) -> bool {
        // A failing store gets a few more tries, not an endless wait at shutdown.
        for _ in 0..3 {
            self.wait_for_commit();
            if self.pending.is_empty() {
                break;
            }
            self.retry_at = None;
            self.send_batch(Instant::now());
        }
        self.wait_for_commit();
        let durable = !self.lost && self.committing.is_none() && self.pending.is_empty();
        self.thread.stop();
        durable
    }

    fn wait_for_commit(&mut self) {
        if self.committing.is_some() {
            match self.thread.commits.recv() {
                Ok(commit) => {
                    self.finished(commit, Instant::now());
                }
                Err(_) => {
                    self.committing = None;
                    self.lost = true;
                }
            }
        }
    }
}

/// Packets of one connection waiting for commits, oldest first, each with the batch
/// it waits for.
#[derive(Default)]
pub(super) struct WaitingPackets {
    packets: VecDeque<(u64, Packet)>,
    /// Payload bytes of the PUBLISH packets among them.
    bytes: usize,
}

impl WaitingPackets {
    pub(super) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.packets.len()
    }

    /// The batch the newest packet waits for.
    pub(super) fn last_batch(&self) -> Option<u64> {
        self.packets.back().map(|(batch, _)| *batch)
    }

    /// Whether a QoS 0 message would have to wait behind too much already.
    pub(super) fn full_for_qos0(&self) -> bool {
        !self.packets.is_empty() && self.bytes >= MAX_WAITING_QOS0_BYTES
    }

    pub(super) fn push(&mut self, batch: u64, packet: Packet) {
        self.bytes += payload_len(&packet);
        self.packets.push_back((batch, packet));
    }

    /// The oldest packet, if it waits for `batch` or an earlier one.
    pub(super) fn pop_ready(&mut self, batch: u64) -> Option<Packet> {
        if self.packets.front()?.0 > batch {
            return None;
        }
        let (_, packet) = self.packets.pop_front()?;
        self.bytes -= payload_len(&packet);
        Some(packet)
    }
}

fn payload_len(packet: &Packet) -> usize {
    match packet {
        Packet::Publish(publish) => publish.payload.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::super::harness::*;
    use crate::broker::store::{Change, Storage, StorageError, StoredMessage, StoredState};

    fn acks(packets: &[Packet]) -> Vec<&Packet> {
        packets
            .iter()
            .filter(|p| matches!(p, Packet::PubAck(_) | Packet::PubRec(_) | Packet::SubAck(_)))
            .collect()
    }

    /// A persistent subscriber to `t` and a clean publisher, everything committed.
    fn subscriber_and_publisher(h: &mut Harness) -> (Client, Client) {
        let sub = h.connect("sub", false);
        h.subscribe(&sub, "t", QoS::ExactlyOnce);
        h.commit();
        sub.received();
        let publisher = h.connect("pub", true);
        h.commit();
        publisher.received();
        (sub, publisher)
    }

    #[test]
    fn a_pubrec_and_the_qos_2_copies_for_persistent_sessions_wait_for_the_commit() {
        let store = MemoryStorage::new();
        let mut h = Harness::with_store(store.clone());
        let (sub, publisher) = subscriber_and_publisher(&mut h);

        h.publish(&publisher, "t", "m", QoS::ExactlyOnce, false, 1);
        assert!(
            publisher.received().is_empty(),
            "no PUBREC before the commit"
        );
        assert!(sub.received().is_empty(), "no copy before the commit");

        h.commit();
        assert_eq!(
            publisher.received(),
            vec![Packet::PubRec(PubRec::new(pid(1)))]
        );
        assert_eq!(publishes(&sub.received()).len(), 1);
        let stored = store.contents();
        assert!(matches!(
            stored.sessions[0].messages[..],
            [(_, StoredMessage::Sent(_))]
        ));
    }

    #[test]
    fn a_qos_1_copy_leaves_at_once_and_its_puback_waits() {
        let mut h = Harness::with_store(MemoryStorage::new());
        let (sub, publisher) = subscriber_and_publisher(&mut h);
        h.publish(&publisher, "t", "m", QoS::AtLeastOnce, false, 1);
        assert_eq!(publishes(&sub.received()).len(), 1);
        assert!(publisher.received().is_empty());
        h.commit();
        assert_eq!(
            publisher.received(),
            vec![Packet::PubAck(PubAck::new(pid(1)))]
        );
    }

    #[test]
    fn qos_0_to_a_clean_session_never_waits_and_keeps_its_place_elsewhere() {
        let mut h = Harness::with_store(MemoryStorage::new());
        let (sub, publisher) = subscriber_and_publisher(&mut h);
        let clean = h.connect("clean", true);
        h.subscribe(&clean, "t", QoS::AtMostOnce);
        h.commit();
        clean.received();

        // A QoS 2 message makes a change to wait for, then a QoS 0 one follows.
        h.publish(&publisher, "t", "two", QoS::ExactlyOnce, false, 1);
        h.publish(&publisher, "t", "zero", QoS::AtMostOnce, false, 0);
        let got = clean.received();
        assert_eq!(
            publishes(&got).len(),
            2,
            "the clean subscriber got both at once"
        );
        assert!(sub.received().is_empty());
        h.commit();
        // The persistent subscriber's QoS 0 copy waited behind its QoS 2 one.
        let got = sub.received();
        let payloads: Vec<_> = publishes(&got).iter().map(|p| p.payload.clone()).collect();
        assert_eq!(payloads, vec![Bytes::from("two"), Bytes::from("zero")]);
    }

    /// A memory store that keeps every change it is given.
    #[derive(Clone, Default)]
    struct Recording {
        inner: MemoryStorage,
        seen: Arc<parking_lot::Mutex<Vec<Change>>>,
    }

    impl Storage for Recording {
        fn load(&mut self) -> Result<StoredState, StorageError> {
            self.inner.load()
        }
        fn commit(&mut self, changes: &[Change]) -> Result<(), StorageError> {
            self.seen.lock().extend_from_slice(changes);
            self.inner.commit(changes)
        }
        fn describe(&self) -> String {
            "recording".into()
        }
    }

    fn harness_on(store: impl Storage + 'static) -> Harness {
        let mut h = Harness::with_limits(limits());
        h.state = RouterState::new(
            limits(),
            &SysConfig {
                interval: Duration::ZERO,
                ..SysConfig::default()
            },
            Hooks::default(),
            Arc::new(Counters::default()),
            Some(Box::new(store)),
        )
        .unwrap();
        h
    }

    #[test]
    fn a_message_acknowledged_before_its_batch_is_sent_never_reaches_the_store() {
        let recording = Recording::default();
        let mut h = harness_on(recording.clone());
        let (sub, publisher) = subscriber_and_publisher(&mut h);
        recording.seen.lock().clear();
        h.publish(&publisher, "t", "m", QoS::AtLeastOnce, false, 1);
        let sent = publishes(&sub.received())[0].packet_id.unwrap();
        h.packet(&sub, Packet::PubAck(PubAck::new(sent)));
        h.commit();
        assert_eq!(
            publisher.received(),
            vec![Packet::PubAck(PubAck::new(pid(1)))]
        );
        let seen = recording.seen.lock();
        assert!(
            !seen
                .iter()
                .any(|c| matches!(c, Change::PutMessage { .. } | Change::RemoveMessage { .. })),
            "{seen:?}"
        );
    }

    #[test]
    fn a_message_stored_by_an_earlier_batch_is_removed_when_done() {
        let store = MemoryStorage::new();
        let mut h = Harness::with_store(store.clone());
        let (sub, publisher) = subscriber_and_publisher(&mut h);
        // Two go out at once (the window holds two), the third is queued.
        for (packet_id, payload) in [(1, "a"), (2, "b"), (3, "c")] {
            h.publish(&publisher, "t", payload, QoS::AtLeastOnce, false, packet_id);
        }
        h.commit();
        assert_eq!(store.contents().sessions[0].messages.len(), 3);
        // In the next batch the third is sent and all three are acknowledged.
        for round in 0..2 {
            for publish in publishes(&sub.received()) {
                h.packet(
                    &sub,
                    Packet::PubAck(PubAck::new(publish.packet_id.unwrap())),
                );
            }
            assert!(round == 0 || sub.received().is_empty());
        }
        h.commit();
        assert!(
            store.contents().sessions[0].messages.is_empty(),
            "{:?}",
            store.contents()
        );
    }

    #[test]
    fn a_session_made_again_after_a_clean_one_stores_only_its_own_messages() {
        let recording = Recording::default();
        let mut h = harness_on(recording.clone());
        let (sub, publisher) = subscriber_and_publisher(&mut h);
        h.disconnect(&sub, DisconnectReason::ConnectionLost("test".into()));
        h.publish(&publisher, "t", "old", QoS::AtLeastOnce, false, 1);
        h.commit();
        // A clean session throws the old one away; a persistent one made after it
        // numbers its messages from 1 again, and only its own are stored.
        let again = h.connect("sub", true);
        again.received();
        h.commit();
        let fresh = h.connect("sub", false);
        h.subscribe(&fresh, "t", QoS::AtLeastOnce);
        h.publish(&publisher, "t", "new", QoS::AtLeastOnce, false, 2);
        h.disconnect(&fresh, DisconnectReason::ConnectionLost("test".into()));
        h.commit();
        let stored = recording.inner.contents();
        assert_eq!(stored.sessions.len(), 1);
        assert_eq!(stored.sessions[0].messages.len(), 1, "{stored:?}");
    }

    #[test]
    fn a_client_reconnecting_within_one_batch_adds_one_session_record() {
        let recording = Recording::default();
        let mut h = harness_on(recording.clone());
        for _ in 0..5 {
            let client = h.connect("restless", false);
            h.disconnect(&client, DisconnectReason::ConnectionLost("test".into()));
        }
        h.commit();
        let seen = recording.seen.lock();
        let records = seen
            .iter()
            .filter(|c| matches!(c, Change::Session(_)))
            .count();
        assert_eq!(records, 1, "{seen:?}");
        assert_eq!(recording.inner.contents().sessions.len(), 1);
    }

    #[test]
    fn suback_waits_for_the_commit_of_the_subscription() {
        let mut h = Harness::with_store(MemoryStorage::new());
        let sub = h.connect("sub", false);
        h.commit();
        sub.received();
        h.subscribe(&sub, "a/#", QoS::AtLeastOnce);
        assert!(acks(&sub.received()).is_empty());
        h.commit();
        assert_eq!(acks(&sub.received()).len(), 1);
    }

    #[test]
    fn a_router_started_on_the_store_has_what_was_acknowledged() {
        let store = MemoryStorage::new();
        {
            let mut h = Harness::with_store(store.clone());
            let (sub, publisher) = subscriber_and_publisher(&mut h);
            h.disconnect(&sub, DisconnectReason::ConnectionLost("test".into()));
            h.publish(&publisher, "t", "one", QoS::AtLeastOnce, false, 1);
            h.publish(&publisher, "t", "two", QoS::ExactlyOnce, false, 2);
            h.publish(&publisher, "kept", "r", QoS::AtMostOnce, true, 0);
            h.commit();
            assert_eq!(acks(&publisher.received()).len(), 2);
            // No shutdown: as after a crash, only what was committed is there.
        }
        let mut h = Harness::with_store(store);
        let publisher = h.connect("pub2", true);
        // The restored session receives while its client is away.
        h.publish(&publisher, "t", "three", QoS::AtLeastOnce, false, 1);
        h.commit();
        let sub = h.connect("sub", false);
        h.commit();
        let got = sub.received();
        assert_eq!(
            got.first(),
            Some(&Packet::ConnAck(ConnAck::accepted(true))),
            "{got:?}"
        );
        let payloads: Vec<_> = publishes(&got).iter().map(|p| p.payload.clone()).collect();
        assert_eq!(payloads, vec![Bytes::from("one"), Bytes::from("two")]);
        // The third waits for room in the window (max 2 in flight).
        assert_eq!(h.state.retained.len(), 1);
    }

    #[test]
    fn a_qos_2_message_past_pubrec_comes_back_as_pubrel() {
        let store = MemoryStorage::new();
        {
            let mut h = Harness::with_store(store.clone());
            let (sub, publisher) = subscriber_and_publisher(&mut h);
            h.publish(&publisher, "t", "m", QoS::ExactlyOnce, false, 1);
            h.commit();
            let sent = publishes(&sub.received())[0].packet_id.unwrap();
            h.packet(&sub, Packet::PubRec(PubRec::new(sent)));
            h.commit();
            assert_eq!(sub.received(), vec![Packet::PubRel(PubRel::new(sent))]);
        }
        let mut h = Harness::with_store(store);
        let sub = h.connect("sub", false);
        h.commit();
        let got = sub.received();
        assert!(publishes(&got).is_empty(), "not sent again: {got:?}");
        assert!(
            got.iter().any(|p| matches!(p, Packet::PubRel(_))),
            "{got:?}"
        );
    }

    #[test]
    fn a_removed_session_leaves_nothing_in_the_store() {
        let store = MemoryStorage::new();
        let mut h = Harness::with_store(store.clone());
        let (sub, publisher) = subscriber_and_publisher(&mut h);
        h.disconnect(&sub, DisconnectReason::ConnectionLost("test".into()));
        h.publish(&publisher, "t", "m", QoS::AtLeastOnce, false, 1);
        h.commit();
        assert_eq!(store.contents().sessions.len(), 1);
        // A clean session with the same identifier throws the stored one away.
        let again = h.connect("sub", true);
        h.commit();
        again.received();
        assert_eq!(store.contents(), StoredState::default());
    }

    /// A memory store that fails while `failing` is set.
    #[derive(Clone, Default)]
    struct Flaky {
        inner: MemoryStorage,
        failing: Arc<AtomicBool>,
    }

    impl Storage for Flaky {
        fn load(&mut self) -> Result<StoredState, StorageError> {
            self.inner.load()
        }
        fn commit(&mut self, changes: &[Change]) -> Result<(), StorageError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(StorageError::Backend("the disk is full".into()));
            }
            self.inner.commit(changes)
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    #[test]
    fn a_failed_commit_withholds_the_acknowledgement_until_a_retry_succeeds() {
        let flaky = Flaky::default();
        let mut h = harness_on(flaky.clone());
        let (_sub, publisher) = subscriber_and_publisher(&mut h);
        flaky.failing.store(true, Ordering::SeqCst);
        h.publish(&publisher, "t", "m", QoS::AtLeastOnce, false, 1);
        h.state.end_batch(false);
        let commits = h.state.durable.as_ref().unwrap().commits();
        let failed = commits.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(failed.result.is_err());
        h.state.committed(failed);
        assert!(
            publisher.received().is_empty(),
            "no PUBACK after a failed commit"
        );
        assert!(flaky.inner.contents().sessions[0].messages.is_empty());

        flaky.failing.store(false, Ordering::SeqCst);
        // The retry waits a second after the failure; then it carries the change.
        let deadline = Instant::now() + Duration::from_secs(10);
        while publisher.received().is_empty() {
            assert!(Instant::now() < deadline, "the retry never came");
            std::thread::sleep(Duration::from_millis(50));
            h.state.end_batch(false);
            if let Ok(commit) = commits.try_recv() {
                h.state.committed(commit);
            }
        }
        assert_eq!(flaky.inner.contents().sessions[0].messages.len(), 1);
        let stats = h.state.counters.snapshot(Duration::ZERO);
        assert_eq!(stats.store_failures, 1, "the failure is counted");
        assert!(stats.store_commits >= 1);
    }
}
