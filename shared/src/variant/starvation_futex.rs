//! `starvation-futex`: Go's `sync.Mutex` across processes, with its starvation mode.
//!
//! The lock word (`state` in the region of [`super::wait_queue`]) holds LOCKED, WOKEN (a waiter was woken and is
//! on its way: the releaser need not wake another), STARVING, and above them the number of
//! waiters. The queue is [`super::wait_queue`], with a permit count for a wakeup released
//! before its waiter got to park (Go's semaphore does the same).
//!
//! Normal mode is a barging lock: a waiter woken by an unlock competes with newcomers, who
//! usually win (they are already running). A woken waiter that lost goes back to the *front*
//! of the queue. A waiter that has waited more than 1 ms in all sets STARVING, and from then:
//! - an unlock does not clear the lock for anyone to take: it hands it to the waiter at the
//!   front of the queue (LOCKED is set by that waiter, and nobody else may set it meanwhile);
//! - newcomers do not try to take the lock: they queue at the back.
//!
//! The waiter that gets the lock by handoff switches back to normal mode if it waited less than
//! 1 ms, or if it is the last waiter: starvation mode is a way to drain a backlog, not a state
//! to stay in.
//!
//! Linux's kernel mutex (`kernel/locking/mutex.c`) has the same idea with a tighter bound: the
//! waiter at the head of its queue, woken and losing the race once, sets MUTEX_FLAG_HANDOFF,
//! and the next unlock gives it the lock (MUTEX_FLAG_PICKUP: only it may pick it up). That bounds
//! a head waiter's losses to one, and only the head waiter is protected; Go's (and this) bound is
//! one millisecond of losses, after which every queued waiter is served in order until the
//! queue drains or a waiter got in quickly.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::wait_queue::{QueueWords, WaitQueue};
use super::{Ctx, Exclusion, Handoff, Opened, SetupError};
use crate::sys::clock::monotonic_ns;

const LOCKED: u32 = 1;
const WOKEN: u32 = 2;
const STARVING: u32 = 4;
const WAITER_SHIFT: u32 = 3;
const ONE_WAITER: u32 = 1 << WAITER_SHIFT;
/// A waiter that has waited longer than this switches the lock to starvation mode.
const STARVATION_NS: u64 = 1_000_000;

pub(super) const SPEC: Spec = Spec {
    name: "starvation-futex",
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
        overtaking: Overtaking::BoundedInTime("bounded: after 1 ms of starving, FIFO"),
        death: Death::Held,
        needs: "a shared mapping",
        from_async: "no descriptor: a thread",
    },
};

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    let lock = StarvationFutex {
        words: ctx.arena.region(),
        queue: WaitQueue::new(ctx.arena, ctx.contenders),
        me: ctx.contender,
    };
    Ok(Opened::in_arena(ctx, lock))
}

#[derive(Debug)]
struct StarvationFutex<'a> {
    words: &'a QueueWords,
    queue: WaitQueue<'a>,
    me: usize,
}

/// Where a waiter stands between attempts.
#[derive(Debug, Default)]
struct Waiter {
    /// When it first queued (None: never yet).
    since: Option<u64>,
    starving: bool,
    /// It was woken by an unlock (and the unlock set WOKEN for it).
    woken: bool,
}

impl StarvationFutex<'_> {
    fn state(&self) -> &AtomicU32 {
        &self.words.state
    }

    /// The word after one attempt: take the lock if it is not starving, or count us as a waiter.
    fn next_state(old: u32, w: &Waiter) -> u32 {
        let mut new = old;
        if old & STARVING == 0 {
            new |= LOCKED;
        }
        if old & (LOCKED | STARVING) != 0 {
            new = new.wrapping_add(ONE_WAITER);
        }
        if w.starving && old & LOCKED != 0 {
            new |= STARVING;
        }
        if w.woken {
            new &= !WOKEN;
        }
        new
    }

    /// Waits for a permit: one released before we parked, or a wakeup. Interrupted while still
    /// queued, it takes us out of the waiter count and returns `EINTR`.
    fn wait_for_permit(&self, front: bool) -> Result<(), Errno> {
        {
            let held = self.queue.lock()?;
            let permits = &self.words.permits;
            if permits.load(Ordering::Relaxed) > 0 {
                permits.fetch_sub(1, Ordering::Relaxed);
                return Ok(());
            }
            held.push(self.me, front)?;
        }
        let state = self.state();
        let leave = |_len| {
            // Uncount ourselves, never below zero (an unlock may have uncounted us already).
            let _ = state.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (s >= ONE_WAITER).then(|| s - ONE_WAITER)
            });
        };
        self.queue.park(self.me, leave).map(drop)
    }

    /// Releases one permit: wakes the waiter at the front of the queue, or leaves the permit for
    /// the next one to park.
    fn release_permit(&self) -> Result<(), Errno> {
        let next = {
            let held = self.queue.lock()?;
            let next = held.pop(super::wait_queue::WOKEN);
            if next.is_none() {
                self.words.permits.fetch_add(1, Ordering::Relaxed);
            }
            next
        };
        match next {
            Some(c) => self.queue.wake(c),
            None => Ok(()),
        }
    }

    /// The end of a wait that ended by handoff: take the lock, and leave starvation mode if we
    /// waited under 1 ms or were the last waiter.
    fn take_handed_over(&self, old: u32, w: &Waiter) {
        let mut delta = LOCKED.wrapping_sub(ONE_WAITER);
        if !w.starving || old >> WAITER_SHIFT == 1 {
            delta = delta.wrapping_sub(STARVING);
        }
        self.state().fetch_add(delta, Ordering::Acquire);
    }
}

