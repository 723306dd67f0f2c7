//! `robust-mutex`: glibc's process-shared robust `pthread_mutex_t` in the arena, what most C
//! programs would use to share a lock between processes. The client initialises it when it
//! prepares the arena; every contender attaches to it.
//!
//! glibc's robust mutex (non-PI) is a futex word holding the owner's TID plus FUTEX_WAITERS:
//! lock is a compare-exchange 0 → TID, then FUTEX_WAIT; unlock swaps the word to 0 and wakes
//! one waiter if FUTEX_WAITERS was set. Like `futex`, the woken waiter competes with anyone
//! arriving, the releaser included: it barges.
//!
//! `EOWNERDEAD` (a contender died holding it) is repaired at once (`pthread_mutex_consistent`):
//! the arena holds nothing a dead holder could leave half-written that the round loop trusts.
//! Holder-death experiments use [`crate::sys::robust_mutex`] directly.

use nix::errno::Errno;

use super::{Ctx, Exclusion, Handoff};
use crate::arena::Arena;
use crate::sys::robust_mutex::{Locked, RobustMutex};

/// How long one wait lasts before the round loop gets to look at the stop flag (glibc restarts
/// the futex wait after a signal, so a signal alone would never end it).
const SLICE_NS: u64 = 20_000_000;

/// Makes the arena's mutex room a fresh process-shared robust mutex (client side, before
/// anyone attaches).
pub(super) fn prepare(arena: &Arena) -> Result<(), Errno> {
    RobustMutex::init(&arena.header().robust_mutex).map(drop)
}

pub(super) fn open<'a>(ctx: &Ctx<'a>) -> RobustHandoff<'a> {
    RobustHandoff {
        mutex: RobustMutex::attach(&ctx.arena.header().robust_mutex),
    }
}

#[derive(Debug)]
pub(super) struct RobustHandoff<'a> {
    mutex: RobustMutex<'a>,
}

impl Handoff for RobustHandoff<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        match self.mutex.lock_within(SLICE_NS) {
            Ok(Locked::Clean) => Ok(()),
            Ok(Locked::OwnerDied) => self.mutex.consistent(),
            Err(Errno::ETIMEDOUT) => Err(Errno::EINTR),
            Err(e) => Err(e),
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        self.mutex.unlock()
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Waiters come out at the end of their slice and see the stop flag.
        Ok(())
    }
}
