//! The messages that connection threads and the router exchange.
//!
//! Connection threads send [`Event`]s into the router's bounded [`Inbox`]; the router
//! answers with [`Outgoing`] packets into each connection's bounded [`Outbox`]. These two
//! channels are the only link between them: no broker state is shared.
//!
//! The inbox is bounded twice: in events, by its channel, and in bytes, by an
//! [`InboxBudget`] that every event's [`cost`](Event::cost) is taken from before it
//! is sent and given back once the router has handled it.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, SendError, Sender, TryRecvError};
use parking_lot::{Condvar, Mutex};

use super::connection::Closer;
use super::hooks::{ClientInfo, DisconnectReason};
use super::stats::{Counters, Limit};
use crate::protocol::{Connect, Packet, Publish, Subscribe, SubscribeFilter, TopicFilter};

/// Identifies one network connection for the life of the broker. A client that
/// reconnects gets a new one, so the router can tell late events of a connection it
/// already closed (after a takeover, say) from those of the current one.
pub(crate) type ConnectionId = u64;

/// What the router sends to a connection: a packet for its writer thread to encode
/// and write. A PUBLISH shares its topic and payload buffers with every other
/// subscriber's copy; only the fixed header and packet identifier differ.
pub(crate) type Outgoing = Packet;

/// QoS 0 messages are put in a connection's outbox only while it holds fewer than
/// this many packets and [`OUTBOX_QOS0_BYTES`] of payload; beyond, they are dropped
/// and counted.
///
/// Publishers are paused long before (see [`OUTBOX_CROWDED_SLOTS`]); the room above
/// that mark takes what paused publishers still had on the way:
/// [`READER_QUEUE_LIMIT`] messages each, for a hundred publishers at once.
pub(crate) const OUTBOX_QOS0_SLOTS: usize = 32 * 1024;

/// Payload bytes beyond which a connection's outbox takes no more QoS 0 messages, so
/// a client that stops reading holds at most this much (plus its inflight window).
pub(crate) const OUTBOX_QOS0_BYTES: usize = 8 * 1024 * 1024;

/// An outbox holding this many packets, or [`OUTBOX_CROWDED_BYTES`] of payload, is
/// *crowded*: the publishers whose QoS 0 messages go into it are paused until it has
/// drained, so that it fills no further while its writer keeps working.
pub(crate) const OUTBOX_CROWDED_SLOTS: usize = 4096;
const OUTBOX_CROWDED_BYTES: usize = 1024 * 1024;

/// A crowded outbox has *drained* once it is back below half its crowded mark, which
/// still leaves its writer thousands of packets to write while paused publishers
/// start again.
const OUTBOX_DRAINED_SLOTS: usize = OUTBOX_CROWDED_SLOTS / 2;
const OUTBOX_DRAINED_BYTES: usize = OUTBOX_CROWDED_BYTES / 2;

/// Room kept in every outbox for acknowledgements and other replies. A client that
/// leaves this many replies unread has stopped reading and is disconnected
/// [MQTT-4.8.0-2].
pub(crate) const OUTBOX_REPLY_RESERVE: usize = 128;

/// The capacity of a connection's outbox: QoS 0 slots, the inflight window (QoS 1/2
/// PUBLISH and PUBREL packets, bounded by the session), and the reply reserve.
pub(crate) fn outbox_capacity(max_inflight: usize) -> usize {
    OUTBOX_QOS0_SLOTS + max_inflight.max(1) + OUTBOX_REPLY_RESERVE
}

/// The router's end of a connection's outbox: a channel plus a count of the payload
/// bytes in it, which the writer decreases as it takes packets out.
///
/// The channel is crossbeam's linked-block flavour, which allocates as it fills,
/// rather than its array flavour, which would allocate (and touch) every slot up
/// front: some 200 KiB per connection at this capacity, idle or not. The bound is
/// enforced here instead, which is exact because the router is the only sender.
#[derive(Debug)]
pub(crate) struct Outbox {
    sender: Sender<Outgoing>,
    capacity: usize,
    shared: Arc<OutboxShared>,
}

/// What the two ends of an outbox share besides the channel.
#[derive(Debug, Default)]
struct OutboxShared {
    /// Payload bytes queued.
    bytes: AtomicUsize,
    /// The router waits to hear that this outbox drained (see
    /// [`Outbox::watch_for_drain`]); the receiving end reports it once.
    watched: AtomicBool,
}

