//! `spin-futex`: spin on the turn word while its holder is running on another CPU, then sleep in
//! FUTEX_WAIT; the handoff wakes only a contender that is actually asleep.
//!
//! Spinning only pays when the holder can finish meanwhile: on another CPU, it hands over within
//! a cache-line transfer and the spinner never pays a wakeup. On the holder's own CPU every spin
//! iteration is time the holder cannot use, so we do not spin there at all (the adaptive rule the
//! kernel's mutexes use: spin while the owner is on a CPU). Each contender publishes the CPU it
//! last took its turn on; a spinner compares it with its own. The spin bound is a safety net,
//! chosen by `lockfair-client bench --spin-sweep` (README).
//!
//! The park protocol is Dekker's: the sleeper stores `parked` then re-reads the turn, both
//! sequentially consistent; the waker stores the turn (release), then a sequentially consistent
//! fence and swap of `parked`. At least one of them sees the other's write, so no wakeup is lost.

use std::sync::atomic::{Ordering, fence};

use nix::errno::Errno;

use super::{Ctx, Exclusion, Handoff};
use crate::arena::{Arena, Header, NO_TURN, Slot};
use crate::sys::{cpu, futex};

pub(super) fn turns<'a>(ctx: &Ctx<'a>) -> SpinTurns<'a> {
    SpinTurns {
        arena: ctx.arena,
        header: ctx.arena.header(),
        me: ctx.contender,
        contenders: ctx.contenders,
        spin: ctx.spin(),
    }
}

pub(super) fn mutex<'a>(ctx: &Ctx<'a>) -> SpinMutex<'a> {
    SpinMutex {
        arena: ctx.arena,
        header: ctx.arena.header(),
        me: ctx.contender,
        contenders: ctx.contenders,
        spin: ctx.spin(),
    }
}

/// True if `holder` is awake on a CPU other than ours: worth spinning for.
fn holder_runs_elsewhere(arena: &Arena, holder: usize, contenders: usize, my_cpu: u32) -> bool {
    if holder >= contenders {
        return false;
    }
    let slot: &Slot = arena.slot(holder);
    slot.parked.load(Ordering::Relaxed) == 0 && slot.cpu.load(Ordering::Relaxed) != my_cpu
}

/// Records the CPU we run on, writing only when it changed: spinners read this word, and an
/// unchanged line stays shared in their caches.
fn publish_cpu(arena: &Arena, me: usize) -> u32 {
    let here = cpu::current_cpu().unwrap_or(usize::MAX) as u32;
    let slot = arena.slot(me);
    if slot.cpu.load(Ordering::Relaxed) != here {
        slot.cpu.store(here, Ordering::Relaxed);
    }
    here
}

#[derive(Debug)]
pub(super) struct SpinTurns<'a> {
    arena: &'a Arena,
    header: &'a Header,
    me: usize,
    contenders: usize,
    spin: u32,
}

impl Handoff for SpinTurns<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let (h, me) = (self.header, self.me as u32);
        let my_cpu = publish_cpu(self.arena, self.me);
        for _ in 0..self.spin {
            let t = h.turn.load(Ordering::Acquire);
            if t == me || t == NO_TURN || h.stopped().is_some() {
                return Ok(());
            }
            if !holder_runs_elsewhere(self.arena, t as usize, self.contenders, my_cpu) {
                break;
            }
            std::hint::spin_loop();
        }
        // Wakes are addressed (one bit per contender), so anything that returns without our turn
        // (a spurious wakeup, or the word moving on to someone else) means: wait again.
        let slot = self.arena.slot(self.me);
        let result = loop {
            slot.parked.store(1, Ordering::SeqCst);
            let seen = h.turn.load(Ordering::SeqCst);
            if seen == me || seen == NO_TURN || h.stopped().is_some() {
                break Ok(());
            }
            match futex::wait_bits(&h.turn, seen, futex::bit(self.me)) {
                Ok(()) | Err(Errno::EAGAIN) => continue,
                Err(e) => break Err(e),
            }
        };
        slot.parked.store(0, Ordering::Relaxed);
        publish_cpu(self.arena, self.me);
        result
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, next: usize) -> Result<(), Errno> {
        // Pairs with the sleeper's store to `parked` and load of the turn. Clearing `parked` as
        // we wake it tells the others it is on its way: without that, a spinner would see a
        // holder "asleep" while it wakes up, park as well, and the pair would stay in a convoy
        // of two wakeups per round.
        fence(Ordering::SeqCst);
        if self.arena.slot(next).parked.swap(0, Ordering::SeqCst) != 0 {
            futex::wake_bits(&self.header.turn, i32::MAX as u32, futex::bit(next))?;
        }
        Ok(())
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        self.header.turn.store(NO_TURN, Ordering::SeqCst);
        futex::wake_bits(
            &self.header.turn,
            i32::MAX as u32,
            std::num::NonZeroU32::MAX,
        )
        .map(drop)
    }
}

/// `free` mode: try the futex mutex, spinning while its owner runs on another CPU, then take the
/// sleeping slow path of the three-state mutex.
#[derive(Debug)]
pub(super) struct SpinMutex<'a> {
    arena: &'a Arena,
    header: &'a Header,
    me: usize,
    contenders: usize,
    spin: u32,
}

impl Handoff for SpinMutex<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let h = self.header;
        let my_cpu = publish_cpu(self.arena, self.me);
        let mut taken = false;
        for _ in 0..self.spin {
            if h.mutex
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                taken = true;
                break;
            }
            if h.stopped().is_some() {
                break;
            }
            let owner = h.mutex_owner.load(Ordering::Relaxed) as usize;
            if !holder_runs_elsewhere(self.arena, owner, self.contenders, my_cpu) {
                break;
            }
            std::hint::spin_loop();
        }
        if !taken {
            let slot = self.arena.slot(self.me);
            slot.parked.store(1, Ordering::Relaxed);
            let r = super::futex::lock_slow(&h.mutex);
            slot.parked.store(0, Ordering::Relaxed);
            r?;
        }
        h.mutex_owner.store(self.me as u32, Ordering::Relaxed);
        publish_cpu(self.arena, self.me);
        Ok(())
    }

    fn release(&mut self) -> Result<(), Errno> {
        super::futex::unlock(&self.header.mutex)
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        Ok(())
    }
}
