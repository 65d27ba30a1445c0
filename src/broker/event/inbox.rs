//! The router's inbox: one bounded channel that every connection thread sends its
//! [`Event`]s into, bounded in bytes too by an [`InboxBudget`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{SendError, Sender};
use parking_lot::{Condvar, Mutex};

use super::Event;
use crate::broker::stats::{Counters, Limit};

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
    use std::thread;
    use std::time::{Duration, Instant};

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
}
