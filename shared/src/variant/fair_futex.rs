//! `fair-futex`: eventual fairness, as parking_lot's `RawMutex` and WebKit's ParkingLot do it,
//! across processes.
//!
//! The lock word (`state` in the region of [`super::wait_queue`]) has a LOCKED bit, a PARKED
//! bit (someone is in the wait queue) and a WAKING bit (below). Taking the lock is a
//! compare-exchange that sets LOCKED whenever it is clear, even with contenders parked: normally
//! the lock barges, which is what makes it fast. A contender that finds it locked spins briefly
//! (only while nobody is parked), then parks at the back of the queue.
//!
//! A releaser that finds PARKED looks at the fairness deadline kept in the arena and decides how
//! to let go:
//! - normally it clears LOCKED first, then, unless a queued contender is already awake (the
//!   WAKING bit), wakes the queue's front contender, who must compete with anyone arriving, and
//!   may lose and sleep again. The lock is free while the releaser waits for the queue's lock,
//!   and while the woken contender is on its way unlocks touch nothing but the lock word (Go's
//!   `mutexWoken`; the futex mutex gets the same by leaving its word at 1 until the woken
//!   waiter sets 2);
//! - when the deadline has passed, it takes the front contender off the queue and hands it the
//!   lock: LOCKED stays set on its behalf, so nobody can take it in between, even while it is
//!   not running yet. It draws the next deadline uniformly from 0 to 1 ms ahead (mean 0.5 ms).
//!   The word and the deadline are written before the head's token: an awake head may act on
//!   its token at once.
//!
//! WAKING is a promise that someone will wake the queue's head: unlocks skip the wakeup while it
//! is set, so every path must keep it. It is set by the unlock that claims the wakeup, which
//! then takes the queue lock and either wakes the head (the woken head now holds the promise),
//! leaves it to a head already woken, or gives WAKING back (nobody queued). The woken head gives
//! it back
//! when it takes the lock (leaving the queue), when it goes back to sleep, or when a fair
//! handoff takes it off the queue; a claim still waiting for the queue lock then wakes the next
//! head. Interrupted at the run's stop, a woken head does not leave: its token is no longer
//! QUEUED, so it competes once more and leaves by one of those paths; an interrupted sleeper
//! (token QUEUED) holds no promise and just leaves the queue.
//!
//! Reading the clock is the one cost left on a contended unlock, and it was most of the price
//! (profiled: `__vdso_clock_gettime` about a quarter of the CPU when read on each): a contender
//! reads it on one in [`CLOCK_EVERY`] of its unlocks that find someone parked, never when nobody
//! is (parking_lot, too, looks at its timeout only in the slow unlock). The handoff comes at
//! most that many unlocks per contender after the deadline: microseconds, against a window of
//! up to a millisecond.
//!
//! One departure from parking_lot: there, an unfair wakeup takes the thread off the queue, and
//! if it loses it parks again at the back. Here it keeps its place at the front until it gets
//! the lock. Across processes a woken waiter is often not running (its CPU is busy, maybe with
//! the releaser itself); off the queue, no deadline could reach it, and it would be overtaken
//! for as long as the scheduler keeps it off the CPU.
//!
//! So a queued contender waits at most until the deadline passes (and a few unlocks more) plus
//! one deadline per contender ahead of it: bounded, where the plain futex mutex is not, for the
//! price of one sleeping handoff (a wakeup on the critical path) every half millisecond on
//! average.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::wait_queue::{HANDOFF, IDLE, QUEUED, QueueWords, WOKEN, WaitQueue};
use super::{Ctx, Exclusion, Handoff, Opened, SetupError};
use crate::sys::clock::monotonic_ns;

