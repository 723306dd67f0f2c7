//! The sections of `report.html`, one function each, in the order a reader asks.

use std::io;

use super::page::{esc, figure, paragraphs, table_html};
use super::{Input, Section, verdict};
use crate::outcome::Machine;
use crate::outcome::sweep::SweepMeasure;
use crate::report::{baseline, frontier, latency, plots, stops, summary, terminal};
use crate::variant::Mode;

/// Three sentences from this run's figures.
pub fn verdict(p: &Input) -> io::Result<Option<Section>> {
    let sentences = verdict::verdict(&p.rows, p.report.mode());
    Ok(Some(Section::new(
        "verdict",
        "Verdict",
        format!("<p class=\"verdict\">{}</p>\n", esc(&sentences.join(" "))),
    )))
}

/// The answer the comparison was run for: a recommendation per need, then the mechanisms by the
/// properties that decide a choice.
pub fn what_to_use(p: &Input) -> io::Result<Option<Section>> {
    use crate::report::what_to_use as w2u;
    let Some(w) = crate::outcome::what_to_use(p.report) else {
        return Ok(None);
    };
    let mut body = String::from("<ul class=\"answer\">\n");
    for r in &w.needs {
        let pick = w2u::pick(r);
        body.push_str(&format!(
            "<li><strong>{}</strong>: {} <span class=\"why\">({}; evidence: <code>{}</code>)</span></li>\n",
            esc(r.need),
            esc(pick),
            esc(&r.why),
            esc(r.evidence)
        ));
    }
    body.push_str("</ul>\n");
    body.push_str(&paragraphs(&[w2u::basis(&w)]));
    body.push_str(&table_html(&w2u::table(&w, true)));
    Ok(Some(Section::new("what-to-use", w2u::HEADING, body)))
}

/// The main table, as in `summary.md`, and the cells that did not run.
pub fn main_table(p: &Input) -> io::Result<Option<Section>> {
    let mut body = paragraphs(&[format!(
        "{} runs. {} A round is one turn of every contender (turns mode) or one acquisition \
         each (free mode); whoops, overlaps and CPU time count all contenders.",
        p.report.runs.len(),
        summary::interval_note(&p.rows)
    )]);
    body.push_str(&table_html(&summary::summary_table(
        &p.rows,
        p.report.mode(),
    )));
    if let Some(note) = stops::compare_note(p.report) {
        body.push_str(&paragraphs(&note.lines().collect::<Vec<_>>()));
    }
    let notes = terminal::notes(p.report);
    if !notes.trim().is_empty() {
        body.push_str(&format!("<pre>{}</pre>\n", esc(notes.trim())));
    }
    Ok(Some(Section::new("table", "Main table", body)))
}

/// One latency plot per placement.
pub fn latency(p: &Input) -> io::Result<Option<Section>> {
    let mut body = String::new();
    for &placement in &p.report.placements {
        if let Some(svg) = latency::latency_svg(p.report, placement).map_err(io::Error::other)? {
            let what = match p.report.mode() {
                Mode::Turns => "handoff latency",
                Mode::Free => "wait for the lock",
            };
            body.push_str(&figure(
                &svg,
                &format!(
                    "{placement}: the {what} of all contenders and repeats by percentile \
                     (latency-{placement}.svg)"
                ),
            ));
        }
    }
    Ok((!body.is_empty()).then(|| Section::new("latency", "Latency by percentile", body)))
}

/// A contender sweep: a plot and a table per measure against the count, then lockfair's own
/// cost per count.
pub fn sweep(p: &Input) -> io::Result<Option<Section>> {
    use crate::report::{sweep, sweep_plot};
    let (Some(s), Some(tables)) = (p.report.sweep.as_ref(), sweep::sections(p.report)) else {
        return Ok(None);
    };
    let mut body = paragraphs(&[sweep::intro(p.report, s)]);
    for (m, (title, table)) in SweepMeasure::ALL.iter().zip(&tables) {
        body.push_str(&format!("<h3>{}</h3>\n", esc(title)));
        if let Some(svg) = sweep_plot::sweep_svg(p.report, *m).map_err(io::Error::other)? {
            let name = sweep_plot::file_name(*m);
            body.push_str(&figure(
                &svg,
                &format!("{title}, median over repeats ({name})"),
            ));
        }
        body.push_str(&table_html(table));
    }
    if let Some((title, table)) = tables.last() {
        body.push_str(&format!("<h3>{}</h3>\n", esc(title)));
        body.push_str(&table_html(table));
        body.push_str(&paragraphs(&[sweep::COST_NOTE]));
    }
    body.push_str(&paragraphs(&[sweep::largest_line(s)]));
    Ok(Some(Section::new("sweep", "Contender sweep", body)))
}

