//! `lockfair-client bench`: is lockfair measuring the mechanism, or itself?
//!
//! For each placement and each handoff mechanism, it alternates runs of a minimal C ping-pong
//! (`bench/pingpong.c`: fork, two processes, nothing measured inside the loop) with lockfair runs
//! of the same mechanism, in the same process placement, and compares the mean round trip. Runs
//! alternate so that drift on a noisy machine (frequency, neighbours) hits both alike; medians over
//! the repeats are compared, each cell with its range. On split CPUs it also sets `spin-futex`
//! against the C program's pure spin (two CPUs spinning on one word: the cache-line floor).
//! `--json` prints [`BenchReport`], the same table as data.

use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use super::run::{RunOptions, Shape, run};
use super::spawn::{SpawnError, SpawnedServer, find_server};
use crate::outcome::Spread;
use crate::placement::{Placement, allowed_cpus};
use crate::sys::signal;
use crate::text::{Table, fmt_ns};
use crate::variant::{self, Variant};

/// What to benchmark.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The compiled `bench/pingpong.c`.
    pub pingpong: PathBuf,
    /// The compiled `bench/spin_anatomy.c`: if given, split CPUs get one more row, `spin-futex`
    /// against a C spin ping-pong that measures every turn the way lockfair does.
    pub anatomy: Option<PathBuf>,
    pub rounds: u64,
    pub repeats: usize,
    pub placements: Vec<Placement>,
    pub server_bin: Option<PathBuf>,
}

/// What `bench` measured: the table as data (`bench --json`), with its shape, so scripts can
/// track the ratios across runs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchReport {
    /// Round trips per run.
    pub rounds: u64,
    /// Alternating runs of each side per cell.
    pub repeats: usize,
    pub rows: Vec<BenchRow>,
}

/// One mechanism on one placement. The `*_ns` medians and `ratio` are the table's figures; the
/// spreads give median and range over the repeats.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchRow {
    pub placement: Placement,
    /// The C ping-pong's mode: `eventfd`, `futex`, `pipe`, or `spin` (both sides spinning on one
    /// word: the cache-line floor); `measured-spin` is `spin_anatomy.c`'s step 3 (the same
    /// spin, with lockfair's two timestamps, overlap detector and release stamp per turn).
    pub mechanism: String,
    /// The lockfair variant run against it (`spin-futex` against `spin`).
    pub variant: Variant,
    /// Median of the C ping-pong's mean round trips, ns.
    pub c_ns: f64,
    /// Median of lockfair's mean round trips (client wall time / turns), ns.
    pub lockfair_ns: Option<f64>,
    /// lockfair / C, of the medians.
    pub ratio: Option<f64>,
    /// The C ping-pong's mean round trip over the repeats, ns.
    pub c_spread_ns: Spread,
    /// lockfair's mean round trip over the repeats, ns.
    pub lockfair_spread_ns: Spread,
    /// lockfair's median round trip (its own histogram, the client side) over the repeats, ns:
    /// what a turn costs when no preemption lands in it, which the means above include.
    pub lockfair_p50_spread_ns: Spread,
    /// lockfair / C of each repeat's pair of runs, over the repeats.
    pub ratio_spread: Spread,
}

/// Why the benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(
        "cannot run {path}: {err} (build it with `cc -O2 -o {path} bench/pingpong.c`, or bench/spin_anatomy.c for --anatomy)"
    )]
    Pingpong { path: String, err: String },
    #[error("lockfair run failed")]
    Run(#[from] super::RunError),
    #[error("interrupted")]
    Interrupted,
    #[error("no variant declares pingpong.c's {0} mode as its yardstick (a variant's spec)")]
    NoCounterpart(&'static str),
}

/// The mechanisms both sides implement, in report order: the C ping-pong's mode, lockfair's
/// variant, and the one placement where the pair is worth running (`None`: all), as each
/// variant's spec declares its yardstick.
pub(crate) fn mechanisms() -> Vec<(&'static str, Variant, Option<Placement>)> {
    Variant::ALL
        .into_iter()
        .filter_map(|variant| match variant.spec().yardstick {
            variant::Yardstick::Counterpart { mode, only } => Some((mode, variant, only)),
            variant::Yardstick::NoCounterpart(_) => None,
        })
        .collect()
}

/// The C ping-pong's spin, and its futex wait (the sweep's baseline: no spinning).
const SPIN: &str = "spin";
const FUTEX: &str = "futex";

/// lockfair's counterpart of the C ping-pong's `mode`.
fn counterpart(mode: &'static str) -> Result<Variant, BenchError> {
    mechanisms()
        .into_iter()
        .find(|&(m, _, _)| m == mode)
        .map(|(_, variant, _)| variant)
        .ok_or(BenchError::NoCounterpart(mode))
}

/// The row `--anatomy` adds on split CPUs, and the step of `spin_anatomy.c` it runs: step 3,
/// everything lockfair measures per turn (step 4 samples the timing instead).
const MEASURED_SPIN: &str = "measured-spin";
const ANATOMY_STEP: &str = "3";

/// A C program and the mode argument it is run with.
struct Yardstick<'a> {
    path: &'a Path,
    mode: &'a str,
}

