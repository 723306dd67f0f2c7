//! `--mode turns`: whoops, overlaps, wrong reads, the per-turn figures and every way the loop
//! ends.

use std::sync::atomic::Ordering;

use nix::errno::Errno;

use super::fake::{Did, FakeTurn, Peer, fails, got, interrupted};
use super::{Bench, START_NS, plan, values};
use crate::arena::StopReason;
use crate::measure::End;
use crate::session::watchdog::AbortReason;
use crate::session::{Plan, SessionError};
use crate::variant::Exclusion;

const BOTH: [Exclusion; 2] = [Exclusion::Lock, Exclusion::Turn];

#[test]
fn whoops_are_counted_in_all_and_per_turn() {
    for exclusion in BOTH {
        let bench = Bench::new(2);
        let mut handoff = bench.handoff(0, exclusion);
        let mut turn = FakeTurn::mine([false, false, true, true, false, false, false, true]);
        let stats = bench
            .turns(&plan(0, 2, 3), &mut handoff, &mut turn)
            .unwrap();
        assert_eq!(stats.end, End::Completed, "{exclusion:?}");
        assert_eq!(stats.rounds, 3, "{exclusion:?}");
        assert_eq!(stats.whoops, 5, "{exclusion:?}");
        assert_eq!(
            values(&stats.whoops_per_round),
            [(0, 1), (2, 1), (3, 1)],
            "{exclusion:?}"
        );
        assert_eq!(stats.overlaps, 0, "{exclusion:?}");
        // Each whoop lets go without handing over; each turn is handed to contender 1.
        assert_eq!(handoff.count(Did::Acquire), 8, "{exclusion:?}");
        assert_eq!(handoff.count(Did::Release), 5, "{exclusion:?}");
        assert_eq!(handoff.count(Did::HandOver(1)), 3, "{exclusion:?}");
        assert_eq!(turn.passed, [1, 1, 1], "{exclusion:?}");
        assert_eq!(bench.header().occupant.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn each_turn_records_its_handoff_round_trip_and_whoops() {
    let bench = Bench::new(2);
    // Contender 1, last to the start line, stamps the first release at START_NS.
    let mut handoff = bench.handoff(1, Exclusion::Turn).script([
        got().after(300),
        got().after(100),
        got().after(200).with(Peer::Released(50)),
        got().after(400).with(Peer::Released(70)),
    ]);
    let mut turn = FakeTurn::mine([true, false, true, true]);
    let stats = bench
        .turns(&plan(1, 2, 3), &mut handoff, &mut turn)
        .unwrap();
    assert_eq!(
        (stats.end, stats.rounds, stats.whoops),
        (End::Completed, 3, 1)
    );
    assert_eq!(values(&stats.handoff), [(50, 1), (70, 1), (300, 1)]);
    assert_eq!(values(&stats.round_trip), [(300, 1), (400, 1)]);
    assert_eq!(values(&stats.whoops_per_round), [(0, 2), (1, 1)]);
    assert_eq!(stats.wall_ns, 1000);
    assert_eq!(turn.taken, [0, 1, 2]);
    // The run's last turn goes to contender 0, which has finished: released, not handed over.
    assert_eq!(turn.passed, [0, 0, 0]);
    assert_eq!(handoff.count(Did::HandOver(0)), 2);
    assert_eq!(handoff.did.last(), Some(&Did::Release));
    assert_eq!(
        bench.header().release_ns.load(Ordering::Relaxed),
        START_NS + 1000
    );
}

/// An overlap counts where the mechanism's critical section starts: on taking a lock (even for a
/// whoop), or on finding the turn ours.
#[test]
fn an_overlap_is_counted_once_where_the_critical_section_starts() {
    let cases = [
        (Exclusion::Lock, [true, true, true], 1),
        (Exclusion::Turn, [true, true, true], 1),
        // The peer enters during a whoop: a lock's holder is inside, whoever's turn it is.
        (Exclusion::Lock, [true, false, true], 1),
        // Woken while the peer holds the turn: no critical section entered, no overlap.
        (Exclusion::Turn, [true, false, true], 0),
    ];
    for (exclusion, mine, overlaps) in cases {
        let bench = Bench::new(2);
        let mut handoff = bench.handoff(0, exclusion).script([
            got(),
            got().with(Peer::Enters),
            got().with(Peer::Leaves),
        ]);
        let mut turn = FakeTurn::mine(mine);
        let rounds = mine.iter().filter(|&&m| m).count() as u64;
        let stats = bench
            .turns(&plan(0, 2, rounds), &mut handoff, &mut turn)
            .unwrap();
        let case = format!("{exclusion:?} {mine:?}");
        assert_eq!(stats.overlaps, overlaps, "{case}");
        assert_eq!(stats.rounds, rounds, "{case}");
        assert_eq!(bench.header().occupant.load(Ordering::Relaxed), 0, "{case}");
    }
}

#[test]
fn a_peer_inside_the_whole_run_is_an_overlap_every_turn() {
    for exclusion in BOTH {
        let bench = Bench::new(2);
        let mut handoff = bench
            .handoff(0, exclusion)
            .script([got().with(Peer::Enters)]);
        let mut turn = FakeTurn::default();
        let stats = bench
            .turns(&plan(0, 2, 4), &mut handoff, &mut turn)
            .unwrap();
        assert_eq!(stats.overlaps, 4, "{exclusion:?}");
        // Our own bit is gone again; the peer's stays.
        assert_eq!(bench.header().occupant.load(Ordering::Relaxed), 0b10);
    }
}

#[test]
fn wrong_reads_are_counted() {
    let bench = Bench::new(3);
    let mut handoff = bench.handoff(2, Exclusion::Turn);
    let mut turn = FakeTurn::default().reads([Ok(true), Ok(false), Ok(true), Ok(false)]);
    let stats = bench
        .turns(&plan(2, 3, 4), &mut handoff, &mut turn)
        .unwrap();
    assert_eq!((stats.rounds, stats.wrong_reads), (4, 2));
    assert_eq!(turn.taken, [0, 1, 2, 3]);
    assert_eq!(turn.passed, [0, 0, 0, 0]);
}

#[test]
fn interrupted_waits_are_retried_and_count_nothing() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        interrupted(),
        got(),
        interrupted(),
        interrupted(),
        got(),
    ]);
    let mut turn = FakeTurn::default().then_mine([Err(Errno::EINTR), Ok(true)]);
    let stats = bench
        .turns(&plan(0, 2, 2), &mut handoff, &mut turn)
        .unwrap();
    assert_eq!((stats.end, stats.rounds), (End::Completed, 2));
    assert_eq!((stats.whoops, stats.overlaps), (0, 0));
    assert_eq!(values(&stats.whoops_per_round), [(0, 2)]);
    assert_eq!(handoff.count(Did::Acquire), 5);
    assert_eq!(handoff.count(Did::Release), 0);
}

