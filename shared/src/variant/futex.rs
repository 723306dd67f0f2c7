//! `futex`: FUTEX_WAIT on the arena's turn word until it names us; the holder stores the next
//! contender's index and FUTEX_WAKEs. The memory is shared between processes, so the futex is a
//! shared one (never FUTEX_PRIVATE_FLAG). With more than two contenders every waiter sleeps on the
//! same word, a wake reaches all of them, and those it was not meant for count as whoops.

use std::sync::atomic::Ordering;

use nix::errno::Errno;

use super::{Ctx, Exclusion, Handoff};
use crate::arena::{Header, NO_TURN};
use crate::sys::futex;

pub(super) fn open<'a>(ctx: &Ctx<'a>) -> FutexHandoff<'a> {
    FutexHandoff {
        header: ctx.arena.header(),
        me: ctx.contender as u32,
        wake: if ctx.contenders == 2 {
            1
        } else {
            i32::MAX as u32
        },
    }
}

#[derive(Debug)]
pub(super) struct FutexHandoff<'a> {
    header: &'a Header,
    me: u32,
    /// How many waiters a handoff wakes: the one other side, or everyone.
    wake: u32,
}

impl Handoff for FutexHandoff<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let seen = self.header.turn.load(Ordering::Acquire);
        if seen == self.me || seen == NO_TURN {
            return Ok(());
        }
        match futex::wait(&self.header.turn, seen) {
            Ok(()) | Err(Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        futex::wake(&self.header.turn, self.wake).map(drop)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Change the word too, so a waiter that read it but is not asleep yet will not sleep.
        self.header.turn.store(NO_TURN, Ordering::Release);
        futex::wake(&self.header.turn, i32::MAX as u32).map(drop)
    }
}