const LOCKED: u32 = 1;
const PARKED: u32 = 2;
/// A queued contender was woken and has not yet taken the lock or gone back to sleep: unlocks
/// need not wake anyone (Go's `mutexWoken`). Set by the unlock that wakes it, cleared by it.
const WAKING: u32 = 4;
/// The fairness deadline is drawn uniformly from 0 to this many nanoseconds ahead.
const FAIRNESS_WINDOW_NS: u64 = 1_000_000;
/// A contender reads the clock on one in this many of its unlocks that find someone parked.
/// Reading it on every one, inside the critical section, was most of fair-futex's price. The
/// fair handoff comes at
/// most 15 such unlocks per contender after the deadline (60 acquisitions with four
/// contenders: microseconds, against the 0-1 ms window).
const CLOCK_EVERY: u32 = 16;
/// Spin rounds before parking (each twice as long as the last), while nobody is parked.
const SPIN_ROUNDS: u32 = 4;

pub(super) const SPEC: Spec = Spec {
    name: "fair-futex",
    family: Family::Mutexes,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath::plain(&[Description::Own], |_, _| None),
    whoops_in_storms: false,
    yardstick: Yardstick::NoCounterpart("bench/pingpong.c has no lock with a wait queue"),
    profile: Profile {
        overtaking: Overtaking::BoundedInTime("bounded: a waiter is handed the lock after 0-1 ms"),
        death: Death::Held,
        needs: "a shared mapping",
        from_async: "no descriptor: a thread",
    },
};

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    let lock = FairFutex {
        words: ctx.arena.region(),
        queue: WaitQueue::new(ctx.arena, ctx.contenders),
        me: ctx.contender,
        rng: XorShift::seeded(ctx.contender),
        // The first slow unlock reads the clock.
        slow_unlocks: CLOCK_EVERY - 1,
    };
    Ok(Opened::in_arena(ctx, lock))
}

#[derive(Debug)]
struct FairFutex<'a> {
    words: &'a QueueWords,
    queue: WaitQueue<'a>,
    me: usize,
    rng: XorShift,
    /// Our unlocks that found someone parked, modulo [`CLOCK_EVERY`].
    slow_unlocks: u32,
}

