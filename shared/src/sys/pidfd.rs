//! Watching another process die without polling its pid: a pidfd becomes readable when the
//! process exits. Opening one by pid is only as good as the pid: a pid from SCM_CREDENTIALS may
//! have been reused once its process exited, so the server prefers the pidfd the kernel attaches
//! itself (`SCM_PIDFD`, [`super::scm`]) and checks the sender is still there when it must open one.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// Opens a pidfd for `pid`. Fails with `ESRCH` if it is already gone.
pub fn open(pid: i32) -> Result<OwnedFd, Errno> {
    let pid = Pid::from_raw(pid).ok_or(Errno::ESRCH)?;
    pidfd_open(pid, PidfdFlags::empty()).map_err(super::errno)
}