/// Room for QoS 0 messages in an outbox (see [`Outbox::qos0_room`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qos0Room {
    /// Below the crowded mark.
    Free,
    /// At or above [`OUTBOX_CROWDED_SLOTS`]: take it, and pause its publisher.
    Crowded,
    /// At [`OUTBOX_QOS0_SLOTS`] or [`OUTBOX_QOS0_BYTES`]: drop it.
    Full,
}

/// Why [`Outbox::try_send`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// The outbox is full: the client is not reading.
    Full,
    /// The writer has gone: the connection is closing.
    Gone,
}

/// The writer's end of an outbox.
#[derive(Debug)]
pub(crate) struct OutboxReceiver {
    receiver: Receiver<Outgoing>,
    shared: Arc<OutboxShared>,
}

fn payload_len(packet: &Outgoing) -> usize {
    match packet {
        Packet::Publish(publish) => publish.payload.len(),
        _ => 0,
    }
}

/// An outbox for a connection whose session may have `max_inflight` messages in
/// flight.
pub(crate) fn outbox(max_inflight: usize) -> (Outbox, OutboxReceiver) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let shared = Arc::new(OutboxShared::default());
    (
        Outbox {
            sender,
            capacity: outbox_capacity(max_inflight),
            shared: shared.clone(),
        },
        OutboxReceiver { receiver, shared },
    )
}

/// Whether an outbox holding `len` packets and `bytes` payload bytes is back below
/// the drained mark.
fn is_drained(len: usize, bytes: usize) -> bool {
    len < OUTBOX_DRAINED_SLOTS && bytes < OUTBOX_DRAINED_BYTES
}

impl Outbox {
    /// Queues a packet without waiting. On failure the packet is dropped.
    pub(crate) fn try_send(&self, packet: Outgoing) -> Result<(), SendFailure> {
        if self.sender.len() >= self.capacity {
            return Err(SendFailure::Full);
        }
        let len = payload_len(&packet);
        // Counted before the send, so the writer never subtracts what was not added.
        self.shared.bytes.fetch_add(len, Ordering::Relaxed);
        match self.sender.try_send(packet) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.shared.bytes.fetch_sub(len, Ordering::Relaxed);
                // An unbounded channel only refuses when its receiver is gone.
                Err(SendFailure::Gone)
            }
        }
    }

    /// How much room is left for QoS 0 messages. Asked for every QoS 0 delivery,
    /// so the channel's length (a loop over its indices) is read once.
    pub(crate) fn qos0_room(&self) -> Qos0Room {
        let len = self.sender.len();
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        if len >= OUTBOX_QOS0_SLOTS || bytes >= OUTBOX_QOS0_BYTES {
            Qos0Room::Full
        } else if len >= OUTBOX_CROWDED_SLOTS || bytes >= OUTBOX_CROWDED_BYTES {
            Qos0Room::Crowded
        } else {
            Qos0Room::Free
        }
    }

    /// Asks the receiving end to report (once) when the outbox has drained. Returns
    /// `false` when it has drained already and no report will come.
    pub(crate) fn watch_for_drain(&self) -> bool {
        self.shared.watched.store(true, Ordering::SeqCst);
        // Pairs with the fence in `OutboxReceiver::drained`: either the receiver
        // sees the flag, or this sees the packets it has taken.
        fence(Ordering::SeqCst);
        let drained = is_drained(self.sender.len(), self.shared.bytes.load(Ordering::Relaxed));
        // Taking the flag back means the receiver has not claimed the report.
        !(drained && self.shared.watched.swap(false, Ordering::SeqCst))
    }
}

impl OutboxReceiver {
    /// Waits for the next packet; an error once the router dropped the outbox.
    pub(crate) fn recv(&self) -> Result<Outgoing, RecvError> {
        let packet = self.receiver.recv()?;
        self.taken(&packet);
        Ok(packet)
    }

    /// The next packet if one is waiting.
    pub(crate) fn recv_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Outgoing, crossbeam_channel::RecvTimeoutError> {
        let packet = self.receiver.recv_timeout(timeout)?;
        self.taken(&packet);
        Ok(packet)
    }