impl Handoff for StarvationFutex<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let state = self.state();
        if state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        let mut w = Waiter::default();
        let mut old = state.load(Ordering::Relaxed);
        loop {
            let new = Self::next_state(old, &w);
            if let Err(now) =
                state.compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                old = now;
                continue;
            }
            if old & (LOCKED | STARVING) == 0 {
                return Ok(());
            }
            // Counted as a waiter: park. A waiter that already waited goes back to the front.
            let again = w.since.is_some();
            let since = *w.since.get_or_insert_with(monotonic_ns);
            self.wait_for_permit(again)?;
            #[cfg(test)]
            tests::after_wakeup();
            w.starving |= monotonic_ns().saturating_sub(since) > STARVATION_NS;
            old = state.load(Ordering::Relaxed);
            if old & STARVING != 0 {
                self.take_handed_over(old, &w);
                return Ok(());
            }
            w.woken = true;
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        let new = self
            .state()
            .fetch_sub(LOCKED, Ordering::Release)
            .wrapping_sub(LOCKED);
        if new == 0 {
            return Ok(());
        }
        if new & STARVING != 0 {
            // Hand it to the front waiter: it sets LOCKED itself; nobody else may meanwhile.
            return self.release_permit();
        }
        let mut old = new;
        loop {
            // Nobody to wake, or someone already woken, or the lock already taken again.
            if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                return Ok(());
            }
            let new = (old - ONE_WAITER) | WOKEN;
            match self
                .state()
                .compare_exchange_weak(old, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return self.release_permit(),
                Err(now) => old = now,
            }
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::atomic::Ordering;
    use std::sync::{Mutex, mpsc};
    use std::time::{Duration, Instant};

    use nix::sys::eventfd::{EfdFlags, EventFd};

    use super::{STARVING, WAITER_SHIFT};
    use crate::arena::Arena;
    use crate::variant::wait_queue::QueueWords;
    use crate::variant::{Ctx, Mode, Variant};

    thread_local! {
        /// Runs on this thread each time a wait for a permit ends.
        static AFTER_WAKEUP: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
    }

    pub(super) fn after_wakeup() {
        AFTER_WAKEUP.with(|hook| {
            if let Some(f) = hook.borrow_mut().as_mut() {
                f();
            }
        });
    }

    /// Polls `cond` for up to 10 s.
    fn eventually(what: &str, cond: impl Fn() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < give_up, "never happened: {what}");
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// B waits more than 1 ms, is woken, loses the race to the releaser A: the lock switches to
    /// starvation mode. Then a newcomer C queues instead of taking it, A's unlock hands it to B,
    /// A's next request queues behind C, and the mode ends when the last waiter gets the lock.
    #[test]
    fn a_waiter_held_out_over_a_millisecond_gets_the_lock_next() {
        let arena = Arena::create(3).unwrap();
        let abort = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).unwrap();
        let ctx = |contender| Ctx {
            arena: &arena,
            contender,
            contenders: 3,
            mode: Mode::Free,
            spin: 0,
            abort: std::os::fd::AsFd::as_fd(&abort),
        };
        let h = arena.region::<QueueWords>();
        let order = Mutex::new(Vec::new());
        let (woke_tx, woke_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let mut a = Variant::StarvationFutex.open(&ctx(0), Vec::new()).unwrap();
            a.handoff.acquire().unwrap();
            let (b_ctx, c_ctx, order) = (ctx(1), ctx(2), &order);
            scope.spawn(move || {
                let mut first = true;
                AFTER_WAKEUP.with(|hook| {
                    *hook.borrow_mut() = Some(Box::new(move || {
                        if std::mem::take(&mut first) {
                            woke_tx.send(()).unwrap();
                            go_rx.recv().unwrap();
                        }
                    }));
                });
                let mut b = Variant::StarvationFutex.open(&b_ctx, Vec::new()).unwrap();
                b.handoff.acquire().unwrap();
                order.lock().unwrap().push(1);
                b.handoff.release().unwrap();
            });
            eventually("B queued", || h.queue_len.load(Ordering::Relaxed) == 1);
            // B has now waited more than 1 ms.
            std::thread::sleep(Duration::from_millis(2));
            a.handoff.release().unwrap();
            woke_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            // B is awake but held before its next try: A barges back in.
            a.handoff.acquire().unwrap();
            go_tx.send(()).unwrap();
            eventually("B starving, back in the queue", || {
                h.state.load(Ordering::Relaxed) & STARVING != 0
                    && h.queue_len.load(Ordering::Relaxed) == 1
            });
            scope.spawn(move || {
                let mut c = Variant::StarvationFutex.open(&c_ctx, Vec::new()).unwrap();
                c.handoff.acquire().unwrap();
                order.lock().unwrap().push(2);
                c.handoff.release().unwrap();
            });
            eventually("C queued, not holding", || {
                h.queue_len.load(Ordering::Relaxed) == 2
            });
            a.handoff.release().unwrap();
            a.handoff.acquire().unwrap();
            order.lock().unwrap().push(0);
            a.handoff.release().unwrap();
        });
        assert_eq!(*order.lock().unwrap(), vec![1, 2, 0]);
        let state = h.state.load(Ordering::Relaxed);
        assert_eq!(state & STARVING, 0, "back to normal mode: {state:#x}");
        assert_eq!(
            state >> WAITER_SHIFT,
            0,
            "no waiter left counted: {state:#x}"
        );
    }
}
