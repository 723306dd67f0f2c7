//! `compare --baseline DIR`: reading the earlier run from its `summary.json`, and the table of
//! ratios new/old that the terminal, `summary.md` and `report.html` all show.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::summary::{fmt_count, fmt_rate};
use crate::outcome::baseline::{BaselineRow, Change, Figure};
use crate::outcome::{Baseline, BaselineComparison};
use crate::text::{Table, fmt_ns};
use crate::variant::Mode;

/// Why `--baseline DIR` cannot be read.
#[derive(Debug, Error)]
pub enum BaselineError {
    #[error("--baseline {dir}: not a lockfair report folder (no summary.json in it); give a folder written by `lockfair-client compare`", dir = .dir.display())]
    NotAReport { dir: PathBuf },
    #[error("--baseline: cannot read {path}: {err}", path = .path.display())]
    Unreadable { path: PathBuf, err: std::io::Error },
    #[error("--baseline: {path} is not a compare summary ({err}); give a folder written by `lockfair-client compare`", path = .path.display())]
    Malformed {
        path: PathBuf,
        err: serde_json::Error,
    },
}

/// The parts of an earlier `summary.json` a comparison needs; the rest may change freely.
#[derive(Deserialize)]
struct EarlierSummary {
    command: String,
    #[serde(default)]
    runs: Vec<EarlierRun>,
    summary: Vec<BaselineRow>,
}

#[derive(Deserialize)]
struct EarlierRun {
    mode: Mode,
}

/// Reads the report folder `dir`.
pub fn read_baseline(dir: &Path) -> Result<Baseline, BaselineError> {
    let path = dir.join("summary.json");
    if !path.is_file() {
        return Err(BaselineError::NotAReport {
            dir: dir.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|err| BaselineError::Unreadable {
        path: path.clone(),
        err,
    })?;
    let earlier: EarlierSummary =
        serde_json::from_str(&text).map_err(|err| BaselineError::Malformed { path, err })?;
    Ok(Baseline {
        dir: dir.display().to_string(),
        command: earlier.command,
        mode: earlier.runs.first().map(|r| r.mode),
        rows: earlier.summary,
    })
}

/// One row per cell both runs have: the ratio new/old of each figure, "real" when the repeat
/// ranges do not overlap, and the two medians.
pub fn baseline_table(cmp: &BaselineComparison) -> Table {
    let mut header = vec!["variant", "placement"];
    if let Some(first) = cmp.cells.first() {
        header.extend(first.changes.iter().map(|c| metric_title(c.metric)));
    }
    let mut t = Table::new(&header, 2);
    for cell in &cmp.cells {
        let mut row = vec![cell.variant.clone(), cell.placement.clone()];
        row.extend(cell.changes.iter().map(change_cell));
        t.push(row);
    }
    t
}

/// The lines around the table: what it is compared with, the rule, and the cells only one run
/// has.
pub fn baseline_notes(cmp: &BaselineComparison) -> Vec<String> {
    let mut out = vec![
        format!("Against {} ({}).", cmp.dir, cmp.command),
        "Each cell: new/old of the medians, then the medians old → new.".to_string(),
        format!("Rule: {}.", cmp.rule),
    ];
    out.extend(cmp.warning.iter().map(|w| format!("Warning: {w}.")));
    let names = |cells: &[crate::outcome::baseline::CellName]| {
        cells
            .iter()
            .map(|c| format!("{} {}", c.variant, c.placement))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !cmp.only_new.is_empty() {
        out.push(format!("Only in this run: {}.", names(&cmp.only_new)));
    }
    if !cmp.only_old.is_empty() {
        out.push(format!("Only in the baseline: {}.", names(&cmp.only_old)));
    }
    out
}

/// The column title, as in the main table.
fn metric_title(metric: Figure) -> &'static str {
    match metric {
        Figure::RoundsPerSec => "rounds/s",
        Figure::RoundTripP50Ns => "round trip p50",
        Figure::WhoopsPerRound => "whoops/round",
        Figure::HandoffP50Ns => "wait p50",
    }
}

fn metric_value(metric: Figure, x: f64) -> String {
    match metric {
        Figure::RoundsPerSec => fmt_rate(x),
        Figure::WhoopsPerRound => fmt_count(x),
        Figure::RoundTripP50Ns | Figure::HandoffP50Ns => fmt_ns(x),
    }
}

/// `1.23× real (950 → 1.17k)`; `from 0 (0 → 3.2)` when the old median is zero.
pub fn change_cell(c: &Change) -> String {
    let values = format!(
        "{} → {}",
        metric_value(c.metric, c.old.median),
        metric_value(c.metric, c.new.median)
    );
    let ratio = match c.ratio {
        Some(r) => format!("{}×", fmt_ratio(r)),
        None if c.new.median == 0.0 => "same".into(),
        None => "from 0".into(),
    };
    let real = if c.real { " real" } else { "" };
    format!("{ratio}{real} ({values})")
}

/// Three significant figures, whole numbers from 100: `0.00282`, `0.54`, `1.92`, `16.3`, `228`.
fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 || r == 0.0 {
        format!("{r:.0}")
    } else {
        let decimals = (2 - r.log10().floor() as i32).clamp(0, 9) as usize;
        format!("{r:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Spread;

    fn one(x: f64) -> Spread {
        Spread::of(vec![x])
    }

    #[test]
    fn cells_say_ratio_reality_and_values() {
        let c = Change {
            metric: Figure::RoundsPerSec,
            old: one(1000.0),
            new: one(1500.0),
            ratio: Some(1.5),
            real: true,
        };
        assert_eq!(change_cell(&c), "1.50× real (1.00k → 1.50k)");
        let zero = Change {
            metric: Figure::WhoopsPerRound,
            old: one(0.0),
            new: one(0.0),
            ratio: None,
            real: false,
        };
        assert_eq!(change_cell(&zero), "same (0 → 0)");
    }

    #[test]
    fn ratios_keep_three_significant_figures() {
        assert_eq!(fmt_ratio(0.002_82), "0.00282");
        assert_eq!(fmt_ratio(0.54), "0.540");
        assert_eq!(fmt_ratio(1.923), "1.92");
        assert_eq!(fmt_ratio(16.34), "16.3");
        assert_eq!(fmt_ratio(227.98), "228");
    }

    #[test]
    fn a_folder_without_summary_json_is_not_a_report() {
        let err = read_baseline(Path::new("/nonexistent/lockfair")).unwrap_err();
        assert!(err.to_string().contains("not a lockfair report folder"));
    }
}
