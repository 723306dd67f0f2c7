//! `uring-futex`: the `futex` handoff with every wait and wake going through io_uring
//! (`IORING_OP_FUTEX_WAIT` / `FUTEX_WAKE`, Linux ≥ 6.7): an asynchronous wait that needs no
//! eventfd, to set beside `futex` (the same wait as a syscall) and `tokio-eventfd` (an async wait
//! through epoll and an eventfd).
//!
//! In `turns` mode each waiter sleeps on the arena's turn word with its own bit, and a handoff
//! wakes only the next contender's bit: no thundering herd, so no whoops with any number of
//! contenders (beyond 32 two contenders share a bit; the one woken for nothing sleeps again). In
//! `free` mode, the three-state futex mutex of `futex`, its waits and wakes through the ring.
//!
//! Each contender has its own ring on its session thread. A wait is interrupted by the watchdog's
//! signal like a plain futex wait (`io_uring_enter` returns `EINTR`); the request stays queued and
//! the next wait picks it up.

use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::futex::MutexWord;
use super::holder_death::{Description, HolderDeath, Outcome};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, SetupError, sys};
use crate::arena::{Header, NO_TURN};
use crate::sys::futex::bit;
use crate::sys::uring::{self, ALL_BITS, FutexRing, Unavailable};

pub(super) const SPEC: Spec = Spec {
    name: "uring-futex",
    family: Family::Mutexes,
    shares_description: false,
    supports: Supports {
        available: Some(available),
        ..Supports::EVERYTHING
    },
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath::plain(&[Description::Own], no_owner),
    whoops_in_storms: false,
    yardstick: Yardstick::NoCounterpart(
        "bench/pingpong.c waits with the futex syscall: its futex mode is `futex`'s counterpart",
    ),
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Held,
        needs: "Linux ≥ 6.7 and io_uring allowed; a shared mapping",
        from_async: "yes: an io_uring completion",
    },
};

/// Where to read io_uring's disable switch instead of [`uring::DISABLED_SYSCTL`]: a file holding
/// `2` shows what a machine with io_uring switched off does (the variant refused, `compare`
/// listing it as not run) without switching it off for everyone. The wire protocol knows
/// nothing of it: each process probes its own kernel.
pub const SYSCTL_ENV: &str = "LOCKFAIR_IO_URING_SYSCTL";

/// Whether this machine can run `uring-futex`, asked of the kernel once per process.
fn available() -> Result<(), Unavailable> {
    static PROBED: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    PROBED
        .get_or_init(|| {
            let path = std::env::var_os(SYSCTL_ENV)
                .map_or_else(|| uring::DISABLED_SYSCTL.into(), std::path::PathBuf::from);
            uring::probe(&path)
        })
        .clone()
}

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(match ctx.mode {
        Mode::Turns => Opened::in_arena(ctx, turns(ctx)?),
        Mode::Free => Opened::in_arena(ctx, mutex(ctx)?),
    })
}

fn no_owner(_: Description, outcome: Outcome) -> Option<&'static str> {
    (outcome == Outcome::Nothing).then_some(
        "held forever: a futex word waited on through io_uring is still a word with no owner the kernel knows",
    )
}

fn ring() -> Result<FutexRing, SetupError> {
    FutexRing::new().map_err(sys("set up an io_uring"))
}

fn turns<'a>(ctx: &Ctx<'a>) -> Result<UringTurns<'a>, SetupError> {
    Ok(UringTurns {
        header: ctx.arena.header(),
        me: ctx.contender as u32,
        ring: ring()?,
    })
}

fn mutex<'a>(ctx: &Ctx<'a>) -> Result<UringMutex<'a>, SetupError> {
    Ok(UringMutex {
        word: &ctx.arena.region::<MutexWord>().word,
        ring: ring()?,
    })
}

#[derive(Debug)]
struct UringTurns<'a> {
    header: &'a Header,
    me: u32,
    ring: FutexRing,
}

impl Handoff for UringTurns<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let mine = bit(self.me as usize).get();
        loop {
            let seen = self.header.turn.load(Ordering::Acquire);
            if seen == self.me || seen == NO_TURN || self.header.stopped().is_some() {
                return Ok(());
            }
            match self.ring.wait(&self.header.turn, seen, mine) {
                // A wake (for us, or a spurious one) or a turn that moved meanwhile: look again.
                Ok(()) | Err(Errno::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, next: usize) -> Result<(), Errno> {
        self.ring.wake(&self.header.turn, 1, bit(next).get())
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Change the word too, so a waiter that read it but is not queued yet will not sleep.
        self.header.turn.store(NO_TURN, Ordering::Release);
        self.ring.wake(&self.header.turn, i32::MAX as u32, ALL_BITS)
    }
}

/// The three-state futex mutex (0 free, 1 locked, 2 locked and maybe waited for) on the word
/// of `futex`'s region, as `futex` runs it.
#[derive(Debug)]
struct UringMutex<'a> {
    word: &'a AtomicU32,
    ring: FutexRing,
}

impl UringMutex<'_> {
    fn lock(&mut self, word: &AtomicU32) -> Result<(), Errno> {
        let mut c = match word.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(c) => c,
        };
        if c != 2 {
            c = word.swap(2, Ordering::Acquire);
        }
        while c != 0 {
            match self.ring.wait(word, 2, ALL_BITS) {
                Ok(()) | Err(Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
            c = word.swap(2, Ordering::Acquire);
        }
        Ok(())
    }
}

impl Handoff for UringMutex<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let word = self.word;
        self.lock(word)
    }

    fn release(&mut self) -> Result<(), Errno> {
        let word = self.word;
        if word.fetch_sub(1, Ordering::Release) != 1 {
            word.store(0, Ordering::Release);
            self.ring.wake(word, 1, ALL_BITS)?;
        }
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_one_line_naming_the_variant_and_the_fix() {
        let line = SetupError::Unavailable {
            variant: crate::variant::Variant::UringFutex,
            why: Unavailable::Disabled {
                path: uring::DISABLED_SYSCTL.into(),
                value: "2".into(),
            },
        }
        .to_string();
        assert!(line.starts_with("uring-futex "), "{line}");
        assert!(line.contains("io_uring_disabled = 2"), "{line}");
        assert!(line.contains("set it to 0"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}
