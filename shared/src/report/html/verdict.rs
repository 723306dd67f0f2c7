//! The verdict: three sentences written from this run's figures. Which cells they name and
//! what they say about them is computed here; only the sentence frames are fixed.

use crate::outcome::SummaryRow;
use crate::report::family::Family;
use crate::report::summary::{fmt_count, fmt_rate};
use crate::text::fmt_ns;
use crate::variant::Mode;

/// The three sentences, or one saying that nothing has finished yet.
pub fn verdict(rows: &[SummaryRow], mode: Mode) -> Vec<String> {
    if rows.is_empty() {
        return vec!["No cell has finished yet; this page is rewritten after each one.".into()];
    }
    vec![
        match mode {
            Mode::Turns => who_got_the_turn(rows),
            Mode::Free => who_got_the_lock(rows),
        },
        speed(rows, mode),
        exclusion_and_cost(rows),
    ]
}

fn cell(r: &SummaryRow) -> String {
    format!("{} on {}", r.variant, r.placement)
}

/// The row with the largest `f`, and with the smallest.
fn extremes(rows: &[SummaryRow], f: impl Fn(&SummaryRow) -> f64) -> (&SummaryRow, &SummaryRow) {
    let max = rows.iter().max_by(|a, b| f(a).total_cmp(&f(b)));
    let min = rows.iter().min_by(|a, b| f(a).total_cmp(&f(b)));
    // `rows` is not empty (checked by `verdict`).
    (max.unwrap_or(&rows[0]), min.unwrap_or(&rows[0]))
}

