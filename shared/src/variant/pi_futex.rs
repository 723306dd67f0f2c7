//! `pi-futex`: a priority-inheritance futex lock on the word of its region (FUTEX_LOCK_PI2 /
//! FUTEX_UNLOCK_PI). The word holds the owner's TID. Taking a free lock is a user-space
//! compare-exchange 0 → TID; releasing one nobody waits for is TID → 0.
//!
//! Why it barges less than `futex`, from `kernel/futex/pi.c`: a contender that finds the word
//! owned enters the kernel (`futex_lock_pi`), which, under the hash-bucket lock, sets
//! FUTEX_WAITERS in the word (`futex_lock_pi_atomic`) and queues it on the word's rt_mutex. From
//! then on the owner's TID → 0 compare-exchange fails, so its unlock goes to the kernel, and
//! `wake_futex_pi` writes the top waiter's TID into the word (keeping FUTEX_WAITERS while PI
//! state exists): the lock is handed over, still locked, and the releaser's next attempt finds
//! it owned and queues behind. Among waiters of equal priority the rt_mutex is FIFO, and a
//! waiter that was dequeued for wakeup stays the top waiter until it runs, so a newcomer of the
//! same priority cannot steal it (only a higher priority one may).
//!
//! What barging remains is the user-space fast path: between a contender's failed
//! compare-exchange and the moment the kernel sets FUTEX_WAITERS for it, the owner can still
//! release TID → 0 and take it back 0 → TID; a contender preempted in that window is overtaken
//! for as long as it is off the CPU. And once the queue is empty the lock is a race again: the
//! last waiter is handed the word with FUTEX_WAITERS still set, its release goes through the
//! kernel, which finds nobody queued and writes 0.
//!
//! A signal never ends FUTEX_LOCK_PI (the kernel restarts it), so the wait is cut into slices
//! with a deadline; between slices the round loop looks at the stop flag and the watchdog.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath, Outcome};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::{Ctx, Exclusion, Handoff, Opened, SetupError};
use crate::arena::Arena;
use crate::sys::clock::monotonic_ns;
use crate::sys::futex;
use crate::sys::mapping::shared_atomics;

pub(super) const SPEC: Spec = Spec {
    name: "pi-futex",
    family: Family::Mutexes,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath {
        owner_died: Some(owner_died),
        owner_tid: Some(owner_tid),
        ..HolderDeath::plain(&[Description::Own], handed_on_at_exit)
    },
    whoops_in_storms: false,
    yardstick: Yardstick::NoCounterpart("bench/pingpong.c has no priority-inheritance lock"),
    profile: Profile {
        overtaking: Overtaking::Fifo,
        death: Death::Told,
        needs: "Linux ≥ 5.14 (FUTEX_LOCK_PI2); a shared mapping",
        from_async: "no descriptor: a thread",
    },
};

shared_atomics! {
/// `pi-futex`'s region: the PI futex word (owner's TID, FUTEX_WAITERS, FUTEX_OWNER_DIED).
#[repr(align(64))]
#[derive(Debug)]
struct PiWord {
    word: AtomicU32,
    _pad: [AtomicU32; 15],
}
}

const _: () = assert!(size_of::<PiWord>() == 64);

/// How long one kernel wait lasts before the round loop gets to look at the stop flag.
const SLICE_NS: u64 = 20_000_000;

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    let lock = PiFutex {
        word: &ctx.arena.region::<PiWord>().word,
        tid: futex::thread_id(),
    };
    Ok(Opened::in_arena(ctx, lock))
}

/// True if the word carries FUTEX_OWNER_DIED: a PI futex whose owner exited is handed on with
/// it.
fn owner_died(arena: &Arena) -> bool {
    arena.region::<PiWord>().word.load(Ordering::Acquire) & nix::libc::FUTEX_OWNER_DIED != 0
}

/// The owner's TID, as the word records it.
fn owner_tid(arena: &Arena) -> u32 {
    arena.region::<PiWord>().word.load(Ordering::Acquire) & nix::libc::FUTEX_TID_MASK
}

/// At the owner's exit, `exit_pi_state_list` hands the word to the top waiter.
fn handed_on_at_exit(_: Description, outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Got {
            owner_died: true, ..
        } => Some(
            "the kernel handed the PI futex to the waiter as the owner exited, with FUTEX_OWNER_DIED in the word",
        ),
        Outcome::Got { .. } => {
            Some("the kernel handed the PI futex to the waiter as the owner exited")
        }
        Outcome::Refused(Errno::ESRCH) => Some(
            "ESRCH: the word names a dead owner (it died while the survivor was between two timed waits, not queued), and the kernel will not hand it on",
        ),
        _ => None,
    }
}

#[derive(Debug)]
struct PiFutex<'a> {
    word: &'a AtomicU32,
    /// Our thread id: the word's value while we own it. The session runs on one thread.
    tid: u32,
}

impl Handoff for PiFutex<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let word = self.word;
        if word
            .compare_exchange(0, self.tid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        match futex::lock_pi_until(word, monotonic_ns().saturating_add(SLICE_NS)) {
            Ok(()) => Ok(()),
            // Not ours yet: let the round loop look at the stop flag, then come back.
            Err(Errno::ETIMEDOUT) => Err(Errno::EINTR),
            Err(e) => Err(e),
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        let word = self.word;
        if word
            .compare_exchange(self.tid, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        // FUTEX_WAITERS is set: the kernel hands the word to the top waiter.
        futex::unlock_pi(word)
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Waiters come out of the kernel at the end of their slice and see the stop flag.
        Ok(())
    }
}
