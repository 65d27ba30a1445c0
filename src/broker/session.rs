//! A client's session: what the broker remembers about one client identifier.
//!
//! A session holds the state of the client's QoS 1 and 2 exchanges (section 4.1).
//! It outlives the network connection when the client asked for a persistent
//! session (CleanSession=0) and dies with it otherwise. Its subscriptions are kept
//! with everyone else's, in [`Subscriptions`](super::subs::Subscriptions).
//!
//! The QoS machinery is plain data driven by the router; nothing here touches a
//! socket, a thread or a clock, so every rule is tested directly below.
//!
//! Outbound (broker to client), per message:
//!
//! ```text
//! QoS 1:  queued -> PUBLISH sent -> PUBACK received (done)
//! QoS 2:  queued -> PUBLISH sent -> PUBREC received, PUBREL sent -> PUBCOMP received (done)
//! ```
//!
//! At most `max_inflight` messages are between "sent" and "done"; the rest wait in
//! the queue (at most `max_queued` messages and `max_queued_bytes` of topic and
//! payload, then new ones are dropped and counted). A queued message is compacted
//! into its own allocation, so that it does not keep the read buffer it arrived in
//! alive while it waits. Each sent
//! message holds a packet identifier not used by any other unacknowledged message
//! [MQTT-2.3.1-4]. On reconnection the unacknowledged ones are sent again, PUBLISH with
//! DUP=1, or PUBREL for those already PUBREC'd [MQTT-4.4.0-1], in their original order.
//!
//! Inbound (client to broker), QoS 2: the packet identifier of a PUBLISH is kept from
//! the PUBREC until the PUBREL, and a PUBLISH that repeats it meanwhile is answered but
//! not delivered again [MQTT-4.3.3-2].
//!
//! With a store, a persistent session writes down each change to its QoS 1/2 state
//! as a [`SessionChange`] (see [`Session::journal`]); the router collects them into
//! the batch the storage thread commits. Each QoS 1/2 message gets a sequence number
//! when it enters the session, which names it in the store and orders it there.
//! QoS 0 messages are never written down.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::broker::store::StoredMessage;
use crate::protocol::{PacketId, Publish, QoS};

/// One change to a session's QoS 1/2 state, to be made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionChange {
    /// A message entered the session (queued, or sent at once).
    Add(u64, StoredMessage),
    /// A message moved on (sent, released).
    Put(u64, StoredMessage),
    /// A message is done (acknowledged) or dropped.
    Remove(u64),
    /// An inbound QoS 2 packet identifier is held until its PUBREL.
    Receive(PacketId),
    /// A PUBREL released an inbound packet identifier.
    Release(PacketId),
}

/// Where an unacknowledged outbound message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inflight {
    /// A QoS 1 PUBLISH waiting for its PUBACK, or a QoS 2 one waiting for its PUBREC.
    Publish(Publish),
    /// A QoS 2 message whose PUBREC arrived: PUBREL sent, waiting for PUBCOMP.
    PubRel(PacketId),
}

impl Inflight {
    fn packet_id(&self) -> Option<PacketId> {
        match self {
            Inflight::Publish(publish) => publish.packet_id,
            Inflight::PubRel(id) => Some(*id),
        }
    }
}

/// What became of a message handed to [`Session::deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Send this PUBLISH now (it holds its packet identifier).
    Send(Publish),
    /// The inflight window is full or the client is offline: it waits in the queue.
    Queued,
    /// The queue is full: the message is dropped.
    Dropped(QueueFull),
}

/// Which bound of the queue a dropped message met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueFull {
    /// `max_queued` messages.
    Messages,
    /// `max_queued_bytes` of topic and payload.
    Bytes,
}

/// Sets the Message Expiry Interval of `publish` to what is left of it at `now`,
/// rounded up to whole seconds; returns `false` when `now` is past its expiry (it
/// expired). At the very instant of expiry it goes with an interval of 0.
pub(crate) fn set_remaining(publish: &mut Publish, expires: Instant, now: Instant) -> bool {
    if now > expires {
        return false;
    }
    let left = expires.saturating_duration_since(now);
    let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    if let Some(properties) = publish.properties.as_mut() {
        properties.message_expiry_interval = Some(seconds.min(u64::from(u32::MAX)) as u32);
    }
    true
}

