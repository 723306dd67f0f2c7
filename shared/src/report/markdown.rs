//! `summary.md`: the table a person reads, with the machine and the command that made it.

use std::io;
use std::path::Path;

use super::{CompareReport, Exporter, summary, write_atomically};

pub(super) struct Markdown;

impl Exporter for Markdown {
    fn export(&self, report: &CompareReport, dir: &Path) -> io::Result<()> {
        let mut out = String::from("# lockfair compare\n\n");
        out.push_str(&format!("Command: `{}`\n\n", report.command));
        out.push_str(&report.machine.to_markdown());
        out.push_str(&format!(
            "\n{} runs. Each cell: median over repeats, (min–max) when they differ. A round is the \
             writer's turn plus the reader's; whoops, overlaps and CPU time count both sides.\n\n",
            report.runs.len()
        ));
        out.push_str(&summary::summary_table(&report.summary()).to_markdown());
        let notes = report.notes();
        if !notes.is_empty() {
            out.push_str("\n```");
            out.push_str(&notes);
            out.push_str("```\n");
        }
        write_atomically(&dir.join("summary.md"), out.as_bytes())
    }
}
