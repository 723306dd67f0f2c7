//! What the terminal shows of `--kernel-trace`: the kernel's counts beside lockfair's own, and
//! how far lockfair's waiting-bit proxy is from the kernel's figure.
//!
//! The proxy is `barging_rate`: whoops per grant (`turns`), or acquisitions right after one's
//! own release while another contender's waiting bit was up, per acquisition (`free`). The
//! kernel's figure for the same question is `regrant_rate`: grants that went to the contender
//! that released last while another contender was queued in the kernel. The kernel also
//! confirms barges one by one: a queued waiter released, beaten to the lock, queued again.

use std::fmt::Write;

use crate::measure::ContenderStats;
use crate::outcome::kernel::{KernelFigures, KernelTrace};
use crate::outcome::{CompareReport, Contender, RunJson, RunReport};
use crate::text::{Table, fmt_ns};

/// `run --kernel-trace`'s lines under the run's table (empty without the flag).
pub fn run_kernel_text(r: &RunReport) -> String {
    let k = match &r.kernel {
        None => return String::new(),
        Some(KernelTrace::Unavailable(why)) => return format!("\n{why}\n"),
        Some(KernelTrace::Recorded(k)) => &k.figures,
    };
    let mut t = Table::new(
        &[
            "kernel",
            "requests",
            "grants",
            "blocks",
            "refused",
            "unlocks",
            "wakeups",
            "of queued",
            "barges",
            "regrants",
            "lockfair whoops",
            "lockfair turns+whoops",
        ],
        1,
    );
    let sides: Vec<&ContenderStats> = r.contenders().collect();
    for c in &k.contenders {
        let (whoops, own) = sides
            .get(c.contender as usize)
            .map_or((0, 0), |s| (s.whoops, s.rounds.saturating_add(s.whoops)));
        t.push(vec![
            Contender(c.contender as usize).name(),
            c.counts.lock_requests.to_string(),
            c.counts.grants.to_string(),
            c.counts.blocks.to_string(),
            c.counts.refused.to_string(),
            c.counts.unlocks.to_string(),
            c.counts.wakeups.to_string(),
            c.counts.wakeups_of_queued.to_string(),
            c.counts.barges.to_string(),
            c.counts.regrants_over_waiter.to_string(),
            whoops.to_string(),
            own.to_string(),
        ]);
    }
    let mut out = format!("\nThe kernel's account (tracefs):\n{}", t.to_text());
    out.push_str(&verdict(k, r.barging_rate()));
    out
}

/// The figures that compare: barges confirmed, proxy against kernel, wake-to-run, losses.
fn verdict(k: &KernelFigures, proxy: f64) -> String {
    let mut out = String::new();
    if k.lock_events() == 0 {
        out.push_str(
            "no file-lock events on the arena: this mechanism hands over without a file lock\n",
        );
    } else {
        let _ = writeln!(
            out,
            "kernel-confirmed barges: {} (a released waiter beaten to the lock and queued again), of {} blocks and {} wakeups of a queued waiter",
            k.counts.barges, k.counts.blocks, k.counts.wakeups_of_queued
        );
        let _ = writeln!(
            out,
            "barging rate: lockfair's proxy {proxy:.3}, the kernel's {:.3} (grants to the last releaser while another contender was queued); proxy - kernel = {:+.3}",
            k.regrant_rate,
            proxy - k.regrant_rate
        );
    }
    let w = &k.wake_to_run_ns;
    let _ = writeln!(
        out,
        "wake-to-run (sched_waking to sched_switch in, microsecond resolution): p50 {}, p99 {}, max {} over {} wakeups",
        fmt_ns(w.p50 as f64),
        fmt_ns(w.p99 as f64),
        fmt_ns(w.max as f64),
        w.count
    );
    if k.lost_events > 0 {
        let _ = writeln!(
            out,
            "warning: the trace buffer overflowed and lost {} events: the counts cover the start of the run only; use fewer --rounds",
            k.lost_events
        );
    }
    out
}

/// `compare --kernel-trace`'s table: one row per cell and repeat that has the kernel's figures.
pub fn compare_kernel_text(report: &CompareReport) -> String {
    match compare_kernel_table(report) {
        Some(t) => format!(
            "\nThe kernel's account (tracefs): proxy rate is lockfair's barging rate, kernel rate the grants to the last releaser while another contender was queued\n{}",
            t.to_text()
        ),
        None => kernel_notes(report)
            .first()
            .map_or(String::new(), |n| format!("\n{n}\n")),
    }
}

/// Why cells have no kernel figures (`kernel_note`), one line per cell and repeat.
pub fn kernel_notes(report: &CompareReport) -> Vec<&str> {
    report
        .runs
        .iter()
        .filter_map(|r| r.run.kernel_note.as_deref())
        .collect()
}

/// One row per cell and repeat the kernel traced, lockfair's barging rate (the proxy) beside
/// the kernel's regrant rate; `None` if no cell was traced.
pub fn compare_kernel_table(report: &CompareReport) -> Option<Table> {
    let traced: Vec<(&RunJson, &KernelFigures, usize)> = report
        .runs
        .iter()
        .filter_map(|r| r.run.kernel.as_ref().map(|k| (&r.run, k, r.repeat)))
        .collect();
    if traced.is_empty() {
        return None;
    }
    let mut t = Table::new(
        &[
            "variant",
            "placement",
            "repeat",
            "grants",
            "blocks",
            "barges",
            "wakeups",
            "wake-to-run p50",
            "proxy rate",
            "kernel rate",
            "lost",
        ],
        2,
    );
    for (run, k, repeat) in traced {
        t.push(vec![
            run.variant.to_string(),
            run.placement.to_string(),
            (repeat + 1).to_string(),
            k.counts.grants.to_string(),
            k.counts.blocks.to_string(),
            k.counts.barges.to_string(),
            k.counts.wakeups.to_string(),
            fmt_ns(k.wake_to_run_ns.p50 as f64),
            format!("{:.3}", run.barging_rate),
            format!("{:.3}", k.regrant_rate),
            k.lost_events.to_string(),
        ]);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Summary;
    use crate::outcome::kernel::LockCounts;

    #[test]
    fn says_when_there_is_no_file_lock_and_when_events_were_lost() {
        let mut k = KernelFigures {
            counts: LockCounts {
                wakeups: 4,
                ..LockCounts::default()
            },
            wake_to_run_ns: Summary {
                count: 4,
                p50: 3_000,
                ..Summary::default()
            },
            ..KernelFigures::default()
        };
        let text = verdict(&k, 0.0);
        assert!(text.contains("no file-lock events"), "{text}");
        assert!(!text.contains("warning"));
        k.counts.grants = 10;
        k.counts.lock_requests = 12;
        k.counts.blocks = 2;
        k.counts.barges = 1;
        k.counts.regrants_over_waiter = 5;
        k.regrant_rate = 0.5;
        k.lost_events = 7;
        let text = verdict(&k, 0.9);
        assert!(text.contains("kernel-confirmed barges: 1"), "{text}");
        assert!(text.contains("proxy - kernel = +0.400"), "{text}");
        assert!(text.contains("lost 7 events"), "{text}");
    }
}
