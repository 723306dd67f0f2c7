//! The loop of `--mode free`: every contender takes the lock `rounds` times, as fast as it can,
//! with no order at all. This is plain lock-handoff unfairness: who gets the lock after an
//! unlock, how long the others wait, and how often the releaser takes it straight back.

use std::sync::atomic::Ordering;

use super::start::wait_at_start_line;
use super::watchdog::Watchdog;
use super::{Acquired, Plan, SessionError, acquire, retry, sys};
use crate::arena::{Arena, GrantEntry, StopReason};
use crate::measure::{End, FreeStats, SideStats};
use crate::sys::clock::monotonic_ns;
use crate::sys::rusage::ThreadUsage;
use crate::variant::Handoff;

/// Takes the lock `plan.rounds` times (or fewer, if the run stops), measuring each acquisition.
pub fn run_free(
    arena: &Arena,
    handoff: &mut dyn Handoff,
    plan: &Plan,
    dog: &Watchdog,
) -> Result<SideStats, SessionError> {
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
) -> Result<SideStats, SessionError> {
    let h = arena.header();
    let me = plan.contender;
    let my_bit = 1u64 << me;
    let my_tag = me as u32 + 1;
    let mut stats = SideStats::new(me, plan.cpu);
    let mut free = FreeStats::new();
    let mut run = 0u64;

    wait_at_start_line(h, plan, dog)?;
    let usage_before = ThreadUsage::now().map_err(sys("read rusage"))?;
    let start = monotonic_ns();
    let deadline = start.saturating_add(plan.max_ns);
    let mut end = End::Completed;
    let everyone = plan.contenders as u32;
    h.begun.fetch_add(1, Ordering::AcqRel);
    while stats.rounds < plan.rounds {
        dog.check()?;
        if let Some(reason) = h.stopped() {
            end = match reason {
                StopReason::Deadline => End::PeerDeadline,
                StopReason::Aborted => End::PeerAborted,
            };
            break;
        }
        let asked = monotonic_ns();
        // Waiting starts just before the request (the kernel's queue of a file lock is out of
        // reach), or, for a lock with a queue of its own, when the lock says so.
        if !handoff.marks_waiting() {
            h.waiting.fetch_or(my_bit, Ordering::AcqRel);
        }
        let arrival = (
            h.arrivals.fetch_add(1, Ordering::AcqRel),
            h.grants.load(Ordering::Acquire),
        );
        let held = acquire(dog, h, handoff)?;
        let got = monotonic_ns();
        h.waiting.fetch_and(!my_bit, Ordering::AcqRel);
        if let Acquired::Stopped = held {
            end = match h.stopped() {
                Some(StopReason::Deadline) => End::PeerDeadline,
                _ => End::PeerAborted,
            };
            break;
        }
        if h.enter(me) {
            stats.overlaps += 1;
        }
        log_grant(
            arena,
            me,
            (handoff.arrival().unwrap_or(arrival.0), arrival.1),
        );
        // Who held it last, and was anyone else waiting when it was released? (Looking at
        // `waiting` now would also count contenders who asked after we got it.)
        let previous = h.last_holder.swap(my_tag, Ordering::AcqRel);
        if previous == my_tag {
            run += 1;
            if h.waiting_at_release.load(Ordering::Acquire) & !my_bit != 0 {
                free.barging += 1;
            }
        } else {
            if run > 0 {
                free.runs.saturating_record(run);
            }
            run = 1;
        }
        free.wait.saturating_record(got.saturating_sub(asked));
        // The common window: everyone has asked at least once, nobody has finished yet.
        if h.begun.load(Ordering::Acquire) >= everyone
            && h.first_finished.load(Ordering::Acquire) == 0
        {
            free.acquisitions_in_window += 1;
        }
        stats.rounds += 1;
        h.leave(me);
        h.waiting_at_release
            .store(h.waiting.load(Ordering::Acquire), Ordering::Release);
        retry(dog, "release", || handoff.release())?;
        if got >= deadline && stats.rounds < plan.rounds {
            h.request_stop(StopReason::Deadline);
            let _ = handoff.wake_everyone();
            end = End::Deadline;
            break;
        }
    }
    if run > 0 {
        free.runs.saturating_record(run);
    }
    if end == End::Completed {
        let _ = h
            .first_finished
            .compare_exchange(0, my_tag, Ordering::AcqRel, Ordering::Acquire);
    }
    stats.wall_ns = monotonic_ns() - start;
    stats.end = end;
    stats.free = Some(free);
    let usage_after = ThreadUsage::now().map_err(sys("read rusage"))?;
    stats.rusage = usage_after.since(&usage_before).into();
    Ok(stats)
}

/// Writes this acquisition into the arena's grant log (from inside the critical section, so
/// grant numbers follow the lock's own order): the order measures are computed from it.
fn log_grant(arena: &Arena, me: usize, (arrival, granted_before): (u64, u64)) {
    let others = arena.header().waiting.load(Ordering::Acquire) & !(1u64 << me);
    arena.log_grant(GrantEntry {
        contender: me as u8,
        others_waiting: others.count_ones() as u8,
        arrival,
        granted_before,
    });
}