    pub(crate) fn try_recv(&self) -> Result<Outgoing, TryRecvError> {
        let packet = self.receiver.try_recv()?;
        self.taken(&packet);
        Ok(packet)
    }

    fn taken(&self, packet: &Outgoing) {
        self.shared
            .bytes
            .fetch_sub(payload_len(packet), Ordering::Relaxed);
    }

    /// Whether to tell the router that this outbox has drained: it asked to hear
    /// of it ([`Outbox::watch_for_drain`]) and the outbox is below the drained mark
    /// now. True at most once per request; the caller then sends [`Event::Drained`].
    pub(crate) fn drained(&self) -> bool {
        if !self.shared.watched.load(Ordering::Relaxed) {
            return false;
        }
        fence(Ordering::SeqCst);
        is_drained(
            self.receiver.len(),
            self.shared.bytes.load(Ordering::Relaxed),
        ) && self.shared.watched.swap(false, Ordering::SeqCst)
    }

    /// Sends the router [`Event::Drained`] for `connection` when
    /// [`drained`](Self::drained) says so. Called by whoever takes packets out: the
    /// writer after each write, an inline subscription after each packet.
    pub(crate) fn report_drained(&self, router: &Inbox, connection: ConnectionId) {
        if self.drained() {
            // Waits only for room in the router's inbox, which the router always
            // empties; fails only when the router has stopped.
            let _ = router.send(Event::Drained { connection });
        }
    }
}

/// The most PUBLISH messages one connection may have waiting in the router's inbox.
///
/// One fast publisher then cannot fill the inbox and delay everyone else's packets,
/// and a publisher the router pauses (see [`ReadGate`]) has at most this many
/// messages still on their way to the outbox it crowds.
pub(crate) const READER_QUEUE_LIMIT: u64 = 256;

/// The router tells a reader how many of its messages it has handled once every
/// this many, rather than touching memory the reader reads on every message.
pub(crate) const HANDLED_REPORT_EVERY: u64 = 16;

/// Paces a connection's reader. The reader passes the gate after each message it
/// hands the router, and waits there while
///
/// - the router has *closed* the gate: this client's messages crowd another client's
///   outbox, and the router opens the gate once that outbox drained; or
/// - this client already has [`READER_QUEUE_LIMIT`] messages waiting in the router's
///   inbox; it goes on once half of them are handled.
///
/// A waiting reader reads nothing more, so its client is slowed down by TCP, as a
/// publisher faster than the router always was. The router never waits here.
#[derive(Debug, Default)]
pub(crate) struct ReadGate {
    closed: AtomicBool,
    /// Set for good when the router is done with the connection: never wait again.
    released: AtomicBool,
    /// Messages of this connection the router has handled (as last reported).
    handled: AtomicU64,
    /// While the reader waits for handled messages: the count that lets it go.
    wake_at: AtomicU64,
    /// The reader is waiting (or about to): the router must wake it.
    waiting: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl ReadGate {
    /// Pauses the reader after the message it is handling.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Lets the reader go on.
    pub(crate) fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        self.wake();
    }

    /// The router is done with this connection: its reader never waits again.
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.closed.store(false, Ordering::SeqCst);
        self.wake();
    }

    /// Whether the gate is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The router has handled `handled` messages of this connection in all; called
    /// every [`HANDLED_REPORT_EVERY`] messages.
    pub(crate) fn handled(&self, handled: u64) {
        self.handled.store(handled, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) && handled >= self.wake_at.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    fn wake(&self) {
        // Taking the lock orders this with a reader between its last check and
        // its wait, so the wake-up cannot be lost.
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }

    fn must_wait(&self, sent: u64, limit: u64) -> bool {
        !self.released.load(Ordering::SeqCst)
            && (self.is_closed()
                || sent.saturating_sub(self.handled.load(Ordering::SeqCst)) >= limit)
    }

    /// Called by the reader after handing the router its `sent`th message: returns
    /// at once if the reader may go on, otherwise waits until it may, or until
    /// `longest` has passed.
    pub(crate) fn pass(&self, sent: u64, longest: Duration) {
        if !self.must_wait(sent, READER_QUEUE_LIMIT) {
            return;
        }
        let deadline = Instant::now() + longest;
        let mut guard = self.lock.lock();
        // Once waiting for handled messages, wait for half the limit, so that a
        // busy reader wakes once per many messages rather than once per message.
        self.wake_at.store(
            sent.saturating_sub(READER_QUEUE_LIMIT / 2),
            Ordering::SeqCst,
        );
        self.waiting.store(true, Ordering::SeqCst);
        while self.must_wait(sent, READER_QUEUE_LIMIT / 2 + 1) {
            if self.changed.wait_until(&mut guard, deadline).timed_out() {
                log::debug!("A paused reader goes on after {longest:?} without being let go.");
                break;
            }
        }
        self.waiting.store(false, Ordering::SeqCst);
    }
}

