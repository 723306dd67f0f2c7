//! How the turn (or the lock) passes between contenders: one file per variant, all behind
//! [`Handoff`].
//!
//! A variant is only a mechanism: take it, let it go, hand it on. Where the turn lives is a
//! [`Turn`] (the arena's turn word, or for `seed` the shared file offset). The round loops, the
//! timing and the checks live once, in the session layer above, the same for every variant.
//!
//! Two modes use the same trait. In `turns` mode contenders take turns in a fixed ring order and
//! `acquire` may return when it is not our turn (a whoop, for the file locks). In `free` mode
//! there is no order: `acquire` is "lock" and `release` is "unlock", and the question is who gets
//! the lock next.
//!
//! Each variant's file declares all it is in a [`Spec`] (`SPEC`): its name and family, what it
//! supports, the descriptors it needs, how it prepares the arena and opens, the words it keeps
//! in the arena's variant region ([`Arena::region`]), what its holder's death does, and its
//! yardstick in `bench`. `registry` lists the variants once; the layers above ask the spec,
//! never a variant by name. Adding a variant: its file, its `mod` line, its registry line.

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::arena::{Arena, LineCounter};
use crate::measure::Role;
use crate::sys::fdkind::{self, FdKind};

// The machinery every variant shares.
mod file_lock;
pub mod holder_death;
mod registry;
mod spec;
mod wait_queue;

// One file per variant; `registry` lists them.
mod async_lock;
mod eventfd;
mod fair_futex;
mod flock;
mod fs4;
mod futex;
mod lock_chain;
mod lockf;
mod ofd;
mod pi_futex;
mod pipe;
mod poll_lock;
mod posix;
mod robust_mutex;
mod seed;
mod spin_futex;
mod starvation_futex;
mod std_lock;
mod ticket;
mod tokio_eventfd;
mod uring_futex;

pub use async_lock::lock_within;
pub use file_lock::FileLockHandoff;
pub use holder_death::{Description, HolderDeath, Protected, Protection, Repair};
pub use pipe::RATIO_BASELINE;
pub use poll_lock::{DEFAULT_POLL_SLEEP, MAX_POLL_SLEEP, MIN_POLL_SLEEP};
pub use registry::Variant;
pub use seed::BLOG_VARIANT;
pub use spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick};
pub use uring_futex::SYSCTL_ENV as URING_SYSCTL_ENV;

/// How contenders use the mechanism.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A fixed order: contender 0, 1, …, N-1, 0, …
    Turns,
    /// No order: each contender takes the lock as fast as it can.
    Free,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Turns => "turns",
            Mode::Free => "free",
        })
    }
}

/// What gives a contender exclusive access, and so where its critical section starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// Holding the mechanism (a lock) is the critical section, whoever's turn it is.
    Lock,
    /// Only holding the turn is: waking up proves nothing until the turn word says so.
    Turn,
}

/// One contender's end of a handoff mechanism.
pub trait Handoff {
    /// Where this mechanism's critical section starts.
    fn exclusion(&self) -> Exclusion;
    /// Blocks until this contender holds the mechanism: a lock taken, or a wakeup received.
    /// Returns `EINTR` when the watchdog interrupts it; the caller checks why and calls again.
    fn acquire(&mut self) -> Result<(), Errno>;
    /// Lets go without handing the turn on: after a whoop, or to unlock in `free` mode.
    fn release(&mut self) -> Result<(), Errno>;
    /// Lets go and hands the turn to contender `next`; the turn already names it.
    fn hand_over(&mut self, next: usize) -> Result<(), Errno>;
    /// Makes sure everyone blocked in [`Handoff::acquire`] wakes up and sees the stop flag.
    fn wake_everyone(&mut self) -> Result<(), Errno>;
    /// `free` mode: true if [`Handoff::acquire`] raises this contender's bit in the arena's
    /// `waiting` mask itself, at the moment it joins the lock's queue (a ticket taken). Otherwise
    /// the loop raises it just before calling `acquire`.
    fn marks_waiting(&self) -> bool {
        false
    }
    /// `free` mode, after [`Handoff::acquire`]: the arrival number of this wait, for a lock that
    /// numbers its arrivals itself (a ticket). Otherwise the loop takes one from the arena's
    /// `arrivals` counter just before calling `acquire`.
    fn arrival(&self) -> Option<u64> {
        None
    }
    /// CPU time spent so far for this contender on threads other than the one calling
    /// [`Handoff::acquire`] (a runtime's blocking pool): the session charges it to the run,
    /// beside its own thread's. Zero for a mechanism that waits on the caller's thread.
    fn helper_cpu_ns(&self) -> u64 {
        0
    }
}

