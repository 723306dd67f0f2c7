//! One session against a running server: the client creates and seals the arena, sends it with
//! the hello, plays contender 1 (the first reader) while the server plays contender 0 (the
//! writer), starts contenders 2.. as child processes when asked for more, then collects everyone
//! into the result model ([`RunReport`], in [`crate::outcome`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::contender::{ContenderError, ContenderProcess};
use super::kernel::Tracing;
use super::unequal::{Unequal, UnequalError};
use crate::arena::{Arena, ArenaError, StopReason};
use crate::channel::{ChannelError, ClientChannel};
use crate::measure::ContenderStats;
use crate::outcome::RunReport;
use crate::outcome::sweep::OwnCost;
use crate::placement::{Placement, PlacementError, allowed_cpus, pin_current_thread};
use crate::proto::{Hello, Message};
use crate::session::watchdog::{AbortHandle, AbortReason, Watch, WatchVerdict};
use crate::session::{ContenderSpec, Plan, SessionError, run_contender};
use crate::sys::idle::IdleHold;
use crate::variant::{Mode, Setup, SetupError, Variant};

/// How long to wait for the server's `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the start line waits for the others.
const START_TIMEOUT_NS: u64 = 5_000_000_000;
/// How far past `--max-seconds` a side may run before its watchdog declares the peer stuck.
const GRACE_NS: u64 = 5_000_000_000;

/// How every session runs, apart from its variant and placement: the same for `run` and each
/// cell of `compare` (the CLI's flattened `Shape`, plus the length).
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Contenders in all: the server, this client, and child processes for the rest.
    pub contenders: usize,
    pub mode: Mode,
    /// `spin-futex`'s spin bound (0: the default).
    pub spin: u32,
    /// `poll-lock`'s mean sleep between two tries.
    pub poll_sleep: std::time::Duration,
    /// Turns (`turns` mode) or acquisitions (`free` mode) per contender.
    pub rounds: u64,
    /// Stop after this long even if rounds remain.
    pub max_seconds: f64,
    /// Per-contender busy work and nice value (`--hold`, `--think`, `--nice`).
    pub unequal: Unequal,
}

impl Shape {
    /// Two contenders, `turns` mode, the default spin.
    pub fn new(rounds: u64, max_seconds: f64) -> Self {
        Shape {
            contenders: 2,
            mode: Mode::Turns,
            spin: 0,
            poll_sleep: crate::variant::DEFAULT_POLL_SLEEP,
            rounds,
            max_seconds,
            unequal: Unequal::default(),
        }
    }

    /// The time limit in ns (at least 1 ms).
    fn max_ns(&self) -> u64 {
        (self.max_seconds.max(0.001) * 1e9) as u64
    }
}

/// One session's parameters.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub socket: PathBuf,
    pub variant: Variant,
    pub placement: Placement,
    pub shape: Shape,
    /// The executable started as `contender` for contenders 2.. (`None`: this one).
    pub helper: Option<PathBuf>,
    /// Record the kernel's account of the run (`--kernel-trace`).
    pub kernel_trace: bool,
    /// Hold every CPU out of idle for the run (`--hold-idle`).
    pub hold_idle: bool,
}

/// Holds the CPUs out of idle if asked (`--hold-idle`), for as long as the result lives.
pub(super) fn hold_idle(asked: bool) -> Result<Option<IdleHold>, HoldIdleError> {
    asked
        .then(IdleHold::acquire)
        .transpose()
        .map_err(HoldIdleError)
}

