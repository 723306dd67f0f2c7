//! CLOCK_MONOTONIC in nanoseconds: one clock shared by every process on the machine, so a
//! timestamp written into the arena by one side can be subtracted by the other.
//!
//! Read through libc's vDSO `clock_gettime` directly (rustix's own vDSO parser does not run under
//! valgrind, which has no vDSO to offer; nix's wrapper cost 38 instructions a call on top).

use nix::libc;

/// Nanoseconds since boot (CLOCK_MONOTONIC).
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // CLOCK_MONOTONIC cannot fail on Linux; 0 would only make one latency sample large.
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `ns` nanoseconds as a timespec, for timeouts.
pub fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}
