//! The `kernel` object of `run --json` from the rebuilt handoffs: the kernel's counts for the
//! whole run, beside lockfair's own.

use super::handoff::Handoffs;
use crate::measure::Summary;
use crate::outcome::kernel::KernelFigures;

/// Sums the rebuilt handoffs into the run's figures.
pub fn kernel_figures(h: &Handoffs, lost_events: u64) -> KernelFigures {
    let counts = h.totals();
    KernelFigures {
        counts,
        regrant_rate: if counts.grants == 0 {
            0.0
        } else {
            counts.regrants_over_waiter as f64 / counts.grants as f64
        },
        wake_to_run_ns: Summary::of(&h.wake_to_run),
        lost_events,
        contenders: h.contenders.clone(),
    }
}
