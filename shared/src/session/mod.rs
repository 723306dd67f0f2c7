//! One contender's side of a session: pin, start the watchdog, open the variant, run the loop of
//! its mode.

mod busy;
mod free;
mod nice;
mod start;
mod turns;
pub mod watchdog;

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use thiserror::Error;

use watchdog::{AbortHandle, AbortReason, Watch, Watchdog, WatchdogSpec};

use crate::arena::{Arena, ArenaError};
use crate::measure::ContenderStats;
use crate::variant::{Ctx, Mode, SetupError, Variant};

// The round loops' clock: CLOCK_MONOTONIC itself, or in unit tests a clock the test moves by hand
// (a compile-time swap: the loops call the same inlined vDSO read as before).
#[cfg(not(test))]
use crate::sys::clock::monotonic_ns;
#[cfg(test)]
use tests::clock::monotonic_ns;

/// The longest busy work (`--hold`, `--think`) a side accepts: it is user time no signal
/// interrupts, so a run stops at most this late.
pub const MAX_BUSY_NS: u64 = 1_000_000_000;

/// What one contender is asked to do.
#[derive(Clone, Debug)]
pub struct Plan {
    pub contender: usize,
    pub contenders: usize,
    /// Turns to take (`turns` mode) or acquisitions to make (`free` mode).
    pub rounds: u64,
    /// Stop after this long (from the start line) even if rounds remain.
    pub max_ns: u64,
    /// How long to wait at the start line for the others.
    pub start_timeout_ns: u64,
    /// The CPU this side is pinned to (`None`: free to run anywhere allowed).
    pub cpu: Option<usize>,
    /// Busy work inside each critical section (`--hold`): in `turns` mode, inside each turn.
    pub hold_ns: u64,
    /// Busy work after each release, before asking again (`--think`).
    pub think_ns: u64,
}

/// What one contender runs.
#[derive(Clone, Debug)]
pub struct ContenderSpec {
    pub variant: Variant,
    pub mode: Mode,
    pub plan: Plan,
    /// `spin-futex`'s spin bound (0: the default).
    pub spin: u32,
    /// Processes whose death ends this side (the client watches the server and its helper
    /// contenders; the server watches the client).
    pub peer_pids: Vec<i32>,
    /// Extra time past `max_ns` before the watchdog declares the peer stuck.
    pub grace_ns: u64,
    /// The session thread's nice value for the run (`--nice`; `None`: as it is).
    pub nice: Option<i32>,
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
    #[error("another contender gave up before the start")]
    StoppedBeforeStart,
    #[error("cannot {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error("cannot set nice {0}: a nice value below the current one needs root (CAP_SYS_NICE)")]
    Nice(i32),
}

pub(crate) fn sys(what: &'static str) -> impl FnOnce(Errno) -> SessionError {
    move |errno| SessionError::Sys { what, errno }
}

/// Runs one contender's side on the calling thread, which it pins as `spec.plan.cpu` says (or
/// frees to every allowed CPU). Blocks until the side finishes, the run stops, or the watchdog
/// aborts it; never longer than start timeout + `max_ns` + grace.
pub fn run_contender(
    spec: &ContenderSpec,
    arena: &Arena,
    fds: Vec<OwnedFd>,
    watch: Option<Watch>,
    handle: AbortHandle,
) -> Result<ContenderStats, SessionError> {
    // The watchdog thread inherits our CPU mask: start it unpinned (a pooled thread may carry an
    // earlier session's pin), so its wakeups do not land on the CPU being measured.
    crate::placement::pin_current_thread(None).map_err(sys("unpin the session thread"))?;
    let budget = spec.plan.start_timeout_ns + spec.plan.max_ns + spec.grace_ns;
    let dog = Watchdog::start(WatchdogSpec {
        peer_pids: spec.peer_pids.clone(),
        deadline_ns: monotonic_ns().saturating_add(budget),
        watch,
        handle: handle.clone(),
        stop: Some(arena.stop_watch()),
    })
    .map_err(sys("start the watchdog"))?;
    crate::placement::pin_current_thread(spec.plan.cpu).map_err(sys("pin the session thread"))?;
    // Published before the start line, so a kernel trace can follow this thread from the start.
    let tid = nix::unistd::gettid().as_raw() as u32;
    arena
        .slot(spec.plan.contender)
        .tid
        .store(tid, Ordering::Release);
    open_and_run(spec, arena, fds, &dog, &handle)
}

/// Sets the thread's nice value, opens the variant and runs the loop of the mode.
fn open_and_run(
    spec: &ContenderSpec,
    arena: &Arena,
    fds: Vec<OwnedFd>,
    dog: &Watchdog,
    handle: &AbortHandle,
) -> Result<ContenderStats, SessionError> {
    let ctx = Ctx {
        arena,
        contender: spec.plan.contender,
        contenders: spec.plan.contenders,
        mode: spec.mode,
        spin: spec.spin,
        abort: handle.aborted_fd(),
    };
    let stop_the_others = || {
        // The others are on their way to the start line: tell them not to wait for us.
        arena
            .header()
            .request_stop(crate::arena::StopReason::Aborted);
    };
    let nice = nice::NiceGuard::apply(spec.nice).inspect_err(|_| stop_the_others())?;
    let mut opened = spec
        .variant
        .open(&ctx, fds)
        .inspect_err(|_| stop_the_others())?;
    let stats = match spec.mode {
        Mode::Turns => turns::run_turns(
            arena.header(),
            opened.handoff.as_mut(),
            opened.turn.as_mut(),
            &spec.plan,
            dog,
        ),
        Mode::Free => free::run_free(arena, opened.handoff.as_mut(), &spec.plan, dog),
    }?;
    Ok(ContenderStats {
        hold_ns: spec.plan.hold_ns,
        think_ns: spec.plan.think_ns,
        nice: nice.now,
        ..stats
    })
}

/// How waiting for the mechanism ended.
pub(crate) enum Acquired {
    /// We hold it.
    Held,
    /// The run stopped while we waited (we were interrupted and saw the stop flag); we hold
    /// nothing.
    Stopped,
}

/// Waits for the mechanism until it is ours, unless the watchdog aborts the session or the run
/// stops while we wait (the watchdog interrupts us once the arena's stop word is set).
pub(crate) fn acquire(
    dog: &Watchdog,
    h: &crate::arena::Header,
    handoff: &mut dyn crate::variant::Handoff,
) -> Result<Acquired, SessionError> {
    loop {
        match handoff.acquire() {
            Ok(()) => return Ok(Acquired::Held),
            Err(Errno::EINTR) => {
                dog.check()?;
                if h.stopped().is_some() {
                    return Ok(Acquired::Stopped);
                }
            }
            Err(errno) => {
                return Err(SessionError::Sys {
                    what: "acquire",
                    errno,
                });
            }
        }
    }
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

// Last in the file: the house check reads a module only up to its test module.
#[cfg(test)]
mod tests;
