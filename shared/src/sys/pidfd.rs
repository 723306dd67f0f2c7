//! Watching another process die without polling its pid: a pidfd becomes readable when the
//! process exits. The pid comes from SCM_CREDENTIALS, which the kernel fills in and checks.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// Opens a pidfd for `pid`. Fails with `ESRCH` if it is already gone.
pub fn open(pid: i32) -> Result<OwnedFd, Errno> {
    let pid = Pid::from_raw(pid).ok_or(Errno::ESRCH)?;
    pidfd_open(pid, PidfdFlags::empty()).map_err(super::errno)
}
