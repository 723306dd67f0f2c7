//! What one side measures during a run, and how it travels and prints.
//!
//! Everything here has a fixed size: counters and HdrHistograms (nanoseconds, 3 significant
//! digits). Nothing grows with the number of rounds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::arena::StopReason;
use crate::sys::rusage::ThreadUsage;

// The histogram bounds live with their wire format, which checks a peer's histogram against them.
pub use crate::histwire::{MAX_TRACKED, SIGNIFICANT_DIGITS, new_histogram};

/// Which part a contender plays in `turns` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Writes "line n" when it is its turn (contender 0; the server in a two-party run).
    Writer,
    /// Reads "line n" and checks it (every other contender).
    Reader,
}

impl Role {
    /// Contender 0 writes, everyone else reads.
    pub fn of(contender: usize) -> Role {
        if contender == 0 {
            Role::Writer
        } else {
            Role::Reader
        }
    }
}

/// How a side's run ended, when it ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// Did every round it was asked for.
    Completed,
    /// Hit `--max-seconds` itself and stopped everyone.
    Deadline,
    /// Another contender stopped the run because of its deadline.
    PeerDeadline,
    /// Another contender gave up (it died, was interrupted or failed) and said so in the arena.
    PeerAborted,
}

/// How this side's run ended when another contender stopped it, for the reason it gave.
impl From<StopReason> for End {
    fn from(reason: StopReason) -> End {
        match reason {
            StopReason::Deadline => End::PeerDeadline,
            StopReason::Aborted => End::PeerAborted,
        }
    }
}

/// The snake_case name of an [`End`], as JSON spells it.
pub fn end_name(end: End) -> &'static str {
    match end {
        End::Completed => "completed",
        End::Deadline => "deadline",
        End::PeerDeadline => "peer_deadline",
        End::PeerAborted => "peer_aborted",
    }
}

/// CPU time and context switches of the thread that ran the side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rusage {
    /// Total CPU time, exact (CLOCK_THREAD_CPUTIME_ID).
    pub cpu_ns: u64,
    /// The user/system split from getrusage (sampled at the scheduler tick: coarse).
    pub user_ns: u64,
    pub sys_ns: u64,
    pub voluntary_ctxt_switches: u64,
    pub involuntary_ctxt_switches: u64,
}

impl From<ThreadUsage> for Rusage {
    fn from(u: ThreadUsage) -> Self {
        Rusage {
            cpu_ns: u.cpu_ns,
            user_ns: u.user_ns,
            sys_ns: u.sys_ns,
            voluntary_ctxt_switches: u.voluntary_switches,
            involuntary_ctxt_switches: u.involuntary_switches,
        }
    }
}

impl Rusage {
    /// Total CPU time.
    pub fn cpu_ns(&self) -> u64 {
        self.cpu_ns
    }
}

/// One contender's results. In `free` mode `rounds` counts acquisitions, the turn histograms
/// stay empty and [`ContenderStats::free`] holds the rest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContenderStats {
    pub contender: u16,
    pub role: Role,
    /// The CPU this side was pinned to, if any.
    pub cpu: Option<u16>,
    /// Turns this side completed.
    pub rounds: u64,
    /// From the start barrier to the end of the last turn.
    pub wall_ns: u64,
    /// Acquisitions that found it was not this side's turn (all of them, including any while
    /// waiting for a turn that never came because the run stopped).
    pub whoops: u64,
    /// Entries into the critical section while another contender was inside.
    pub overlaps: u64,
    /// Turns where the reader saw something other than "line n".
    pub wrong_reads: u64,
    pub end: End,
    pub rusage: Rusage,
    /// From the releasing side's timestamp to holding the turn; one value per turn.
    #[serde(with = "crate::histwire")]
    pub handoff: Histogram<u64>,
    /// From passing the turn to getting it back; one value per turn but the first.
    #[serde(with = "crate::histwire")]
    pub round_trip: Histogram<u64>,
    /// Whoops before each turn; one value per turn.
    #[serde(with = "crate::histwire")]
    pub whoops_per_round: Histogram<u64>,
    /// `--mode free` only: the lock's fairness as this contender saw it.
    pub free: Option<FreeStats>,
    /// Time this side held the lock (`free`) or its turn (`turns`), summed over its
    /// acquisitions: from holding it to letting it go. Lock opportunity is computed from it.
    pub held_ns: u64,
    /// The busy work it was asked to do inside each critical section (`--hold`) and between two
    /// (`--think`).
    pub hold_ns: u64,
    pub think_ns: u64,
    /// Its session thread's nice value during the run, as `getpriority` read it back.
    pub nice: i32,
    /// CLOCK_MONOTONIC (shared by every process) when its clocks started and stopped: the span
    /// of a `turns` run's lock opportunity runs from the first start to the last stop.
    pub started_ns: u64,
    pub ended_ns: u64,
}

