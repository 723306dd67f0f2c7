//! A run compared with an earlier one (`compare --baseline DIR`): per cell both runs have, the
//! ratio new/old of a few headline figures, and whether the change is real.
//!
//! The rule: a change is real when the two runs' repeat ranges (min–max) do not overlap. It asks
//! nothing of the distribution and says "not shown" rather than guess when the ranges touch;
//! with one repeat a range is one value, so every difference counts, which the rule's text says.

use serde::{Deserialize, Serialize};

use super::{Spread, SummaryRow};
use crate::variant::Mode;

/// The rule, as every rendering states it.
pub const RULE: &str = "a change is real when the two runs' repeat ranges (min–max) do not \
                        overlap; with one repeat a range is a single value, so any difference \
                        counts: use --repeats 3 or more on both runs";

/// One cell of the earlier run, as its `summary.json` has it. Names stay text: the earlier run
/// may come from a build with variants or placements this one does not know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    pub variant: String,
    pub placement: String,
    pub repeats: usize,
    pub rounds_per_sec: Spread,
    pub whoops_per_round: Spread,
    pub handoff_p50_ns: Spread,
    pub round_trip_p50_ns: Spread,
}

/// The earlier run.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// The folder, as given on the command line.
    pub dir: String,
    /// The command that made it.
    pub command: String,
    /// Its mode, if it finished any cell.
    pub mode: Option<Mode>,
    pub rows: Vec<BaselineRow>,
}

/// A figure compared, named as its `summary.json` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    RoundsPerSec,
    RoundTripP50Ns,
    WhoopsPerRound,
    /// The wait for the lock in `free` mode.
    HandoffP50Ns,
}

impl Figure {
    /// The figures compared in `mode`: the round trip and whoops need a turn order, so `free`
    /// mode compares the wait for the lock instead.
    pub fn compared(mode: Mode) -> &'static [Figure] {
        match mode {
            Mode::Turns => &[
                Figure::RoundsPerSec,
                Figure::RoundTripP50Ns,
                Figure::WhoopsPerRound,
            ],
            Mode::Free => &[Figure::RoundsPerSec, Figure::HandoffP50Ns],
        }
    }

    fn of_row(self, r: &SummaryRow) -> Spread {
        match self {
            Figure::RoundsPerSec => r.rounds_per_sec,
            Figure::RoundTripP50Ns => r.round_trip_p50_ns,
            Figure::WhoopsPerRound => r.whoops_per_round,
            Figure::HandoffP50Ns => r.handoff_p50_ns,
        }
    }

    fn of_baseline(self, r: &BaselineRow) -> Spread {
        match self {
            Figure::RoundsPerSec => r.rounds_per_sec,
            Figure::RoundTripP50Ns => r.round_trip_p50_ns,
            Figure::WhoopsPerRound => r.whoops_per_round,
            Figure::HandoffP50Ns => r.handoff_p50_ns,
        }
    }
}

/// One figure of one cell in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub metric: Figure,
    pub old: Spread,
    pub new: Spread,
    /// new/old of the medians; `None` when the old median is 0.
    pub ratio: Option<f64>,
    /// The repeat ranges do not overlap ([`RULE`]).
    pub real: bool,
}

impl Change {
    fn of(metric: Figure, old: Spread, new: Spread) -> Change {
        Change {
            metric,
            old,
            new,
            ratio: (old.median != 0.0).then(|| new.median / old.median),
            real: new.min > old.max || new.max < old.min,
        }
    }
}

/// A cell both runs have.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellChange {
    pub variant: String,
    pub placement: String,
    pub changes: Vec<Change>,
}

/// A cell only one run has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CellName {
    pub variant: String,
    pub placement: String,
}

/// This run against the baseline: `summary.json`'s `baseline` field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineComparison {
    pub dir: String,
    pub command: String,
    pub rule: &'static str,
    /// Set when the runs differ in mode, so the figures measure different things.
    pub warning: Option<String>,
    pub cells: Vec<CellChange>,
    pub only_new: Vec<CellName>,
    pub only_old: Vec<CellName>,
}

