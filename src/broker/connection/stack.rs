//! Giving back the stack a waiting reader no longer uses.
//!
//! A thread's stack is reserved up front (128 KiB for a reader) but takes memory
//! only for the pages it touches, and keeps every page it has ever touched. A
//! reader goes deep once or twice (the CONNECT with its checks and hooks, a
//! SUBSCRIBE, a line of log) and then spends its life waiting for the next packet
//! near the top of its stack. Ten thousand idle clients would each keep the pages
//! of that one deep moment.
//!
//! So a reader about to wait tells the kernel (`madvise(MADV_DONTNEED)`) that the
//! pages below the one it stands on hold nothing: they leave its resident memory,
//! and come back as zeroed pages if it goes deep again. Only memory below the stack
//! pointer is given back, and that memory holds no live data by definition, but for
//! the 128-byte red zone of a leaf function; the page the reader stands on, and
//! the one below it when it stands near a page's edge, are kept, which covers that
//! zone and the frames of the `madvise` call itself.
//!
//! It costs a system call, so a reader does it at its first wait after the
//! CONNECT and then at most once every [`RELEASE_EVERY`] while it keeps waking
//! up: an idle connection gives its pages back once, a busy one almost never pays.

use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// The least time between two releases of one reader's stack.
pub(super) const RELEASE_EVERY: Duration = Duration::from_secs(30);

/// The unused part of the current thread's stack, given back now and then.
#[derive(Debug)]
pub(super) struct StackRelease {
    /// The lowest address of the stack the thread may use (above its guard page);
    /// zero where it is not known, and nothing is released.
    low: usize,
    /// The thread whose stack that is: nothing is released from another.
    thread: ThreadId,
    /// When pages were last given back.
    released_at: Option<Instant>,
}

impl StackRelease {
    /// For the calling thread, whose stack bounds it looks up once.
    pub(super) fn for_this_thread() -> StackRelease {
        StackRelease {
            low: stack_low().unwrap_or(0),
            thread: thread::current().id(),
            released_at: None,
        }
    }

    /// Gives back the pages below the caller's if the last release was at least
    /// [`RELEASE_EVERY`] ago (or there was none). Call it just before a wait.
    pub(super) fn release_if_due(&mut self, now: Instant) {
        if self.low == 0 {
            return;
        }
        if self
            .released_at
            .is_some_and(|at| now.saturating_duration_since(at) < RELEASE_EVERY)
        {
            return;
        }
        self.released_at = Some(now);
        // A reader made on one thread and moved to another (as in tests) must
        // not touch the first one's stack.
        if thread::current().id() == self.thread {
            release_below_here(self.low);
        }
    }
}

/// The size of a memory page.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|size| size.is_power_of_two())
        .unwrap_or(4096)
}

/// The lowest usable address of the calling thread's stack, above its guard.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn stack_low() -> Option<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `pthread_getattr_np` initialises `attr` on success, which is checked
    // before it is read, and it is destroyed once read.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut attr = attr.assume_init();
        let mut address = std::ptr::null_mut();
        let mut size = 0;
        let mut guard = 0;
        let found = libc::pthread_attr_getstack(&attr, &mut address, &mut size) == 0
            && libc::pthread_attr_getguardsize(&attr, &mut guard) == 0;
        libc::pthread_attr_destroy(&mut attr);
        // Whether or not the reported stack includes the guard, skipping that much
        // from its bottom keeps clear of it; those pages are the last a thread
        // would ever touch.
        (found && size > 0).then(|| address as usize + guard.max(page_size()))
    }
}

/// Elsewhere the stack is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn stack_low() -> Option<usize> {
    None
}

/// Bytes kept below this function's frame: the `madvise` call's own (a system
/// call stub) and, were a leaf function ever to call this, its red zone.
const MARGIN: usize = 128;

/// Gives back the pages from `low` up to, but not including, the page that holds
/// [`MARGIN`] bytes below this function's frame.
#[inline(never)]
fn release_below_here(low: usize) {
    let page = page_size();
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let keep_from = here.saturating_sub(MARGIN) & !(page - 1);
    if keep_from <= low {
        return;
    }
    let start = (low + page - 1) & !(page - 1);
    if start >= keep_from {
        return;
    }
    // SAFETY: the range lies inside this thread's own stack, wholly below the
    // current frame and a page of margin, where no live data can be; the kernel
    // hands zeroed pages back if the thread reaches that deep again.
    unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            keep_from - start,
            libc::MADV_DONTNEED,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Touches `depth` KiB of stack (16 pages for 64), so that there is something
    /// to give back.
    #[inline(never)]
    fn go_deep(depth: usize) -> u8 {
        let mut block = [0u8; 1024];
        std::hint::black_box(&mut block);
        if depth > 1 {
            block[0].wrapping_add(go_deep(depth - 1))
        } else {
            block[0]
        }
    }

    /// How many of the pages from `low` up to `high` are resident.
    fn resident_pages(low: usize, high: usize) -> usize {
        let page = page_size();
        let start = (low + page - 1) & !(page - 1);
        let pages = (high - start) / page;
        let mut resident = vec![0u8; pages];
        // SAFETY: the range is this thread's own stack, mapped; `resident` has a
        // byte for each page.
        let result = unsafe {
            libc::mincore(
                start as *mut libc::c_void,
                pages * page,
                resident.as_mut_ptr().cast(),
            )
        };
        assert_eq!(result, 0, "mincore: {}", std::io::Error::last_os_error());
        resident.iter().filter(|&&byte| byte & 1 == 1).count()
    }

    #[test]
    fn the_pages_below_a_waiting_thread_are_given_back_and_it_goes_on_working() {
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let mut stack = StackRelease::for_this_thread();
                assert!(stack.low != 0, "the stack's bounds are known here");
                let marker = 0u8;
                let here = std::hint::black_box(&marker) as *const u8 as usize;
                for round in 0..3 {
                    assert_eq!(go_deep(64), 0, "round {round}");
                    let deep = resident_pages(stack.low, here);
                    assert!(deep >= 16, "round {round}: {deep} pages touched");
                    stack.released_at = None;
                    stack.release_if_due(Instant::now());
                    let after = resident_pages(stack.low, here);
                    assert!(after <= 2, "round {round}: {after} pages kept");
                }
                // Not due again at once.
                let released = stack.released_at;
                stack.release_if_due(Instant::now());
                assert_eq!(stack.released_at, released);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
