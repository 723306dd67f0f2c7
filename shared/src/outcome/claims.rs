//! The story lockfair tells, written once, as data: each claim is an experiment, the figure it
//! yields and the condition under which the claim holds. `lockfair-client demo` runs them on the
//! user's machine and says, claim by claim, whether it holds here; the reports read the same
//! sentences.

use crate::placement::Placement;
use crate::variant::{Death, Mode, Variant};

/// The variant called `name` on the command line.
pub fn named(name: &str) -> Option<Variant> {
    <Variant as clap::ValueEnum>::from_str(name, false).ok()
}

/// One cell of an experiment: what `run` is asked for. The variant goes by its name, so that the
/// story names mechanisms without knowing them (each is known in its own file only; a test
/// checks every name resolves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub variant: &'static str,
    pub placement: Placement,
    pub mode: Mode,
    pub contenders: usize,
    pub rounds: u64,
    /// Record the kernel's account (needs root and tracefs).
    pub kernel_trace: bool,
    /// Hold the CPUs out of idle (needs root).
    pub hold_idle: bool,
}

impl Cell {
    /// Two contenders taking turns, `rounds` long.
    pub const fn turns(variant: &'static str, placement: Placement, rounds: u64) -> Cell {
        Cell {
            variant,
            placement,
            mode: Mode::Turns,
            contenders: 2,
            rounds,
            kernel_trace: false,
            hold_idle: false,
        }
    }

    /// The mechanism, if its name is one (always, for the registry's claims: a test says so).
    pub fn variant(&self) -> Option<Variant> {
        named(self.variant)
    }

    pub const fn traced(self) -> Cell {
        Cell {
            kernel_trace: true,
            ..self
        }
    }

    pub const fn held(self) -> Cell {
        Cell {
            hold_idle: true,
            ..self
        }
    }
}

/// What a claim measures, in one run of its experiment (or a pair of runs, for a ratio).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// Critical sections that overlapped, per 1,000 rounds.
    OverlapsPerKRound(Cell),
    WhoopsPerRound(Cell),
    /// Round trip p50, µs.
    RoundTripUs(Cell),
    /// Kernel-confirmed barges per round (`--kernel-trace`).
    KernelBargesPerRound(Cell),
    /// `a`'s acquisitions/s over `b`'s, paired runs.
    ThroughputRatio {
        a: Cell,
        b: Cell,
    },
    /// `a`'s bypass max over `b`'s, paired runs (free mode): a wait's worst overtaking.
    BypassMaxRatio {
        a: Cell,
        b: Cell,
    },
    /// `a`'s round trip p50 over `b`'s, paired runs.
    RoundTripRatio {
        a: Cell,
        b: Cell,
    },
    /// What the survivor got when the holder of `variant` was killed inside its critical
    /// section (a `crash` cell, descriptions of its own): 1 if it is what the claim says.
    HolderDeath(&'static str, Death),
}

impl Figure {
    /// The unit the figure is given in, for a reader.
    pub fn unit(self) -> &'static str {
        match self {
            Figure::OverlapsPerKRound(_) => "overlaps per 1,000 rounds",
            Figure::WhoopsPerRound(_) => "whoops per round",
            Figure::RoundTripUs(_) => "µs round trip (p50)",
            Figure::KernelBargesPerRound(_) => "kernel-confirmed barges per round",
            Figure::ThroughputRatio { .. } => "× the acquisitions/s",
            Figure::BypassMaxRatio { .. } => "× the bypass max",
            Figure::RoundTripRatio { .. } => "× the round trip (p50)",
            Figure::HolderDeath(..) => "(1: as said; 0: not)",
        }
    }

    /// The cells it runs.
    pub fn cells(self) -> Vec<Cell> {
        match self {
            Figure::OverlapsPerKRound(c)
            | Figure::WhoopsPerRound(c)
            | Figure::RoundTripUs(c)
            | Figure::KernelBargesPerRound(c) => vec![c],
            Figure::ThroughputRatio { a, b }
            | Figure::BypassMaxRatio { a, b }
            | Figure::RoundTripRatio { a, b } => vec![a, b],
            Figure::HolderDeath(..) => Vec::new(),
        }
    }
}

/// When a claim holds, given the figure's median over the repeats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Holds {
    Zero,
    Above(f64),
    Below(f64),
}

impl Holds {
    pub fn by(self, median: f64) -> bool {
        match self {
            Holds::Zero => median == 0.0,
            Holds::Above(x) => median > x,
            Holds::Below(x) => median < x,
        }
    }

    /// The expected range, for a reader.
    pub fn describe(self) -> String {
        match self {
            Holds::Zero => "0".into(),
            Holds::Above(x) => format!("> {x}"),
            Holds::Below(x) => format!("< {x}"),
        }
    }
}

/// What a claim needs beyond two processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    TwoCpus,
    /// Root (kernel tracing, holding the CPUs out of idle) and two CPUs.
    RootTwoCpus,
    /// Root (kernel tracing).
    Root,
}

