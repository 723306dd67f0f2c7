//! A run compared with an earlier one (`compare --baseline DIR`): per cell both runs have, the
//! ratio new/old of a few headline figures, and whether the change is beyond the noise.
//!
//! The rule: the Mann–Whitney U test on the two runs' repeats of the figure ([`rank_test`],
//! exact for up to 40 repeats in all) calls a change real when its two-sided p-value is below
//! [`ALPHA`]. It reads every repeat, asks nothing of the distribution, and says "too few
//! repeats" when the two numbers of repeats cannot reach the level whatever they show (5
//! against 5 can, 4 against 5 cannot). It cannot tell a change in the code from a change in the machine between
//! the runs: docs/measures.md gives how often it calls a change between two runs of the same
//! build on the reference machine.

use serde::{Deserialize, Serialize};

use super::rank_test::{self, mann_whitney};
use super::{CellMetrics, Spread, SummaryRow};
use crate::placement::Placement;
use crate::variant::{Mode, Variant};

/// The level: a change is real when the rank test's two-sided p-value is below it.
pub const ALPHA: f64 = 0.01;

/// The rule, as every rendering states it.
pub const RULE: &str = "a change is real when the Mann-Whitney U test on the two runs' repeats \
                        (two-sided, exact up to 40 repeats in all) gives p < 0.01; with too \
                        few repeats no result can reach that (5 against 5 can, 4 against 5 \
                        cannot) and the cell says so";

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

/// One repeat of a cell in the earlier run, as its `summary.json`'s `runs` lists it: the
/// figures the rank test reads.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BaselineRepeat {
    pub variant: String,
    pub placement: String,
    pub metrics: RepeatFigures,
}

/// The figures of one repeat that a comparison tests (`runs[].metrics` in `summary.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RepeatFigures {
    pub rounds_per_sec: f64,
    pub round_trip_p50_ns: f64,
    pub whoops_per_round: f64,
    pub handoff_p50_ns: f64,
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
    /// Every repeat of every cell, for the rank test.
    pub repeats: Vec<BaselineRepeat>,
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

    fn of_repeat(self, m: &RepeatFigures) -> f64 {
        match self {
            Figure::RoundsPerSec => m.rounds_per_sec,
            Figure::RoundTripP50Ns => m.round_trip_p50_ns,
            Figure::WhoopsPerRound => m.whoops_per_round,
            Figure::HandoffP50Ns => m.handoff_p50_ns,
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

/// What the rank test says of one figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// p < [`ALPHA`].
    Real,
    /// p ≥ [`ALPHA`]: the difference is within what the repeats scatter.
    WithinNoise,
    /// No result could reach [`ALPHA`] with these numbers of repeats (or one run has none).
    TooFewRepeats,
}

/// One figure of one cell in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub metric: Figure,
    pub old: Spread,
    pub new: Spread,
    /// new/old of the medians; `None` when the old median is 0.
    pub ratio: Option<f64>,
    /// The rank test calls the change real ([`RULE`]).
    pub real: bool,
    /// The rank test's two-sided p-value; `None` when a run has no repeat of the cell.
    pub p: Option<f64>,
    pub verdict: Verdict,
}

