//! The four Linux file-lock families, as thin calls.
//!
//! - OFD locks (`F_OFD_SETLK[W]`): owned by the *open file description*. Descriptors that share a
//!   description (dup, fork, SCM_RIGHTS) share the lock; an independent `open()` does not.
//! - POSIX record locks (`F_SETLK[W]`): owned by the *process*. Threads share them, and closing any
//!   descriptor of the file drops them all.
//! - `lockf`: a POSIX record lock from the current offset, exclusive only.
//! - `flock`: whole-file, owned by the open file description, like OFD.

use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use rustix::fs::FlockOperation;

/// Shared (read) or exclusive (write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A byte range of the file. `len == 0` means "to the end of the file, however far it grows".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    /// The whole file.
    pub const ALL: ByteRange = ByteRange { start: 0, len: 0 };

    /// One byte at `offset`.
    pub const fn byte(offset: u64) -> Self {
        ByteRange {
            start: offset,
            len: 1,
        }
    }
}

/// Whether a request waits for a conflicting lock to go away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// `F_SETLKW`-style: sleep until granted (or interrupted: `EINTR`).
    Block,
    /// `F_SETLK`-style: fail at once with `EAGAIN`/`EACCES` on conflict.
    NoWait,
}

/// Which owner a record lock belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordOwner {
    /// The open file description (`F_OFD_*`).
    Description,
    /// The process (`F_SETLK*`).
    Process,
}

/// A lock another owner holds that conflicts with a request, as `F_GETLK` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub mode: LockMode,
    /// The holder's pid, or -1 for an OFD lock (it belongs to no process).
    pub pid: i32,
    pub range: ByteRange,
}

fn flock_struct(kind: libc::c_int, range: ByteRange) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: range.start as libc::off_t,
        l_len: range.len as libc::off_t,
        // Must be 0 for OFD requests.
        l_pid: 0,
    }
}

fn lock_kind(mode: LockMode) -> libc::c_int {
    match mode {
        LockMode::Shared => libc::F_RDLCK,
        LockMode::Exclusive => libc::F_WRLCK,
    }
}

/// Takes an OFD or POSIX record lock on `range`.
pub fn record_lock(
    fd: impl AsFd,
    owner: RecordOwner,
    mode: LockMode,
    range: ByteRange,
    wait: Wait,
) -> Result<(), Errno> {
    let fl = flock_struct(lock_kind(mode), range);
    let arg = match (owner, wait) {
        (RecordOwner::Description, Wait::Block) => FcntlArg::F_OFD_SETLKW(&fl),
        (RecordOwner::Description, Wait::NoWait) => FcntlArg::F_OFD_SETLK(&fl),
        (RecordOwner::Process, Wait::Block) => FcntlArg::F_SETLKW(&fl),
        (RecordOwner::Process, Wait::NoWait) => FcntlArg::F_SETLK(&fl),
    };
    fcntl(fd, arg).map(drop)
}

/// Releases an OFD or POSIX record lock on `range`.
pub fn record_unlock(fd: impl AsFd, owner: RecordOwner, range: ByteRange) -> Result<(), Errno> {
    let fl = flock_struct(libc::F_UNLCK, range);
    let arg = match owner {
        RecordOwner::Description => FcntlArg::F_OFD_SETLK(&fl),
        RecordOwner::Process => FcntlArg::F_SETLK(&fl),
    };
    fcntl(fd, arg).map(drop)
}

/// Asks the kernel which lock, if any, would block `mode` on `range` (`F_GETLK`/`F_OFD_GETLK`).
pub fn record_conflict(
    fd: impl AsFd,
    owner: RecordOwner,
    mode: LockMode,
    range: ByteRange,
) -> Result<Option<Conflict>, Errno> {
    let mut fl = flock_struct(lock_kind(mode), range);
    let arg = match owner {
        RecordOwner::Description => FcntlArg::F_OFD_GETLK(&mut fl),
        RecordOwner::Process => FcntlArg::F_GETLK(&mut fl),
    };
    fcntl(fd, arg)?;
    if fl.l_type as libc::c_int == libc::F_UNLCK {
        return Ok(None);
    }
    Ok(Some(Conflict {
        mode: if fl.l_type as libc::c_int == libc::F_RDLCK {
            LockMode::Shared
        } else {
            LockMode::Exclusive
        },
        pid: fl.l_pid,
        range: ByteRange {
            start: fl.l_start as u64,
            len: fl.l_len as u64,
        },
    }))
}

/// The `lockf(3)` commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockfCmd {
    /// `F_LOCK`: exclusive, waits.
    Lock,
    /// `F_TLOCK`: exclusive, fails with `EAGAIN`/`EACCES` on conflict.
    TryLock,
    /// `F_ULOCK`.
    Unlock,
    /// `F_TEST`: `Ok` if unlocked or locked by us, `EAGAIN`/`EACCES` if another process holds it.
    Test,
}