/// A client whose CONNECT was accepted by its connection thread.
#[derive(Debug)]
pub(crate) struct NewConnection {
    pub(crate) id: ConnectionId,
    /// The CONNECT, with the client identifier filled in when the client sent none
    /// and the password removed.
    pub(crate) connect: Connect,
    pub(crate) client: ClientInfo,
    pub(crate) outbox: Outbox,
    pub(crate) closer: Closer,
    /// Pauses the connection's reader; never closed for an inline client.
    pub(crate) gate: Arc<ReadGate>,
    /// An inline client of the embedding program: authorization hooks are skipped.
    pub(crate) trusted: bool,
}

/// What a connection thread tells the router.
#[derive(Debug)]
pub(crate) enum Event {
    /// A client connected (its CONNECT passed every check on its own thread).
    Connect(Box<NewConnection>),
    /// A PUBLISH arrived; `authorized` is the hooks' verdict on its topic.
    Publish {
        connection: ConnectionId,
        publish: Publish,
        authorized: bool,
    },
    /// A SUBSCRIBE arrived; `authorized` has the hooks' verdict for each filter.
    Subscribe {
        connection: ConnectionId,
        subscribe: Subscribe,
        authorized: Vec<bool>,
    },
    /// Any other packet a client may send after CONNECT: PUBACK, PUBREC, PUBREL,
    /// PUBCOMP, UNSUBSCRIBE, PINGREQ.
    Packet {
        connection: ConnectionId,
        packet: Packet,
    },
    /// The connection ended.
    Disconnect {
        connection: ConnectionId,
        reason: DisconnectReason,
    },
    /// A connection's outbox has drained after the router asked to hear of it
    /// ([`Outbox::watch_for_drain`]): publishers paused for it may go on.
    Drained { connection: ConnectionId },
    /// The embedding program publishes a message (`Broker::publish`): routed like a
    /// client's, with no acknowledgement and no authorization check.
    InlinePublish(Publish),
    /// The broker is stopping: disconnect everyone, save, and return.
    Shutdown,
}

impl Event {
    /// Roughly how many bytes this event holds while it waits in the router's
    /// inbox: the event itself plus what it points to (topic and payload, filters,
    /// client identifier and will). Senders take it from the [`InboxBudget`] and the
    /// router gives it back, both from the same event, so the two always agree.
    ///
    /// [`Event::Shutdown`] costs nothing: the router also makes one up itself when
    /// every sender has gone, and gives back what that costs.
    pub(crate) fn cost(&self) -> usize {
        let held = match self {
            Event::Publish { publish, .. } | Event::InlinePublish(publish) => {
                publish.topic.as_str().len() + publish.payload.len()
            }
            Event::Subscribe {
                subscribe,
                authorized,
                ..
            } => {
                subscribe
                    .filters
                    .iter()
                    .map(|entry| size_of::<SubscribeFilter>() + entry.filter.as_str().len())
                    .sum::<usize>()
                    + authorized.len()
            }
            Event::Packet {
                packet: Packet::Unsubscribe(unsubscribe),
                ..
            } => unsubscribe
                .filters
                .iter()
                .map(|filter| size_of::<TopicFilter>() + filter.as_str().len())
                .sum(),
            Event::Connect(new) => {
                let connect = &new.connect;
                size_of::<NewConnection>()
                    + connect.client_id.len()
                    + connect.username.as_ref().map_or(0, String::len)
                    + connect
                        .password
                        .as_ref()
                        .map_or(0, |password| password.len())
                    + connect
                        .will
                        .as_ref()
                        .map_or(0, |will| will.topic.as_str().len() + will.payload.len())
            }
            Event::Shutdown => return 0,
            Event::Packet { .. } | Event::Disconnect { .. } | Event::Drained { .. } => 0,
        };
        size_of::<Event>() + held
    }
}

