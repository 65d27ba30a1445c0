//! Handing received messages to the application's receivers, in order, never
//! blocking.
//!
//! Each [`Subscription`](super::Subscription) and [`Messages`](super::Messages) is a
//! [`Target`]: a bounded channel and the filters it wants. A message goes to every
//! target that wants it. When a target is full the queue stops there (so order is
//! kept) until the receiver takes a message and says so; meanwhile:
//!
//! - QoS 1 and 2 messages wait unacknowledged, so the broker's own inflight limit
//!   slows it down, and nothing the broker considers delivered is lost;
//! - QoS 0 messages wait too, up to [`MAX_WAITING_QOS0`], and are dropped (counted
//!   and logged) beyond it.
//!
//! A message that no target wants is acknowledged at once ([MQTT-4.5.0-2]). Until
//! the first target exists, such messages (those a persistent session brings right
//! after CONNACK) are kept, up to the message capacity, for the first target.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use super::Message;
use crate::protocol::{Publish, QoS, TopicFilter};

/// How many QoS 0 messages may wait behind a full receiver before new ones are
/// dropped.
pub(crate) const MAX_WAITING_QOS0: usize = 1024;

/// How many QoS 1/2 messages may wait behind a full receiver: one per packet id,
/// more than any broker keeping the rules can send before we acknowledge.
const MAX_WAITING_ACKNOWLEDGED: usize = u16::MAX as usize;

/// Where messages for one [`Subscription`](super::Subscription) or
/// [`Messages`](super::Messages) go.
pub(crate) struct Target {
    pub id: u64,
    /// The filters it receives; `None` receives everything.
    pub filters: Option<Vec<TopicFilter>>,
    /// MQTT 5: the Subscription Identifier its SUBSCRIBE carried, if any.
    pub subscription_id: Option<u32>,
    pub sender: Sender<Message>,
    /// Raised by the connection thread when the receiver was full; the receiver
    /// lowers it and sends `Control::Resume` when it takes a message.
    pub stalled: Arc<AtomicBool>,
}

impl Target {
    /// Whether `message` is for this target: one of its filters matches its topic.
    /// A shared subscription (`$share/GROUP/filter`) matches as its filter does.
    ///
    /// MQTT 5: a target subscribed with a Subscription Identifier takes a message
    /// that carries identifiers only if its own is among them. A broker may send
    /// one copy per matching subscription (mosquitto does), each with its own
    /// identifier: without this, each of two overlapping subscriptions would get
    /// both copies.
    fn wants(&self, message: &Message) -> bool {
        let identifiers = &message.properties().subscription_identifiers;
        if let (Some(id), false) = (self.subscription_id, identifiers.is_empty()) {
            return identifiers.contains(&id);
        }
        let topic = message.topic();
        match &self.filters {
            None => true,
            Some(filters) => filters.iter().any(|f| {
                let filter = match f.shared() {
                    Ok(Some((_, filter))) => filter,
                    _ => f.as_str(),
                };
                crate::protocol::topic::matches(filter, topic)
            }),
        }
    }

    fn uses(&self, filter: &TopicFilter) -> bool {
        self.filters
            .as_ref()
            .is_some_and(|filters| filters.contains(filter))
    }

    /// Hands `message` over without blocking; gives it back when the receiver is
    /// full. `Ok(false)`: the receiver is gone.
    fn offer(&self, message: Message) -> Result<bool, Message> {
        match self.sender.try_send(message) {
            Ok(()) => Ok(true),
            Err(TrySendError::Disconnected(_)) => Ok(false),
            Err(TrySendError::Full(message)) => {
                // Raise the flag, then look again: if the receiver took a message
                // before the flag was up, the second try finds the room; if after,
                // the receiver saw the flag and will send Resume.
                self.stalled.store(true, Ordering::SeqCst);
                match self.sender.try_send(message) {
                    Ok(()) => Ok(true),
                    Err(TrySendError::Disconnected(_)) => Ok(false),
                    Err(TrySendError::Full(message)) => Err(message),
                }
            }
        }
    }
}

/// A message on its way to the application.
struct Delivery {
    publish: Publish,
    message: Message,
    /// Targets still to be given it.
    targets: Vec<u64>,
}

/// What became of a message given to [`Deliveries::push`].
#[derive(Debug, PartialEq)]
pub(crate) enum Pushed {
    /// Queued; [`Deliveries::deliver`] hands it over.
    Queued,
    /// No target wants it: acknowledge it now.
    Unwanted(Publish),
    /// A QoS 0 message dropped because too many wait behind a full receiver.
    Dropped,
    /// More QoS 1/2 messages than packet ids wait: the broker breaks the rules.
    Overflow,
}

