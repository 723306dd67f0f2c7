//! `compare --crash` in `report.html`: for each variant compared, is it fast, fair and
//! crash-safe, each column read from this run's figures: the main table's best cell, its
//! barging rate and bypass, and the holder-death cells.

use std::io;

use super::page::{esc, paragraphs, table_html};
use super::{Input, Section};
use crate::crash::output::{cells_table, crash_safe};
use crate::outcome::SummaryRow;
use crate::outcome::holder_death::{CellResult, CrashReport};
use crate::report::summary::{fmt_count, fmt_rate, fmt_ratio};
use crate::text::{Table, fmt_ns};
use crate::variant::{Mode, Variant};

/// The section: the verdict table, then every cell as `crash` prints it.
pub fn holder_death(p: &Input) -> io::Result<Option<Section>> {
    let Some(deaths) = &p.report.holder_death else {
        return Ok(None);
    };
    let plain = deaths.part(false);
    let protected = deaths.part(true);
    let mut body = paragraphs(&[
        "After the cells, a holder (a child process) took the lock or held the turn and was \
         killed with SIGKILL inside its critical section; a survivor, already waiting, used the \
         mechanism alone (no watchdog, no pidfd), then again with the survivable protection \
         (a pidfd of every peer beside the wait, or a watcher thread). Fast and fair: this \
         run's fastest placement of the variant.",
    ]);
    body.push_str(&table_html(&verdict_table(p, &plain, &protected)));
    body.push_str(&paragraphs(&["Every cell, the mechanism alone:"]));
    body.push_str(&table_html(&cells_table(&plain)));
    if !protected.cells.is_empty() {
        body.push_str(&paragraphs(&["With the survivable protection:"]));
        body.push_str(&table_html(&cells_table(&protected)));
    }
    let skipped: Vec<String> = deaths
        .skipped
        .iter()
        .map(|s| {
            format!(
                "Not run: {} ({}): {}",
                s.variant,
                s.holder_description.name(),
                s.why
            )
        })
        .collect();
    body.push_str(&paragraphs(&skipped));
    if plain.cells.is_empty() && skipped.is_empty() {
        body = format!(
            "<p>{}</p>\n",
            esc("The holder-death experiment has no cell for the variants compared.")
        );
    }
    Ok(Some(Section::new("holder-death", "Holder death", body)))
}

/// One row per variant compared that has a holder-death cell.
fn verdict_table(p: &Input, plain: &CrashReport, protected: &CrashReport) -> Table {
    let mut t = Table::new(
        &[
            "variant",
            "fast",
            "fair",
            "recovered",
            "owner death seen",
            "survivable",
            "crash-safe",
        ],
        1,
    );
    t.left.extend(1..7);
    for &v in &p.report.variants {
        let Some(safe) = crash_safe(plain, v) else {
            continue;
        };
        let best = fastest(&p.rows, v, p.report.mode());
        t.push(vec![
            v.to_string(),
            best.map_or_else(|| "not measured".into(), |r| fast(r, p.report.mode())),
            best.map_or_else(|| "not measured".into(), fair),
            per_case(plain, v, recovered),
            per_case(plain, v, |c| yes_no(c.owner_died_seen).into()),
            survivable(protected, v),
            safe.to_string(),
        ]);
    }
    t
}

/// The variant's summary row with the most rounds (or acquisitions) per second.
fn fastest(rows: &[SummaryRow], v: Variant, mode: Mode) -> Option<&SummaryRow> {
    let speed = |r: &SummaryRow| match mode {
        Mode::Turns => r.rounds_per_sec.median,
        Mode::Free => r.acquisitions_per_sec.median,
    };
    rows.iter()
        .filter(|r| r.variant == v && r.repeats > 0)
        .max_by(|a, b| speed(a).total_cmp(&speed(b)))
}