impl Baseline {
    /// Compares `rows` (this run, in `mode`) with the baseline.
    pub fn compare(&self, rows: &[SummaryRow], mode: Mode) -> BaselineComparison {
        let key = |r: &SummaryRow| (r.variant.to_string(), r.placement.to_string());
        let old_of = |r: &SummaryRow| {
            let (v, p) = key(r);
            self.rows
                .iter()
                .find(|o| o.variant == v && o.placement == p)
        };
        let mut cells = Vec::new();
        let mut only_new = Vec::new();
        for row in rows {
            let (variant, placement) = key(row);
            match old_of(row) {
                Some(old) => cells.push(CellChange {
                    variant,
                    placement,
                    changes: Figure::compared(mode)
                        .iter()
                        .map(|&f| Change::of(f, f.of_baseline(old), f.of_row(row)))
                        .collect(),
                }),
                None => only_new.push(CellName { variant, placement }),
            }
        }
        let only_old = self
            .rows
            .iter()
            .filter(|o| {
                !rows
                    .iter()
                    .any(|r| key(r) == (o.variant.clone(), o.placement.clone()))
            })
            .map(|o| CellName {
                variant: o.variant.clone(),
                placement: o.placement.clone(),
            })
            .collect();
        BaselineComparison {
            dir: self.dir.clone(),
            command: self.command.clone(),
            rule: RULE,
            warning: self.mode.filter(|&m| m != mode).map(|m| {
                format!("the baseline ran --mode {m} and this run --mode {mode}: the figures measure different things")
            }),
            cells,
            only_new,
            only_old,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CellMetrics, summarize};
    use crate::placement::Placement;
    use crate::variant::Variant;

    fn spread(min: f64, max: f64) -> Spread {
        Spread {
            median: (min + max) / 2.0,
            min,
            max,
        }
    }

    #[test]
    fn a_change_is_real_only_when_the_ranges_do_not_overlap() {
        let c = Change::of(
            Figure::RoundsPerSec,
            spread(100.0, 120.0),
            spread(130.0, 150.0),
        );
        assert!(c.real);
        assert_eq!(c.ratio, Some(140.0 / 110.0));
        assert!(
            !Change::of(
                Figure::RoundsPerSec,
                spread(100.0, 120.0),
                spread(115.0, 150.0)
            )
            .real
        );
        let from_zero = Change::of(Figure::WhoopsPerRound, spread(0.0, 0.0), spread(0.0, 0.0));
        assert_eq!((from_zero.ratio, from_zero.real), (None, false));
    }

    #[test]
    fn cells_in_one_run_only_are_listed_as_such() {
        let m = |rt| CellMetrics {
            round_trip_p50_ns: rt,
            rounds_per_sec: 1000.0,
            ..Default::default()
        };
        let runs = vec![
            (Variant::Pipe, Placement::Split, m(1000)),
            (Variant::Futex, Placement::Split, m(500)),
        ];
        let rows = summarize(&runs, &Variant::ALL, &Placement::ALL);
        let old = |v: &str, rt: f64| BaselineRow {
            variant: v.into(),
            placement: "split".into(),
            repeats: 1,
            rounds_per_sec: spread(1000.0, 1000.0),
            whoops_per_round: Spread::default(),
            handoff_p50_ns: Spread::default(),
            round_trip_p50_ns: spread(rt, rt),
        };
        let baseline = Baseline {
            dir: "old".into(),
            command: "c".into(),
            mode: Some(Mode::Turns),
            rows: vec![old("pipe", 2000.0), old("gone", 1.0)],
        };
        let cmp = baseline.compare(&rows, Mode::Turns);
        assert_eq!(cmp.cells.len(), 1);
        let rt = &cmp.cells[0].changes[1];
        assert_eq!(
            (rt.metric, rt.ratio, rt.real),
            (Figure::RoundTripP50Ns, Some(0.5), true)
        );
        assert_eq!(cmp.only_new[0].variant, "futex");
        assert_eq!(cmp.only_old[0].variant, "gone");
        assert!(cmp.warning.is_none());
        assert!(baseline.compare(&rows, Mode::Free).warning.is_some());
    }
}
