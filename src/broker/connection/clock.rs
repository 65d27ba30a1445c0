//! The reader's deadlines, as plain data: tested without sockets.

use std::time::{Duration, Instant};

/// Which of a reader's deadlines passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// `connect-timeout`: the handshakes and the CONNECT took too long.
    Connect,
    /// `packet-timeout`: a packet that had begun did not finish in time.
    Packet,
    /// One and a half keep-alives (plus the configured delay) without a byte of
    /// MQTT [MQTT-3.1.2-24].
    KeepAlive,
}

/// What the reader's last read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LastRead {
    /// MQTT bytes.
    Bytes,
    /// Nothing: the socket's read timeout fired.
    Alarm,
    /// Nothing for MQTT: no read yet, or only transport control data (a WebSocket
    /// ping, part of a TLS record).
    Nothing,
}

/// When a reader stops waiting for bytes, kept as deadlines.
///
/// A socket's read timeout starts again with every byte, so a client trickling one
/// byte at a time would never reach it. The reader keeps its deadlines here and
/// checks them before every read; the socket's read timeout is only its alarm clock,
/// set so that a read wakes up by the nearest deadline. Setting it costs a system
/// call, so it is changed only when it would ring too late, or has rung before the
/// deadline: a steady stream of packets leaves it alone, and an idle client sleeps
/// until its keep-alive runs out.
///
/// Plain data driven by the reader, so it is tested without sockets.
#[derive(Debug)]
pub(super) struct ReadClock {
    /// Until the CONNECT has arrived: when it must have.
    connect_deadline: Option<Instant>,
    /// `limits.packet_timeout`.
    packet_timeout: Duration,
    /// After the CONNECT: the longest silence allowed, when keep-alive applies.
    keep_alive: Option<Duration>,
    /// When MQTT bytes last arrived.
    last_bytes: Instant,
    /// When the first bytes of the unfinished packet arrived.
    packet_started: Option<Instant>,
    /// The socket's read timeout as last set; `None` waits forever.
    alarm: Option<Duration>,
    /// The alarm must be set again before the next read, whatever it is now.
    alarm_stale: bool,
}

impl ReadClock {
    /// The clock of a new connection: it must send CONNECT by `connect_deadline`.
    pub(super) fn new(
        connect_deadline: Option<Instant>,
        packet_timeout: Duration,
        now: Instant,
    ) -> Self {
        ReadClock {
            connect_deadline,
            packet_timeout,
            keep_alive: None,
            last_bytes: now,
            packet_started: None,
            alarm: None,
            alarm_stale: false,
        }
    }

    /// The CONNECT has arrived: from now on silence is bounded by `keep_alive`, if any.
    pub(super) fn connected(&mut self, keep_alive: Option<Duration>, now: Instant) {
        self.connect_deadline = None;
        self.keep_alive = keep_alive;
        self.last_bytes = now;
        // The alarm was set for the CONNECT deadline, usually much nearer.
        self.alarm_stale = true;
    }

    /// A whole packet was decoded: whatever is still buffered is a new packet.
    pub(super) fn packet_done(&mut self) {
        self.packet_started = None;
    }

