//! What `--survivable`'s protection costs when nobody dies: the same two-process ping-pong in
//! `turns` mode, with and without the protection, alternating, in one run. Only the ratio of the
//! median round trips is reported: absolute times belong to `compare` and `bench`.
//!
//! The driver (contender 0) always runs a [`DeathWatcher`] as a safety net, so a child that
//! dies cannot leave it asleep: for the futex variants that is the protection itself, for
//! eventfd and pipe it is an idle thread. What differs between the two sides of the ratio is
//! the waits: `poll` on the descriptor and the pidfd, then `read`, against a bare `read`; and
//! for the futex variants, the echo's watcher thread (which adds no syscall to a handoff).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use serde::Serialize;

use super::CrashError;
use super::cells::{Description, acquire_turn, open_protected};
use super::child::{ChildProcess, Job, Report, Role};
use super::survivable::{DeathWatcher, Protection, post_eventfd, take_over};
use crate::arena::Arena;
use crate::sys::clock::monotonic_ns;
use crate::sys::pidfd;
use crate::variant::{Ctx, Mode, Opened, Variant};

/// What to measure.
#[derive(Clone, Debug)]
pub struct OverheadOptions {
    pub helper: PathBuf,
    /// Round trips per run.
    pub rounds: u64,
    /// Runs of each side; medians are compared.
    pub repeats: usize,
    /// Only these variants (every protected one if empty).
    pub variants: Vec<Variant>,
}

/// One variant's cost of protection.
#[derive(Clone, Debug, Serialize)]
pub struct OverheadRow {
    pub variant: Variant,
    pub protection: &'static str,
    /// Median protected round trip over median plain round trip, same run.
    pub ratio: f64,
    pub repeats: usize,
}

/// Every protected variant's ratio.
#[derive(Clone, Debug, Serialize)]
pub struct OverheadReport {
    pub overhead: Vec<OverheadRow>,
}

/// Measures every protected variant.
pub fn overhead(
    opts: &OverheadOptions,
    mut progress: impl FnMut(&OverheadRow),
) -> Result<OverheadReport, CrashError> {
    let mut rows = Vec::new();
    for variant in Variant::ALL {
        let Some(protection) = Protection::of(variant) else {
            continue;
        };
        if !opts.variants.is_empty() && !opts.variants.contains(&variant) {
            continue;
        }
        let (mut plain, mut protected) = (Vec::new(), Vec::new());
        for _ in 0..opts.repeats.max(1) {
            plain.push(ping_pong(opts, variant, false)?);
            protected.push(ping_pong(opts, variant, true)?);
        }
        let row = OverheadRow {
            variant,
            protection: protection.describe(),
            ratio: median(&mut protected) / median(&mut plain).max(1.0),
            repeats: plain.len(),
        };
        progress(&row);
        rows.push(row);
    }
    Ok(OverheadReport { overhead: rows })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> CrashError {
    move |errno| CrashError::Sys { what, errno }
}

/// One run: `rounds` round trips with an echo child; nanoseconds per round trip.
fn ping_pong(opts: &OverheadOptions, variant: Variant, protected: bool) -> Result<f64, CrashError> {
    let arena = Arena::create(2)?;
    variant.prepare(&arena, Mode::Turns, 2)?;
    let channels = variant.create_channels(2, Mode::Turns)?;
    let mine = channels.fds_for(variant, Mode::Turns, 0, 2)?;
    let theirs = channels.fds_for(variant, Mode::Turns, 1, 2)?;
    // No write end of our own pipe stays here: the echo's death is our EOF.
    drop(channels);
    let me = pidfd::open(std::process::id() as i32).map_err(sys("open our own pidfd"))?;
    let job = Job {
        variant,
        role: Role::Echo {
            rounds: opts.rounds,
        },
        description: Description::Own,
        survivable: protected,
        pidfds: 1,
        driver: std::process::id() as i32,
    };
    let mut attached = vec![arena.file().as_fd()];
    attached.extend(theirs.iter().map(|f| f.as_fd()));
    attached.push(me.as_fd());
    let mut echo = ChildProcess::start(&opts.helper, &job, &attached)?;
    drop(theirs);
    echo.expect(&Report::Waiting)?;
    let pidfds = [pidfd::open(echo.pid()).map_err(sys("open the echo's pidfd"))?];
    let abort = nix::sys::eventfd::EventFd::new().map_err(sys("create an eventfd"))?;
    let ctx = Ctx {
        arena: &arena,
        contender: 0,
        contenders: 2,
        mode: Mode::Turns,
        spin: 0,
        abort: abort.as_fd(),
    };
    let rescue = match variant {
        Variant::Eventfd => mine.first().map(OwnedFd::try_clone).transpose(),
        _ => Ok(None),
    }
    .map_err(|e| sys("duplicate an eventfd")(crate::sys::io_errno(&e)))?;
    let mut opened = open_protected(variant, &ctx, mine, &pidfds, protected)?;
    let ns = std::thread::scope(|scope| {
        let arena = &arena;
        let watcher = DeathWatcher::start(scope, &pidfds, move || match &rescue {
            Some(fd) => post_eventfd(fd),
            None => take_over(variant, arena, 0, 1),
        })
        .map_err(sys("start the safety net"))?;
        let t0 = monotonic_ns();
        let r = take_turns(&mut opened, 0, opts.rounds, || watcher.fired());
        let ns = monotonic_ns() - t0;
        watcher.stop();
        r.map(|()| ns).map_err(sys("take turns with the echo"))
    })?;
    echo.expect(&Report::Done)?;
    Ok(ns as f64 / opts.rounds.max(1) as f64)
}

/// `rounds` turns of contender `me` of two; gives up with `EOWNERDEAD` once `dead()` says so.
fn take_turns(
    opened: &mut Opened<'_>,
    me: usize,
    rounds: u64,
    dead: impl Fn() -> bool,
) -> Result<(), Errno> {
    let next = 1 - me;
    for _ in 0..rounds {
        acquire_turn(opened)?;
        if dead() {
            return Err(Errno::EOWNERDEAD);
        }
        opened.turn.pass(next)?;
        opened.handoff.hand_over(next)?;
    }
    Ok(())
}

/// The echo child: contender 1 of the ping-pong, protected if the job says so.
pub(super) fn echo(
    job: &Job,
    ctx: &Ctx<'_>,
    channels: Vec<OwnedFd>,
    pidfds: &[OwnedFd],
    rounds: u64,
    report: &dyn Fn(&Report) -> Result<(), Errno>,
    stay: &dyn Fn(),
) -> Result<(), CrashError> {
    let mut opened = open_protected(job.variant, ctx, channels, pidfds, job.survivable)?;
    let watched = job.survivable && Protection::of(job.variant) == Some(Protection::WatcherThread);
    report(&Report::Waiting).map_err(sys("report"))?;
    std::thread::scope(|scope| {
        let (arena, variant) = (ctx.arena, job.variant);
        let watcher = watched
            .then(|| DeathWatcher::start(scope, pidfds, move || take_over(variant, arena, 1, 0)))
            .transpose()
            .map_err(sys("start the watcher"))?;
        let r = take_turns(&mut opened, 1, rounds, || {
            watcher.as_ref().is_some_and(DeathWatcher::fired)
        });
        if let Some(w) = watcher {
            w.stop();
        }
        r.map_err(sys("take turns with the driver"))
    })?;
    report(&Report::Done).map_err(sys("report"))?;
    stay();
    Ok(())
}
