//! What the broker does with a panic: a connection thread's ends that connection
//! only (its reader and writer catch it); one of the router or the storage thread
//! ends the process, since the broker cannot go on without either.

/// The exit status of a process whose router or storage thread panicked:
/// `EX_SOFTWARE`, "an internal software error", from BSD's `sysexits.h`, which
/// service managers and shells know.
const PANIC_EXIT_CODE: i32 = 70;

/// What a panic said, for the log.
pub(crate) fn message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "no message"
    }
}

/// Ends the process after the router or the storage thread panicked (in its own
/// code or in a store; hooks catch their own panics).
///
/// A broker without its router still accepts connections, but serves nothing:
/// CONNECTs wait for a CONNACK that never comes, and acknowledged messages could not
/// be delivered. Without its storage thread, nothing is committed, so nothing is
/// acknowledged any more. The router's state (sessions, subscriptions, retained
/// messages) cannot be trusted after a panic in the middle of changing it, so there
/// is nothing to restart from. Stopping the process, with a status a service manager
/// sees, is the honest answer: it is restarted, and clients reconnect (with a store,
/// to everything it acknowledged).
pub(crate) fn stop_process(thread: &str, message: &str) -> ! {
    log::error!(
        "The {thread} thread panicked ({message}); stopping the process \
         (exit status {PANIC_EXIT_CODE}), since a broker without its {thread} thread \
         serves nothing."
    );
    log::logger().flush();
    std::process::exit(PANIC_EXIT_CODE)
}
