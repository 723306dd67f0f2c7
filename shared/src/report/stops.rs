//! A run or a cell that stopped before its rounds, said in words rather than left to an `end`
//! column: `run` prints a line under its table, `compare` a footnote under its main table (in
//! the terminal, `summary.md` and `report.html`). Only what the run knows: why it stopped, how
//! far it got, and what its own pace says the rounds would need.

use crate::outcome::{CompareReport, Cut, EarlyEnd};
use crate::placement::Placement;
use crate::text::{fmt_seconds, fmt_thousands};
use crate::variant::Variant;

/// `run`'s line under its table for a run that stopped early.
pub fn run_line(e: &EarlyEnd) -> String {
    let (done, asked) = (fmt_thousands(e.done), fmt_thousands(e.asked));
    match e.cut {
        Cut::Deadline => format!(
            "Stopped at the --max-seconds limit{} after {done} of {asked} rounds; the figures \
             above are over those {done}. {}",
            limit(e.max_seconds),
            hint(e.asked, e.seconds_needed(), "")
        ),
        Cut::Aborted => format!(
            "Stopped after {done} of {asked} rounds: a contender gave up (it died, was \
             interrupted or failed); the figures above are over those {done}."
        ),
    }
}

/// ` (10 s)`, or nothing for a record that does not say.
fn limit(max_seconds: Option<f64>) -> String {
    max_seconds.map_or(String::new(), |s| format!(" ({})", fmt_seconds(s)))
}

/// What to pass to finish: `asked` rounds need `needed` seconds at the pace seen, if any.
fn hint(asked: u64, needed: Option<f64>, per: &str) -> String {
    match needed {
        Some(needed) => format!(
            "At this pace {} rounds take about {}{per}: pass --max-seconds {} (or fewer --rounds) \
             to finish.",
            fmt_thousands(asked),
            about(needed),
            flag_value(nice_ceiling(needed * 1.2).min(86_400.0))
        ),
        None => "Pass a larger --max-seconds (or fewer --rounds) to finish.".into(),
    }
}

/// Seconds to two figures or so: `80 s`, `3.2 s`, `0.41 s`.
fn about(seconds: f64) -> String {
    let digits = if seconds >= 10.0 {
        0
    } else if seconds >= 1.0 {
        1
    } else {
        2
    };
    fmt_seconds(format!("{seconds:.digits$}").parse().unwrap_or(seconds))
}

/// `100` for 100 seconds: the value as `--max-seconds` takes it.
fn flag_value(seconds: f64) -> String {
    fmt_seconds(seconds).trim_end_matches(" s").to_string()
}

/// The smallest of 1, 1.5, 2, 3, 5 times a power of ten that is at least `x`.
fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let decade = 10f64.powf(x.log10().floor());
    [1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&v| v >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * decade)
}

/// A cell that stopped early in at least one repeat: how, and the rounds its repeats did.
struct ShortCell {
    variant: Variant,
    placement: Placement,
    ends: Vec<EarlyEnd>,
}

impl ShortCell {
    /// `ofd 31` or `ofd 30–31`: the variant and the rounds its short repeats did.
    fn done(&self) -> String {
        let lo = self.ends.iter().map(|e| e.done).min().unwrap_or(0);
        let hi = self.ends.iter().map(|e| e.done).max().unwrap_or(0);
        if lo == hi {
            format!("{} {}", self.variant, fmt_thousands(lo))
        } else {
            format!(
                "{} {}–{}",
                self.variant,
                fmt_thousands(lo),
                fmt_thousands(hi)
            )
        }
    }
}

/// The cells of `report` with a repeat that stopped for `cut`, in report order.
fn short_cells(report: &CompareReport, cut: Cut) -> Vec<ShortCell> {
    let mut cells = Vec::new();
    for &placement in &report.placements {
        for &variant in &report.variants {
            let ends: Vec<EarlyEnd> = report
                .runs
                .iter()
                .filter(|r| r.run.variant == variant && r.run.placement == placement)
                .filter_map(|r| r.run.early_end())
                .filter(|e| e.cut == cut)
                .collect();
            if !ends.is_empty() {
                cells.push(ShortCell {
                    variant,
                    placement,
                    ends,
                });
            }
        }
    }
    cells
}

