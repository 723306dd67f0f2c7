//! `robust-mutex`: a process-shared robust mutex in the arena, with the protocol of glibc's robust
//! `pthread_mutex_t` (what most C programs use to share a lock between processes), but with its
//! robust-list entry in each contender's private memory ([`crate::sys::robust_mutex`] says why:
//! glibc's keeps pointers in the shared mutex, which a peer could aim at the server). The client
//! initialises it when it prepares the arena; every contender attaches to it.
//!
//! The word holds the owner's TID plus FUTEX_WAITERS: lock is a compare-exchange 0 → TID, then
//! FUTEX_WAIT; unlock swaps the word to 0 and wakes one waiter if FUTEX_WAITERS was set. Like
//! `futex`, the woken waiter competes with anyone arriving, the releaser included: it barges.
//!
//! `EOWNERDEAD` (a contender died holding it) is repaired at once (`pthread_mutex_consistent`):
//! the arena holds nothing a dead holder could leave half-written that the round loop trusts.
//! Holder-death experiments use [`crate::sys::robust_mutex`] directly.

use nix::errno::Errno;

use super::{Ctx, Exclusion, Handoff};
use crate::arena::Arena;
use crate::sys::robust_mutex::{Locked, RobustMutex};

/// How long one wait lasts before the round loop gets to look at the stop flag, should the
/// watchdog's signal arrive just before the wait begins.
const SLICE_NS: u64 = 20_000_000;

/// Makes the arena's mutex room a fresh process-shared robust mutex (client side, before
/// anyone attaches).
pub(super) fn prepare(arena: &Arena) -> Result<(), Errno> {
    RobustMutex::init(&arena.header().robust_mutex).map(drop)
}

/// Attaches this thread (the one that runs the round loop) to the arena's mutex.
pub(super) fn open<'a>(ctx: &Ctx<'a>) -> Result<RobustHandoff<'a>, Errno> {
    Ok(RobustHandoff {
        mutex: RobustMutex::attach(&ctx.arena.header().robust_mutex)?,
    })
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
