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
//! Holder-death experiments drive the mutex through [`crate::sys::robust_mutex`] directly
//! ([`HolderDeath::robust_mutex`]).

use std::os::fd::OwnedFd;

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath, Outcome};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick};
use super::{Ctx, Exclusion, Handoff, Opened, Setup, SetupError, sys};
use crate::arena::Arena;
use crate::sys::robust_mutex::{Locked, MutexRoom, RobustMutex};

pub(super) const SPEC: Spec = Spec {
    name: "robust-mutex",
    family: Family::Mutexes,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare,
    open,
    // Survivable: the survivor repairs, `pthread_mutex_consistent`; the kernel told it already.
    death: HolderDeath {
        survivable: &[Description::Own],
        robust_mutex: Some(room),
        owner_tid: Some(|arena| room(arena).owner_tid()),
        ..HolderDeath::plain(&[Description::Own], owner_died)
    },
    whoops_in_storms: false,
    yardstick: Yardstick::NoCounterpart("bench/pingpong.c has no pthread mutex"),
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Told,
        needs: "a shared mapping; the next owner must repair and mark it consistent",
        from_async: "no descriptor: a thread",
    },
};

/// How long one wait lasts before the round loop gets to look at the stop flag, should the
/// watchdog's signal arrive just before the wait begins.
const SLICE_NS: u64 = 20_000_000;

/// The mutex room: `robust-mutex`'s region, all of it (so a peer writing over the region
/// writes over the mutex, and nothing else of ours).
fn room(arena: &Arena) -> &MutexRoom {
    arena.region::<MutexRoom>()
}

/// Makes the arena's mutex room a fresh process-shared robust mutex (client side, before
/// anyone attaches).
fn prepare(arena: &Arena, _: &Setup) -> Result<(), SetupError> {
    RobustMutex::init(room(arena))
        .map(drop)
        .map_err(sys("initialise the robust mutex"))
}

/// Attaches this thread (the one that runs the round loop) to the arena's mutex.
fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    let mutex = RobustMutex::attach(room(ctx.arena)).map_err(sys("attach to the robust mutex"))?;
    Ok(Opened::in_arena(ctx, RobustHandoff { mutex }))
}

/// The kernel's robust-list walk marks the dead owner; what the survivor does next decides.
fn owner_died(_: Description, outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Got {
            owner_died: true,
            relock: Some(Err(Errno::ENOTRECOVERABLE)),
            ..
        } => Some(
            "EOWNERDEAD: the kernel's robust-list walk marked the dead owner and glibc handed the survivor the lock; let go without pthread_mutex_consistent, it is ENOTRECOVERABLE for good",
        ),
        Outcome::Got {
            owner_died: true,
            relock: Some(Ok(())),
            ..
        } => Some("EOWNERDEAD, repaired, pthread_mutex_consistent: the next lock found it clean"),
        _ => None,
    }
}

#[derive(Debug)]
struct RobustHandoff<'a> {
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
