//! `fair-futex`: eventual fairness, as parking_lot's `RawMutex` and WebKit's ParkingLot do it,
//! across processes.
//!
//! The lock word (the arena's `handoff_state`) has a LOCKED bit and a PARKED bit (someone is in
//! the wait queue, [`super::wait_queue`]). Taking the lock is a compare-exchange that sets
//! LOCKED whenever it is clear, even with contenders parked: normally the lock barges, which is
//! what makes it fast. A contender that finds it locked spins briefly (only while nobody is
//! parked), then parks at the back of the queue.
//!
//! A releaser that finds PARKED takes the queue's front contender off and decides how to let go:
//! - normally it clears LOCKED and wakes that contender, who must compete again with anyone
//!   arriving (and may lose, and park again at the back);
//! - when the fairness deadline kept in the arena has passed, it hands the lock over: LOCKED
//!   stays set on the woken contender's behalf, so nobody can take it in between, and it draws
//!   the next deadline uniformly from 0 to 1 ms ahead (mean 0.5 ms).
//!
//! So a parked contender waits at most until the deadline passes plus one handoff per contender
//! ahead of it in the queue: bounded, where the plain futex mutex is not, for the price of one
//! sleeping handoff (a wakeup on the critical path) every half millisecond on average.

use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::wait_queue::{HANDOFF, WOKEN, WaitQueue};
use super::{Ctx, Exclusion, Handoff};
use crate::arena::Header;
use crate::sys::clock::monotonic_ns;

const LOCKED: u32 = 1;
const PARKED: u32 = 2;
/// The fairness deadline is drawn uniformly from 0 to this many nanoseconds ahead.
const FAIRNESS_WINDOW_NS: u64 = 1_000_000;
/// Spin rounds before parking (each twice as long as the last), while nobody is parked.
const SPIN_ROUNDS: u32 = 4;

pub(super) fn open<'a>(ctx: &Ctx<'a>) -> FairFutex<'a> {
    FairFutex {
        header: ctx.arena.header(),
        queue: WaitQueue::new(ctx.arena, ctx.contenders),
        me: ctx.contender,
        rng: XorShift::seeded(ctx.contender),
    }
}

#[derive(Debug)]
pub(super) struct FairFutex<'a> {
    header: &'a Header,
    queue: WaitQueue<'a>,
    me: usize,
    rng: XorShift,
}

impl FairFutex<'_> {
    fn state(&self) -> &AtomicU32 {
        &self.header.handoff_state
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

    /// Queues us if the lock is still held (with PARKED set); false if it was released meanwhile.
    fn enqueue(&self) -> Result<bool, Errno> {
        let held = self.queue.lock()?;
        let s = self.state().load(Ordering::Relaxed);
        if s & LOCKED == 0 {
            return Ok(false);
        }
        if s & PARKED == 0
            && self
                .state()
                .compare_exchange(s, s | PARKED, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(false);
        }
        held.push(self.me, false)?;
        Ok(true)
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
        loop {
            if self.try_take() {
                return Ok(());
            }
            if !self.enqueue()? {
                continue;
            }
            let state = self.state();
            let left = || {
                // We were the last one parked: nobody else needs a slow unlock.
                if self.queue_is_empty() {
                    state.fetch_and(!PARKED, Ordering::Relaxed);
                }
            };
            match self.queue.park(self.me, left)? {
                HANDOFF => return Ok(()),
                // WOKEN: compete again.
                _ => continue,
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
        let fair = now >= self.header.fair_deadline.load(Ordering::Relaxed);
        let token = if fair { HANDOFF } else { WOKEN };
        let next = held.pop(token);
        let parked = if held.len() > 0 { PARKED } else { 0 };
        // While we hold LOCKED and the queue lock nobody else changes the word.
        match next {
            Some(_) if fair => {
                let ahead = self.rng.below(FAIRNESS_WINDOW_NS + 1);
                self.header
                    .fair_deadline
                    .store(now.saturating_add(ahead), Ordering::Relaxed);
                self.state().store(LOCKED | parked, Ordering::Release);
            }
            _ => self.state().store(parked, Ordering::Release),
        }
        drop(held);
        match next {
            Some(c) => self.queue.wake(c),
            None => Ok(()),
        }
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Parked contenders are interrupted by the watchdog once the run stops, and leave.
        Ok(())
    }
}

impl FairFutex<'_> {
    fn queue_is_empty(&self) -> bool {
        self.header.queue_len.load(Ordering::Relaxed) == 0
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
        let h = arena.header();
        let order = Mutex::new(Vec::new());
        let (got_tx, got_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (before, after) = std::thread::scope(|scope| {
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
            // Handed over: still locked, on B's behalf.
            assert_ne!(h.handoff_state.load(Ordering::Relaxed) & LOCKED, 0);
            got_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            go_tx.send(()).unwrap();
            a.handoff.acquire().unwrap();
            order.lock().unwrap().push(0);
            a.handoff.release().unwrap();
            (before, after)
        });
        assert_eq!(*order.lock().unwrap(), vec![1, 0]);
        let deadline = h.fair_deadline.load(Ordering::Relaxed);
        assert!(
            deadline >= before && deadline <= after + FAIRNESS_WINDOW_NS,
            "deadline {deadline} outside [{before}, {after} + 1 ms]"
        );
        assert_eq!(h.handoff_state.load(Ordering::Relaxed), 0);
    }
}
