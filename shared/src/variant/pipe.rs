//! `pipe`: in `turns` mode a pipe per contender, one byte per handoff. Every IPC benchmark has
//! this baseline, so every other result can be read as a multiple of it. A closed pipe (EOF)
//! means the peer is gone. In `free` mode one pipe holds a single byte, the token.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, write};

use super::holder_death::{Description, HolderDeath, Outcome, Protected, Protection, Repair};
use super::spec::{
    Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick, no_preparation,
};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, SetupError, Variant, sys};
use crate::sys::fdkind::FdKind;
use crate::sys::rawio;

pub(super) const SPEC: Spec = Spec {
    name: "pipe",
    family: Family::ExplicitHandoffs,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds {
        turns: &[FdKind::PipeRead, FdKind::PipeWrite],
        free: &[FdKind::PipeRead, FdKind::PipeWrite],
        create,
        pick,
    },
    prepare: no_preparation,
    open,
    // Twice: a write end the dead holder alone had, or one a live process also holds.
    death: HolderDeath {
        survivable: &[Description::Own, Description::Shared],
        protection: Some(Protected {
            kind: Protection::PollWithPidfds,
            token: 1,
            // The dead holder's write end closes: the survivor's read sees EOF.
            repair: Repair::Nothing,
            survived: Some(
                "the holder's death woke the poll (its pidfd, or EOF on the pipe): the survivor took the turn over",
            ),
        }),
        ..HolderDeath::plain(&[Description::Own, Description::Shared], end_of_file)
    },
    whoops_in_storms: false,
    yardstick: Yardstick::Counterpart {
        mode: "pipe",
        only: None,
    },
    profile: Profile {
        overtaking: Overtaking::Handoff,
        death: Death::EndOfFile,
        needs: "the pipes passed to every contender",
        from_async: "yes: poll the pipe",
    },
};

/// The variant every round trip is also shown as a multiple of (`x_pipe`).
pub const RATIO_BASELINE: Variant = Variant::Pipe;

fn open<'a>(ctx: &Ctx<'a>, fds: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(match ctx.mode {
        Mode::Turns => Opened::in_arena(ctx, ring(fds)?),
        Mode::Free => Opened::in_arena(ctx, token(fds)?),
    })
}

/// Pipe `i` is [read end at `2i`, write end at `2i + 1`]; in `turns` mode contender `i` reads
/// pipe `i` and writes the next one's, in `free` mode everyone has both ends of the one pipe.
fn pick(mode: Mode, contender: usize, contenders: usize) -> Vec<usize> {
    match mode {
        Mode::Turns => vec![2 * contender, 2 * ((contender + 1) % contenders) + 1],
        Mode::Free => vec![0, 1],
    }
}

fn end_of_file(case: Description, outcome: Outcome) -> Option<&'static str> {
    match (outcome, case) {
        (Outcome::Eof, _) => Some(
            "EOF: the dead holder had the only write end; the turn will never come, and the reader knows it",
        ),
        (Outcome::Nothing, Description::Shared) => Some(
            "waits forever: a live process still holds the write end, so the reader gets no EOF",
        ),
        _ => None,
    }
}

/// `count` pipes (read end, write end); the first holds a byte already (the first turn, or the
/// free token).
fn create(count: usize) -> Result<Vec<OwnedFd>, SetupError> {
    let mut fds = Vec::with_capacity(2 * count);
    for c in 0..count {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
        if c == 0 {
            write(&w, b"t").map_err(sys("prime the first pipe"))?;
        }
        fds.push(r);
        fds.push(w);
    }
    Ok(fds)
}

fn ends(fds: Vec<OwnedFd>) -> Result<(OwnedFd, OwnedFd), SetupError> {
    let mut it = fds.into_iter();
    match (it.next(), it.next()) {
        (Some(rx), Some(tx)) => Ok((rx, tx)),
        _ => Err(SetupError::Sys {
            what: "adopt the pipes",
            errno: Errno::EBADF,
        }),
    }
}

fn ring(fds: Vec<OwnedFd>) -> Result<PipeHandoff, SetupError> {
    let (rx, tx) = ends(fds)?;
    Ok(PipeHandoff {
        rx,
        tx,
        exclusion: Exclusion::Turn,
    })
}

fn token(fds: Vec<OwnedFd>) -> Result<PipeHandoff, SetupError> {
    let (rx, tx) = ends(fds)?;
    Ok(PipeHandoff {
        rx,
        tx,
        exclusion: Exclusion::Lock,
    })
}

/// Read one byte to hold, write one byte to let go: the same code is a ring (each contender
/// reads its own pipe and writes the next one's) or a token (everyone shares one pipe).
#[derive(Debug)]
struct PipeHandoff {
    rx: OwnedFd,
    tx: OwnedFd,
    exclusion: Exclusion,
}

impl PipeHandoff {
    fn put(&self) -> Result<(), Errno> {
        rawio::write(&self.tx, b"t").map(drop)
    }
}

impl Handoff for PipeHandoff {
    fn exclusion(&self) -> Exclusion {
        self.exclusion
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let mut byte = [0u8; 1];
        match rawio::read(&self.rx, &mut byte)? {
            0 => Err(Errno::EPIPE),
            _ => Ok(()),
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        match self.exclusion {
            // In the ring, letting go without handing over means keeping quiet.
            Exclusion::Turn => Ok(()),
            Exclusion::Lock => self.put(),
        }
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.put()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        match self.exclusion {
            Exclusion::Turn => match self.put() {
                // The next contender may be gone already.
                Ok(()) | Err(Errno::EPIPE) => Ok(()),
                Err(e) => Err(e),
            },
            Exclusion::Lock => Ok(()),
        }
    }
}
