//! CLOCK_MONOTONIC in nanoseconds: one clock shared by every process on the machine, so a
//! timestamp written into the arena by one side can be subtracted by the other.

use rustix::time::{ClockId, clock_gettime};

/// Nanoseconds since boot (CLOCK_MONOTONIC, read through the vDSO).
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    // CLOCK_MONOTONIC is never negative.
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