/// One contender's view of a `--mode free` run, where every contender takes the lock as fast as
/// it can and the question is who gets it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FreeStats {
    /// Acquisitions in the common window (from the moment every contender has asked for the lock
    /// until the first one has finished), over which Jain's fairness index compares contenders:
    /// before everyone is in the race, the scheduler, not the lock, decides who runs.
    pub acquisitions_in_window: u64,
    /// Acquisitions by this contender right after its own release while someone else waited.
    pub barging: u64,
    /// From asking for the lock to holding it; one value per acquisition.
    #[serde(with = "crate::histwire")]
    pub wait: Histogram<u64>,
    /// Lengths of this contender's runs of consecutive acquisitions.
    #[serde(with = "crate::histwire")]
    pub runs: Histogram<u64>,
    /// The part of `held_ns` from acquisitions in the common window.
    pub held_in_window_ns: u64,
    /// CLOCK_MONOTONIC (shared by every process on the machine) when this contender joined the
    /// race and when it left it: the common window runs from the last to join to the first to
    /// complete.
    pub joined_ns: u64,
    pub left_ns: u64,
}

impl FreeStats {
    /// Empty.
    pub fn new() -> Self {
        FreeStats {
            acquisitions_in_window: 0,
            barging: 0,
            wait: new_histogram(),
            runs: new_histogram(),
            held_in_window_ns: 0,
            joined_ns: 0,
            left_ns: 0,
        }
    }
}

impl Default for FreeStats {
    fn default() -> Self {
        FreeStats::new()
    }
}

impl ContenderStats {
    /// Empty stats for `contender`.
    pub fn new(contender: usize, cpu: Option<usize>) -> Self {
        ContenderStats {
            contender: contender as u16,
            role: Role::of(contender),
            cpu: cpu.map(|c| c as u16),
            rounds: 0,
            wall_ns: 0,
            whoops: 0,
            overlaps: 0,
            wrong_reads: 0,
            end: End::Completed,
            rusage: Rusage::default(),
            handoff: new_histogram(),
            round_trip: new_histogram(),
            whoops_per_round: new_histogram(),
            free: None,
            held_ns: 0,
            hold_ns: 0,
            think_ns: 0,
            nice: 0,
            started_ns: 0,
            ended_ns: 0,
        }
    }

    /// How long this contender waited for the lock or its turn: the acquisition wait in
    /// `free` mode, the handoff latency in `turns` mode.
    pub fn wait(&self) -> &Histogram<u64> {
        self.free.as_ref().map_or(&self.handoff, |f| &f.wait)
    }

    /// Lock acquisitions that gave this contender what it asked for: turns in `turns` mode.
    pub fn acquisitions(&self) -> u64 {
        self.rounds
    }

    /// Turns per second of wall time.
    pub fn rounds_per_sec(&self) -> f64 {
        if self.wall_ns == 0 {
            0.0
        } else {
            self.rounds as f64 * 1e9 / self.wall_ns as f64
        }
    }

    /// Mean whoops per completed turn.
    pub fn whoops_per_turn(&self) -> f64 {
        if self.rounds == 0 {
            self.whoops as f64
        } else {
            self.whoops as f64 / self.rounds as f64
        }
    }
}

/// The percentile summary every report prints for a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Summary {
    /// Summarises `h` (all zeros when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One side as `--json` prints it. Field names are an interface: keep them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContenderStatsJson {
    pub contender: u16,
    pub role: Role,
    pub cpu: Option<u16>,
    pub rounds: u64,
    pub whoops: u64,
    pub overlaps: u64,
    pub wrong_reads: u64,
    pub end: End,
    pub wall_ns: u64,
    pub rounds_per_sec: f64,
    pub handoff_ns: Summary,
    pub round_trip_ns: Summary,
    pub whoops_per_round: Summary,
    pub rusage: Rusage,
    /// CPU time (CLOCK_THREAD_CPUTIME_ID) per completed turn.
    pub cpu_ns_per_round: f64,
    /// `--mode free` only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub free: Option<FreeJson>,
    /// Time it held the lock (or its turn), summed over its acquisitions.
    #[serde(default)]
    pub held_ns: u64,
    /// The busy work asked inside each critical section (`--hold`) and between two (`--think`).
    #[serde(default)]
    pub hold_ns: u64,
    #[serde(default)]
    pub think_ns: u64,
    /// Its nice value during the run (getpriority).
    #[serde(default)]
    pub nice: i32,
}

/// `--mode free` fields of a side.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FreeJson {
    pub acquisitions_in_window: u64,
    pub barging: u64,
    pub wait_ns: Summary,
    pub runs: Summary,
}

impl From<&ContenderStats> for ContenderStatsJson {
    fn from(s: &ContenderStats) -> Self {
        ContenderStatsJson {
            contender: s.contender,
            role: s.role,
            cpu: s.cpu,
            rounds: s.rounds,
            whoops: s.whoops,
            overlaps: s.overlaps,
            wrong_reads: s.wrong_reads,
            end: s.end,
            wall_ns: s.wall_ns,
            rounds_per_sec: s.rounds_per_sec(),
            handoff_ns: Summary::of(&s.handoff),
            round_trip_ns: Summary::of(&s.round_trip),
            whoops_per_round: Summary::of(&s.whoops_per_round),
            rusage: s.rusage,
            cpu_ns_per_round: if s.rounds == 0 {
                0.0
            } else {
                s.rusage.cpu_ns() as f64 / s.rounds as f64
            },
            free: s.free.as_ref().map(|f| FreeJson {
                acquisitions_in_window: f.acquisitions_in_window,
                barging: f.barging,
                wait_ns: Summary::of(&f.wait),
                runs: Summary::of(&f.runs),
            }),
            held_ns: s.held_ns,
            hold_ns: s.hold_ns,
            think_ns: s.think_ns,
            nice: s.nice,
        }
    }
}
