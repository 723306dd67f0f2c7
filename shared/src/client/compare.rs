//! `lockfair-client compare`: start a private server, run every variant × placement × repeat,
//! and write the report folder after every cell.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::progress;
use super::run::{RunOptions, run};
use super::spawn::{SpawnError, SpawnedServer, find_server};
use crate::placement::{Placement, allowed_cpus};
use crate::report::{CompareReport, Failure, ReportDir, ReportError, Skipped};
use crate::sys::signal;
use crate::variant::{Mode, Variant};

/// What to compare.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub variants: Vec<Variant>,
    pub placements: Vec<Placement>,
    pub rounds: u64,
    /// Time limit per cell.
    pub max_seconds: f64,
    pub mode: Mode,
    pub contenders: usize,
    /// `spin-futex`'s spin bound (0: the default).
    pub spin: u32,
    pub repeats: usize,
    /// The report folder.
    pub out: PathBuf,
    pub server_bin: Option<PathBuf>,
    /// The command line, recorded in the report.
    pub command: String,
}

/// Why the comparison could not run (a failing cell is not an error: it is reported).
#[derive(Debug, Error)]
pub enum CompareError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot update the report in {path}: {err}", path = .path.display())]
    Write { path: PathBuf, err: io::Error },
}

/// What a comparison produced.
#[derive(Debug)]
pub struct CompareOutcome {
    pub report: CompareReport,
    pub dir: PathBuf,
    /// SIGINT or SIGTERM stopped it early; the report holds the cells finished before.
    pub interrupted: bool,
}

/// `results/<UTC date-time>`.
pub fn default_out_dir() -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    Path::new("results").join(stamp)
}

/// Runs the comparison. Cells run repeat by repeat (all cells once, then again) so slow drift
/// on the machine spreads over every cell instead of landing on one.
pub fn compare(opts: &CompareOptions) -> Result<CompareOutcome, CompareError> {
    signal::install_stop_handler();
    let mut report = CompareReport::new(
        opts.command.clone(),
        opts.variants.clone(),
        opts.placements.clone(),
    );
    let mut placements = Vec::new();
    for &placement in &opts.placements {
        match placement.assign(allowed_cpus(), opts.contenders) {
            Ok(_) => placements.push(placement),
            Err(why) => report
                .skipped
                .extend(opts.variants.iter().map(|&variant| Skipped {
                    variant,
                    placement,
                    reason: why.to_string(),
                })),
        }
    }
    let mut variants = Vec::new();
    for &variant in &opts.variants {
        match variant.supports(opts.mode, opts.contenders) {
            Ok(()) => variants.push(variant),
            Err(why) => report
                .skipped
                .extend(placements.iter().map(|&placement| Skipped {
                    variant,
                    placement,
                    reason: why.to_string(),
                })),
        }
    }
    let dir = ReportDir::create(&opts.out, &report)?;
    let server = SpawnedServer::start(&find_server(opts.server_bin.as_deref())?)?;
    let total = (opts.repeats * placements.len() * variants.len()) as u64;
    let bar = progress::bar(total);
    let mut interrupted = false;
    'all: for repeat in 0..opts.repeats {
        for &placement in &placements {
            for &variant in &variants {
                if signal::stop_requested() {
                    interrupted = true;
                    break 'all;
                }
                bar.set_message(format!("{variant} {placement} (repeat {})", repeat + 1));
                let outcome = run(&RunOptions {
                    mode: opts.mode,
                    contenders: opts.contenders,
                    spin: opts.spin,
                    ..RunOptions::new(
                        server.socket().to_path_buf(),
                        variant,
                        placement,
                        opts.rounds,
                        opts.max_seconds,
                    )
                });
                match outcome {
                    Ok(r) => report.add_run(&r, repeat),
                    // A cell cut short by Ctrl-C is not a finished cell.
                    Err(_) if signal::stop_requested() => {
                        interrupted = true;
                        break 'all;
                    }
                    Err(e) => report.failures.push(Failure {
                        variant,
                        placement,
                        repeat,
                        error: crate::server::error_chain(&e),
                    }),
                }
                bar.inc(1);
                dir.write(&report).map_err(|err| CompareError::Write {
                    path: dir.path().to_path_buf(),
                    err,
                })?;
            }
        }
    }
    bar.finish_and_clear();
    drop(server);
    dir.write(&report).map_err(|err| CompareError::Write {
        path: dir.path().to_path_buf(),
        err,
    })?;
    Ok(CompareOutcome {
        report,
        dir: dir.path().to_path_buf(),
        interrupted,
    })
}
