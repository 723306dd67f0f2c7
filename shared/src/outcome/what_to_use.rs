//! "What to use": the answer a comparison was run for. Per mechanism, the properties that decide
//! a choice, those this run measured (whoops, latency, CPU, bypass) beside those each variant
//! declares and `crash` measures (what a holder's death leaves, what it needs, how async code
//! waits on it); then, per need, the mechanisms this run recommends and the evidence.

use super::compare::CompareReport;
use super::summary::SummaryRow;
use crate::placement::Placement;
use crate::variant::{Death, Mode, Overtaking, Variant};

/// One mechanism's row.
#[derive(Clone, Debug, PartialEq)]
pub struct UseRow {
    pub variant: Variant,
    /// False only where contenders share one open file description (`seed`).
    pub excludes: bool,
    /// Whoops per round in this run (turns mode), at the row's placement.
    pub whoops_per_round: Option<f64>,
    /// The wait this run measured at the row's placement: round trip p50 (turns) or the wait
    /// for the lock p50 (free), ns.
    pub latency_ns: Option<f64>,
    /// CPU time of all contenders per round, ns.
    pub cpu_ns_per_round: Option<f64>,
    /// Turns (turns mode) or acquisitions (free mode) of all contenders per second: what a
    /// lock that whoops pays for them included.
    pub rate: Option<f64>,
    /// How far a waiter can be overtaken: measured bypass p99 (free mode), else the bound the
    /// mechanism declares.
    pub overtaking: String,
    pub death: Death,
    pub needs: &'static str,
    pub from_async: &'static str,
}

/// A need and the answer this run gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub need: &'static str,
    /// Best first.
    pub pick: Vec<Variant>,
    pub why: String,
    /// Where the evidence is (a docs page, relative to the repository).
    pub evidence: &'static str,
}

/// The answer, for one comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct WhatToUse {
    /// The placement whose figures the rows show.
    pub placement: Placement,
    pub mode: Mode,
    pub rows: Vec<UseRow>,
    pub needs: Vec<Recommendation>,
}

/// The placement whose figures say most to a reader: two CPUs (where handoffs and barging show),
/// else one, else free.
fn chosen_placement(rows: &[SummaryRow]) -> Option<Placement> {
    [Placement::Split, Placement::SameCpu, Placement::Free]
        .into_iter()
        .find(|p| rows.iter().any(|r| r.placement == *p))
}

/// The answer from `report`'s cells (none before a cell has finished).
pub fn what_to_use(report: &CompareReport) -> Option<WhatToUse> {
    let summary = report.summary();
    let placement = chosen_placement(&summary)?;
    let mode = report.mode();
    let rows: Vec<UseRow> = summary
        .iter()
        .filter(|r| r.placement == placement)
        .map(|r| use_row(r, mode))
        .collect();
    let needs = recommend(&rows, mode);
    Some(WhatToUse {
        placement,
        mode,
        rows,
        needs,
    })
}

fn use_row(r: &SummaryRow, mode: Mode) -> UseRow {
    let profile = r.variant.spec().profile;
    let measured = |v: f64| (r.repeats > 0).then_some(v);
    let (latency, rate) = match mode {
        Mode::Turns => (r.round_trip_p50_ns.median, r.rounds_per_sec.median),
        Mode::Free => (r.handoff_p50_ns.median, r.acquisitions_per_sec.median),
    };
    let overtaking = if mode == Mode::Free && r.order_repeats > 0 {
        format!(
            "bypass p99 {:.0} ({})",
            r.order.bypass_p99.median,
            profile.overtaking.describe()
        )
    } else {
        profile.overtaking.describe().to_string()
    };
    UseRow {
        variant: r.variant,
        excludes: !r.variant.shares_description(),
        whoops_per_round: (mode == Mode::Turns)
            .then_some(r.whoops_per_round.median)
            .and_then(measured),
        latency_ns: measured(latency),
        cpu_ns_per_round: measured(r.cpu_ns_per_round.median),
        rate: measured(rate),
        overtaking,
        death: profile.death,
        needs: profile.needs,
        from_async: profile.from_async,
    }
}

/// The rows that exclude and satisfy `keep`, best first by `key` (smaller is better).
fn best(
    rows: &[UseRow],
    keep: impl Fn(&UseRow) -> bool,
    key: fn(&UseRow) -> Option<f64>,
) -> Vec<Variant> {
    let mut kept: Vec<(&UseRow, f64)> = rows
        .iter()
        .filter(|r| r.excludes && keep(r))
        .filter_map(|r| key(r).map(|k| (r, k)))
        .collect();
    kept.sort_by(|a, b| a.1.total_cmp(&b.1));
    kept.iter().map(|(r, _)| r.variant).collect()
}

/// Most turns or acquisitions per second first: a lock's whoops are paid for in it.
fn fastest(rows: &[UseRow], keep: impl Fn(&UseRow) -> bool) -> Vec<Variant> {
    best(rows, keep, |r| r.rate.map(|rate| -rate))
}

/// True if this run saw no whoops (or took no turns, so none could be seen).
fn handed_over(r: &UseRow) -> bool {
    r.whoops_per_round.is_none_or(|w| w == 0.0)
}

fn overtaking_of(v: Variant) -> Overtaking {
    v.spec().profile.overtaking
}

