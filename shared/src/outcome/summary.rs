//! From runs to the figures people compare: one run's numbers with all contenders combined
//! ([`CellMetrics`]), and per variant and placement the median over repeats with its interval
//! (how far another run's median may land, [`super::interval`]) and the range (min–max), with
//! the round trip as a multiple of the pipe baseline ([`SummaryRow`]).

use serde::{Deserialize, Serialize};

use super::RunReport;
use crate::measure::new_histogram;
use crate::order::OrderStats;
use crate::placement::Placement;
use crate::variant::Variant;

/// One run's numbers, all contenders combined. A "round" is one turn of every contender
/// (`turns` mode) or one acquisition by each (`free` mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CellMetrics {
    /// Rounds completed (the fewest turns or acquisitions of any contender).
    pub rounds: u64,
    pub rounds_per_sec: f64,
    /// Whoops of all contenders per round.
    pub whoops_per_round: f64,
    /// Overlaps seen by all contenders.
    pub overlaps: u64,
    pub wrong_reads: u64,
    /// The wait over all contenders: handoff latency (`turns`) or the wait for the lock
    /// (`free`).
    pub handoff_p50_ns: u64,
    pub handoff_p99_ns: u64,
    pub handoff_max_ns: u64,
    /// Round trip over all contenders (`turns` mode; 0 in `free` mode).
    pub round_trip_p50_ns: u64,
    /// User + system CPU time of all contenders per round.
    pub cpu_ns_per_round: f64,
    /// Jain's fairness index (see `run --json`), if defined.
    pub jain_index: Option<f64>,
    /// The barging rate (see `run --json`).
    pub barging_rate: f64,
    /// Acquisitions (`free`) or turns (`turns`) of all contenders per second of wall time: the
    /// throughput the frontier plot shows.
    #[serde(default)]
    pub acquisitions_per_sec: f64,
    /// The wait over all contenders, 99.9th percentile.
    #[serde(default)]
    pub wait_p999_ns: u64,
    /// `free` mode: the order measures of `run --json`'s `order` (none in `turns` mode).
    #[serde(default)]
    pub order: OrderFigures,
}

/// The order measures a cell keeps of one run (see [`crate::order::OrderStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderFigures {
    pub bypass_p50: Option<u64>,
    pub bypass_p99: Option<u64>,
    pub bypass_max: Option<u64>,
    pub lwss: Option<f64>,
    pub mttr: Option<f64>,
    /// Contenders waiting at a grant, the one granted included, averaged.
    pub contending: Option<f64>,
}

impl OrderFigures {
    fn of(order: Option<&OrderStats>) -> Self {
        let Some(o) = order else {
            return OrderFigures::default();
        };
        // Bypass percentiles need waits that waited; none means nobody was ever overtaken.
        OrderFigures {
            bypass_p50: Some(o.bypass_p50),
            bypass_p99: Some(o.bypass_p99),
            bypass_max: Some(o.bypass_max),
            lwss: o.lwss,
            mttr: o.mttr,
            contending: (o.window > 0).then_some(o.contending_mean),
        }
    }
}

impl CellMetrics {
    /// Combines every contender of one run.
    pub fn of(r: &RunReport) -> Self {
        let all: Vec<_> = r.contenders().collect();
        let rounds = all.iter().map(|s| s.rounds).min().unwrap_or(0);
        let per_round = |x: f64| if rounds == 0 { 0.0 } else { x / rounds as f64 };
        let wall = all.iter().map(|s| s.wall_ns).max().unwrap_or(0);
        let wait = r.merged_wait();
        let mut round_trip = new_histogram();
        for s in &all {
            let _ = round_trip.add(&s.round_trip);
        }
        let q = |h: &hdrhistogram::Histogram<u64>, q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        CellMetrics {
            rounds,
            rounds_per_sec: if wall == 0 {
                0.0
            } else {
                rounds as f64 * 1e9 / wall as f64
            },
            whoops_per_round: per_round(sum(all.iter().map(|s| s.whoops)) as f64),
            overlaps: sum(all.iter().map(|s| s.overlaps)),
            wrong_reads: sum(all.iter().map(|s| s.wrong_reads)),
            handoff_p50_ns: q(&wait, 0.5),
            handoff_p99_ns: q(&wait, 0.99),
            handoff_max_ns: wait.max(),
            round_trip_p50_ns: q(&round_trip, 0.5),
            cpu_ns_per_round: per_round(sum(all.iter().map(|s| s.rusage.cpu_ns)) as f64),
            jain_index: r.jain_index(),
            barging_rate: r.barging_rate(),
            acquisitions_per_sec: if wall == 0 {
                0.0
            } else {
                sum(all.iter().map(|s| s.rounds)) as f64 * 1e9 / wall as f64
            },
            wait_p999_ns: q(&wait, 0.999),
            order: OrderFigures::of(r.order.as_ref()),
        }
    }
}

/// Adds counts that came from other processes without trusting them not to overflow.
fn sum(xs: impl Iterator<Item = u64>) -> u64 {
    xs.fold(0, u64::saturating_add)
}

