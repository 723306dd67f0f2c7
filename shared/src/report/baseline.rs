//! `compare --baseline DIR`: reading the earlier run from its `summary.json`, and the table of
//! ratios new/old that the terminal, `summary.md` and `report.html` all show.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::summary::{fmt_count, fmt_rate};
use crate::outcome::baseline::{
    BaselineRepeat, BaselineRow, Change, Figure, RepeatFigures, Verdict,
};
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

/// One repeat of a cell: its mode, and the figures the rank test reads.
#[derive(Deserialize)]
struct EarlierRun {
    mode: Mode,
    variant: String,
    placement: String,
    metrics: Option<RepeatFigures>,
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
        repeats: earlier
            .runs
            .into_iter()
            .filter_map(|r| {
                Some(BaselineRepeat {
                    metrics: r.metrics?,
                    variant: r.variant,
                    placement: r.placement,
                })
            })
            .collect(),
    })
}

/// One row per cell both runs have: the ratio new/old of each figure, what the rank test says
/// of it, and the two medians.
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
        "Each cell: new/old of the medians, whether the change is real (with the test's p) or \
         within the noise, then the medians old → new."
            .to_string(),
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

/// `1.23× real, p=0.002 (950 → 1.17k)`, `0.98× within noise (…)`, `1.50× too few repeats
/// (…)`; `from 0` or `same` for the ratio when the old median is zero (`same (0 → 0)`).
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
    let verdict = match (c.verdict, c.p) {
        (Verdict::Real, Some(p)) => format!(" real, p={}", fmt_p(p)),
        (Verdict::Real, None) => " real".into(),
        // Zero before and after: "same" says it all.
        (Verdict::WithinNoise, _) if c.ratio.is_none() && c.new.median == 0.0 => String::new(),
        (Verdict::WithinNoise, _) => " within noise".into(),
        (Verdict::TooFewRepeats, _) => " too few repeats".into(),
    };
    format!("{ratio}{verdict} ({values})")
}

/// A p-value with two significant figures, or `<0.0001`.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        "<0.0001".into()
    } else {
        let decimals = (1 - p.log10().floor() as i32).clamp(1, 5) as usize;
        format!("{p:.decimals$}")
    }
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
    fn cells_say_ratio_verdict_and_values() {
        let c = Change {
            metric: Figure::RoundsPerSec,
            old: one(1000.0),
            new: one(1500.0),
            ratio: Some(1.5),
            real: true,
            p: Some(0.000_16),
            verdict: Verdict::Real,
        };
        assert_eq!(change_cell(&c), "1.50× real, p=0.00016 (1.00k → 1.50k)");
        let zero = Change {
            metric: Figure::WhoopsPerRound,
            old: one(0.0),
            new: one(0.0),
            ratio: None,
            real: false,
            p: Some(1.0),
            verdict: Verdict::WithinNoise,
        };
        assert_eq!(change_cell(&zero), "same (0 → 0)");
        let noise = Change {
            verdict: Verdict::WithinNoise,
            p: Some(0.48),
            real: false,
            ..c.clone()
        };
        assert_eq!(change_cell(&noise), "1.50× within noise (1.00k → 1.50k)");
        let few = Change {
            verdict: Verdict::TooFewRepeats,
            p: Some(0.1),
            real: false,
            ..c
        };
        assert_eq!(change_cell(&few), "1.50× too few repeats (1.00k → 1.50k)");
    }

    #[test]
    fn p_values_keep_two_significant_figures() {
        assert_eq!(fmt_p(0.0079), "0.0079");
        assert_eq!(fmt_p(0.043), "0.043");
        assert_eq!(fmt_p(0.48), "0.48");
        assert_eq!(fmt_p(1.0), "1.0");
        assert_eq!(fmt_p(0.000_05), "<0.0001");
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
