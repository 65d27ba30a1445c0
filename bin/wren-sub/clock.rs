//! The time a message is printed at, in local time, formatted by the C library's
//! `strftime` so that `-F @X` and `%I` print exactly what mosquitto_sub prints for
//! every conversion `X`, in the same time zone (`TZ`, `/etc/localtime`).

use std::time::{SystemTime, UNIX_EPOCH};

/// One moment, with its local calendar time.
#[derive(Clone, Copy)]
pub struct Now {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds past `secs`.
    pub nanos: u32,
    tm: libc::tm,
}

impl Now {
    /// The current time.
    pub fn local() -> Now {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
        Now::convert(secs, since_epoch.subsec_nanos(), false)
    }

    /// A fixed moment in UTC, for tests that must not depend on the machine's zone.
    #[cfg(test)]
    pub fn utc(secs: i64, nanos: u32) -> Now {
        Now::convert(secs, nanos, true)
    }

    fn convert(secs: i64, nanos: u32, utc: bool) -> Now {
        let time = secs as libc::time_t;
        // SAFETY: `tm` is plain data that localtime_r/gmtime_r fill in; both are the
        // re-entrant forms, safe to call from any thread. An all-zero `tm` is a valid
        // value, and is what remains if the conversion fails (a time outside the
        // C library's range), which only makes the printed date wrong.
        let tm = unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if utc {
                libc::gmtime_r(&time, &mut tm);
            } else {
                libc::localtime_r(&time, &mut tm);
            }
            tm
        };
        Now { secs, nanos, tm }
    }

    /// `strftime(format)`, or nothing if the result is empty or longer than 99
    /// bytes (mosquitto formats into a 100-byte buffer and prints nothing then).
    pub fn strftime(&self, format: &[u8]) -> Vec<u8> {
        let mut c_format = format.to_vec();
        c_format.retain(|&b| b != 0);
        c_format.push(0);
        let mut buffer = [0u8; 100];
        // SAFETY: the buffer's real length is passed, the format is NUL-terminated,
        // and `self.tm` was filled in by localtime_r/gmtime_r (its zone name
        // pointer, if set, points at the C library's static zone strings).
        let written = unsafe {
            libc::strftime(
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                c_format.as_ptr().cast(),
                &self.tm,
            )
        };
        buffer[..written].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_formats_the_moment() {
        // 2021-03-04 05:06:07 UTC.
        let now = Now::utc(1_614_834_367, 5);
        assert_eq!(now.strftime(b"%FT%T%z"), b"2021-03-04T05:06:07+0000");
        assert_eq!(now.strftime(b"%%"), b"%");
    }
}