/// The targets and the messages waiting for them.
pub(crate) struct Deliveries {
    targets: BTreeMap<u64, Target>,
    pending: VecDeque<Delivery>,
    waiting_qos0: usize,
    dropped_qos0: u64,
    unclaimed: Option<VecDeque<Message>>,
    capacity: usize,
}

impl Deliveries {
    /// No targets yet; up to `capacity` unwanted messages are kept for the first.
    pub fn new(capacity: usize) -> Deliveries {
        Deliveries {
            targets: BTreeMap::new(),
            pending: VecDeque::new(),
            waiting_qos0: 0,
            dropped_qos0: 0,
            unclaimed: Some(VecDeque::new()),
            capacity,
        }
    }

    /// Adds a target. The first one made also gets the messages kept so far that it
    /// wants; returns how many of those did not fit.
    pub fn register(&mut self, target: Target) -> usize {
        let mut lost = 0;
        if let Some(unclaimed) = self.unclaimed.take() {
            for message in unclaimed {
                if target.wants(&message) && target.offer(message).is_err() {
                    lost += 1;
                }
            }
        }
        self.targets.insert(target.id, target);
        lost
    }

    /// Removes a target and returns those of its filters no other target uses.
    pub fn remove(&mut self, id: u64) -> Vec<TopicFilter> {
        let Some(Target {
            filters: Some(filters),
            ..
        }) = self.targets.remove(&id)
        else {
            return Vec::new();
        };
        filters
            .into_iter()
            .filter(|filter| !self.targets.values().any(|other| other.uses(filter)))
            .collect()
    }

    /// Queues a message from the broker for every target that wants it.
    pub fn push(&mut self, publish: Publish) -> Pushed {
        let message = Message::from_publish(&publish);
        let targets: Vec<u64> = self
            .targets
            .values()
            .filter(|target| target.wants(&message))
            .map(|target| target.id)
            .collect();
        if targets.is_empty() {
            if let Some(unclaimed) = &mut self.unclaimed {
                if unclaimed.len() >= self.capacity {
                    unclaimed.pop_front();
                }
                unclaimed.push_back(message);
            }
            return Pushed::Unwanted(publish);
        }
        if publish.qos == QoS::AtMostOnce {
            if self.waiting_qos0 >= MAX_WAITING_QOS0 {
                self.dropped_qos0 += 1;
                return Pushed::Dropped;
            }
            self.waiting_qos0 += 1;
        } else if self.pending.len() - self.waiting_qos0 >= MAX_WAITING_ACKNOWLEDGED {
            return Pushed::Overflow;
        }
        self.pending.push_back(Delivery {
            publish,
            message,
            targets,
        });
        Pushed::Queued
    }

    /// Hands over waiting messages, in order, until one finds a receiver full.
    /// `delivered` is called with each message every target now has, for its
    /// acknowledgement.
    pub fn deliver(&mut self, mut delivered: impl FnMut(Publish)) {
        while let Some(delivery) = self.pending.front_mut() {
            let mut blocked = false;
            let targets = &self.targets;
            delivery.targets.retain(|id| {
                if blocked {
                    return true;
                }
                let Some(target) = targets.get(id) else {
                    return false; // gone since
                };
                match target.offer(delivery.message.clone()) {
                    Ok(_) => false,
                    Err(_) => {
                        blocked = true;
                        true
                    }
                }
            });
            if blocked {
                return;
            }
            if let Some(delivery) = self.pending.pop_front() {
                if delivery.publish.qos == QoS::AtMostOnce {
                    self.waiting_qos0 -= 1;
                }
                delivered(delivery.publish);
            }
        }
    }

    /// How many QoS 0 messages were dropped so far.
    pub fn dropped_qos0(&self) -> u64 {
        self.dropped_qos0
    }

    /// Lets go of every target: their receivers see the end once empty.
    pub fn clear(&mut self) {
        self.targets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PacketId, TopicName};

    fn target(
        id: u64,
        filters: Option<&[&str]>,
        capacity: usize,
    ) -> (Target, crossbeam_channel::Receiver<Message>) {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        let filters = filters.map(|fs| fs.iter().map(|f| TopicFilter::new(*f).unwrap()).collect());
        (
            Target {
                id,
                filters,
                subscription_id: None,
                sender,
                stalled: Arc::new(AtomicBool::new(false)),
            },
            receiver,
        )
    }

    fn publish(topic: &str, qos: QoS, id: u16) -> Publish {
        let mut publish = Publish::new(TopicName::new(topic).unwrap(), "p", qos, false);
        publish.packet_id = PacketId::new(id).filter(|_| qos != QoS::AtMostOnce);
        publish
    }

