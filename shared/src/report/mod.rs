//! Turning measurements into things people and programs read.
//!
//! [`CompareReport`] holds everything a `compare` run measured so far: one record per cell and
//! repeat, and the latency histograms merged over repeats. A [`ReportDir`] writes it out through
//! one exporter per format (`summary.md`, `summary.json`, `.hgrm` files, SVG plots), each file
//! replaced atomically, after every cell: a crash or a Ctrl-C keeps what was finished.

pub mod hgrm;
pub mod json;
pub mod machine;
mod markdown;
mod plots;
pub mod summary;
pub mod table;
pub mod timeline;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use machine::Machine;
pub use summary::{CellMetrics, SummaryRow};
pub use table::{Table, fmt_ns};

use crate::client::RunReport;
use crate::client::run::RunJson;
use crate::measure::new_histogram;
use crate::placement::Placement;
use crate::variant::Variant;

/// One cell and repeat, as `summary.json` lists it: `run --json`'s shape plus the repeat number
/// and the combined metrics the table is made of.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub run: RunJson,
    pub repeat: usize,
    pub metrics: CellMetrics,
}

/// A cell that could not run here (for example `split` on one CPU), and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub variant: Variant,
    pub placement: Placement,
    pub reason: String,
}

/// A cell and repeat that ran and failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub variant: Variant,
    pub placement: Placement,
    pub repeat: usize,
    pub error: String,
}

/// A contender, named for files: `server`, `client`, `contender-2`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Side(pub usize);

/// The latency histograms kept for `.hgrm` files and plots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Turns mode: from the releaser's timestamp to holding the turn.
    Handoff,
    /// Turns mode: from passing the turn to getting it back.
    RoundTrip,
    /// Free mode: from asking for the lock to holding it.
    Wait,
}

impl Side {
    pub fn name(self) -> String {
        match self.0 {
            0 => "server".into(),
            1 => "client".into(),
            c => format!("contender-{c}"),
        }
    }
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Handoff => "handoff",
            Metric::RoundTrip => "round-trip",
            Metric::Wait => "wait",
        }
    }
}

type HistKey = (Variant, Placement, Side, Metric);

/// Everything a comparison measured so far.
#[derive(Debug)]
pub struct CompareReport {
    pub machine: Machine,
    /// The command line that made the report.
    pub command: String,
    /// The variants and placements asked for, in report order.
    pub variants: Vec<Variant>,
    pub placements: Vec<Placement>,
    pub runs: Vec<RunRecord>,
    pub skipped: Vec<Skipped>,
    pub failures: Vec<Failure>,
    /// Latency histograms per cell and side, merged over repeats (bounded: one per key).
    histograms: BTreeMap<HistKey, Histogram<u64>>,
}

impl CompareReport {
    /// An empty report for this machine and command.
    pub fn new(command: String, variants: Vec<Variant>, placements: Vec<Placement>) -> Self {
        CompareReport {
            machine: Machine::current(),
            command,
            variants,
            placements,
            runs: Vec::new(),
            skipped: Vec::new(),
            failures: Vec::new(),
            histograms: BTreeMap::new(),
        }
    }

    /// Adds one finished run; its histograms are merged into the cell's and then dropped.
    pub fn add_run(&mut self, report: &RunReport, repeat: usize) {
        let (v, p) = (report.variant, report.placement);
        for stats in report.contenders() {
            let side = Side(stats.contender as usize);
            match &stats.free {
                Some(free) => self.merge(v, p, side, Metric::Wait, &free.wait),
                None => {
                    self.merge(v, p, side, Metric::Handoff, &stats.handoff);
                    self.merge(v, p, side, Metric::RoundTrip, &stats.round_trip);
                }
            }
        }
        self.runs.push(RunRecord {
            run: report.to_json(),
            repeat,
            metrics: CellMetrics::of(report),
        });
    }

    fn merge(&mut self, v: Variant, p: Placement, side: Side, m: Metric, h: &Histogram<u64>) {
        let _ = self
            .histograms
            .entry((v, p, side, m))
            .or_insert_with(new_histogram)
            .add(h);
    }

    /// The merged histogram of one cell, side and metric.
    pub fn histogram(
        &self,
        v: Variant,
        p: Placement,
        side: Side,
        m: Metric,
    ) -> Option<&Histogram<u64>> {
        self.histograms.get(&(v, p, side, m))
    }

