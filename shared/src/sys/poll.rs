//! Sleeping until one descriptor is readable, with a timeout.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;
use rustix::event::{PollFd, PollFlags, poll};

/// Waits until `fd` is readable (true) or `timeout` passes (false). A signal ends the wait early
/// with `EINTR`: whether to wait again is the caller's to decide.
pub fn readable_within(fd: impl AsFd, timeout: Duration) -> Result<bool, Errno> {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    poll(&mut fds, Some(&super::clock::timespec(ns)))
        .map(|n| n > 0)
        .map_err(super::errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_is_readable_once_written_and_not_before() {
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(readable_within(&r, Duration::from_millis(1)), Ok(false));
        nix::unistd::write(&w, b"x").unwrap();
        assert_eq!(readable_within(&r, Duration::from_secs(30)), Ok(true));
    }
}
