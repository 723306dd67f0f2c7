//! `lockfair-client demo`: the story, run live on the user's machine. Each claim of
//! [`crate::outcome::claims`] is measured over a few short repeats against a private server,
//! and said to hold here or differ here, with the median and an interval over the repeats;
//! claims that need root or two CPUs say so in one line and the demo goes on. The two-contender
//! cells also fill a comparison, from which the demo ends with "What to use".

use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use super::run::{RunOptions, Shape, run};
use super::spawn::{SpawnError, SpawnedServer, find_server};
use super::wakeup::cross_cpu_wakeup_ns;
use crate::crash::{CrashOptions, crash};
use crate::errors::error_chain;
use crate::outcome::claims::{CLAIMS, Cell, Claim, Figure, Needs, named};
use crate::outcome::{CellMetrics, CompareReport, RunReport, Spread};
use crate::placement::{Placement, allowed_cpus};
use crate::sys::signal;
use crate::variant::{Death, Description, Mode, Variant};

/// What the demo is run with.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub server_bin: Option<PathBuf>,
    /// This program, for the holder-death cells' children.
    pub helper: PathBuf,
    /// Runs of every cell (5: the range of five runs, the interval `compare` gives five
    /// repeats, holds the median with 93.75%).
    pub repeats: usize,
    /// The command line, recorded in the report.
    pub command: String,
}

/// One claim as measured here.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub id: &'static str,
    pub says: &'static str,
    pub why: &'static str,
    pub unit: &'static str,
    /// The condition under which the claim holds, e.g. `> 0`.
    pub expected: String,
    /// The median over the repeats, and the interval (min–max of the repeats) with the level at
    /// which it holds the median; all `None` when the step did not run.
    pub median: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub level: Option<f64>,
    pub repeats: usize,
    /// Holds here (`Some(true)`), differs here (`Some(false)`), or not run.
    pub holds: Option<bool>,
    /// Why the step did not run here, in one line.
    pub skipped: Option<String>,
}

/// Everything the demo measured.
#[derive(Debug)]
pub struct DemoReport {
    pub steps: Vec<Step>,
    /// The two-contender turns cells, for "What to use" and the machine section.
    pub compare: CompareReport,
}

/// Why the demo could not run at all (a failing step is reported in its step).
#[derive(Debug, Error)]
pub enum DemoError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("interrupted")]
    Interrupted,
}

/// Runs every claim, calling `progress` after each step.
pub fn demo(opts: &DemoOptions, mut progress: impl FnMut(&Step)) -> Result<DemoReport, DemoError> {
    signal::install_stop_handler();
    let server = SpawnedServer::start(&find_server(opts.server_bin.as_deref())?)?;
    let mut compare = CompareReport::new(
        opts.command.clone(),
        Vec::new(),
        vec![Placement::Split, Placement::SameCpu],
    );
    compare.machine.idle.wakeup_ns = cross_cpu_wakeup_ns();
    let mut lab = Lab {
        socket: server.socket().to_path_buf(),
        opts,
        compare: &mut compare,
    };
    let mut steps = Vec::new();
    for claim in CLAIMS {
        if signal::stop_requested() {
            return Err(DemoError::Interrupted);
        }
        let step = lab.step(claim);
        progress(&step);
        steps.push(step);
    }
    Ok(DemoReport { steps, compare })
}

/// The demo's bench: where cells run, and the comparison they fill.
struct Lab<'a> {
    socket: PathBuf,
    opts: &'a DemoOptions,
    compare: &'a mut CompareReport,
}

