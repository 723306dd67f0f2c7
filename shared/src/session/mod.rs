//! One contender's side of a session: pin, start the watchdog, open the variant, take turns.

mod turns;
pub mod watchdog;

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use thiserror::Error;

pub use turns::TurnsPlan;
use watchdog::{AbortHandle, AbortReason, Watch, Watchdog, WatchdogSpec};

use crate::arena::{Arena, ArenaError};
use crate::measure::SideStats;
use crate::sys::clock::monotonic_ns;
use crate::variant::{Ctx, Mode, SetupError, Variant};

/// What one contender runs.
#[derive(Clone, Debug)]
pub struct SideSpec {
    pub variant: Variant,
    pub mode: Mode,
    pub plan: TurnsPlan,
    /// The peer to watch for death (the client watches the server and vice versa).
    pub peer_pid: Option<i32>,
    /// Extra time past `max_ns` before the watchdog declares the peer stuck.
    pub grace_ns: u64,
}

/// Why a side did not finish.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Aborted(#[from] AbortReason),
    #[error(transparent)]
    Arena(#[from] ArenaError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("the other contenders did not reach the start line within {0} ms")]
    StartTimeout(u64),
    #[error("cannot {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
}

/// Runs one contender's side on the calling thread, which it pins as `spec.plan.cpu` says (or
/// frees to every allowed CPU). Blocks until the side finishes, the run stops, or the watchdog
/// aborts it; never longer than start timeout + `max_ns` + grace.
pub fn run_side(
    spec: &SideSpec,
    arena: &Arena,
    fds: Vec<OwnedFd>,
    watch: Option<Watch>,
    handle: AbortHandle,
) -> Result<SideStats, SessionError> {
    crate::placement::pin_current_thread(spec.plan.cpu).map_err(|errno| SessionError::Sys {
        what: "pin the session thread",
        errno,
    })?;
    let budget = spec.plan.start_timeout_ns + spec.plan.max_ns + spec.grace_ns;
    let dog = Watchdog::start(WatchdogSpec {
        peer_pid: spec.peer_pid,
        deadline_ns: monotonic_ns().saturating_add(budget),
        watch,
        handle,
    })
    .map_err(|errno| SessionError::Sys {
        what: "start the watchdog",
        errno,
    })?;
    let ctx = Ctx {
        arena,
        contender: spec.plan.contender,
        contenders: spec.plan.contenders,
        mode: spec.mode,
    };
    let mut opened = spec.variant.open(&ctx, fds)?;
    turns::run_turns(
        arena.header(),
        opened.handoff.as_mut(),
        opened.turn.as_mut(),
        &spec.plan,
        &dog,
    )
}

/// Calls `f` until it stops failing with `EINTR`, unless the watchdog says to give up.
pub(crate) fn retry<T>(
    dog: &Watchdog,
    what: &'static str,
    mut f: impl FnMut() -> Result<T, Errno>,
) -> Result<T, SessionError> {
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(Errno::EINTR) => dog.check()?,
            Err(errno) => return Err(SessionError::Sys { what, errno }),
        }
    }
}
