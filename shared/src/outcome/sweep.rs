//! `compare --contenders 2,4,…,64`: the same cells at several contender counts. Per run, the
//! figures that show how a lock scales ([`SweepFigures`]) and what lockfair itself cost
//! ([`OwnCost`]); per variant, placement and count, their median over repeats ([`SweepRow`]);
//! per count, the largest cost seen ([`CostRow`]).

use serde::{Deserialize, Serialize};

use super::{CellMetrics, RunReport, Spread};
use crate::placement::Placement;
use crate::procinfo::ProcessCost;
use crate::variant::Variant;

/// What the sweep's Jain index is computed over (said in every output beside the figure).
pub const JAIN_OVER: &str = "lock opportunity (SCL: each contender's hold time plus the lock's \
     idle time, over the common window in free mode; run --json's opportunity_jain)";

/// lockfair's own cost during one run: the client (contender 1 and the one that starts the
/// rest), the server (contender 0), and every helper contender process added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnCost {
    pub client: ProcessCost,
    /// `None` when the kernel did not tell the server's pid.
    pub server: Option<ProcessCost>,
    pub helpers: ProcessCost,
    /// Helper processes that were there to look at.
    pub helper_processes: usize,
}

impl OwnCost {
    /// Looks at this process, the server `server` and the helpers `helpers` now.
    pub fn look(server: Option<i32>, helpers: &[i32]) -> OwnCost {
        let mine = ProcessCost::of(std::process::id() as i32).unwrap_or_default();
        let each: Vec<ProcessCost> = helpers.iter().filter_map(|&p| ProcessCost::of(p)).collect();
        OwnCost {
            client: mine,
            server: server.and_then(ProcessCost::of),
            helpers: each.iter().fold(ProcessCost::default(), |a, &b| a.plus(b)),
            helper_processes: each.len(),
        }
    }

    /// The larger of each figure of two looks (or the one look there is).
    pub fn peak(a: Option<OwnCost>, b: Option<OwnCost>) -> Option<OwnCost> {
        match (a, b) {
            (Some(a), Some(b)) => Some(OwnCost {
                client: a.client.peak(b.client),
                server: match (a.server, b.server) {
                    (Some(x), Some(y)) => Some(x.peak(y)),
                    (x, y) => x.or(y),
                },
                helpers: a.helpers.peak(b.helpers),
                helper_processes: a.helper_processes.max(b.helper_processes),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// The figures a sweep follows across contender counts, of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepFigures {
    /// Acquisitions (`free`) or turns (`turns`) of all contenders per second.
    pub acquisitions_per_sec: f64,
    /// `free` mode only: the order measures (acquisitions that overtook a wait).
    pub bypass_p99: Option<u64>,
    pub bypass_max: Option<u64>,
    /// Jain's index over [`JAIN_OVER`], if defined.
    pub jain: Option<f64>,
    /// User + system CPU of all contenders per acquisition (or turn), if there was one.
    pub cpu_ns_per_acquisition: Option<f64>,
}

impl SweepFigures {
    /// Of run `r`, whose combined figures are `m`.
    pub fn of(r: &RunReport, m: &CellMetrics) -> SweepFigures {
        let acquisitions = r
            .contenders()
            .map(|s| s.rounds)
            .fold(0, u64::saturating_add);
        let cpu = r
            .contenders()
            .map(|s| s.rusage.cpu_ns)
            .fold(0, u64::saturating_add);
        SweepFigures {
            acquisitions_per_sec: m.acquisitions_per_sec,
            bypass_p99: m.order.bypass_p99,
            bypass_max: m.order.bypass_max,
            jain: r.opportunity().map(|o| o.jain),
            cpu_ns_per_acquisition: (acquisitions > 0).then(|| cpu as f64 / acquisitions as f64),
        }
    }
}

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepCell {
    pub variant: Variant,
    pub placement: Placement,
    pub contenders: usize,
    pub repeat: usize,
    #[serde(flatten)]
    pub figures: SweepFigures,
    pub cost: OwnCost,
}

/// What a sweep measured so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sweep {
    /// The contender counts asked for, in the order they run.
    pub counts: Vec<usize>,
    pub cells: Vec<SweepCell>,
}

/// The measures a sweep shows, one table and one plot each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepMeasure {
    AcquisitionsPerSec,
    BypassP99,
    BypassMax,
    Jain,
    CpuPerAcquisition,
}

impl SweepMeasure {
    pub const ALL: [SweepMeasure; 5] = [
        SweepMeasure::AcquisitionsPerSec,
        SweepMeasure::BypassP99,
        SweepMeasure::BypassMax,
        SweepMeasure::Jain,
        SweepMeasure::CpuPerAcquisition,
    ];

    /// The file name's part: `contenders-<slug>.svg`.
    pub fn slug(self) -> &'static str {
        match self {
            SweepMeasure::AcquisitionsPerSec => "acquisitions",
            SweepMeasure::BypassP99 => "bypass-p99",
            SweepMeasure::BypassMax => "bypass-max",
            SweepMeasure::Jain => "jain",
            SweepMeasure::CpuPerAcquisition => "cpu",
        }
    }

    /// A heading for its table and plot.
    pub fn title(self) -> &'static str {
        match self {
            SweepMeasure::AcquisitionsPerSec => "Acquisitions per second (all contenders)",
            SweepMeasure::BypassP99 => "Bypass p99 (acquisitions that overtook one wait)",
            SweepMeasure::BypassMax => "Bypass max (acquisitions that overtook one wait)",
            SweepMeasure::Jain => "Jain's index over lock opportunity",
            SweepMeasure::CpuPerAcquisition => "CPU time per acquisition (all contenders)",
        }
    }

