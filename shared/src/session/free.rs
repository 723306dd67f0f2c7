//! The loop of `--mode free`: every contender takes the lock `rounds` times, as fast as it can,
//! with no order at all. This is plain lock-handoff unfairness: who gets the lock after an
//! unlock, how long the others wait, and how often the releaser takes it straight back.

use std::sync::atomic::Ordering;

use super::busy::busy_until;
use super::start::Stretch;
use super::watchdog::Watchdog;
use super::{Acquired, Plan, SessionError, acquire, monotonic_ns, retry};
use crate::arena::{Arena, GrantEntry, Header, StopReason};
use crate::measure::{ContenderStats, End, FreeStats};
use crate::tally::Tally;
use crate::variant::Handoff;

/// Takes the lock `plan.rounds` times (or fewer, if the run stops), measuring each acquisition.
pub fn run_free(
    arena: &Arena,
    handoff: &mut dyn Handoff,
    plan: &Plan,
    dog: &Watchdog,
) -> Result<ContenderStats, SessionError> {
    let header = arena.header();
    let result = contend(arena, handoff, plan, dog);
    // Only `release` itself can fail while we hold the lock, so there is nothing to give back
    // here: the others just need to hear that we are gone.
    if result.is_err() {
        header.request_stop(StopReason::Aborted);
        header
            .waiting
            .fetch_and(!(1u64 << plan.contender), Ordering::AcqRel);
        let _ = handoff.wake_everyone();
    }
    result
}

fn contend(
    arena: &Arena,
    handoff: &mut dyn Handoff,
    plan: &Plan,
    dog: &Watchdog,
) -> Result<ContenderStats, SessionError> {
    let h = arena.header();
    // Allocated before the clock starts.
    let (stats, free) = (
        ContenderStats::new(plan.contender, plan.cpu),
        FreeStats::new(),
    );
    let (wait, runs) = (Tally::new(), Tally::new());
    let stretch = Stretch::begin(h, plan, dog)?;
    // Stamped before we count as begun, and the end after the first finisher says so: every
    // hold counted in the window then lies between the stamps.
    let free = FreeStats {
        joined_ns: monotonic_ns(),
        ..free
    };
    h.begun.fetch_add(1, Ordering::AcqRel);
    let mut race = Race {
        arena,
        h,
        handoff,
        plan,
        dog,
        me: plan.contender,
        my_bit: 1u64 << plan.contender,
        my_tag: plan.contender as u32 + 1,
        deadline_ns: stretch.deadline_ns,
        stats,
        free,
        wait,
        runs,
        run: 0,
        arrival: (0, 0),
    };
    let end = race.run()?;
    let (stats, tallies) = race.finish(end);
    // The clocks stop first: turning the tallies into histograms is not part of the run.
    let mut stats = stretch.finish(stats, end)?;
    if let Some(free) = stats.free.as_mut() {
        free.wait = tallies.wait.to_histogram();
        free.runs = tallies.runs.to_histogram();
    }
    Ok(stats)
}

/// `free.wait` and `free.runs` as the loop counted them.
struct FreeTallies {
    wait: Tally,
    runs: Tally,
}

/// One contender in the free-for-all, and what it measured so far.
struct Race<'r, 'h> {
    arena: &'r Arena,
    h: &'r Header,
    handoff: &'r mut (dyn Handoff + 'h),
    plan: &'r Plan,
    dog: &'r Watchdog,
    me: usize,
    /// Our bit in the `waiting` masks.
    my_bit: u64,
    /// Our index + 1, as `last_holder` and `first_finished` spell it (0 = nobody).
    my_tag: u32,
    deadline_ns: u64,
    stats: ContenderStats,
    free: FreeStats,
    /// `free.wait` and `free.runs` while the loop runs (cheaper to count; see [`Tally`]).
    wait: Tally,
    runs: Tally,
    /// Consecutive acquisitions of ours so far.
    run: u64,
    /// This wait's arrival number, and the grant counter when it began (for the grant log).
    arrival: (u64, u64),
}

impl Race<'_, '_> {
    /// Takes the lock until the rounds are done or the run stops.
    fn run(&mut self) -> Result<End, SessionError> {
        let h = self.h;
        while self.stats.rounds < self.plan.rounds {
            self.dog.check()?;
            if let Some(reason) = h.stopped() {
                return Ok(reason.into());
            }
            let asked = monotonic_ns();
            let Some(got) = self.wait_for_lock()? else {
                return Ok(h.stopped().map_or(End::PeerAborted, End::from));
            };
            let in_window = self.record(asked, got);
            self.hold(got, in_window);
            self.release()?;
            if got >= self.deadline_ns && self.stats.rounds < self.plan.rounds {
                h.request_stop(StopReason::Deadline);
                let _ = self.handoff.wake_everyone();
                return Ok(End::Deadline);
            }
            if self.plan.think_ns > 0 {
                busy_until(monotonic_ns().saturating_add(self.plan.think_ns));
            }
        }
        Ok(End::Completed)
    }