/// `same-cpu: seed 31, ofd 30–31; free: ofd 2,010`.
fn by_placement(cells: &[ShortCell]) -> String {
    let mut groups: Vec<(Placement, Vec<String>)> = Vec::new();
    for c in cells {
        match groups.iter_mut().find(|(p, _)| *p == c.placement) {
            Some((_, names)) => names.push(c.done()),
            None => groups.push((c.placement, vec![c.done()])),
        }
    }
    groups
        .iter()
        .map(|(p, names)| format!("{p}: {}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `compare`'s footnote under the main table: how many cells stopped before their rounds in at
/// least one repeat, which, and why; `None` when every repeat did all its rounds.
pub fn compare_note(report: &CompareReport) -> Option<String> {
    let total = report.summary().len();
    let mut out = Vec::new();
    let deadline = short_cells(report, Cut::Deadline);
    if let Some(first) = deadline.first().and_then(|c| c.ends.first()) {
        let needed = deadline
            .iter()
            .flat_map(|c| &c.ends)
            .filter_map(EarlyEnd::seconds_needed)
            .reduce(f64::max);
        out.push(format!(
            "Stopped early: {} of {total} cells reached the --max-seconds limit{} before their {} \
             rounds in at least one repeat (rounds done): {}. Their figures are over the rounds \
             done. {}",
            deadline.len(),
            first
                .max_seconds
                .map_or(String::new(), |s| format!(" ({} per cell)", fmt_seconds(s))),
            fmt_thousands(first.asked),
            by_placement(&deadline),
            hint(first.asked, needed, " in the slowest cell"),
        ));
    }
    let aborted = short_cells(report, Cut::Aborted);
    if !aborted.is_empty() {
        out.push(format!(
            "Stopped early: {} of {total} cells stopped when a contender gave up (it died, was \
             interrupted or failed) in at least one repeat (rounds done): {}.",
            aborted.len(),
            by_placement(&aborted),
        ));
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline(done: u64, asked: u64, pace: f64) -> EarlyEnd {
        EarlyEnd {
            cut: Cut::Deadline,
            done,
            asked,
            max_seconds: Some(10.0),
            pace,
        }
    }

    #[test]
    fn a_run_stopped_at_the_deadline_says_how_far_and_what_to_pass() {
        let line = run_line(&deadline(1_250, 10_000, 125.0));
        assert!(
            line.starts_with(
                "Stopped at the --max-seconds limit (10 s) after 1,250 of 10,000 rounds"
            ),
            "{line}"
        );
        assert!(
            line.contains("10,000 rounds take about 80 s: pass --max-seconds 100"),
            "{line}"
        );
    }

    #[test]
    fn a_run_with_no_round_done_gives_the_generic_hint() {
        let line = run_line(&deadline(0, 10, 0.0));
        assert!(line.contains("after 0 of 10 rounds"), "{line}");
        assert!(line.ends_with("Pass a larger --max-seconds (or fewer --rounds) to finish."));
    }

    #[test]
    fn an_aborted_run_says_a_contender_gave_up() {
        let line = run_line(&EarlyEnd {
            cut: Cut::Aborted,
            ..deadline(3, 10, 1.0)
        });
        assert!(
            line.contains("after 3 of 10 rounds: a contender gave up"),
            "{line}"
        );
        assert!(!line.contains("--max-seconds"), "{line}");
    }

    /// A two-contender `turns` run of `variant` on `placement` that did `done` of 5,000 rounds
    /// in a second, each side ending with `end`.
    fn run(variant: Variant, placement: Placement, done: u64) -> crate::outcome::RunReport {
        use crate::measure::{ContenderStats, End};
        let side = |c: usize| {
            let mut s = ContenderStats::new(c, None);
            s.rounds = done;
            s.wall_ns = 1_000_000_000;
            s.end = if done < 5_000 {
                End::Deadline
            } else {
                End::Completed
            };
            s
        };
        crate::outcome::RunReport {
            variant,
            mode: crate::variant::Mode::Turns,
            placement,
            rounds: 5_000,
            max_seconds: 0.25,
            server: side(0),
            client: side(1),
            others: Vec::new(),
            kernel: None,
            order: None,
        }
    }

    #[test]
    fn compare_counts_the_cells_that_stopped_early_and_names_them() {
        let (ofd, pipe) = (Variant::Ofd, Variant::Pipe);
        let mut report = CompareReport::new(
            "test".into(),
            vec![ofd, pipe],
            vec![Placement::SameCpu, Placement::Free],
        );
        assert_eq!(compare_note(&report), None);
        for (repeat, done) in [(0, 31), (1, 30)] {
            report.add_run(&run(ofd, Placement::SameCpu, done), repeat);
        }
        report.add_run(&run(ofd, Placement::Free, 5_000), 0);
        report.add_run(&run(pipe, Placement::SameCpu, 5_000), 0);
        report.add_run(&run(pipe, Placement::Free, 4_000), 0);
        let note = compare_note(&report).unwrap();
        assert!(
            note.starts_with(
                "Stopped early: 2 of 4 cells reached the --max-seconds limit (0.25 s per cell) \
                 before their 5,000 rounds in at least one repeat (rounds done): same-cpu: \
                 ofd 30–31; free: pipe 4,000."
            ),
            "{note}"
        );
        // The slowest: 30 rounds a second need 167 s for 5,000.
        assert!(
            note.ends_with(
                "take about 167 s in the slowest cell: pass --max-seconds 200 (or \
                 fewer --rounds) to finish."
            ),
            "{note}"
        );
    }

    #[test]
    fn suggestions_are_round_numbers_above_the_need() {
        assert_eq!(nice_ceiling(96.0), 100.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(1.2), 1.5);
        assert_eq!(flag_value(nice_ceiling(0.26)), "0.3");
        assert_eq!(about(79.6), "80 s");
        assert_eq!(about(3.24), "3.2 s");
    }
}
