//! `--mode free`: acquisitions, overlaps, barging, runs, the common window, the grant log and
//! every way the loop ends.

use std::sync::atomic::Ordering;

use nix::errno::Errno;

use super::fake::{Did, Peer, fails, got, interrupted};
use super::{Bench, plan, values};
use crate::arena::{GrantEntry, StopReason};
use crate::measure::{End, FreeStats};
use crate::session::watchdog::AbortReason;
use crate::session::{Plan, SessionError};
use crate::variant::Exclusion;

fn free(stats: &crate::measure::ContenderStats) -> &FreeStats {
    stats.free.as_ref().expect("a free-mode run has free stats")
}

#[test]
fn each_acquisition_is_counted_with_its_wait() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        got().after(100),
        got().after(200),
        got().after(300),
    ]);
    let stats = bench.free(&plan(0, 2, 3), &mut handoff).unwrap();
    assert_eq!(
        (stats.end, stats.rounds, stats.acquisitions()),
        (End::Completed, 3, 3)
    );
    assert_eq!((stats.overlaps, stats.whoops, stats.wall_ns), (0, 0, 600));
    let f = free(&stats);
    assert_eq!(values(&f.wait), [(100, 1), (200, 1), (300, 1)]);
    assert_eq!(values(&f.runs), [(3, 1)]);
    // Nobody else waited, and the peer never asked: no barging, no common window.
    assert_eq!((f.barging, f.acquisitions_in_window), (0, 0));
    let h = bench.header();
    // Our bit was up during every wait, and is down again.
    assert_eq!(handoff.waiting_seen, [0b01, 0b01, 0b01]);
    assert_eq!(h.waiting.load(Ordering::Relaxed), 0);
    assert_eq!(h.occupant.load(Ordering::Relaxed), 0);
    assert_eq!(h.begun.load(Ordering::Relaxed), 1);
    assert_eq!(h.arrivals.load(Ordering::Relaxed), 3);
    assert_eq!(h.grants.load(Ordering::Relaxed), 3);
    assert_eq!(h.last_holder.load(Ordering::Relaxed), 1);
    assert_eq!(h.first_finished.load(Ordering::Relaxed), 1);
    assert_eq!(h.stopped(), None);
    assert_eq!(handoff.did, [Did::Acquire, Did::Release].repeat(3));
}

#[test]
fn only_acquisitions_while_everyone_races_are_in_the_window() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        got(),
        got().with(Peer::Begins),
        got(),
        got().with(Peer::Finishes),
        got(),
    ]);
    let stats = bench.free(&plan(0, 2, 5), &mut handoff).unwrap();
    assert_eq!(stats.rounds, 5);
    assert_eq!(free(&stats).acquisitions_in_window, 2);
    // The peer finished first, and stays first.
    assert_eq!(bench.header().first_finished.load(Ordering::Relaxed), 2);
}

#[test]
fn an_overlap_is_counted_when_the_peer_is_inside() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        got(),
        got().with(Peer::Enters),
        got().with(Peer::Leaves),
        got().with(Peer::Enters),
    ]);
    let stats = bench.free(&plan(0, 2, 4), &mut handoff).unwrap();
    assert_eq!((stats.rounds, stats.overlaps), (4, 2));
    assert_eq!(bench.header().occupant.load(Ordering::Relaxed), 0b10);
}

/// Barging: we take the lock straight back after our own release while the peer waited.
#[test]
fn barging_and_runs_are_counted() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        got().with(Peer::Waits),
        got(),
        got(),
        got().with(Peer::Holds),
        got().with(Peer::Holds),
        got(),
    ]);
    let stats = bench.free(&plan(0, 2, 6), &mut handoff).unwrap();
    assert_eq!(stats.rounds, 6);
    let f = free(&stats);
    // Acquisitions 2 and 3 jumped the waiting peer; 6 followed our release with nobody waiting.
    assert_eq!(f.barging, 2);
    assert_eq!(values(&f.runs), [(1, 1), (2, 1), (3, 1)]);
    assert_eq!(bench.header().last_holder.load(Ordering::Relaxed), 1);
}