/// The sending end of the router's inbox: its bounded channel, and the byte budget
/// every event is charged to. Cheap to clone: every connection thread holds one.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    sender: Sender<Event>,
    budget: Arc<InboxBudget>,
}

impl Inbox {
    /// The inbox that `sender`'s channel and `budget` bound together.
    pub(crate) fn new(sender: Sender<Event>, budget: Arc<InboxBudget>) -> Inbox {
        Inbox { sender, budget }
    }

    /// Sends `event` to the router, first waiting while the inbox's bytes are
    /// spent, then while its channel is full. Fails only when the router has
    /// stopped.
    pub(crate) fn send(&self, event: Event) -> Result<(), SendError<Event>> {
        let cost = event.cost();
        self.budget.take(cost);
        self.sender
            .send(event)
            .inspect_err(|_| self.budget.give_back(cost))
    }
}

/// The bytes of events waiting in the router's inbox, bounded by
/// `limits.max_inbox_bytes`, over every kind of event and every sender.
///
/// A sender takes an event's [`cost`](Event::cost) before sending it and waits while
/// the budget is spent; the router gives the cost back once it has handled the
/// event. A reader that waits reads nothing more, so its client is slowed down by
/// TCP. Taking with room to spare is one compare-and-swap, with no lock; only a
/// sender that must wait takes the lock, and the router takes it only when someone
/// waits.
///
/// An event larger than the whole budget is let in when the inbox holds no other
/// bytes, so it waits for its turn rather than forever. Waiting senders go in the
/// order they came, and senders arriving while others wait queue behind them, so a
/// stream of small events cannot keep a large one out.
#[derive(Debug)]
pub(crate) struct InboxBudget {
    max: usize,
    used: AtomicUsize,
    /// Senders waiting for room, or about to.
    waiting: AtomicUsize,
    /// The router has stopped: nobody waits any more.
    closed: AtomicBool,
    queue: Mutex<Queue>,
    room: Condvar,
    counters: Arc<Counters>,
}

/// The order of the senders waiting for room: each draws a ticket, and only the one
/// whose ticket is served may take.
#[derive(Debug, Default)]
struct Queue {
    next_ticket: u64,
    now_serving: u64,
}

impl InboxBudget {
    /// A budget of `max` bytes; each sender made to wait is counted in `counters`
    /// as [`Limit::InboxBytes`].
    pub(crate) fn new(max: usize, counters: Arc<Counters>) -> InboxBudget {
        InboxBudget {
            max,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            room: Condvar::new(),
            counters,
        }
    }

