//! Sleeping until a descriptor is readable: one with a timeout, or the first of a set (a
//! waiter's own descriptor beside its peers' pidfds, which become readable when the peer exits).

use std::os::fd::{AsFd, BorrowedFd};
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

/// A set of descriptors to wait on together, built once and waited on as often as needed.
#[derive(Debug)]
pub struct PollSet<'a> {
    fds: Vec<PollFd<'a>>,
}

impl<'a> PollSet<'a> {
    /// Waits for `fds` to become readable (or to hang up, or to fail: anything that would end a
    /// read's wait).
    pub fn readable(fds: impl IntoIterator<Item = BorrowedFd<'a>>) -> PollSet<'a> {
        PollSet {
            fds: fds
                .into_iter()
                .map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
                .collect(),
        }
    }

    /// Sleeps until one of the set is ready or `timeout_ns` passes (`None`: no timeout); how
    /// many are ready (0: the time ran out). A signal ends the wait with `EINTR`.
    pub fn wait(&mut self, timeout_ns: Option<u64>) -> Result<usize, Errno> {
        let timeout = timeout_ns.map(super::clock::timespec);
        poll(&mut self.fds, timeout.as_ref()).map_err(super::errno)
    }

    /// True if descriptor `index` of the set was ready at the last [`PollSet::wait`].
    pub fn ready(&self, index: usize) -> bool {
        self.fds.get(index).is_some_and(|f| !f.revents().is_empty())
    }
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

    #[test]
    fn a_set_says_which_of_its_descriptors_is_ready() {
        let (r1, w1) = nix::unistd::pipe().unwrap();
        let (r2, w2) = nix::unistd::pipe().unwrap();
        let mut set = PollSet::readable([r1.as_fd(), r2.as_fd()]);
        assert_eq!(set.wait(Some(1_000_000)), Ok(0));
        nix::unistd::write(&w2, b"x").unwrap();
        assert_eq!(set.wait(None), Ok(1));
        assert!(!set.ready(0) && set.ready(1) && !set.ready(2));
        // A hang-up ends a wait too: the writer is gone.
        drop(w1);
        assert_eq!(set.wait(None), Ok(2));
        assert!(set.ready(0));
    }
}
