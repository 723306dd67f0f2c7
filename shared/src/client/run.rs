//! One session against a running server: the client creates and seals the arena, sends it with
//! the hello, plays the reader while the server plays the writer, then collects both sides.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::arena::{Arena, ArenaError};
use crate::channel::{ChannelError, ClientChannel};
use crate::measure::{SideJson, SideStats};
use crate::placement::{Placement, PlacementError, allowed_cpus, pin_current_thread};
use crate::proto::{Hello, Message};
use crate::report::{Table, fmt_ns};
use crate::session::watchdog::{AbortHandle, AbortReason, Watch, WatchVerdict};
use crate::session::{SessionError, SideSpec, TurnsPlan, run_side};
use crate::variant::{Mode, SetupError, Variant, prepare_seed_offset};

/// How long to wait for the server's `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the start line waits for the other side.
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
    pub rounds: u64,
    pub max_seconds: f64,
}

/// Both sides' results.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    /// Rounds asked for.
    pub rounds: u64,
    pub server: SideStats,
    pub client: SideStats,
}

/// `run --json`. Field names are an interface: keep them.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RunJson {
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    pub rounds: u64,
    pub server: SideJson,
    pub client: SideJson,
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
    let contenders = 2;
    let cpus = opts
        .placement
        .assign(allowed_cpus(), contenders)
        .map_err(|source| RunError::Placement {
            placement: opts.placement,
            source,
        })?;
    let arena = Arena::create(contenders as u32)?;
    if opts.variant.shares_description() {
        prepare_seed_offset(&arena).map_err(|errno| RunError::Sys {
            what: "seek the seed's offset",
            errno,
        })?;
    }
    let channels = opts.variant.create_channels(contenders)?;
    let server_fds = channels.fds_for(opts.variant, 0, contenders)?;
    let my_fds = channels.fds_for(opts.variant, 1, contenders)?;
    drop(channels);

    let mut channel = ClientChannel::connect(&opts.socket)?;
    let max_ns = (opts.max_seconds.max(0.001) * 1e9) as u64;
    let hello = Hello {
        variant: opts.variant,
        mode: opts.mode,
        placement: opts.placement,
        contenders: contenders as u16,
        contender: 0,
        rounds: opts.rounds,
        max_ms: max_ns.div_ceil(1_000_000),
        cpu: cpus[0].map(|c| c as u16),
    };
    let mut attached: Vec<BorrowedFd<'_>> = vec![arena.file().as_fd()];
    attached.extend(server_fds.iter().map(|f| f.as_fd()));
    channel.send(&Message::Hello(hello), &attached)?;
    drop(attached);
    // The server has its copies now; ours must close, or a pipe would never see EOF.
    drop(server_fds);

    let ready = channel.recv(READY_TIMEOUT)?;
    let server_pid = match ready.message {
        Message::Ready(_) => ready.credentials.map(|c| c.pid),
        Message::Error(why) => return Err(RunError::Refused(why)),
        Message::Result(_) => return Err(RunError::Unexpected("a result", "ready")),
        Message::Hello(_) => return Err(RunError::Unexpected("a hello", "ready")),
    };

    let spec = SideSpec {
        variant: opts.variant,
        mode: opts.mode,
        plan: TurnsPlan {
            contender: 1,
            contenders,
            rounds: opts.rounds,
            max_ns,
            start_timeout_ns: START_TIMEOUT_NS,
            cpu: cpus[1],
        },
        peer_pid: server_pid,
        grace_ns: GRACE_NS,
    };
    let mine = run_side(
        &spec,
        &arena,
        my_fds,
        Some(error_watch(&channel)?),
        AbortHandle::new().map_err(|errno| RunError::Sys {
            what: "create an abort handle",
            errno,
        })?,
    );
    let _ = pin_current_thread(None);

    // The server reports when its side ends, which is about when ours did. If ours failed, only
    // look for an explanation already on its way: the server may be gone.
    let patience = if mine.is_ok() {
        Duration::from_nanos(GRACE_NS) + READY_TIMEOUT
    } else {
        Duration::from_millis(300)
    };
    let theirs = await_result(&mut channel, patience);
    match (mine, theirs) {
        (Ok(client), Ok(server)) => Ok(RunReport {
            variant: opts.variant,
            mode: opts.mode,
            placement: opts.placement,
            rounds: opts.rounds,
            server,
            client,
        }),
        // The server's own words explain more than our view of the aftermath.
        (_, Err(RunError::ServerFailed(why))) => Err(RunError::ServerFailed(why)),
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(e)) => Err(e),
    }
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

impl RunReport {
    /// The `--json` shape.
    pub fn to_json(&self) -> RunJson {
        RunJson {
            variant: self.variant,
            mode: self.mode,
            placement: self.placement,
            rounds: self.rounds,
            server: SideJson::from(&self.server),
            client: SideJson::from(&self.client),
        }
    }

    /// The terminal table: one row per side.
    pub fn to_text(&self) -> String {
        let mut t = side_table();
        t.push(side_row("server", &self.server));
        t.push(side_row("client", &self.client));
        format!(
            "variant {}, placement {}, {} rounds asked\n\n{}",
            self.variant,
            self.placement,
            self.rounds,
            t.to_text()
        )
    }
}

/// The per-side table's header.
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
