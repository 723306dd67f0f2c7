//! `lockfair-client bench`: is lockfair measuring the mechanism, or itself?
//!
//! For each placement and each handoff mechanism, it alternates runs of a minimal C ping-pong
//! (`bench/pingpong.c`: fork, two processes, nothing measured inside the loop) with lockfair runs
//! of the same mechanism, in the same process placement, and compares the mean round trip. Runs
//! alternate so that drift on a noisy machine (frequency, neighbours) hits both alike; medians over
//! the repeats are compared.

use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use super::run::{RunOptions, Shape, run};
use super::spawn::{SpawnError, SpawnedServer, find_server};
use crate::outcome::Spread;
use crate::placement::{Placement, allowed_cpus};
use crate::sys::signal;
use crate::text::{Table, fmt_ns};
use crate::variant::Variant;

/// What to benchmark.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The compiled `bench/pingpong.c`.
    pub pingpong: PathBuf,
    pub rounds: u64,
    pub repeats: usize,
    pub placements: Vec<Placement>,
    pub server_bin: Option<PathBuf>,
}

/// One mechanism on one placement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRow {
    pub placement: Placement,
    pub mechanism: &'static str,
    /// Median of the C ping-pong's mean round trips, ns.
    pub c_ns: f64,
    /// Median of lockfair's mean round trips (client wall time / turns), ns.
    pub lockfair_ns: Option<f64>,
    /// lockfair / C.
    pub ratio: Option<f64>,
}

/// Why the benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot run {path}: {err} (build it with `cc -O2 -o {path} bench/pingpong.c`)")]
    Pingpong { path: String, err: String },
    #[error("lockfair run failed")]
    Run(#[from] super::RunError),
    #[error("interrupted")]
    Interrupted,
}

/// The mechanisms both sides implement.
const MECHANISMS: [(&str, Variant); 3] = [
    ("eventfd", Variant::Eventfd),
    ("futex", Variant::Futex),
    ("pipe", Variant::Pipe),
];

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

/// Runs the comparison, calling `progress` with a line per finished measurement.
pub fn bench(
    opts: &BenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<BenchRow>, BenchError> {
    let (server, placements) = prepare(opts, &mut progress)?;
    let mut rows = Vec::new();
    for placement in placements {
        for (name, variant) in MECHANISMS {
            let (mut c, mut ours) = (Vec::new(), Vec::new());
            for _ in 0..opts.repeats {
                if signal::stop_requested() {
                    return Err(BenchError::Interrupted);
                }
                c.push(pingpong(&opts.pingpong, name, opts.rounds, placement)?);
                let r = run(&RunOptions::new(
                    server.socket().to_path_buf(),
                    variant,
                    placement,
                    Shape::new(opts.rounds, 600.0),
                ))?;
                ours.push(r.client.wall_ns as f64 / r.client.rounds.max(1) as f64);
            }
            let (c_ns, lf_ns) = (median(&mut c), median(&mut ours));
            progress(&format!(
                "{placement} {name}: C {} lockfair {}",
                fmt_ns(c_ns),
                fmt_ns(lf_ns)
            ));
            rows.push(BenchRow {
                placement,
                mechanism: name,
                c_ns,
                lockfair_ns: Some(lf_ns),
                ratio: Some(lf_ns / c_ns),
            });
        }
        if placement == Placement::Split {
            // The cache-line limit: two CPUs spinning on one word. C only (spinning on one CPU
            // would take a scheduler tick per turn).
            let mut spin: Vec<f64> = (0..opts.repeats)
                .map(|_| pingpong(&opts.pingpong, "spin", opts.rounds * 10, placement))
                .collect::<Result<_, _>>()?;
            rows.push(BenchRow {
                placement,
                mechanism: "spin (C only)",
                c_ns: median(&mut spin),
                lockfair_ns: None,
                ratio: None,
            });
        }
    }
    Ok(rows)
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

/// The table the terminal and README show.
pub fn table(rows: &[BenchRow]) -> Table {
    let mut t = Table::new(
        &[
            "placement",
            "mechanism",
            "C ping-pong",
            "lockfair",
            "lockfair / C",
        ],
        2,
    );
    for r in rows {
        t.push(vec![
            r.placement.to_string(),
            r.mechanism.to_string(),
            fmt_ns(r.c_ns),
            r.lockfair_ns.map_or("-".into(), fmt_ns),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}×")),
        ]);
    }
    t
}

/// One spin bound on one placement, against plain `futex` there.
#[derive(Clone, Debug, serde::Serialize)]
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
                let variant = if spin.is_some() {
                    Variant::SpinFutex
                } else {
                    Variant::Futex
                };
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
