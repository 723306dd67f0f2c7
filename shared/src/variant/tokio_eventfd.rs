//! `tokio-eventfd`: the eventfd handoff driven by a tokio runtime, to show what an async runtime
//! costs (or saves) against the blocking eventfd: each wait is a `readable().await` on an
//! `AsyncFd` of a non-blocking eventfd, i.e. epoll plus a read, instead of one blocking read.
//!
//! Each contender drives its own current-thread runtime on its session thread. The watchdog's
//! signal cannot reach a wait inside the runtime (tokio retries `epoll_wait` on EINTR), so every
//! wait also listens to the session's abort eventfd.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::unix::AsyncFd;
use tokio::runtime::Runtime;

use super::holder_death::{HolderDeath, Protected, Protection, Repair};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, SetupError, eventfd, sys};
use crate::sys::{rawio, reactor};

pub(super) const SPEC: Spec = Spec {
    name: "tokio-eventfd",
    family: Family::ExplicitHandoffs,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds {
        create: |count| eventfd::create(count, true),
        ..eventfd::FDS
    },
    prepare: no_preparation,
    open,
    death: HolderDeath {
        protection: Some(Protected {
            kind: Protection::PidfdsInRuntime,
            token: 8,
            repair: Repair::PostOwnEventfd,
            survived: None,
        }),
        ..eventfd::DEATH
    },
    whoops_in_storms: false,
    yardstick: Yardstick::NoCounterpart(
        "bench/pingpong.c has no async runtime: its eventfd mode is `eventfd`'s counterpart",
    ),
    profile: Profile {
        overtaking: Overtaking::Handoff,
        death: Death::Held,
        needs: "the eventfds passed to every contender; a tokio runtime",
        from_async: "yes: it is an async wait (AsyncFd)",
    },
};

fn open<'a>(ctx: &Ctx<'a>, fds: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(Opened::in_arena(ctx, runtime(ctx, fds)?))
}

/// Contender `ctx.contender`'s runtime, with its eventfds (and the abort eventfd) registered.
fn runtime<'a>(ctx: &Ctx<'a>, fds: Vec<OwnedFd>) -> Result<TokioEventfd<'a>, SetupError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| SetupError::Sys {
            what: "start a tokio runtime",
            errno: crate::sys::io_errno(&e),
        })?;
    let register_error = |e: io::Error| SetupError::Sys {
        what: "register an eventfd with tokio",
        errno: crate::sys::io_errno(&e),
    };
    for fd in &fds {
        // The client creates them non-blocking; a peer's may not be, and a blocking read would
        // stall the runtime.
        let flags = OFlag::from_bits_truncate(
            fcntl(fd, FcntlArg::F_GETFL).map_err(sys("read eventfd flags"))?,
        );
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))
            .map_err(sys("make an eventfd non-blocking"))?;
    }
    let mut it = fds.into_iter();
    let (mine, next) = match (ctx.mode, it.next(), it.next()) {
        (Mode::Turns, Some(mine), Some(next)) => (mine, next),
        (Mode::Free, Some(token), None) => {
            let copy = token.try_clone().map_err(|e| SetupError::Sys {
                what: "duplicate the token eventfd",
                errno: crate::sys::io_errno(&e),
            })?;
            (token, copy)
        }
        _ => {
            return Err(SetupError::Sys {
                what: "adopt the eventfds",
                errno: Errno::EBADF,
            });
        }
    };
    let _entered = rt.enter();
    let mine = reactor::register(mine).map_err(register_error)?;
    let abort = reactor::register_borrowed(ctx.abort).map_err(register_error)?;
    drop(_entered);
    Ok(TokioEventfd {
        mine,
        abort,
        next,
        mode: ctx.mode,
        rt,
    })
}

/// Fields drop in order: the registrations before the runtime that owns the reactor.
#[derive(Debug)]
struct TokioEventfd<'a> {
    mine: AsyncFd<OwnedFd>,
    abort: AsyncFd<BorrowedFd<'a>>,
    /// Where a handoff (or, in free mode, a release) writes.
    next: OwnedFd,
    mode: Mode,
    rt: Runtime,
}

fn errno(e: io::Error) -> Errno {
    crate::sys::io_errno(&e)
}

impl Handoff for TokioEventfd<'_> {
    fn exclusion(&self) -> Exclusion {
        match self.mode {
            Mode::Turns => Exclusion::Turn,
            Mode::Free => Exclusion::Lock,
        }
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let (mine, abort) = (&self.mine, &self.abort);
        self.rt.block_on(async move {
            loop {
                tokio::select! {
                    biased;
                    // Aborted: report EINTR, as an interrupted syscall would.
                    _ = abort.readable() => return Err(Errno::EINTR),
                    ready = mine.readable() => {
                        let mut ready = ready.map_err(errno)?;
                        let got = ready.try_io(|fd| {
                            rawio::read(fd.get_ref(), &mut [0u8; 8])
                                .map_err(|e| io::Error::from_raw_os_error(e as i32))
                        });
                        match got {
                            Ok(Ok(_)) => return Ok(()),
                            Ok(Err(e)) => return Err(errno(e)),
                            // Someone else took it (free mode) or the readiness was stale.
                            Err(_would_block) => continue,
                        }
                    }
                }
            }
        })
    }

    fn release(&mut self) -> Result<(), Errno> {
        match self.mode {
            Mode::Turns => Ok(()),
            Mode::Free => rawio::eventfd_write(&self.next, 1),
        }
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        rawio::eventfd_write(&self.next, 1)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        match self.mode {
            Mode::Turns => rawio::eventfd_write(&self.next, 1),
            Mode::Free => Ok(()),
        }
    }
}