/// Where the turn lives and what a turn does.
pub trait Turn {
    /// True if it is this contender's turn.
    fn is_mine(&mut self) -> Result<bool, Errno>;
    /// Does the turn's work for `round`: the writer publishes "line n", a reader checks it.
    /// Returns false on a wrong read.
    fn take(&mut self, round: u64) -> Result<bool, Errno>;
    /// Gives the turn to contender `next`.
    fn pass(&mut self, next: usize) -> Result<(), Errno>;
    /// True if [`Turn::take`] itself hands the turn on (the seed's writer: its `write` moves the
    /// shared offset). The release timestamp must then be taken before `take`.
    fn take_passes(&self) -> bool {
        false
    }
}

/// Everything a contender needs to open its end of a variant.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub arena: &'a Arena,
    pub contender: usize,
    pub contenders: usize,
    pub mode: Mode,
    /// `spin-futex`'s spin bound (iterations); 0 means [`DEFAULT_SPIN`].
    pub spin: u32,
    /// Readable once the session is aborted: mechanisms that wait in an event loop (where the
    /// watchdog's EINTR never reaches them) wait on it too.
    pub abort: BorrowedFd<'a>,
}

/// What the client sets the arena up for: the run's shape, as far as a variant's preparation
/// cares. A tunable that both sides need and only one variant reads travels in that variant's
/// arena region (written here, read by every contender's `open`), not in the hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub mode: Mode,
    pub contenders: usize,
    /// `poll-lock`'s mean sleep between two tries.
    pub poll_sleep: std::time::Duration,
}

impl Setup {
    /// `mode` with `contenders`, every tunable at its default.
    pub fn new(mode: Mode, contenders: usize) -> Self {
        Setup {
            mode,
            contenders,
            poll_sleep: DEFAULT_POLL_SLEEP,
        }
    }
}

/// `spin-futex`'s default spin bound, chosen by `lockfair-client bench --spin-sweep` (README).
pub const DEFAULT_SPIN: u32 = 4096;
/// The largest spin bound accepted: spinning is user time no signal can interrupt, so it must
/// stay short (2^20 iterations are tens of milliseconds) whatever a peer asks for.
pub const MAX_SPIN: u32 = 1 << 20;

impl Ctx<'_> {
    /// This contender's role.
    pub fn role(&self) -> Role {
        Role::of(self.contender)
    }

    /// The contender after this one.
    pub fn next(&self) -> usize {
        (self.contender + 1) % self.contenders
    }

    /// The spin bound to use.
    pub fn spin(&self) -> u32 {
        if self.spin == 0 {
            DEFAULT_SPIN
        } else {
            self.spin
        }
    }
}

/// Why a variant cannot be set up.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("{variant} expects {want} descriptor(s) besides the arena, got {got}")]
    FdCount {
        variant: Variant,
        want: usize,
        got: usize,
    },
    #[error("{variant} expects descriptor {index} to be {want}, got {got}")]
    FdKind {
        variant: Variant,
        index: usize,
        want: FdKind,
        got: FdKind,
    },
    #[error("{variant} supports exactly {supported} contenders, not {asked}")]
    Contenders {
        variant: Variant,
        supported: usize,
        asked: usize,
    },
    #[error("{variant} has no --mode {mode}: {why}")]
    Mode {
        variant: Variant,
        mode: Mode,
        why: &'static str,
    },
    #[error("cannot {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error("{variant} cannot run on this machine: {why}")]
    Unavailable {
        variant: Variant,
        why: crate::sys::uring::Unavailable,
    },
}

pub(crate) fn sys(what: &'static str) -> impl FnOnce(Errno) -> SetupError {
    move |errno| SetupError::Sys { what, errno }
}

/// The descriptors a variant hands the turn (or the lock) through besides the arena: eventfds or
/// pipes, created once by the client for the whole run. (Not the `channel` module, the datagram
/// socket between client and server.)
#[derive(Debug, Default)]
pub struct HandoffFds {
    fds: Vec<OwnedFd>,
}

/// A contender's opened variant: the mechanism and where its turn lives.
pub struct Opened<'a> {
    pub handoff: Box<dyn Handoff + 'a>,
    pub turn: Box<dyn Turn + 'a>,
}

impl fmt::Debug for Opened<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened").finish_non_exhaustive()
    }
}

impl<'a> Opened<'a> {
    /// `handoff`, with the turn in the arena's turn word (every variant but the seed).
    pub(crate) fn in_arena(ctx: &Ctx<'a>, handoff: impl Handoff + 'a) -> Opened<'a> {
        Opened {
            handoff: Box::new(handoff),
            turn: Box::new(ArenaTurn::new(ctx)),
        }
    }
}

impl Variant {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Only `seed` locks through the descriptor it received, sharing the sender's open file
    /// description; every other variant gives each side its own.
    pub fn shares_description(self) -> bool {
        self.spec().shares_description
    }

    /// Whether this variant runs in `mode` with `contenders` contenders.
    pub fn supports(self, mode: Mode, contenders: usize) -> Result<(), SetupError> {
        let supports = self.spec().supports;
        if let Some(supported) = supports.exactly
            && contenders != supported
        {
            return Err(SetupError::Contenders {
                variant: self,
                supported,
                asked: contenders,
            });
        }
        if let Some((missing, why)) = supports.not_in
            && missing == mode
        {
            return Err(SetupError::Mode {
                variant: self,
                mode,
                why,
            });
        }
        if let Some(available) = supports.available {
            available().map_err(|why| SetupError::Unavailable { variant: self, why })?;
        }
        Ok(())
    }

