//! `futex`: in `turns` mode, FUTEX_WAIT on the arena's turn word until it names us; the holder
//! stores the next contender's index and FUTEX_WAKEs. The memory is shared between processes, so
//! the futex is a shared one (never FUTEX_PRIVATE_FLAG). With more than two contenders every
//! waiter sleeps on the same word, a wake reaches all of them, and those it was not meant for
//! count as whoops: the thundering herd, measured.
//!
//! In `free` mode, the classic three-state futex mutex (0 free, 1 locked, 2 locked with waiters,
//! Drepper's "Futexes Are Tricky"): a releaser that finds no waiter makes no syscall, and a
//! waker does not hand over: the woken waiter competes with anyone arriving, barging included.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath, Outcome, Protected, Protection, Repair};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, SetupError};
use crate::arena::{Arena, Header, NO_TURN};
use crate::sys::futex;
use crate::sys::mapping::shared_atomics;

pub(super) const SPEC: Spec = Spec {
    name: "futex",
    family: Family::Mutexes,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath {
        survivable: &[Description::Own],
        protection: Some(Protected {
            kind: Protection::WatcherThread,
            token: 0,
            repair: Repair::Words(take_over),
            survived: None,
        }),
        ..HolderDeath::plain(&[Description::Own], no_owner)
    },
    whoops_in_storms: false,
    yardstick: Yardstick::Counterpart {
        mode: "futex",
        only: None,
    },
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Held,
        needs: "a shared mapping (the memfd mapped MAP_SHARED)",
        from_async: "no descriptor: a thread, or io_uring (uring-futex)",
    },
};

shared_atomics! {
/// `futex`'s region (and `uring-futex`'s): the three-state mutex of `--mode free` (0 free,
/// 1 locked, 2 locked with waiters), on a cache line of its own. `turns` mode uses the arena's
/// turn word.
#[repr(align(64))]
#[derive(Debug)]
pub(super) struct MutexWord {
    pub(super) word: AtomicU32,
    _pad: [AtomicU32; 15],
}
}

const _: () = assert!(size_of::<MutexWord>() == 64);

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(match ctx.mode {
        Mode::Turns => Opened::in_arena(ctx, turns(ctx)),
        Mode::Free => Opened::in_arena(ctx, mutex(ctx)),
    })
}

fn no_owner(_: Description, outcome: Outcome) -> Option<&'static str> {
    (outcome == Outcome::Nothing).then_some(
        "held forever: nobody passes the turn word on, and the kernel does not know who owned it",
    )
}

/// After `dead` died: the turn passes to `me` if `dead` held it, and `me` is woken.
fn take_over(arena: &Arena, me: usize, dead: usize) {
    let h = arena.header();
    let _ = h
        .turn
        .compare_exchange(dead as u32, me as u32, Ordering::AcqRel, Ordering::Acquire);
    let _ = futex::wake(&h.turn, i32::MAX as u32);
}

fn turns<'a>(ctx: &Ctx<'a>) -> FutexTurns<'a> {
    FutexTurns {
        header: ctx.arena.header(),
        me: ctx.contender as u32,
        pair: ctx.contenders == 2,
    }
}

fn mutex<'a>(ctx: &Ctx<'a>) -> FutexMutex<'a> {
    FutexMutex {
        word: &ctx.arena.region::<MutexWord>().word,
    }
}

#[derive(Debug)]
struct FutexTurns<'a> {
    header: &'a Header,
    me: u32,
    /// Two contenders: a handoff wakes the one waiter, and a wake can only mean our turn came (a
    /// FUTEX_WAIT that returns without it is spurious, which futex(2) says to expect: wait
    /// again). More: a handoff wakes everyone, and waking for another's turn is a whoop.
    pair: bool,
}

impl Handoff for FutexTurns<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        loop {
            let seen = self.header.turn.load(Ordering::Acquire);
            if seen == self.me || seen == NO_TURN || self.header.stopped().is_some() {
                return Ok(());
            }
            match futex::wait(&self.header.turn, seen) {
                Ok(()) | Err(Errno::EAGAIN) if self.pair => continue,
                Ok(()) | Err(Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        let wake = if self.pair { 1 } else { i32::MAX as u32 };
        futex::wake(&self.header.turn, wake).map(drop)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Change the word too, so a waiter that read it but is not asleep yet will not sleep.
        self.header.turn.store(NO_TURN, Ordering::Release);
        futex::wake(&self.header.turn, i32::MAX as u32).map(drop)
    }
}

/// The three-state futex mutex on the region's word.
#[derive(Debug)]
struct FutexMutex<'a> {
    word: &'a AtomicU32,
}

/// Takes the futex mutex `word` (0 free, 1 locked, 2 locked and maybe waited for).
pub(super) fn lock_slow(word: &AtomicU32) -> Result<(), Errno> {
    let mut c = match word.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed) {
        Ok(_) => return Ok(()),
        Err(c) => c,
    };
    if c != 2 {
        c = word.swap(2, Ordering::Acquire);
    }
    while c != 0 {
        match futex::wait(word, 2) {
            Ok(()) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
        c = word.swap(2, Ordering::Acquire);
    }
    Ok(())
}

/// Releases the futex mutex `word`, waking one waiter if there may be any.
pub(super) fn unlock(word: &AtomicU32) -> Result<(), Errno> {
    if word.fetch_sub(1, Ordering::Release) != 1 {
        word.store(0, Ordering::Release);
        futex::wake(word, 1)?;
    }
    Ok(())
}

impl Handoff for FutexMutex<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        lock_slow(self.word)
    }

    fn release(&mut self) -> Result<(), Errno> {
        unlock(self.word)
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        Ok(())
    }
}