/// The bytes a message holds in a queue: its topic and payload.
pub(crate) fn message_size(publish: &Publish) -> usize {
    publish.topic.len() + publish.payload.len()
}

/// One client's session.
#[derive(Debug)]
pub(crate) struct Session {
    /// Whether the session ends with its connection (CleanSession=1).
    pub(crate) clean: bool,
    /// Sent and unacknowledged, oldest first, with their sequence numbers.
    inflight: VecDeque<(u64, Inflight)>,
    /// Waiting for room in the inflight window, oldest first, with their sequence
    /// numbers (0 for QoS 0, which is never stored).
    queue: VecDeque<(u64, Publish, Option<Instant>)>,
    /// Inbound QoS 2 packet identifiers between PUBREC and PUBREL.
    awaiting_pubrel: HashSet<PacketId>,
    next_packet_id: u16,
    max_inflight: usize,
    max_queued: usize,
    max_queued_bytes: usize,
    /// Payload bytes of the inflight and queued messages.
    bytes: usize,
    /// Topic and payload bytes of the queued messages.
    queued_bytes: usize,
    /// Set while messages are being dropped, so the log says so once per episode.
    pub(crate) dropping: bool,
    /// The sequence number of the next QoS 1/2 message.
    next_seq: u64,
    /// Changes not yet taken by the router; `None` when nothing is stored.
    journal: Option<Vec<SessionChange>>,
    /// Whether the router was told of the changes in the journal already.
    announced: bool,
}

/// How much a session holds, for the broker's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    pub(crate) inflight: usize,
    pub(crate) queued: usize,
    pub(crate) bytes: usize,
}

impl Session {
    /// An empty session. `max_inflight` is at least 1.
    pub(crate) fn new(clean: bool, max_inflight: usize, max_queued: usize) -> Session {
        Session {
            clean,
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            awaiting_pubrel: HashSet::new(),
            next_packet_id: 1,
            max_inflight: max_inflight.max(1),
            max_queued,
            max_queued_bytes: usize::MAX,
            bytes: 0,
            queued_bytes: 0,
            dropping: false,
            next_seq: 1,
            journal: None,
            announced: false,
        }
    }

    /// Makes the session write down its changes for a store (a persistent session
    /// of a broker with one).
    pub(crate) fn with_journal(mut self) -> Session {
        self.journal = Some(Vec::new());
        self
    }

