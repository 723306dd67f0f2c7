//! What the terminal shows: a run as one row per contender with its fairness figures, a
//! comparison as the main table, the contenders table and the cells that did not run.

use super::{baseline, opportunity, stops, summary};
use crate::measure::{ContenderStats, ContenderStatsJson, Summary, end_name};
use crate::order::OrderStats;
use crate::outcome::{CompareReport, Contender, RunReport, SummaryRow};
use crate::text::{Table, fmt_ns, wrap};
use crate::variant::Mode;

/// The columns of `run`'s `turns` table a terminal shows without `--wide`: the counts that say
/// whether the handoff worked (whoops, overlaps, wrong reads), the median handoff and round trip,
/// the CPU they cost, and how each side ended. `--wide` adds the role and the handoff's tail
/// (p99, max), which the fairness line's longest wait sums up.
const RUN_TURNS: &[&str] = &[
    "contender",
    "cpu",
    "rounds",
    "whoops",
    "whoops/turn",
    "overlaps",
    "wrong reads",
    "handoff p50",
    "round trip p50",
    "cpu/turn",
    "end",
];

/// The main table's columns a terminal shows without `--wide`, by mode: what was compared, the
/// throughput, whether the handoff worked (whoops) and exclusion held (overlaps), the median
/// round trip (or wait), the CPU it cost, and (`turns`) the round trip against the pipe's.
/// Every cell keeps its spread over repeats. Left to `--wide`, `summary.md` and `report.html`:
/// the handoff p50 (half the round trip with two contenders) and the tails, p99 and max, which
/// the contenders table shows as wait p99 and max wait.
const MAIN_TURNS: &[&str] = &[
    "variant",
    "placement",
    "rounds/s",
    "whoops/round",
    "overlaps",
    "round trip p50",
    "CPU/round",
    "× pipe",
];
const MAIN_FREE: &[&str] = &[
    "variant",
    "placement",
    "rounds/s",
    "overlaps",
    "wait p50",
    "CPU/round",
];

/// The `free` contenders table's columns a terminal shows without `--wide`: Jain's index beside
/// how many were waiting (the scheduler's part), the barging rate and bypass p99 and max (the
/// lock's), the wait p99. Left to `--wide`: max wait, bypass p50, LWSS and MTTR. (The `turns`
/// table is narrow: every column.)
const CONTENDERS_FREE: &[&str] = &[
    "variant",
    "placement",
    "Jain index",
    "waiting",
    "barging rate",
    "wait p99",
    "bypass p99",
    "bypass max",
];

/// Prose under a table is wrapped at this width.
const PROSE: usize = 100;

/// `table` as a terminal shows it: every column with `wide`, else only those in `keep`.
fn fit(table: Table, keep: Option<&[&str]>, wide: bool) -> Table {
    match keep {
        Some(keep) if !wide => table.only(keep),
        _ => table,
    }
}

/// The line under a narrowed table naming the columns it left out, or nothing.
fn more_columns(full: &Table, shown: &Table) -> String {
    let left_out: Vec<&str> = full
        .headers
        .iter()
        .filter(|h| !shown.headers.contains(h))
        .map(String::as_str)
        .collect();
    if left_out.is_empty() {
        return String::new();
    }
    format!(
        "{}\n",
        wrap(&format!("(with --wide: {}.)", left_out.join(", ")), PROSE)
    )
}

/// `run`'s output: one row per contender, then the fairness figures. Without `wide`, the
/// `turns` table shows [`RUN_TURNS`].
pub fn run_text(r: &RunReport, wide: bool) -> String {
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
    let shown = fit(
        t.clone(),
        (r.mode == Mode::Turns).then_some(RUN_TURNS),
        wide,
    );
    let stopped = r.early_end().map_or(String::new(), |e| {
        format!("{}\n", wrap(&stops::run_line(&e), PROSE))
    });
    format!(
        "variant {}, mode {}, placement {}, {} contenders, {} rounds asked\n\n{}{}{stopped}\n{}",
        r.variant,
        r.mode,
        r.placement,
        r.contender_count(),
        r.rounds,
        shown.to_text(),
        more_columns(&t, &shown),
        fairness_line(r),
    ) + &r.order.as_ref().map_or(String::new(), |o| order_text(r, o))
        + &opportunity::run_text(r)
}

