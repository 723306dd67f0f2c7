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
//! fence and swap of `parked`. At least one of them sees the other's write.
//!
//! The sleeper sleeps on its own `parked` word, not on the turn word, and the waker clears that
//! word as it wakes. A waker can be delayed between its turn store and its swap long enough for
//! the sleeper to take that turn, pass it back and park again; the late swap then clears the
//! flag of the *new* sleep. Had the sleeper been waiting on the turn word, it would sleep on with
//! its flag cleared, and the next handoff, seeing no flag, would not wake it: a lost wakeup
//! (`bench --spin-sweep` hit it about once in 40 runs). Waiting on `parked` itself, the cleared
//! flag is the futex value changing: the sleeper is woken or never sleeps, re-parks and looks
//! at the turn again.
//!
//! Cache lines a handoff moves between CPUs (two contenders on split CPUs, the spinner never
//! parked). The C floor (`bench/pingpong.c spin`) moves one: the turn word. Here the next holder
//! fetches the turn line (turn, stop) and then owns the arena's hot line (occupant, release
//! timestamp, "line n") with one `lock xadd` ([`Header::enter`]): two lines, each moved once.
//! Until issue 17 it was four transfers: the hot line cost a read miss and then a second
//! transaction to own it (`fetch_or` compiled to a load and a `lock cmpxchg`), and the waker's
//! unconditional swap of the next contender's `parked` took that contender's slot line away, to
//! be fetched back at its next `acquire`. Putting the turn word on the hot line (one line per
//! handoff) measured slower: the spinner's polls then pull the line away from the holder between
//! its writes during its turn, and each write must own the line again. What can be hidden is
//! the wait for the hot line: the holder is done with it before it passes the turn, so the
//! spinner asks for it (`prefetchw`) the moment it sees the turn, and the transfer overlaps
//! the timestamp the session takes before `enter`.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering, fence};

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath, Outcome, Protected, Protection, Repair};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, SetupError};
use crate::arena::{Arena, Header, MAX_CONTENDERS, NO_TURN};
use crate::placement::Placement;
use crate::sys::mapping::shared_atomics;
use crate::sys::{cpu, futex, prefetch};

pub(super) const SPEC: Spec = Spec {
    name: "spin-futex",
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
        ..HolderDeath::plain(&[Description::Own], only_a_live_holder_clears)
    },
    whoops_in_storms: false,
    // Spinning on one CPU would take a scheduler tick per turn: the pair only on split CPUs.
    yardstick: Yardstick::Counterpart {
        mode: "spin",
        only: Some(Placement::Split),
    },
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Held,
        needs: "a shared mapping; a second CPU to pay off",
        from_async: "no: it spins on the calling thread",
    },
};

shared_atomics! {
/// One contender's words, on a cache line of its own.
#[repr(align(64))]
#[derive(Debug)]
struct Spinner {
    /// Non-zero while this contender sleeps in FUTEX_WAIT (a handoff wakes only sleepers).
    parked: AtomicU32,
    /// The CPU this contender last ran its turn on (spin only for a holder that runs on
    /// another CPU).
    cpu: AtomicU32,
    _pad: [AtomicU32; 14],
}
}

shared_atomics! {
/// `spin-futex`'s region: the mutex of `--mode free` and its owner on one line, then a line
/// per contender. `turns` mode spins on the arena's turn word.
#[repr(align(64))]
#[derive(Debug)]
struct SpinWords {
    /// The three-state futex mutex word of `--mode free`.
    mutex: AtomicU32,
    /// Who holds `mutex` (contender index), so a spinner can see whether the holder is running.
    mutex_owner: AtomicU32,
    _pad: [AtomicU32; 14],
    spinners: [Spinner; MAX_CONTENDERS],
}
}

const _: () = assert!(size_of::<Spinner>() == 64);
const _: () = assert!(std::mem::offset_of!(SpinWords, spinners) == 64);

impl SpinWords {
    /// Contender `c`'s line (`c < MAX_CONTENDERS`).
    fn of(&self, c: usize) -> &Spinner {
        &self.spinners[c.min(MAX_CONTENDERS - 1)]
    }
}

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(match ctx.mode {
        Mode::Turns => Opened::in_arena(ctx, turns(ctx)),
        Mode::Free => Opened::in_arena(ctx, mutex(ctx)),
    })
}

fn only_a_live_holder_clears(_: Description, outcome: Outcome) -> Option<&'static str> {
    (outcome == Outcome::Nothing).then_some(
        "held forever: the survivor spins, then sleeps on a flag only a live holder clears",
    )
}

