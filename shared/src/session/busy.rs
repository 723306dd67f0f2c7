//! The contenders' busy work: `--hold` inside the critical section, `--think` between two. Work,
//! not a sleep: a sleeping holder gives its CPU away, and scheduler subversion (a long holder
//! taking the CPU along with the lock) only shows when the holder computes. The loop is
//! calibrated by the clock itself: it spins, reading CLOCK_MONOTONIC (the vDSO, ~20 ns a read),
//! until the deadline, so a hold lasts what was asked whatever the CPU's speed. A holder
//! preempted meanwhile holds the lock longer, as a real one would.

#[cfg(not(test))]
use crate::sys::clock::monotonic_ns;

/// Spins until CLOCK_MONOTONIC reaches `deadline_ns`; returns the time it stopped.
#[cfg(not(test))]
pub(super) fn busy_until(deadline_ns: u64) -> u64 {
    loop {
        let now = monotonic_ns();
        if now >= deadline_ns {
            return now;
        }
        std::hint::spin_loop();
    }
}

/// The unit tests' busy work: the stopped test clock jumps to the deadline.
#[cfg(test)]
pub(super) use super::tests::clock::busy_until;
