//! Lock opportunity as tables: per contender of a `run`, and per contender of every `compare`
//! cell (median over its repeats). What each column means is in docs/measures.md.

use super::summary::{fmt_ratio, spread_cell};
use crate::outcome::RunReport;
use crate::outcome::cell_opportunity::{CellOpportunity, ContenderOpportunity};
use crate::outcome::compare::Contender;
use crate::text::{Table, fmt_ns, wrap};

/// The prose under every lock opportunity table.
pub const ABOUT: &str = "Lock opportunity (Patel et al., EuroSys 2020): the time a contender held \
    the lock plus the time nobody held it, as a share of the common window (free mode) or the run \
    (turns mode). Hold share and CPU share are what it took; Jain over lock opportunity is 1 when \
    every contender was offered the lock's time evenly, 1/N when one had it all.";

/// The busy work and nice value a contender ran with, as one cell: "100 µs / 0 / 0".
fn asked(hold_ns: u64, think_ns: u64, nice: i32) -> String {
    let busy = |ns: u64| {
        if ns == 0 {
            "0".into()
        } else {
            fmt_ns(ns as f64)
        }
    };
    format!("{} / {} / {nice}", busy(hold_ns), busy(think_ns))
}

fn share(x: Option<f64>) -> String {
    x.map_or("n/a".into(), fmt_ratio)
}

/// `run`'s table: one row per contender; `None` when the span was empty.
pub fn run_table(r: &RunReport) -> Option<Table> {
    let json = r.to_json();
    json.opportunity_jain?;
    let mut t = Table::new(
        &[
            "contender",
            "hold / think / nice",
            "acquisitions",
            "hold share",
            "opportunity",
            "CPU share",
        ],
        2,
    );
    for c in &json.contenders {
        t.push(vec![
            Contender(c.contender as usize).name(),
            asked(c.hold_ns, c.think_ns, c.nice),
            c.acquisitions.to_string(),
            share(c.hold_share),
            share(c.opportunity),
            share(c.cpu_share),
        ]);
    }
    Some(t)
}

/// `run`'s lock opportunity: the table and the run's Jain index over it.
pub fn run_text(r: &RunReport) -> String {
    let (Some(t), Some(o)) = (run_table(r), r.opportunity()) else {
        return "Lock opportunity: n/a (the contenders never raced: raise --rounds)\n".into();
    };
    format!(
        "\nLock opportunity: Jain {:.3}, idle {:.3} of {}\n{}{}\n",
        o.jain,
        o.idle_share(),
        fmt_ns(o.span_ns as f64),
        t.to_text(),
        wrap(ABOUT, 100)
    )
}

/// `compare`'s table: one row per contender of every cell, Jain on the cell's first row.
pub fn cells_table(cells: &[CellOpportunity]) -> Table {
    let mut t = Table::new(
        &[
            "variant",
            "placement",
            "contender",
            "hold / think / nice",
            "acquisitions share",
            "hold share",
            "opportunity",
            "CPU share",
            "Jain (opportunity)",
        ],
        4,
    );
    for cell in cells {
        for (i, c) in cell.contenders.iter().enumerate() {
            let mut row = contender_row(cell, c);
            row.push(if i == 0 {
                spread_cell(&cell.opportunity_jain, fmt_ratio, fmt_ratio)
            } else {
                String::new()
            });
            t.push(row);
        }
    }
    t
}

fn contender_row(cell: &CellOpportunity, c: &ContenderOpportunity) -> Vec<String> {
    let cell_of = |s| spread_cell(s, fmt_ratio, fmt_ratio);
    vec![
        cell.variant.to_string(),
        cell.placement.to_string(),
        c.name.clone(),
        asked(c.hold_ns, c.think_ns, c.nice),
        cell_of(&c.acquisition_share),
        cell_of(&c.hold_share),
        cell_of(&c.opportunity),
        cell_of(&c.cpu_share),
    ]
}

/// True if any contender of any cell was asked for busy work or a nice value.
pub fn unequal(cells: &[CellOpportunity]) -> bool {
    cells
        .iter()
        .flat_map(|c| &c.contenders)
        .any(|c| c.hold_ns > 0 || c.think_ns > 0 || c.nice != 0)
}