impl Change {
    /// The figure's medians and intervals (`old`, `new`) and its repeats in either run.
    fn of(metric: Figure, (old, new): (Spread, Spread), repeats: (&[f64], &[f64])) -> Change {
        let test = mann_whitney(repeats.0, repeats.1);
        let verdict = match test {
            Some(t) if t.p < ALPHA => Verdict::Real,
            Some(t) if t.min_p < ALPHA => Verdict::WithinNoise,
            _ => Verdict::TooFewRepeats,
        };
        Change {
            metric,
            old,
            new,
            ratio: (old.median != 0.0).then(|| new.median / old.median),
            real: verdict == Verdict::Real,
            p: test.map(|t: rank_test::RankTest| t.p),
            verdict,
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
    /// The level of the rule's test ([`ALPHA`]).
    pub alpha: f64,
    /// Set when the runs differ in mode, so the figures measure different things.
    pub warning: Option<String>,
    pub cells: Vec<CellChange>,
    pub only_new: Vec<CellName>,
    pub only_old: Vec<CellName>,
}

impl Baseline {
    /// Compares `rows` (this run, in `mode`, summarised from `runs`) with the baseline.
    pub fn compare(
        &self,
        rows: &[SummaryRow],
        runs: &[(Variant, Placement, CellMetrics)],
        mode: Mode,
    ) -> BaselineComparison {
        let key = |r: &SummaryRow| (r.variant.to_string(), r.placement.to_string());
        let mut cells = Vec::new();
        let mut only_new = Vec::new();
        for row in rows {
            let (variant, placement) = key(row);
            let Some(old) = self
                .rows
                .iter()
                .find(|o| o.variant == variant && o.placement == placement)
            else {
                only_new.push(CellName { variant, placement });
                continue;
            };
            let changes = Figure::compared(mode)
                .iter()
                .map(|&f| {
                    let new_repeats = this_run_repeats(runs, row, f);
                    let old_repeats = self.repeats_of(old, f);
                    Change::of(
                        f,
                        (f.of_baseline(old), f.of_row(row)),
                        (&old_repeats, &new_repeats),
                    )
                })
                .collect();
            cells.push(CellChange {
                variant,
                placement,
                changes,
            });
        }
        BaselineComparison {
            dir: self.dir.clone(),
            command: self.command.clone(),
            rule: RULE,
            alpha: ALPHA,
            warning: self.mode.filter(|&m| m != mode).map(|m| {
                format!("the baseline ran --mode {m} and this run --mode {mode}: the figures measure different things")
            }),
            cells,
            only_new,
            only_old: self.only_old(rows),
        }
    }

    /// The earlier run's repeats of `figure` in the cell of `row`.
    fn repeats_of(&self, row: &BaselineRow, figure: Figure) -> Vec<f64> {
        self.repeats
            .iter()
            .filter(|r| r.variant == row.variant && r.placement == row.placement)
            .map(|r| figure.of_repeat(&r.metrics))
            .collect()
    }

    /// The earlier run's cells that this run does not have.
    fn only_old(&self, rows: &[SummaryRow]) -> Vec<CellName> {
        self.rows
            .iter()
            .filter(|o| {
                !rows.iter().any(|r| {
                    r.variant.to_string() == o.variant && r.placement.to_string() == o.placement
                })
            })
            .map(|o| CellName {
                variant: o.variant.clone(),
                placement: o.placement.clone(),
            })
            .collect()
    }
}

/// This run's repeats of `figure` in the cell of `row`.
fn this_run_repeats(
    runs: &[(Variant, Placement, CellMetrics)],
    row: &SummaryRow,
    figure: Figure,
) -> Vec<f64> {
    runs.iter()
        .filter(|(v, p, _)| *v == row.variant && *p == row.placement)
        .map(|(_, _, m)| {
            figure.of_repeat(&RepeatFigures {
                rounds_per_sec: m.rounds_per_sec,
                round_trip_p50_ns: m.round_trip_p50_ns as f64,
                whoops_per_round: m.whoops_per_round,
                handoff_p50_ns: m.handoff_p50_ns as f64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(xs: &[f64]) -> Spread {
        Spread::of(xs.to_vec())
    }

    fn change(old: &[f64], new: &[f64]) -> Change {
        Change::of(Figure::RoundsPerSec, (spread(old), spread(new)), (old, new))
    }

    #[test]
    fn identical_repeats_are_no_change() {
        let xs = [100.0, 104.0, 98.0, 110.0, 101.0, 99.0, 103.0, 97.0];
        let c = change(&xs, &xs);
        assert_eq!(
            (c.real, c.verdict, c.p),
            (false, Verdict::WithinNoise, Some(1.0))
        );
        assert_eq!(c.ratio, Some(1.0));
    }

    #[test]
    fn clearly_shifted_repeats_are_a_change_at_the_stated_level() {
        let old = [100.0, 104.0, 98.0, 110.0, 101.0, 99.0, 103.0, 97.0];
        let new: Vec<f64> = old.iter().map(|x| x * 1.3).collect();
        let c = change(&old, &new);
        assert!(c.real);
        assert_eq!(c.verdict, Verdict::Real);
        assert!(c.p.unwrap() < ALPHA);
        // Overlapping ranges can still be a change: the test reads every repeat.
        let new = [108.0, 109.0, 111.0, 112.0, 113.0, 114.0, 115.0, 116.0];
        let c = change(&old, &new);
        assert!(spread(&new).min < spread(&old).max);
        assert!(c.real, "p = {:?}", c.p);
    }

    #[test]
    fn too_few_repeats_cannot_call_a_change() {
        let c = change(&[100.0, 101.0, 102.0], &[200.0, 201.0, 202.0]);
        assert_eq!((c.real, c.verdict), (false, Verdict::TooFewRepeats));
        assert_eq!(c.p, Some(0.1), "3 against 3 can do no better");
        let c = change(&[], &[1.0, 2.0]);
        assert_eq!((c.verdict, c.p), (Verdict::TooFewRepeats, None));
        let from_zero = change(&[0.0; 5], &[0.0; 5]);
        assert_eq!(
            (from_zero.ratio, from_zero.real, from_zero.verdict),
            (None, false, Verdict::WithinNoise)
        );
    }

    #[test]
    fn cells_in_one_run_only_are_listed_as_such() {
        let m = |rt| CellMetrics {
            round_trip_p50_ns: rt,
            rounds_per_sec: 1000.0,
            ..Default::default()
        };
        let runs: Vec<_> = (0..5)
            .flat_map(|i| {
                [
                    (Variant::Pipe, Placement::Split, m(1000 + i)),
                    (Variant::Futex, Placement::Split, m(500 + i)),
                ]
            })
            .collect();
        let rows = crate::outcome::summarize(&runs, &Variant::ALL, &Placement::ALL);
        let old = |v: &str, rt: f64| BaselineRow {
            variant: v.into(),
            placement: "split".into(),
            repeats: 5,
            rounds_per_sec: spread(&[1000.0]),
            whoops_per_round: Spread::default(),
            handoff_p50_ns: Spread::default(),
            round_trip_p50_ns: spread(&[rt]),
        };
        let repeat = |v: &str, rt: f64| BaselineRepeat {
            variant: v.into(),
            placement: "split".into(),
            metrics: RepeatFigures {
                rounds_per_sec: 1000.0,
                round_trip_p50_ns: rt,
                ..Default::default()
            },
        };
        let baseline = Baseline {
            dir: "old".into(),
            command: "c".into(),
            mode: Some(Mode::Turns),
            rows: vec![old("pipe", 2000.0), old("gone", 1.0)],
            repeats: (0..5)
                .map(|i| repeat("pipe", 2000.0 + f64::from(i)))
                .collect(),
        };
        let cmp = baseline.compare(&rows, &runs, Mode::Turns);
        assert_eq!(cmp.cells.len(), 1);
        let [rate, rt, _] = &cmp.cells[0].changes[..] else {
            panic!("three figures in turns mode");
        };
        assert_eq!(
            (rt.metric, rt.ratio, rt.real),
            (Figure::RoundTripP50Ns, Some(1002.0 / 2000.0), true)
        );
        assert_eq!(rt.p, Some(2.0 / 252.0), "5 against 5, no overlap");
        assert_eq!((rate.real, rate.p), (false, Some(1.0)));
        assert_eq!(cmp.only_new[0].variant, "futex");
        assert_eq!(cmp.only_old[0].variant, "gone");
        assert!(cmp.warning.is_none());
        assert!(baseline.compare(&rows, &runs, Mode::Free).warning.is_some());
    }
}
