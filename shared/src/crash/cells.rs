//! The cells of the crash experiment, and what each child does in one.
//!
//! A cell is a variant, the holder's description case and whether the survivor is protected.
//! Each variant declares its cells ([`HolderDeath`](crate::variant::HolderDeath): `plain`,
//! `survivable`): the mechanism itself is the variant's own code ([`Variant::open`], contender
//! 0 holds, contender 1 survives, `turns` mode), so the survivor uses the mechanism alone, as a
//! real contender would.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::CrashError;
use super::child::{Job, Report, Role, split_fds};
use super::survivable::{DeathWatcher, PidfdRing, TokioPidfdRing, claim_turn, take_over};
use crate::arena::Arena;
use crate::sys::clock::monotonic_ns;
use crate::sys::robust_mutex::MutexRoom;
use crate::variant::{ArenaTurn, Ctx, Exclusion, Handoff, Mode, Opened, Protection, Variant};

pub use crate::outcome::holder_death::Description;
pub(super) use crate::variant::holder_death::Outcome;

/// One experiment: who holds, through what, and whether the survivor is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub variant: Variant,
    pub description: Description,
    pub survivable: bool,
}

use Description::Own;

/// The cells of one run, in report order, restricted to the variants in `only` and the
/// descriptions in `cases` (each: all, if empty). `crash` runs every variant's plain cells,
/// `crash --survivable` the cells of the variants that offer a way out.
pub fn cells(survivable: bool, only: &[Variant], cases: &[Description]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for variant in Variant::ALL {
        let death = &variant.spec().death;
        let table = if survivable {
            death.survivable
        } else {
            death.plain
        };
        cells.extend(
            table
                .iter()
                .filter(|d| {
                    (only.is_empty() || only.contains(&variant))
                        && (cases.is_empty() || cases.contains(d))
                })
                .map(|&description| Cell {
                    variant,
                    description,
                    survivable,
                }),
        );
    }
    cells
}

/// A child's part in a cell (or in the overhead ping-pong): runs on the child's main thread.
/// `stay` blocks until the driver kills or releases the child.
pub(super) fn play(
    job: &Job,
    fds: Vec<OwnedFd>,
    report: &dyn Fn(&Report) -> Result<(), Errno>,
    stay: &dyn Fn(),
) -> Result<(), CrashError> {
    let (arena_fd, channels, pidfds) = split_fds(job, fds)?;
    // Only the holder of a `shared` cell locks through the description it received, and `seed`
    // always does; everyone else opens a description of its own.
    let own =
        !job.variant.shares_description() && (job.role != Role::Holder || job.description == Own);
    let arena = Arena::adopt(arena_fd, 2, own)?;
    let abort = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).map_err(sys("abort"))?;
    let ctx = Ctx {
        arena: &arena,
        contender: usize::from(job.role != Role::Holder),
        contenders: 2,
        mode: Mode::Turns,
        spin: 0,
        abort: abort.as_fd(),
    };
    if let Some(room) = job.variant.spec().death.robust_mutex {
        return play_robust(job.role, room(&arena), job.survivable, report, stay);
    }
    match job.role {
        Role::Holder => {
            let mut opened = job.variant.open(&ctx, channels)?;
            acquire_turn(&mut opened).map_err(sys("take the lock or the turn"))?;
            arena.header().enter(0);
            report(&Report::Inside).map_err(sys("report"))?;
            stay();
            Ok(())
        }
        Role::Survivor => {
            let got = survive(job, &ctx, channels, &pidfds, report)?;
            report(&got).map_err(sys("report"))?;
            stay();
            Ok(())
        }
        Role::Echo { rounds, blocks } => {
            let sides = super::overhead::Sides::open(job.variant, &ctx, channels, &pidfds)?;
            super::overhead::echo(job.variant, &ctx, sides, &pidfds, (rounds, blocks), report)?;
            stay();
            Ok(())
        }
    }
}