/// Whoops per round (`turns` mode only: whoops need a turn to miss).
pub fn whoops(p: &Input) -> io::Result<Option<Section>> {
    if p.report.mode() == Mode::Free {
        return Ok(None);
    }
    let Some(svg) = plots::whoops_svg(p.report).map_err(io::Error::other)? else {
        return Ok(None);
    };
    let body = figure(
        &svg,
        "Lock acquisitions that found it was not the contender's turn, per round (whoops.svg)",
    );
    Ok(Some(Section::new("whoops", "Whoops", body)))
}

/// How fairly each variant shares the lock or the turn.
pub fn contenders(p: &Input) -> io::Result<Option<Section>> {
    if p.rows.is_empty() {
        return Ok(None);
    }
    let mut body = paragraphs(&[
        "Jain's fairness index (1: every contender got the same share; 1/N: one got \
         everything), the barging rate and the longest wait, per variant.",
    ]);
    body.push_str(&table_html(&summary::contenders_table(
        &p.rows,
        p.report.mode(),
    )));
    if p.rows.iter().any(|r| r.order_repeats > 0) {
        body.push_str(&paragraphs(&[summary::LOCK_OR_SCHEDULER]));
    }
    if p.report.mode() == Mode::Turns {
        body.push_str(&paragraphs(&[summary::NOT_IN_TURNS]));
    }
    Ok(Some(Section::new("contenders", "Contenders", body)))
}

/// Who was offered the lock's time: each contender's shares, Jain over lock opportunity.
pub fn opportunity(p: &Input) -> io::Result<Option<Section>> {
    let cells = crate::outcome::cell_opportunity::by_cell(p.report);
    if cells.is_empty() {
        return Ok(None);
    }
    let mut body = paragraphs(&[crate::report::opportunity::ABOUT]);
    body.push_str(&table_html(&crate::report::opportunity::cells_table(
        &cells,
    )));
    Ok(Some(Section::new("opportunity", "Lock opportunity", body)))
}

/// The throughput × fairness frontier (`free` mode).
pub fn frontier(p: &Input) -> io::Result<Option<Section>> {
    if p.report.mode() != Mode::Free {
        return Ok(None);
    }
    let Some(svg) = frontier::frontier_svg(p.report).map_err(io::Error::other)? else {
        return Ok(None);
    };
    let body = figure(
        &svg,
        "Acquisitions per second against unfairness, median and its interval over repeats; the \
         variants no other beats on both axes are joined (frontier.svg)",
    );
    Ok(Some(Section::new(
        "frontier",
        "Throughput × fairness",
        body,
    )))
}

/// This run against `--baseline`.
pub fn baseline(p: &Input) -> io::Result<Option<Section>> {
    let Some(cmp) = p.report.against_baseline() else {
        return Ok(None);
    };
    let real = cmp
        .cells
        .iter()
        .flat_map(|c| &c.changes)
        .filter(|c| c.real)
        .count();
    let total: usize = cmp.cells.iter().map(|c| c.changes.len()).sum();
    let mut lines = vec![format!(
        "{real} of {total} figures in {} common cells changed for real.",
        cmp.cells.len()
    )];
    lines.extend(baseline::baseline_notes(&cmp));
    let mut body = paragraphs(&lines);
    body.push_str(&table_html(&baseline::baseline_table(&cmp)));
    Ok(Some(Section::new("baseline", "Against the baseline", body)))
}

/// Where the numbers came from, and the exact command.
pub fn machine(p: &Input) -> io::Result<Option<Section>> {
    let m: &Machine = &p.report.machine;
    let facts = [
        ("kernel", m.kernel.clone()),
        ("CPU", m.cpu_model.clone()),
        ("CPUs online", m.online_cpus.to_string()),
        ("allowed to this process", m.allowed_cpus.clone()),
        ("clocksource", m.clocksource.clone()),
        ("cpuidle", m.idle.describe()),
        ("cross-CPU wakeup", m.idle.wakeup()),
    ];
    let mut body = String::from("<dl>\n");
    for (k, v) in facts {
        body.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(&v)));
    }
    body.push_str("</dl>\n<p>The command that made this report:</p>\n");
    body.push_str(&format!(
        "<pre><code>{}</code></pre>\n",
        esc(&p.report.command)
    ));
    Ok(Some(Section::new("machine", "Machine and command", body)))
}
