//! `lockfair-client compare`: start a private server, run every requested variant and placement,
//! and put the results side by side.

use std::path::PathBuf;

use thiserror::Error;

use super::run::{RunError, RunOptions, RunReport, side_row, side_table};
use super::spawn::{SpawnError, SpawnedServer, find_server};
use crate::placement::Placement;
use crate::sys::signal;
use crate::variant::{Mode, Variant};

/// What to compare.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub variants: Vec<Variant>,
    pub placements: Vec<Placement>,
    pub rounds: u64,
    pub max_seconds: f64,
    pub server_bin: Option<PathBuf>,
}

/// One variant × placement: its report, or why it did not run.
#[derive(Debug)]
pub struct Cell {
    pub variant: Variant,
    pub placement: Placement,
    pub outcome: Result<RunReport, RunError>,
}

/// Why the comparison could not run at all.
#[derive(Debug, Error)]
pub enum CompareError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// Runs every cell against a private server, calling `on_cell` after each. Stops early (keeping
/// the finished cells) on SIGINT/SIGTERM.
pub fn compare(
    opts: &CompareOptions,
    mut on_cell: impl FnMut(&Cell),
) -> Result<Vec<Cell>, CompareError> {
    signal::install_stop_handler();
    let server = SpawnedServer::start(&find_server(opts.server_bin.as_deref())?)?;
    let mut cells = Vec::new();
    'all: for &placement in &opts.placements {
        for &variant in &opts.variants {
            if signal::stop_requested() {
                break 'all;
            }
            let outcome = super::run(&RunOptions {
                socket: server.socket().to_path_buf(),
                variant,
                mode: Mode::Turns,
                placement,
                rounds: opts.rounds,
                max_seconds: opts.max_seconds,
            });
            let cell = Cell {
                variant,
                placement,
                outcome,
            };
            on_cell(&cell);
            cells.push(cell);
        }
    }
    drop(server);
    Ok(cells)
}

/// The side-by-side table: one row per side of every cell that ran, then the cells that did not.
pub fn to_text(cells: &[Cell]) -> String {
    let mut t = side_table();
    t.headers.insert(0, "placement".into());
    t.headers.insert(0, "variant".into());
    t.left = (0..4).collect();
    let mut skipped = String::new();
    for cell in cells {
        match &cell.outcome {
            Ok(r) => {
                for (name, side) in [("server", &r.server), ("client", &r.client)] {
                    let mut row = side_row(name, side);
                    row.insert(0, cell.placement.to_string());
                    row.insert(0, cell.variant.to_string());
                    t.push(row);
                }
            }
            Err(e) => skipped.push_str(&format!("{} {}: {e}\n", cell.variant, cell.placement)),
        }
    }
    let mut out = t.to_text();
    if !skipped.is_empty() {
        out.push_str("\nnot measured:\n");
        out.push_str(&skipped);
    }
    out
}