/// Only somebody else waiting makes a straight re-acquisition barging, whatever the releaser's
/// mask says about us.
#[test]
fn our_own_bit_in_the_release_mask_is_not_barging() {
    let bench = Bench::new(2);
    let ours = |h: &crate::arena::Header| h.waiting_at_release.store(0b01, Ordering::Release);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .script([got(), got().with(Peer::Writes(ours))]);
    let stats = bench.free(&plan(0, 2, 2), &mut handoff).unwrap();
    assert_eq!(stats.rounds, 2);
    assert_eq!(free(&stats).barging, 0);
    assert_eq!(values(&free(&stats).runs), [(2, 1)]);
}

#[test]
fn the_grant_log_records_who_got_it_and_who_waited() {
    let bench = Bench::new(2);
    let mut handoff =
        bench
            .handoff(0, Exclusion::Lock)
            .script([got(), got().with(Peer::Waits), got()]);
    let stats = bench.free(&plan(0, 2, 3), &mut handoff).unwrap();
    assert_eq!(stats.rounds, 3);
    let entry = |g| bench.arena.grant_entry(g, 2);
    let want = |others_waiting, n| GrantEntry {
        contender: 0,
        others_waiting,
        arrival: n,
        granted_before: n,
    };
    assert_eq!(entry(0), Some(want(0, 0)));
    assert_eq!(entry(1), Some(want(1, 1)));
    assert_eq!(entry(2), Some(want(1, 2)));
    assert_eq!(entry(3), None);
}

#[test]
fn a_lock_with_its_own_queue_marks_the_wait_and_numbers_the_arrival() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).ticket(7);
    let stats = bench.free(&plan(0, 2, 2), &mut handoff).unwrap();
    assert_eq!(stats.rounds, 2);
    // The loop left our bit to the lock, which raised it inside `acquire`.
    assert_eq!(handoff.waiting_seen, [0, 0]);
    assert_eq!(bench.header().waiting.load(Ordering::Relaxed), 0);
    let arrivals: Vec<_> = (0..2)
        .map(|g| bench.arena.grant_entry(g, 2).map(|e| e.arrival))
        .collect();
    assert_eq!(arrivals, [Some(7), Some(8)]);
}

#[test]
fn the_deadline_ends_the_loop_unless_the_last_round_is_done() {
    for (rounds, end, done) in [(5, End::Deadline, 3), (3, End::Completed, 3)] {
        let bench = Bench::new(2);
        let mut handoff = bench.handoff(0, Exclusion::Lock);
        let plan = Plan {
            max_ns: 250,
            ..plan(0, 2, rounds)
        };
        let stats = bench.free(&plan, &mut handoff).unwrap();
        assert_eq!((stats.end, stats.rounds), (end, done), "{rounds} rounds");
        assert_eq!(free(&stats).wait.len(), done);
        let h = bench.header();
        if end == End::Deadline {
            assert_eq!(h.stopped(), Some(StopReason::Deadline));
            assert_eq!(handoff.did.last(), Some(&Did::WakeEveryone));
            assert_eq!(h.first_finished.load(Ordering::Relaxed), 0);
        } else {
            assert_eq!(h.stopped(), None);
            assert_eq!(h.first_finished.load(Ordering::Relaxed), 1);
        }
    }
}

