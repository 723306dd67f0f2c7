//! `eventfd`: one eventfd per contender; handing the turn over is a write to the next
//! contender's eventfd, waiting for it a blocking read of one's own. The kernel wakes exactly the
//! contender whose turn it is, so nobody ever wakes to find it is not its turn.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Exclusion, Handoff, SetupError, sys};

/// One eventfd per contender; contender 0's starts at 1 because the first turn is its own.
pub(super) fn create(contenders: usize) -> Result<Vec<OwnedFd>, SetupError> {
    (0..contenders)
        .map(|c| {
            EventFd::from_value_and_flags(u32::from(c == 0), EfdFlags::EFD_CLOEXEC)
                .map(OwnedFd::from)
                .map_err(sys("create an eventfd"))
        })
        .collect()
}

pub(super) fn open(fds: Vec<OwnedFd>) -> Result<EventfdHandoff, SetupError> {
    let mut it = fds.into_iter().map(crate::sys::fdkind::into_eventfd);
    match (it.next(), it.next()) {
        (Some(Ok(mine)), Some(Ok(next))) => Ok(EventfdHandoff { mine, next }),
        _ => Err(SetupError::Sys {
            what: "adopt the eventfds",
            errno: Errno::EBADF,
        }),
    }
}

#[derive(Debug)]
pub(super) struct EventfdHandoff {
    mine: EventFd,
    next: EventFd,
}

impl Handoff for EventfdHandoff {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        self.mine.read().map(drop)
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.next.write(1).map(drop)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Each contender that wakes and sees the stop flag passes the wakeup on round the ring.
        self.next.write(1).map(drop)
    }
}
