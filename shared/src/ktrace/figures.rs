//! The `kernel` object of `run --json`: the kernel's counts for the whole run, beside
//! lockfair's own. Field names are an interface: keep them.

use serde::{Deserialize, Serialize};

use super::handoff::{ContenderCounts, Handoffs};
use crate::measure::Summary;

/// The kernel's account of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelFigures {
    /// Lock requests and retries on the arena (unlocks excluded), all contenders.
    pub lock_requests: u64,
    /// Requests granted (`ret=0`).
    pub grants: u64,
    /// Requests queued behind a conflicting lock (`ret=1`, `FILE_LOCK_DEFERRED`).
    pub blocks: u64,
    /// Requests refused without waiting.
    pub refused: u64,
    pub unlocks: u64,
    /// Wakeups of a contender by another contender.
    pub wakeups: u64,
    /// Kernel-confirmed barges: a queued waiter released by an unlock, beaten by another
    /// contender's grant before its retry, and queued again.
    pub barges: u64,
    /// Grants to the contender that released last while another one was queued in the kernel.
    pub regrants_over_waiter: u64,
    /// `regrants_over_waiter` per grant: the kernel's figure for lockfair's waiting-bit proxy.
    pub regrant_rate: f64,
    /// From `sched_waking` to `sched_switch` in (microsecond resolution: the trace prints µs).
    pub wake_to_run_ns: Summary,
    /// Events the ring buffer lost; when not 0 the counts cover only the start of the run.
    pub lost_events: u64,
    /// Per contender, in contender order.
    pub contenders: Vec<ContenderCounts>,
}

impl KernelFigures {
    /// Sums the rebuilt handoffs into the run's figures.
    pub fn of(h: &Handoffs, lost_events: u64) -> KernelFigures {
        let grants = h.total(|c| c.grants);
        let regrants = h.total(|c| c.regrants_over_waiter);
        KernelFigures {
            lock_requests: h.total(|c| c.lock_requests),
            grants,
            blocks: h.total(|c| c.blocks),
            refused: h.total(|c| c.refused),
            unlocks: h.total(|c| c.unlocks),
            wakeups: h.total(|c| c.wakeups),
            barges: h.total(|c| c.barges),
            regrants_over_waiter: regrants,
            regrant_rate: if grants == 0 {
                0.0
            } else {
                regrants as f64 / grants as f64
            },
            wake_to_run_ns: Summary::of(&h.wake_to_run),
            lost_events,
            contenders: h.contenders.clone(),
        }
    }

    /// Lock events seen at all: 0 for a mechanism that takes no file lock.
    pub fn lock_events(&self) -> u64 {
        self.lock_requests.saturating_add(self.unlocks)
    }
}
