//! Per-thread resource usage. Sessions run on their own threads, so `RUSAGE_THREAD` charges each
//! session only its own CPU time and context switches, even in a server running many at once.
//!
//! `getrusage`'s user and system times are sampled at the scheduler tick on many kernels (4 ms
//! here), far too coarse for a run that lasts a few milliseconds; the total CPU time therefore
//! comes from `CLOCK_THREAD_CPUTIME_ID`, which the scheduler keeps in nanoseconds.

use nix::errno::Errno;
use nix::sys::resource::{UsageWho, getrusage};

/// A snapshot of the calling thread's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadUsage {
    /// Total CPU time (CLOCK_THREAD_CPUTIME_ID): exact.
    pub cpu_ns: u64,
    /// User and system time as `getrusage` splits them: tick-sampled.
    pub user_ns: u64,
    pub sys_ns: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

impl ThreadUsage {
    /// Reads the calling thread's usage now.
    pub fn now() -> Result<Self, Errno> {
        let u = getrusage(UsageWho::RUSAGE_THREAD)?;
        let ns = |tv: nix::sys::time::TimeVal| {
            (tv.tv_sec() as u64) * 1_000_000_000 + (tv.tv_usec() as u64) * 1_000
        };
        let cpu = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)?;
        Ok(Self {
            cpu_ns: cpu.tv_sec() as u64 * 1_000_000_000 + cpu.tv_nsec() as u64,
            user_ns: ns(u.user_time()),
            sys_ns: ns(u.system_time()),
            voluntary_switches: u.voluntary_context_switches() as u64,
            involuntary_switches: u.involuntary_context_switches() as u64,
        })
    }

    /// What was spent between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            user_ns: self.user_ns.saturating_sub(earlier.user_ns),
            sys_ns: self.sys_ns.saturating_sub(earlier.sys_ns),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }
}
