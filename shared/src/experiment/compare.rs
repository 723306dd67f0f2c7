//! `lockfair-client compare`: start a private server, run every variant × placement × repeat,
//! and fill the result model ([`CompareReport`]) cell by cell. The caller is told as the report
//! grows (after a cell, at most every [`UPDATE_EVERY`], and at the end), so it can write the
//! report folder (the binary hands it to `report::ReportDir`): a Ctrl-C keeps what was
//! finished, a crash all but the last second.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::progress;
use super::run::{HoldIdleError, RunError, RunOptions, Shape, hold_idle, run, run_with_cost};
use super::spawn::{SpawnError, SpawnedServer, find_server};
use super::unequal::UnequalError;
use super::wakeup::cross_cpu_wakeup_ns;
use crate::outcome::kernel::{KernelTrace, Timeline};
use crate::outcome::sweep::{OwnCost, Sweep};
use crate::outcome::{CellMetrics, CompareReport, Failure, RunReport, Skipped};
use crate::placement::{Placement, allowed_cpus};
use crate::sys::signal;
use crate::variant::Variant;

/// How often the caller hears of the report while cells run. Rewriting every file of a report
/// after every cell cost more than the cells themselves once it held a few hundred repeats.
pub const UPDATE_EVERY: Duration = Duration::from_secs(1);

/// What to compare.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub variants: Vec<Variant>,
    pub placements: Vec<Placement>,
    /// Every cell's shape; `max_seconds` is the time limit per cell. With a sweep its
    /// `contenders` is the largest count, the one the usual tables describe.
    pub shape: Shape,
    /// `--contenders` with several counts: a sweep, every cell at each count in this order.
    /// Empty (or one count): only `shape.contenders`, as before sweeps existed.
    pub sweep: Vec<usize>,
    pub repeats: usize,
    pub server_bin: Option<PathBuf>,
    /// The command line, recorded in the report.
    pub command: String,
    /// Record the kernel's account of every cell (`--kernel-trace`).
    pub kernel_trace: bool,
    /// Hold every CPU out of idle for the whole comparison (`--hold-idle`).
    pub hold_idle: bool,
}

/// Why the comparison could not run (a failing cell is not an error: it is reported). `E` is
/// the caller's error from taking in the report after a cell.
#[derive(Debug, Error)]
pub enum CompareError<E> {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Update(E),
    #[error(transparent)]
    HoldIdle(#[from] HoldIdleError),
    #[error(transparent)]
    Unequal(#[from] super::unequal::UnequalError),
}

/// The cells to run, and the report that already lists the ones that cannot run here.
#[derive(Debug)]
pub struct ComparePlan {
    pub report: CompareReport,
    /// One group per contender count (one in all unless sweeping).
    groups: Vec<CountCells>,
}

/// The cells that can run at one contender count.
#[derive(Debug)]
struct CountCells {
    contenders: usize,
    placements: Vec<Placement>,
    variants: Vec<Variant>,
}

impl ComparePlan {
    /// Cells per repeat.
    fn cells(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.placements.len() * g.variants.len())
            .sum()
    }
}

impl CompareOptions {
    /// The contender counts to run, in order: the sweep's, or the shape's one.
    fn counts(&self) -> Vec<usize> {
        if self.sweeping() {
            self.sweep.clone()
        } else {
            vec![self.shape.contenders]
        }
    }

    /// Every count of a sweep takes the `--hold`, `--think` and `--nice` lists given (a list of
    /// one per contender fits one count only): checked before anything is measured.
    pub fn sweep_fits(&self) -> Result<(), UnequalError> {
        let root = nix::unistd::geteuid().is_root();
        self.sweep
            .iter()
            .try_for_each(|&n| self.shape.unequal.check(n, root))
    }

    /// The cell of `variant` on `placement` with `n` contenders, against the server at `socket`
    /// (only the report's own count is traced: the timelines are of its cells).
    fn cell(&self, socket: &Path, n: usize, variant: Variant, placement: Placement) -> RunOptions {
        let shape = Shape {
            contenders: n,
            ..self.shape.clone()
        };
        let mut cell = RunOptions::new(socket.to_path_buf(), variant, placement, shape);
        cell.kernel_trace = self.kernel_trace && n == self.shape.contenders;
        cell
    }