/// `--hold-idle` could not be honoured.
#[derive(Debug, Error)]
#[error("--hold-idle: cannot hold the CPUs out of idle through {path}: {0}; it needs root", path = crate::sys::idle::CPU_DMA_LATENCY)]
pub struct HoldIdleError(#[source] io::Error);

impl RunOptions {
    /// This executable as the helper for contenders 2...
    pub fn new(socket: PathBuf, variant: Variant, placement: Placement, shape: Shape) -> Self {
        RunOptions {
            socket,
            variant,
            placement,
            shape,
            helper: None,
            kernel_trace: false,
            hold_idle: false,
        }
    }

    /// The executable to start as contenders 2...
    fn helper(&self) -> Result<PathBuf, RunError> {
        match &self.helper {
            Some(path) => Ok(path.clone()),
            None => std::env::current_exe().map_err(RunError::NoHelper),
        }
    }
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
    #[error("cannot find this executable, which contenders 2.. run as")]
    NoHelper(#[source] io::Error),
    #[error(transparent)]
    HoldIdle(#[from] HoldIdleError),
    #[error(transparent)]
    Unequal(#[from] UnequalError),
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
    run_looking(opts, false).map(|(report, _)| report)
}

/// [`run`], and what lockfair itself cost meanwhile (`compare`'s sweep): the client's, the
/// server's and the helpers' memory and descriptors, looked at once everyone is ready and again
/// when our side is done, the larger of each kept.
pub fn run_with_cost(opts: &RunOptions) -> Result<(RunReport, OwnCost), RunError> {
    run_looking(opts, true).map(|(report, cost)| (report, cost.unwrap_or_default()))
}

fn run_looking(opts: &RunOptions, look: bool) -> Result<(RunReport, Option<OwnCost>), RunError> {
    let _held = hold_idle(opts.hold_idle)?;
    let shape = &opts.shape;
    let mut tracing = opts
        .kernel_trace
        .then(|| Tracing::prepare(opts.variant, shape.mode, shape.rounds, shape.contenders));
    let mut session = Session::prepare(opts)?;
    let mut channel = ClientChannel::connect(&opts.socket)?;
    let server_pid = session.admit(&mut channel)?;
    let mut others = session.start_helpers()?;
    let mut peer_pids: Vec<i32> = server_pid.into_iter().collect();
    peer_pids.extend(others.iter().map(ContenderProcess::pid));
    if let Some(t) = tracing.as_mut() {
        // Our side runs on this thread.
        t.arm(&session.arena, 1, nix::unistd::gettid().as_raw());
    }
    let helper_pids: Vec<i32> = others.iter().map(ContenderProcess::pid).collect();
    let look_now = || look.then(|| OwnCost::look(server_pid, &helper_pids));
    let ready = look_now();
    let mine = session.run_own_contender(peer_pids, &channel);
    let cost = OwnCost::peak(ready, look_now());
    let collected = collect(mine, &mut channel, &mut others);
    let kernel = tracing.map(Tracing::finish);
    let (server, client, others) = collected?;
    let order = (opts.shape.mode == Mode::Free)
        .then(|| crate::order::from_arena(&session.arena, opts.shape.contenders))
        .flatten();
    let report = RunReport {
        variant: opts.variant,
        mode: opts.shape.mode,
        placement: opts.placement,
        rounds: opts.shape.rounds,
        max_seconds: opts.shape.max_seconds,
        server,
        client,
        others,
        kernel,
        order,
    };
    Ok((report, cost))
}

/// A session set up on this side: the arena, each contender's descriptors and CPU.
struct Session<'o> {
    opts: &'o RunOptions,
    arena: Arena,
    /// Each contender's own descriptors, taken as they are handed out.
    fds: Vec<Vec<OwnedFd>>,
    cpus: Vec<Option<usize>>,
    max_ns: u64,
}

impl<'o> Session<'o> {
    /// Checks that the variant and placement fit, then creates the arena and the channels.
    fn prepare(opts: &'o RunOptions) -> Result<Self, RunError> {
        let (n, mode) = (opts.shape.contenders, opts.shape.mode);
        opts.shape
            .unequal
            .check(n, nix::unistd::geteuid().is_root())?;
        opts.variant.supports(mode, n)?;
        let cpus =
            opts.placement
                .assign(allowed_cpus(), n)
                .map_err(|source| RunError::Placement {
                    placement: opts.placement,
                    source,
                })?;
        let arena = Arena::create(n as u32)?;
        let setup = Setup {
            poll_sleep: opts.shape.poll_sleep,
            ..Setup::new(mode, n)
        };
        opts.variant.prepare_with(&arena, &setup)?;
        let handoff_fds = opts.variant.create_handoff_fds(n, mode)?;
        let fds = (0..n)
            .map(|c| handoff_fds.fds_for(opts.variant, mode, c, n))
            .collect::<Result<_, _>>()?;
        // Only the contenders' own copies may remain: a pipe must see EOF when its peer is gone.
        drop(handoff_fds);
        Ok(Session {
            opts,
            arena,
            fds,
            cpus,
            max_ns: opts.shape.max_ns(),
        })
    }

    /// Contender `c`'s hello.
    fn hello(&self, c: usize) -> Hello {
        let (opts, shape) = (self.opts, &self.opts.shape);
        Hello {
            variant: opts.variant,
            mode: shape.mode,
            placement: opts.placement,
            contenders: shape.contenders as u16,
            contender: c as u16,
            rounds: shape.rounds,
            max_ms: self.max_ns.div_ceil(1_000_000),
            cpu: self.cpus[c].map(|c| c as u16),
            spin: shape.spin,
            hold_ns: shape.unequal.hold_ns(c),
            think_ns: shape.unequal.think_ns(c),
            nice: shape.unequal.nice(c).map(|n| n as i8),
        }
    }

    /// Sends the server its hello with the arena and its descriptors, and waits for `ready`.
    /// Returns the server's pid, when the kernel told it.
    fn admit(&mut self, channel: &mut ClientChannel) -> Result<Option<i32>, RunError> {
        let server_fds = std::mem::take(&mut self.fds[0]);
        let mut attached: Vec<BorrowedFd<'_>> = vec![self.arena.file().as_fd()];
        attached.extend(server_fds.iter().map(|f| f.as_fd()));
        channel.send(&Message::Hello(self.hello(0)), &attached)?;
        drop(attached);
        drop(server_fds);
        let ready = channel.recv(READY_TIMEOUT)?;
        match ready.message {
            Message::Ready(_) => Ok(ready.credentials.map(|c| c.pid)),
            Message::Error(why) => Err(RunError::Refused(why)),
            Message::Result(_) => Err(RunError::Unexpected("a result", "ready")),
            Message::Hello(_) => Err(RunError::Unexpected("a hello", "ready")),
        }
    }

    /// Starts contenders 2.. as child processes. On failure, releases the server and the helpers
    /// already started from the start line, where they wait.
    fn start_helpers(&mut self) -> Result<Vec<ContenderProcess>, RunError> {
        let mut others = Vec::with_capacity(self.opts.shape.contenders.saturating_sub(2));
        match self.spawn_helpers(&mut others) {
            Ok(()) => Ok(others),
            Err(e) => {
                self.arena.header().request_stop(StopReason::Aborted);
                Err(e)
            }
        }
    }

    fn spawn_helpers(&mut self, others: &mut Vec<ContenderProcess>) -> Result<(), RunError> {
        let n = self.opts.shape.contenders;
        if n <= 2 {
            return Ok(());
        }
        let helper = self.opts.helper()?;
        for c in 2..n {
            let own = std::mem::take(&mut self.fds[c]);
            let hello = self.hello(c);
            let arena = self.arena.file().as_fd();
            others.push(ContenderProcess::start(&helper, &hello, arena, own)?);
        }
        Ok(())
    }

    /// Plays contender 1 until its rounds or its time are up, watching the server and the
    /// helpers (`peer_pids`) and the server's error reports.
    fn run_own_contender(
        &mut self,
        peer_pids: Vec<i32>,
        channel: &ClientChannel,
    ) -> Result<ContenderStats, RunError> {
        let shape = &self.opts.shape;
        let spec = ContenderSpec {
            variant: self.opts.variant,
            mode: shape.mode,
            spin: shape.spin,
            plan: Plan {
                contender: 1,
                contenders: shape.contenders,
                rounds: shape.rounds,
                max_ns: self.max_ns,
                start_timeout_ns: START_TIMEOUT_NS,
                cpu: self.cpus[1],
                hold_ns: shape.unequal.hold_ns(1),
                think_ns: shape.unequal.think_ns(1),
            },
            peer_pids,
            grace_ns: GRACE_NS,
            nice: shape.unequal.nice(1),
        };
        let handle = AbortHandle::new().map_err(|errno| RunError::Sys {
            what: "create an abort handle",
            errno,
        })?;
        let own = std::mem::take(&mut self.fds[1]);
        let mine = run_contender(&spec, &self.arena, own, Some(error_watch(channel)?), handle);
        let _ = pin_current_thread(None);
        Ok(mine?)
    }
}

/// Everyone's results: the server's (contender 0), ours (1), the helpers' (2..). Everyone reports
/// when their side ends, which is about when ours did. If ours failed, only look for explanations
/// already on their way: the others may be gone.
fn collect(
    mine: Result<ContenderStats, RunError>,
    channel: &mut ClientChannel,
    others: &mut Vec<ContenderProcess>,
) -> Result<(ContenderStats, ContenderStats, Vec<ContenderStats>), RunError> {
    let patience = if mine.is_ok() {
        Duration::from_nanos(GRACE_NS) + READY_TIMEOUT
    } else {
        Duration::from_millis(300)
    };
    let theirs = await_result(channel, patience);
    let helpers: Vec<Result<ContenderStats, ContenderError>> =
        others.iter_mut().map(|o| o.result(patience)).collect();
    others.clear();
    let (client, server) = match (mine, theirs) {
        (Ok(client), Ok(server)) => (client, server),
        // The server's own words explain more than our view of the aftermath.
        (_, Err(RunError::ServerFailed(why))) => return Err(RunError::ServerFailed(why)),
        (Err(e), _) => return Err(e),
        (Ok(_), Err(e)) => return Err(e),
    };
    let others = helpers.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((server, client, others))
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

fn await_result(
    channel: &mut ClientChannel,
    timeout: Duration,
) -> Result<ContenderStats, RunError> {
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