/// Starts the private server and keeps the placements this machine can honour (saying which it
/// skips).
fn prepare(
    opts: &BenchOptions,
    progress: &mut impl FnMut(&str),
) -> Result<(SpawnedServer, Vec<Placement>), BenchError> {
    signal::install_stop_handler();
    let server = SpawnedServer::start(&find_server(opts.server_bin.as_deref())?)?;
    let mut possible = Vec::new();
    for &placement in &opts.placements {
        if placement.assign(allowed_cpus(), 2).is_ok() {
            possible.push(placement);
        } else {
            progress(&format!(
                "{placement}: not possible on this machine, skipped"
            ));
        }
    }
    Ok((server, possible))
}

/// The cells of one placement: each mechanism where it is worth running, then (with
/// `--anatomy`, on split CPUs) `spin-futex` against the C spin that times its turns.
fn cells(
    opts: &BenchOptions,
    placement: Placement,
) -> Result<Vec<(&'static str, Yardstick<'_>, Variant)>, BenchError> {
    let mut cells: Vec<_> = mechanisms()
        .into_iter()
        .filter(|(_, _, only)| only.is_none_or(|p| p == placement))
        .map(|(name, variant, _)| {
            let c = Yardstick {
                path: &opts.pingpong,
                mode: name,
            };
            (name, c, variant)
        })
        .collect();
    if let Some(path) = opts.anatomy.as_deref()
        && placement == Placement::Split
    {
        let c = Yardstick {
            path,
            mode: ANATOMY_STEP,
        };
        cells.push((MEASURED_SPIN, c, counterpart(SPIN)?));
    }
    Ok(cells)
}

/// Runs the comparison, calling `progress` with a line per finished measurement.
pub fn bench(
    opts: &BenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<BenchReport, BenchError> {
    let (server, placements) = prepare(opts, &mut progress)?;
    let mut rows = Vec::new();
    for placement in placements {
        for (name, c, variant) in cells(opts, placement)? {
            rows.push(measured_cell(
                opts,
                &server,
                placement,
                name,
                c,
                variant,
                &mut progress,
            )?);
        }
    }
    Ok(BenchReport {
        rounds: opts.rounds,
        repeats: opts.repeats,
        rows,
    })
}

/// [`cell`], then a progress line with its medians.
fn measured_cell(
    opts: &BenchOptions,
    server: &SpawnedServer,
    placement: Placement,
    name: &str,
    c: Yardstick,
    variant: Variant,
    progress: &mut impl FnMut(&str),
) -> Result<BenchRow, BenchError> {
    let row = cell(opts, server, placement, name, c, variant)?;
    progress(&format!(
        "{placement} {name}: C {} lockfair {} ({variant}, p50 {})",
        fmt_ns(row.c_ns),
        fmt_ns(row.lockfair_spread_ns.median),
        fmt_ns(row.lockfair_p50_spread_ns.median),
    ));
    Ok(row)
}

/// One cell: `repeats` alternating pairs of a C run and a lockfair run.
fn cell(
    opts: &BenchOptions,
    server: &SpawnedServer,
    placement: Placement,
    name: &str,
    yardstick: Yardstick,
    variant: Variant,
) -> Result<BenchRow, BenchError> {
    let (mut c, mut ours, mut p50, mut ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..opts.repeats {
        if signal::stop_requested() {
            return Err(BenchError::Interrupted);
        }
        let c_ns = pingpong(yardstick.path, yardstick.mode, opts.rounds, placement)?;
        let r = run(&RunOptions::new(
            server.socket().to_path_buf(),
            variant,
            placement,
            Shape::new(opts.rounds, 600.0),
        ))?;
        let lf_ns = r.client.wall_ns as f64 / r.client.rounds.max(1) as f64;
        c.push(c_ns);
        ours.push(lf_ns);
        p50.push(r.client.round_trip.value_at_quantile(0.5) as f64);
        ratios.push(lf_ns / c_ns);
    }
    let (c, ours) = (Spread::of(c), Spread::of(ours));
    Ok(BenchRow {
        placement,
        mechanism: name.to_string(),
        variant,
        c_ns: c.median,
        lockfair_ns: Some(ours.median),
        ratio: Some(ours.median / c.median),
        c_spread_ns: c,
        lockfair_spread_ns: ours,
        lockfair_p50_spread_ns: Spread::of(p50),
        ratio_spread: Spread::of(ratios),
    })
}

/// Runs the C ping-pong once; returns its mean round trip in ns.
fn pingpong(path: &Path, mode: &str, rounds: u64, placement: Placement) -> Result<f64, BenchError> {
    let fail = |err: String| BenchError::Pingpong {
        path: path.display().to_string(),
        err,
    };
    let where_ = match placement {
        Placement::SameCpu => "same",
        Placement::Split => "split",
        Placement::Free => "free",
    };
    // A run is a fraction of a second to a few seconds; a minute means it hangs.
    let out = crate::command::output_within(
        Command::new(path).args([mode, &rounds.to_string(), where_]),
        std::time::Duration::from_secs(60),
    )
    .map_err(|e| fail(e.to_string()))?
    .ok_or_else(|| fail("did not finish within 60 s".into()))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{} ({})", out.status, why.trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // "eventfd split 45.032 us/round-trip"
    text.split_whitespace()
        .nth(2)
        .and_then(|us| us.parse::<f64>().ok())
        .map(|us| us * 1e3)
        .ok_or_else(|| fail(format!("unexpected output {text:?}")))
}

fn median(v: &mut Vec<f64>) -> f64 {
    Spread::of(std::mem::take(v)).median
}

/// The table the terminal and README show: medians, and beside them the ratio of each repeat's
/// pair of runs (their median and range). The paired median is the steadier figure on a host
/// whose speed jumps between runs: both runs of a pair, back to back, mostly share a state.
pub fn table(report: &BenchReport) -> Table {
    let mut t = Table::new(
        &[
            "placement",
            "mechanism",
            "C ping-pong",
            "lockfair",
            "lockfair / C",
            "paired",
            "range",
            "lockfair p50",
        ],
        2,
    );
    for r in &report.rows {
        let mechanism = if r.mechanism == r.variant.name() {
            r.mechanism.clone()
        } else {
            format!("{} (lockfair: {})", r.mechanism, r.variant)
        };
        t.push(vec![
            r.placement.to_string(),
            mechanism,
            fmt_ns(r.c_ns),
            r.lockfair_ns.map_or("-".into(), fmt_ns),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}×")),
            format!("{:.2}×", r.ratio_spread.median),
            format!("{:.2}–{:.2}×", r.ratio_spread.min, r.ratio_spread.max),
            fmt_ns(r.lockfair_p50_spread_ns.median),
        ]);
    }
    t
}

/// One spin bound on one placement, against plain `futex` there.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SweepRow {
    pub placement: Placement,
    /// `None`: plain `futex`, the reference.
    pub spin: Option<u32>,
    /// Median over repeats of the mean round trip (client wall time / turns), ns.
    pub round_trip_ns: f64,
    /// Median over repeats of both sides' CPU time per round, ns.
    pub cpu_ns_per_round: f64,
}