#[test]
fn the_deadline_ends_the_loop_on_a_turn() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Lock).script([
        got().after(400),
        got().after(400),
        got().after(400),
    ]);
    let plan = Plan {
        max_ns: 1000,
        ..plan(0, 2, 5)
    };
    let stats = bench
        .turns(&plan, &mut handoff, &mut FakeTurn::default())
        .unwrap();
    assert_eq!(
        (stats.end, stats.rounds, stats.whoops),
        (End::Deadline, 2, 0)
    );
    assert_eq!(bench.header().stopped(), Some(StopReason::Deadline));
    // The turn found after the deadline is let go, not taken, and everyone is woken.
    let tail = &handoff.did[handoff.did.len() - 3..];
    assert_eq!(tail, [Did::Acquire, Did::Release, Did::WakeEveryone]);
    assert_eq!(bench.header().occupant.load(Ordering::Relaxed), 0);
}

#[test]
fn the_deadline_ends_the_loop_on_a_whoop() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(1, Exclusion::Lock).script([
        got().after(400),
        got().after(400),
        got().after(400),
    ]);
    let plan = Plan {
        max_ns: 1000,
        ..plan(1, 2, 5)
    };
    // The turn would not come for a while yet: the whoop past the deadline is the last.
    let mut turn = FakeTurn::mine([true, false, false, false, false]);
    let stats = bench.turns(&plan, &mut handoff, &mut turn).unwrap();
    assert_eq!(
        (stats.end, stats.rounds, stats.whoops),
        (End::Deadline, 1, 2)
    );
    assert_eq!(handoff.count(Did::Acquire), 3);
    // The whoops of the turn that never came are in the total, not in the per-turn figures.
    assert_eq!(values(&stats.whoops_per_round), [(0, 1)]);
    assert_eq!(bench.header().stopped(), Some(StopReason::Deadline));
    assert_eq!(handoff.did.last(), Some(&Did::WakeEveryone));
    assert_eq!(bench.header().occupant.load(Ordering::Relaxed), 0);
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
        let mut turn = FakeTurn::default();
        let stats = bench
            .turns(&plan(0, 2, 5), &mut handoff, &mut turn)
            .unwrap();
        assert_eq!((stats.end, stats.rounds, stats.whoops), (end, 1, 0));
        // Holding the mechanism when it saw the stop: it lets go, and wakes everyone.
        let tail = &handoff.did[handoff.did.len() - 3..];
        assert_eq!(tail, [Did::Acquire, Did::Release, Did::WakeEveryone]);
        assert_eq!(bench.header().stopped(), Some(reason));
        assert_eq!(turn.taken, [0]);
    }
}