/// After `dead` died: the turn passes to `me` if `dead` held it, then the hand-over protocol
/// wakes `me`: clear its flag, then wake it.
fn take_over(arena: &Arena, me: usize, dead: usize) {
    let _ = arena.header().turn.compare_exchange(
        dead as u32,
        me as u32,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    fence(Ordering::SeqCst);
    let parked = &arena.region::<SpinWords>().of(me).parked;
    if parked.swap(0, Ordering::SeqCst) != 0 {
        let _ = futex::wake(parked, 1);
    }
}

fn turns<'a>(ctx: &Ctx<'a>) -> SpinTurns<'a> {
    SpinTurns {
        words: ctx.arena.region(),
        header: ctx.arena.header(),
        me: ctx.contender,
        contenders: ctx.contenders,
        spin: ctx.spin(),
    }
}

fn mutex<'a>(ctx: &Ctx<'a>) -> SpinMutex<'a> {
    SpinMutex {
        words: ctx.arena.region(),
        header: ctx.arena.header(),
        me: ctx.contender,
        contenders: ctx.contenders,
        spin: ctx.spin(),
    }
}

/// True if `holder` is awake on a CPU other than ours: worth spinning for.
fn holder_runs_elsewhere(words: &SpinWords, holder: usize, contenders: usize, my_cpu: u32) -> bool {
    if holder >= contenders {
        return false;
    }
    let slot = words.of(holder);
    slot.parked.load(Ordering::Relaxed) == 0 && slot.cpu.load(Ordering::Relaxed) != my_cpu
}

/// Records the CPU we run on, writing only when it changed: spinners read this word, and an
/// unchanged line stays shared in their caches.
fn publish_cpu(words: &SpinWords, me: usize) -> u32 {
    let here = cpu::current_cpu().unwrap_or(usize::MAX) as u32;
    let slot = words.of(me);
    if slot.cpu.load(Ordering::Relaxed) != here {
        slot.cpu.store(here, Ordering::Relaxed);
    }
    here
}

#[derive(Debug)]
struct SpinTurns<'a> {
    words: &'a SpinWords,
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
        let my_cpu = publish_cpu(self.words, self.me);
        for _ in 0..self.spin {
            let t = h.turn.load(Ordering::Acquire);
            if t == me {
                // The holder finished with the hot line before it passed the turn: ask for the
                // line now, so the overlap detector's `enter` finds it on its way.
                prefetch::for_write(&h.occupant);
                return Ok(());
            }
            if t == NO_TURN || h.stopped().is_some() {
                return Ok(());
            }
            if !holder_runs_elsewhere(self.words, t as usize, self.contenders, my_cpu) {
                break;
            }
            std::hint::spin_loop();
        }
        // Anything that returns without our turn (a spurious wakeup, a late waker's clear) means:
        // raise the flag and look again.
        let slot = self.words.of(self.me);
        let result = loop {
            slot.parked.store(1, Ordering::SeqCst);
            let seen = h.turn.load(Ordering::SeqCst);
            if seen == me || seen == NO_TURN || h.stopped().is_some() {
                break Ok(());
            }
            #[cfg(test)]
            tests::before_sleep();
            // Sleeps only while our flag is still up: whoever clears it also wakes us.
            match futex::wait(&slot.parked, 1) {
                Ok(()) | Err(Errno::EAGAIN) => continue,
                Err(e) => break Err(e),
            }
        };
        slot.parked.store(0, Ordering::Relaxed);
        publish_cpu(self.words, self.me);
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
        let parked = &self.words.of(next).parked;
        // Look before writing: when the next contender spins (the case that must be fast), its
        // flag is down, and a read leaves its slot's line shared in both caches, where a swap
        // would take the line away and the spinner would fetch it back: two more line transfers
        // per handoff. The fence above is what the park protocol needs, not the swap.
        if parked.load(Ordering::SeqCst) != 0 && parked.swap(0, Ordering::SeqCst) != 0 {
            futex::wake(parked, 1)?;
        }
        Ok(())
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        self.header.turn.store(NO_TURN, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        for c in 0..self.contenders {
            let parked = &self.words.of(c).parked;
            if parked.swap(0, Ordering::SeqCst) != 0 {
                futex::wake(parked, 1)?;
            }
        }
        Ok(())
    }
}