    /// The kinds of descriptor each contender receives besides the arena.
    pub fn expected_fds(self, mode: Mode) -> &'static [FdKind] {
        self.spec().fds.kinds(mode)
    }

    /// Checks count and kind of the descriptors a peer sent for this variant.
    pub fn check_fds(self, mode: Mode, fds: &[OwnedFd]) -> Result<(), SetupError> {
        let want = self.expected_fds(mode);
        if fds.len() != want.len() {
            return Err(SetupError::FdCount {
                variant: self,
                want: want.len(),
                got: fds.len(),
            });
        }
        for (index, (fd, want)) in fds.iter().zip(want).enumerate() {
            let got = fdkind::classify(fd).map_err(sys("inspect a descriptor"))?;
            if got != *want {
                return Err(SetupError::FdKind {
                    variant: self,
                    index,
                    want: want.clone(),
                    got,
                });
            }
        }
        Ok(())
    }

    /// Sets the arena up for this variant before it is sent (client side): the seed's shared
    /// offset, the ticket lock's counters, the poller's sleep.
    pub fn prepare_with(self, arena: &Arena, setup: &Setup) -> Result<(), SetupError> {
        (self.spec().prepare)(arena, setup)
    }

    /// [`Variant::prepare_with`] the defaults of every tunable.
    pub fn prepare(self, arena: &Arena, mode: Mode, contenders: usize) -> Result<(), SetupError> {
        self.prepare_with(arena, &Setup::new(mode, contenders))
    }

    /// Creates the descriptors the whole run shares (client side).
    pub fn create_handoff_fds(
        self,
        contenders: usize,
        mode: Mode,
    ) -> Result<HandoffFds, SetupError> {
        let count = match mode {
            Mode::Turns => contenders,
            // One token for everyone.
            Mode::Free => 1,
        };
        let fds = (self.spec().fds.create)(count)?;
        Ok(HandoffFds { fds })
    }

    /// Opens contender `ctx.contender`'s end: its mechanism and where its turn lives.
    pub fn open<'a>(self, ctx: &Ctx<'a>, fds: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
        self.supports(ctx.mode, ctx.contenders)?;
        self.check_fds(ctx.mode, &fds)?;
        (self.spec().open)(ctx, fds)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl HandoffFds {
    /// Duplicates of the descriptors contender `contender` needs, in [`Variant::expected_fds`]
    /// order. In `turns` mode: its own wakeup descriptor, then the next contender's. In `free`
    /// mode: the one shared token (for a pipe, both ends).
    pub fn fds_for(
        &self,
        variant: Variant,
        mode: Mode,
        contender: usize,
        contenders: usize,
    ) -> Result<Vec<OwnedFd>, SetupError> {
        let picks = (variant.spec().fds.pick)(mode, contender, contenders);
        picks
            .into_iter()
            .map(|i| {
                self.fds
                    .get(i)
                    .ok_or(SetupError::Sys {
                        what: "pick a handoff descriptor",
                        errno: Errno::EBADF,
                    })?
                    .try_clone()
                    .map_err(|e| SetupError::Sys {
                        what: "duplicate a handoff descriptor",
                        errno: crate::sys::io_errno(&e),
                    })
            })
            .collect()
    }
}

/// The turn in the arena's turn word, "line n" in the arena's payload.
#[derive(Debug)]
pub struct ArenaTurn<'a> {
    header: &'a crate::arena::Header,
    me: u32,
    role: Role,
    lines: LineCounter,
}

impl<'a> ArenaTurn<'a> {
    pub(crate) fn new(ctx: &Ctx<'a>) -> Self {
        ArenaTurn {
            header: ctx.arena.header(),
            me: ctx.contender as u32,
            role: ctx.role(),
            lines: LineCounter::default(),
        }
    }
}

impl Turn for ArenaTurn<'_> {
    fn is_mine(&mut self) -> Result<bool, Errno> {
        Ok(self.header.turn.load(Ordering::Acquire) == self.me)
    }

    fn take(&mut self, round: u64) -> Result<bool, Errno> {
        let line = self.lines.line(round);
        Ok(match self.role {
            Role::Writer => {
                self.header.write_line(round, line);
                true
            }
            Role::Reader => self.header.line_is(line),
        })
    }

    fn pass(&mut self, next: usize) -> Result<(), Errno> {
        // Only from us: if someone stopped the run meanwhile (the word says `NO_TURN`), leave it,
        // or a waiter that saw the stop would be put back to sleep on a live-looking turn.
        let _ = self.header.turn.compare_exchange(
            self.me,
            next as u32,
            Ordering::Release,
            Ordering::Relaxed,
        );
        Ok(())
    }
}
