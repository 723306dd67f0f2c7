//! A contender sweep (`compare --contenders 2,4,…`) as tables: one per measure (variant ×
//! count), and lockfair's own cost per count. The terminal, `summary.md` and `report.html` show
//! the same tables.

use super::summary::{fmt_rate, fmt_ratio};
use crate::outcome::CompareReport;
use crate::outcome::sweep::{CostRow, JAIN_OVER, Sweep, SweepMeasure, SweepRow};
use crate::procinfo::ProcessCost;
use crate::text::{Table, fmt_ns};
use crate::variant::Mode;

/// What the sweep is, said above its tables.
pub fn intro(report: &CompareReport, sweep: &Sweep) -> String {
    let counts: Vec<String> = sweep
        .sorted_counts()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mode = match report.mode() {
        Mode::Free => "free mode (every contender takes the lock as fast as it can)",
        Mode::Turns => "turns mode (a fixed round-robin order; no bypass figures)",
    };
    format!(
        "Every cell at {} contenders, in {mode}. Each table cell is the median over the \
         repeats (summary.json's `sweep.rows` has the interval and range). Jain's index is over \
         {JAIN_OVER}. The other tables of this report are the largest count's.",
        counts.join(", ")
    )
}

/// One measure's table: a row per variant (and placement), a column per count.
pub fn measure_table(report: &CompareReport, measure: SweepMeasure) -> Option<Table> {
    let sweep = report.sweep.as_ref()?;
    let rows = sweep.rows(&report.variants, &report.placements);
    let counts = sweep.sorted_counts();
    let heads: Vec<String> = counts.iter().map(|n| n.to_string()).collect();
    let mut header = vec!["variant", "placement"];
    header.extend(heads.iter().map(String::as_str));
    let mut t = Table::new(&header, 2);
    for &placement in &report.placements {
        for &variant in &report.variants {
            let mine: Vec<&SweepRow> = rows
                .iter()
                .filter(|r| (r.variant, r.placement) == (variant, placement))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut line = vec![variant.to_string(), placement.to_string()];
            for &n in &counts {
                let at = mine.iter().find(|r| r.contenders == n);
                line.push(at.map_or("-".into(), |r| cell(measure, r)));
            }
            t.push(line);
        }
    }
    Some(t)
}

/// A row's median of `measure`, or `n/a` where it is not defined.
fn cell(measure: SweepMeasure, row: &SweepRow) -> String {
    let Some(s) = measure.of(row) else {
        return "n/a".into();
    };
    match measure {
        SweepMeasure::AcquisitionsPerSec => fmt_rate(s.median),
        SweepMeasure::BypassP99 | SweepMeasure::BypassMax => format!("{:.0}", s.median),
        SweepMeasure::Jain => fmt_ratio(s.median),
        SweepMeasure::CpuPerAcquisition => fmt_ns(s.median),
    }
}

/// lockfair's own cost per count: the client, the server, the helper processes together.
pub fn cost_table(costs: &[CostRow]) -> Table {
    let mut t = Table::new(
        &[
            "contenders",
            "client RSS",
            "client peak",
            "client fds",
            "server RSS",
            "server peak",
            "server fds",
            "helpers",
            "helpers RSS",
            "helpers fds",
        ],
        0,
    );
    for c in costs {
        let server = |f: fn(&ProcessCost) -> String| c.server.as_ref().map_or("?".into(), f);
        t.push(vec![
            c.contenders.to_string(),
            kib(c.client.rss_kib),
            kib(c.client.hwm_kib),
            c.client.fds.to_string(),
            server(|s| kib(s.rss_kib)),
            server(|s| kib(s.hwm_kib)),
            server(|s| s.fds.to_string()),
            c.helper_processes.to_string(),
            kib(c.helpers.rss_kib),
            c.helpers.fds.to_string(),
        ]);
    }
    t
}

/// What the cost table's columns are.
pub const COST_NOTE: &str = "lockfair's own cost, the largest seen at each count (from \
     /proc/PID/status and /proc/PID/fd, once every contender was ready and again when the \
     client's side was done): RSS is VmRSS, peak is VmHWM; helpers are the contender processes \
     2.. the client starts, added up (each one's RSS counts the pages it shares with the others, \
     the program's code and the arena, so their sum overstates what they take together). The client is the \
     whole comparison's process: its RSS also holds the report so far (a histogram per contender \
     and cell), so it follows the cells already run as much as the count.";

/// `1.2 MiB` for a size in KiB.
fn kib(k: u64) -> String {
    if k >= 1024 * 1024 {
        format!("{:.2} GiB", k as f64 / (1024.0 * 1024.0))
    } else if k >= 1024 {
        format!("{:.1} MiB", k as f64 / 1024.0)
    } else {
        format!("{k} KiB")
    }
}

/// Every table of the sweep with its heading, rendered by `render` (text or Markdown), `None`
/// without a sweep.
pub fn sections(report: &CompareReport) -> Option<Vec<(String, Table)>> {
    let sweep = report.sweep.as_ref()?;
    let mut out = Vec::new();
    for m in SweepMeasure::ALL {
        out.push((m.title().to_string(), measure_table(report, m)?));
    }
    out.push((
        "lockfair's own cost".to_string(),
        cost_table(&sweep.costs()),
    ));
    Some(out)
}

/// The sweep for the terminal, ending with the line that introduces the usual tables.
pub fn to_text(report: &CompareReport, width: usize) -> Option<String> {
    let sweep = report.sweep.as_ref()?;
    let mut out = format!(
        "Contender sweep\n{}\n",
        crate::text::wrap(&intro(report, sweep), width)
    );
    for (title, table) in sections(report)? {
        out.push_str(&format!("\n{title}\n{}", table.to_text()));
    }
    out.push_str(&format!("{}\n", crate::text::wrap(COST_NOTE, width)));
    out.push_str(&format!("\n{}\n", largest_line(sweep)));
    Some(out)
}

/// The sweep as a `summary.md` section.
pub fn to_markdown(report: &CompareReport) -> Option<String> {
    let sweep = report.sweep.as_ref()?;
    let mut out = format!("## Contender sweep\n\n{}\n", intro(report, sweep));
    for (title, table) in sections(report)? {
        out.push_str(&format!("\n### {title}\n\n{}", table.to_markdown()));
    }
    out.push_str(&format!("\n{COST_NOTE}\n\n{}\n\n", largest_line(sweep)));
    Some(out)
}

/// Which count the rest of the report is about.
pub fn largest_line(sweep: &Sweep) -> String {
    let n = sweep.sorted_counts().last().copied().unwrap_or(0);
    format!("At {n} contenders (the sweep's largest count), every table as without a sweep:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_their_unit() {
        assert_eq!(kib(900), "900 KiB");
        assert_eq!(kib(2048), "2.0 MiB");
        assert_eq!(kib(3 * 1024 * 1024), "3.00 GiB");
    }
}