/// The spin bounds the sweep tries.
pub const SPIN_BOUNDS: [u32; 8] = [1, 16, 64, 256, 1024, 4096, 16384, 65536];

/// Runs `spin-futex` with every bound in [`SPIN_BOUNDS`], and plain `futex`, on each placement.
pub fn spin_sweep(
    opts: &BenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<SweepRow>, BenchError> {
    let (spinner, sleeper) = (counterpart(SPIN)?, counterpart(FUTEX)?);
    let (server, placements) = prepare(opts, &mut progress)?;
    let mut rows = Vec::new();
    for placement in placements {
        let cases = std::iter::once(None).chain(SPIN_BOUNDS.iter().copied().map(Some));
        for spin in cases {
            let (mut rt, mut cpu) = (Vec::new(), Vec::new());
            for _ in 0..opts.repeats {
                if signal::stop_requested() {
                    return Err(BenchError::Interrupted);
                }
                let variant = if spin.is_some() { spinner } else { sleeper };
                let r = run(&RunOptions::new(
                    server.socket().to_path_buf(),
                    variant,
                    placement,
                    Shape {
                        spin: spin.unwrap_or(0),
                        ..Shape::new(opts.rounds, 600.0)
                    },
                ))?;
                let turns = r.client.rounds.max(1) as f64;
                rt.push(r.client.wall_ns as f64 / turns);
                cpu.push((r.server.rusage.cpu_ns() + r.client.rusage.cpu_ns()) as f64 / turns);
            }
            let row = SweepRow {
                placement,
                spin,
                round_trip_ns: median(&mut rt),
                cpu_ns_per_round: median(&mut cpu),
            };
            progress(&format!(
                "{placement} {}: round trip {} CPU {}",
                spin.map_or("futex".into(), |s| format!("spin {s}")),
                fmt_ns(row.round_trip_ns),
                fmt_ns(row.cpu_ns_per_round)
            ));
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The sweep's table: each bound's round trip and CPU per round as multiples of plain futex.
pub fn sweep_table(rows: &[SweepRow]) -> Table {
    let mut t = Table::new(
        &[
            "placement",
            "variant",
            "round trip",
            "× futex",
            "CPU/round",
            "CPU × futex",
        ],
        2,
    );
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.placement == r.placement && b.spin.is_none());
        let ratio = |x: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}×", x / b)
            } else {
                "-".into()
            }
        };
        t.push(vec![
            r.placement.to_string(),
            r.spin
                .map_or("futex".into(), |s| format!("spin-futex --spin {s}")),
            fmt_ns(r.round_trip_ns),
            base.map_or("-".into(), |b| ratio(r.round_trip_ns, b.round_trip_ns)),
            fmt_ns(r.cpu_ns_per_round),
            base.map_or("-".into(), |b| {
                ratio(r.cpu_ns_per_round, b.cpu_ns_per_round)
            }),
        ]);
    }
    t
}