/// `lockf(fd, cmd, len)`: a POSIX lock on `[current offset, offset + len)` (`len == 0`: to the end,
/// however far). nix has no wrapper, so this is the one direct libc call.
pub fn lockf(fd: impl AsFd, cmd: LockfCmd, len: u64) -> Result<(), Errno> {
    let cmd = match cmd {
        LockfCmd::Lock => libc::F_LOCK,
        LockfCmd::TryLock => libc::F_TLOCK,
        LockfCmd::Unlock => libc::F_ULOCK,
        LockfCmd::Test => libc::F_TEST,
    };
    // SAFETY: lockf takes a descriptor and two integers; the borrowed fd stays open for the call.
    let rc = unsafe { libc::lockf(fd.as_fd().as_raw_fd(), cmd, len as libc::off_t) };
    Errno::result(rc).map(drop)
}

/// `flock(2)` on the whole file: `Some(mode)` to lock, `None` to unlock.
pub fn flock(fd: impl AsFd, mode: Option<LockMode>, wait: Wait) -> Result<(), Errno> {
    use FlockOperation as Op;
    let op = match (mode, wait) {
        (Some(LockMode::Shared), Wait::Block) => Op::LockShared,
        (Some(LockMode::Shared), Wait::NoWait) => Op::NonBlockingLockShared,
        (Some(LockMode::Exclusive), Wait::Block) => Op::LockExclusive,
        (Some(LockMode::Exclusive), Wait::NoWait) => Op::NonBlockingLockExclusive,
        (None, _) => Op::Unlock,
    };
    rustix::fs::flock(fd, op).map_err(super::errno)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn memfd() -> File {
        memfd::MemfdOptions::default()
            .create("locks-test")
            .unwrap()
            .into_file()
    }

    /// The same file on an open file description of its own: another lock owner.
    fn reopen(f: &File) -> File {
        File::options()
            .read(true)
            .write(true)
            .open(format!("/proc/self/fd/{}", f.as_raw_fd()))
            .unwrap()
    }

    /// A non-blocking OFD write lock on the whole file.
    fn ofd_exclusive(fd: &File) -> Result<(), Errno> {
        record_lock(
            fd,
            RecordOwner::Description,
            LockMode::Exclusive,
            ByteRange::ALL,
            Wait::NoWait,
        )
    }

    /// The lock that keeps an OFD request of `mode` on the whole file from `fd`, if any.
    fn ofd_conflict(fd: &File, mode: LockMode) -> Option<Conflict> {
        record_conflict(fd, RecordOwner::Description, mode, ByteRange::ALL).unwrap()
    }

    #[test]
    fn ofd_lock_on_the_same_description_never_conflicts() {
        let f = memfd();
        let dup = f.try_clone().unwrap();
        ofd_exclusive(&f).unwrap();
        // A dup shares the description, so it is the same owner: granted.
        ofd_exclusive(&dup).unwrap();
        assert_eq!(ofd_conflict(&dup, LockMode::Exclusive), None);
    }

    #[test]
    fn ofd_lock_on_a_reopened_description_conflicts() {
        let f = memfd();
        let other = reopen(&f);
        ofd_exclusive(&f).unwrap();
        let err = ofd_exclusive(&other).unwrap_err();
        assert_eq!(err, Errno::EAGAIN);
        let conflict =
            ofd_conflict(&other, LockMode::Shared).expect("the first description's lock conflicts");
        assert_eq!(conflict.pid, -1, "OFD locks belong to no process");
        assert_eq!(conflict.mode, LockMode::Exclusive);
        record_unlock(&f, RecordOwner::Description, ByteRange::ALL).unwrap();
        ofd_exclusive(&other).unwrap();
    }

    #[test]
    fn flock_and_lockf_exclude_another_owner_until_released() {
        let f = memfd();
        let other = reopen(&f);
        // flock belongs to the description: a dup of it is the same owner, a reopened one is not
        // until the lock is let go.
        flock(&f, Some(LockMode::Exclusive), Wait::NoWait).unwrap();
        flock(
            f.try_clone().unwrap(),
            Some(LockMode::Exclusive),
            Wait::NoWait,
        )
        .unwrap();
        let refused = flock(&other, Some(LockMode::Shared), Wait::NoWait);
        assert_eq!(refused, Err(Errno::EWOULDBLOCK));
        flock(&f, None, Wait::Block).unwrap();
        flock(&other, Some(LockMode::Exclusive), Wait::NoWait).unwrap();
        flock(&other, None, Wait::Block).unwrap();

        // lockf takes a POSIX lock of this process from the offset (0) to the end: F_TEST passes
        // for its owner, the kernel names this process as the holder to another description,
        // which it excludes, and F_ULOCK really lets go.
        let ask = || ofd_conflict(&other, LockMode::Shared);
        lockf(&f, LockfCmd::TryLock, 0).unwrap();
        lockf(&f, LockfCmd::Test, 0).unwrap();
        let held = ask().expect("the lockf lock conflicts with another description");
        assert_eq!(
            held.pid,
            std::process::id() as i32,
            "a POSIX lock has an owner"
        );
        assert_eq!(held.mode, LockMode::Exclusive, "lockf has no shared mode");
        assert_eq!(held.range, ByteRange::ALL);
        let excluded = ofd_exclusive(&other);
        assert_eq!(excluded, Err(Errno::EAGAIN));
        lockf(&f, LockfCmd::Unlock, 0).unwrap();
        assert_eq!(ask(), None, "F_ULOCK released it");
    }
}