/// Median, interval and range over repeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The interval for the median: two of the repeats, chosen so that it holds the median of
    /// the repeats' distribution with chance `level` ([`super::interval`]). Files from before
    /// it existed read as 0.
    #[serde(default)]
    pub lo: f64,
    #[serde(default)]
    pub hi: f64,
    /// That chance, exact for the number of repeats: at least 0.95 from 6 repeats on, less
    /// below (0.5 for 2, 0 for 1).
    #[serde(default)]
    pub level: f64,
}

impl Spread {
    /// Of `values` (empty: all zero).
    pub fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        let (lo, hi, level) = super::interval::ranks(n);
        Spread {
            median,
            min: values[0],
            max: values[n - 1],
            lo: values[lo - 1],
            hi: values[hi - 1],
            level,
        }
    }

    /// The interval widened, if need be, to the figure's resolution `step` either side of the
    /// median: repeats of a figure that moves in steps (a rate counted over a few rounds, a
    /// histogram's bucket) can all sit on one step while another run sits on the next, and no
    /// order statistic can see that (docs/measures.md). A median of 0 is left alone: a count
    /// that is 0 in most repeats (a handoff that does not whoop) is no step away from anything.
    pub fn at_resolution(self, step: f64) -> Spread {
        if step.is_nan() || step <= 0.0 || self.level == 0.0 || self.median == 0.0 {
            return self;
        }
        Spread {
            lo: self.lo.min((self.median - step).max(0.0)),
            hi: self.hi.max(self.median + step),
            ..self
        }
    }
}

/// The relative width of one HdrHistogram bucket at its coarsest (3 significant digits: 2048
/// sub-buckets, so a bucket is at most 1/1024 of its value): a percentile cannot be finer.
pub const HISTOGRAM_RESOLUTION: f64 = 1.0 / 1024.0;

/// One line of the table: a variant on a placement, over its repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub variant: Variant,
    pub placement: Placement,
    pub repeats: usize,
    pub rounds_per_sec: Spread,
    pub whoops_per_round: Spread,
    pub overlaps: Spread,
    pub wrong_reads: Spread,
    pub handoff_p50_ns: Spread,
    pub handoff_p99_ns: Spread,
    pub handoff_max_ns: Spread,
    pub round_trip_p50_ns: Spread,
    pub cpu_ns_per_round: Spread,
    /// Median round trip p50 divided by the pipe's on the same placement.
    pub x_pipe: Option<f64>,
    /// Over the repeats where it was defined ([`SummaryRow::jain_repeats`] of them).
    pub jain_index: Spread,
    /// Repeats with a Jain index: in `free` mode, those whose common window was not empty.
    #[serde(default)]
    pub jain_repeats: usize,
    pub barging_rate: Spread,
    #[serde(default)]
    pub acquisitions_per_sec: Spread,
    #[serde(default)]
    pub wait_p999_ns: Spread,
    /// The order measures over the repeats that had them ([`SummaryRow::order_repeats`]).
    #[serde(default)]
    pub order: OrderSpread,
    #[serde(default)]
    pub order_repeats: usize,
}

/// The order measures of a cell, each over the repeats where it was defined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderSpread {
    pub bypass_p50: Spread,
    pub bypass_p99: Spread,
    pub bypass_max: Spread,
    pub lwss: Spread,
    pub mttr: Spread,
    pub contending: Spread,
}

impl OrderSpread {
    fn of(cell: &[&CellMetrics]) -> Self {
        let over = |f: fn(&OrderFigures) -> Option<f64>| {
            Spread::of(cell.iter().filter_map(|m| f(&m.order)).collect())
        };
        OrderSpread {
            bypass_p50: over(|o| o.bypass_p50.map(|x| x as f64)),
            bypass_p99: over(|o| o.bypass_p99.map(|x| x as f64)),
            bypass_max: over(|o| o.bypass_max.map(|x| x as f64)),
            lwss: over(|o| o.lwss),
            mttr: over(|o| o.mttr),
            contending: over(|o| o.contending),
        }
    }
}

