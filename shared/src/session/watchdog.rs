//! Liveness for blocking waits.
//!
//! A contender asleep in `F_SETLKW`, `FUTEX_WAIT` or an eventfd read cannot see that its peer
//! died, or that the user pressed Ctrl-C. Each session therefore starts a watchdog thread that
//! sleeps in `poll` on the peer's pidfd (readable when the peer exits), on an eventfd for
//! requests from outside (server shutdown), and optionally on a socket where the peer may report
//! an error. When it fires it records why, then sends the session thread
//! [`crate::sys::signal::INTERRUPT`] every few milliseconds until the session ends; the blocking
//! call returns `EINTR` and the round loop sees [`Watchdog::check`] fail.
//!
//! The watchdog is joined before the session thread leaves `run_contender`, so it never signals a
//! thread that no longer exists.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::pthread::Pthread;

use crate::arena::StopWatch;
use crate::sys::clock::monotonic_ns;
use crate::sys::poll::PollSet;
use crate::sys::{pidfd, rawio, signal};

/// Why a session was cut short.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbortReason {
    #[error("the peer process (pid {0}) exited mid-run")]
    PeerDied(i32),
    #[error("the run passed its time limit and the peer stopped making progress")]
    Timeout,
    #[error("interrupted (SIGINT/SIGTERM)")]
    Interrupted,
    #[error("the server is shutting down")]
    Shutdown,
    #[error("the peer reported: {0}")]
    PeerFailed(String),
}

/// What a watched socket's owner makes of a readable socket.
#[derive(Debug)]
pub enum WatchVerdict {
    /// Nothing alarming (for example the peer's normal result): stop watching it.
    Ignore,
    /// Abort the session for this reason.
    Abort(AbortReason),
}

/// A descriptor to watch and the judgement to apply when it becomes readable.
pub struct Watch {
    pub fd: OwnedFd,
    pub judge: Box<dyn FnMut() -> WatchVerdict + Send>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

struct Shared {
    aborted: AtomicBool,
    done: AtomicBool,
    reason: Mutex<Option<AbortReason>>,
    /// Wakes the watchdog thread (drained by it).
    wake: EventFd,
    /// Becomes readable, and stays so, once the session is aborted (never drained).
    aborted_fd: EventFd,
}

/// Lets another thread abort a running session (the server's shutdown does).
#[derive(Clone)]
pub struct AbortHandle(Arc<Shared>);

impl AbortHandle {
    /// A handle for a session that has not started yet.
    pub fn new() -> Result<Self, Errno> {
        Ok(AbortHandle(Arc::new(Shared {
            aborted: AtomicBool::new(false),
            done: AtomicBool::new(false),
            reason: Mutex::new(None),
            wake: EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
            aborted_fd: EventFd::from_value_and_flags(
                0,
                EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
            )?,
        })))
    }

    /// Aborts the session for `reason` (the first reason given wins).
    pub fn abort(&self, reason: AbortReason) {
        self.0.trigger(reason);
        let _ = self.0.wake.write(1);
    }

    /// True once the session was aborted.
    pub fn is_aborted(&self) -> bool {
        self.0.aborted.load(Ordering::Acquire)
    }

    /// A descriptor that turns readable when the session is aborted, for waits that a signal
    /// cannot interrupt (an event loop).
    pub fn aborted_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0.aborted_fd)
    }
}

impl std::fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbortHandle")
            .field("aborted", &self.is_aborted())
            .finish()
    }
}

impl Shared {
    fn trigger(&self, reason: AbortReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        if !self.aborted.swap(true, Ordering::AcqRel) {
            let _ = self.aborted_fd.write(1);
        }
    }

    #[cold]
    fn reason(&self) -> AbortReason {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or(AbortReason::Timeout)
    }
}

/// What the watchdog watches.
#[derive(Debug)]
pub struct WatchdogSpec {
    /// The peers' pids (from SCM_CREDENTIALS, or our own children), where visible in our pid
    /// namespace.
    pub peer_pids: Vec<i32>,
    /// CLOCK_MONOTONIC (ns) after which the session is aborted as stuck.
    pub deadline_ns: u64,
    pub watch: Option<Watch>,
    pub handle: AbortHandle,
    /// The arena's stop word. Once it is set, the watchdog keeps interrupting the session
    /// thread (without aborting it), so a contender blocked in the kernel notices the stop even
    /// if the wakeup meant for it went to a contender that died.
    pub stop: Option<StopWatch>,
}

