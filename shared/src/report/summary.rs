//! The summary as tables: the main table (terminal and `summary.md`) and the contenders
//! section, with the cell formats they share ("median (lo–hi)", the median's interval).

pub use crate::outcome::Spread;
use crate::outcome::SummaryRow;
use crate::text::{Table, fmt_ns, fmt_ns_as};

/// The main table: the terminal and `summary.md` both print it. In `free` mode the latency
/// columns are the wait for the lock, and the columns that only mean something with a turn order
/// (whoops, round trip, its ratio to the pipe's) are left out.
pub fn summary_table(rows: &[SummaryRow], mode: crate::variant::Mode) -> Table {
    let turns = mode == crate::variant::Mode::Turns;
    let wait = if turns { "handoff" } else { "wait" };
    let (p50, p99, max) = (
        format!("{wait} p50"),
        format!("{wait} p99"),
        format!("{wait} max"),
    );
    let mut header = vec!["variant", "placement", "rounds/s"];
    if turns {
        header.push("whoops/round");
    }
    header.extend(["overlaps", &p50, &p99, &max]);
    if turns {
        header.push("round trip p50");
    }
    header.push("CPU/round");
    if turns {
        header.push("× pipe");
    }
    let mut t = Table::new(&header, 2);
    for r in rows {
        let mut row = vec![
            r.variant.to_string(),
            r.placement.to_string(),
            spread_cell(&r.rounds_per_sec, fmt_rate, fmt_rate),
        ];
        if turns {
            row.push(spread_cell(&r.whoops_per_round, fmt_count, fmt_count));
        }
        row.extend([
            spread_cell(&r.overlaps, fmt_whole, fmt_whole),
            ns_cell(&r.handoff_p50_ns),
            ns_cell(&r.handoff_p99_ns),
            ns_cell(&r.handoff_max_ns),
        ]);
        if turns {
            row.push(ns_cell(&r.round_trip_p50_ns));
        }
        row.push(ns_cell(&r.cpu_ns_per_round));
        if turns {
            row.push(r.x_pipe.map_or("-".into(), |x| format!("{x:.2}×")));
        }
        t.push(row);
    }
    t
}

/// What the parenthesis of a cell is, for the repeats of `rows`: one line beside the main
/// table. The fewest repeats of any row are named, so the level is never overstated.
pub fn interval_note(rows: &[SummaryRow]) -> String {
    use crate::outcome::interval;
    match rows.iter().map(|r| r.repeats).min() {
        None => String::new(),
        Some(0..=1) => "Each cell: one repeat, no interval.".into(),
        Some(n) => format!(
            "Each cell: the median over repeats (lo–hi: a {:.1}% interval for it, {}).",
            interval::ranks(n).2 * 100.0,
            interval::bounds(n)
        ),
    }
}

/// What the contenders table's columns are about, printed under it.
pub const LOCK_OR_SCHEDULER: &str = "About the lock alone: bypass (acquisitions that overtook a \
     wait, over the waits during which another contender got the lock) and the barging rate. \
     Also the scheduler: Jain's index, waiting (contenders waiting at a grant, of N), LWSS (ideal \
     N) and MTTR (ideal N-1): a contender that is not running is in no lock's queue.";

/// What "–" means in the contenders table of a `turns` comparison (and in `run`'s line), printed
/// under it. `summary.json` keeps both figures.
pub const NOT_IN_TURNS: &str = "–: in turns mode the protocol fixes the order (contender 0, 1, \
     …, N-1, 0, …), so every contender takes as many turns as every other, give or take one: \
     Jain's index over turns is 1 by construction. The barging rate there is whoops / (whoops + \
     turns), the whoops per round again in another form. summary.json and --json keep both \
     numbers.";

