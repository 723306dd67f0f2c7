//! The round loop of `--mode turns`: the one place that takes turns, times them and checks them,
//! whatever the variant.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use super::busy::busy_until;
use super::start::Stretch;
use super::watchdog::Watchdog;
use super::{Acquired, Plan, SessionError, acquire, monotonic_ns, retry};
use crate::arena::{Header, StopReason};
use crate::measure::{ContenderStats, End};
use crate::tally::Tally;
use crate::variant::{Exclusion, Handoff, Turn};

/// Takes `plan.rounds` turns (or fewer, if the run stops), measuring each.
pub fn run_turns(
    header: &Header,
    handoff: &mut dyn Handoff,
    turn: &mut dyn Turn,
    plan: &Plan,
    dog: &Watchdog,
) -> Result<ContenderStats, SessionError> {
    let result = take_turns(header, handoff, turn, plan, dog);
    if result.is_err() {
        // Tell the others, so they stop promptly instead of waiting for their own watchdogs.
        header.request_stop(StopReason::Aborted);
        let _ = handoff.release();
        let _ = handoff.wake_everyone();
    }
    result
}

fn take_turns(
    h: &Header,
    handoff: &mut dyn Handoff,
    turn: &mut dyn Turn,
    plan: &Plan,
    dog: &Watchdog,
) -> Result<ContenderStats, SessionError> {
    // Allocated before the clock starts.
    let tallies = Tallies::default();
    let stats = ContenderStats::new(plan.contender, plan.cpu);
    let stretch = Stretch::begin(h, plan, dog)?;
    let mut ring = Ring {
        h,
        handoff,
        turn,
        plan,
        dog,
        me: plan.contender,
        next: (plan.contender + 1) % plan.contenders,
        deadline_ns: stretch.deadline_ns,
        stats,
        last_pass: None,
        whoops_this_turn: 0,
        tallies,
    };
    let end = ring.run()?;
    let Ring { stats, tallies, .. } = ring;
    // The clocks stop first: turning the tallies into histograms is not part of the run.
    let mut stats = stretch.finish(stats, end)?;
    tallies.store_into(&mut stats);
    Ok(stats)
}

/// One contender's place in the ring of turns, and what it measured so far.
struct Ring<'r, 'h> {
    h: &'r Header,
    handoff: &'r mut (dyn Handoff + 'h),
    turn: &'r mut (dyn Turn + 'h),
    plan: &'r Plan,
    dog: &'r Watchdog,
    me: usize,
    /// Who gets the turn after us.
    next: usize,
    deadline_ns: u64,
    stats: ContenderStats,
    /// When we last passed the turn on (the round trip runs from there).
    last_pass: Option<u64>,
    whoops_this_turn: u64,
    tallies: Tallies,
}

/// What one turn measured, counted after the turn is passed on.
struct TurnFigures {
    handoff_ns: u64,
    round_trip_ns: Option<u64>,
    whoops: u64,
}

/// The turn histograms while the loop runs (see [`Tally`] for why not `Histogram` itself).
#[derive(Default)]
struct Tallies {
    handoff: Tally,
    round_trip: Tally,
    whoops_per_round: Tally,
}

impl Tallies {
    fn count(&mut self, f: &TurnFigures) {
        self.handoff.record(f.handoff_ns);
        if let Some(rt) = f.round_trip_ns {
            self.round_trip.record(rt);
        }
        self.whoops_per_round.record(f.whoops);
    }

    fn store_into(&self, stats: &mut ContenderStats) {
        stats.handoff = self.handoff.to_histogram();
        stats.round_trip = self.round_trip.to_histogram();
        stats.whoops_per_round = self.whoops_per_round.to_histogram();
    }
}

impl Ring<'_, '_> {
    /// Takes turns until the rounds are done or the run stops.
    fn run(&mut self) -> Result<End, SessionError> {
        while self.stats.rounds < self.plan.rounds {
            let now = match self.wait_for_turn()? {
                ControlFlow::Continue(now) => now,
                ControlFlow::Break(end) => return Ok(end),
            };
            if let ControlFlow::Break(end) = self.take_turn(now)? {
                return Ok(end);
            }
        }
        Ok(End::Completed)
    }

    /// A file lock guards the turn word: with the mechanism held, is the turn ours?
    fn guarded_by_lock(&self) -> bool {
        self.handoff.exclusion() == Exclusion::Lock
    }

