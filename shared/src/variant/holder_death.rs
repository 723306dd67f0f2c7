//! What a variant's holder's death does, as the variant declares it: the cells `crash` runs for
//! it, the kernel's reason for each outcome it can explain, and the way out `crash --survivable`
//! gives its survivor. The experiment itself lives above, in [`crate::crash`](mod@crate::crash).

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::Variant;
use crate::arena::Arena;
use crate::sys::robust_mutex::MutexRoom;

/// Who else holds what the holder locked or wrote through when it dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Description {
    /// The holder's descriptors were its own: its own open file description of the arena (a
    /// reopen), and for a pipe the only write end of the survivor's pipe.
    Own,
    /// A live process (the driver) holds them too: the arena's description the holder received
    /// over SCM_RIGHTS and locked through, or the pipe's write end.
    Shared,
}

impl Description {
    pub fn name(self) -> &'static str {
        match self {
            Description::Own => "own",
            Description::Shared => "shared",
        }
    }
}

/// What the survivor of a `crash` cell got, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
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

/// A variant's part in the holder-death experiment.
#[derive(Clone, Copy, Debug)]
pub struct HolderDeath {
    /// The holder's description cases of `crash`'s cells, the mechanism alone.
    pub plain: &'static [Description],
    /// The cases of `crash --survivable`'s cells (none: the variant offers no way out).
    pub survivable: &'static [Description],
    /// How a protected survivor learns of the death (`crash --survivable`, `crash --overhead`).
    pub protection: Option<Protected>,
    /// The kernel's reason for an outcome this mechanism explains, in one line (`None`: the
    /// experiment's generic line).
    pub reason: fn(Description, Outcome) -> Option<&'static str>,
    /// Reads the lock word the survivor now holds: true if it carries the kernel's note that
    /// its previous owner died (FUTEX_OWNER_DIED).
    pub owner_died: Option<fn(&Arena) -> bool>,
    /// A robust mutex the experiment drives itself, through [`crate::sys::robust_mutex`]: where
    /// it lives. (The variant's own round loop repairs `EOWNERDEAD` at once, which would hide
    /// exactly what the experiment shows.)
    pub robust_mutex: Option<for<'a> fn(&'a Arena) -> &'a MutexRoom>,
    /// Reads the thread id the lock word records as its owner (0: free), for a word that
    /// records one (a PI futex, a robust mutex): how `crash --stop` names a stopped holder
    /// where no file lock does.
    pub owner_tid: Option<fn(&Arena) -> u32>,
}

impl HolderDeath {
    /// Cells for `cases` with the mechanism alone, explained by `reason`; no way out.
    pub const fn plain(
        cases: &'static [Description],
        reason: fn(Description, Outcome) -> Option<&'static str>,
    ) -> HolderDeath {
        HolderDeath {
            plain: cases,
            survivable: &[],
            protection: None,
            reason,
            owner_died: None,
            robust_mutex: None,
            owner_tid: None,
        }
    }
}

/// How a variant's survivor learns of a death in `crash --survivable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// The peers' pidfds in the same `poll` as the waiter's descriptor.
    PollWithPidfds,
    /// The peers' pidfds registered in the same tokio runtime, in the same `select!`.
    PidfdsInRuntime,
    /// A thread asleep in `poll` on the peers' pidfds repairs the turn and wakes the sleeper.
    WatcherThread,
}

impl Protection {
    /// The protection `crash --survivable` gives `variant`, if any.
    pub fn of(variant: Variant) -> Option<Protection> {
        variant.spec().death.protection.map(|p| p.kind)
    }

    /// In words, for tables.
    pub fn describe(self) -> &'static str {
        match self {
            Protection::PollWithPidfds => "pidfd of the peer in the same poll",
            Protection::PidfdsInRuntime => "pidfd of the peer in the same tokio select!",
            Protection::WatcherThread => "watcher thread asleep on the peer's pidfd",
        }
    }
}

/// A variant's survivable form.
#[derive(Clone, Copy, Debug)]
pub struct Protected {
    pub kind: Protection,
    /// Bytes one token is on the ring's descriptors ([`Protection::PollWithPidfds`]): 8 for an
    /// eventfd counter, 1 for a pipe.
    pub token: usize,
    /// How a contender asleep in the plain mechanism is woken once its peer died.
    pub repair: Repair,
    /// The survivor's line when the protection brought it through, if the kind's own does not
    /// say it.
    pub survived: Option<&'static str>,
}

/// What wakes a contender asleep in the plain mechanism once its peer died: a watcher thread
/// runs it (the futex variants' protection, and `crash --overhead`'s safety net).
#[derive(Clone, Copy, Debug)]
pub enum Repair {
    /// Nothing needed: the death itself wakes the sleeper (a pipe's end-of-file).
    Nothing,
    /// A token posted on the sleeper's own eventfd (its first descriptor).
    PostOwnEventfd,
    /// `(arena, me, dead)`: the shared words repaired so the turn `dead` held passes to `me`,
    /// then `me` woken where it sleeps. Each step changes the word the sleeper waits on before
    /// waking it, so the wakeup cannot be lost. Two contenders: the one dead, the one left.
    Words(fn(&Arena, usize, usize)),
}