    /// Takes `cost` bytes if they fit, or if nothing else is in.
    fn try_take(&self, cost: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                let fits = used == 0 || used.saturating_add(cost) <= self.max;
                fits.then_some(used + cost)
            })
            .is_ok()
    }

    /// Takes `cost` bytes, waiting while the budget is spent (not once the router
    /// has stopped).
    pub(crate) fn take(&self, cost: usize) {
        if self.waiting.load(Ordering::SeqCst) == 0 && self.try_take(cost) {
            return;
        }
        self.counters.limit_reached(Limit::InboxBytes);
        let mut queue = self.queue.lock();
        // Counted before trying, under the lock: a router giving back after this
        // sees it and wakes the sender, so no wake-up is lost.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        loop {
            if queue.now_serving == ticket && self.try_take(cost) {
                break;
            }
            if self.closed.load(Ordering::SeqCst) {
                // Taken all the same, so that giving it back stays exact.
                self.used.fetch_add(cost, Ordering::SeqCst);
                break;
            }
            self.room.wait(&mut queue);
        }
        queue.now_serving += 1;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(queue);
        // The next in line may fit as well.
        self.room.notify_all();
    }

    /// Gives back `cost` bytes taken earlier, and wakes the senders waiting for room.
    pub(crate) fn give_back(&self, cost: usize) {
        self.used.fetch_sub(cost, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _queue = self.queue.lock();
            self.room.notify_all();
        }
    }

    /// The router has stopped: senders waiting for room go on (their sends then
    /// fail), and nobody waits from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // No sender can be between its check of `closed` and its wait meanwhile.
        let _queue = self.queue.lock();
        self.room.notify_all();
    }

    /// Bytes taken and not given back.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PacketId, QoS, TopicName};
    use std::thread;

    fn budget(max: usize) -> (Arc<InboxBudget>, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (Arc::new(InboxBudget::new(max, counters.clone())), counters)
    }

    fn waited(counters: &Counters) -> u64 {
        counters
            .snapshot(Duration::ZERO)
            .limit_reached(Limit::InboxBytes)
    }

    /// Waits (bounded) until `budget` has `senders` waiting.
    fn until_waiting(budget: &InboxBudget, senders: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while budget.waiting.load(Ordering::SeqCst) != senders {
            assert!(Instant::now() < deadline, "no sender started waiting");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn taking_with_room_does_not_wait_and_giving_back_restores_the_room() {
        let (budget, counters) = budget(100);
        budget.take(60);
        budget.take(40);
        assert_eq!(budget.used(), 100);
        budget.give_back(100);
        assert_eq!(budget.used(), 0);
        assert_eq!(waited(&counters), 0);
    }

    #[test]
    fn a_sender_waits_while_the_budget_is_spent_and_goes_on_when_the_router_gives_back() {
        let (budget, counters) = budget(100);
        budget.take(80);
        let sender = {
            let budget = budget.clone();
            thread::spawn(move || budget.take(50))
        };
        until_waiting(&budget, 1);
        assert_eq!(budget.used(), 80);
        budget.give_back(80);
        sender.join().unwrap();
        assert_eq!(budget.used(), 50);
        assert_eq!(waited(&counters), 1);
    }

    #[test]
    fn an_event_larger_than_the_whole_budget_goes_in_alone() {
        let (budget, _) = budget(100);
        budget.take(10);
        let sender = {
            let budget = budget.clone();
            thread::spawn(move || budget.take(1000))
        };
        until_waiting(&budget, 1);
        budget.give_back(10);
        sender.join().unwrap();
        assert_eq!(budget.used(), 1000);
        // And then nothing else goes in until it is handled.
        assert!(!budget.try_take(1));
    }

    #[test]
    fn newcomers_queue_behind_a_waiting_sender() {
        let (budget, counters) = budget(100);
        budget.take(100);
        let large = {
            let budget = budget.clone();
            thread::spawn(move || budget.take(100))
        };
        until_waiting(&budget, 1);
        // There would be room for a small one after this, but the large one waits.
        budget.give_back(10);
        let small = {
            let budget = budget.clone();
            thread::spawn(move || budget.take(5))
        };
        until_waiting(&budget, 2);
        budget.give_back(90);
        large.join().unwrap();
        budget.give_back(100);
        small.join().unwrap();
        assert_eq!(budget.used(), 5);
        assert_eq!(waited(&counters), 2);
    }

    #[test]
    fn closing_lets_waiting_senders_go() {
        let (budget, _) = budget(100);
        budget.take(100);
        let sender = {
            let budget = budget.clone();
            thread::spawn(move || budget.take(50))
        };
        until_waiting(&budget, 1);
        budget.close();
        sender.join().unwrap();
        budget.take(1000);
    }

    #[test]
    fn an_event_costs_what_it_holds() {
        let publish = |payload: usize| Event::Publish {
            connection: 1,
            publish: Publish::new(
                TopicName::new("a/b").unwrap(),
                vec![0u8; payload],
                QoS::AtMostOnce,
                false,
            ),
            authorized: true,
        };
        assert_eq!(publish(1000).cost() - publish(0).cost(), 1000);
        let subscribe = |filters: usize| Event::Subscribe {
            connection: 1,
            subscribe: Subscribe {
                packet_id: PacketId::MIN,
                filters: (0..filters)
                    .map(|_| {
                        SubscribeFilter::new(
                            TopicFilter::new("x".repeat(100)).unwrap(),
                            QoS::AtMostOnce,
                        )
                    })
                    .collect(),
            },
            authorized: vec![true; filters],
        };
        assert!(subscribe(10).cost() >= size_of::<Event>() + 10 * 100);
        assert!(subscribe(10).cost() > subscribe(1).cost());
        assert_eq!(Event::Shutdown.cost(), 0);
        assert_eq!(Event::Drained { connection: 1 }.cost(), size_of::<Event>());
    }
}
