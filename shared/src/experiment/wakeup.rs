//! The machine's cross-CPU wakeup, measured the way the two-CPU cells pay it: a futex wake to a
//! waiter asleep on another CPU, that CPU left alone long enough to idle first. On this
//! project's VMs it is most of a two-CPU round trip, and it moves with the idle setup.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::placement::{allowed_cpus, pin_current_thread};
use crate::sys::clock::monotonic_ns;
use crate::sys::futex;

/// Wakeups timed; the median is kept.
const SAMPLES: u32 = 101;
/// Between two wakeups: longer than haltpoll's largest poll window (200 µs by default), so the
/// waiter's CPU really halts.
const GAP: Duration = Duration::from_millis(2);
/// A wakeup that takes longer than this means the waiter is not running at all: give up.
const WAIT_LIMIT_NS: u64 = 1_000_000_000;

/// The median cross-CPU wakeup in ns, or `None` with fewer than two CPUs (or when a thread
/// cannot be pinned, or the waiter never wakes).
pub fn cross_cpu_wakeup_ns() -> Option<u64> {
    let (waker_cpu, waiter_cpu) = match allowed_cpus() {
        [a, b, ..] => (*a, *b),
        _ => return None,
    };
    let generation = AtomicU32::new(0);
    let sent_ns = AtomicU64::new(0);
    let mut samples = std::thread::scope(|s| {
        let waiter = s.spawn(|| wait_each(waiter_cpu, &generation, &sent_ns));
        let woke = wake_each(waker_cpu, &generation, &sent_ns);
        let samples = waiter.join().ok().flatten();
        woke.and(samples)
    })?;
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied()
}

/// The waker: after each gap, stamps the time, bumps the generation and wakes the waiter.
fn wake_each(cpu: usize, generation: &AtomicU32, sent_ns: &AtomicU64) -> Option<()> {
    let pinned = pin_current_thread(Some(cpu)).ok();
    for g in 1..=SAMPLES {
        std::thread::sleep(GAP);
        sent_ns.store(monotonic_ns(), Ordering::Release);
        generation.store(g, Ordering::Release);
        let _ = futex::wake(generation, 1);
    }
    pinned
}

/// The waiter: sleeps until each generation arrives and records how long after the stamp it ran.
fn wait_each(cpu: usize, generation: &AtomicU32, sent_ns: &AtomicU64) -> Option<Vec<u64>> {
    pin_current_thread(Some(cpu)).ok()?;
    let mut samples = Vec::with_capacity(SAMPLES as usize);
    for g in 1..=SAMPLES {
        let give_up = monotonic_ns() + WAIT_LIMIT_NS;
        loop {
            let seen = generation.load(Ordering::Acquire);
            if seen >= g {
                break;
            }
            let left = give_up.checked_sub(monotonic_ns()).filter(|&l| l > 0)?;
            let _ = futex::wait_for(generation, seen, left);
        }
        let now = monotonic_ns();
        samples.push(now.saturating_sub(sent_ns.load(Ordering::Acquire)));
    }
    Some(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wakeup_is_measured_wherever_there_are_two_cpus() {
        let got = cross_cpu_wakeup_ns();
        assert_eq!(got.is_some(), allowed_cpus().len() >= 2, "{got:?}");
        // Behaviour, not speed: some time passes between the stamp and the waiter running.
        if let Some(ns) = got {
            assert!(ns > 0 && ns < WAIT_LIMIT_NS, "{ns}");
        }
    }
}
