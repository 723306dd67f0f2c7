//! One session's results: every contender's [`ContenderStats`], and the `run --json` shape.

use serde::{Deserialize, Serialize};

use super::kernel::{KernelFigures, KernelTrace};
use super::opportunity::Opportunity;
use crate::measure::{ContenderStats, ContenderStatsJson, Summary};
use crate::order::OrderStats;
use crate::placement::Placement;
use crate::variant::{Mode, Variant};

/// Every contender's results.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    /// Rounds asked for.
    pub rounds: u64,
    /// The time limit it ran under (`--max-seconds`).
    pub max_seconds: f64,
    /// Contender 0.
    pub server: ContenderStats,
    /// Contender 1.
    pub client: ContenderStats,
    /// Contenders 2.., in order.
    pub others: Vec<ContenderStats>,
    /// `--kernel-trace`: the kernel's account of the run, or why there is none.
    pub kernel: Option<KernelTrace>,
    /// `free` mode: who got the lock in what order (bypass, LWSS, MTTR), from the arena's grant
    /// log.
    pub order: Option<OrderStats>,
}

/// `run --json`. Field names are an interface: keep them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunJson {
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    pub rounds: u64,
    /// The time limit the run had (`--max-seconds`): with fewer rounds done than `rounds`, the
    /// run stopped there (`end` says which side hit it). Absent in reports written before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_seconds: Option<f64>,
    pub server: ContenderStatsJson,
    pub client: ContenderStatsJson,
    /// How many contenders took part.
    pub contender_count: usize,
    /// Jain's fairness index, (Σx)² / (N·Σx²), in [1/N, 1]: over acquisitions in the common
    /// window (`free`) or turns taken (`turns`). `null` when the window was empty (the
    /// contenders never raced: raise `--rounds`).
    pub jain_index: Option<f64>,
    /// `free`: acquisitions by the previous holder while someone else waited, per acquisition.
    /// `turns`: lock grants that went to a contender whose turn it was not (whoops), per grant.
    pub barging_rate: f64,
    /// The longest any contender waited for the lock (`free`) or its turn (`turns`).
    pub max_wait_ns: u64,
    /// One record per contender.
    pub contenders: Vec<ContenderJson>,
    /// `--kernel-trace`: the kernel's counts (absent without the flag, or when the trace could
    /// not be taken: then `kernel_note` says why).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kernel: Option<KernelFigures>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kernel_note: Option<String>,
    /// `free` only: the order of the grants (see [`OrderStats`]): bypass (about the lock),
    /// LWSS, MTTR and how many contenders were waiting at a grant (also the scheduler).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order: Option<OrderStats>,
    /// Jain's index over the contenders' lock opportunity (hold + idle time, see
    /// docs/measures.md), over the common window (`free`) or the whole run (`turns`); `null`
    /// when that span is empty. Absent in reports written before it.
    #[serde(default)]
    pub opportunity_jain: Option<f64>,
    /// The share of that span nobody held the lock.
    #[serde(default)]
    pub idle_share: Option<f64>,
    /// The span lock opportunity is measured over.
    #[serde(default)]
    pub opportunity_span_ns: Option<u64>,
}

/// One contender in `run --json`'s `contenders` list.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContenderJson {
    pub contender: u16,
    pub cpu: Option<u16>,
    /// Acquisitions (`free`) or turns (`turns`).
    pub acquisitions: u64,
    pub whoops: u64,
    pub overlaps: u64,
    pub wrong_reads: u64,
    /// Acquisitions in the common window (`free` only, else equal to `acquisitions`).
    pub acquisitions_in_window: u64,
    /// `free` only: acquisitions right after its own release while others waited.
    pub barging: u64,
    /// Waiting for the lock (`free`) or the turn (`turns`).
    pub wait_ns: Summary,
    /// `free` only: runs of consecutive acquisitions.
    pub runs: Summary,
    /// Time it held the lock (or its turn), summed.
    #[serde(default)]
    pub held_ns: u64,
    /// Share of the span (see `opportunity_span_ns`) it held the lock.
    #[serde(default)]
    pub hold_share: Option<f64>,
    /// Lock opportunity: (its hold time + the lock's idle time) / span.
    #[serde(default)]
    pub opportunity: Option<f64>,
    /// Its share of the CPU time all contenders used (thread CPU clock).
    #[serde(default)]
    pub cpu_share: Option<f64>,
    /// The busy work asked inside each critical section (`--hold`) and between two (`--think`).
    #[serde(default)]
    pub hold_ns: u64,
    #[serde(default)]
    pub think_ns: u64,
    /// Its nice value during the run, read back with getpriority.
    #[serde(default)]
    pub nice: i32,
}

impl RunReport {
    /// Every contender, in order.
    pub fn contenders(&self) -> impl Iterator<Item = &ContenderStats> {
        [&self.server, &self.client]
            .into_iter()
            .chain(self.others.iter())
    }

    /// How many contenders took part.
    pub fn contender_count(&self) -> usize {
        2 + self.others.len()
    }

    /// The `--json` shape.
    pub fn to_json(&self) -> RunJson {
        let opportunity = self.opportunity();
        RunJson {
            variant: self.variant,
            mode: self.mode,
            placement: self.placement,
            rounds: self.rounds,
            max_seconds: Some(self.max_seconds),
            server: ContenderStatsJson::from(&self.server),
            client: ContenderStatsJson::from(&self.client),
            contender_count: self.contender_count(),
            jain_index: self.jain_index(),
            barging_rate: self.barging_rate(),
            max_wait_ns: self.max_wait_ns(),
            contenders: self.contender_records(opportunity.as_ref()),
            kernel: self
                .kernel
                .as_ref()
                .and_then(|k| k.run())
                .map(|k| k.figures.clone()),
            kernel_note: self
                .kernel
                .as_ref()
                .and_then(|k| k.note())
                .map(str::to_string),
            order: self.order.clone(),
            opportunity_jain: opportunity.as_ref().map(|o| o.jain),
            idle_share: opportunity.as_ref().map(Opportunity::idle_share),
            opportunity_span_ns: opportunity.as_ref().map(|o| o.span_ns),
        }
    }

    /// One record per contender, with its shares of the lock's time and of the CPU.
    fn contender_records(&self, opportunity: Option<&Opportunity>) -> Vec<ContenderJson> {
        let cpu = self.cpu_shares();
        self.contenders()
            .enumerate()
            .map(|(i, s)| ContenderJson {
                hold_share: opportunity.map(|o| o.hold_share[i]),
                opportunity: opportunity.map(|o| o.opportunity[i]),
                cpu_share: cpu.as_ref().map(|c| c[i]),
                ..ContenderJson::from(s)
            })
            .collect()
    }
}

impl From<&ContenderStats> for ContenderJson {
    fn from(s: &ContenderStats) -> Self {
        ContenderJson {
            contender: s.contender,
            cpu: s.cpu,
            acquisitions: s.acquisitions(),
            whoops: s.whoops,
            overlaps: s.overlaps,
            wrong_reads: s.wrong_reads,
            acquisitions_in_window: s
                .free
                .as_ref()
                .map_or(s.rounds, |f| f.acquisitions_in_window),
            barging: s.free.as_ref().map_or(0, |f| f.barging),
            wait_ns: Summary::of(s.wait()),
            runs: s
                .free
                .as_ref()
                .map(|f| Summary::of(&f.runs))
                .unwrap_or_default(),
            held_ns: s.held_ns,
            hold_share: None,
            opportunity: None,
            cpu_share: None,
            hold_ns: s.hold_ns,
            think_ns: s.think_ns,
            nice: s.nice,
        }
    }
}