/// The contenders section: how fairly each variant shares the lock or the turn. With `free`
/// runs it also shows the order measures: bypass, and beside Jain's index how many contenders
/// were actually waiting, LWSS and MTTR. In `turns` mode Jain's index and the barging rate are
/// "–" ([`NOT_IN_TURNS`]).
pub fn contenders_table(rows: &[SummaryRow], mode: crate::variant::Mode) -> Table {
    let turns = mode == crate::variant::Mode::Turns;
    let order = rows.iter().any(|r| r.order_repeats > 0);
    let mut header = vec!["variant", "placement", "Jain index"];
    if order {
        header.push("waiting");
    }
    header.extend(["barging rate", "max wait", "wait p99"]);
    if order {
        header.extend(["bypass p50", "bypass p99", "bypass max", "LWSS", "MTTR"]);
    }
    let mut t = Table::new(&header, 2);
    for r in rows {
        let mut row = vec![
            r.variant.to_string(),
            r.placement.to_string(),
            match r.jain_repeats {
                _ if turns => "–".into(),
                0 => "n/a".into(),
                // Say so when some repeats never raced: the figure is not over all of them
                // ("in 4/8": in 4 of the 8 repeats; short, so the terminal table fits).
                n if n < r.repeats => format!(
                    "{} in {n}/{}",
                    spread_cell(&r.jain_index, fmt_ratio, fmt_ratio),
                    r.repeats
                ),
                _ => spread_cell(&r.jain_index, fmt_ratio, fmt_ratio),
            },
        ];
        if order {
            row.push(order_cell(r, &r.order.contending, fmt_count));
        }
        row.extend([
            if turns {
                "–".into()
            } else {
                spread_cell(&r.barging_rate, fmt_ratio, fmt_ratio)
            },
            ns_cell(&r.handoff_max_ns),
            ns_cell(&r.handoff_p99_ns),
        ]);
        if order {
            let o = &r.order;
            row.extend([
                order_cell(r, &o.bypass_p50, fmt_whole),
                order_cell(r, &o.bypass_p99, fmt_whole),
                order_cell(r, &o.bypass_max, fmt_whole),
                order_cell(r, &o.lwss, fmt_count),
                order_cell(r, &o.mttr, fmt_count),
            ]);
        }
        t.push(row);
    }
    t
}

/// An order measure's cell: "-" for a cell with no `free` repeat.
fn order_cell(r: &SummaryRow, s: &Spread, fmt: fn(f64) -> String) -> String {
    if r.order_repeats == 0 {
        "-".into()
    } else {
        spread_cell(s, fmt, fmt)
    }
}

/// A ratio in [0, 1] with three decimals.
pub fn fmt_ratio(x: f64) -> String {
    format!("{x:.3}")
}

/// "median (lo–hi)", or just the median when the interval's ends agree: the median with `fmt`,
/// the interval ([`crate::outcome::interval`]) with `range` (which may leave out the unit).
pub fn spread_cell(
    s: &Spread,
    fmt: impl Fn(f64) -> String,
    range: impl Fn(f64) -> String,
) -> String {
    let (lo, hi) = (range(s.lo), range(s.hi));
    if lo == hi {
        fmt(s.median)
    } else {
        format!("{} ({lo}–{hi})", fmt(s.median))
    }
}

/// A duration spread, the interval in the median's unit: `3.41 µs (3.30–3.52)`.
pub fn ns_cell(s: &Spread) -> String {
    spread_cell(s, fmt_ns, |x| fmt_ns_as(x, s.median))
}

fn fmt_whole(x: f64) -> String {
    format!("{x:.0}")
}

/// A rate with a k/M suffix: `950`, `12.3k`, `1.20M`.
pub fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.2}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A count that may be fractional: three significant figures.
pub fn fmt_count(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        crate::text::three_figures(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_cells() {
        let s = Spread::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(spread_cell(&s, fmt_count, fmt_count), "2.00 (1.00–3.00)");
        assert_eq!(
            spread_cell(&Spread::of(vec![5.0]), fmt_count, fmt_count),
            "5.00"
        );
        assert_eq!(
            ns_cell(&Spread::of(vec![3300.0, 3410.0, 3520.0])),
            "3.41 µs (3.30–3.52)"
        );
        assert_eq!(ns_cell(&Spread::of(vec![4e6, 4e6])), "4.00 ms");
        assert_eq!(fmt_rate(12_345.0), "12.3k");
        // Ten repeats: the interval is the 2nd and the 9th, not the range.
        let ten = Spread::of((1..=10).map(f64::from).collect());
        assert_eq!(spread_cell(&ten, fmt_count, fmt_count), "5.50 (2.00–9.00)");
    }

    #[test]
    fn the_note_names_the_interval_for_the_repeats_run() {
        let row = |repeats| SummaryRow {
            repeats,
            ..crate::outcome::summarize(
                &[(
                    crate::variant::Variant::Pipe,
                    crate::placement::Placement::Split,
                    Default::default(),
                )],
                &[crate::variant::Variant::Pipe],
                &[crate::placement::Placement::Split],
            )[0]
            .clone()
        };
        assert_eq!(
            interval_note(&[row(8), row(8)]),
            "Each cell: the median over repeats (lo–hi: a 99.2% interval for it, the lowest and \
             highest of 8 repeats)."
        );
        assert!(interval_note(&[row(8), row(7)]).contains("98.4% interval"));
        assert_eq!(
            interval_note(&[row(1)]),
            "Each cell: one repeat, no interval."
        );
        assert!(interval_note(&[]).is_empty());
    }
}
