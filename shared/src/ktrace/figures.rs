//! The `kernel` object of `run --json` from the rebuilt handoffs: the kernel's counts for the
//! whole run, beside lockfair's own.

use super::handoff::Handoffs;
use crate::measure::Summary;
use crate::outcome::kernel::KernelFigures;

/// Sums the rebuilt handoffs into the run's figures.
pub fn kernel_figures(h: &Handoffs, lost_events: u64) -> KernelFigures {
    let grants = h.total(|c| c.grants);
    let regrants = h.total(|c| c.regrants_over_waiter);
    KernelFigures {
        lock_requests: h.total(|c| c.lock_requests),
        grants,
        blocks: h.total(|c| c.blocks),
        refused: h.total(|c| c.refused),
        unlocks: h.total(|c| c.unlocks),
        wakeups: h.total(|c| c.wakeups),
        wakeups_of_queued: h.total(|c| c.wakeups_of_queued),
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
