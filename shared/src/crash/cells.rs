//! The cells of the crash experiment, and what each child does in one.
//!
//! A cell is a variant, the holder's description case and whether the survivor is protected.
//! Adding a cell is one entry in [`PLAIN`] or [`SURVIVABLE`]: the mechanism itself is the
//! variant's own code ([`Variant::open`], contender 0 holds, contender 1 survives, `turns` mode),
//! so the survivor uses the mechanism alone, as a real contender would.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::CrashError;
use super::child::{Job, Report, Role, split_fds};
use super::survivable::{
    DeathWatcher, PidfdRing, Protection, TokioPidfdRing, claim_turn, take_over,
};
use crate::arena::Arena;
use crate::sys::clock::monotonic_ns;
use crate::variant::{ArenaTurn, Ctx, Exclusion, Handoff, Mode, Opened, Variant};

pub use crate::outcome::holder_death::Description;

/// One experiment: who holds, through what, and whether the survivor is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub variant: Variant,
    pub description: Description,
    pub survivable: bool,
}

use Description::{Own, Shared};

/// `crash`: every variant, the mechanism alone. The file locks (and lock-chain, made of OFD
/// locks, and the pipe) twice; `seed` only shares, that is what it is.
pub const PLAIN: &[(Variant, Description)] = &[
    (Variant::Ofd, Own),
    (Variant::Ofd, Shared),
    (Variant::Posix, Own),
    (Variant::Posix, Shared),
    (Variant::Lockf, Own),
    (Variant::Lockf, Shared),
    (Variant::Flock, Own),
    (Variant::Flock, Shared),
    (Variant::LockChain, Own),
    (Variant::LockChain, Shared),
    (Variant::Seed, Shared),
    (Variant::Eventfd, Own),
    (Variant::TokioEventfd, Own),
    (Variant::Futex, Own),
    (Variant::Ticket, Own),
    (Variant::SpinFutex, Own),
    (Variant::Pipe, Own),
    (Variant::Pipe, Shared),
    (Variant::PiFutex, Own),
    (Variant::RobustMutex, Own),
    (Variant::FairFutex, Own),
    (Variant::StarvationFutex, Own),
    (Variant::UringFutex, Own),
];

/// `crash --survivable`: the fast handoffs with their [`Protection`] on.
pub const SURVIVABLE: &[(Variant, Description)] = &[
    (Variant::Eventfd, Own),
    (Variant::TokioEventfd, Own),
    (Variant::Pipe, Own),
    (Variant::Pipe, Shared),
    (Variant::Futex, Own),
    (Variant::Ticket, Own),
    (Variant::SpinFutex, Own),
    (Variant::RobustMutex, Own),
];

