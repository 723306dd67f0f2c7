//! `summary.md`: the table a person reads, with the machine and the command that made it.

use std::io;

use super::{Exporter, baseline, stops, summary, terminal};
use crate::crash;
use crate::outcome::holder_death::CrashReport;
use crate::outcome::{CompareReport, Machine};
use crate::sys::out_dir::OutDir;
use crate::variant::Mode;

pub(super) struct Markdown;

impl Exporter for Markdown {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        let mut out = String::from("# lockfair compare\n\n");
        out.push_str(&format!("Command: `{}`\n\n", report.command));
        // The answer first; the evidence after it.
        if let Some(w) = crate::outcome::what_to_use(report) {
            out.push_str(&super::what_to_use::to_markdown(&w));
            out.push_str("\n## Machine\n\n");
        }
        out.push_str(&machine_markdown(&report.machine));
        let sweep = super::sweep::to_markdown(report);
        out.push_str(&sweep.map(|s| format!("\n{s}")).unwrap_or_default());
        let rows = report.summary();
        out.push_str(&format!(
            "\n{} runs. {} A round is one turn of every contender (`turns` mode) or one \
             acquisition each (`free` mode); whoops, overlaps and CPU time count all contenders.\n\n",
            report.runs.len(),
            summary::interval_note(&rows)
        ));
        out.push_str(&summary::summary_table(&rows, report.mode()).to_markdown());
        if let Some(note) = stops::compare_note(report) {
            out.push_str(&format!("\n{}\n", note.replace('\n', "\n\n")));
        }
        out.push_str(
            "\n## Contenders\n\nJain's fairness index (1: every contender got the same share; 1/N: \
             one got everything), the barging rate and the longest wait, per variant.\n\n",
        );
        out.push_str(&summary::contenders_table(&rows, report.mode()).to_markdown());
        if rows.iter().any(|r| r.order_repeats > 0) {
            out.push_str(&format!("\n{}\n", summary::LOCK_OR_SCHEDULER));
        }
        if report.mode() == Mode::Turns && !rows.is_empty() {
            out.push_str(&format!("\n{}\n", summary::NOT_IN_TURNS));
        }
        let cells = crate::outcome::cell_opportunity::by_cell(report);
        if !cells.is_empty() {
            out.push_str(&format!(
                "\n## Lock opportunity\n\n{}\n\n{}",
                super::opportunity::ABOUT,
                super::opportunity::cells_table(&cells).to_markdown()
            ));
        }
        if let Some(cmp) = report.against_baseline() {
            out.push_str("\n## Against the baseline\n\n");
            for line in baseline::baseline_notes(&cmp) {
                out.push_str(&format!("{line}\n\n"));
            }
            out.push_str(&baseline::baseline_table(&cmp).to_markdown());
        }
        if let Some(deaths) = &report.holder_death {
            out.push('\n');
            out.push_str(&holder_death_markdown(deaths, &report.command));
        }
        let notes = terminal::notes(report);
        if !notes.is_empty() {
            out.push_str("\n```");
            out.push_str(&notes);
            out.push_str("```\n");
        }
        dir.write("summary.md", out.as_bytes())
    }
}

/// `compare --crash`: `crash`'s own section, plain cells then protected ones.
fn holder_death_markdown(deaths: &CrashReport, command: &str) -> String {
    let protected = deaths.part(true);
    let protected = (!protected.cells.is_empty()).then_some(&protected);
    crash::output::markdown_section(&deaths.part(false), protected, None, command)
}

/// One Markdown line per fact about the machine.
fn machine_markdown(m: &Machine) -> String {
    format!(
        "- kernel: {}\n- CPU: {}\n- CPUs online: {}, allowed to this process: {}\n- clocksource: {}\n\
         - cpuidle: {}\n- cross-CPU wakeup: {}\n",
        m.kernel,
        m.cpu_model,
        m.online_cpus,
        m.allowed_cpus,
        m.clocksource,
        m.idle.describe(),
        m.idle.wakeup()
    )
}
