//! `pipe`: in `turns` mode a pipe per contender, one byte per handoff. Every IPC benchmark has
//! this baseline, so every other result can be read as a multiple of it. A closed pipe (EOF)
//! means the peer is gone. In `free` mode one pipe holds a single byte, the token.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, write};

use crate::sys::rawio;

use super::{Exclusion, Handoff, SetupError, sys};

/// `count` pipes (read end, write end); the first holds a byte already (the first turn, or the
/// free token).
pub(super) fn create(count: usize) -> Result<Vec<OwnedFd>, SetupError> {
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

pub(super) fn ring(fds: Vec<OwnedFd>) -> Result<PipeHandoff, SetupError> {
    let (rx, tx) = ends(fds)?;
    Ok(PipeHandoff {
        rx,
        tx,
        exclusion: Exclusion::Turn,
    })
}

pub(super) fn token(fds: Vec<OwnedFd>) -> Result<PipeHandoff, SetupError> {
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
pub(super) struct PipeHandoff {
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
