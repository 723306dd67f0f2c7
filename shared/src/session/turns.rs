//! The round loop of `--mode turns`: the one place that takes turns, times them and checks them,
//! whatever the variant.

use std::sync::atomic::Ordering;

use super::start::wait_at_start_line;
use super::watchdog::Watchdog;
use super::{Acquired, Plan, SessionError, acquire, retry, sys};
use crate::arena::{Header, StopReason};
use crate::measure::{End, SideStats};
use crate::sys::clock::monotonic_ns;
use crate::sys::rusage::ThreadUsage;
use crate::variant::{Exclusion, Handoff, Turn};

/// Takes `plan.rounds` turns (or fewer, if the run stops), measuring each.
pub fn run_turns(
    header: &Header,
    handoff: &mut dyn Handoff,
    turn: &mut dyn Turn,
    plan: &Plan,
    dog: &Watchdog,
) -> Result<SideStats, SessionError> {
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
) -> Result<SideStats, SessionError> {
    let me = plan.contender;
    let next = (me + 1) % plan.contenders;
    let guarded_by_lock = handoff.exclusion() == Exclusion::Lock;
    let mut stats = SideStats::new(me, plan.cpu);

    wait_at_start_line(h, plan, dog)?;
    let usage_before = ThreadUsage::now().map_err(sys("read rusage"))?;
    let start = monotonic_ns();
    let deadline = start.saturating_add(plan.max_ns);
    let mut last_pass: Option<u64> = None;
    let mut whoops_this_turn = 0u64;

    let end = 'run: loop {
        if stats.rounds == plan.rounds {
            break End::Completed;
        }
        // Wait for the turn: take the mechanism, look whose turn it is, let go if not ours.
        let now = loop {
            dog.check()?;
            let held = acquire(dog, h, handoff)?;
            let now = monotonic_ns();
            if let Some(reason) = h.stopped() {
                if let Acquired::Held = held {
                    retry(dog, "release", || handoff.release())?;
                }
                let _ = handoff.wake_everyone();
                break 'run match reason {
                    StopReason::Deadline => End::PeerDeadline,
                    StopReason::Aborted => End::PeerAborted,
                };
            }
            if guarded_by_lock && h.enter(me) {
                stats.overlaps += 1;
            }
            if retry(dog, "look at the turn", || turn.is_mine())? {
                break now;
            }
            if guarded_by_lock {
                h.leave(me);
            }
            stats.whoops += 1;
            whoops_this_turn += 1;
            retry(dog, "release", || handoff.release())?;
            if now >= deadline {
                break 'run stop_for_deadline(h, handoff);
            }
        };
        if !guarded_by_lock && h.enter(me) {
            stats.overlaps += 1;
        }
        if now >= deadline {
            h.leave(me);
            retry(dog, "release", || handoff.release())?;
            break stop_for_deadline(h, handoff);
        }
        let released = h.release_ns.load(Ordering::Acquire);
        stats
            .handoff
            .saturating_record(now.saturating_sub(released));
        if let Some(passed) = last_pass {
            stats
                .round_trip
                .saturating_record(now.saturating_sub(passed));
        }
        stats.whoops_per_round.saturating_record(whoops_this_turn);
        whoops_this_turn = 0;

        // The release timestamp goes out just before the turn does.
        let early = turn.take_passes().then(|| stamp_release(h));
        if !retry(dog, "take the turn", || turn.take(stats.rounds))? {
            stats.wrong_reads += 1;
        }
        h.leave(me);
        let passed = early.unwrap_or_else(|| stamp_release(h));
        retry(dog, "pass the turn", || turn.pass(next))?;
        stats.rounds += 1;
        last_pass = Some(passed);
        if stats.rounds == plan.rounds && next == 0 {
            // The last turn of the run: contender 0 has finished, there is nobody to wake
            // (a pipe to it would even be closed).
            retry(dog, "release", || handoff.release())?;
        } else {
            retry(dog, "hand over", || handoff.hand_over(next))?;
        }
    };

    stats.wall_ns = monotonic_ns() - start;
    stats.end = end;
    let usage_after = ThreadUsage::now().map_err(sys("read rusage"))?;
    stats.rusage = usage_after.since(&usage_before).into();
    Ok(stats)
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