    /// What the progress bar says while `cell` runs.
    fn cell_name(&self, cell: &RunOptions, repeat: usize) -> String {
        let count = match self.sweeping() {
            true => format!(", {} contenders", cell.shape.contenders),
            false => String::new(),
        };
        format!(
            "{} {}{count} (repeat {})",
            cell.variant,
            cell.placement,
            repeat + 1
        )
    }

    /// Several contender counts: the report gets a [`Sweep`].
    fn sweeping(&self) -> bool {
        self.sweep.len() > 1
    }
}

/// What a comparison produced.
#[derive(Debug)]
pub struct CompareOutcome {
    pub report: CompareReport,
    /// SIGINT or SIGTERM stopped it early; the report holds the cells finished before.
    pub interrupted: bool,
    /// `--kernel-trace`: the first repeat's timeline of every cell the kernel traced.
    pub timelines: Vec<(Variant, Placement, Timeline)>,
}

/// `results/<UTC date-time>`.
pub fn default_out_dir() -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    Path::new("results").join(stamp)
}

/// Sorts the cells asked for into those that can run here and those that cannot (a placement
/// this machine cannot give, a variant that does not support the mode or contender count),
/// which the report lists as skipped with the reason.
pub fn plan(opts: &CompareOptions) -> ComparePlan {
    let mut report = CompareReport::new(
        opts.command.clone(),
        opts.variants.clone(),
        opts.placements.clone(),
    );
    if opts.sweeping() {
        report.sweep = Some(Sweep::new(opts.sweep.clone()));
    }
    let groups = opts
        .counts()
        .into_iter()
        .map(|n| plan_count(opts, n, &mut report))
        .collect();
    ComparePlan { report, groups }
}

/// The cells that can run with `n` contenders; the others go to the report as skipped (named
/// with their count in a sweep).
fn plan_count(opts: &CompareOptions, n: usize, report: &mut CompareReport) -> CountCells {
    let at = |why: &dyn std::fmt::Display| match opts.sweeping() {
        true => format!("at {n} contenders: {why}"),
        false => why.to_string(),
    };
    let mut placements = Vec::new();
    for &placement in &opts.placements {
        match placement.assign(allowed_cpus(), n) {
            Ok(_) => placements.push(placement),
            Err(why) => skip(report, &opts.variants, &[placement], at(&why)),
        }
    }
    let mut variants = Vec::new();
    for &variant in &opts.variants {
        match variant.supports(opts.shape.mode, n) {
            Ok(()) => variants.push(variant),
            Err(why) => skip(report, &[variant], &placements, at(&why)),
        }
    }
    CountCells {
        contenders: n,
        placements,
        variants,
    }
}

/// Lists every cell of `variants` × `placements` as skipped for `why`.
fn skip(
    report: &mut CompareReport,
    variants: &[Variant],
    placements: &[Placement],
    why: impl std::fmt::Display,
) {
    for &placement in placements {
        for &variant in variants {
            report.skipped.push(Skipped {
                variant,
                placement,
                reason: why.to_string(),
            });
        }
    }
}

/// Runs the cells of `plan`, calling `update` with the report after a cell when
/// [`UPDATE_EVERY`] has passed since the last call, and once at the end. Cells run repeat by repeat (all cells once, then again) so slow drift on the machine
/// spreads over every cell instead of landing on one.
pub fn compare<E>(
    opts: &CompareOptions,
    plan: ComparePlan,
    mut update: impl FnMut(&CompareReport) -> Result<(), E>,
) -> Result<CompareOutcome, CompareError<E>> {
    // A list that does not fit is the user's mistake, not a failed cell: say so before starting.
    opts.shape
        .unequal
        .check(opts.shape.contenders, nix::unistd::geteuid().is_root())?;
    signal::install_stop_handler();
    let _held = hold_idle(opts.hold_idle)?;
    let server = SpawnedServer::start(&find_server(opts.server_bin.as_deref())?)?;
    let bar = progress::bar((opts.repeats * plan.cells()) as u64);
    let ComparePlan { mut report, groups } = plan;
    // What a wakeup costs on this machine, as the cells will pay it.
    report.machine.idle.held_off = opts.hold_idle;
    report.machine.idle.wakeup_ns = cross_cpu_wakeup_ns();
    let mut interrupted = false;
    let mut timelines = Vec::new();
    let mut updated = Instant::now();
    'all: for repeat in 0..opts.repeats {
        for (group, variant, placement) in groups.iter().flat_map(CountCells::cells) {
            let cell = opts.cell(server.socket(), group.contenders, variant, placement);
            bar.set_message(opts.cell_name(&cell, repeat));
            match run_cell(&cell, repeat, &mut report) {
                Cell::Interrupted => {
                    interrupted = true;
                    break 'all;
                }
                Cell::Done(Some(t)) if repeat == 0 => timelines.push((variant, placement, t)),
                Cell::Done(_) => {}
            }
            bar.inc(1);
            if updated.elapsed() >= UPDATE_EVERY {
                update(&report).map_err(CompareError::Update)?;
                updated = Instant::now();
            }
        }
    }
    bar.finish_and_clear();
    drop(server);
    update(&report).map_err(CompareError::Update)?;
    Ok(CompareOutcome {
        report,
        interrupted,
        timelines,
    })
}

