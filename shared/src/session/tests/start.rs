//! The start line both loops leave from.

use std::sync::atomic::Ordering;

use super::fake::{Did, FakeTurn};
use super::{Bench, START_NS, plan};
use crate::arena::StopReason;
use crate::session::{Plan, SessionError};
use crate::variant::Exclusion;

#[test]
fn the_last_to_arrive_starts_everyone_and_stamps_the_first_release() {
    let bench = Bench::new(3);
    let mut handoff = bench.handoff(1, Exclusion::Turn);
    let stats = bench
        .turns(&plan(1, 3, 1), &mut handoff, &mut FakeTurn::default())
        .unwrap();
    let h = bench.header();
    assert_eq!(h.arrived.load(Ordering::Relaxed), 3);
    assert_eq!(h.started.load(Ordering::Relaxed), 1);
    // The first turn's handoff runs from the start line.
    assert_eq!(stats.handoff.max(), super::fake::WAIT_NS);
    assert!(h.release_ns.load(Ordering::Relaxed) > START_NS);
}

#[test]
fn a_stop_before_the_start_is_an_error() {
    let bench = Bench::new(2);
    let h = bench.header();
    h.arrived.store(0, Ordering::Relaxed);
    h.request_stop(StopReason::Aborted);
    let mut handoff = bench.handoff(0, Exclusion::Lock);
    let err = bench.free(&plan(0, 2, 5), &mut handoff).unwrap_err();
    assert!(matches!(err, SessionError::StoppedBeforeStart), "{err:?}");
    // Nothing was acquired; the others are told (again) and woken.
    assert_eq!(handoff.did, [Did::WakeEveryone]);
    assert_eq!(h.stopped(), Some(StopReason::Aborted));
}

#[test]
fn nobody_else_arriving_is_a_timeout() {
    let bench = Bench::new(2);
    bench.header().arrived.store(0, Ordering::Relaxed);
    let mut handoff = bench.handoff(0, Exclusion::Lock);
    let plan = Plan {
        start_timeout_ns: 0,
        ..plan(0, 2, 5)
    };
    let err = bench
        .turns(&plan, &mut handoff, &mut FakeTurn::default())
        .unwrap_err();
    assert!(matches!(err, SessionError::StartTimeout(0)), "{err:?}");
    assert_eq!(bench.header().stopped(), Some(StopReason::Aborted));
    assert_eq!(handoff.count(Did::Acquire), 0);
}
