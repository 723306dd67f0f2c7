//! One session against a running server: the client creates and seals the arena, sends it with
//! the hello, plays contender 1 (the first reader) while the server plays contender 0 (the
//! writer), starts contenders 2.. as child processes when asked for more, then collects everyone.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::contender::{ContenderError, ContenderProcess};
use crate::arena::{Arena, ArenaError};
use crate::channel::{ChannelError, ClientChannel};
use crate::measure::{SideJson, SideStats, Summary, new_histogram};
use crate::placement::{Placement, PlacementError, allowed_cpus, pin_current_thread};
use crate::proto::{Hello, Message};
use crate::report::{Table, fmt_ns};
use crate::session::watchdog::{AbortHandle, AbortReason, Watch, WatchVerdict};
use crate::session::{Plan, SessionError, SideSpec, run_side};
use crate::variant::{Mode, SetupError, Variant};

/// How long to wait for the server's `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the start line waits for the others.
const START_TIMEOUT_NS: u64 = 5_000_000_000;
/// How far past `--max-seconds` a side may run before its watchdog declares the peer stuck.
const GRACE_NS: u64 = 5_000_000_000;

/// One session's parameters.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub socket: PathBuf,
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    /// Turns (`turns` mode) or acquisitions (`free` mode) per contender.
    pub rounds: u64,
    pub max_seconds: f64,
    /// Contenders in all: the server, this client, and child processes for the rest.
    pub contenders: usize,
    /// `spin-futex`'s spin bound (0: the default).
    pub spin: u32,
    /// The executable started as `contender` for contenders 2.. (normally this one).
    pub helper: PathBuf,
}

impl RunOptions {
    /// Two contenders, `turns` mode, default spin, this executable as helper.
    pub fn new(
        socket: PathBuf,
        variant: Variant,
        placement: Placement,
        rounds: u64,
        max_seconds: f64,
    ) -> Self {
        RunOptions {
            socket,
            variant,
            mode: Mode::Turns,
            placement,
            rounds,
            max_seconds,
            contenders: 2,
            spin: 0,
            helper: std::env::current_exe().unwrap_or_default(),
        }
    }
}

/// Every contender's results.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    /// Rounds asked for.
    pub rounds: u64,
    /// Contender 0.
    pub server: SideStats,
    /// Contender 1.
    pub client: SideStats,
    /// Contenders 2.., in order.
    pub others: Vec<SideStats>,
}

/// `run --json`. Field names are an interface: keep them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunJson {
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    pub rounds: u64,
    pub server: SideJson,
    pub client: SideJson,
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
}

