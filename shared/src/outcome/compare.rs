//! What a `compare` run measured so far: one record per cell and repeat, the cells that were
//! skipped or failed, and the latency histograms merged over repeats.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::holder_death::CrashReport;
use super::sweep::Sweep;
use super::{
    Baseline, BaselineComparison, CellMetrics, Machine, RunJson, RunReport, SummaryRow, summarize,
};
use crate::measure::new_histogram;
use crate::placement::Placement;
use crate::variant::{Mode, Variant};

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

/// Contender 0, 1, 2..., named for files: `server`, `client`, `contender-2`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Contender(pub usize);

impl Contender {
    pub fn name(self) -> String {
        match self.0 {
            0 => "server".into(),
            1 => "client".into(),
            c => format!("contender-{c}"),
        }
    }
}

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

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Handoff => "handoff",
            Metric::RoundTrip => "round-trip",
            Metric::Wait => "wait",
        }
    }
}

/// A kept histogram: its cell, contender and metric.
pub type HistKey = (Variant, Placement, Contender, Metric);

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
    /// The earlier run to compare with (`--baseline`).
    pub baseline: Option<Baseline>,
    /// `--crash`: the holder-death experiment for the variants compared, plain and protected
    /// cells in one list (`crash --json`'s shape).
    pub holder_death: Option<CrashReport>,
    /// `--contenders` with several counts: every count's figures. The rest of the report (runs,
    /// histograms, tables) is then the largest count's.
    pub sweep: Option<Sweep>,
    /// Latency histograms per cell and contender, merged over repeats (bounded: one per key).
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
            baseline: None,
            holder_death: None,
            sweep: None,
            histograms: BTreeMap::new(),
        }
    }

    /// Adds one finished run; its histograms are merged into the cell's and then dropped.
    pub fn add_run(&mut self, report: &RunReport, repeat: usize) {
        let (v, p) = (report.variant, report.placement);
        for stats in report.contenders() {
            let who = Contender(stats.contender as usize);
            match &stats.free {
                Some(free) => self.merge(v, p, who, Metric::Wait, &free.wait),
                None => {
                    self.merge(v, p, who, Metric::Handoff, &stats.handoff);
                    self.merge(v, p, who, Metric::RoundTrip, &stats.round_trip);
                }
            }
        }
        self.runs.push(RunRecord {
            run: report.to_json(),
            repeat,
            metrics: CellMetrics::of(report),
        });
    }

    fn merge(&mut self, v: Variant, p: Placement, who: Contender, m: Metric, h: &Histogram<u64>) {
        let _ = self
            .histograms
            .entry((v, p, who, m))
            .or_insert_with(new_histogram)
            .add(h);
    }

    /// The merged histogram of one cell, contender and metric.
    pub fn histogram(
        &self,
        v: Variant,
        p: Placement,
        who: Contender,
        m: Metric,
    ) -> Option<&Histogram<u64>> {
        self.histograms.get(&(v, p, who, m))
    }

    /// Every contender's histograms of one cell and metric merged.
    pub fn all_contenders(&self, v: Variant, p: Placement, m: Metric) -> Option<Histogram<u64>> {
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
        self.all_contenders(v, p, Metric::Wait)
            .or_else(|| self.all_contenders(v, p, Metric::Handoff))
    }

    /// The mode of the runs so far (`turns` if there are none).
    pub fn mode(&self) -> Mode {
        self.runs.first().map_or(Mode::Turns, |r| r.run.mode)
    }

    /// Every histogram kept, with its key.
    pub fn histograms(&self) -> impl Iterator<Item = (&HistKey, &Histogram<u64>)> {
        self.histograms.iter()
    }

    /// The summary table's rows.
    pub fn summary(&self) -> Vec<SummaryRow> {
        summarize(&self.cell_metrics(), &self.variants, &self.placements)
    }

    /// Every repeat's combined figures, with its cell.
    fn cell_metrics(&self) -> Vec<(Variant, Placement, CellMetrics)> {
        self.runs
            .iter()
            .map(|r| (r.run.variant, r.run.placement, r.metrics))
            .collect()
    }

    /// This run against the baseline, if one was given.
    pub fn against_baseline(&self) -> Option<BaselineComparison> {
        let b = self.baseline.as_ref()?;
        Some(b.compare(&self.summary(), &self.cell_metrics(), self.mode()))
    }
}