    /// Waits for the lock, marked as waiting; returns when we got it, or `None` if the run
    /// stopped meanwhile.
    fn wait_for_lock(&mut self) -> Result<Option<u64>, SessionError> {
        let h = self.h;
        // Waiting starts just before the request (the kernel's queue of a file lock is out of
        // reach), or, for a lock with a queue of its own, when the lock says so.
        if !self.handoff.marks_waiting() {
            h.waiting.fetch_or(self.my_bit, Ordering::AcqRel);
        }
        self.arrival = (
            h.arrivals.fetch_add(1, Ordering::AcqRel),
            h.grants.load(Ordering::Acquire),
        );
        let held = acquire(self.dog, h, self.handoff)?;
        let got = monotonic_ns();
        h.waiting.fetch_and(!self.my_bit, Ordering::AcqRel);
        Ok(match held {
            Acquired::Held => Some(got),
            Acquired::Stopped => None,
        })
    }

    /// The critical section of the acquisition got at `got`: the busy work asked (`--hold`),
    /// then its length into the hold sums (lock opportunity's input).
    fn hold(&mut self, got: u64, in_window: bool) {
        let until = if self.plan.hold_ns > 0 {
            busy_until(got.saturating_add(self.plan.hold_ns))
        } else {
            monotonic_ns()
        };
        let held = until.saturating_sub(got);
        self.stats.held_ns += held;
        // Only holds that also ended in the window: none reaches past its end.
        if in_window && self.h.first_finished.load(Ordering::Acquire) == 0 {
            self.free.held_in_window_ns += held;
        }
    }

    /// One acquisition, asked at `asked` and got at `got`: overlap, barging, runs, wait. True if
    /// it fell in the common window.
    fn record(&mut self, asked: u64, got: u64) -> bool {
        let h = self.h;
        if h.enter(self.me) {
            self.stats.overlaps += 1;
        }
        self.log_grant();
        // Who held it last, and was anyone else waiting when it was released? (Looking at
        // `waiting` now would also count contenders who asked after we got it.)
        let previous = h.last_holder.swap(self.my_tag, Ordering::AcqRel);
        if previous == self.my_tag {
            self.run += 1;
            if h.waiting_at_release.load(Ordering::Acquire) & !self.my_bit != 0 {
                self.free.barging += 1;
            }
        } else {
            if self.run > 0 {
                self.runs.record(self.run);
            }
            self.run = 1;
        }
        self.wait.record(got.saturating_sub(asked));
        // The common window: everyone has asked at least once, nobody has finished yet.
        let in_window = h.begun.load(Ordering::Acquire) >= self.plan.contenders as u32
            && h.first_finished.load(Ordering::Acquire) == 0;
        if in_window {
            self.free.acquisitions_in_window += 1;
        }
        self.stats.rounds += 1;
        in_window
    }

    /// Writes this acquisition into the arena's grant log, from inside the critical section so
    /// grant numbers follow the lock's own order: the order measures are computed from it. A lock
    /// that numbers its arrivals itself (a ticket) gives its own number.
    fn log_grant(&self) {
        let (arrival, granted_before) = self.arrival;
        let others = self.h.waiting.load(Ordering::Acquire) & !self.my_bit;
        self.arena.log_grant(GrantEntry {
            contender: self.me as u8,
            others_waiting: others.count_ones() as u8,
            arrival: self.handoff.arrival().unwrap_or(arrival),
            granted_before,
        });
    }

    /// Leaves the critical section and unlocks, noting who was waiting at that moment.
    fn release(&mut self) -> Result<(), SessionError> {
        let h = self.h;
        h.leave(self.me);
        h.waiting_at_release
            .store(h.waiting.load(Ordering::Acquire), Ordering::Release);
        retry(self.dog, "release", || self.handoff.release())
    }

    /// The last run of acquisitions, and "first to finish" if we completed: our stats, and the
    /// tallies that become `free.wait` and `free.runs`.
    fn finish(mut self, end: End) -> (ContenderStats, FreeTallies) {
        if self.run > 0 {
            self.runs.record(self.run);
        }
        if end == End::Completed {
            let _ = self.h.first_finished.compare_exchange(
                0,
                self.my_tag,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        self.free.left_ns = monotonic_ns();
        self.stats.free = Some(self.free);
        let tallies = FreeTallies {
            wait: self.wait,
            runs: self.runs,
        };
        (self.stats, tallies)
    }
}