/// `free` mode: try the futex mutex, spinning while its owner runs on another CPU, then take the
/// sleeping slow path of the three-state mutex.
#[derive(Debug)]
struct SpinMutex<'a> {
    words: &'a SpinWords,
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
        let (h, w) = (self.header, self.words);
        let my_cpu = publish_cpu(self.words, self.me);
        let mut taken = false;
        for _ in 0..self.spin {
            if w.mutex
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                taken = true;
                break;
            }
            if h.stopped().is_some() {
                break;
            }
            let owner = w.mutex_owner.load(Ordering::Relaxed) as usize;
            if !holder_runs_elsewhere(self.words, owner, self.contenders, my_cpu) {
                break;
            }
            std::hint::spin_loop();
        }
        if !taken {
            let slot = self.words.of(self.me);
            slot.parked.store(1, Ordering::Relaxed);
            let r = super::futex::lock_slow(&w.mutex);
            slot.parked.store(0, Ordering::Relaxed);
            r?;
        }
        w.mutex_owner.store(self.me as u32, Ordering::Relaxed);
        publish_cpu(self.words, self.me);
        Ok(())
    }

    fn release(&mut self) -> Result<(), Errno> {
        super::futex::unlock(&self.words.mutex)
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
    use std::cell::RefCell;
    use std::sync::mpsc;
    use std::time::Duration;

    use nix::sys::eventfd::{EfdFlags, EventFd};

    use crate::arena::Arena;
    use crate::variant::{Ctx, Mode, Variant};

    thread_local! {
        /// Runs on this thread between raising the flag and going to sleep.
        static BEFORE_SLEEP: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
    }

    pub(super) fn before_sleep() {
        BEFORE_SLEEP.with(|hook| {
            if let Some(f) = hook.borrow_mut().as_mut() {
                f();
            }
        });
    }

    /// The lost wakeup, replayed step by step: the waker (0) passes the turn but is delayed
    /// before its swap; the sleeper (1) takes the turn, passes it back and parks again; the
    /// waker's late swap clears the new sleep's flag just before the sleeper goes to sleep; the
    /// waker's next handoff must still wake it.
    #[test]
    fn a_late_waker_cannot_make_the_next_wakeup_go_missing() {
        let arena = Arena::create(2).unwrap();
        Variant::SpinFutex.prepare(&arena, Mode::Turns, 2).unwrap();
        let abort = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).unwrap();
        let ctx = |contender| Ctx {
            arena: &arena,
            contender,
            contenders: 2,
            mode: Mode::Turns,
            spin: 1,
            abort: std::os::fd::AsFd::as_fd(&abort),
        };
        let (about_to_sleep, sleeper_parked) = mpsc::channel::<i32>();
        let (late_swap_done, go_to_sleep) = mpsc::channel::<()>();
        let (sleeper_done, done) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let mut waker = Variant::SpinFutex.open(&ctx(0), Vec::new()).unwrap();
            waker.handoff.acquire().unwrap();
            waker.turn.pass(1).unwrap();
            // The waker's hand_over is late: the sleeper runs a whole turn first.
            let sleeper_ctx = ctx(1);
            scope.spawn(move || {
                let mut sleeper = Variant::SpinFutex.open(&sleeper_ctx, Vec::new()).unwrap();
                sleeper.handoff.acquire().unwrap();
                assert!(sleeper.turn.is_mine().unwrap());
                sleeper.turn.pass(0).unwrap();
                sleeper.handoff.hand_over(0).unwrap();
                let mut first = true;
                BEFORE_SLEEP.with(|hook| {
                    *hook.borrow_mut() = Some(Box::new(move || {
                        if std::mem::take(&mut first) {
                            about_to_sleep.send(nix::unistd::gettid().as_raw()).unwrap();
                            go_to_sleep.recv().unwrap();
                        }
                    }));
                });
                sleeper.handoff.acquire().unwrap();
                let _ = sleeper_done.send(());
            });
            let tid = sleeper_parked.recv().unwrap();
            waker.handoff.hand_over(1).unwrap();
            late_swap_done.send(()).unwrap();
            // Let the sleeper really fall asleep on an arena word before the next handoff.
            let words = [
                std::ptr::from_ref(&arena.header().turn) as usize,
                std::ptr::from_ref(&arena.region::<super::SpinWords>().of(1).parked) as usize,
            ];
            assert!(
                wait_for_futex_sleep(tid, &words, Duration::from_secs(10)),
                "the sleeper never went to sleep"
            );
            // The waker's next turn, and its handoff: the sleeper must wake.
            waker.handoff.acquire().unwrap();
            assert!(waker.turn.is_mine().unwrap());
            waker.turn.pass(1).unwrap();
            waker.handoff.hand_over(1).unwrap();
            let woke = done.recv_timeout(Duration::from_secs(10)).is_ok();
            if !woke {
                // Unstick the sleeper so the scope can end, then fail.
                waker.handoff.wake_everyone().unwrap();
            }
            assert!(woke, "the sleeper was never woken: a lost wakeup");
        });
    }

    /// Waits until thread `tid` of this process sleeps in `futex` on one of `words`, as
    /// `/proc/self/task/TID/syscall` shows (syscall number, then the futex address).
    fn wait_for_futex_sleep(tid: i32, words: &[usize], timeout: Duration) -> bool {
        let give_up = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < give_up {
            let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
                .unwrap_or_default();
            let mut fields = text.split_whitespace();
            let nr = fields.next().and_then(|n| n.parse::<i64>().ok());
            let addr = fields
                .next()
                .and_then(|a| usize::from_str_radix(a.trim_start_matches("0x"), 16).ok());
            if nr == Some(nix::libc::SYS_futex) && addr.is_some_and(|a| words.contains(&a)) {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }
}