/// Why a run did not produce a report.
#[derive(Debug, Error)]
pub enum RunError {
    #[error("placement {placement} is not possible here")]
    Placement {
        placement: Placement,
        source: PlacementError,
    },
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Arena(#[from] ArenaError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Contender(#[from] ContenderError),
    #[error("the server refused the session: {0}")]
    Refused(String),
    #[error("the server's side failed: {0}")]
    ServerFailed(String),
    #[error("the server sent {0} where a {1} was expected")]
    Unexpected(&'static str, &'static str),
    #[error("the client's side failed")]
    Session(#[from] SessionError),
    #[error("cannot {what}: {errno}")]
    Sys {
        what: &'static str,
        errno: nix::errno::Errno,
    },
}

/// Runs one session against the server at `opts.socket`.
pub fn run(opts: &RunOptions) -> Result<RunReport, RunError> {
    let n = opts.contenders;
    opts.variant.supports(opts.mode, n)?;
    let cpus = opts
        .placement
        .assign(allowed_cpus(), n)
        .map_err(|source| RunError::Placement {
            placement: opts.placement,
            source,
        })?;
    let arena = Arena::create(n as u32)?;
    opts.variant.prepare(&arena, opts.mode, n)?;
    let channels = opts.variant.create_handoff_fds(n, opts.mode)?;
    let mut fds: Vec<Vec<OwnedFd>> = (0..n)
        .map(|c| channels.fds_for(opts.variant, opts.mode, c, n))
        .collect::<Result<_, _>>()?;
    // Only the contenders' own copies may remain: a pipe must see EOF when its peer is gone.
    drop(channels);

    let max_ns = (opts.max_seconds.max(0.001) * 1e9) as u64;
    let hello = |c: usize| Hello {
        variant: opts.variant,
        mode: opts.mode,
        placement: opts.placement,
        contenders: n as u16,
        contender: c as u16,
        rounds: opts.rounds,
        max_ms: max_ns.div_ceil(1_000_000),
        cpu: cpus[c].map(|c| c as u16),
        spin: opts.spin,
    };
    let mut channel = ClientChannel::connect(&opts.socket)?;
    let server_fds = std::mem::take(&mut fds[0]);
    let mut attached: Vec<BorrowedFd<'_>> = vec![arena.file().as_fd()];
    attached.extend(server_fds.iter().map(|f| f.as_fd()));
    channel.send(&Message::Hello(hello(0)), &attached)?;
    drop(attached);
    drop(server_fds);

    let ready = channel.recv(READY_TIMEOUT)?;
    let server_pid = match ready.message {
        Message::Ready(_) => ready.credentials.map(|c| c.pid),
        Message::Error(why) => return Err(RunError::Refused(why)),
        Message::Result(_) => return Err(RunError::Unexpected("a result", "ready")),
        Message::Hello(_) => return Err(RunError::Unexpected("a hello", "ready")),
    };

    let mut others = Vec::with_capacity(n.saturating_sub(2));
    for (c, own) in fds.iter_mut().enumerate().skip(2) {
        match ContenderProcess::start(
            &opts.helper,
            &hello(c),
            arena.file().as_fd(),
            std::mem::take(own),
        ) {
            Ok(helper) => others.push(helper),
            Err(e) => {
                // The server and the helpers already started wait at the start line: release them.
                arena
                    .header()
                    .request_stop(crate::arena::StopReason::Aborted);
                return Err(e.into());
            }
        }
    }
    let mut peer_pids: Vec<i32> = server_pid.into_iter().collect();
    peer_pids.extend(others.iter().map(ContenderProcess::pid));

    let spec = SideSpec {
        variant: opts.variant,
        mode: opts.mode,
        spin: opts.spin,
        plan: Plan {
            contender: 1,
            contenders: n,
            rounds: opts.rounds,
            max_ns,
            start_timeout_ns: START_TIMEOUT_NS,
            cpu: cpus[1],
        },
        peer_pids,
        grace_ns: GRACE_NS,
    };
    let handle = AbortHandle::new().map_err(|errno| RunError::Sys {
        what: "create an abort handle",
        errno,
    })?;
    let mine = run_side(
        &spec,
        &arena,
        std::mem::take(&mut fds[1]),
        Some(error_watch(&channel)?),
        handle,
    );
    let _ = pin_current_thread(None);

    // Everyone reports when their side ends, which is about when ours did. If ours failed, only
    // look for explanations already on their way: the others may be gone.
    let patience = if mine.is_ok() {
        Duration::from_nanos(GRACE_NS) + READY_TIMEOUT
    } else {
        Duration::from_millis(300)
    };
    let theirs = await_result(&mut channel, patience);
    let helpers: Vec<Result<SideStats, ContenderError>> =
        others.iter_mut().map(|o| o.result(patience)).collect();
    drop(others);
    let (client, server) = match (mine, theirs) {
        (Ok(client), Ok(server)) => (client, server),
        // The server's own words explain more than our view of the aftermath.
        (_, Err(RunError::ServerFailed(why))) => return Err(RunError::ServerFailed(why)),
        (Err(e), _) => return Err(e.into()),
        (Ok(_), Err(e)) => return Err(e),
    };
    let others = helpers.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(RunReport {
        variant: opts.variant,
        mode: opts.mode,
        placement: opts.placement,
        rounds: opts.rounds,
        server,
        client,
        others,
    })
}

/// Lets the watchdog abort our side as soon as the server reports an error mid-run.
fn error_watch(channel: &ClientChannel) -> Result<Watch, RunError> {
    let peek_fd = channel.dup_socket()?;
    Ok(Watch {
        fd: channel.dup_socket()?,
        judge: Box::new(move || match ClientChannel::peek(&peek_fd) {
            Some(Message::Error(why)) => WatchVerdict::Abort(AbortReason::PeerFailed(why)),
            _ => WatchVerdict::Ignore,
        }),
    })
}

fn await_result(channel: &mut ClientChannel, timeout: Duration) -> Result<SideStats, RunError> {
    loop {
        let incoming = channel.recv(timeout)?;
        match incoming.message {
            Message::Result(stats) => return Ok(*stats),
            Message::Error(why) => return Err(RunError::ServerFailed(why)),
            // A second `ready` cannot happen on a connected socket; skip anything else odd.
            Message::Ready(_) | Message::Hello(_) => continue,
        }
    }
}

/// Jain's fairness index of `xs`: 1 when all are equal, 1/N when one has everything.
pub fn jain_index(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let squares: f64 = xs.iter().map(|x| x * x).sum();
    if squares == 0.0 {
        1.0
    } else {
        sum * sum / (xs.len() as f64 * squares)
    }
}

impl RunReport {
    /// Every contender, in order.
    pub fn contenders(&self) -> impl Iterator<Item = &SideStats> {
        [&self.server, &self.client]
            .into_iter()
            .chain(self.others.iter())
    }

    /// Jain's index (see [`RunJson::jain_index`]).
    pub fn jain_index(&self) -> Option<f64> {
        let xs: Vec<f64> = self
            .contenders()
            .map(|s| {
                s.free
                    .as_ref()
                    .map_or(s.rounds, |f| f.acquisitions_in_window) as f64
            })
            .collect();
        (xs.iter().sum::<f64>() > 0.0).then(|| jain_index(&xs))
    }

    /// The barging rate (see [`RunJson::barging_rate`]).
    pub fn barging_rate(&self) -> f64 {
        let (mut barged, mut grants) = (0u64, 0u64);
        for s in self.contenders() {
            // Counts come from other processes: add without trusting them not to overflow.
            match &s.free {
                Some(f) => {
                    barged = barged.saturating_add(f.barging);
                    grants = grants.saturating_add(s.rounds);
                }
                None => {
                    barged = barged.saturating_add(s.whoops);
                    grants = grants.saturating_add(s.whoops.saturating_add(s.rounds));
                }
            }
        }
        if grants == 0 {
            0.0
        } else {
            barged as f64 / grants as f64
        }
    }

    /// The longest wait of any contender.
    pub fn max_wait_ns(&self) -> u64 {
        self.contenders().map(|s| s.wait().max()).max().unwrap_or(0)
    }

    /// Every contender's wait, merged.
    pub fn merged_wait(&self) -> hdrhistogram::Histogram<u64> {
        let mut all = new_histogram();
        for s in self.contenders() {
            let _ = all.add(s.wait());
        }
        all
    }

    /// The `--json` shape.
    pub fn to_json(&self) -> RunJson {
        RunJson {
            variant: self.variant,
            mode: self.mode,
            placement: self.placement,
            rounds: self.rounds,
            server: SideJson::from(&self.server),
            client: SideJson::from(&self.client),
            contender_count: 2 + self.others.len(),
            jain_index: self.jain_index(),
            barging_rate: self.barging_rate(),
            max_wait_ns: self.max_wait_ns(),
            contenders: self
                .contenders()
                .map(|s| ContenderJson {
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
                })
                .collect(),
        }
    }

    /// The terminal table: one row per contender, then the fairness figures.
    pub fn to_text(&self) -> String {
        let mut t = match self.mode {
            Mode::Turns => side_table(),
            Mode::Free => free_table(),
        };
        for s in self.contenders() {
            let name = crate::report::Side(s.contender as usize).name();
            t.push(match self.mode {
                Mode::Turns => side_row(&name, s),
                Mode::Free => free_row(&name, s),
            });
        }
        format!(
            "variant {}, mode {}, placement {}, {} contenders, {} rounds asked\n\n{}\n\
             Jain's fairness index {}, barging rate {:.3}, longest wait {}\n",
            self.variant,
            self.mode,
            self.placement,
            2 + self.others.len(),
            self.rounds,
            t.to_text(),
            self.jain_index().map_or_else(
                || "n/a (the contenders never raced: raise --rounds)".to_string(),
                |j| format!("{j:.3}")
            ),
            self.barging_rate(),
            fmt_ns(self.max_wait_ns() as f64),
        )
    }
}

/// The per-side table's header (`turns` mode).
pub fn side_table() -> Table {
    Table::new(
        &[
            "side",
            "role",
            "cpu",
            "rounds",
            "whoops",
            "whoops/turn",
            "overlaps",
            "wrong reads",
            "handoff p50",
            "handoff p99",
            "handoff max",
            "round trip p50",
            "cpu/turn",
            "end",
        ],
        2,
    )
}

/// One side as a row of [`side_table`].
pub fn side_row(name: &str, s: &SideStats) -> Vec<String> {
    let j = SideJson::from(s);
    vec![
        name.to_string(),
        format!("{:?}", s.role).to_lowercase(),
        s.cpu.map_or("-".into(), |c| c.to_string()),
        s.rounds.to_string(),
        s.whoops.to_string(),
        format!("{:.2}", s.whoops_per_turn()),
        s.overlaps.to_string(),
        s.wrong_reads.to_string(),
        fmt_ns(j.handoff_ns.p50 as f64),
        fmt_ns(j.handoff_ns.p99 as f64),
        fmt_ns(j.handoff_ns.max as f64),
        fmt_ns(j.round_trip_ns.p50 as f64),
        fmt_ns(j.cpu_ns_per_round),
        crate::measure::end_name(s.end).to_string(),
    ]
}

/// The per-contender table's header (`free` mode).
pub fn free_table() -> Table {
    Table::new(
        &[
            "contender",
            "cpu",
            "acquisitions",
            "in window",
            "barging",
            "overlaps",
            "wait p50",
            "wait p99",
            "wait max",
            "longest run",
            "cpu/acq",
            "end",
        ],
        1,
    )
}

/// One contender as a row of [`free_table`].
pub fn free_row(name: &str, s: &SideStats) -> Vec<String> {
    let j = SideJson::from(s);
    let wait = Summary::of(s.wait());
    let (window, barging, longest) = s.free.as_ref().map_or((0, 0, 0), |f| {
        (f.acquisitions_in_window, f.barging, f.runs.max())
    });
    vec![
        name.to_string(),
        s.cpu.map_or("-".into(), |c| c.to_string()),
        s.rounds.to_string(),
        window.to_string(),
        barging.to_string(),
        s.overlaps.to_string(),
        fmt_ns(wait.p50 as f64),
        fmt_ns(wait.p99 as f64),
        fmt_ns(wait.max as f64),
        longest.to_string(),
        fmt_ns(j.cpu_ns_per_round),
        crate::measure::end_name(s.end).to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::jain_index;

    #[test]
    fn jain_index_spans_one_over_n_to_one() {
        assert_eq!(jain_index(&[5.0, 5.0, 5.0, 5.0]), 1.0);
        assert_eq!(jain_index(&[8.0, 0.0, 0.0, 0.0]), 0.25);
        let j = jain_index(&[3.0, 1.0]);
        assert!(j > 0.5 && j < 1.0);
    }
}
