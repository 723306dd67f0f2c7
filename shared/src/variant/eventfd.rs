//! `eventfd`: in `turns` mode one eventfd per contender; handing the turn over is a write to the
//! next contender's eventfd, waiting for it a blocking read of one's own. The kernel wakes exactly
//! the contender whose turn it is, so nobody ever wakes to find it is not its turn.
//!
//! In `free` mode a single eventfd holds one token: `read` takes it (blocking while it is gone),
//! `write(1)` puts it back. That is a mutex whose next owner is whoever the scheduler runs first.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Exclusion, Handoff, SetupError, sys};
use crate::sys::rawio;

/// `count` eventfds; the first starts at 1 (the first turn, or the free token, is there already).
pub(super) fn create(count: usize, nonblocking: bool) -> Result<Vec<OwnedFd>, SetupError> {
    let mut flags = EfdFlags::EFD_CLOEXEC;
    if nonblocking {
        flags |= EfdFlags::EFD_NONBLOCK;
    }
    (0..count)
        .map(|c| {
            EventFd::from_value_and_flags(u32::from(c == 0), flags)
                .map(OwnedFd::from)
                .map_err(sys("create an eventfd"))
        })
        .collect()
}

fn adopt(fds: Vec<OwnedFd>, want: usize) -> Result<Vec<EventFd>, SetupError> {
    let fds: Vec<EventFd> = fds
        .into_iter()
        .map(crate::sys::fdkind::into_eventfd)
        .collect::<Result<_, _>>()
        .map_err(sys("adopt the eventfds"))?;
    if fds.len() != want {
        return Err(SetupError::Sys {
            what: "adopt the eventfds",
            errno: Errno::EBADF,
        });
    }
    Ok(fds)
}

pub(super) fn ring(fds: Vec<OwnedFd>) -> Result<EventfdRing, SetupError> {
    let mut fds = adopt(fds, 2)?;
    let next = fds
        .pop()
        .ok_or(Errno::EBADF)
        .map_err(sys("adopt the eventfds"))?;
    let mine = fds
        .pop()
        .ok_or(Errno::EBADF)
        .map_err(sys("adopt the eventfds"))?;
    Ok(EventfdRing { mine, next })
}

pub(super) fn token(fds: Vec<OwnedFd>) -> Result<EventfdToken, SetupError> {
    let token = adopt(fds, 1)?
        .pop()
        .ok_or(Errno::EBADF)
        .map_err(sys("adopt the eventfd"))?;
    Ok(EventfdToken { token })
}

/// `turns` mode: my eventfd and the next contender's.
#[derive(Debug)]
pub(super) struct EventfdRing {
    mine: EventFd,
    next: EventFd,
}

impl Handoff for EventfdRing {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        rawio::eventfd_read(&self.mine).map(drop)
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        rawio::eventfd_write(&self.next, 1)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Each contender that wakes and sees the stop flag passes the wakeup on round the ring.
        rawio::eventfd_write(&self.next, 1)
    }
}

/// `free` mode: the shared token.
#[derive(Debug)]
pub(super) struct EventfdToken {
    token: EventFd,
}

impl Handoff for EventfdToken {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        rawio::eventfd_read(&self.token).map(drop)
    }

    fn release(&mut self) -> Result<(), Errno> {
        rawio::eventfd_write(&self.token, 1)
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // The stopper released the token (the caller did); whoever gets it sees the stop flag,
        // puts it back, and the next one does the same.
        Ok(())
    }
}