    /// Every contender's histograms of one cell and metric merged.
    pub fn all_sides(&self, v: Variant, p: Placement, m: Metric) -> Option<Histogram<u64>> {
        let mut out: Option<Histogram<u64>> = None;
        for ((hv, hp, _, hm), h) in &self.histograms {
            if (*hv, *hp, *hm) == (v, p, m) {
                let _ = out.get_or_insert_with(new_histogram).add(h);
            }
        }
        out
    }

    /// Every contender's wait of one cell: the handoff in `turns` mode, the wait for the lock in
    /// `free` mode.
    pub fn wait(&self, v: Variant, p: Placement) -> Option<Histogram<u64>> {
        self.all_sides(v, p, Metric::Wait)
            .or_else(|| self.all_sides(v, p, Metric::Handoff))
    }

    /// The mode of the runs so far (`turns` if there are none).
    pub fn mode(&self) -> crate::variant::Mode {
        self.runs
            .first()
            .map_or(crate::variant::Mode::Turns, |r| r.run.mode)
    }

    /// Every histogram kept, with its key.
    pub fn histograms(&self) -> impl Iterator<Item = (&HistKey, &Histogram<u64>)> {
        self.histograms.iter()
    }

    /// The summary table's rows.
    pub fn summary(&self) -> Vec<SummaryRow> {
        let runs: Vec<(Variant, Placement, CellMetrics)> = self
            .runs
            .iter()
            .map(|r| (r.run.variant, r.run.placement, r.metrics))
            .collect();
        summary::summarize(&runs, &self.variants, &self.placements)
    }

    /// The terminal tables (main, then contenders), then the cells that did not run.
    pub fn to_text(&self) -> String {
        let rows = self.summary();
        let mut out = summary::summary_table(&rows, self.mode()).to_text();
        out.push_str("\nContenders: fairness of the handoff\n");
        out.push_str(&summary::contenders_table(&rows).to_text());
        out.push_str(&self.notes());
        out
    }

    /// Skipped and failed cells, one line each.
    pub fn notes(&self) -> String {
        let mut out = String::new();
        for s in &self.skipped {
            out.push_str(&format!(
                "\nskipped {} {}: {}",
                s.variant, s.placement, s.reason
            ));
        }
        for f in &self.failures {
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
}

/// A report format: writes its files for `report` into `dir`.
trait Exporter {
    fn export(&self, report: &CompareReport, dir: &Path) -> io::Result<()>;
}

/// Why the report folder cannot be used.
#[derive(Debug, Error)]
pub enum ReportError {
    #[error("cannot write the report to {path}: {err}; pass a writable --out DIR", path = .path.display())]
    Unwritable { path: PathBuf, err: io::Error },
}

/// The report folder.
#[derive(Debug)]
pub struct ReportDir {
    path: PathBuf,
}

impl ReportDir {
    /// Creates `path` and writes the (empty) report once, so a bad path fails before anything
    /// is measured.
    pub fn create(path: &Path, report: &CompareReport) -> Result<ReportDir, ReportError> {
        let dir = ReportDir {
            path: path.to_path_buf(),
        };
        std::fs::create_dir_all(path)
            .and_then(|()| dir.write(report))
            .map_err(|err| ReportError::Unwritable {
                path: path.to_path_buf(),
                err,
            })?;
        Ok(dir)
    }

    /// Rewrites every file from `report`.
    pub fn write(&self, report: &CompareReport) -> io::Result<()> {
        let exporters: [&dyn Exporter; 4] =
            [&markdown::Markdown, &json::Json, &HgrmFiles, &plots::Plots];
        for e in exporters {
            e.export(report, &self.path)?;
        }
        Ok(())
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<variant>-<placement>-<side>-<metric>.hgrm` for every latency histogram.
struct HgrmFiles;

impl Exporter for HgrmFiles {
    fn export(&self, report: &CompareReport, dir: &Path) -> io::Result<()> {
        for ((v, p, side, m), h) in report.histograms() {
            let name = format!("{v}-{p}-{}-{}.hgrm", side.name(), m.name());
            write_atomically(&dir.join(name), hgrm::to_hgrm(h).as_bytes())?;
        }
        Ok(())
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a reader (or
/// a crash) never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