/// One claim of the story.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    pub id: &'static str,
    /// The claim, in one sentence.
    pub says: &'static str,
    pub figure: Figure,
    pub holds: Holds,
    pub needs: Needs,
    /// Why, in one sentence: what the kernel does.
    pub why: &'static str,
}

use Placement::{SameCpu, Split};

const fn free4(variant: &'static str) -> Cell {
    Cell {
        variant,
        placement: Placement::Free,
        mode: Mode::Free,
        contenders: 4,
        // Long enough that waiters pass fair-futex's deadline (0-1 ms) often and a barging
        // run's streaks are not cut short by the end of the run: at 20,000 a run lasts about
        // 10 ms and the ratios swing from 0.4 to 4.
        rounds: 200_000,
        kernel_trace: false,
        hold_idle: false,
    }
}

const OFD_SPLIT: Cell = Cell::turns("ofd", Split, 1_000);
const OFD_ONE_CPU: Cell = Cell::turns("ofd", SameCpu, 40);

/// The story, in the order `demo` tells it.
pub const CLAIMS: &[Claim] = &[
    Claim {
        id: "seed-excludes-nobody",
        says: "The blog's experiment had no mutual exclusion: a descriptor passed with SCM_RIGHTS shares the sender's open file description, so OFD locks through it never conflict.",
        figure: Figure::OverlapsPerKRound(Cell::turns("seed", Split, 2_000)),
        holds: Holds::Above(0.0),
        needs: Needs::TwoCpus,
        why: "OFD locks belong to the open file description: both processes are one lock owner (kcmp says it is the same description).",
    },
    Claim {
        id: "own-descriptions-exclude",
        says: "With a description of its own per process, the OFD lock excludes: no two critical sections overlap.",
        figure: Figure::OverlapsPerKRound(OFD_SPLIT),
        holds: Holds::Zero,
        needs: Needs::TwoCpus,
        why: "two descriptions are two lock owners, and the kernel never grants conflicting locks to two owners.",
    },
    Claim {
        id: "two-cpus-not-handed-over",
        says: "On two CPUs the lock excludes but is not handed over: a side often gets the lock when it is not its turn (a whoop).",
        figure: Figure::WhoopsPerRound(OFD_SPLIT),
        holds: Holds::Above(1.0),
        needs: Needs::TwoCpus,
        why: "an unlock only wakes the waiter, which must ask again; the releaser, still running, is granted its next lock before the waiter's retry.",
    },
    Claim {
        id: "two-cpus-kernel-barges",
        says: "The kernel's own trace confirms the barge on two CPUs: a woken waiter is beaten by the releaser's next grant and queues again.",
        figure: Figure::KernelBargesPerRound(OFD_SPLIT.traced()),
        holds: Holds::Above(0.0),
        needs: Needs::RootTwoCpus,
        why: "fs/locks.c wakes the waiter without granting it anything; the trace shows F_UNLCK, the wakeup, the releaser's F_WRLCK granted, then the waiter's retry queued again.",
    },
    Claim {
        id: "one-cpu-costs-far-more",
        says: "On one CPU a file-lock turn costs more than ten times an eventfd handoff, often a whole scheduler tick.",
        figure: Figure::RoundTripRatio {
            a: OFD_ONE_CPU,
            b: Cell::turns("eventfd", SameCpu, 2_000),
        },
        holds: Holds::Above(10.0),
        needs: Needs::Nothing,
        why: "the side whose turn it is not re-locks, uncontended, and lets go, over and over, while the other is runnable but not queued on the lock, until the scheduler switches (at the latest, the tick ends the slice).",
    },
    Claim {
        id: "one-cpu-waiter-runs-first",
        says: "On one CPU the woken waiter usually runs first: the kernel sees almost no barge there.",
        figure: Figure::KernelBargesPerRound(OFD_ONE_CPU.traced()),
        holds: Holds::Below(0.5),
        needs: Needs::Root,
        why: "the wakeup preempts the releaser (wakeup preemption), so the waiter's retry comes before the releaser's next request.",
    },
    Claim {
        id: "eventfd-hands-over",
        says: "An eventfd handoff never lets a side run out of turn with two contenders.",
        figure: Figure::WhoopsPerRound(Cell::turns("eventfd", Split, 2_000)),
        holds: Holds::Zero,
        needs: Needs::TwoCpus,
        why: "the holder writes the next side's eventfd: only that side wakes, and only when it is its turn.",
    },
    Claim {
        id: "futex-hands-over",
        says: "A futex on the turn word never lets a side run out of turn with two contenders.",
        figure: Figure::WhoopsPerRound(Cell::turns("futex", Split, 2_000)),
        holds: Holds::Zero,
        needs: Needs::TwoCpus,
        why: "a side sleeps until the turn word names it; FUTEX_WAKE wakes, the word decides.",
    },
    Claim {
        id: "pipe-hands-over",
        says: "A pipe handoff never lets a side run out of turn with two contenders.",
        figure: Figure::WhoopsPerRound(Cell::turns("pipe", Split, 2_000)),
        holds: Holds::Zero,
        needs: Needs::TwoCpus,
        why: "the holder writes one byte into the next side's pipe: the byte is the turn.",
    },
    Claim {
        id: "ticket-hands-over",
        says: "A FIFO ticket lock never lets a side run out of turn with two contenders.",
        figure: Figure::WhoopsPerRound(Cell::turns("ticket", Split, 2_000)),
        holds: Holds::Zero,
        needs: Needs::TwoCpus,
        why: "tickets are served in order and taken in turn order: the queue is the ring.",
    },
    Claim {
        id: "fair-lock-bounds-overtaking",
        says: "With four contenders the worst overtaking of a wait is smaller under a fair futex lock than under the futex mutex.",
        figure: Figure::BypassMaxRatio {
            a: free4("fair-futex"),
            b: free4("futex"),
        },
        holds: Holds::Below(1.0),
        needs: Needs::TwoCpus,
        why: "eventual fairness: a waiter that has waited past a short deadline (0-1 ms) is handed the lock instead of racing for it, so no wait is overtaken for long; within that time it is overtaken as under any barging lock.",
    },
    Claim {
        id: "fair-lock-price",
        says: "Eventual fairness costs little: the fair futex lock keeps more than half of the futex mutex's acquisitions per second.",
        figure: Figure::ThroughputRatio {
            a: free4("fair-futex"),
            b: free4("futex"),
        },
        holds: Holds::Above(0.5),
        needs: Needs::TwoCpus,
        why: "fair handoffs are rare by construction (one per deadline, 0-1 ms): between them it barges like the futex mutex, its unlock wakes a sleeper only when none is already awake, and it reads the clock on one contended unlock in 16; each fair handoff costs a wakeup of a sleeping waiter with the lock held for it.",
    },
    Claim {
        id: "posix-released-at-death",
        says: "A POSIX record lock is released by the kernel when its holder dies: the waiter gets it, untold.",
        figure: Figure::HolderDeath("posix", Death::Released),
        holds: Holds::Above(0.5),
        needs: Needs::Nothing,
        why: "POSIX locks belong to the process (its file table); its exit drops them.",
    },
    Claim {
        id: "futex-held-at-death",
        says: "A plain futex whose holder dies stays held: nobody is told, the waiter waits for ever.",
        figure: Figure::HolderDeath("futex", Death::Held),
        holds: Holds::Above(0.5),
        needs: Needs::Nothing,
        why: "the kernel knows nothing of a plain futex word's owner.",
    },
    Claim {
        id: "robust-mutex-tells",
        says: "A robust mutex whose holder dies is taken by the next locker, who is told (EOWNERDEAD).",
        figure: Figure::HolderDeath("robust-mutex", Death::Told),
        holds: Holds::Above(0.5),
        needs: Needs::Nothing,
        why: "at the holder's exit the kernel walks its robust list, sets FUTEX_OWNER_DIED in the word and wakes a waiter.",
    },
    Claim {
        id: "pipe-end-of-file",
        says: "A pipe reader whose writer died holding the turn sees end-of-file, and never gets the turn.",
        figure: Figure::HolderDeath("pipe", Death::EndOfFile),
        holds: Holds::Above(0.5),
        needs: Needs::Nothing,
        why: "the dead holder had the pipe's only write end: its exit closes it.",
    },
    Claim {
        id: "held-out-of-idle-wakes-in-microseconds",
        says: "The machine sets the two-CPU figures: with the CPUs held out of idle, a cross-CPU handoff takes a few microseconds.",
        figure: Figure::RoundTripUs(Cell::turns("eventfd", Split, 2_000).held()),
        holds: Holds::Below(15.0),
        needs: Needs::RootTwoCpus,
        why: "a waiter's CPU that polls instead of halting runs it at once; a halted vCPU costs tens of microseconds to wake on this kind of VM, unless the host's own halt polling has adapted to the load (two speed levels).",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_has_a_unique_id_and_says_why() {
        let mut ids: Vec<&str> = CLAIMS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CLAIMS.len());
        for c in CLAIMS {
            assert!(c.says.ends_with('.') && c.why.ends_with('.'), "{}", c.id);
        }
    }

    #[test]
    fn every_claim_names_real_variants() {
        for c in CLAIMS {
            for cell in c.figure.cells() {
                assert!(cell.variant().is_some(), "{}: {}", c.id, cell.variant);
            }
            if let Figure::HolderDeath(name, _) = c.figure {
                assert!(named(name).is_some(), "{}: {name}", c.id);
            }
        }
    }

    #[test]
    fn a_claim_holds_by_its_median() {
        assert!(Holds::Zero.by(0.0) && !Holds::Zero.by(0.1));
        assert!(Holds::Above(1.0).by(1.5) && !Holds::Above(1.0).by(1.0));
        assert!(Holds::Below(1.0).by(0.5) && !Holds::Below(1.0).by(1.0));
    }
}