/// How a cell ended.
#[derive(Debug, PartialEq, Eq)]
enum Cell {
    /// Measured (with the kernel's timeline, if traced), or failed and listed as a failure.
    Done(Option<Timeline>),
    /// SIGINT or SIGTERM came before or during it: not a finished cell.
    Interrupted,
}

impl CountCells {
    /// Its cells, placement by placement.
    fn cells(&self) -> impl Iterator<Item = (&CountCells, Variant, Placement)> {
        self.placements
            .iter()
            .flat_map(move |&p| self.variants.iter().map(move |&v| (self, v, p)))
    }
}

/// Runs `cell`: in a sweep with what lockfair cost meanwhile.
fn run_maybe_costed(cell: &RunOptions, sweeping: bool) -> Result<(RunReport, OwnCost), RunError> {
    if sweeping {
        run_with_cost(cell)
    } else {
        run(cell).map(|r| (r, OwnCost::default()))
    }
}

/// Runs one cell and adds its result (or its failure) to `report`: to the usual tables when it
/// has the report's contender count (the largest of a sweep), to the sweep if there is one.
fn run_cell(cell: &RunOptions, repeat: usize, report: &mut CompareReport) -> Cell {
    if signal::stop_requested() {
        return Cell::Interrupted;
    }
    let n = cell.shape.contenders;
    let main = report
        .sweep
        .as_ref()
        .is_none_or(|s| s.counts.iter().max() == Some(&n));
    match run_maybe_costed(cell, report.sweep.is_some()) {
        Ok((r, cost)) => {
            if let Some(sweep) = report.sweep.as_mut() {
                sweep.add(&r, &CellMetrics::of(&r), repeat, cost);
            }
            if main {
                report.add_run(&r, repeat);
            }
            let traced = r.kernel.and_then(|k| match k {
                KernelTrace::Recorded(k) => Some(k.timeline),
                KernelTrace::Unavailable(_) => None,
            });
            return Cell::Done(traced);
        }
        // A cell cut short by Ctrl-C is not a finished cell.
        Err(_) if signal::stop_requested() => return Cell::Interrupted,
        Err(e) => report.failures.push(Failure {
            variant: cell.variant,
            placement: cell.placement,
            repeat,
            error: match report.sweep {
                Some(_) => format!("at {n} contenders: {}", crate::errors::error_chain(&e)),
                None => crate::errors::error_chain(&e),
            },
        }),
    }
    Cell::Done(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variant::Mode;

    #[test]
    fn the_plan_lists_unsupported_cells_as_skipped_and_keeps_the_rest() {
        let opts = CompareOptions {
            variants: vec![Variant::Ofd, Variant::LockChain, Variant::Pipe],
            placements: vec![Placement::Free],
            shape: Shape {
                mode: Mode::Free,
                ..Shape::new(10, 1.0)
            },
            sweep: Vec::new(),
            repeats: 1,
            server_bin: None,
            command: "test".into(),
            kernel_trace: false,
            hold_idle: false,
        };
        let plan = plan(&opts);
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].variants, [Variant::Ofd, Variant::Pipe]);
        assert_eq!(plan.groups[0].placements, [Placement::Free]);
        assert_eq!(plan.cells(), 2);
        let skipped: Vec<_> = plan
            .report
            .skipped
            .iter()
            .map(|s| (s.variant, s.placement))
            .collect();
        assert_eq!(skipped, [(Variant::LockChain, Placement::Free)]);
        assert!(plan.report.skipped[0].reason.contains("--mode turns"));
        assert!(plan.report.runs.is_empty() && plan.report.failures.is_empty());
    }
}
