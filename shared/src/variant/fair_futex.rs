//! `fair-futex`: eventual fairness, as parking_lot's `RawMutex` and WebKit's ParkingLot do it,
//! across processes.
//!
//! The lock word (`state` in the region of [`super::wait_queue`]) has a LOCKED bit and a PARKED bit (someone is in
//! the wait queue, [`super::wait_queue`]). Taking the lock is a compare-exchange that sets
//! LOCKED whenever it is clear, even with contenders parked: normally the lock barges, which is
//! what makes it fast. A contender that finds it locked spins briefly (only while nobody is
//! parked), then parks at the back of the queue.
//!
//! A releaser that finds PARKED looks at the queue's front contender and decides how to let go:
//! - normally it clears LOCKED and wakes that contender (unless it is already awake), who must
//!   compete with anyone arriving, and may lose and sleep again;
//! - when the fairness deadline kept in the arena has passed, it takes the front contender off
//!   the queue and hands it the lock: LOCKED stays set on its behalf, so nobody can take it in
//!   between, even while it is not running yet. It draws the next deadline uniformly from 0 to
//!   1 ms ahead (mean 0.5 ms).
//!
//! One departure from parking_lot: there, an unfair wakeup takes the thread off the queue, and
//! if it loses it parks again at the back. Here it keeps its place at the front until it gets
//! the lock. Across processes a woken waiter is often not running (its CPU is busy, maybe with
//! the releaser itself); off the queue, no deadline could reach it, and it would be overtaken
//! for as long as the scheduler keeps it off the CPU.
//!
//! So a queued contender waits at most until the deadline passes plus one deadline per
//! contender ahead of it: bounded, where the plain futex mutex is not, for the price of one
//! sleeping handoff (a wakeup on the critical path) every half millisecond on average.

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
/// The fairness deadline is drawn uniformly from 0 to this many nanoseconds ahead.
const FAIRNESS_WINDOW_NS: u64 = 1_000_000;
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
    };
    Ok(Opened::in_arena(ctx, lock))
}

#[derive(Debug)]
struct FairFutex<'a> {
    words: &'a QueueWords,
    queue: WaitQueue<'a>,
    me: usize,
    rng: XorShift,
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
        if s & PARKED == 0
            && self
                .state()
                .compare_exchange(s, s | PARKED, Ordering::Relaxed, Ordering::Relaxed)
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
        if held.len() == 0 {
            self.state().fetch_and(!PARKED, Ordering::Relaxed);
        }
        Ok(())
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
        let held = self.queue.lock()?;
        let now = monotonic_ns();
        let Some(head) = held.front() else {
            self.state().store(0, Ordering::Release);
            return Ok(());
        };
        // While we hold LOCKED and the queue lock, nobody else changes the word.
        let wake = if now >= self.words.fair_deadline.load(Ordering::Relaxed) {
            held.pop(HANDOFF);
            let ahead = self.rng.below(FAIRNESS_WINDOW_NS + 1);
            self.words
                .fair_deadline
                .store(now.saturating_add(ahead), Ordering::Relaxed);
            let parked = if held.len() > 0 { PARKED } else { 0 };
            self.state().store(LOCKED | parked, Ordering::Release);
            true
        } else {
            self.state().store(PARKED, Ordering::Release);
            // Wake the head unless it is already awake and on its way.
            self.queue
                .token(head)
                .compare_exchange(QUEUED, WOKEN, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        };
        drop(held);
        if wake { self.queue.wake(head) } else { Ok(()) }
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
    use std::sync::atomic::Ordering;
    use std::sync::{Mutex, mpsc};
    use std::time::{Duration, Instant};

    use nix::sys::eventfd::{EfdFlags, EventFd};

    use super::{FAIRNESS_WINDOW_NS, LOCKED};
    use crate::arena::Arena;
    use crate::sys::clock::monotonic_ns;
    use crate::variant::wait_queue::QueueWords;
    use crate::variant::{Ctx, Mode, Variant};

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
