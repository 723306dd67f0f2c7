//! The start line: every contender waits here until all have arrived, so nobody whoops (or
//! grabs the lock) against a peer that is still setting up.

use std::sync::atomic::Ordering;

use nix::errno::Errno;

use super::watchdog::Watchdog;
use super::{Plan, SessionError, sys};
use crate::arena::Header;
use crate::sys::clock::monotonic_ns;
use crate::sys::futex;

/// Waits for every contender. The last to arrive stamps the first "release" and wakes the rest.
pub(super) fn wait_at_start_line(
    h: &Header,
    plan: &Plan,
    dog: &Watchdog,
) -> Result<(), SessionError> {
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