/// One table row: a cell's repeats, each figure with its interval (at least the figure's
/// resolution, [`Spread::at_resolution`]).
fn row_of(variant: Variant, placement: Placement, cell: &[&CellMetrics]) -> SummaryRow {
    let spread = |f: fn(&CellMetrics) -> f64| Spread::of(cell.iter().map(|m| f(m)).collect());
    // A count over k rounds moves in steps of 1/k of itself; a percentile in buckets.
    let fewest = cell.iter().map(|m| m.rounds).min().unwrap_or(0).max(1) as f64;
    let per_round = |f: fn(&CellMetrics) -> f64| {
        let s = spread(f);
        s.at_resolution(s.median / fewest)
    };
    let percentile = |f: fn(&CellMetrics) -> f64| {
        let s = spread(f);
        s.at_resolution(s.median * HISTOGRAM_RESOLUTION)
    };
    SummaryRow {
        variant,
        placement,
        repeats: cell.len(),
        rounds_per_sec: per_round(|m| m.rounds_per_sec),
        whoops_per_round: spread(|m| m.whoops_per_round).at_resolution(1.0 / fewest),
        overlaps: spread(|m| m.overlaps as f64),
        wrong_reads: spread(|m| m.wrong_reads as f64),
        handoff_p50_ns: percentile(|m| m.handoff_p50_ns as f64),
        handoff_p99_ns: percentile(|m| m.handoff_p99_ns as f64),
        handoff_max_ns: percentile(|m| m.handoff_max_ns as f64),
        round_trip_p50_ns: percentile(|m| m.round_trip_p50_ns as f64),
        cpu_ns_per_round: spread(|m| m.cpu_ns_per_round),
        x_pipe: None,
        jain_index: Spread::of(cell.iter().filter_map(|m| m.jain_index).collect()),
        jain_repeats: cell.iter().filter(|m| m.jain_index.is_some()).count(),
        barging_rate: spread(|m| m.barging_rate),
        acquisitions_per_sec: spread(|m| m.acquisitions_per_sec),
        wait_p999_ns: spread(|m| m.wait_p999_ns as f64),
        order: OrderSpread::of(cell),
        order_repeats: cell.iter().filter(|m| m.order.bypass_max.is_some()).count(),
    }
}

/// Summarises `runs` (variant, placement, metrics), in the order of `variants` × `placements`.
pub fn summarize(
    runs: &[(Variant, Placement, CellMetrics)],
    variants: &[Variant],
    placements: &[Placement],
) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    for &placement in placements {
        for &variant in variants {
            let cell: Vec<&CellMetrics> = runs
                .iter()
                .filter(|(v, p, _)| *v == variant && *p == placement)
                .map(|(_, _, m)| m)
                .collect();
            if cell.is_empty() {
                continue;
            }
            rows.push(row_of(variant, placement, &cell));
        }
    }
    let pipes: Vec<(Placement, f64)> = rows
        .iter()
        .filter(|r| r.variant == crate::variant::RATIO_BASELINE)
        .map(|r| (r.placement, r.round_trip_p50_ns.median))
        .collect();
    for row in &mut rows {
        row.x_pipe = pipes
            .iter()
            .find(|(p, _)| *p == row.placement)
            .filter(|(_, pipe)| *pipe > 0.0)
            .map(|(_, pipe)| row.round_trip_p50_ns.median / pipe);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_median_the_interval_and_the_range() {
        let s = Spread::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!((s.lo, s.hi, s.level), (1.0, 3.0, 0.75));
        assert_eq!(Spread::of(vec![4.0, 1.0]).median, 2.5);
        assert_eq!(Spread::of(Vec::new()), Spread::default());
        let one = Spread::of(vec![7.0]);
        assert_eq!((one.lo, one.hi, one.level), (7.0, 7.0, 0.0));
        // Ten repeats: the 2nd and the 9th, at 97.9%.
        let ten = Spread::of((1..=10).rev().map(f64::from).collect());
        assert_eq!(
            (ten.min, ten.lo, ten.median, ten.hi, ten.max),
            (1.0, 2.0, 5.5, 9.0, 10.0)
        );
        assert!((ten.level - 0.978_515_625).abs() < 1e-12);
    }

    #[test]
    fn an_interval_is_at_least_the_figures_resolution_either_side_of_the_median() {
        // Eight repeats of a rate over 12 rounds, all on one step: a step either side.
        let flat = Spread::of(vec![125.0; 8]).at_resolution(125.0 / 12.0);
        assert!((flat.lo - (125.0 - 125.0 / 12.0)).abs() < 1e-9);
        assert!((flat.hi - (125.0 + 125.0 / 12.0)).abs() < 1e-9);
        // Wider than the step already: unchanged; never below zero; one repeat: no interval.
        let wide = Spread::of((1..=8).map(f64::from).collect());
        assert_eq!(wide.at_resolution(0.1), wide);
        assert_eq!(Spread::of(vec![0.5; 8]).at_resolution(2.0).lo, 0.0);
        let one = Spread::of(vec![7.0]);
        assert_eq!(one.at_resolution(1.0), one);
        let zero = Spread::of(vec![0.0; 8]);
        assert_eq!(zero.at_resolution(0.1), zero);
    }

    #[test]
    fn x_pipe_is_relative_to_the_pipe_on_the_same_placement() {
        let m = |rt| CellMetrics {
            round_trip_p50_ns: rt,
            ..Default::default()
        };
        let runs = vec![
            (Variant::Pipe, Placement::Split, m(1000)),
            (Variant::Futex, Placement::Split, m(500)),
            (Variant::Futex, Placement::SameCpu, m(700)),
        ];
        let rows = summarize(&runs, &Variant::ALL, &Placement::ALL);
        let futex_split = rows
            .iter()
            .find(|r| r.variant == Variant::Futex && r.placement == Placement::Split)
            .unwrap();
        assert_eq!(futex_split.x_pipe, Some(0.5));
        let futex_same = rows
            .iter()
            .find(|r| r.variant == Variant::Futex && r.placement == Placement::SameCpu)
            .unwrap();
        assert_eq!(futex_same.x_pipe, None, "no pipe run on that placement");
    }
}
