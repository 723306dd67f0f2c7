//! `eventfd`: in `turns` mode one eventfd per contender; handing the turn over is a write to the
//! next contender's eventfd, waiting for it a blocking read of one's own. The kernel wakes exactly
//! the contender whose turn it is, so nobody ever wakes to find it is not its turn.
//!
//! In `free` mode a single eventfd holds one token: `read` takes it (blocking while it is gone),
//! `write(1)` puts it back. That is a mutex whose next owner is whoever the scheduler runs first.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::holder_death::{Description, HolderDeath, Outcome, Protected, Protection, Repair};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, SetupError, sys};
use crate::sys::fdkind::FdKind;
use crate::sys::rawio;

pub(super) const SPEC: Spec = Spec {
    name: "eventfd",
    family: Family::ExplicitHandoffs,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: FDS,
    prepare: no_preparation,
    open,
    death: DEATH,
    whoops_in_storms: false,
    yardstick: Yardstick::Counterpart {
        mode: "eventfd",
        only: None,
    },
    profile: Profile {
        overtaking: Overtaking::Handoff,
        death: Death::Held,
        needs: "the eventfds passed to every contender",
        from_async: "yes: poll the eventfd (tokio AsyncFd)",
    },
};

/// The eventfds of a run (blocking): `tokio-eventfd` takes the same, non-blocking.
pub(super) const FDS: Fds = Fds {
    turns: &[FdKind::Eventfd, FdKind::Eventfd],
    free: &[FdKind::Eventfd],
    create: |count| create(count, false),
    pick,
};

/// A dead writer: the same for `tokio-eventfd`, but for its protection.
pub(super) const DEATH: HolderDeath = HolderDeath {
    survivable: &[Description::Own],
    protection: Some(Protected {
        kind: Protection::PollWithPidfds,
        token: 8,
        repair: Repair::PostOwnEventfd,
        survived: None,
    }),
    ..HolderDeath::plain(&[Description::Own], nobody_tells_the_reader)
};

fn open<'a>(ctx: &Ctx<'a>, fds: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(match ctx.mode {
        Mode::Turns => Opened::in_arena(ctx, ring(fds)?),
        Mode::Free => Opened::in_arena(ctx, token(fds)?),
    })
}

/// In `turns` mode eventfd `i` wakes contender `i`: my own, then the next contender's. In
/// `free` mode the one token.
fn pick(mode: Mode, contender: usize, contenders: usize) -> Vec<usize> {
    match mode {
        Mode::Turns => vec![contender, (contender + 1) % contenders],
        Mode::Free => vec![0],
    }
}

fn nobody_tells_the_reader(_: Description, outcome: Outcome) -> Option<&'static str> {
    (outcome == Outcome::Nothing)
        .then_some("waits forever: nothing tells an eventfd reader that the only writer died")
}

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

fn ring(fds: Vec<OwnedFd>) -> Result<EventfdRing, SetupError> {
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

fn token(fds: Vec<OwnedFd>) -> Result<EventfdToken, SetupError> {
    let token = adopt(fds, 1)?
        .pop()
        .ok_or(Errno::EBADF)
        .map_err(sys("adopt the eventfd"))?;
    Ok(EventfdToken { token })
}

/// `turns` mode: my eventfd and the next contender's.
#[derive(Debug)]
struct EventfdRing {
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
struct EventfdToken {
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
