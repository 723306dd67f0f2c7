//! `pipe`: a pipe per contender, one byte per handoff. Every IPC benchmark has this baseline, so
//! every other result can be read as a multiple of it. A closed pipe (EOF) means the peer is gone.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, read, write};

use super::{Exclusion, Handoff, SetupError, sys};

/// One pipe per contender (read end, write end); contender 0's holds a byte already because
/// the first turn is its own.
pub(super) fn create(contenders: usize) -> Result<Vec<OwnedFd>, SetupError> {
    let mut fds = Vec::with_capacity(2 * contenders);
    for c in 0..contenders {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
        if c == 0 {
            write(&w, b"t").map_err(sys("prime the first pipe"))?;
        }
        fds.push(r);
        fds.push(w);
    }
    Ok(fds)
}

pub(super) fn open(fds: Vec<OwnedFd>) -> Result<PipeHandoff, SetupError> {
    let mut it = fds.into_iter();
    match (it.next(), it.next()) {
        (Some(rx), Some(tx)) => Ok(PipeHandoff { rx, tx }),
        _ => Err(SetupError::Sys {
            what: "adopt the pipes",
            errno: Errno::EBADF,
        }),
    }
}

#[derive(Debug)]
pub(super) struct PipeHandoff {
    rx: OwnedFd,
    tx: OwnedFd,
}

impl Handoff for PipeHandoff {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let mut byte = [0u8; 1];
        match read(&self.rx, &mut byte)? {
            0 => Err(Errno::EPIPE),
            _ => Ok(()),
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        write(&self.tx, b"t").map(drop)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        match write(&self.tx, b"s") {
            Ok(_) | Err(Errno::EPIPE) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
