//! What a variant is, as data: the [`Spec`] each mechanism's file declares. Everything the layers
//! above need to know of a mechanism (what it runs with, what it needs, its family in the
//! reports, what its holder's death does, its yardstick in `bench`) is read from here, so a new
//! mechanism is one file and one line in the registry.

use std::os::fd::OwnedFd;

use super::holder_death::HolderDeath;
use super::{Ctx, Mode, Opened, Setup, SetupError};
use crate::arena::Arena;
use crate::placement::Placement;
use crate::sys::fdkind::FdKind;
use crate::sys::uring::Unavailable;

/// All a variant is.
#[derive(Debug)]
pub struct Spec {
    /// The name on the command line and in reports: the variant's kebab-case serde and clap
    /// name (the registry's test holds them equal).
    pub name: &'static str,
    /// The panel the reports draw it in.
    pub family: Family,
    /// True if contenders lock through the open file description they received (only `seed`):
    /// everyone else opens a description of its own.
    pub shares_description: bool,
    /// The modes and contender counts it runs with, and whether this machine can run it.
    pub supports: Supports,
    /// The descriptors it hands the turn (or the lock) through besides the arena.
    pub fds: Fds,
    /// Sets the arena up before it is sent (client side), for the run [`Setup`] describes.
    pub prepare: fn(&Arena, &Setup) -> Result<(), SetupError>,
    /// Opens contender `ctx.contender`'s end from the descriptors [`Fds::pick`] chose, checked
    /// against [`Fds::kinds`]: its mechanism and where its turn lives.
    pub open: for<'a> fn(&Ctx<'a>, Vec<OwnedFd>) -> Result<Opened<'a>, SetupError>,
    /// What its holder's death does (`crash`), and the way out (`crash --survivable`).
    pub death: HolderDeath,
    /// True for a mechanism that takes the lock, looks at the turn and lets go: in `turns` mode
    /// its whoops come in storms of thousands per turn (the kernel trace's ring is sized for it).
    pub whoops_in_storms: bool,
    /// Its counterpart in `bench`'s C yardstick.
    pub yardstick: Yardstick,
    /// What decides a choice and no run measures: how far a waiter can be overtaken, what its
    /// holder's death leaves, what it needs, how async code waits on it ("What to use").
    pub profile: Profile,
}

/// The properties of a mechanism that decide a choice beside its measured speed.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// How far a waiter can be overtaken by later arrivals.
    pub overtaking: Overtaking,
    /// What the holder's death leaves the others, as the kernel decides it (`crash` measures it).
    pub death: Death,
    /// What it needs beyond a Linux kernel and the shared arena file, in a few words.
    pub needs: &'static str,
    /// How async code (an event loop) can wait on it.
    pub from_async: &'static str,
}

/// How far a waiter can be overtaken (the bypass bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overtaking {
    /// It does not exclude at all: there is nothing to overtake.
    NoExclusion,
    /// The holder names the next one (a handoff): in turns, nobody is ever overtaken.
    Handoff,
    /// Granted in arrival order (within a priority, for PI): bypass 0.
    Fifo,
    /// Barging, but a waiter is served within a time bound: the bound, in words.
    BoundedInTime(&'static str),
    /// Barging without a bound: whoever asks first after a release may win, every time.
    Unbounded,
}

impl Overtaking {
    /// In a few words, for tables.
    pub fn describe(self) -> &'static str {
        match self {
            Overtaking::NoExclusion => "no exclusion",
            Overtaking::Handoff => "none (handed over by name)",
            Overtaking::Fifo => "none (FIFO)",
            Overtaking::BoundedInTime(bound) => bound,
            Overtaking::Unbounded => "unbounded (barging)",
        }
    }
}

/// What a holder's death leaves the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Death {
    /// The kernel releases it: the next waiter gets it, untold.
    Released,
    /// The next owner gets it and is told its previous owner died (`EOWNERDEAD`, FUTEX_OWNER_DIED).
    Told,
    /// The waiter learns it through end-of-file, but never gets the turn.
    EndOfFile,
    /// Held for ever: nobody is told, waiters wait until someone else notices (a pidfd).
    Held,
    /// Nothing to release: it never excluded.
    NoExclusion,
}

