//! Ctrl-C and `kill`: leave cleanly, as mosquitto_sub does.
//!
//! On SIGINT or SIGTERM mosquitto_sub sends DISCONNECT and exits 0 (over MQTT 5
//! with reason code 4, Disconnect with Will Message, so the broker publishes the
//! will; over 3.1.1 it does not); before the broker has answered CONNECT it exits at
//! once with 255. Here SIGINT and SIGTERM are blocked in every thread and one
//! thread waits for them with `sigwait`: nothing runs inside a signal handler, and
//! the waiting thread may call into the client like any other.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wren::client::Client;

use crate::common::connect::Goodbye;

/// Watches for SIGINT and SIGTERM.
pub struct Interrupt {
    client: Arc<Mutex<Option<(Client, Goodbye)>>>,
    fired: Arc<AtomicBool>,
}

impl Interrupt {
    /// Blocks SIGINT and SIGTERM in this thread and in every thread started from it
    /// afterwards, and starts the thread that waits for them. Call before
    /// connecting, so that the client's threads inherit the mask.
    pub fn install() -> io::Result<Interrupt> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset before use;
        // pthread_sigmask changes only this thread's mask.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            set
        };
        let interrupt = Interrupt {
            client: Arc::new(Mutex::new(None)),
            fired: Arc::new(AtomicBool::new(false)),
        };
        let client = interrupt.client.clone();
        let fired = interrupt.fired.clone();
        std::thread::Builder::new()
            .name("wren-sub signals".into())
            .spawn(move || {
                let mut signal = 0;
                // SAFETY: `set` is an initialised signal set and `signal` a valid
                // place for the result.
                let rc = unsafe { libc::sigwait(&set, &mut signal) };
                if rc != 0 {
                    return;
                }
                fired.store(true, Ordering::SeqCst);
                let connected = client.lock().ok().and_then(|mut slot| slot.take());
                match connected {
                    // The main thread sees the subscription end and exits 0.
                    Some((client, goodbye)) => {
                        let _ = goodbye.send(&client, true);
                    }
                    // mosquitto_sub's exit(-1) before CONNACK.
                    None => std::process::exit(255),
                }
            })?;
        Ok(interrupt)
    }

    /// From now on a signal disconnects `client` (with `goodbye`) instead of
    /// exiting at once.
    pub fn arm(&self, client: Client, goodbye: Goodbye) {
        if let Ok(mut slot) = self.client.lock() {
            *slot = Some((client, goodbye));
        }
    }

    /// Whether a signal has arrived.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}