/// The robust mutex's holder or survivor, driving the mutex in `room` directly (`robust`).
fn play_robust(
    role: Role,
    room: &MutexRoom,
    repair: bool,
    report: &dyn Fn(&Report) -> Result<(), Errno>,
    stay: &dyn Fn(),
) -> Result<(), CrashError> {
    match role {
        Role::Holder => {
            let _held = super::robust::hold(room).map_err(sys("take the robust mutex"))?;
            report(&Report::Inside).map_err(sys("report"))?;
            stay();
            Ok(())
        }
        Role::Survivor => {
            report(&Report::Waiting).map_err(sys("report"))?;
            let s = super::robust::survive(room, repair).map_err(sys("take the robust mutex"))?;
            let got = Report::Got {
                at_ns: s.at_ns,
                owner_died: s.owner_died,
                relock: Some(s.relock),
            };
            report(&got).map_err(sys("report"))?;
            stay();
            Ok(())
        }
        // No protection to measure: the overhead ping-pong never runs it.
        Role::Echo { .. } => Err(CrashError::Garbled),
    }
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> CrashError {
    move |errno| CrashError::Sys { what, errno }
}

/// Blocks until this contender holds the lock, or the turn is really its own. `EINTR` (a
/// variant's wait that ends now and then to look at the stop flag) means: wait again.
pub(super) fn acquire_turn(opened: &mut Opened<'_>) -> Result<(), Errno> {
    loop {
        match opened.handoff.acquire() {
            Ok(()) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
        if opened.handoff.exclusion() == Exclusion::Lock || opened.turn.is_mine()? {
            return Ok(());
        }
    }
}

/// Opens contender `ctx.contender`'s end with `crash --survivable`'s protection against the
/// death of the contender in `pidfds`, if `survivable` and the variant has one.
pub(super) fn open_protected<'a>(
    variant: Variant,
    ctx: &Ctx<'a>,
    channels: Vec<OwnedFd>,
    pidfds: &[OwnedFd],
    survivable: bool,
) -> Result<Opened<'a>, CrashError> {
    let protected = variant.spec().death.protection.filter(|_| survivable);
    let Some(protected) = protected.filter(|p| p.kind != Protection::WatcherThread) else {
        return Ok(variant.open(ctx, channels)?);
    };
    let peers = pidfds
        .iter()
        .map(OwnedFd::try_clone)
        .collect::<std::io::Result<Vec<_>>>();
    let io = |e: std::io::Error| sys("set up the protected ring")(crate::sys::io_errno(&e));
    let handoff: Box<dyn Handoff + 'a> = if protected.kind == Protection::PidfdsInRuntime {
        Box::new(TokioPidfdRing::new(channels, peers.map_err(io)?).map_err(io)?)
    } else {
        let ring = PidfdRing::new(protected.token, channels, peers.map_err(io)?);
        Box::new(ring.map_err(sys("set up the protected ring"))?)
    };
    Ok(Opened {
        handoff,
        turn: Box::new(ArenaTurn::new(ctx)),
    })
}

/// The survivor: waits for the lock or the turn, with the mechanism alone or (survivable) with
/// its protection, and says what it got. It is killed if it gets nothing within the limit.
fn survive(
    job: &Job,
    ctx: &Ctx<'_>,
    channels: Vec<OwnedFd>,
    pidfds: &[OwnedFd],
    report: &dyn Fn(&Report) -> Result<(), Errno>,
) -> Result<Report, CrashError> {
    let (me, dead) = (1, 0);
    let mut opened = open_protected(job.variant, ctx, channels, pidfds, job.survivable)?;
    let watched = job.survivable && Protection::of(job.variant) == Some(Protection::WatcherThread);
    report(&Report::Waiting).map_err(sys("report"))?;
    let (result, at_ns, watcher_fired) = std::thread::scope(|scope| {
        let (arena, variant) = (ctx.arena, job.variant);
        let watcher = watched
            .then(|| {
                DeathWatcher::start(scope, pidfds, move || {
                    take_over(variant, arena, (me, dead), None)
                })
            })
            .transpose()?;
        let result = acquire_turn(&mut opened);
        let at_ns = monotonic_ns();
        Ok::<_, Errno>((result, at_ns, watcher.is_some_and(DeathWatcher::stop)))
    })
    .map_err(sys("start the watcher thread"))?;
    Ok(match result {
        Ok(()) => Report::Got {
            at_ns,
            owner_died: watcher_fired || owner_died_in_word(job.variant, ctx.arena),
            relock: None,
        },
        // Told of the death: protected, the survivor takes the turn the dead never passed.
        Err(Errno::EOWNERDEAD | Errno::EPIPE) if job.survivable => {
            claim_turn(ctx.arena, me, dead);
            Report::Got {
                at_ns,
                owner_died: true,
                relock: None,
            }
        }
        Err(Errno::EPIPE) => Report::Eof { at_ns },
        Err(e) => Report::Refused {
            at_ns,
            errno: e as i32,
        },
    })
}

/// True if the lock word the survivor now holds carries FUTEX_OWNER_DIED: the kernel's own
/// note that the previous owner died (a PI futex whose owner exited is handed on with it).
fn owner_died_in_word(variant: Variant, arena: &Arena) -> bool {
    variant
        .spec()
        .death
        .owner_died
        .is_some_and(|in_word| in_word(arena))
}

/// `how`, in one line: what happened, and the kernel's reason for it.
pub(super) fn how(cell: &Cell, outcome: Outcome) -> String {
    if let Some(line) = (cell.variant.spec().death.reason)(cell.description, outcome) {
        return line.to_string();
    }
    match outcome {
        Outcome::Got {
            owner_died: true, ..
        } if cell.survivable => survived(cell.variant),
        Outcome::Got { .. } => "got it".to_string(),
        Outcome::Eof => "EOF: told the holder is gone, given nothing".to_string(),
        Outcome::Refused(errno) => format!("the wait failed: {}", errno.desc()),
        Outcome::Nothing => {
            "waits forever: nothing released the lock or told the survivor".to_string()
        }
    }
}

/// How the protection brought the survivor through.
fn survived(v: Variant) -> String {
    let protected = v.spec().death.protection;
    if let Some(line) = protected.and_then(|p| p.survived) {
        return line.to_string();
    }
    match protected.map(|p| p.kind) {
        Some(Protection::PollWithPidfds) => format!(
            "the holder's pidfd woke the same poll as the {v}: the survivor took the turn over"
        ),
        Some(Protection::PidfdsInRuntime) => {
            "the holder's pidfd, in the same tokio select! as the eventfd, woke it: the survivor took the turn over".to_string()
        }
        _ => format!(
            "a watcher thread asleep on the holder's pidfd passed the {v} turn on and woke the survivor"
        ),
    }
}
