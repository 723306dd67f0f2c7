//! Turning the result model ([`crate::outcome`]) into things people and programs read. The top
//! layer: it imports the model, never the code that measured it.
//!
//! [`terminal`] prints a run or a comparison as aligned tables. A [`ReportDir`] writes a
//! [`CompareReport`] out through one exporter per format (`summary.md`, `summary.json`, `.hgrm`
//! files, SVG plots, `frontier.svg` in `free` mode, `contenders-*.svg` for a contender sweep,
//! `report.html`), each file replaced
//! atomically, after every cell: a crash or a Ctrl-C keeps what was finished. Every file goes
//! through the folder's [`OutDir`], so no planted symlink redirects a write.

pub mod baseline;
pub mod demo;
pub mod family;
pub(crate) mod frontier;
pub mod hgrm;
pub mod html;
pub mod json;
pub mod kernel;
mod labels;
mod latency;
mod markdown;
pub mod opportunity;
mod plots;
pub mod stops;
pub mod summary;
pub mod sweep;
pub(crate) mod sweep_plot;
pub mod terminal;
pub mod timeline;
pub mod what_to_use;

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::errors::error_chain;
use crate::outcome::{CompareReport, Contender, Metric};
use crate::placement::Placement;
use crate::sys::out_dir::{OutDir, OutDirError};
use crate::variant::Variant;

/// A report format: writes its files for `report` into `dir`.
trait Exporter {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()>;
}

/// Why the report folder cannot be used. `err` is shown with its sources (a plot that cannot be
/// drawn travels as an `io::Error` carrying a `plots::PlotError`).
#[derive(Debug, Error)]
pub enum ReportError {
    #[error("cannot write the report to {path}: {chain}; pass a writable --out DIR", path = .path.display(), chain = error_chain(.err))]
    Unwritable { path: PathBuf, err: io::Error },
    /// The folder cannot be made, opened, or is not safe to write in (its own advice follows).
    #[error("cannot write the report to {path}: {why}", path = .path.display())]
    Folder { path: PathBuf, why: OutDirError },
    #[error("cannot update the report in {path}: {chain}", path = .path.display(), chain = error_chain(.err))]
    Update { path: PathBuf, err: io::Error },
}

/// The report folder, opened once.
#[derive(Debug)]
pub struct ReportDir {
    dir: OutDir,
}

impl ReportDir {
    /// Creates `path` and writes the (empty) report once, so a bad path fails before anything
    /// is measured.
    pub fn create(path: &Path, report: &CompareReport) -> Result<ReportDir, ReportError> {
        let dir = OutDir::open(path).map_err(|why| ReportError::Folder {
            path: path.to_path_buf(),
            why,
        })?;
        let dir = ReportDir { dir };
        dir.write(report).map_err(|err| ReportError::Unwritable {
            path: path.to_path_buf(),
            err,
        })?;
        Ok(dir)
    }

    /// Rewrites every file from `report`.
    pub fn update(&self, report: &CompareReport) -> Result<(), ReportError> {
        self.write(report).map_err(|err| ReportError::Update {
            path: self.path().to_path_buf(),
            err,
        })
    }

    fn write(&self, report: &CompareReport) -> io::Result<()> {
        // The page last: it links the files the others wrote.
        let exporters: [&dyn Exporter; 7] = [
            &markdown::Markdown,
            &json::Json,
            &HgrmFiles,
            &plots::Plots,
            &frontier::Frontier,
            &sweep_plot::SweepPlots,
            &html::Html,
        ];
        for e in exporters {
            e.export(report, &self.dir)?;
        }
        Ok(())
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The opened folder, for files beside the report (`compare --kernel-trace`'s timelines).
    pub fn out_dir(&self) -> &OutDir {
        &self.dir
    }
}

/// `<variant>-<placement>-<contender>-<metric>.hgrm` for every latency histogram.
struct HgrmFiles;

impl Exporter for HgrmFiles {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        for ((v, p, who, m), h) in report.histograms() {
            let name = hgrm_file_name(*v, *p, *who, *m);
            dir.write(&name, hgrm::to_hgrm(h).as_bytes())?;
        }
        Ok(())
    }
}

/// `<variant>-<placement>-<contender>-<metric>.hgrm`.
fn hgrm_file_name(v: Variant, p: Placement, who: Contender, m: Metric) -> String {
    format!("{v}-{p}-{}-{}.hgrm", who.name(), m.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::drawing::DrawingAreaErrorKind;

    #[test]
    fn a_plot_that_cannot_be_drawn_is_named_with_plotters_reason() {
        let plot = plots::PlotError::drawing("whoops.svg")(DrawingAreaErrorKind::LayoutError);
        let e = ReportError::Update {
            path: PathBuf::from("/r"),
            err: io::Error::other(plot),
        };
        assert_eq!(
            e.to_string(),
            "cannot update the report in /r: cannot draw whoops.svg: Bad layout"
        );
    }
}
