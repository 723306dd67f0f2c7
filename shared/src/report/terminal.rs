//! What the terminal shows: a run as one row per contender with its fairness figures, a
//! comparison as the main table, the contenders table and the cells that did not run.

use super::{baseline, summary};
use crate::measure::{ContenderStats, ContenderStatsJson, Summary, end_name};
use crate::order::OrderStats;
use crate::outcome::{CompareReport, Contender, RunReport};
use crate::text::{Table, fmt_ns};
use crate::variant::Mode;

/// `run`'s output: one row per contender, then the fairness figures.
pub fn run_text(r: &RunReport) -> String {
    let mut t = match r.mode {
        Mode::Turns => turns_table(),
        Mode::Free => free_table(),
    };
    for s in r.contenders() {
        let name = Contender(s.contender as usize).name();
        t.push(match r.mode {
            Mode::Turns => turns_row(&name, s),
            Mode::Free => free_row(&name, s),
        });
    }
    format!(
        "variant {}, mode {}, placement {}, {} contenders, {} rounds asked\n\n{}\n\
         Jain's fairness index {}, barging rate {:.3}, longest wait {}\n",
        r.variant,
        r.mode,
        r.placement,
        r.contender_count(),
        r.rounds,
        t.to_text(),
        r.jain_index().map_or_else(
            || "n/a (the contenders never raced: raise --rounds)".to_string(),
            |j| format!("{j:.3}")
        ),
        r.barging_rate(),
        fmt_ns(r.max_wait_ns() as f64),
    ) + &r.order.as_ref().map_or(String::new(), |o| order_text(r, o))
}

/// The order measures of a `free` run, split by what they are about: the lock alone, or the lock
/// and the scheduler together (with how many contenders were in the race at all).
pub fn order_text(r: &RunReport, o: &OrderStats) -> String {
    let n = r.contender_count();
    let logged = if o.truncated {
        format!("first {} acquisitions logged", o.logged)
    } else {
        format!("{} acquisitions logged", o.logged)
    };
    let or_na = |x: Option<f64>, digits: usize| x.map_or("n/a".into(), |x| format!("{x:.digits$}"));
    format!(
        "About the lock: bypass p50 {}, p99 {}, max {} (over the {} waits during which another \
         contender got the lock; {logged}), barging rate {:.3}\n\
         Also the scheduler: Jain {} with {:.2} of {n} contenders waiting at a grant on average, \
         LWSS {} (ideal {n}), MTTR {} (ideal {}), over the {} acquisitions before the first \
         contender finished\n",
        o.bypass_p50,
        o.bypass_p99,
        o.bypass_max,
        o.waited,
        r.barging_rate(),
        r.jain_index().map_or("n/a".into(), |j| format!("{j:.3}")),
        o.contending_mean,
        or_na(o.lwss, 2),
        or_na(o.mttr, 1),
        n.saturating_sub(1),
        o.window,
    )
}

/// `compare`'s output: the main table, the contenders table, the cells that did not run, and
/// the comparison with `--baseline`.
pub fn compare_text(report: &CompareReport) -> String {
    let rows = report.summary();
    let mut out = summary::summary_table(&rows, report.mode()).to_text();
    if !rows.is_empty() {
        out.push_str(&format!("{}\n", summary::interval_note(&rows)));
    }
    out.push_str("\nContenders: fairness of the handoff\n");
    out.push_str(&summary::contenders_table(&rows).to_text());
    if rows.iter().any(|r| r.order_repeats > 0) {
        out.push_str(&format!("{}\n", summary::LOCK_OR_SCHEDULER));
    }
    out.push_str(&notes(report));
    if let Some(cmp) = report.against_baseline() {
        out.push_str("\nAgainst the baseline\n");
        for line in baseline::baseline_notes(&cmp) {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str(&baseline::baseline_table(&cmp).to_text());
    }
    out
}

/// Skipped and failed cells, one line each.
pub fn notes(report: &CompareReport) -> String {
    let mut out = String::new();
    for s in &report.skipped {
        out.push_str(&format!(
            "\nskipped {} {}: {}",
            s.variant, s.placement, s.reason
        ));
    }
    for f in &report.failures {
        out.push_str(&format!(
            "\nfailed {} {} (repeat {}): {}",
            f.variant, f.placement, f.repeat, f.error
        ));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The per-contender table's header (`turns` mode).
pub fn turns_table() -> Table {
    Table::new(
        &[
            "contender",
            "role",
            "cpu",
            "rounds",
            "whoops",
            "whoops/turn",
            "overlaps",
            "wrong reads",
            "handoff p50",
            "handoff p99",
            "handoff max",
            "round trip p50",
            "cpu/turn",
            "end",
        ],
        2,
    )
}

/// One contender as a row of [`turns_table`].
pub fn turns_row(name: &str, s: &ContenderStats) -> Vec<String> {
    let j = ContenderStatsJson::from(s);
    vec![
        name.to_string(),
        format!("{:?}", s.role).to_lowercase(),
        s.cpu.map_or("-".into(), |c| c.to_string()),
        s.rounds.to_string(),
        s.whoops.to_string(),
        format!("{:.2}", s.whoops_per_turn()),
        s.overlaps.to_string(),
        s.wrong_reads.to_string(),
        fmt_ns(j.handoff_ns.p50 as f64),
        fmt_ns(j.handoff_ns.p99 as f64),
        fmt_ns(j.handoff_ns.max as f64),
        fmt_ns(j.round_trip_ns.p50 as f64),
        fmt_ns(j.cpu_ns_per_round),
        end_name(s.end).to_string(),
    ]
}

/// The per-contender table's header (`free` mode).
pub fn free_table() -> Table {
    Table::new(
        &[
            "contender",
            "cpu",
            "acquisitions",
            "in window",
            "barging",
            "overlaps",
            "wait p50",
            "wait p99",
            "wait max",
            "longest run",
            "cpu/acq",
            "end",
        ],
        1,
    )
}

/// One contender as a row of [`free_table`].
pub fn free_row(name: &str, s: &ContenderStats) -> Vec<String> {
    let j = ContenderStatsJson::from(s);
    let wait = Summary::of(s.wait());
    let (window, barging, longest) = s.free.as_ref().map_or((0, 0, 0), |f| {
        (f.acquisitions_in_window, f.barging, f.runs.max())
    });
    vec![
        name.to_string(),
        s.cpu.map_or("-".into(), |c| c.to_string()),
        s.rounds.to_string(),
        window.to_string(),
        barging.to_string(),
        s.overlaps.to_string(),
        fmt_ns(wait.p50 as f64),
        fmt_ns(wait.p99 as f64),
        fmt_ns(wait.max as f64),
        longest.to_string(),
        fmt_ns(j.cpu_ns_per_round),
        end_name(s.end).to_string(),
    ]
}