impl FairFutex<'_> {
    fn state(&self) -> &AtomicU32 {
        &self.words.state
    }

    /// Sets LOCKED if it is clear; true if we took the lock.
    fn try_take(&self) -> bool {
        let mut s = self.state().load(Ordering::Relaxed);
        while s & LOCKED == 0 {
            match self.state().compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Spins a little while the holder may be about to release and nobody is parked.
    fn spin(&self) -> bool {
        for round in 0..SPIN_ROUNDS {
            if self.state().load(Ordering::Relaxed) & PARKED != 0 {
                return false;
            }
            for _ in 0..(1u32 << round) * 8 {
                std::hint::spin_loop();
            }
            if self.try_take() {
                return true;
            }
        }
        false
    }

    /// Goes (back) to sleep in the queue if the lock is still held, keeping our place if we
    /// have one. Returns `Some(true)` if the lock was handed to us meanwhile, `Some(false)` once
    /// asleep-ready (token QUEUED), `None` if the lock was released: try again.
    fn settle(&self, queued: bool) -> Result<Option<bool>, Errno> {
        let held = self.queue.lock()?;
        let token = self.queue.token(self.me);
        if queued && token.load(Ordering::Acquire) == HANDOFF {
            return Ok(Some(true));
        }
        let s = self.state().load(Ordering::Relaxed);
        if s & LOCKED == 0 {
            return Ok(None);
        }
        // Going back to sleep after a wakeup, we give WAKING back: the next unlock wakes again.
        let new = if queued {
            (s | PARKED) & !WAKING
        } else {
            s | PARKED
        };
        if new != s
            && self
                .state()
                .compare_exchange(s, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(None);
        }
        if queued {
            token.store(QUEUED, Ordering::Relaxed);
        } else {
            held.push(self.me, false)?;
        }
        Ok(Some(false))
    }

    /// Leaves the queue after taking the lock ourselves.
    fn leave_queue(&self) -> Result<(), Errno> {
        let held = self.queue.lock()?;
        held.remove(self.me);
        self.queue.token(self.me).store(IDLE, Ordering::Relaxed);
        // We were the woken one: WAKING was ours.
        let gone = if held.len() == 0 {
            WAKING | PARKED
        } else {
            WAKING
        };
        self.state().fetch_and(!gone, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the fairness deadline has passed, read on one slow unlock in [`CLOCK_EVERY`]
    /// (the deadline only changes under LOCKED, which we hold); the clock reading if it has.
    fn deadline_passed(&mut self) -> Option<u64> {
        self.slow_unlocks = self.slow_unlocks.wrapping_add(1);
        if !self.slow_unlocks.is_multiple_of(CLOCK_EVERY) {
            return None;
        }
        let now = monotonic_ns();
        (now >= self.words.fair_deadline.load(Ordering::Relaxed)).then_some(now)
    }

    /// Clears LOCKED with contenders parked, claiming the wakeup (setting WAKING) unless a
    /// queued contender is already awake; true if the wakeup is ours to make.
    fn unlock_parked(&self) -> bool {
        let mut s = self.state().load(Ordering::Relaxed);
        loop {
            let wake = s & (PARKED | WAKING) == PARKED;
            let new = (s & !LOCKED) | if wake { WAKING } else { 0 };
            match self
                .state()
                .compare_exchange_weak(s, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return wake,
                Err(now) => s = now,
            }
        }
    }

    /// Wakes the queue's head to compete, after [`Self::unlock_parked`] claimed the wakeup
    /// (the lock is already free: the holder does not wait for the queue lock). Gives the claim
    /// back if nobody is left asleep at the head.
    fn wake_head(&self) -> Result<(), Errno> {
        let held = self.queue.lock()?;
        let Some(head) = held.front() else {
            self.state().fetch_and(!WAKING, Ordering::Relaxed);
            return Ok(());
        };
        let woke = self.queue.token(head).compare_exchange(
            QUEUED,
            WOKEN,
            Ordering::Release,
            Ordering::Relaxed,
        );
        if matches!(woke, Err(t) if t != WOKEN) {
            self.state().fetch_and(!WAKING, Ordering::Relaxed);
        }
        drop(held);
        if woke.is_ok() {
            self.queue.wake(head)
        } else {
            Ok(())
        }
    }

    /// The fair handoff, once the deadline has passed: takes the head off the queue and leaves
    /// it the lock, still LOCKED on its behalf; draws the next deadline.
    fn hand_to_head(&mut self, now: u64) -> Result<(), Errno> {
        let held = self.queue.lock()?;
        // While we hold LOCKED and the queue lock, nobody else changes the word.
        let Some(head) = held.front() else {
            self.state().store(0, Ordering::Release);
            return Ok(());
        };
        let asleep = self.queue.token(head).load(Ordering::Relaxed) == QUEUED;
        // The word and the deadline are the new holder's from the moment its token says
        // HANDOFF: an awake head may see it at once (without the queue lock) and unlock before
        // we drop the queue lock. So both are written first, the token last: written after, a
        // LOCKED would outlive that unlock and leave the lock held by nobody.
        let ahead = self.rng.below(FAIRNESS_WINDOW_NS + 1);
        self.words
            .fair_deadline
            .store(now.saturating_add(ahead), Ordering::Relaxed);
        // WAKING goes: the only queued contender ever awake is the head, about to be taken off
        // (an unlock that claimed a wakeup and waits for the queue lock wakes the next head).
        let parked = if held.len() > 1 { PARKED } else { 0 };
        self.state().store(LOCKED | parked, Ordering::Release);
        held.pop(HANDOFF);
        drop(held);
        // An awake head finds HANDOFF in its token without a wakeup.
        if asleep {
            self.queue.wake(head)
        } else {
            Ok(())
        }
    }
}

impl Handoff for FairFutex<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        if self.try_take() || self.spin() {
            return Ok(());
        }
        let mut queued = false;
        loop {
            if self.try_take() {
                if queued {
                    self.leave_queue()?;
                }
                return Ok(());
            }
            match self.settle(queued)? {
                Some(true) => return Ok(()),
                Some(false) => queued = true,
                None => continue,
            }
            let state = self.state();
            let left = |len: u32| {
                // We were the last one queued: nobody else needs a slow unlock.
                if len == 0 {
                    state.fetch_and(!PARKED, Ordering::Relaxed);
                }
            };
            // WOKEN: compete again, keeping our place in the queue.
            if self.queue.park(self.me, left)? == HANDOFF {
                return Ok(());
            }
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        if self
            .state()
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        // Someone is parked: the only case that looks at the deadline.
        if let Some(now) = self.deadline_passed() {
            return self.hand_to_head(now);
        }
        if self.unlock_parked() {
            self.wake_head()?;
        }
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Parked contenders are interrupted by the watchdog once the run stops, and leave.
        Ok(())
    }
}

/// A small xorshift generator: the fairness deadline only needs to be unpredictable enough not
/// to beat in step with the contenders' loops.
#[derive(Debug)]
pub(super) struct XorShift(u64);

impl XorShift {
    pub(super) fn seeded(contender: usize) -> Self {
        let seed = monotonic_ns() ^ ((contender as u64 + 1) << 32) ^ u64::from(std::process::id());
        XorShift(seed | 1)
    }

    /// Uniform in `0..n` (near enough: `n` is tiny next to 2^64).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, mpsc};
    use std::time::{Duration, Instant};

    use nix::errno::Errno;
    use nix::sys::eventfd::{EfdFlags, EventFd};
    use nix::sys::pthread::Pthread;

    use super::{CLOCK_EVERY, FAIRNESS_WINDOW_NS, FairFutex, LOCKED, PARKED, WAKING, XorShift};
    use crate::arena::Arena;
    use crate::sys::clock::monotonic_ns;
    use crate::sys::signal;
    use crate::variant::Handoff;
    use crate::variant::wait_queue::{HANDOFF, QUEUED, QueueWords, WOKEN, WaitQueue, on_token};
    use crate::variant::{Ctx, Mode, Variant};

    /// Contender `me`'s lock, opened directly so a test can set the words by hand.
    fn lock(arena: &Arena, me: usize) -> FairFutex<'_> {
        FairFutex {
            words: arena.region(),
            queue: WaitQueue::new(arena, 3),
            me,
            rng: XorShift::seeded(me),
            slow_unlocks: CLOCK_EVERY - 1,
        }
    }

    /// Contender 0 holding the lock, contender 1 queued asleep, the deadline `deadline`.
    fn held_with_one_parked(arena: &Arena, deadline: u64) -> (FairFutex<'_>, &QueueWords) {
        let (a, h) = (lock(arena, 0), arena.region::<QueueWords>());
        a.queue.lock().unwrap().push(1, false).unwrap();
        h.fair_deadline.store(deadline, Ordering::Relaxed);
        h.state.store(LOCKED | PARKED, Ordering::Relaxed);
        (a, h)
    }

    /// Before the deadline, an unlock frees the lock and wakes the parked head once: the
    /// following unlocks, while it is awake, leave its token alone; once it has gone back to
    /// sleep, the next unlock wakes it again.
    #[test]
    fn unlocks_before_the_deadline_wake_the_head_once_per_sleep() {
        let arena = Arena::create(3).unwrap();
        let (mut a, h) = held_with_one_parked(&arena, u64::MAX);
        let token = a.queue.token(1);
        a.release().unwrap();
        assert_eq!(h.state.load(Ordering::Relaxed), PARKED | WAKING);
        assert_eq!(token.load(Ordering::Relaxed), WOKEN);
        token.store(QUEUED, Ordering::Relaxed); // Would a second unlock write it again? It must not.
        assert!(a.try_take());
        a.release().unwrap();
        assert_eq!(h.state.load(Ordering::Relaxed), PARKED | WAKING);
        assert_eq!(token.load(Ordering::Relaxed), QUEUED);
        token.store(WOKEN, Ordering::Relaxed);
        // The woken head loses the race and goes back to sleep, giving WAKING back.
        assert!(a.try_take());
        assert_eq!(lock(&arena, 1).settle(true).unwrap(), Some(false));
        assert_eq!(h.state.load(Ordering::Relaxed), LOCKED | PARKED);
        assert_eq!(token.load(Ordering::Relaxed), QUEUED);
        a.release().unwrap();
        assert_eq!(h.state.load(Ordering::Relaxed), PARKED | WAKING);
        assert_eq!(token.load(Ordering::Relaxed), WOKEN);
        assert_eq!(h.queue_len.load(Ordering::Relaxed), 1);
    }

    /// The woken head that takes the lock leaves the queue and clears both WAKING and PARKED:
    /// with nobody queued, the next unlock is the fast one.
    #[test]
    fn the_woken_head_that_wins_leaves_the_queue() {
        let arena = Arena::create(3).unwrap();
        let (mut a, h) = held_with_one_parked(&arena, u64::MAX);
        a.release().unwrap();
        let mut b = lock(&arena, 1);
        assert!(b.try_take());
        b.leave_queue().unwrap();
        assert_eq!(h.state.load(Ordering::Relaxed), LOCKED);
        assert_eq!(h.queue_len.load(Ordering::Relaxed), 0);
        b.release().unwrap();
        assert_eq!(h.state.load(Ordering::Relaxed), 0);
    }

    /// The clock is read on one slow unlock in CLOCK_EVERY: a passed deadline is acted on within
    /// that many unlocks of one contender, and the ones before it let go as usual.
    #[test]
    fn a_passed_deadline_is_seen_within_clock_every_unlocks() {
        let arena = Arena::create(3).unwrap();
        let (mut a, h) = held_with_one_parked(&arena, 0);
        a.slow_unlocks = 0;
        let mut unlocks = 0;
        while a.queue.token(1).load(Ordering::Relaxed) != HANDOFF {
            assert!(unlocks < CLOCK_EVERY, "no handoff in {unlocks} unlocks");
            if unlocks > 0 {
                assert!(a.try_take(), "unlock {unlocks} kept the lock");
            }
            a.release().unwrap();
            unlocks += 1;
        }
        assert_eq!(unlocks, CLOCK_EVERY);
        assert_eq!(h.state.load(Ordering::Relaxed), LOCKED);
    }

    /// Past the deadline, the handoff also reaches a head that is awake (woken, racing): it is
    /// taken off the queue with the lock, and WAKING goes with it.
    #[test]
    fn a_passed_deadline_hands_over_to_an_awake_head_too() {
        let arena = Arena::create(3).unwrap();
        let (mut a, h) = held_with_one_parked(&arena, u64::MAX);
        a.release().unwrap();
        assert!(a.try_take());
        h.fair_deadline.store(0, Ordering::Relaxed);
        a.slow_unlocks = CLOCK_EVERY - 1;
        a.release().unwrap();
        assert_eq!(h.state.load(Ordering::Relaxed), LOCKED);
        assert_eq!(a.queue.token(1).load(Ordering::Relaxed), HANDOFF);
        assert_eq!(h.queue_len.load(Ordering::Relaxed), 0);
        assert_ne!(h.fair_deadline.load(Ordering::Relaxed), 0);
    }

    /// A contender thread and its handle for the interrupt.
    type Contender = (Pthread, std::thread::JoinHandle<Result<bool, Errno>>);

    /// A contender thread of the stop tests: acquires as the session does (an `EINTR` ends the
    /// wait only once `stop` is set), lets go at once, and says whether it got the lock.
    fn contender_until_stopped(
        arena: &'static Arena,
        me: usize,
        stop: &'static AtomicBool,
        tx: mpsc::Sender<Pthread>,
    ) -> std::thread::JoinHandle<Result<bool, Errno>> {
        std::thread::spawn(move || {
            tx.send(signal::current_thread()).unwrap();
            let mut lock = lock(arena, me);
            loop {
                match lock.acquire() {
                    Ok(()) => return lock.release().map(|()| true),
                    Err(Errno::EINTR) if stop.load(Ordering::Acquire) => return Ok(false),
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
        })
    }

    /// Interrupts `threads` every 5 ms, as the watchdog does once the stop word is set, until
    /// they return (10 s at most); what they returned.
    fn kick_until_done(threads: Vec<Contender>) -> Vec<Result<bool, Errno>> {
        let give_up = Instant::now() + Duration::from_secs(10);
        while threads.iter().any(|(_, t)| !t.is_finished()) && Instant::now() < give_up {
            for (p, t) in &threads {
                if !t.is_finished() {
                    let _ = signal::interrupt(*p);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            threads.iter().all(|(_, t)| t.is_finished()),
            "a contender did not leave at the stop"
        );
        threads
            .into_iter()
            .map(|(_, t)| t.join().unwrap())
            .collect()
    }

    /// The run stops while the queue's head has been woken (WOKEN, WAKING set) but has not run
    /// yet, so unlocks wake nobody: the woken head and the sleeper behind it must both leave,
    /// and leave the word clean. `holder_lets_go`: the holder unlocks before the stop (that
    /// unlock wakes nobody, WAKING being set), else it keeps the lock through it.
    fn stop_with_the_head_woken(holder_lets_go: bool) {
        signal::install_interrupt_handler();
        let arena: &'static Arena = Box::leak(Box::new(Arena::create(3).unwrap()));
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let h = arena.region::<QueueWords>();
        // Only the interrupt ends this test's waits: no fair handoff.
        h.fair_deadline.store(u64::MAX, Ordering::Relaxed);
        let mut a = lock(arena, 0);
        assert!(a.try_take());
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for me in [1, 2] {
            let t = contender_until_stopped(arena, me, stop, tx.clone());
            threads.push((rx.recv_timeout(Duration::from_secs(10)).unwrap(), t));
            let give_up = Instant::now() + Duration::from_secs(10);
            while h.queue_len.load(Ordering::Acquire) != me as u32 {
                assert!(Instant::now() < give_up, "contender {me} never parked");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        // As an unlock leaves it, the woken head not yet running: its sleep is not ended (no
        // FUTEX_WAKE), only the interrupt will end it.
        {
            let _held = a.queue.lock().unwrap();
            assert_eq!(a.queue.token(1).load(Ordering::Relaxed), QUEUED);
            a.queue.token(1).store(WOKEN, Ordering::Release);
            h.state.fetch_or(WAKING, Ordering::Relaxed);
        }
        if holder_lets_go {
            a.release().unwrap();
            assert_eq!(h.state.load(Ordering::Relaxed), PARKED | WAKING);
        }
        stop.store(true, Ordering::Release);
        let results = kick_until_done(threads);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        if !holder_lets_go {
            // The lock stayed ours: both left without it, WAKING and PARKED gone with them.
            assert_eq!(results, vec![Ok(false), Ok(false)]);
            assert_eq!(h.state.load(Ordering::Relaxed), LOCKED);
            a.release().unwrap();
        }
        assert_eq!(h.state.load(Ordering::Relaxed), 0);
        assert_eq!(h.queue_len.load(Ordering::Relaxed), 0);
        for c in [1, 2] {
            assert_ne!(a.queue.token(c).load(Ordering::Relaxed), QUEUED);
        }
    }

    #[test]
    fn a_stop_while_the_head_is_woken_and_the_lock_free_lets_every_waiter_leave() {
        stop_with_the_head_woken(true);
    }

    #[test]
    fn a_stop_while_the_head_is_woken_and_the_lock_held_lets_every_waiter_leave() {
        stop_with_the_head_woken(false);
    }

    /// The fair handoff writes the lock word and the next deadline before the head's token: the
    /// head, if awake, may take its token at once and unlock before the handing unlock has let
    /// go of the queue. (Written after, the lock word overwrote that unlock: LOCKED, held by
    /// nobody, every contender asleep, until the watchdog's time limit.)
    #[test]
    fn a_handed_head_finds_the_word_and_the_deadline_already_its_own() {
        for queued in [1, 2] {
            let arena = Arena::create(3).unwrap();
            let (mut a, h) = held_with_one_parked(&arena, 0);
            if queued == 2 {
                a.queue.lock().unwrap().push(2, false).unwrap();
            }
            let looks = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let seen = looks.clone();
            on_token::set(Some(Box::new(move |words: &QueueWords, c, token| {
                let state = words.state.load(Ordering::Acquire);
                let deadline = words.fair_deadline.load(Ordering::Relaxed);
                seen.borrow_mut().push((c, token, state, deadline));
            })));
            a.slow_unlocks = CLOCK_EVERY - 1;
            let before = monotonic_ns();
            a.release().unwrap();
            on_token::set(None);
            let looks = looks.borrow();
            assert_eq!(looks.len(), 1, "{looks:?}");
            let (c, token, state, deadline) = looks[0];
            assert_eq!((c, token), (1, HANDOFF));
            // Still locked, on its behalf; PARKED only if someone is left in the queue.
            let parked = if queued == 2 { PARKED } else { 0 };
            assert_eq!(state, LOCKED | parked, "queued {queued}");
            assert!(deadline >= before, "the next deadline was not drawn yet");
            assert_eq!(h.state.load(Ordering::Relaxed), LOCKED | parked);
        }
    }

    /// Once the deadline has passed, unlock hands the lock to the parked contender, still
    /// locked: the releaser's next request waits behind it. The next deadline lies 0-1 ms ahead.
    #[test]
    fn a_passed_deadline_hands_the_lock_over() {
        let arena = Arena::create(2).unwrap();
        let abort = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).unwrap();
        let ctx = |contender| Ctx {
            arena: &arena,
            contender,
            contenders: 2,
            mode: Mode::Free,
            spin: 0,
            abort: std::os::fd::AsFd::as_fd(&abort),
        };
        let h = arena.region::<QueueWords>();
        let order = Mutex::new(Vec::new());
        let (got_tx, got_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (before, after, deadline) = std::thread::scope(|scope| {
            let mut a = Variant::FairFutex.open(&ctx(0), Vec::new()).unwrap();
            a.handoff.acquire().unwrap();
            let (b_ctx, order) = (ctx(1), &order);
            scope.spawn(move || {
                let mut b = Variant::FairFutex.open(&b_ctx, Vec::new()).unwrap();
                b.handoff.acquire().unwrap();
                order.lock().unwrap().push(1);
                got_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                b.handoff.release().unwrap();
            });
            let give_up = Instant::now() + Duration::from_secs(10);
            while h.queue_len.load(Ordering::Relaxed) != 1 {
                assert!(Instant::now() < give_up, "B never parked");
                std::thread::sleep(Duration::from_micros(100));
            }
            h.fair_deadline.store(0, Ordering::Relaxed);
            let before = monotonic_ns();
            a.handoff.release().unwrap();
            let after = monotonic_ns();
            // Read now: B's release below may hand the lock back to A and draw a later deadline.
            let deadline = h.fair_deadline.load(Ordering::Relaxed);
            // Handed over: still locked, on B's behalf.
            assert_ne!(h.state.load(Ordering::Relaxed) & LOCKED, 0);
            got_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            go_tx.send(()).unwrap();
            a.handoff.acquire().unwrap();
            order.lock().unwrap().push(0);
            a.handoff.release().unwrap();
            (before, after, deadline)
        });
        assert_eq!(*order.lock().unwrap(), vec![1, 0]);
        assert!(
            deadline >= before && deadline <= after + FAIRNESS_WINDOW_NS,
            "deadline {deadline} outside [{before}, {after} + 1 ms]"
        );
        assert_eq!(h.state.load(Ordering::Relaxed), 0);
    }
}