/// Up to three names, best first, for a reader.
fn names(vs: &[Variant]) -> String {
    if vs.is_empty() {
        return "none in this run".to_string();
    }
    vs.iter()
        .take(3)
        .map(|v| v.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The four needs every reader's question comes down to, answered from `rows`.
fn recommend(rows: &[UseRow], mode: Mode) -> Vec<Recommendation> {
    let crash = fastest(rows, |r| r.death.survivable());
    // Measured where this run took turns: no whoops at all. Otherwise, what the mechanism is.
    let turns = fastest(rows, |r| match r.whoops_per_round {
        Some(whoops) => whoops == 0.0,
        None => overtaking_of(r.variant) == Overtaking::Handoff,
    });
    // A wait is a handoff's latency only where nobody whooped meanwhile.
    let latency = best(rows, handed_over, |r| r.latency_ns);
    let bounded = fastest(rows, |r| {
        matches!(
            overtaking_of(r.variant),
            Overtaking::Fifo | Overtaking::BoundedInTime(_)
        )
    });
    let (wait, rate) = match mode {
        Mode::Turns => ("round trip", "rounds/s"),
        Mode::Free => ("wait", "acquisitions/s"),
    };
    vec![
        Recommendation {
            need: "exclusion that survives a crash",
            why: format!(
                "the kernel releases the lock or tells the next owner when the holder dies; most {rate} here: {}",
                names(&crash)
            ),
            pick: crash,
            evidence: "docs/crash.md",
        },
        Recommendation {
            need: "strict turn-taking",
            why: format!(
                "no whoops in this run: nobody took the lock out of turn; most {rate} here: {}",
                names(&turns)
            ),
            pick: turns,
            evidence: "docs/reference.md",
        },
        Recommendation {
            need: "lowest latency on one host",
            why: format!(
                "lowest {wait} p50 in this run among those that did not whoop: {}",
                names(&latency)
            ),
            pick: latency,
            evidence: "docs/overhead.md",
        },
        Recommendation {
            need: "bounded waiting with many contenders",
            why: format!(
                "FIFO or a time bound on overtaking, where barging locks let a waiter lose without bound; most {rate} here: {}",
                names(&bounded)
            ),
            pick: bounded,
            evidence: "docs/contenders.md",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::summary::Spread;

    fn row(variant: Variant, round_trip: f64, whoops: f64) -> SummaryRow {
        let at = |median: f64| Spread::of(vec![median]);
        SummaryRow {
            variant,
            placement: Placement::Split,
            repeats: 3,
            rounds_per_sec: at(1e9 / round_trip),
            whoops_per_round: at(whoops),
            overlaps: at(0.0),
            wrong_reads: at(0.0),
            handoff_p50_ns: at(round_trip / 2.0),
            handoff_p99_ns: at(round_trip),
            handoff_max_ns: at(round_trip),
            round_trip_p50_ns: at(round_trip),
            cpu_ns_per_round: at(1000.0),
            x_pipe: None,
            jain_index: at(1.0),
            jain_repeats: 3,
            barging_rate: at(0.0),
            acquisitions_per_sec: at(2e9 / round_trip),
            wait_p999_ns: at(round_trip),
            order: Default::default(),
            order_repeats: 0,
        }
    }

    fn rows(cells: &[(Variant, f64, f64)]) -> Vec<UseRow> {
        cells
            .iter()
            .map(|&(v, rt, w)| use_row(&row(v, rt, w), Mode::Turns))
            .collect()
    }

    #[test]
    fn each_need_gets_the_fastest_mechanism_that_has_the_property() {
        let rows = rows(&[
            (Variant::Seed, 100.0, 3.0),
            (Variant::Ofd, 90_000.0, 150.0),
            (Variant::Posix, 80_000.0, 140.0),
            (Variant::Eventfd, 40_000.0, 0.0),
            (Variant::Pipe, 42_000.0, 0.0),
            (Variant::Futex, 39_000.0, 0.0),
            (Variant::Ticket, 41_000.0, 0.0),
            (Variant::FairFutex, 45_000.0, 0.0),
            (Variant::RobustMutex, 85_000.0, 90.0),
        ]);
        let needs = recommend(&rows, Mode::Turns);
        let pick = |need: &str| {
            needs
                .iter()
                .find(|n| n.need == need)
                .map(|n| n.pick.clone())
                .unwrap()
        };
        // The seed is fastest of all, but excludes nobody: never recommended.
        assert!(needs.iter().all(|n| !n.pick.contains(&Variant::Seed)));
        assert_eq!(
            pick("exclusion that survives a crash"),
            [Variant::Posix, Variant::RobustMutex, Variant::Ofd]
        );
        assert_eq!(
            pick("strict turn-taking")[..3],
            [Variant::Futex, Variant::Eventfd, Variant::Ticket]
        );
        // OFD whooped: however fast, it is no handoff's latency.
        assert!(!pick("lowest latency on one host").contains(&Variant::Ofd));
        assert_eq!(pick("lowest latency on one host")[0], Variant::Futex);
        assert_eq!(
            pick("bounded waiting with many contenders"),
            [Variant::Ticket, Variant::FairFutex]
        );
        assert!(needs.iter().all(|n| n.evidence.starts_with("docs/")));
    }

    #[test]
    fn a_handoff_that_whooped_in_this_run_is_not_recommended_for_turn_taking() {
        let rows = rows(&[
            (Variant::Eventfd, 40_000.0, 0.0),
            (Variant::Pipe, 30_000.0, 2.0),
        ]);
        let turns = &recommend(&rows, Mode::Turns)[1];
        assert_eq!(turns.pick, [Variant::Eventfd]);
    }

    #[test]
    fn rows_show_the_declared_properties() {
        let r = &rows(&[(Variant::Seed, 100.0, 3.0), (Variant::Ticket, 1.0, 0.0)]);
        assert!(!r[0].excludes);
        assert_eq!(r[0].death, Death::NoExclusion);
        assert_eq!(r[1].overtaking, "none (FIFO)");
        assert_eq!(r[1].whoops_per_round, Some(0.0));
    }
}