    /// Takes the mechanism, looks whose turn it is, lets go if it is not ours (a whoop), until it
    /// is ours: then returns when we got it, with the mechanism held.
    fn wait_for_turn(&mut self) -> Result<ControlFlow<End, u64>, SessionError> {
        let (h, me, dog) = (self.h, self.me, self.dog);
        let guarded = self.guarded_by_lock();
        loop {
            dog.check()?;
            let held = acquire(dog, h, self.handoff)?;
            let now = monotonic_ns();
            if let Some(reason) = h.stopped() {
                if let Acquired::Held = held {
                    retry(dog, "release", || self.handoff.release())?;
                }
                let _ = self.handoff.wake_everyone();
                return Ok(ControlFlow::Break(reason.into()));
            }
            if guarded && h.enter(me) {
                self.stats.overlaps += 1;
            }
            if retry(dog, "look at the turn", || self.turn.is_mine())? {
                return Ok(ControlFlow::Continue(now));
            }
            if guarded {
                h.leave(me);
            }
            self.stats.whoops += 1;
            self.whoops_this_turn += 1;
            retry(dog, "release", || self.handoff.release())?;
            if now >= self.deadline_ns {
                return Ok(ControlFlow::Break(stop_for_deadline(h, self.handoff)));
            }
        }
    }

    /// Our turn, got at `now`: record it, take it (write or read the line), pass it on.
    fn take_turn(&mut self, now: u64) -> Result<ControlFlow<End>, SessionError> {
        let (h, me, dog) = (self.h, self.me, self.dog);
        if !self.guarded_by_lock() && h.enter(me) {
            self.stats.overlaps += 1;
        }
        if now >= self.deadline_ns {
            h.leave(me);
            retry(dog, "release", || self.handoff.release())?;
            return Ok(ControlFlow::Break(stop_for_deadline(h, self.handoff)));
        }
        let figures = self.measure(now);
        if self.plan.hold_ns > 0 {
            busy_until(now.saturating_add(self.plan.hold_ns));
        }
        // The release timestamp goes out just before the turn does.
        let early = self.turn.take_passes().then(|| stamp_release(h));
        let round = self.stats.rounds;
        if !retry(dog, "take the turn", || self.turn.take(round))? {
            self.stats.wrong_reads += 1;
        }
        h.leave(me);
        let passed = early.unwrap_or_else(|| stamp_release(h));
        let next = self.next;
        retry(dog, "pass the turn", || self.turn.pass(next))?;
        self.stats.rounds += 1;
        self.stats.held_ns += passed.saturating_sub(now);
        self.last_pass = Some(passed);
        self.hand_over()?;
        if self.plan.think_ns > 0 {
            busy_until(monotonic_ns().saturating_add(self.plan.think_ns));
        }
        // Counted once the next contender has the turn: on another CPU it runs meanwhile, so the
        // bookkeeping stays off the handoff's critical path.
        self.tallies.count(&figures);
        Ok(ControlFlow::Continue(()))
    }

    /// The handoff latency, the round trip and the whoops of the turn we just got at `now`: read
    /// now (before our own release stamp replaces the previous holder's), counted after the
    /// handoff.
    fn measure(&mut self, now: u64) -> TurnFigures {
        let released = self.h.release_ns.load(Ordering::Acquire);
        let figures = TurnFigures {
            handoff_ns: now.saturating_sub(released),
            round_trip_ns: self.last_pass.map(|passed| now.saturating_sub(passed)),
            whoops: self.whoops_this_turn,
        };
        self.whoops_this_turn = 0;
        figures
    }

    /// Wakes the next contender, unless this was the run's last turn.
    fn hand_over(&mut self) -> Result<(), SessionError> {
        let next = self.next;
        if self.stats.rounds == self.plan.rounds && next == 0 {
            // The last turn of the run: contender 0 has finished, there is nobody to wake
            // (a pipe to it would even be closed).
            retry(self.dog, "release", || self.handoff.release())
        } else {
            retry(self.dog, "hand over", || self.handoff.hand_over(next))
        }
    }
}

fn stamp_release(h: &Header) -> u64 {
    let now = monotonic_ns();
    h.release_ns.store(now, Ordering::Release);
    now
}

fn stop_for_deadline(h: &Header, handoff: &mut dyn Handoff) -> End {
    h.request_stop(StopReason::Deadline);
    let _ = handoff.wake_everyone();
    End::Deadline
}