    /// Takes the changes written down since the last call.
    pub(crate) fn take_changes(&mut self) -> Vec<SessionChange> {
        self.announced = false;
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether changes wait to be taken that the router has not been told of yet:
    /// `true` once per batch of changes, so a session that takes a thousand
    /// messages in one batch is noted once, not a thousand times.
    pub(crate) fn announce_changes(&mut self) -> bool {
        let new = !self.announced && self.journal.as_ref().is_some_and(|j| !j.is_empty());
        self.announced |= new;
        new
    }

    /// Writes down a change, made only when the session keeps a journal: without
    /// a store, the messages are not even cloned for it.
    fn record(&mut self, change: impl FnOnce() -> SessionChange) {
        if let Some(journal) = &mut self.journal {
            journal.push(change());
        }
    }

    fn take_seq(&mut self, qos: QoS) -> u64 {
        if qos == QoS::AtMostOnce {
            return 0;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Sets how many QoS 1/2 messages may be sent and not yet acknowledged: the
    /// broker's `max-inflight-messages`, or an MQTT 5 client's smaller Receive
    /// Maximum. Messages already in flight stay; new ones wait for room.
    pub(crate) fn set_max_inflight(&mut self, max_inflight: usize) {
        self.max_inflight = max_inflight.max(1);
    }

    /// How many inbound QoS 2 packet identifiers wait for their PUBREL.
    pub(crate) fn awaiting_pubrel(&self) -> usize {
        self.awaiting_pubrel.len()
    }

    /// Whether an inbound QoS 2 message with `id` waits for its PUBREL.
    pub(crate) fn awaits_pubrel(&self, id: PacketId) -> bool {
        self.awaiting_pubrel.contains(&id)
    }

    /// Bounds the queue in topic and payload bytes as well as in messages.
    pub(crate) fn with_max_queued_bytes(mut self, max_queued_bytes: usize) -> Session {
        self.max_queued_bytes = max_queued_bytes;
        self
    }

    /// Hands a message to the session. `online` says whether it may be sent now.
    ///
    /// A QoS 0 message is held only behind others: while QoS 1/2 messages wait in
    /// the queue, it waits after them, so that a subscriber gets one publisher's
    /// messages in the order they were sent whatever their QoS [MQTT-4.6.0-6]. With
    /// nothing waiting it is sent at once, and it takes no inflight slot. The router
    /// never hands a session QoS 0 while its client is offline.
    #[cfg(test)]
    pub(crate) fn deliver(&mut self, publish: Publish, online: bool) -> Delivery {
        self.deliver_until(publish, online, None)
    }

    /// [`deliver`](Self::deliver) for an MQTT 5 message with a Message Expiry
    /// Interval, which `expires` then: if it is still queued by then, it is dropped
    /// instead of sent [MQTT-3.3.2-5]. The router makes the same two steps
    /// ([`send_now`](Self::send_now), then [`enqueue`](Self::enqueue)) itself, to
    /// copy a message it queues for many sessions once.
    #[cfg(test)]
    pub(crate) fn deliver_until(
        &mut self,
        publish: Publish,
        online: bool,
        expires: Option<Instant>,
    ) -> Delivery {
        match self.send_now(publish, online) {
            Ok(sent) => sent,
            Err(mut publish) => {
                publish.compact();
                self.enqueue(publish, expires)
            }
        }
    }

    /// The first half of [`deliver_until`](Self::deliver_until): takes `publish`
    /// to be sent at once if nothing waits before it and, for QoS 1/2, the client
    /// is online and the inflight window has room; otherwise gives it back, for
    /// [`enqueue`](Self::enqueue).
    pub(crate) fn send_now(
        &mut self,
        mut publish: Publish,
        online: bool,
    ) -> Result<Delivery, Publish> {
        publish.dup = false;
        if publish.qos == QoS::AtMostOnce && self.queue.is_empty() {
            publish.packet_id = None;
            return Ok(Delivery::Send(publish));
        }
        if online && self.queue.is_empty() && self.inflight.len() < self.max_inflight {
            if let Some(id) = self.allocate_packet_id() {
                publish.packet_id = Some(id);
                let seq = self.take_seq(publish.qos);
                self.record(|| SessionChange::Add(seq, StoredMessage::Sent(publish.clone())));
                self.inflight
                    .push_back((seq, Inflight::Publish(publish.clone())));
                self.bytes += publish.payload.len();
                return Ok(Delivery::Send(publish));
            }
        }
        Err(publish)
    }

    /// The second half of [`deliver_until`](Self::deliver_until): puts `publish`
    /// in the queue, or drops it if the queue is full. A queued message may wait
    /// long, so it should hold its own topic and payload, not slices of the buffer
    /// it was read into ([`Publish::compact`]); the router copies them once for
    /// every session that queues the message.
    pub(crate) fn enqueue(&mut self, mut publish: Publish, expires: Option<Instant>) -> Delivery {
        if self.queue.len() >= self.max_queued {
            return Delivery::Dropped(QueueFull::Messages);
        }
        let size = message_size(&publish);
        if self.queued_bytes.saturating_add(size) > self.max_queued_bytes {
            return Delivery::Dropped(QueueFull::Bytes);
        }
        publish.dup = false;
        publish.packet_id = None;
        let len = publish.payload.len();
        let seq = self.take_seq(publish.qos);
        if seq != 0 {
            self.record(|| SessionChange::Add(seq, StoredMessage::Queued(publish.clone())));
        }
        self.queue.push_back((seq, publish, expires));
        self.bytes += len;
        self.queued_bytes += size;
        Delivery::Queued
    }

    /// Moves queued messages into the inflight window while it has room, returning the
    /// PUBLISH packets to send. A message `allowed` refuses (the client may no
    /// longer read its topic) is dropped instead; the second value counts those.
    /// A message whose expiry has passed by `now` is dropped too [MQTT-3.3.2-5],
    /// and one that has not is sent with the time it has left [MQTT-3.3.2-6].
    pub(crate) fn fill_window(
        &mut self,
        now: Instant,
        mut allowed: impl FnMut(&Publish) -> bool,
    ) -> (Vec<Publish>, usize) {
        let mut out = Vec::new();
        let mut denied = 0;
        loop {
            let qos0_next = self
                .queue
                .front()
                .is_some_and(|(_, publish, _)| publish.qos == QoS::AtMostOnce);
            if !qos0_next && self.inflight.len() >= self.max_inflight {
                break;
            }
            let Some((seq, mut publish, expires)) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= message_size(&publish);
            let expired = expires.is_some_and(|expires| !set_remaining(&mut publish, expires, now));
            if expired || !allowed(&publish) {
                self.bytes -= publish.payload.len();
                denied += 1;
                if seq != 0 {
                    self.record(|| SessionChange::Remove(seq));
                }
                continue;
            }
            if qos0_next {
                // Waited only to keep its place; it needs no acknowledgement.
                self.bytes -= publish.payload.len();
                out.push(publish);
                continue;
            }
            let Some(id) = self.allocate_packet_id() else {
                self.queued_bytes += message_size(&publish);
                self.queue.push_front((seq, publish, expires));
                break;
            };
            publish.packet_id = Some(id);
            self.record(|| SessionChange::Put(seq, StoredMessage::Sent(publish.clone())));
            self.inflight
                .push_back((seq, Inflight::Publish(publish.clone())));
            out.push(publish);
        }
        (out, denied)
    }

    /// Drops the unacknowledged PUBLISH packets `allowed` refuses, before they are
    /// sent again to a client that may no longer read their topics. Returns how many
    /// were dropped. A QoS 2 message past PUBREC stays: the client has it already.
    pub(crate) fn drop_denied_inflight(
        &mut self,
        mut allowed: impl FnMut(&Publish) -> bool,
    ) -> usize {
        let before = self.inflight.len();
        let mut freed = 0;
        let mut removed = Vec::new();
        self.inflight.retain(|(seq, entry)| match entry {
            Inflight::Publish(publish) if !allowed(publish) => {
                freed += publish.payload.len();
                removed.push(*seq);
                false
            }
            _ => true,
        });
        self.bytes -= freed;
        for seq in removed {
            self.record(|| SessionChange::Remove(seq));
        }
        before - self.inflight.len()
    }

    /// Everything unacknowledged, to send again after a reconnection
    /// [MQTT-4.4.0-1]: PUBLISH with DUP=1, PUBREL as it was.
    pub(crate) fn resend(&mut self) -> Vec<Inflight> {
        self.inflight
            .iter_mut()
            .map(|(_, entry)| {
                if let Inflight::Publish(publish) = entry {
                    publish.dup = true;
                }
                entry.clone()
            })
            .collect()
    }

    /// A PUBACK arrived. Returns `false` if no QoS 1 message waited for it.
    pub(crate) fn puback(&mut self, id: PacketId) -> bool {
        self.remove_inflight(
            id,
            |entry| matches!(entry, Inflight::Publish(p) if p.qos == QoS::AtLeastOnce),
        )
    }

    /// An MQTT 5 PUBREC with an error code arrived: the client refuses the QoS 2
    /// message, and the exchange ends there, without PUBREL [MQTT-4.3.3-4]. Returns
    /// `false` if no QoS 2 PUBLISH waited for it.
    pub(crate) fn pubrec_refused(&mut self, id: PacketId) -> bool {
        self.remove_inflight(
            id,
            |entry| matches!(entry, Inflight::Publish(p) if p.qos == QoS::ExactlyOnce),
        )
    }

    /// A PUBREC arrived. Returns `true` if a QoS 2 PUBLISH waited for it (it now waits
    /// for PUBCOMP), or if it was already past this step (a repeated PUBREC); either
    /// way the answer is a PUBREL.
    pub(crate) fn pubrec(&mut self, id: PacketId) -> bool {
        for (seq, entry) in self.inflight.iter_mut() {
            if entry.packet_id() != Some(id) {
                continue;
            }
            return match entry {
                Inflight::Publish(p) if p.qos == QoS::ExactlyOnce => {
                    // The payload is delivered: only the identifier is kept now.
                    self.bytes -= p.payload.len();
                    *entry = Inflight::PubRel(id);
                    if let Some(journal) = &mut self.journal {
                        journal.push(SessionChange::Put(*seq, StoredMessage::Released(id)));
                    }
                    true
                }
                Inflight::PubRel(_) => true,
                Inflight::Publish(_) => false,
            };
        }
        false
    }

    /// Whether `id` belongs to an unacknowledged outbound message, in any state.
    pub(crate) fn is_inflight(&self, id: PacketId) -> bool {
        self.inflight
            .iter()
            .any(|(_, entry)| entry.packet_id() == Some(id))
    }

    /// A PUBCOMP arrived. Returns `false` if no PUBREL waited for it.
    pub(crate) fn pubcomp(&mut self, id: PacketId) -> bool {
        self.remove_inflight(id, |entry| matches!(entry, Inflight::PubRel(_)))
    }

    fn remove_inflight(&mut self, id: PacketId, expected: impl Fn(&Inflight) -> bool) -> bool {
        match self
            .inflight
            .iter()
            .position(|(_, entry)| entry.packet_id() == Some(id) && expected(entry))
        {
            Some(index) => {
                if let Some((seq, entry)) = self.inflight.remove(index) {
                    if let Inflight::Publish(p) = entry {
                        self.bytes -= p.payload.len();
                    }
                    self.record(|| SessionChange::Remove(seq));
                }
                true
            }
            None => false,
        }
    }

    /// An inbound QoS 2 PUBLISH arrived with `id`. Returns `true` if it is new and
    /// must be delivered onwards, `false` if it repeats one not yet released.
    pub(crate) fn receive_qos2(&mut self, id: PacketId) -> bool {
        let new = self.awaiting_pubrel.insert(id);
        if new {
            self.record(|| SessionChange::Receive(id));
        }
        new
    }

    /// A PUBREL arrived: the packet identifier is free for a new message again.
    pub(crate) fn pubrel(&mut self, id: PacketId) -> bool {
        let held = self.awaiting_pubrel.remove(&id);
        if held {
            self.record(|| SessionChange::Release(id));
        }
        held
    }

    /// Number of messages sent and not yet acknowledged.
    #[cfg(test)]
    pub(crate) fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Number of messages waiting for room in the inflight window.
    #[cfg(test)]
    pub(crate) fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Topic and payload bytes waiting in the queue.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// What the session holds now.
    pub(crate) fn footprint(&self) -> Footprint {
        Footprint {
            inflight: self.inflight.len(),
            queued: self.queue.len(),
            bytes: self.bytes,
        }
    }

    /// Restores a stored session's state into an empty session: its messages in
    /// sequence order (sent and released ones back in the inflight window, queued
    /// ones in the queue) and its inbound QoS 2 packet identifiers.
    pub(crate) fn restore(
        &mut self,
        messages: Vec<(u64, StoredMessage)>,
        awaiting_pubrel: Vec<PacketId>,
    ) {
        for (seq, message) in messages {
            self.next_seq = self.next_seq.max(seq + 1);
            match message {
                StoredMessage::Sent(publish) => {
                    if let Some(id) = publish.packet_id {
                        self.next_packet_id = id.get().wrapping_add(1).max(1);
                    }
                    self.bytes += publish.payload.len();
                    self.inflight.push_back((seq, Inflight::Publish(publish)));
                }
                StoredMessage::Released(id) => {
                    self.next_packet_id = id.get().wrapping_add(1).max(1);
                    self.inflight.push_back((seq, Inflight::PubRel(id)));
                }
                StoredMessage::Queued(mut publish) => {
                    publish.packet_id = None;
                    // The time a message had left before the restart is not known:
                    // its expiry counts again from now.
                    let expires = publish
                        .properties()
                        .message_expiry_interval
                        .map(|seconds| Instant::now() + Duration::from_secs(seconds.into()));
                    self.bytes += publish.payload.len();
                    self.queued_bytes += message_size(&publish);
                    self.queue.push_back((seq, publish, expires));
                }
            }
        }
        self.awaiting_pubrel = awaiting_pubrel.into_iter().collect();
    }

    /// The next packet identifier not held by an unacknowledged message. With a
    /// window far below 65,535 one is always found quickly.
    fn allocate_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..=u16::MAX {
            let candidate = PacketId::new(self.next_packet_id);
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if let Some(id) = candidate {
                if !self.inflight.iter().any(|(_, e)| e.packet_id() == Some(id)) {
                    return Some(id);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicName;

    fn message(qos: QoS, payload: &'static str) -> Publish {
        Publish::new(TopicName::new("t").unwrap(), payload, qos, false)
    }

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    fn sent_id(delivery: Delivery) -> u16 {
        match delivery {
            Delivery::Send(p) => p.packet_id.unwrap().get(),
            other => panic!("expected Send, got {other:?}"),
        }
    }

    #[test]
    fn a_journal_is_announced_once_per_batch_of_changes() {
        let mut session = Session::new(false, 2, 10).with_journal();
        assert!(!session.announce_changes(), "nothing written down yet");
        session.deliver(message(QoS::AtLeastOnce, "a"), true);
        assert!(session.announce_changes());
        session.deliver(message(QoS::AtLeastOnce, "b"), true);
        assert!(!session.announce_changes(), "announced already");
        assert_eq!(session.take_changes().len(), 2);
        session.deliver(message(QoS::AtLeastOnce, "c"), true);
        assert!(session.announce_changes(), "a new batch");
    }

    #[test]
    fn messages_beyond_the_inflight_window_wait_in_order_until_acked() {
        let mut session = Session::new(false, 2, 10);
        assert_eq!(
            sent_id(session.deliver(message(QoS::AtLeastOnce, "1"), true)),
            1
        );
        assert_eq!(
            sent_id(session.deliver(message(QoS::AtLeastOnce, "2"), true)),
            2
        );
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "3"), true),
            Delivery::Queued
        );
        assert!(session.fill_window(Instant::now(), |_| true).0.is_empty());
        assert!(session.puback(id(1)));
        let next = session.fill_window(Instant::now(), |_| true).0;
        assert_eq!(next.len(), 1);
        assert_eq!(&next[0].payload[..], b"3");
        assert_eq!(next[0].packet_id, Some(id(3)));
    }

    #[test]
    fn the_queue_is_bounded_and_drops_beyond_it() {
        let mut session = Session::new(false, 1, 2);
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "a"), false),
            Delivery::Queued
        );
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "b"), false),
            Delivery::Queued
        );
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "c"), false),
            Delivery::Dropped(QueueFull::Messages)
        );
        assert_eq!((session.inflight_len(), session.queued_len()), (0, 2));
        assert_eq!(session.footprint().bytes, 2);
    }

    #[test]
    fn qos_0_waits_behind_queued_messages_to_keep_the_order_mqtt_4_6_0_6() {
        let mut session = Session::new(false, 1, 10);
        assert_eq!(
            sent_id(session.deliver(message(QoS::AtLeastOnce, "1"), true)),
            1
        );
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "2"), true),
            Delivery::Queued
        );
        // Behind a queued message, QoS 0 waits its turn...
        assert_eq!(
            session.deliver(message(QoS::AtMostOnce, "3"), true),
            Delivery::Queued
        );
        assert!(session.puback(id(1)));
        let (sent, _) = session.fill_window(Instant::now(), |_| true);
        let payloads: Vec<&[u8]> = sent.iter().map(|p| p.payload.as_ref()).collect();
        assert_eq!(payloads, [b"2".as_slice(), b"3"]);
        assert_eq!(sent[1].packet_id, None);
        assert_eq!((session.inflight_len(), session.queued_len()), (1, 0));
        assert_eq!(session.footprint().bytes, 1);
        // ...and with nothing waiting it goes at once, taking no inflight slot.
        assert!(matches!(
            session.deliver(message(QoS::AtMostOnce, "4"), true),
            Delivery::Send(p) if p.packet_id.is_none()
        ));
        assert_eq!(session.inflight_len(), 1);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_too() {
        // Each message is topic "t" (1 byte) and one payload byte: 2 bytes queued.
        let mut session = Session::new(false, 1, 100).with_max_queued_bytes(5);
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "a"), false),
            Delivery::Queued
        );
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "b"), false),
            Delivery::Queued
        );
        assert_eq!(
            session.deliver(message(QoS::AtLeastOnce, "c"), false),
            Delivery::Dropped(QueueFull::Bytes)
        );
        assert_eq!(session.queued_bytes(), 4);
        // Sending frees queue room.
        let (sent, denied) = session.fill_window(Instant::now(), |_| true);
        assert_eq!((sent.len(), denied), (1, 0));
        assert_eq!(session.queued_bytes(), 2);
    }

    #[test]
    fn messages_the_client_may_no_longer_read_are_dropped_when_sent() {
        let mut session = Session::new(false, 1, 10);
        session.deliver(message(QoS::AtLeastOnce, "keep"), true);
        session.deliver(message(QoS::AtLeastOnce, "deny"), true);
        session.deliver(message(QoS::AtLeastOnce, "keep"), true);
        let allowed = |p: &Publish| p.payload.as_ref() != b"deny";
        assert_eq!(session.drop_denied_inflight(allowed), 0);
        assert!(session.puback(id(1)));
        let (sent, denied) = session.fill_window(Instant::now(), allowed);
        assert_eq!((sent.len(), denied), (1, 1));
        assert_eq!(sent[0].payload.as_ref(), b"keep");
        assert_eq!(session.footprint().bytes, 4);
        assert_eq!(session.queued_bytes(), 0);
        // An inflight message that became unreadable is not sent again.
        let denied_all = |_: &Publish| false;
        assert_eq!(session.drop_denied_inflight(denied_all), 1);
        assert_eq!(session.footprint(), Footprint::default());
    }

    #[test]
    fn packet_ids_in_use_are_never_handed_out_again_mqtt_2_3_1_4() {
        let mut session = Session::new(false, 3, 10);
        session.next_packet_id = u16::MAX;
        assert_eq!(
            sent_id(session.deliver(message(QoS::AtLeastOnce, "a"), true)),
            65535
        );
        assert_eq!(
            sent_id(session.deliver(message(QoS::AtLeastOnce, "b"), true)),
            1
        );
        session.next_packet_id = 65535;
        // 65535 and 1 are still unacknowledged: the next free one is 2.
        assert_eq!(
            sent_id(session.deliver(message(QoS::AtLeastOnce, "c"), true)),
            2
        );
    }

    #[test]
    fn qos_2_outbound_goes_publish_pubrec_pubrel_pubcomp_mqtt_4_3_3_1() {
        let mut session = Session::new(false, 5, 10);
        assert_eq!(
            sent_id(session.deliver(message(QoS::ExactlyOnce, "x"), true)),
            1
        );
        assert!(
            !session.puback(id(1)),
            "PUBACK does not finish a QoS 2 message"
        );
        assert!(
            !session.pubcomp(id(1)),
            "PUBCOMP before PUBREC is out of order"
        );
        assert!(session.pubrec(id(1)));
        assert!(session.pubrec(id(1)), "a repeated PUBREC is answered again");
        assert_eq!(session.resend(), vec![Inflight::PubRel(id(1))]);
        assert!(session.pubcomp(id(1)));
        assert_eq!(session.inflight_len(), 0);
    }

    #[test]
    fn reconnection_resends_unacked_publishes_with_dup_in_order_mqtt_4_4_0_1() {
        let mut session = Session::new(false, 5, 10);
        session.deliver(message(QoS::AtLeastOnce, "a"), true);
        session.deliver(message(QoS::ExactlyOnce, "b"), true);
        session.deliver(message(QoS::ExactlyOnce, "c"), true);
        session.pubrec(id(2));
        let resent = session.resend();
        assert_eq!(resent.len(), 3);
        match (&resent[0], &resent[1], &resent[2]) {
            (Inflight::Publish(a), Inflight::PubRel(b), Inflight::Publish(c)) => {
                assert!(a.dup && c.dup);
                assert_eq!(
                    (a.packet_id, *b, c.packet_id),
                    (Some(id(1)), id(2), Some(id(3)))
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_offline_session_queues_and_fills_the_window_on_return() {
        let mut session = Session::new(false, 2, 10);
        for payload in ["a", "b", "c"] {
            assert_eq!(
                session.deliver(message(QoS::AtLeastOnce, payload), false),
                Delivery::Queued
            );
        }
        let sent = session.fill_window(Instant::now(), |_| true).0;
        assert_eq!(sent.len(), 2);
        assert_eq!(&sent[0].payload[..], b"a");
        assert_eq!(session.queued_len(), 1);
    }

    #[test]
    fn inbound_qos_2_ids_are_held_until_pubrel_mqtt_4_3_3_2() {
        let mut session = Session::new(false, 5, 10);
        assert!(session.receive_qos2(id(9)));
        assert!(
            !session.receive_qos2(id(9)),
            "a repeat before PUBREL is not delivered"
        );
        assert!(session.pubrel(id(9)));
        assert!(
            session.receive_qos2(id(9)),
            "after PUBREL the id means a new message"
        );
    }
}
