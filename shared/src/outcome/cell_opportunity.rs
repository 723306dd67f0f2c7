//! Lock opportunity per `compare` cell: each contender's shares of the lock's time and of the
//! CPU, and Jain's index over lock opportunity, as median and interval over the cell's repeats
//! (summary.json's `opportunity`, read by the Markdown, HTML and terminal tables).

use serde::{Deserialize, Serialize};

use super::compare::{CompareReport, Contender, RunRecord};
use super::summary::Spread;
use crate::placement::Placement;
use crate::variant::Variant;

/// One cell's lock opportunity over its repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellOpportunity {
    pub variant: Variant,
    pub placement: Placement,
    /// Repeats with a figure (a `free` repeat whose contenders never raced has none).
    pub repeats: usize,
    /// Jain's index over the contenders' lock opportunity.
    pub opportunity_jain: Spread,
    /// The share of the span nobody held the lock.
    pub idle_share: Spread,
    pub contenders: Vec<ContenderOpportunity>,
}

/// One contender of a cell, over the repeats with a figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContenderOpportunity {
    /// `server`, `client`, `contender-2`, ...
    pub name: String,
    /// What it was asked to do (`--hold`, `--think`) and the nice value it ran at (first repeat).
    pub hold_ns: u64,
    pub think_ns: u64,
    pub nice: i32,
    pub acquisitions: Spread,
    /// Its share of all the cell's acquisitions.
    pub acquisition_share: Spread,
    pub hold_share: Spread,
    pub opportunity: Spread,
    pub cpu_share: Spread,
}

/// Every cell with at least one repeat that has a lock opportunity figure, in report order.
pub fn by_cell(report: &CompareReport) -> Vec<CellOpportunity> {
    let mut cells = Vec::new();
    for &placement in &report.placements {
        for &variant in &report.variants {
            let runs: Vec<&RunRecord> = report
                .runs
                .iter()
                .filter(|r| r.run.variant == variant && r.run.placement == placement)
                .filter(|r| r.run.opportunity_jain.is_some())
                .collect();
            if let Some(cell) = cell(variant, placement, &runs) {
                cells.push(cell);
            }
        }
    }
    cells
}

fn cell(variant: Variant, placement: Placement, runs: &[&RunRecord]) -> Option<CellOpportunity> {
    let first = runs.first()?;
    let over = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
        Spread::of(runs.iter().filter_map(|r| f(r)).collect())
    };
    let contenders = (0..first.run.contenders.len())
        .map(|i| contender(i, runs))
        .collect();
    Some(CellOpportunity {
        variant,
        placement,
        repeats: runs.len(),
        opportunity_jain: over(&|r| r.run.opportunity_jain),
        idle_share: over(&|r| r.run.idle_share),
        contenders,
    })
}

fn contender(i: usize, runs: &[&RunRecord]) -> ContenderOpportunity {
    let over = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
        Spread::of(runs.iter().filter_map(|r| f(r)).collect())
    };
    let c = |r: &RunRecord| r.run.contenders.get(i).cloned();
    let asked = c(runs[0]);
    ContenderOpportunity {
        name: Contender(i).name(),
        hold_ns: asked.as_ref().map_or(0, |c| c.hold_ns),
        think_ns: asked.as_ref().map_or(0, |c| c.think_ns),
        nice: asked.as_ref().map_or(0, |c| c.nice),
        acquisitions: over(&|r| c(r).map(|c| c.acquisitions as f64)),
        acquisition_share: over(&|r| {
            let all: u64 = r.run.contenders.iter().map(|c| c.acquisitions).sum();
            c(r).filter(|_| all > 0)
                .map(|c| c.acquisitions as f64 / all as f64)
        }),
        hold_share: over(&|r| c(r).and_then(|c| c.hold_share)),
        opportunity: over(&|r| c(r).and_then(|c| c.opportunity)),
        cpu_share: over(&|r| c(r).and_then(|c| c.cpu_share)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{ContenderStats, End, FreeStats};
    use crate::outcome::RunReport;
    use crate::variant::Mode;

    /// A free run over the window 0..1000 where the server held `a` and the client `b`.
    fn run(a: u64, b: u64) -> RunReport {
        let side = |c: usize, held: u64, hold_ns: u64| ContenderStats {
            end: End::Completed,
            rounds: 10 * (c as u64 + 1),
            hold_ns,
            free: Some(FreeStats {
                joined_ns: 1,
                left_ns: 1_001,
                held_in_window_ns: held,
                ..Default::default()
            }),
            ..ContenderStats::new(c, None)
        };
        RunReport {
            variant: Variant::Ticket,
            mode: Mode::Free,
            placement: Placement::Free,
            rounds: 10,
            max_seconds: 1.0,
            server: side(0, a, 1_000),
            client: side(1, b, 100_000),
            others: Vec::new(),
            kernel: None,
            order: None,
        }
    }

    #[test]
    fn a_cell_takes_the_median_of_its_repeats_per_contender() {
        let mut report =
            CompareReport::new("t".into(), vec![Variant::Ticket], vec![Placement::Free]);
        for (repeat, (a, b)) in [(100, 500), (200, 600), (300, 700)].into_iter().enumerate() {
            report.add_run(&run(a, b), repeat);
        }
        let cells = by_cell(&report);
        assert_eq!(cells.len(), 1);
        let cell = &cells[0];
        assert_eq!(cell.repeats, 3);
        let [server, client] = &cell.contenders[..] else {
            panic!("two contenders")
        };
        assert_eq!((server.name.as_str(), server.hold_ns), ("server", 1_000));
        assert_eq!((client.name.as_str(), client.hold_ns), ("client", 100_000));
        assert!((server.hold_share.median - 0.2).abs() < 1e-9);
        // Idle 200 in the median repeat: 0.6 + 0.2.
        assert!((client.opportunity.median - 0.8).abs() < 1e-9);
        assert!((client.acquisition_share.median - 20.0 / 30.0).abs() < 1e-9);
        assert!(cell.opportunity_jain.median < 1.0 && cell.opportunity_jain.median >= 0.5);
    }
}
