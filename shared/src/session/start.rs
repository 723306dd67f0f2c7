//! The start line and the finish of both round loops: every contender waits at the start line
//! until all have arrived, so nobody whoops (or grabs the lock) against a peer that is still
//! setting up; the clocks start as it leaves the line and stop after its last round.

use std::sync::atomic::Ordering;

use nix::errno::Errno;

use super::watchdog::Watchdog;
use super::{Plan, SessionError, monotonic_ns, sys};
use crate::arena::Header;
use crate::measure::{ContenderStats, End};
use crate::sys::futex;
use crate::sys::rusage::ThreadUsage;

/// The measured stretch of one round loop, from the start line to the end of its last round.
pub(super) struct Stretch {
    usage_before: ThreadUsage,
    start_ns: u64,
    /// When this side stops even if rounds remain (`plan.max_ns` after the start).
    pub deadline_ns: u64,
}

impl Stretch {
    /// Waits at the start line, then starts the wall clock and the CPU clock.
    pub fn begin(h: &Header, plan: &Plan, dog: &Watchdog) -> Result<Stretch, SessionError> {
        wait_at_start_line(h, plan, dog)?;
        let usage_before = ThreadUsage::now().map_err(sys("read rusage"))?;
        let start_ns = monotonic_ns();
        Ok(Stretch {
            usage_before,
            start_ns,
            deadline_ns: start_ns.saturating_add(plan.max_ns),
        })
    }

    /// Stops the clocks: the wall time, the CPU time and how the run ended go into `stats`.
    pub fn finish(
        self,
        mut stats: ContenderStats,
        end: End,
    ) -> Result<ContenderStats, SessionError> {
        let now = monotonic_ns();
        stats.wall_ns = now - self.start_ns;
        (stats.started_ns, stats.ended_ns) = (self.start_ns, now);
        stats.end = end;
        let usage_after = ThreadUsage::now().map_err(sys("read rusage"))?;
        stats.rusage = usage_after.since(&self.usage_before).into();
        Ok(stats)
    }
}

/// Waits for every contender. The last to arrive stamps the first "release" and wakes the rest.
fn wait_at_start_line(h: &Header, plan: &Plan, dog: &Watchdog) -> Result<(), SessionError> {
    // The peer can write anything into `arrived`: wrap rather than overflow.
    let arrived = h.arrived.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
    if arrived as usize == plan.contenders {
        h.release_ns.store(monotonic_ns(), Ordering::Release);
        h.started.store(1, Ordering::Release);
        futex::wake(&h.started, i32::MAX as u32).map_err(sys("wake the start line"))?;
        return Ok(());
    }
    let give_up = monotonic_ns().saturating_add(plan.start_timeout_ns);
    while h.started.load(Ordering::Acquire) == 0 {
        dog.check()?;
        if h.stopped().is_some() {
            return Err(SessionError::StoppedBeforeStart);
        }
        let now = monotonic_ns();
        if now >= give_up {
            return Err(SessionError::StartTimeout(
                plan.start_timeout_ns / 1_000_000,
            ));
        }
        match futex::wait_for(&h.started, 0, give_up - now) {
            Ok(()) | Err(Errno::EAGAIN | Errno::EINTR | Errno::ETIMEDOUT) => {}
            Err(errno) => {
                return Err(SessionError::Sys {
                    what: "wait at the start line",
                    errno,
                });
            }
        }
    }
    Ok(())
}