    /// Its spread in `row`, where the row has it.
    pub fn of(self, row: &SweepRow) -> Option<Spread> {
        match self {
            SweepMeasure::AcquisitionsPerSec => Some(row.acquisitions_per_sec),
            SweepMeasure::BypassP99 => (row.bypass_repeats > 0).then_some(row.bypass_p99),
            SweepMeasure::BypassMax => (row.bypass_repeats > 0).then_some(row.bypass_max),
            SweepMeasure::Jain => (row.jain_repeats > 0).then_some(row.jain),
            SweepMeasure::CpuPerAcquisition => {
                (row.cpu_repeats > 0).then_some(row.cpu_ns_per_acquisition)
            }
        }
    }
}

/// A variant on a placement at one count, over its repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    /// `variant/placement/contenders`, for picking the row out of `summary.json` by name.
    pub id: String,
    pub variant: Variant,
    pub placement: Placement,
    pub contenders: usize,
    pub repeats: usize,
    pub acquisitions_per_sec: Spread,
    /// The median acquisitions/s as a multiple of the same variant's and placement's at the
    /// sweep's fewest contenders (how it scales; `None` where that was 0).
    pub acquisitions_vs_fewest: Option<f64>,
    pub bypass_p99: Spread,
    pub bypass_max: Spread,
    /// Repeats with order measures (`free` mode).
    pub bypass_repeats: usize,
    pub jain: Spread,
    pub jain_repeats: usize,
    pub cpu_ns_per_acquisition: Spread,
    pub cpu_repeats: usize,
}

/// lockfair's own cost at one count: the largest of every figure over the count's runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostRow {
    /// The count, as text, for picking the row out of `summary.json` by name.
    pub id: String,
    pub contenders: usize,
    pub runs: usize,
    pub client: ProcessCost,
    pub server: Option<ProcessCost>,
    pub helpers: ProcessCost,
    pub helper_processes: usize,
}

impl Sweep {
    /// A sweep over `counts`, nothing measured yet.
    pub fn new(counts: Vec<usize>) -> Sweep {
        Sweep {
            counts,
            cells: Vec::new(),
        }
    }

    /// Adds one finished run.
    pub fn add(&mut self, r: &RunReport, m: &CellMetrics, repeat: usize, cost: OwnCost) {
        self.cells.push(SweepCell {
            variant: r.variant,
            placement: r.placement,
            contenders: r.contenders().count(),
            repeat,
            figures: SweepFigures::of(r, m),
            cost,
        });
    }

