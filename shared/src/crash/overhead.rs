//! What `--survivable`'s protection costs when nobody dies: one two-process ping-pong in
//! `turns` mode whose blocks of round trips alternate plain and protected, so both sides of the
//! ratio share the same processes, CPUs and moment. Only ratios are reported (the median over
//! pairs of adjacent blocks): absolute times belong to `compare` and `bench`.
//!
//! The driver (contender 0) always runs a `DeathWatcher` as a safety net, so a child that
//! dies cannot leave it asleep: for the futex variants that is the protection itself, for
//! eventfd and pipe an idle thread. What differs between blocks: for eventfd and pipe, both
//! sides wait with `poll` on the descriptor and the peer's pidfd, then `read`, instead of a bare
//! `read`; for tokio-eventfd, the runtime selects on the peer's pidfd (registered once) instead
//! of the session's abort eventfd; for the futex variants, the echo runs its own watcher thread,
//! which adds no syscall to a handoff.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use serde::Serialize;

use super::CrashError;
use super::cells::{Description, acquire_turn, open_protected};
use super::child::{ExperimentChild, Job, Report, Role};
use super::survivable::{DeathWatcher, Protection, take_over};
use crate::arena::Arena;
use crate::sys::clock::monotonic_ns;
use crate::sys::pidfd;
use crate::variant::{Ctx, Mode, Opened, Repair, Variant};

/// What to measure.
#[derive(Clone, Debug)]
pub struct OverheadOptions {
    pub helper: PathBuf,
    /// Round trips per block.
    pub rounds: u64,
    /// Pairs of blocks (plain, then protected).
    pub repeats: usize,
    /// Only these variants (every protected one if empty).
    pub variants: Vec<Variant>,
}

/// One variant's cost of protection.
#[derive(Clone, Debug, Serialize)]
pub struct OverheadRow {
    pub variant: Variant,
    pub protection: &'static str,
    /// Median, over pairs of adjacent blocks, of protected round trip / plain round trip.
    pub ratio: f64,
    /// Pairs of blocks measured.
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
        let blocks = ping_pong(opts, variant)?;
        let mut ratios: Vec<f64> = blocks
            .chunks_exact(2)
            .map(|pair| pair[1] as f64 / pair[0].max(1) as f64)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let row = OverheadRow {
            variant,
            protection: protection.describe(),
            ratio: ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN),
            repeats: ratios.len(),
        };
        progress(&row);
        rows.push(row);
    }
    Ok(OverheadReport { overhead: rows })
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> CrashError {
    move |errno| CrashError::Sys { what, errno }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> CrashError {
    move |e| CrashError::Sys {
        what,
        errno: crate::sys::io_errno(&e),
    }
}

/// One contender's two ways of waiting. For the futex variants both are the one plain handoff
/// (a ticket lock keeps its ticket in it): their protection is a thread, not another wait.
pub(super) struct Sides<'a> {
    plain: Opened<'a>,
    protected: Option<Opened<'a>>,
}

impl<'a> Sides<'a> {
    /// Opens both from `channels`, which holds the variant's descriptors twice.
    pub(super) fn open(
        variant: Variant,
        ctx: &Ctx<'a>,
        mut channels: Vec<OwnedFd>,
        pidfds: &[OwnedFd],
    ) -> Result<Sides<'a>, CrashError> {
        let second = channels.split_off(channels.len() / 2);
        let plain = variant.open(ctx, channels)?;
        let protected = match Protection::of(variant) {
            Some(Protection::WatcherThread) | None => None,
            Some(_) => Some(open_protected(variant, ctx, second, pidfds, true)?),
        };
        Ok(Sides { plain, protected })
    }

    fn side(&mut self, protected: bool) -> &mut Opened<'a> {
        match (&mut self.protected, protected) {
            (Some(p), true) => p,
            _ => &mut self.plain,
        }
    }
}

