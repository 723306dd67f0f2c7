//! CLOCK_MONOTONIC in nanoseconds: one clock shared by every process on the machine, so a
//! timestamp written into the arena by one side can be subtracted by the other.
//!
//! Read through libc's vDSO `clock_gettime` (rustix's own vDSO parser does not run under
//! valgrind, which has no vDSO to offer).

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds since boot (CLOCK_MONOTONIC).
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; 0 would only make one latency sample large.
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |ts| {
        ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
    })
}

/// `ns` nanoseconds as a timespec, for timeouts.
pub fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}
