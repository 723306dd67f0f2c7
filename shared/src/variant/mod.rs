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

use std::fmt;
use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::arena::{Arena, LineCounter};
use crate::locking::LockFamily;
use crate::measure::Role;
use crate::sys::fdkind::{self, FdKind};

mod eventfd;
mod fair_futex;
mod flock;
mod futex;
mod lock_chain;
mod lockf;
mod ofd;
mod pi_futex;
mod pipe;
mod posix;
mod robust_mutex;
mod seed;
mod spin_futex;
mod starvation_futex;
mod ticket;
mod tokio_eventfd;
mod uring_futex;
mod wait_queue;
pub use uring_futex::SYSCTL_ENV as URING_SYSCTL_ENV;

/// The handoff mechanisms lockfair compares. Names are the command-line interface.
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
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// F_OFD_SETLKW on the descriptor received over SCM_RIGHTS, turn in the shared file offset:
    /// the seed experiment as it was written. Both sides share one open file description.
    Seed,
    /// F_OFD_SETLKW, each side through its own open file description; turn in the arena.
    Ofd,
    /// F_SETLKW process-associated record lock.
    Posix,
    /// lockf(F_LOCK).
    Lockf,
    /// flock(LOCK_EX) on each side's own open file description.
    Flock,
    /// One eventfd per contender: the turn is handed over explicitly.
    Eventfd,
    /// FUTEX_WAIT / FUTEX_WAKE on the arena's turn word.
    Futex,
    /// A pipe per contender, one byte per handoff: the classic IPC baseline.
    Pipe,
    /// A FIFO ticket lock on futexes in the arena, waking only the next ticket's holder.
    Ticket,
    /// Spin on the turn word while its holder runs on another CPU, then FUTEX_WAIT.
    SpinFutex,
    /// The eventfd handoff driven by a tokio runtime (AsyncFd).
    TokioEventfd,
    /// Hand-over-hand OFD byte-range locks: file locks only, strictly alternating.
    LockChain,
    /// A priority-inheritance futex (FUTEX_LOCK_PI): the kernel hands the lock to its top waiter.
    PiFutex,
    /// glibc's process-shared robust pthread mutex, placed in the arena.
    RobustMutex,
    /// Eventual fairness (parking_lot): barging, but a handoff once a random 0-1 ms deadline passed.
    FairFutex,
    /// Go's sync.Mutex: a waiter starved over 1 ms switches the lock to FIFO handoff.
    StarvationFutex,
    /// FUTEX_WAIT / FUTEX_WAKE on the turn word submitted through io_uring (Linux ≥ 6.7).
    UringFutex,
}

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

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 17] = [
        Variant::Seed,
        Variant::Ofd,
        Variant::Posix,
        Variant::Lockf,
        Variant::Flock,
        Variant::Eventfd,
        Variant::Futex,
        Variant::Pipe,
        Variant::Ticket,
        Variant::SpinFutex,
        Variant::TokioEventfd,
        Variant::LockChain,
        Variant::PiFutex,
        Variant::RobustMutex,
        Variant::FairFutex,
        Variant::StarvationFutex,
        Variant::UringFutex,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Seed => "seed",
            Variant::Ofd => "ofd",
            Variant::Posix => "posix",
            Variant::Lockf => "lockf",
            Variant::Flock => "flock",
            Variant::Eventfd => "eventfd",
            Variant::Futex => "futex",
            Variant::Pipe => "pipe",
            Variant::Ticket => "ticket",
            Variant::SpinFutex => "spin-futex",
            Variant::TokioEventfd => "tokio-eventfd",
            Variant::LockChain => "lock-chain",
            Variant::PiFutex => "pi-futex",
            Variant::RobustMutex => "robust-mutex",
            Variant::FairFutex => "fair-futex",
            Variant::StarvationFutex => "starvation-futex",
            Variant::UringFutex => "uring-futex",
        }
    }

    /// Only `seed` locks through the descriptor it received, sharing the sender's open file
    /// description; every other variant gives each side its own.
    pub fn shares_description(self) -> bool {
        self == Variant::Seed
    }

    /// Whether this variant runs in `mode` with `contenders` contenders.
    pub fn supports(self, mode: Mode, contenders: usize) -> Result<(), SetupError> {
        if self == Variant::Seed && contenders != 2 {
            return Err(SetupError::Contenders {
                variant: self,
                supported: 2,
                asked: contenders,
            });
        }
        if self == Variant::LockChain && mode == Mode::Free {
            return Err(SetupError::Mode {
                variant: self,
                mode,
                why: "it is a turn protocol made of locks, not a lock; use --mode turns",
            });
        }
        if self == Variant::UringFutex {
            uring_futex::available()?;
        }
        Ok(())
    }

    /// The kinds of descriptor each contender receives besides the arena.
    pub fn expected_fds(self, mode: Mode) -> &'static [FdKind] {
        match (self, mode) {
            (Variant::Eventfd | Variant::TokioEventfd, Mode::Turns) => {
                &[FdKind::Eventfd, FdKind::Eventfd]
            }
            (Variant::Eventfd | Variant::TokioEventfd, Mode::Free) => &[FdKind::Eventfd],
            (Variant::Pipe, _) => &[FdKind::PipeRead, FdKind::PipeWrite],
            _ => &[],
        }
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
    /// offset, the ticket lock's counters.
    pub fn prepare(self, arena: &Arena, mode: Mode, contenders: usize) -> Result<(), SetupError> {
        match self {
            Variant::Seed => seed::prepare_offset(arena).map_err(sys("seek the seed's offset")),
            Variant::Ticket => {
                ticket::prepare(arena, mode, contenders);
                Ok(())
            }
            Variant::RobustMutex => {
                robust_mutex::prepare(arena).map_err(sys("initialise the robust mutex"))
            }
            _ => Ok(()),
        }
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
        let fds = match self {
            Variant::Eventfd => eventfd::create(count, false)?,
            Variant::TokioEventfd => eventfd::create(count, true)?,
            Variant::Pipe => pipe::create(count)?,
            _ => Vec::new(),
        };
        Ok(HandoffFds { fds })
    }

    /// Opens contender `ctx.contender`'s end: its mechanism and where its turn lives.
    pub fn open<'a>(self, ctx: &Ctx<'a>, fds: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
        self.supports(ctx.mode, ctx.contenders)?;
        self.check_fds(ctx.mode, &fds)?;
        let file = |family| -> Box<dyn Handoff + 'a> {
            Box::new(FileLockHandoff::new(family, ctx.arena.file()))
        };
        let handoff: Box<dyn Handoff + 'a> = match (self, ctx.mode) {
            (Variant::Seed, _) => Box::new(seed::open(ctx)),
            (Variant::Ofd, _) => file(ofd::FAMILY),
            (Variant::Posix, _) => file(posix::FAMILY),
            (Variant::Lockf, _) => Box::new(lockf::open(ctx)?),
            (Variant::Flock, _) => file(flock::FAMILY),
            (Variant::Eventfd, Mode::Turns) => Box::new(eventfd::ring(fds)?),
            (Variant::Eventfd, Mode::Free) => Box::new(eventfd::token(fds)?),
            (Variant::Futex, Mode::Turns) => Box::new(futex::turns(ctx)),
            (Variant::Futex, Mode::Free) => Box::new(futex::mutex(ctx)),
            (Variant::Pipe, Mode::Turns) => Box::new(pipe::ring(fds)?),
            (Variant::Pipe, Mode::Free) => Box::new(pipe::token(fds)?),
            (Variant::Ticket, _) => Box::new(ticket::open(ctx)),
            (Variant::SpinFutex, Mode::Turns) => Box::new(spin_futex::turns(ctx)),
            (Variant::SpinFutex, Mode::Free) => Box::new(spin_futex::mutex(ctx)),
            (Variant::TokioEventfd, _) => Box::new(tokio_eventfd::open(ctx, fds)?),
            (Variant::LockChain, _) => Box::new(lock_chain::open(ctx)?),
            (Variant::PiFutex, _) => Box::new(pi_futex::open(ctx)),
            (Variant::RobustMutex, _) => {
                Box::new(robust_mutex::open(ctx).map_err(sys("attach to the robust mutex"))?)
            }
            (Variant::FairFutex, _) => Box::new(fair_futex::open(ctx)),
            (Variant::StarvationFutex, _) => Box::new(starvation_futex::open(ctx)),
            (Variant::UringFutex, Mode::Turns) => Box::new(uring_futex::turns(ctx)?),
            (Variant::UringFutex, Mode::Free) => Box::new(uring_futex::mutex(ctx)?),
        };
        let turn: Box<dyn Turn + 'a> = match self {
            Variant::Seed => Box::new(seed::FileOffsetTurn::new(ctx)),
            _ => Box::new(ArenaTurn::new(ctx)),
        };
        Ok(Opened { handoff, turn })
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
        let next = (contender + 1) % contenders;
        let picks = match (variant, mode) {
            // eventfd i wakes contender i.
            (Variant::Eventfd | Variant::TokioEventfd, Mode::Turns) => vec![contender, next],
            (Variant::Eventfd | Variant::TokioEventfd, Mode::Free) => vec![0],
            // pipe i is [read end at 2i, write end at 2i+1]; contender i reads pipe i.
            (Variant::Pipe, Mode::Turns) => vec![2 * contender, 2 * next + 1],
            (Variant::Pipe, Mode::Free) => vec![0, 1],
            _ => vec![],
        };
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

/// A lock family applied to the whole arena file: the shape shared by the file-lock variants.
#[derive(Debug)]
pub struct FileLockHandoff<'a> {
    family: LockFamily,
    file: &'a File,
}

impl<'a> FileLockHandoff<'a> {
    pub(crate) fn new(family: LockFamily, file: &'a File) -> Self {
        FileLockHandoff { family, file }
    }
}

impl Handoff for FileLockHandoff<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        self.family.lock(
            self.file,
            crate::sys::locks::LockMode::Exclusive,
            crate::sys::locks::Wait::Block,
        )
    }

    fn release(&mut self) -> Result<(), Errno> {
        self.family.unlock(self.file)
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Waiters sleep in the kernel's lock queue; unlocking (done by the caller) wakes them.
        Ok(())
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
