//! The four lock families behind one enum, for the variants and the semantics matrix.

use std::fmt;
use std::os::fd::AsFd;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::sys::locks::{self, ByteRange, LockMode, LockfCmd, RecordOwner, Wait};

/// A family of Linux file locks. Each is owned by something different, which is the whole story.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LockFamily {
    /// `flock(2)`: whole file, owned by the open file description.
    Flock,
    /// `lockf(3)`: a POSIX record lock from the current offset, owned by the process, exclusive only.
    Lockf,
    /// `fcntl(F_SETLK)`: POSIX record lock, owned by the process.
    Posix,
    /// `fcntl(F_OFD_SETLK)`: record lock owned by the open file description.
    Ofd,
}

impl LockFamily {
    /// All four, in the order reports print them.
    pub const ALL: [LockFamily; 4] = [
        LockFamily::Flock,
        LockFamily::Lockf,
        LockFamily::Posix,
        LockFamily::Ofd,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            LockFamily::Flock => "flock",
            LockFamily::Lockf => "lockf",
            LockFamily::Posix => "posix",
            LockFamily::Ofd => "ofd",
        }
    }

    /// The type `/proc/locks` prints for this family's locks.
    pub fn proc_locks_type(self) -> &'static str {
        match self {
            LockFamily::Flock => "FLOCK",
            LockFamily::Lockf | LockFamily::Posix => "POSIX",
            LockFamily::Ofd => "OFDLCK",
        }
    }

    /// Takes the lock on the whole file. `lockf` has no shared mode and answers `EINVAL`.
    /// `lockf` locks from the descriptor's current offset: callers keep it at 0.
    pub fn lock(self, fd: impl AsFd, mode: LockMode, wait: Wait) -> Result<(), Errno> {
        match self {
            LockFamily::Flock => locks::flock(fd, Some(mode), wait),
            LockFamily::Lockf if mode == LockMode::Shared => Err(Errno::EINVAL),
            LockFamily::Lockf => locks::lockf(
                fd,
                match wait {
                    Wait::Block => LockfCmd::Lock,
                    Wait::NoWait => LockfCmd::TryLock,
                },
                0,
            ),
            LockFamily::Posix => {
                locks::record_lock(fd, RecordOwner::Process, mode, ByteRange::ALL, wait)
            }
            LockFamily::Ofd => {
                locks::record_lock(fd, RecordOwner::Description, mode, ByteRange::ALL, wait)
            }
        }
    }

    /// Releases this family's lock on the whole file.
    pub fn unlock(self, fd: impl AsFd) -> Result<(), Errno> {
        match self {
            LockFamily::Flock => locks::flock(fd, None, Wait::Block),
            LockFamily::Lockf => locks::lockf(fd, LockfCmd::Unlock, 0),
            LockFamily::Posix => locks::record_unlock(fd, RecordOwner::Process, ByteRange::ALL),
            LockFamily::Ofd => locks::record_unlock(fd, RecordOwner::Description, ByteRange::ALL),
        }
    }
}

impl fmt::Display for LockFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
