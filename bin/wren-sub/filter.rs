//! What `wren-sub` does with each message it receives, before printing: the rules
//! of `-R`, `--retained-only`, `-T`, `--remove-retained`, `--random-filter` and
//! `-C`, in mosquitto_sub's order. Plain state, no I/O, so every rule is tested
//! here without a broker.

use wren::protocol::{topic, TopicFilter};

use crate::options::SubOptions;

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ignore it: not printed, not counted.
    Skip,
    /// `--retained-only` met a live message: stop now, without printing it.
    Stop,
    /// Handle it.
    Handle {
        /// `--remove-retained`: publish an empty retained message on its topic.
        clear_retained: bool,
        /// Print it (`--random-filter` may say no; it still counts).
        print: bool,
        /// `-C` is reached: stop after this one.
        last: bool,
    },
}

/// The per-message rules and the count of handled messages.
#[derive(Debug)]
pub struct MessageFilter {
    skip_retained: bool,
    retained_only: bool,
    remove_retained: bool,
    filter_out: Vec<TopicFilter>,
    random_filter: Option<u32>,
    count: Option<u32>,
    handled: u32,
    random: XorShift,
}

impl MessageFilter {
    /// The rules `options` ask for; `seed` drives `--random-filter`.
    pub fn new(options: &SubOptions, seed: u64) -> MessageFilter {
        MessageFilter {
            skip_retained: options.skip_retained,
            retained_only: options.retained_only,
            remove_retained: options.remove_retained,
            filter_out: options.filter_out.clone(),
            random_filter: options.random_filter,
            count: options.count,
            handled: 0,
            random: XorShift::new(seed),
        }
    }

    /// Decides about a message on `topic_name`, retained or not.
    pub fn decide(&mut self, topic_name: &str, retain: bool) -> Decision {
        if self.retained_only && !retain {
            return Decision::Stop;
        }
        if retain && self.skip_retained {
            return Decision::Skip;
        }
        if self
            .filter_out
            .iter()
            .any(|filter| topic::matches(filter.as_str(), topic_name))
        {
            return Decision::Skip;
        }
        let print = match self.random_filter {
            Some(share) => self.random.next_below(10_000) < u64::from(share),
            None => true,
        };
        self.handled = self.handled.saturating_add(1);
        Decision::Handle {
            clear_retained: self.remove_retained && retain,
            print,
            last: self.count == Some(self.handled),
        }
    }
}

/// A small xorshift generator: `--random-filter` needs a fair coin, not secrecy.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // Zero is xorshift's one fixed point.
        XorShift(seed | 1)
    }

    fn next_below(&mut self, bound: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(change: impl FnOnce(&mut SubOptions)) -> SubOptions {
        let mut options = SubOptions::default();
        change(&mut options);
        options
    }

    fn handle(last: bool) -> Decision {
        Decision::Handle {
            clear_retained: false,
            print: true,
            last,
        }
    }

    #[test]
    fn every_message_is_handled_by_default() {
        let mut filter = MessageFilter::new(&SubOptions::default(), 1);
        assert_eq!(filter.decide("a", false), handle(false));
        assert_eq!(filter.decide("a", true), handle(false));
    }

    #[test]
    fn count_ends_after_that_many_handled_messages() {
        let mut filter = MessageFilter::new(
            &options(|o| {
                o.count = Some(2);
                o.skip_retained = true;
            }),
            1,
        );
        assert_eq!(filter.decide("a", false), handle(false));
        assert_eq!(filter.decide("a", true), Decision::Skip);
        assert_eq!(filter.decide("a", false), handle(true));
    }

    #[test]
    fn filtered_out_topics_are_neither_printed_nor_counted() {
        let mut filter = MessageFilter::new(
            &options(|o| {
                o.filter_out = vec![TopicFilter::new("a/#").unwrap()];
                o.count = Some(1);
            }),
            1,
        );
        assert_eq!(filter.decide("a/b", false), Decision::Skip);
        assert_eq!(filter.decide("a", false), Decision::Skip);
        assert_eq!(filter.decide("b", false), handle(true));
    }

    #[test]
    fn retained_only_stops_at_the_first_live_message() {
        let mut filter = MessageFilter::new(&options(|o| o.retained_only = true), 1);
        assert_eq!(filter.decide("a", true), handle(false));
        assert_eq!(filter.decide("a", false), Decision::Stop);
    }

    #[test]
    fn remove_retained_clears_only_retained_messages() {
        let mut filter = MessageFilter::new(&options(|o| o.remove_retained = true), 1);
        assert_eq!(
            filter.decide("a", true),
            Decision::Handle {
                clear_retained: true,
                print: true,
                last: false
            }
        );
        assert_eq!(filter.decide("a", false), handle(false));
    }

    #[test]
    fn random_filter_prints_about_the_share_asked_for() {
        let mut filter = MessageFilter::new(&options(|o| o.random_filter = Some(2500)), 42);
        let printed = (0..10_000)
            .filter(|_| {
                matches!(
                    filter.decide("a", false),
                    Decision::Handle { print: true, .. }
                )
            })
            .count();
        assert!(
            (2000..3000).contains(&printed),
            "{printed} of 10000 printed"
        );
    }
}