    /// The counts in increasing order (the plots' x axis).
    pub fn sorted_counts(&self) -> Vec<usize> {
        let mut counts = self.counts.clone();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// Per placement, variant and count (in that order), the medians over repeats.
    pub fn rows(&self, variants: &[Variant], placements: &[Placement]) -> Vec<SweepRow> {
        let mut rows = Vec::new();
        for &placement in placements {
            for &variant in variants {
                for n in self.sorted_counts() {
                    let cell: Vec<&SweepFigures> = self
                        .cells
                        .iter()
                        .filter(|c| {
                            (c.variant, c.placement, c.contenders) == (variant, placement, n)
                        })
                        .map(|c| &c.figures)
                        .collect();
                    if !cell.is_empty() {
                        rows.push(row(variant, placement, n, &cell));
                    }
                }
                scale(&mut rows, variant, placement);
            }
        }
        rows
    }

    /// Per count, the largest cost any run had.
    pub fn costs(&self) -> Vec<CostRow> {
        self.sorted_counts()
            .into_iter()
            .filter_map(|n| {
                let runs: Vec<&OwnCost> = self
                    .cells
                    .iter()
                    .filter(|c| c.contenders == n)
                    .map(|c| &c.cost)
                    .collect();
                let peak = runs
                    .iter()
                    .fold(None, |acc, &&c| OwnCost::peak(acc, Some(c)))?;
                Some(CostRow {
                    id: n.to_string(),
                    contenders: n,
                    runs: runs.len(),
                    client: peak.client,
                    server: peak.server,
                    helpers: peak.helpers,
                    helper_processes: peak.helper_processes,
                })
            })
            .collect()
    }
}

/// Fills `acquisitions_vs_fewest` of the rows of `variant` on `placement`.
fn scale(rows: &mut [SweepRow], variant: Variant, placement: Placement) {
    let mine = |r: &&mut SweepRow| (r.variant, r.placement) == (variant, placement);
    let Some(fewest) = rows
        .iter_mut()
        .filter(mine)
        .map(|r| r.acquisitions_per_sec.median)
        .next()
    else {
        return;
    };
    for r in rows.iter_mut().filter(mine) {
        r.acquisitions_vs_fewest = (fewest > 0.0).then(|| r.acquisitions_per_sec.median / fewest);
    }
}

fn row(variant: Variant, placement: Placement, n: usize, cell: &[&SweepFigures]) -> SweepRow {
    let over = |f: fn(&SweepFigures) -> Option<f64>| {
        let xs: Vec<f64> = cell.iter().filter_map(|c| f(c)).collect();
        (xs.len(), Spread::of(xs))
    };
    let (_, acquisitions_per_sec) = over(|c| Some(c.acquisitions_per_sec));
    let (bypass_repeats, bypass_p99) = over(|c| c.bypass_p99.map(|x| x as f64));
    let (_, bypass_max) = over(|c| c.bypass_max.map(|x| x as f64));
    let (jain_repeats, jain) = over(|c| c.jain);
    let (cpu_repeats, cpu_ns_per_acquisition) = over(|c| c.cpu_ns_per_acquisition);
    SweepRow {
        id: format!("{variant}/{placement}/{n}"),
        variant,
        placement,
        contenders: n,
        repeats: cell.len(),
        acquisitions_per_sec,
        acquisitions_vs_fewest: None,
        bypass_p99,
        bypass_max,
        bypass_repeats,
        jain,
        jain_repeats,
        cpu_ns_per_acquisition,
        cpu_repeats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(variant: Variant, n: usize, repeat: usize, rate: f64, fds: u64) -> SweepCell {
        SweepCell {
            variant,
            placement: Placement::Free,
            contenders: n,
            repeat,
            figures: SweepFigures {
                acquisitions_per_sec: rate,
                bypass_p99: (n > 2).then_some(n as u64),
                ..Default::default()
            },
            cost: OwnCost {
                client: ProcessCost {
                    fds,
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn rows_are_per_variant_and_count_in_increasing_count_and_costs_keep_the_largest() {
        let sweep = Sweep {
            counts: vec![8, 2],
            cells: vec![
                cell(Variant::Futex, 8, 0, 10.0, 30),
                cell(Variant::Futex, 2, 0, 40.0, 9),
                cell(Variant::Futex, 8, 1, 20.0, 31),
                cell(Variant::Ofd, 8, 0, 5.0, 29),
            ],
        };
        let rows = sweep.rows(&[Variant::Futex, Variant::Ofd], &[Placement::Free]);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["futex/free/2", "futex/free/8", "ofd/free/8"]);
        assert_eq!(rows[1].repeats, 2);
        assert_eq!(rows[1].acquisitions_per_sec.median, 15.0);
        assert_eq!(rows[0].acquisitions_vs_fewest, Some(1.0));
        assert_eq!(rows[1].acquisitions_vs_fewest, Some(15.0 / 40.0));
        assert_eq!(
            rows[2].acquisitions_vs_fewest,
            Some(1.0),
            "ofd's fewest is 8"
        );
        assert_eq!(SweepMeasure::BypassP99.of(&rows[0]), None, "no bypass at 2");
        assert_eq!(SweepMeasure::BypassP99.of(&rows[1]).unwrap().median, 8.0);
        assert_eq!(SweepMeasure::Jain.of(&rows[1]), None);
        let costs = sweep.costs();
        assert_eq!(
            costs
                .iter()
                .map(|c| (c.contenders, c.runs, c.client.fds))
                .collect::<Vec<_>>(),
            [(2, 1, 9), (8, 3, 31)]
        );
    }

    #[test]
    fn every_measure_has_its_own_file() {
        let slugs: std::collections::BTreeSet<_> =
            SweepMeasure::ALL.iter().map(|m| m.slug()).collect();
        assert_eq!(slugs.len(), SweepMeasure::ALL.len());
    }
}
