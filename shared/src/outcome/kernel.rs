//! What the kernel recorded during a run (`--kernel-trace`, see [`crate::ktrace`]): its counts,
//! the `kernel` object of `run --json` ([`KernelFigures`], field names are an interface: keep
//! them), and a few milliseconds of the run as one lane per contender ([`Timeline`], drawn as
//! `timeline.svg`).

use serde::{Deserialize, Serialize};

use crate::measure::Summary;

/// What `--kernel-trace` gave: the kernel's account, or why there is none (one line).
#[derive(Clone, Debug, PartialEq)]
pub enum KernelTrace {
    Recorded(Box<KernelRun>),
    Unavailable(String),
}

impl KernelTrace {
    /// The account, if the trace was taken.
    pub fn run(&self) -> Option<&KernelRun> {
        match self {
            KernelTrace::Recorded(k) => Some(k),
            KernelTrace::Unavailable(_) => None,
        }
    }

    /// Why there is no account, if there is none.
    pub fn note(&self) -> Option<&str> {
        match self {
            KernelTrace::Recorded(_) => None,
            KernelTrace::Unavailable(why) => Some(why),
        }
    }
}

/// The kernel's side of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelRun {
    pub figures: KernelFigures,
    pub timeline: Timeline,
}

/// The kernel's account of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelFigures {
    /// Every contender's counts added up (flattened: the JSON fields are the counts' own).
    #[serde(flatten)]
    pub counts: LockCounts,
    /// `regrants_over_waiter` per grant: the kernel's figure for lockfair's waiting-bit proxy.
    pub regrant_rate: f64,
    /// From `sched_waking` to `sched_switch` in (microsecond resolution: the trace prints µs).
    pub wake_to_run_ns: Summary,
    /// Events the ring buffer lost; when not 0 the counts cover only the start of the run.
    pub lost_events: u64,
    /// Per contender, in contender order.
    pub contenders: Vec<ContenderCounts>,
}

impl KernelFigures {
    /// Lock events seen at all: 0 for a mechanism that takes no file lock.
    pub fn lock_events(&self) -> u64 {
        self.counts
            .lock_requests
            .saturating_add(self.counts.unlocks)
    }
}

/// What the kernel recorded of one contender, or of all of them added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockCounts {
    /// Lock requests and retries on the arena (unlocks excluded).
    pub lock_requests: u64,
    /// Requests granted (`ret=0`).
    pub grants: u64,
    /// Requests queued behind a conflicting lock (`ret=1`, `FILE_LOCK_DEFERRED`).
    pub blocks: u64,
    /// Requests refused without waiting (`EAGAIN`, `EDEADLK`, ...).
    pub refused: u64,
    pub unlocks: u64,
    /// Wakeups of a contender by another contender (for the explicit handoffs, the handoff
    /// itself; for file locks also the start line's).
    pub wakeups: u64,
    /// Of those, wakeups of a contender queued in the lock's queue: the releaser waking a
    /// blocked waiter.
    pub wakeups_of_queued: u64,
    /// Kernel-confirmed barges: a queued waiter released by an unlock, beaten by another
    /// contender's grant before its retry, and queued again (counted for the waiter).
    pub barges: u64,
    /// Grants to the contender that released last while another one was queued in the kernel
    /// (counted for the releaser).
    pub regrants_over_waiter: u64,
}

impl LockCounts {
    /// Adds `other` in, saturating.
    pub fn add(&mut self, other: &LockCounts) {
        let fields = [
            (&mut self.lock_requests, other.lock_requests),
            (&mut self.grants, other.grants),
            (&mut self.blocks, other.blocks),
            (&mut self.refused, other.refused),
            (&mut self.unlocks, other.unlocks),
            (&mut self.wakeups, other.wakeups),
            (&mut self.wakeups_of_queued, other.wakeups_of_queued),
            (&mut self.barges, other.barges),
            (&mut self.regrants_over_waiter, other.regrants_over_waiter),
        ];
        for (sum, n) in fields {
            *sum = sum.saturating_add(n);
        }
    }
}

/// One contender's counts, as the kernel recorded them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContenderCounts {
    pub contender: u16,
    /// The thread the contender ran on.
    pub tid: i32,
    #[serde(flatten)]
    pub counts: LockCounts,
}

/// The chain of one barge, for the timeline: unlock → wake → someone else's grant → queued again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BargeChain {
    pub waiter: usize,
    pub unlocker: usize,
    pub unlock_ns: u64,
    /// When the waiter was woken, if it had gone to sleep.
    pub wake_ns: Option<u64>,
    pub granted_to: usize,
    pub grant_ns: u64,
    pub requeued_ns: u64,
}

/// What the lock was doing for a contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Queued in the kernel behind another's lock.
    Waiting,
    /// Holding the lock for its turn.
    Holding,
    /// Holding the lock when it was not its turn (only known in `turns` mode).
    Whooping,
}

/// What the scheduler was doing with a contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuState {
    Running,
    /// Preempted: it could run but another thread had the CPU.
    Runnable,
    Sleeping,
}

/// A state from `start_ns` to `end_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span<S> {
    pub start_ns: u64,
    pub end_ns: u64,
    pub state: S,
}

/// One contender's lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub contender: usize,
    pub tid: i32,
    pub lock: Vec<Span<LockState>>,
    pub cpu: Vec<Span<CpuState>>,
}

/// The picture's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    pub start_ns: u64,
    pub end_ns: u64,
    pub lanes: Vec<Lane>,
    /// The barge chains that start inside the window.
    pub chains: Vec<BargeChain>,
}