/// Jain's index, the barging rate and the longest wait; in `turns` mode the first two are "–",
/// with the reason ([`summary::NOT_IN_TURNS`]).
fn fairness_line(r: &RunReport) -> String {
    let longest = fmt_ns(r.max_wait_ns() as f64);
    if r.mode == Mode::Turns {
        return format!(
            "Jain's fairness index –, barging rate –, longest wait {longest}\n{}\n",
            wrap(summary::NOT_IN_TURNS, PROSE)
        );
    }
    format!(
        "Jain's fairness index {}, barging rate {:.3}, longest wait {longest}\n",
        r.jain_index().map_or_else(
            || "n/a (the contenders never raced: raise --rounds)".to_string(),
            |j| format!("{j:.3}")
        ),
        r.barging_rate(),
    )
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
/// the comparison with `--baseline`. Without `wide`, the tables show the columns that tell the
/// story ([`MAIN_TURNS`], [`MAIN_FREE`], [`CONTENDERS_FREE`]); `summary.md`, `summary.json`
/// and `report.html` always have every column.
pub fn compare_text(report: &CompareReport, wide: bool) -> String {
    let rows = report.summary();
    let mode = report.mode();
    let (main, contenders) = story_tables(&rows, mode, wide);
    let full = summary::summary_table(&rows, mode);
    let mut out = super::sweep::to_text(report, PROSE).unwrap_or_default();
    out.push_str(&main.to_text());
    out.push_str(&more_columns(&full, &main));
    if !rows.is_empty() {
        out.push_str(&format!(
            "{}\n",
            wrap(&summary::interval_note(&rows), PROSE)
        ));
    }
    if let Some(note) = stops::compare_note(report) {
        out.push_str(&format!("{}\n", wrap(&note, PROSE)));
    }
    out.push_str("\nContenders: fairness of the handoff\n");
    out.push_str(&contenders.to_text());
    out.push_str(&more_columns(
        &summary::contenders_table(&rows, mode),
        &contenders,
    ));
    if rows.iter().any(|r| r.order_repeats > 0) {
        out.push_str(&format!("{}\n", wrap(summary::LOCK_OR_SCHEDULER, PROSE)));
    }
    if mode == Mode::Turns && !rows.is_empty() {
        out.push_str(&format!("{}\n", wrap(summary::NOT_IN_TURNS, PROSE)));
    }
    let cells = crate::outcome::cell_opportunity::by_cell(report);
    if opportunity::unequal(&cells) {
        out.push_str("\nLock opportunity: who was offered the lock's time\n");
        out.push_str(&opportunity::cells_table(&cells).to_text());
        out.push_str(&format!("{}\n", wrap(opportunity::ABOUT, PROSE)));
    }
    out.push_str(&notes(report));
    if let Some(cmp) = report.against_baseline() {
        out.push_str("\nAgainst the baseline\n");
        for line in baseline::baseline_notes(&cmp) {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str(&baseline::baseline_table(&cmp).to_text());
    }
    // It ends with the answer.
    if let Some(w) = crate::outcome::what_to_use(report) {
        out.push_str(&super::what_to_use::to_text(&w, wide));
    }
    out
}

/// The main table and the contenders table as the terminal shows them.
pub fn story_tables(rows: &[SummaryRow], mode: Mode, wide: bool) -> (Table, Table) {
    let main = match mode {
        Mode::Turns => MAIN_TURNS,
        Mode::Free => MAIN_FREE,
    };
    let contenders = (mode == Mode::Free).then_some(CONTENDERS_FREE);
    (
        fit(summary::summary_table(rows, mode), Some(main), wide),
        fit(summary::contenders_table(rows, mode), contenders, wide),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RunRecord;
    use crate::placement::Placement;
    use crate::variant::Variant;

    /// The widest a default table may be: the 160-column terminal of the issue. Every cell keeps
    /// its spread over repeats ("median (min–max)", up to 22 characters), so the eight columns
    /// that tell the story need about 150.
    const TERMINAL: usize = 160;

    /// A committed report folder's runs, as a comparison of every variant and placement.
    fn committed(folder: &str) -> CompareReport {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../results")
            .join(folder)
            .join("summary.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut report = CompareReport::new(
            "test".into(),
            Variant::ALL.to_vec(),
            Placement::ALL.to_vec(),
        );
        report.runs = serde_json::from_value::<Vec<RunRecord>>(json["runs"].clone()).unwrap();
        report
    }

    #[test]
    fn the_default_tables_fit_the_terminal_for_every_default_variant() {
        for folder in ["reference", "reference-free-4", "herd-4"] {
            let report = committed(folder);
            let rows = report.summary();
            let mode = report.mode();
            let (main, contenders) = story_tables(&rows, mode, false);
            for (what, t) in [("main", &main), ("contenders", &contenders)] {
                assert!(
                    t.text_width() <= TERMINAL,
                    "{folder} {what}: {} columns\n{}",
                    t.text_width(),
                    t.to_text()
                );
            }
            for line in compare_text(&report, false).lines() {
                assert!(line.chars().count() <= TERMINAL, "{folder}: {line}");
            }
            // --wide has every column, as summary.md does.
            let (wide, _) = story_tables(&rows, mode, true);
            assert_eq!(wide, summary::summary_table(&rows, mode));
        }
        // The reference is the full default list as it was recorded: every variant of that day
        // (a prefix of today's list, since new variants are appended), every placement.
        let reference = committed("reference");
        let ran: Vec<Variant> = Variant::ALL
            .into_iter()
            .filter(|&v| reference.runs.iter().any(|r| r.run.variant == v))
            .collect();
        let recorded = ran.len();
        assert_eq!(ran, Variant::ALL[..recorded]);
        assert!(recorded >= 17, "the reference ran only {recorded} variants");
        let rows = reference.summary();
        assert_eq!(rows.len(), recorded * Placement::ALL.len());
        let (wide, _) = story_tables(&rows, Mode::Turns, true);
        assert!(
            wide.text_width() > TERMINAL,
            "the full table is the wide one"
        );
    }

    #[test]
    fn a_narrowed_table_names_what_it_left_out() {
        let report = committed("reference");
        let text = compare_text(&report, false);
        assert!(
            text.contains("(with --wide: handoff p50, handoff p99, handoff max.)"),
            "{text}"
        );
        let wide = compare_text(&report, true);
        assert!(!wide.contains("with --wide"), "{wide}");
        assert!(wide.contains("handoff p99"));
    }
}