#[test]
fn a_stop_by_a_peer_ends_the_loop_with_its_reason() {
    for (reason, end) in [
        (StopReason::Deadline, End::PeerDeadline),
        (StopReason::Aborted, End::PeerAborted),
    ] {
        let bench = Bench::new(2);
        let mut handoff = bench
            .handoff(0, Exclusion::Lock)
            .script([got(), got().with(Peer::Stops(reason))]);
        let stats = bench.free(&plan(0, 2, 5), &mut handoff).unwrap();
        // The acquisition it made as the stop came still counts.
        assert_eq!((stats.end, stats.rounds), (end, 2), "{reason:?}");
        assert_eq!(bench.header().first_finished.load(Ordering::Relaxed), 0);
    }
    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .script([got(), interrupted().with(Peer::Stops(StopReason::Aborted))]);
    let stats = bench.free(&plan(0, 2, 5), &mut handoff).unwrap();
    assert_eq!((stats.end, stats.rounds), (End::PeerAborted, 1));
    // Interrupted, it holds nothing to release, and waits no more.
    assert_eq!(handoff.did, [Did::Acquire, Did::Release, Did::Acquire]);
    assert_eq!(bench.header().waiting.load(Ordering::Relaxed), 0);
}

#[test]
fn a_dead_peer_aborts_the_session_and_stops_the_others() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        got(),
        interrupted(),
        interrupted().with(Peer::Dies(99)),
    ]);
    let err = bench.free(&plan(0, 2, 5), &mut handoff).unwrap_err();
    assert!(
        matches!(err, SessionError::Aborted(AbortReason::PeerDied(99))),
        "{err:?}"
    );
    // The interrupted wait that found the watchdog fired was the last.
    assert_eq!(handoff.count(Did::Acquire), 3);
    let h = bench.header();
    assert_eq!(h.stopped(), Some(StopReason::Aborted));
    // No longer waiting, so nobody counts it as jumped over.
    assert_eq!(h.waiting.load(Ordering::Relaxed), 0);
    assert_eq!(handoff.did.last(), Some(&Did::WakeEveryone));
}

#[test]
fn a_failing_call_ends_the_session_naming_what_failed() {
    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .script([got(), fails(Errno::ENOLCK)]);
    let err = bench.free(&plan(0, 2, 5), &mut handoff).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Sys {
                what: "acquire",
                errno: Errno::ENOLCK
            }
        ),
        "{err:?}"
    );
    assert_eq!(bench.header().stopped(), Some(StopReason::Aborted));

    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .releases([Ok(()), Err(Errno::EIO)]);
    let err = bench.free(&plan(0, 2, 5), &mut handoff).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Sys {
                what: "release",
                errno: Errno::EIO
            }
        ),
        "{err:?}"
    );
    assert_eq!(bench.header().stopped(), Some(StopReason::Aborted));
}

#[test]
fn the_hold_is_busy_work_inside_the_section_and_summed_in_and_out_of_the_window() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        got().after(100),
        got().after(100).with(Peer::Begins),
        got().after(100),
        got().after(100).with(Peer::Finishes),
    ]);
    let plan = Plan {
        hold_ns: 1_000,
        think_ns: 500,
        ..plan(0, 2, 4)
    };
    let stats = bench.free(&plan, &mut handoff).unwrap();
    assert_eq!(stats.rounds, 4);
    // Each hold lasts what was asked, on the loop's clock; waits and thinks are not holds.
    assert_eq!(stats.held_ns, 4_000);
    assert_eq!(stats.wall_ns, 4 * (100 + 1_000 + 500));
    let f = free(&stats);
    assert_eq!((f.acquisitions_in_window, f.held_in_window_ns), (2, 2_000));
    // Joined at the start line, left after the last think.
    assert_eq!(f.joined_ns, super::START_NS);
    assert_eq!(f.left_ns, super::START_NS + stats.wall_ns);
    assert_eq!(values(&f.wait), [(100, 4)]);
}

#[test]
fn without_a_hold_the_section_is_only_the_bookkeeping() {
    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .script([got().after(100), got().after(200)]);
    let stats = bench.free(&plan(0, 2, 2), &mut handoff).unwrap();
    // The stopped clock does not move inside the section.
    assert_eq!((stats.held_ns, stats.wall_ns), (0, 300));
}