impl Death {
    /// In a few words, for tables.
    pub fn describe(self) -> &'static str {
        match self {
            Death::Released => "released by the kernel",
            Death::Told => "next owner told (EOWNERDEAD)",
            Death::EndOfFile => "waiter sees end-of-file, no turn",
            Death::Held => "held for ever, nobody told",
            Death::NoExclusion => "nothing held",
        }
    }

    /// True if the others can go on without a watcher of their own.
    pub fn survivable(self) -> bool {
        matches!(self, Death::Released | Death::Told)
    }
}

/// A group of variants the reports draw together, so a dozen curves never share one panel. Each
/// variant's [`Spec`] names its own, by what the mechanism does rather than what it is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Kernel file locks (and protocols built of them): whoever asks first after an unlock wins.
    FileLocks,
    /// The turn is handed to the next contender by name, through a descriptor of its own:
    /// eventfd, pipe, tokio-eventfd. Nobody else is woken, so nobody whoops.
    ExplicitHandoffs,
    /// Mutexes on a shared word, after the ones programs use (Drepper's futex mutex, glibc's
    /// robust mutex, PI futexes, parking_lot's eventual fairness, Go's starvation mode, a
    /// spinning mutex). They differ in what an unlock does (wake a waiter that must race for the
    /// lock, or hand it to a queued one: always for `pi-futex`, after a deadline or a starved
    /// wait for `fair-futex` and `starvation-futex`), but none keeps arrival order. `futex` and
    /// `uring-futex` are here although in `turns` mode they FUTEX_WAKE the turn word, a handoff
    /// with two contenders: in `free` mode they are the three-state mutex, and in `turns` mode a
    /// wake reaches every sleeper on the one word, so with more contenders they whoop like the
    /// lock they are (`results/herd-4`). `spin-futex`, likewise, is a spinning mutex in `free`
    /// mode.
    Mutexes,
    /// Locks that queue their waiters and grant in arrival order: no later arrival overtakes a
    /// wait (bypass 0), whoever the scheduler runs.
    FifoLocks,
}

/// The modes and contender counts a variant runs with. A refusal is one line naming the
/// variant, built from these by [`super::Variant::supports`].
#[derive(Clone, Copy, Debug)]
pub struct Supports {
    /// Runs with exactly this many contenders, no other count.
    pub exactly: Option<usize>,
    /// A mode it has not, and why (the refusal's text).
    pub not_in: Option<(Mode, &'static str)>,
    /// Asks this machine whether it can run the variant at all.
    pub available: Option<fn() -> Result<(), Unavailable>>,
}

impl Supports {
    /// Both modes, any number of contenders, on any machine.
    pub const EVERYTHING: Supports = Supports {
        exactly: None,
        not_in: None,
        available: None,
    };
}

/// The descriptors a variant needs besides the arena: created once by the client for the whole
/// run, then picked for each contender.
#[derive(Clone, Copy, Debug)]
pub struct Fds {
    /// What each contender receives in `turns` mode, in order.
    pub turns: &'static [FdKind],
    /// What each contender receives in `free` mode, in order.
    pub free: &'static [FdKind],
    /// Creates the run's descriptors: `count` rings or tokens (one per contender in `turns`
    /// mode, a single one in `free` mode).
    pub create: fn(count: usize) -> Result<Vec<OwnedFd>, SetupError>,
    /// Which of the run's descriptors contender `contender` of `contenders` gets in `mode`, in
    /// the order of [`Fds::kinds`].
    pub pick: fn(mode: Mode, contender: usize, contenders: usize) -> Vec<usize>,
}

impl Fds {
    /// No descriptor besides the arena.
    pub const NONE: Fds = Fds {
        turns: &[],
        free: &[],
        create: |_| Ok(Vec::new()),
        pick: |_, _, _| Vec::new(),
    };

    /// What each contender receives in `mode`.
    pub fn kinds(&self, mode: Mode) -> &'static [FdKind] {
        match mode {
            Mode::Turns => self.turns,
            Mode::Free => self.free,
        }
    }
}

/// Nothing to set up in the arena.
pub(super) fn no_preparation(_: &Arena, _: &Setup) -> Result<(), SetupError> {
    Ok(())
}

/// A variant's counterpart in the C yardstick of `bench` (`bench/pingpong.c`), the cheapest
/// handoff the kernel offers through the same mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yardstick {
    /// The C ping-pong's mode that does the same, and the one placement where the pair is worth
    /// running (`None`: every placement).
    Counterpart {
        mode: &'static str,
        only: Option<Placement>,
    },
    /// The C ping-pong has no such mode, for this reason.
    NoCounterpart(&'static str),
}