/// The running watchdog of the current thread's session.
pub struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog").finish_non_exhaustive()
    }
}

impl Watchdog {
    /// Starts watching on behalf of the calling thread, which it will interrupt when it fires.
    pub fn start(spec: WatchdogSpec) -> Result<Watchdog, Errno> {
        signal::install_interrupt_handler();
        let shared = spec.handle.0.clone();
        let target = signal::current_thread();
        let mut peers = Vec::new();
        for &pid in spec.peer_pids.iter().filter(|&&p| p > 0) {
            match pidfd::open(pid) {
                Ok(fd) => peers.push((pid, fd)),
                Err(Errno::ESRCH) => shared.trigger(AbortReason::PeerDied(pid)),
                // No pidfd support (or a pid from another namespace): the deadline still holds.
                Err(_) => {}
            }
        }
        let deadline = spec.deadline_ns;
        let watch = spec.watch;
        let stop = spec.stop;
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lockfair-watchdog".into())
            .spawn(move || watch_loop(&inner, target, peers, deadline, watch, stop))
            .map_err(|e| crate::sys::io_errno(&e))?;
        Ok(Watchdog {
            shared,
            thread: Some(thread),
        })
    }

    /// `Err(reason)` once the session was aborted. Cheap: one atomic load.
    #[inline]
    pub fn check(&self) -> Result<(), AbortReason> {
        if self.shared.aborted.load(Ordering::Acquire) {
            Err(self.shared.reason())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
impl Watchdog {
    /// A watchdog without a thread, for the round loops' unit tests: it fires only when `handle`
    /// aborts, and never signals anyone (the test's fake mechanism returns `EINTR` itself).
    pub(crate) fn idle(handle: &AbortHandle) -> Watchdog {
        Watchdog {
            shared: handle.0.clone(),
            thread: None,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::Release);
        let _ = self.shared.wake.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const SLICE_NS: u64 = 100_000_000;
const KICK_NS: u64 = 5_000_000;

fn watch_loop(
    shared: &Shared,
    target: Pthread,
    peers: Vec<(i32, OwnedFd)>,
    deadline_ns: u64,
    mut watch: Option<Watch>,
    stop: Option<StopWatch>,
) {
    loop {
        if shared.done.load(Ordering::Acquire) {
            return;
        }
        let stopped = stop.as_ref().is_some_and(StopWatch::stopped);
        if shared.aborted.load(Ordering::Acquire) || stopped {
            // Keep kicking: a signal that lands just before the thread enters its syscall is lost.
            let _ = signal::interrupt(target);
            sleep_on(&shared.wake, &[], None, KICK_NS);
            continue;
        }
        if signal::stop_requested() {
            shared.trigger(AbortReason::Interrupted);
            continue;
        }
        let now = monotonic_ns();
        if now >= deadline_ns {
            shared.trigger(AbortReason::Timeout);
            continue;
        }
        let (dead, watch_ready) = sleep_on(
            &shared.wake,
            &peers,
            watch.as_ref().map(|w| &w.fd),
            (deadline_ns - now).min(SLICE_NS),
        );
        if let Some(pid) = dead {
            shared.trigger(AbortReason::PeerDied(pid));
        }
        if watch_ready && let Some(w) = watch.as_mut() {
            match (w.judge)() {
                WatchVerdict::Ignore => watch = None,
                WatchVerdict::Abort(reason) => shared.trigger(reason),
            }
        }
    }
}

/// Sleeps until `wake`, a peer's pidfd or `watched` is readable or `timeout_ns` passes; drains
/// `wake`. Returns the pid of a peer that exited, and whether `watched` was readable.
fn sleep_on(
    wake: &EventFd,
    peers: &[(i32, OwnedFd)],
    watched: Option<&OwnedFd>,
    timeout_ns: u64,
) -> (Option<i32>, bool) {
    let fds = std::iter::once(wake.as_fd())
        .chain(peers.iter().map(|(_, fd)| fd.as_fd()))
        .chain(watched.map(AsFd::as_fd));
    let mut set = PollSet::readable(fds);
    if set.wait(Some(timeout_ns)).is_err() {
        return (None, false);
    }
    let ready = |i: usize| set.ready(i);
    if ready(0) {
        let _ = rawio::read(wake.as_fd(), &mut [0u8; 8]);
    }
    let dead = (0..peers.len()).find(|&i| ready(1 + i)).map(|i| peers[i].0);
    (dead, watched.is_some() && ready(1 + peers.len()))
}
