//! A helper process of our own: this very program re-executed with a hidden subcommand, talking
//! over a SOCK_SEQPACKET socketpair that is its standard input.
//!
//! The `peer` helper (lock operations on request) and the helper contenders are both this. The
//! child exits when the socket hangs up, so it cannot outlive its parent's interest in it; on drop
//! the parent hangs up, gives it a grace period to finish, then kills it, and always reaps it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, socketpair};
use thiserror::Error;

use crate::channel::wait_readable;
use crate::sys::scm::{Received, control_space, recv_with_fds, send_with_fds};

/// Why a helper process could not be started.
#[derive(Debug, Error)]
pub enum ChildStartError {
    #[error("cannot create the helper's socketpair: {0}")]
    Socketpair(Errno),
    #[error("cannot start {path}: {err}", path = .path.display())]
    Spawn { path: PathBuf, err: std::io::Error },
}

/// A running helper process and our end of its socket.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    /// Closed first on drop: the hang-up the child waits for before it exits.
    socket: Option<OwnedFd>,
    /// How long a hung-up child may take to exit before it is killed.
    grace: Duration,
}

impl ChildProcess {
    /// Starts `helper subcommand` with the socket as its stdin and `stdout` as its stdout.
    pub fn spawn(
        helper: &Path,
        subcommand: &str,
        stdout: Stdio,
        grace: Duration,
    ) -> Result<ChildProcess, ChildStartError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(ChildStartError::Socketpair)?;
        let child = Command::new(helper)
            .arg(subcommand)
            .stdin(Stdio::from(theirs))
            .stdout(stdout)
            .spawn()
            .map_err(|err| ChildStartError::Spawn {
                path: helper.to_path_buf(),
                err,
            })?;
        Ok(ChildProcess {
            child,
            socket: Some(ours),
            grace,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn socket(&self) -> Result<BorrowedFd<'_>, Errno> {
        self.socket.as_ref().map(|s| s.as_fd()).ok_or(Errno::EBADF)
    }

    /// Sends one message with `fds` attached.
    pub fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        send_with_fds(self.socket()?, bytes, fds, None)
    }

    /// Waits up to `timeout` for one message (with up to `max_fds` descriptors) into `buf`.
    /// `Ok(None)`: nothing came in time. A length of 0 is the child hanging up.
    pub fn recv(
        &self,
        buf: &mut [u8],
        max_fds: usize,
        timeout: Duration,
    ) -> Result<Option<Received>, Errno> {
        let socket = self.socket()?;
        if !wait_readable(socket, timeout).unwrap_or(false) {
            return Ok(None);
        }
        let mut control = vec![0u8; control_space(max_fds)];
        recv_with_fds(socket, buf, &mut control, MsgFlags::empty()).map(Some)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // Hang up: a finished child exits once it sees that; anything else is killed. Either way
        // it is reaped.
        drop(self.socket.take());
        let exited = !self.grace.is_zero()
            && matches!(
                crate::command::wait_within(&mut self.child, self.grace),
                Ok(Some(_))
            );
        if !exited {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cat -` exits when its stdin (the socket) hangs up, like our helpers; `sleep` does not.
    #[test]
    fn a_child_that_exits_on_hang_up_is_reaped_and_one_that_does_not_is_killed() {
        for (program, arg, grace) in [
            ("cat", "-", Duration::from_secs(5)),
            ("sleep", "1000", Duration::ZERO),
        ] {
            let child = ChildProcess::spawn(Path::new(program), arg, Stdio::null(), grace).unwrap();
            let pid = nix::unistd::Pid::from_raw(child.pid());
            drop(child);
            // Reaped: no child of ours has that pid any more.
            assert_eq!(
                nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
                Err(Errno::ECHILD),
                "{program}"
            );
        }
    }

    #[test]
    fn a_missing_helper_is_named() {
        let err = ChildProcess::spawn(
            Path::new("/nonexistent/lockfair-client"),
            "peer",
            Stdio::null(),
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot start /nonexistent/lockfair-client")
        );
    }
}
