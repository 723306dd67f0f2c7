//! `summary.json`: the same report for programs.

use std::io;

use serde::Serialize;

use super::Exporter;
use crate::outcome::cell_opportunity::CellOpportunity;
use crate::outcome::holder_death::CrashReport;
use crate::outcome::sweep::{CostRow, JAIN_OVER, SweepCell, SweepRow};
use crate::outcome::{
    BaselineComparison, CompareReport, Failure, Machine, RunRecord, Skipped, SummaryRow,
};
use crate::sys::out_dir::OutDir;
use crate::variant::Mode;

pub(super) struct Json;

/// `{"machine", "command", "runs", "summary", "skipped", "failures"}`, and `"baseline"` with
/// `--baseline`, `"holder_death"` with `--crash`, `"sweep"` with several `--contenders`. `runs` has one record per cell and repeat, shaped like `run --json`.
#[derive(Serialize)]
struct SummaryJson<'a> {
    machine: &'a Machine,
    command: &'a str,
    runs: &'a [RunRecord],
    summary: Vec<SummaryRow>,
    skipped: &'a [Skipped],
    failures: &'a [Failure],
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<BaselineComparison>,
    /// `compare --crash`: `crash --json`'s object, plain and protected cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_death: Option<&'a CrashReport>,
    /// Lock opportunity per cell and contender, over the repeats.
    opportunity: Vec<CellOpportunity>,
    /// `compare --contenders 2,4,…`: every count's figures and lockfair's own cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<SweepJson<'a>>,
}

/// A contender sweep: the counts, the medians per variant, placement and count (`rows`, each
/// with an `id` such as `futex/free/64`), the largest own cost per count (`cost`, `id` the
/// count) and every run's figures (`cells`).
#[derive(Serialize)]
struct SweepJson<'a> {
    counts: &'a [usize],
    mode: Mode,
    jain_over: &'static str,
    rows: Vec<SweepRow>,
    cost: Vec<CostRow>,
    cells: &'a [SweepCell],
}

impl<'a> SweepJson<'a> {
    fn of(report: &'a CompareReport) -> Option<Self> {
        let sweep = report.sweep.as_ref()?;
        Some(SweepJson {
            counts: &sweep.counts,
            mode: report.mode(),
            jain_over: JAIN_OVER,
            rows: sweep.rows(&report.variants, &report.placements),
            cost: sweep.costs(),
            cells: &sweep.cells,
        })
    }
}

/// The JSON text of `report`. `Err` only if a figure cannot be written as JSON: an empty
/// `summary.json` would read as a report with nothing in it.
pub fn to_json(report: &CompareReport) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&SummaryJson {
        machine: &report.machine,
        command: &report.command,
        runs: &report.runs,
        summary: report.summary(),
        skipped: &report.skipped,
        failures: &report.failures,
        baseline: report.against_baseline(),
        holder_death: report.holder_death.as_ref(),
        sweep: SweepJson::of(report),
        opportunity: crate::outcome::cell_opportunity::by_cell(report),
    })
}

impl Exporter for Json {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        dir.write("summary.json", to_json(report)?.as_bytes())
    }
}
