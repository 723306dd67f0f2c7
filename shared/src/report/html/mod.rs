//! `report.html`: the run's story on one self-contained page (inline CSS and SVG, no script, no
//! network: a Content-Security-Policy forbids every load), rewritten after each cell like the
//! other files.
//!
//! The page is a list of `SECTIONS`, each one function from the report to an optional
//! [`Section`]; a new part of the report (the frontier, holder death, the kernel's trace) is one
//! more function and one more line in that list.

mod files;
mod holder_death;
mod kernel;
mod page;
mod sections;
mod verdict;

use std::io;

pub use page::{esc, figure, page, paragraphs, table_html};

use super::Exporter;
use crate::outcome::{CompareReport, SummaryRow};
use crate::sys::out_dir::OutDir;

pub(super) struct Html;

/// What every section is made from: the report, its summary rows (computed once) and the folder
/// the page is written to.
#[derive(Debug)]
pub struct Input<'a> {
    pub report: &'a CompareReport,
    pub rows: Vec<SummaryRow>,
    pub dir: &'a OutDir,
}

/// One part of the page, under its own heading; `id` is its anchor in the navigation.
#[derive(Debug)]
pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    pub body: String,
}

impl Section {
    pub fn new(id: &'static str, title: &'static str, body: String) -> Section {
        Section { id, title, body }
    }
}

/// A section of the page: `None` when this report has nothing to show in it.
type SectionFn = fn(&Input) -> io::Result<Option<Section>>;

/// The page, in the order a reader asks: what to use, the verdict, a contender sweep, the
/// table, the plots, fairness, what
/// happens when the holder dies (`--crash`), the kernel's account (`--kernel-trace`), the
/// comparison with a baseline, where the numbers came from, the data files.
const SECTIONS: &[SectionFn] = &[
    sections::what_to_use,
    sections::verdict,
    sections::sweep,
    sections::main_table,
    sections::latency,
    sections::whoops,
    sections::contenders,
    sections::opportunity,
    sections::frontier,
    holder_death::holder_death,
    kernel::kernel,
    sections::baseline,
    sections::machine,
    files::files,
];

/// The page's HTML for `report`, linking the files already in `dir`.
pub fn render(report: &CompareReport, dir: &OutDir) -> io::Result<String> {
    let input = Input {
        report,
        rows: report.summary(),
        dir,
    };
    let mut nav = Vec::new();
    let mut body = String::new();
    for section in SECTIONS {
        if let Some(s) = section(&input)? {
            nav.push(format!("<a href=\"#{}\">{}</a>", s.id, esc(s.title)));
            body.push_str(&format!(
                "<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n",
                s.id,
                esc(s.title),
                s.body
            ));
        }
    }
    Ok(page::page("lockfair compare", &nav.join(" "), &body))
}

impl Exporter for Html {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        dir.write("report.html", render(report, dir)?.as_bytes())
    }
}