fn fast(r: &SummaryRow, mode: Mode) -> String {
    match mode {
        Mode::Turns => format!(
            "{} rounds/s, round trip {}, {}",
            fmt_rate(r.rounds_per_sec.median),
            fmt_ns(r.round_trip_p50_ns.median),
            r.placement
        ),
        Mode::Free => format!(
            "{} acquisitions/s, {}",
            fmt_rate(r.acquisitions_per_sec.median),
            r.placement
        ),
    }
}

fn fair(r: &SummaryRow) -> String {
    let mut out = format!("barging {}", fmt_ratio(r.barging_rate.median));
    if r.order_repeats > 0 {
        out.push_str(&format!(
            ", bypass p99 {}",
            fmt_count(r.order.bypass_p99.median)
        ));
    }
    out
}

/// "own: yes; shared: no": one answer per holder's description case.
fn per_case(report: &CrashReport, v: Variant, answer: impl Fn(&CellResult) -> String) -> String {
    report
        .cells
        .iter()
        .filter(|c| c.variant == v)
        .map(|c| format!("{}: {}", c.holder_description.name(), answer(c)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn recovered(c: &CellResult) -> String {
    match c.recovered_ns {
        Some(ns) if c.recovered => format!("yes, after {}", fmt_ns(ns as f64)),
        _ => yes_no(c.recovered).into(),
    }
}

/// The protected cells' answer, or why there is none.
fn survivable(protected: &CrashReport, v: Variant) -> String {
    let cells: Vec<&CellResult> = protected.cells.iter().filter(|c| c.variant == v).collect();
    if cells.is_empty() {
        return "no protected cell".into();
    }
    let ok = cells
        .iter()
        .filter(|c| c.recovered || c.owner_died_seen)
        .count();
    let answer = per_case(protected, v, |c| match (c.recovered, c.owner_died_seen) {
        (true, true) => format!("{}, death seen", recovered(c)),
        (true, false) => recovered(c),
        (false, true) => "death seen, not recovered".into(),
        (false, false) => "no".into(),
    });
    format!("{ok} of {} cells survive: {answer}", cells.len())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::CompareReport;
    use crate::outcome::holder_death::Description;
    use crate::placement::Placement;

    fn cell(variant: Variant, recovered: bool, survivable: bool) -> CellResult {
        CellResult {
            variant,
            holder_description: Description::Own,
            recovered,
            recovered_ns: recovered.then_some(1_500),
            owner_died_seen: survivable,
            how: "<held> & gone".into(),
            survivable,
            kernel_view: None,
        }
    }

    #[test]
    fn each_variant_gets_its_own_answers_and_text_is_escaped() {
        let mut report = CompareReport::new(
            "test".into(),
            vec![Variant::Posix, Variant::Eventfd, Variant::Pipe],
            vec![Placement::SameCpu],
        );
        report.holder_death = Some(CrashReport {
            cells: vec![
                cell(Variant::Posix, true, false),
                cell(Variant::Eventfd, false, false),
                cell(Variant::Eventfd, true, true),
            ],
            skipped: vec![],
        });
        let scratch = crate::sys::out_dir::Scratch::new("holder-death-html");
        let dir = crate::sys::out_dir::OutDir::open(&scratch.0).unwrap();
        let input = Input {
            rows: report.summary(),
            report: &report,
            dir: &dir,
        };
        let s = holder_death(&input).unwrap().expect("a section");
        let plain = report.holder_death.as_ref().unwrap().part(false);
        let t = verdict_table(
            &input,
            &plain,
            &report.holder_death.as_ref().unwrap().part(true),
        );
        // pipe has no cell here: no row. No run measured: said so, not made up.
        let names: Vec<&str> = t.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, ["posix", "eventfd"]);
        assert_eq!(t.rows[0][1], "not measured");
        assert_eq!(t.rows[0][3], "own: yes, after 1.50 µs");
        assert_eq!(t.rows[0][5], "no protected cell");
        assert_eq!(t.rows[1][3], "own: no");
        assert!(
            t.rows[1][5].starts_with("1 of 1 cells survive"),
            "{:?}",
            t.rows[1]
        );
        assert!(!s.body.contains("<held>") && s.body.contains("&lt;held&gt; &amp; gone"));
    }
}