impl Lab<'_> {
    fn step(&mut self, claim: &Claim) -> Step {
        let mut step = Step {
            id: claim.id,
            says: claim.says,
            why: claim.why,
            unit: claim.figure.unit(),
            expected: claim.holds.describe(),
            median: None,
            lo: None,
            hi: None,
            level: None,
            repeats: 0,
            holds: None,
            skipped: unmet(claim.needs),
        };
        if step.skipped.is_some() {
            return step;
        }
        match self.measure(claim.figure) {
            Ok(values) => {
                // The comparison's own median and interval (order statistics).
                let n = values.len();
                let spread = Spread::of(values);
                step.median = Some(spread.median);
                step.lo = Some(spread.lo);
                step.hi = Some(spread.hi);
                step.level = (n > 1).then_some(spread.level);
                step.repeats = n;
                step.holds = Some(claim.holds.by(spread.median));
            }
            Err(why) => step.skipped = Some(why),
        }
        step
    }

    /// The figure of every repeat (never empty on success).
    fn measure(&mut self, figure: Figure) -> Result<Vec<f64>, String> {
        if let Figure::HolderDeath(name, death) = figure {
            let variant = named(name).ok_or_else(|| format!("no variant is called {name}"))?;
            return self.holder_death(variant, death).map(|v| vec![v]);
        }
        let mut values = Vec::new();
        for repeat in 0..self.opts.repeats {
            let runs: Vec<RunReport> = figure
                .cells()
                .into_iter()
                .map(|cell| self.run(cell, repeat))
                .collect::<Result<_, _>>()?;
            values.push(value_of(figure, &runs)?);
        }
        Ok(values)
    }

    fn run(&mut self, cell: Cell, repeat: usize) -> Result<RunReport, String> {
        let shape = Shape {
            contenders: cell.contenders,
            mode: cell.mode,
            spin: 0,
            poll_sleep: crate::variant::DEFAULT_POLL_SLEEP,
            rounds: cell.rounds,
            max_seconds: 10.0,
            unequal: Default::default(),
        };
        let variant = cell
            .variant()
            .ok_or_else(|| format!("no variant is called {}", cell.variant))?;
        let mut opts = RunOptions::new(self.socket.clone(), variant, cell.placement, shape);
        opts.kernel_trace = cell.kernel_trace;
        opts.hold_idle = cell.hold_idle;
        let report = run(&opts).map_err(|e| error_chain(&e))?;
        if cell.mode == Mode::Turns && cell.contenders == 2 && !cell.kernel_trace && !cell.hold_idle
        {
            self.compare.add_run(&report, repeat);
            if !self.compare.variants.contains(&variant) {
                self.compare.variants.push(variant);
            }
        }
        Ok(report)
    }

    /// 1 if the survivor of `variant`'s holder death got what `death` says, else 0.
    fn holder_death(&self, variant: Variant, death: Death) -> Result<f64, String> {
        let opts = CrashOptions {
            helper: self.opts.helper.clone(),
            limit: std::time::Duration::from_secs(1),
            survivable: false,
            variants: vec![variant],
            descriptions: vec![Description::Own],
        };
        let report = crash(&opts, |_| {}).map_err(|e| error_chain(&e))?;
        let cell = report
            .cells
            .first()
            .ok_or_else(|| format!("{variant} could not be killed here"))?;
        let seen = match (cell.recovered, cell.owner_died_seen) {
            (true, false) => Death::Released,
            (true, true) => Death::Told,
            (false, true) => Death::EndOfFile,
            (false, false) => Death::Held,
        };
        Ok(if seen == death { 1.0 } else { 0.0 })
    }
}

/// Why a claim cannot be measured here, if it cannot.
fn unmet(needs: Needs) -> Option<String> {
    let two_cpus = allowed_cpus().len() >= 2;
    let root = nix::unistd::geteuid().is_root();
    match needs {
        Needs::Nothing => None,
        Needs::TwoCpus | Needs::RootTwoCpus if !two_cpus => {
            Some("needs two CPUs; this process may use one".into())
        }
        Needs::Root | Needs::RootTwoCpus if !root => {
            Some("needs root (kernel tracing, or holding the CPUs out of idle)".into())
        }
        _ => None,
    }
}

/// One repeat's figure from its runs (one, or a pair for a ratio).
fn value_of(figure: Figure, runs: &[RunReport]) -> Result<f64, String> {
    let m = |i: usize| CellMetrics::of(&runs[i]);
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            Ok(a / b)
        } else {
            Err("the reference cell measured 0: no ratio".to_string())
        }
    };
    match figure {
        Figure::OverlapsPerKRound(_) => {
            Ok(m(0).overlaps as f64 * 1000.0 / m(0).rounds.max(1) as f64)
        }
        Figure::WhoopsPerRound(_) => Ok(m(0).whoops_per_round),
        Figure::RoundTripUs(_) => Ok(m(0).round_trip_p50_ns as f64 / 1e3),
        Figure::KernelBargesPerRound(_) => kernel_barges(&runs[0]),
        Figure::ThroughputRatio { .. } => {
            ratio(m(0).acquisitions_per_sec, m(1).acquisitions_per_sec)
        }
        Figure::BypassMaxRatio { .. } => {
            let max = |i: usize| m(i).order.bypass_max.map(|b| b as f64);
            match (max(0), max(1)) {
                (Some(a), Some(b)) => ratio(a.max(1.0), b.max(1.0)),
                _ => Err("no grant order was recorded".into()),
            }
        }
        Figure::RoundTripRatio { .. } => {
            ratio(m(0).round_trip_p50_ns as f64, m(1).round_trip_p50_ns as f64)
        }
        Figure::HolderDeath(..) => Err("not a run's figure".into()),
    }
}

/// Kernel-confirmed barges per round, or why the trace is missing.
fn kernel_barges(run: &RunReport) -> Result<f64, String> {
    let Some(trace) = &run.kernel else {
        return Err("no kernel trace was asked for".into());
    };
    match trace.run() {
        Some(k) => Ok(k.figures.counts.barges as f64 / CellMetrics::of(run).rounds.max(1) as f64),
        None => Err(trace.note().unwrap_or("no kernel trace").to_string()),
    }
}