    /// Called before each read, with what the last read brought and whether part
    /// of a packet is waiting for the rest. Says which deadline has passed, if one
    /// has; otherwise whether the socket's read timeout must be set to
    /// [`alarm`](Self::alarm) first.
    pub(super) fn before_read(
        &mut self,
        now: Instant,
        mid_packet: bool,
        last: LastRead,
    ) -> Result<bool, Expired> {
        match last {
            LastRead::Bytes => self.last_bytes = now,
            LastRead::Alarm => self.alarm_stale = true,
            LastRead::Nothing => {}
        }
        if !mid_packet {
            self.packet_started = None;
        } else if self.packet_started.is_none() {
            self.packet_started = Some(now);
        }
        // The nearest deadline; on a tie, the first named.
        let nearest = [
            self.connect_deadline.map(|at| (at, Expired::Connect)),
            self.packet_started
                .and_then(|started| started.checked_add(self.packet_timeout))
                .map(|at| (at, Expired::Packet)),
            self.keep_alive
                .and_then(|silence| self.last_bytes.checked_add(silence))
                .map(|at| (at, Expired::KeepAlive)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(at, _)| *at);
        let wanted = match nearest {
            None => None,
            Some((at, which)) => {
                let left = at.saturating_duration_since(now);
                if left.is_zero() {
                    return Err(which);
                }
                Some(left)
            }
        };
        // An alarm that rings early only wakes the reader once more, which then
        // sets it exactly; one that would ring late must be set now. An eighth of
        // slack spares a system call for every packet of a steady stream.
        let too_late = match (self.alarm, wanted) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(alarm), Some(left)) => alarm > left + left / 8,
        };
        if too_late || self.alarm_stale {
            self.alarm = wanted;
            self.alarm_stale = false;
            return Ok(true);
        }
        Ok(false)
    }

    /// The read timeout the socket should have.
    pub(super) fn alarm(&self) -> Option<Duration> {
        self.alarm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_connect_trickled_a_byte_at_a_time_runs_out_of_connect_time() {
        let start = Instant::now();
        let mut clock = ReadClock::new(Some(start + ms(1000)), ms(60_000), start);
        assert_eq!(clock.before_read(start, false, LastRead::Nothing), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(1000)));
        let mut now = start;
        for _ in 0..3 {
            now += ms(300);
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
        }
        now += ms(300);
        assert_eq!(
            clock.before_read(now, true, LastRead::Bytes),
            Err(Expired::Connect)
        );
    }

    #[test]
    fn a_packet_trickled_a_byte_at_a_time_runs_out_of_packet_time_without_keep_alive() {
        let start = Instant::now();
        let mut clock = ReadClock::new(Some(start + ms(10_000)), ms(1000), start);
        clock.connected(None, start);
        // Between packets, with keep-alive 0, nothing bounds the wait.
        assert_eq!(clock.before_read(start, false, LastRead::Bytes), Ok(true));
        assert_eq!(clock.alarm(), None);
        // A packet begins, then a byte comes every 300 ms.
        let mut now = start + ms(5000);
        assert_eq!(clock.before_read(now, true, LastRead::Bytes), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(1000)));
        for _ in 0..3 {
            now += ms(300);
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
        }
        now += ms(300);
        assert_eq!(
            clock.before_read(now, true, LastRead::Bytes),
            Err(Expired::Packet)
        );
    }

    #[test]
    fn each_packet_gets_its_own_packet_time() {
        let start = Instant::now();
        let mut clock = ReadClock::new(None, ms(1000), start);
        clock.connected(None, start);
        let mut now = start;
        for _ in 0..10 {
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
            now += ms(600);
            assert!(clock.before_read(now, true, LastRead::Bytes).is_ok());
            // The packet is complete, and the same read began the next one.
            clock.packet_done();
        }
    }

    #[test]
    fn a_steady_stream_sets_the_alarm_once_and_silence_ends_in_a_keep_alive_timeout() {
        let start = Instant::now();
        let mut clock = ReadClock::new(Some(start + ms(10_000)), ms(60_000), start);
        assert_eq!(clock.before_read(start, false, LastRead::Nothing), Ok(true));
        let mut now = start + ms(100);
        clock.connected(Some(ms(90_000)), now);
        assert_eq!(clock.before_read(now, false, LastRead::Bytes), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(90_000)));
        // Packets split across reads: the first wait inside a packet sets the alarm
        // to the packet time, which then serves every wait.
        let mut alarms_set = 0;
        for n in 0..1000 {
            now += ms(10);
            if clock.before_read(now, n % 2 == 0, LastRead::Bytes) == Ok(true) {
                alarms_set += 1;
            }
            if n % 2 == 1 {
                clock.packet_done();
            }
        }
        assert_eq!(alarms_set, 1);
        assert_eq!(clock.alarm(), Some(ms(60_000)));
        // Silence: the alarm rings early once, and is set to what is left.
        let last_bytes = now;
        now += ms(60_000);
        assert_eq!(clock.before_read(now, false, LastRead::Alarm), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(30_000)));
        // WebSocket pings are not MQTT: they do not keep the client alive, and the
        // next wait may only last until the keep-alive runs out.
        now += ms(10_000);
        assert_eq!(clock.before_read(now, false, LastRead::Nothing), Ok(true));
        assert_eq!(clock.alarm(), Some(ms(20_000)));
        now = last_bytes + ms(90_000);
        assert_eq!(
            clock.before_read(now, false, LastRead::Alarm),
            Err(Expired::KeepAlive)
        );
    }

    #[test]
    fn an_alarm_that_rang_without_a_deadline_is_turned_off() {
        let start = Instant::now();
        let mut clock = ReadClock::new(None, ms(1000), start);
        clock.connected(None, start);
        assert!(clock.before_read(start, true, LastRead::Bytes).is_ok());
        clock.packet_done();
        assert_eq!(clock.alarm(), Some(ms(1000)));
        // Idle: the packet-time alarm may ring once more, then it is off for good.
        assert_eq!(
            clock.before_read(start + ms(100), false, LastRead::Bytes),
            Ok(false)
        );
        assert_eq!(
            clock.before_read(start + ms(1100), false, LastRead::Alarm),
            Ok(true)
        );
        assert_eq!(clock.alarm(), None);
    }
}