#[test]
fn a_stop_seen_while_interrupted_lets_go_of_nothing() {
    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .script([got(), interrupted().with(Peer::Stops(StopReason::Aborted))]);
    let stats = bench
        .turns(&plan(0, 2, 5), &mut handoff, &mut FakeTurn::default())
        .unwrap();
    assert_eq!((stats.end, stats.rounds), (End::PeerAborted, 1));
    let tail = &handoff.did[handoff.did.len() - 2..];
    assert_eq!(tail, [Did::Acquire, Did::WakeEveryone]);
}

#[test]
fn a_dead_peer_aborts_the_session_and_stops_the_others() {
    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .script([got(), interrupted().with(Peer::Dies(4242))]);
    let err = bench
        .turns(&plan(0, 2, 5), &mut handoff, &mut FakeTurn::default())
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Aborted(AbortReason::PeerDied(4242))),
        "{err:?}"
    );
    // The interrupted wait that found the watchdog fired was the last.
    assert_eq!(handoff.count(Did::Acquire), 2);
    assert_eq!(bench.header().stopped(), Some(StopReason::Aborted));
    assert_eq!(handoff.did.last(), Some(&Did::WakeEveryone));
}

#[test]
fn a_peer_dying_while_we_look_at_the_turn_aborts_the_session() {
    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Lock)
        .script([got().with(Peer::Dies(77))]);
    let mut turn = FakeTurn::default().then_mine([Err(Errno::EINTR)]);
    let err = bench
        .turns(&plan(0, 2, 5), &mut handoff, &mut turn)
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Aborted(AbortReason::PeerDied(77))),
        "{err:?}"
    );
    assert!(turn.taken.is_empty(), "{:?}", turn.taken);
    assert_eq!(bench.header().stopped(), Some(StopReason::Aborted));
}

#[test]
fn a_failing_call_ends_the_session_naming_what_failed() {
    let bench = Bench::new(2);
    let mut handoff = bench
        .handoff(0, Exclusion::Turn)
        .script([got(), fails(Errno::EIO)]);
    let err = bench
        .turns(&plan(0, 2, 5), &mut handoff, &mut FakeTurn::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Sys {
                what: "acquire",
                errno: Errno::EIO
            }
        ),
        "{err:?}"
    );
    assert_eq!(bench.header().stopped(), Some(StopReason::Aborted));

    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Turn);
    let mut turn = FakeTurn::default().reads([Ok(true), Err(Errno::EBADF)]);
    let err = bench
        .turns(&plan(0, 2, 5), &mut handoff, &mut turn)
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Sys {
                what: "take the turn",
                errno: Errno::EBADF
            }
        ),
        "{err:?}"
    );
    assert_eq!(bench.header().stopped(), Some(StopReason::Aborted));
    assert_eq!(handoff.did.last(), Some(&Did::WakeEveryone));
}

#[test]
fn the_hold_is_busy_work_inside_each_turn_and_the_think_follows_the_pass() {
    let bench = Bench::new(2);
    let mut handoff = bench.handoff(0, Exclusion::Turn).script([
        got().after(100),
        got().after(100),
        got().after(100),
    ]);
    let mut turn = FakeTurn::mine([true, true, true]);
    let plan = Plan {
        hold_ns: 2_000,
        think_ns: 300,
        ..plan(0, 2, 3)
    };
    let stats = bench.turns(&plan, &mut handoff, &mut turn).unwrap();
    assert_eq!((stats.rounds, stats.held_ns), (3, 6_000));
    assert_eq!(stats.wall_ns, 3 * (100 + 2_000 + 300));
    assert_eq!(turn.passed, [1, 1, 1]);
}