    fn deliver(deliveries: &mut Deliveries) -> Vec<u16> {
        let mut done = Vec::new();
        deliveries.deliver(|p| done.push(p.packet_id.map_or(0, |id| id.get())));
        done
    }

    #[test]
    fn a_message_reaches_every_target_that_wants_it_and_only_those() {
        let mut deliveries = Deliveries::new(10);
        let (wide, wide_rx) = target(1, Some(&["a/#"]), 10);
        let (narrow, narrow_rx) = target(2, Some(&["a/b"]), 10);
        let (other, other_rx) = target(3, Some(&["b"]), 10);
        for t in [wide, narrow, other] {
            deliveries.register(t);
        }
        assert_eq!(
            deliveries.push(publish("a/b", QoS::AtLeastOnce, 1)),
            Pushed::Queued
        );
        assert_eq!(deliver(&mut deliveries), [1]);
        assert_eq!((wide_rx.len(), narrow_rx.len(), other_rx.len()), (1, 1, 0));
    }

    #[test]
    fn a_full_receiver_holds_the_queue_in_order_until_it_has_room() {
        let mut deliveries = Deliveries::new(10);
        let (slow, slow_rx) = target(1, Some(&["t"]), 1);
        let stalled = slow.stalled.clone();
        deliveries.register(slow);
        for id in 1..=3 {
            deliveries.push(publish("t", QoS::AtLeastOnce, id));
        }
        // Only the first fits; the others wait, unacknowledged.
        assert_eq!(deliver(&mut deliveries), [1]);
        assert!(stalled.load(Ordering::SeqCst));
        slow_rx.recv().unwrap();
        assert_eq!(deliver(&mut deliveries), [2]);
        slow_rx.recv().unwrap();
        assert_eq!(deliver(&mut deliveries), [3]);
    }

    #[test]
    fn qos_0_messages_beyond_the_limit_are_dropped_and_counted() {
        let mut deliveries = Deliveries::new(10);
        let (full, _receiver) = target(1, None, 1);
        deliveries.register(full);
        for _ in 0..MAX_WAITING_QOS0 {
            assert_eq!(
                deliveries.push(publish("t", QoS::AtMostOnce, 0)),
                Pushed::Queued
            );
        }
        assert_eq!(
            deliveries.push(publish("t", QoS::AtMostOnce, 0)),
            Pushed::Dropped
        );
        assert_eq!(deliveries.dropped_qos0(), 1);
        // QoS 1 still queues behind them.
        assert_eq!(
            deliveries.push(publish("t", QoS::AtLeastOnce, 9)),
            Pushed::Queued
        );
    }

    #[test]
    fn unwanted_messages_are_kept_for_the_first_target_only() {
        let mut deliveries = Deliveries::new(2);
        for id in 1..=3 {
            assert!(matches!(
                deliveries.push(publish("early", QoS::AtLeastOnce, id)),
                Pushed::Unwanted(_)
            ));
        }
        let (first, first_rx) = target(1, Some(&["early"]), 10);
        assert_eq!(deliveries.register(first), 0);
        // The oldest went beyond the capacity of 2.
        assert_eq!(first_rx.len(), 2);
        let (second, second_rx) = target(2, None, 10);
        deliveries.register(second);
        assert_eq!(second_rx.len(), 0);
    }

    #[test]
    fn removing_a_target_reports_only_filters_no_other_target_uses() {
        let mut deliveries = Deliveries::new(10);
        let (a, _a_rx) = target(1, Some(&["x", "y"]), 1);
        let (b, _b_rx) = target(2, Some(&["y"]), 1);
        deliveries.register(a);
        deliveries.register(b);
        assert_eq!(deliveries.remove(1), [TopicFilter::new("x").unwrap()]);
        assert_eq!(deliveries.remove(2), [TopicFilter::new("y").unwrap()]);
        assert!(deliveries.remove(2).is_empty());
    }

    #[test]
    fn a_dropped_receiver_no_longer_holds_the_queue() {
        let mut deliveries = Deliveries::new(10);
        let (gone, gone_rx) = target(1, Some(&["t"]), 1);
        let (alive, alive_rx) = target(2, Some(&["t"]), 10);
        deliveries.register(gone);
        deliveries.register(alive);
        deliveries.push(publish("t", QoS::AtLeastOnce, 1));
        deliveries.push(publish("t", QoS::AtLeastOnce, 2));
        assert_eq!(deliver(&mut deliveries), [1]);
        drop(gone_rx);
        assert_eq!(deliver(&mut deliveries), [2]);
        assert_eq!(alive_rx.len(), 2);
    }
}
