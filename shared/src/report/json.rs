//! `summary.json`: the same report for programs.

use std::io;

use serde::Serialize;

use super::Exporter;
use crate::outcome::cell_opportunity::CellOpportunity;
use crate::outcome::holder_death::CrashReport;
use crate::outcome::{
    BaselineComparison, CompareReport, Failure, Machine, RunRecord, Skipped, SummaryRow,
};
use crate::sys::out_dir::OutDir;

pub(super) struct Json;

/// `{"machine", "command", "runs", "summary", "skipped", "failures"}`, and `"baseline"` with
/// `--baseline`, `"holder_death"` with `--crash`. `runs` has one record per cell and repeat, shaped like `run --json`.
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
        opportunity: crate::outcome::cell_opportunity::by_cell(report),
    })
}

impl Exporter for Json {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        dir.write("summary.json", to_json(report)?.as_bytes())
    }
}