/// The ping-pong with an echo child: nanoseconds per block, plain and protected alternating.
fn ping_pong(opts: &OverheadOptions, variant: Variant) -> Result<Vec<u64>, CrashError> {
    let arena = Arena::create(2)?;
    variant.prepare(&arena, Mode::Turns, 2)?;
    let channels = variant.create_handoff_fds(2, Mode::Turns)?;
    let mut mine = channels.fds_for(variant, Mode::Turns, 0, 2)?;
    mine.extend(channels.fds_for(variant, Mode::Turns, 0, 2)?);
    let mut theirs = channels.fds_for(variant, Mode::Turns, 1, 2)?;
    theirs.extend(channels.fds_for(variant, Mode::Turns, 1, 2)?);
    // No write end of our own pipe stays here: the echo's death is our EOF.
    drop(channels);
    let blocks = 2 * opts.repeats.max(1) as u32;
    let me = pidfd::open(std::process::id() as i32).map_err(sys("open our own pidfd"))?;
    let job = Job {
        variant,
        role: Role::Echo {
            rounds: opts.rounds,
            blocks,
        },
        description: Description::Own,
        survivable: true,
        pidfds: 1,
        driver: std::process::id() as i32,
    };
    let mut attached = vec![arena.file().as_fd()];
    attached.extend(theirs.iter().map(|f| f.as_fd()));
    attached.push(me.as_fd());
    let mut echo = ExperimentChild::start(&opts.helper, &job, &attached)?;
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
    // The safety net wakes us as the variant declares: for an eventfd, a token on our own.
    let rescue = match variant.spec().death.protection.map(|p| p.repair) {
        Some(Repair::PostOwnEventfd) => mine.first().map(OwnedFd::try_clone).transpose(),
        _ => Ok(None),
    }
    .map_err(io("duplicate an eventfd"))?;
    let sides = Sides::open(variant, &ctx, mine, &pidfds)?;
    let times = time_blocks(
        variant,
        &arena,
        sides,
        &pidfds,
        rescue,
        (opts.rounds, blocks),
    )?;
    echo.expect(&Report::Done)?;
    Ok(times)
}

/// The driver's side of the ping-pong: `blocks` blocks of `rounds` turns, plain and protected
/// alternating, each timed; a safety net wakes it should the echo die.
fn time_blocks(
    variant: Variant,
    arena: &Arena,
    mut sides: Sides<'_>,
    pidfds: &[OwnedFd],
    rescue: Option<OwnedFd>,
    (rounds, blocks): (u64, u32),
) -> Result<Vec<u64>, CrashError> {
    std::thread::scope(|scope| {
        let watcher = DeathWatcher::start(scope, pidfds, move || {
            take_over(variant, arena, (0, 1), rescue.as_ref())
        })
        .map_err(sys("start the safety net"))?;
        let mut times = Vec::with_capacity(blocks as usize);
        for block in 0..blocks {
            let t0 = monotonic_ns();
            let opened = sides.side(block % 2 == 1);
            take_turns(opened, 0, rounds, || watcher.fired())
                .map_err(sys("take turns with the echo"))?;
            times.push(monotonic_ns() - t0);
        }
        watcher.stop();
        Ok(times)
    })
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

/// The echo child: contender 1 of the ping-pong, `blocks` blocks of `rounds` turns, the odd
/// ones protected (for the futex variants: with its watcher thread running).
pub(super) fn echo(
    variant: Variant,
    ctx: &Ctx<'_>,
    mut sides: Sides<'_>,
    pidfds: &[OwnedFd],
    (rounds, blocks): (u64, u32),
    report: &dyn Fn(&Report) -> Result<(), Errno>,
) -> Result<(), CrashError> {
    let watched = Protection::of(variant) == Some(Protection::WatcherThread);
    report(&Report::Waiting).map_err(sys("report"))?;
    for block in 0..blocks {
        let protected = block % 2 == 1;
        std::thread::scope(|scope| {
            let arena = ctx.arena;
            let watcher = (watched && protected)
                .then(|| {
                    DeathWatcher::start(scope, pidfds, move || {
                        take_over(variant, arena, (1, 0), None)
                    })
                })
                .transpose()
                .map_err(sys("start the watcher"))?;
            let r = take_turns(sides.side(protected), 1, rounds, || {
                watcher.as_ref().is_some_and(DeathWatcher::fired)
            });
            if let Some(w) = watcher {
                w.stop();
            }
            r.map_err(sys("take turns with the driver"))
        })?;
    }
    report(&Report::Done).map_err(sys("report"))
}
