//! Log lines a client can make the broker repeat at will, rate-limited.
//!
//! A client can publish to a topic it may not write a thousand times a second, or
//! keep a subscriber's queue full; logging each would let it fill the operator's
//! disk. Such lines go through a [`LogLimit`]: at most [`LINES_PER_WINDOW`] in each
//! [`WINDOW`], then one line saying how many were left out.

use std::time::{Duration, Instant};

/// How often the allowance renews.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// Lines of one kind allowed per [`WINDOW`].
pub(crate) const LINES_PER_WINDOW: u32 = 20;

/// The allowance of one kind of log line (see the module documentation).
#[derive(Debug)]
pub(crate) struct LogLimit {
    /// What the lines are about, for the "left out" line.
    what: &'static str,
    window_start: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

impl LogLimit {
    /// A limit for lines about `what` ("denied publishes", say).
    pub(crate) const fn new(what: &'static str) -> LogLimit {
        LogLimit {
            what,
            window_start: None,
            lines: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be logged at `now`. Starting a new window first reports
    /// how many lines the last one left out.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        self.renew(now);
        if self.lines < LINES_PER_WINDOW {
            self.lines += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Reports lines left out once their window is over, even if no new line comes.
    pub(crate) fn renew(&mut self, now: Instant) {
        let expired = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if !expired {
            return;
        }
        if self.suppressed > 0 {
            log::warn!(
                "{} more log lines about {} in the last {:?} were left out.",
                self.suppressed,
                self.what,
                WINDOW
            );
        }
        self.window_start = Some(now);
        self.lines = 0;
        self.suppressed = 0;
    }

    /// Lines left out in the current window, for tests.
    #[cfg(test)]
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_lines_is_cut_to_the_allowance_and_counted() {
        let start = Instant::now();
        let mut limit = LogLimit::new("tests");
        let allowed = (0..1000).filter(|_| limit.allow(start)).count();
        assert_eq!(allowed, LINES_PER_WINDOW as usize);
        assert_eq!(limit.suppressed(), 1000 - u64::from(LINES_PER_WINDOW));
        // The next window starts afresh.
        assert!(limit.allow(start + WINDOW));
        assert_eq!(limit.suppressed(), 0);
    }
}
