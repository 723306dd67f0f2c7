//! Knowing when a session's client has gone, without being fooled by pid reuse.
//!
//! From Linux 6.5 the kernel hands the sender's pidfd with its datagram (`SO_PASSPIDFD`): it names
//! the very process that sent the hello, whatever happens to its pid afterwards. On older kernels
//! the server opens a pidfd for the pid in `SCM_CREDENTIALS`, which could by then name another
//! process if the client died and its pid was reused; so it then checks that the sender's socket
//! is still bound. A live socket means the sender had not exited when the pidfd was opened (its
//! socket dies with it, unless it shared it), so the pid was still the sender's.

use std::io;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::socket::UnixAddr;
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinError;

use crate::admission::Refusal;
use crate::session::watchdog::{AbortHandle, AbortReason};

/// What the server watches to learn that a session's client exited.
#[derive(Debug)]
pub(super) enum PeerWatch {
    /// A pidfd known to name the sender.
    Pidfd(OwnedFd),
    /// No pidfd could be had (no pidfd support): the session's watchdog looks at the pid.
    Pid(i32),
}

/// Why the server could not see a session through to its own end: its part failed, not the
/// session's.
#[derive(Debug, Error)]
pub(super) enum WatchError {
    #[error("cannot watch the client's pidfd")]
    Pidfd(#[source] io::Error),
    #[error("the session thread failed")]
    Thread(#[from] JoinError),
}

/// The sender's pidfd: the one the kernel attached (`received`), else a checked `pidfd_open` of
/// `pid` for a sender bound at `from`. Refuses a sender that has already exited.
pub(super) fn sender_watch(
    received: Option<Result<OwnedFd, Errno>>,
    pid: i32,
    from: &UnixAddr,
) -> Result<PeerWatch, Refusal> {
    match received {
        Some(Ok(fd)) => Ok(PeerWatch::Pidfd(fd)),
        // The kernel could not make a pidfd for the sender: it had exited.
        Some(Err(e @ (Errno::ESRCH | Errno::EINVAL))) => Err(Refusal::SenderGone(e)),
        Some(Err(_)) | None => checked_open(pid, from),
    }
}

/// The fallback for kernels without `SCM_PIDFD`.
fn checked_open(pid: i32, from: &UnixAddr) -> Result<PeerWatch, Refusal> {
    match crate::sys::pidfd::open(pid) {
        Ok(fd) => match crate::channel::probe(from) {
            Ok(()) => Ok(PeerWatch::Pidfd(fd)),
            Err(e) => Err(Refusal::SenderGone(e)),
        },
        Err(Errno::ESRCH) => Err(Refusal::SenderGone(Errno::ESRCH)),
        Err(_) => Ok(PeerWatch::Pid(pid)),
    }
}

impl PeerWatch {
    /// The pid for the session's own watchdog, when the server cannot watch a pidfd itself.
    pub(super) fn watchdog_pid(&self) -> Option<i32> {
        match self {
            PeerWatch::Pidfd(_) => None,
            PeerWatch::Pid(pid) => Some(*pid),
        }
    }

    /// Registers the pidfd with the reactor, for [`exited`] and [`run_watched`].
    pub(super) fn into_async(self) -> Result<Option<AsyncFd<OwnedFd>>, WatchError> {
        match self {
            PeerWatch::Pidfd(fd) => crate::sys::reactor::register(fd)
                .map(Some)
                .map_err(WatchError::Pidfd),
            PeerWatch::Pid(_) => Ok(None),
        }
    }
}

/// Runs `work` (a session's blocking round loop) on a blocking thread and waits for it. If the
/// client `pid` exits first, aborts the work through its watchdog's `abort` handle and still
/// waits for it to return: it says after how much it stopped, and why.
pub(super) async fn run_watched<T: Send + 'static>(
    peer: &Option<AsyncFd<OwnedFd>>,
    abort: AbortHandle,
    pid: i32,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WatchError> {
    let run = tokio::task::spawn_blocking(work);
    tokio::pin!(run);
    let outcome = tokio::select! {
        outcome = &mut run => outcome,
        () = exited(peer) => {
            abort.abort(AbortReason::PeerDied(pid));
            run.await
        }
    };
    Ok(outcome?)
}

/// Resolves when the watched process exits; never without a pidfd.
pub(super) async fn exited(pidfd: &Option<AsyncFd<OwnedFd>>) {
    match pidfd {
        Some(fd) => drop(fd.readable().await),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::bind;
    use std::os::fd::AsRawFd;

    fn bound_socket() -> (OwnedFd, UnixAddr) {
        let s = crate::channel::datagram_socket().unwrap();
        bind(s.as_raw_fd(), &UnixAddr::new_unnamed()).unwrap();
        let addr: UnixAddr = nix::sys::socket::getsockname(s.as_raw_fd()).unwrap();
        (s, addr)
    }

    #[test]
    fn the_kernels_pidfd_is_taken_as_is_and_its_failure_refuses() {
        let (_s, addr) = bound_socket();
        let fd = crate::sys::pidfd::open(std::process::id() as i32).unwrap();
        assert!(matches!(
            sender_watch(Some(Ok(fd)), 1, &addr),
            Ok(PeerWatch::Pidfd(_))
        ));
        assert!(matches!(
            sender_watch(Some(Err(Errno::ESRCH)), 1, &addr),
            Err(Refusal::SenderGone(Errno::ESRCH))
        ));
    }

    #[test]
    fn the_fallback_accepts_a_bound_sender_and_refuses_a_closed_one() {
        let me = std::process::id() as i32;
        let (s, addr) = bound_socket();
        assert!(matches!(
            sender_watch(None, me, &addr),
            Ok(PeerWatch::Pidfd(_))
        ));
        // The sender's socket is gone: its pid may already name another process.
        drop(s);
        assert!(matches!(
            sender_watch(None, me, &addr),
            Err(Refusal::SenderGone(_))
        ));
    }
}