/// The cells of one run, restricted to the variants in `only` and the descriptions in `cases`
/// (each: all, if empty).
pub fn cells(survivable: bool, only: &[Variant], cases: &[Description]) -> Vec<Cell> {
    let table = if survivable { SURVIVABLE } else { PLAIN };
    table
        .iter()
        .filter(|(v, d)| {
            (only.is_empty() || only.contains(v)) && (cases.is_empty() || cases.contains(d))
        })
        .map(|&(variant, description)| Cell {
            variant,
            description,
            survivable,
        })
        .collect()
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
    match job.role {
        Role::Holder if job.variant == Variant::RobustMutex => {
            let _held = super::robust::hold(&arena).map_err(sys("take the robust mutex"))?;
            report(&Report::Inside).map_err(sys("report"))?;
            stay();
            Ok(())
        }
        Role::Holder => {
            let mut opened = job.variant.open(&ctx, channels)?;
            acquire_turn(&mut opened).map_err(sys("take the lock or the turn"))?;
            arena.header().enter(0);
            report(&Report::Inside).map_err(sys("report"))?;
            stay();
            Ok(())
        }
        Role::Survivor if job.variant == Variant::RobustMutex => {
            report(&Report::Waiting).map_err(sys("report"))?;
            let s = super::robust::survive(&arena, job.survivable)
                .map_err(sys("take the robust mutex"))?;
            let got = Report::Got {
                at_ns: s.at_ns,
                owner_died: s.owner_died,
                relock: Some(s.relock),
            };
            report(&got).map_err(sys("report"))?;
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
    let protection = Protection::of(variant).filter(|_| survivable);
    if protection.is_none_or(|p| p == Protection::WatcherThread) {
        return Ok(variant.open(ctx, channels)?);
    }
    let peers = pidfds
        .iter()
        .map(OwnedFd::try_clone)
        .collect::<std::io::Result<Vec<_>>>();
    let io = |e: std::io::Error| sys("set up the protected ring")(crate::sys::io_errno(&e));
    let handoff: Box<dyn Handoff + 'a> = if protection == Some(Protection::PidfdsInRuntime) {
        Box::new(TokioPidfdRing::new(channels, peers.map_err(io)?).map_err(io)?)
    } else {
        let ring = PidfdRing::new(variant, channels, peers.map_err(io)?);
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
                DeathWatcher::start(scope, pidfds, move || take_over(variant, arena, me, dead))
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
    let word = match variant {
        Variant::PiFutex => &arena.header().pi_word,
        _ => return false,
    };
    word.load(std::sync::atomic::Ordering::Acquire) & nix::libc::FUTEX_OWNER_DIED != 0
}

/// The experiment's outcome for a cell, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The survivor got the lock or the turn; `early` if that was before the holder was killed;
    /// `relock`: what a second lock found after letting go (robust mutex only).
    Got {
        owner_died: bool,
        early: bool,
        relock: Option<Result<(), Errno>>,
    },
    /// End-of-file: told that the holder is gone, but the turn will never come.
    Eof,
    /// The wait failed with this error.
    Refused(Errno),
    /// Nothing within the limit.
    Nothing,
}

/// `how`, in one line: what happened, and the kernel's reason for it.
pub(super) fn how(cell: &Cell, outcome: Outcome) -> String {
    if let Some(line) = file_lock_reason(cell, outcome).or_else(|| handoff_reason(cell, outcome)) {
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

/// The file locks' answers, from fs/locks.c: whose lock it was decides.
fn file_lock_reason(cell: &Cell, outcome: Outcome) -> Option<&'static str> {
    use Outcome::{Got, Nothing};
    let shared = cell.description == Shared;
    match (cell.variant, outcome) {
        (Variant::Seed, Got { early: true, .. }) => Some(
            "never excluded: holder and survivor lock through one open file description, one owner (see `probe`)",
        ),
        (Variant::Posix | Variant::Lockf, Got { .. }) if shared => Some(
            "released at the holder's exit, though a live process still holds the description: a POSIX lock belongs to the process",
        ),
        (Variant::Posix | Variant::Lockf, Got { .. }) => Some(
            "released at the holder's exit: a POSIX lock belongs to the process, and the kernel drops it as the process closes its files",
        ),
        (Variant::Ofd | Variant::Flock, Got { .. }) => Some(
            "released when the holder's own description closed at its exit: the lock belongs to the open file description",
        ),
        (Variant::Ofd | Variant::Flock, Nothing) if shared => Some(
            "held forever by a dead process: the lock belongs to the open file description, which a live process still holds",
        ),
        (Variant::LockChain, Got { .. }) => Some(
            "the next link came free when the holder's own description closed: the links are OFD locks",
        ),
        (Variant::LockChain, Nothing) if shared => Some(
            "held forever: the dead holder's links are OFD locks on a description a live process still holds",
        ),
        _ => None,
    }
}

/// The handoffs' answers: a word, a counter or a descriptor the kernel knows no owner of, or
/// (robust mutex, PI futex) one whose owner it does know.
fn handoff_reason(cell: &Cell, outcome: Outcome) -> Option<&'static str> {
    use Outcome::{Eof, Got, Nothing, Refused};
    let shared = cell.description == Shared;
    match (cell.variant, outcome) {
        (Variant::Eventfd | Variant::TokioEventfd, Nothing) => {
            Some("waits forever: nothing tells an eventfd reader that the only writer died")
        }
        (Variant::Futex, Nothing) => Some(
            "held forever: nobody passes the turn word on, and the kernel does not know who owned it",
        ),
        (Variant::Ticket, Nothing) => Some(
            "held forever: the dead holder's ticket is never served on, and every later ticket waits behind it",
        ),
        (Variant::UringFutex, Nothing) => Some(
            "held forever: a futex word waited on through io_uring is still a word with no owner the kernel knows",
        ),
        (Variant::SpinFutex, Nothing) => Some(
            "held forever: the survivor spins, then sleeps on a flag only a live holder clears",
        ),
        (Variant::Pipe, Eof) => Some(
            "EOF: the dead holder had the only write end; the turn will never come, and the reader knows it",
        ),
        (Variant::Pipe, Nothing) if shared => Some(
            "waits forever: a live process still holds the write end, so the reader gets no EOF",
        ),
        (
            Variant::RobustMutex,
            Got {
                owner_died: true,
                relock: Some(Err(Errno::ENOTRECOVERABLE)),
                ..
            },
        ) => Some(
            "EOWNERDEAD: the kernel's robust-list walk marked the dead owner and glibc handed the survivor the lock; let go without pthread_mutex_consistent, it is ENOTRECOVERABLE for good",
        ),
        (
            Variant::RobustMutex,
            Got {
                owner_died: true,
                relock: Some(Ok(())),
                ..
            },
        ) => Some("EOWNERDEAD, repaired, pthread_mutex_consistent: the next lock found it clean"),
        (
            Variant::PiFutex,
            Got {
                owner_died: true, ..
            },
        ) => Some(
            "the kernel handed the PI futex to the waiter as the owner exited, with FUTEX_OWNER_DIED in the word",
        ),
        (Variant::PiFutex, Got { .. }) => {
            Some("the kernel handed the PI futex to the waiter as the owner exited")
        }
        (Variant::PiFutex, Refused(Errno::ESRCH)) => Some(
            "ESRCH: the word names a dead owner (it died while the survivor was between two timed waits, not queued), and the kernel will not hand it on",
        ),
        _ => None,
    }
}

fn survived(v: Variant) -> String {
    match Protection::of(v) {
        Some(Protection::PollWithPidfds) if v == Variant::Pipe => {
            "the holder's death woke the poll (its pidfd, or EOF on the pipe): the survivor took the turn over".to_string()
        }
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
