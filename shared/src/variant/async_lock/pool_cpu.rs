//! The CPU time a runtime's blocking pool spends waiting for one contender's lock. The session
//! measures its own thread's clock; the pool threads that call `flock` for it are other threads,
//! and without this their work would look free.
//!
//! Each pool thread reads its own clock (`CLOCK_THREAD_CPUTIME_ID`) after each request, and the
//! growth since its previous reading is added up: everything the thread did between two requests
//! (parking, being woken, picking the next task up) was for us. A thread's first reading counts
//! whole, its start included. What a thread does after its last request is not counted: it
//! only parks and, after tokio's keep-alive, exits.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::time::{ClockId, clock_gettime};
use nix::unistd::{Pid, gettid};

/// CPU time charged by the pool threads, in nanoseconds.
#[derive(Debug, Default)]
pub struct PoolCpu {
    /// Each pool thread seen, with its clock at its last reading.
    seen: Mutex<Vec<(Pid, u64)>>,
    total_ns: AtomicU64,
}

impl PoolCpu {
    /// Adds what the calling pool thread spent since its last reading.
    pub(super) fn charge_this_thread(&self) {
        let Ok(now) = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID) else {
            return;
        };
        let now = now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64;
        let me = gettid();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = match seen.iter_mut().find(|(tid, _)| *tid == me) {
            Some((_, last)) => std::mem::replace(last, now),
            None => {
                seen.push((me, now));
                0
            }
        };
        self.total_ns
            .fetch_add(now.saturating_sub(before), Ordering::Relaxed);
    }

    /// The pool threads' CPU time charged so far.
    pub fn total_ns(&self) -> u64 {
        self.total_ns.load(Ordering::Relaxed)
    }
}