/// The families of `rows`, named in report order: "explicit handoffs and FIFO locks".
fn families(rows: &[&SummaryRow]) -> String {
    let names: Vec<&str> = Family::ALL
        .iter()
        .filter(|f| rows.iter().any(|r| Family::of(r.variant) == **f))
        .map(|f| f.title())
        .collect();
    match names.as_slice() {
        [] => "none".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `turns` mode: who wasted wakeups on a turn that was not theirs.
fn who_got_the_turn(rows: &[SummaryRow]) -> String {
    let (worst, _) = extremes(rows, |r| r.whoops_per_round.median);
    let clean: Vec<&SummaryRow> = rows
        .iter()
        .filter(|r| r.whoops_per_round.max == 0.0)
        .collect();
    if worst.whoops_per_round.median == 0.0 {
        return format!(
            "No cell whooped: all {} handed the turn straight to the contender whose turn it was.",
            rows.len()
        );
    }
    format!(
        "Of all cells, {} woke most often for a turn that was not its own: {} whoops per round; \
         {} of {} cells never whooped in any repeat ({}).",
        cell(worst),
        fmt_count(worst.whoops_per_round.median),
        clean.len(),
        rows.len(),
        families(&clean),
    )
}

/// `free` mode: who took the lock back while others waited.
fn who_got_the_lock(rows: &[SummaryRow]) -> String {
    let (worst, _) = extremes(rows, |r| r.barging_rate.median);
    let fair: Vec<&SummaryRow> = rows.iter().filter(|r| r.barging_rate.max == 0.0).collect();
    if worst.barging_rate.median == 0.0 {
        return format!(
            "No cell barged: in all {} the lock went to a waiter, never back to its holder.",
            rows.len()
        );
    }
    format!(
        "Of all cells, {} barged most: the holder took the lock back while another waited in \
         {:.0}% of acquisitions; {} of {} cells never barged in any repeat ({}).",
        cell(worst),
        100.0 * worst.barging_rate.median,
        fair.len(),
        rows.len(),
        families(&fair),
    )
}

/// The fastest and slowest cell: by round trip in `turns` mode, by wait in `free` mode.
fn speed(rows: &[SummaryRow], mode: Mode) -> String {
    let timed: Vec<SummaryRow> = rows
        .iter()
        .filter(|r| latency(r, mode) > 0.0)
        .cloned()
        .collect();
    if timed.is_empty() {
        return "No cell recorded a latency.".into();
    }
    let (slow, fast) = extremes(&timed, |r| latency(r, mode));
    let what = match mode {
        Mode::Turns => "round trip",
        Mode::Free => "wait for the lock",
    };
    let x_pipe = |r: &SummaryRow| {
        r.x_pipe
            .filter(|_| mode == Mode::Turns)
            .map_or(String::new(), |x| format!(", {}× the pipe's", fmt_times(x)))
    };
    format!(
        "The shortest median {what} was {} at {}{} ({} rounds/s), the longest {} at {}{}, {} \
         times as long.",
        cell(fast),
        fmt_ns(latency(fast, mode)),
        x_pipe(fast),
        fmt_rate(fast.rounds_per_sec.median),
        cell(slow),
        fmt_ns(latency(slow, mode)),
        x_pipe(slow),
        fmt_times(latency(slow, mode) / latency(fast, mode)),
    )
}

fn latency(r: &SummaryRow, mode: Mode) -> f64 {
    match mode {
        Mode::Turns => r.round_trip_p50_ns.median,
        Mode::Free => r.handoff_p50_ns.median,
    }
}

/// Whether mutual exclusion held, and the CPU price of the dearest cell.
fn exclusion_and_cost(rows: &[SummaryRow]) -> String {
    let broken: Vec<String> = rows
        .iter()
        .filter(|r| r.overlaps.max > 0.0)
        .map(|r| format!("{} ({:.0} overlaps)", cell(r), r.overlaps.median))
        .collect();
    let exclusion = if broken.is_empty() {
        format!("Mutual exclusion held in all {} cells", rows.len())
    } else {
        format!(
            "Mutual exclusion failed in {} of {} cells: {}",
            broken.len(),
            rows.len(),
            broken.join(", ")
        )
    };
    let (dear, cheap) = extremes(rows, |r| r.cpu_ns_per_round.median);
    let times = if cheap.cpu_ns_per_round.median > 0.0 {
        format!(
            ", {} times that of {}",
            fmt_times(dear.cpu_ns_per_round.median / cheap.cpu_ns_per_round.median),
            cell(cheap)
        )
    } else {
        String::new()
    };
    format!(
        "{exclusion}; the dearest in CPU was {} at {} per round{times}.",
        cell(dear),
        fmt_ns(dear.cpu_ns_per_round.median),
    )
}

/// A ratio with the precision it deserves: `0.86`, `12.4`, `2841`.
fn fmt_times(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else if x < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CellMetrics, summarize};
    use crate::placement::Placement;
    use crate::variant::Variant;

    fn rows() -> Vec<SummaryRow> {
        let m = |whoops, rt, cpu, overlaps| CellMetrics {
            whoops_per_round: whoops,
            round_trip_p50_ns: rt,
            cpu_ns_per_round: cpu,
            overlaps,
            rounds_per_sec: 1000.0,
            ..Default::default()
        };
        let runs = vec![
            (Variant::Ofd, Placement::Split, m(12.0, 40_000, 9000.0, 0)),
            (Variant::Seed, Placement::Split, m(3.0, 30_000, 3000.0, 5)),
            (Variant::Pipe, Placement::Split, m(0.0, 10_000, 3000.0, 0)),
            (Variant::Ticket, Placement::Split, m(0.0, 8_000, 1500.0, 0)),
        ];
        summarize(&runs, &Variant::ALL, &Placement::ALL)
    }

    #[test]
    fn the_verdict_names_the_cells_its_figures_pick() {
        let v = verdict(&rows(), Mode::Turns);
        assert_eq!(v.len(), 3);
        assert!(
            v[0].starts_with("Of all cells, ofd on split woke most often"),
            "{}",
            v[0]
        );
        assert!(
            v[0].contains("12.0 whoops") && v[0].contains("2 of 4 cells"),
            "{}",
            v[0]
        );
        assert!(
            v[0].contains("(explicit handoffs and FIFO locks)"),
            "{}",
            v[0]
        );
        assert!(
            v[1].contains("ticket on split at 8.00 µs, 0.80× the pipe's"),
            "{}",
            v[1]
        );
        assert!(
            v[1].contains("ofd on split at 40.0 µs, 4.00× the pipe's, 5.00 times"),
            "{}",
            v[1]
        );
        assert!(
            v[2].contains("failed in 1 of 4 cells: seed on split (5 overlaps)"),
            "{}",
            v[2]
        );
        assert!(
            v[2].contains("ofd on split at 9.00 µs per round, 6.00 times that of ticket"),
            "{}",
            v[2]
        );
    }

    #[test]
    fn free_mode_speaks_of_barging_and_waits() {
        let m = |barging, wait| CellMetrics {
            barging_rate: barging,
            handoff_p50_ns: wait,
            rounds_per_sec: 1000.0,
            cpu_ns_per_round: 1000.0,
            ..Default::default()
        };
        let runs = vec![
            (Variant::Ofd, Placement::Free, m(0.4, 900)),
            (Variant::Ticket, Placement::Free, m(0.0, 300)),
        ];
        let v = verdict(
            &summarize(&runs, &Variant::ALL, &Placement::ALL),
            Mode::Free,
        );
        assert!(
            v[0].contains("ofd on free barged most") && v[0].contains("40%"),
            "{}",
            v[0]
        );
        assert!(
            v[0].contains("1 of 2 cells never barged") && v[0].contains("(FIFO locks)"),
            "{}",
            v[0]
        );
        assert!(
            v[1].contains("wait for the lock was ticket on free at 300 ns"),
            "{}",
            v[1]
        );
        assert!(
            !v[1].contains("pipe"),
            "no pipe ratio in free mode: {}",
            v[1]
        );
        assert!(v[2].contains("held in all 2 cells"), "{}", v[2]);
    }

    #[test]
    fn an_empty_report_says_so() {
        assert_eq!(verdict(&[], Mode::Turns).len(), 1);
    }
}
