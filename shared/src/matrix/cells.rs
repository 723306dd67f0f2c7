//! The 32 cells: lock kind × access × concurrency, each decided by the kernel's answer.
//!
//! In every cell contender A (the calling thread of this process) takes an exclusive lock on a
//! fresh regular file, then contender B asks for an exclusive lock on the same file *without
//! waiting*. B refused (`EAGAIN`/`EACCES`): the two are serialized. B granted: they are not, and
//! both believe they hold the exclusive lock. Exclusive everywhere, because `lockf` has no shared
//! mode.
//!
//! **Concurrency** says who B is:
//! - `threads`: a second thread of this process, spawned for the attempt and joined.
//! - `processes`: the helper process (`lockfair-client peer`), started for the cell and reaped.
//!
//! **Access** says how B's descriptor relates to A's:
//! - `same_fd`: the same descriptor. With threads, literally the same descriptor number A
//!   locked through. With processes, the descriptor the helper inherited across fork/exec (its
//!   fd 1), which refers to A's open file description.
//! - `dup_fd`: a `dup(2)` of it (same description). With processes, the helper dups the
//!   descriptor it inherited.
//! - `two_fds`: an independent `open(2)` of the same path: a second open file description.
//! - `passed_fd`: the descriptor received over SCM_RIGHTS, the seed's case (same description).
//!   With threads it goes through a socketpair inside this process.
//!
//! B's descriptor exists before A locks: creating it later could mean closing a descriptor of
//! the file, which silently drops this process's POSIX locks (see [`super::close`]).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, socketpair};
use serde::{Deserialize, Serialize};

use super::scratch::{self, ScratchDir};
use super::{MatrixError, try_outcome};
use crate::locking::LockFamily;
use crate::peer::{PeerProcess, PeerRequest};
use crate::sys::locks::{LockMode, Wait};
use crate::sys::scm::{control_space, recv_with_fds, send_with_fds};

/// How contender B's descriptor relates to A's (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    SameFd,
    DupFd,
    TwoFds,
    PassedFd,
}

impl Access {
    /// All four, in the order reports print them.
    pub const ALL: [Access; 4] = [
        Access::SameFd,
        Access::DupFd,
        Access::TwoFds,
        Access::PassedFd,
    ];

    /// The name in the table and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Access::SameFd => "same_fd",
            Access::DupFd => "dup_fd",
            Access::TwoFds => "two_fds",
            Access::PassedFd => "passed_fd",
        }
    }
}

/// Who contender B is (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    Threads,
    Processes,
}

impl Concurrency {
    pub const ALL: [Concurrency; 2] = [Concurrency::Threads, Concurrency::Processes];

    pub fn name(self) -> &'static str {
        match self {
            Concurrency::Threads => "threads",
            Concurrency::Processes => "processes",
        }
    }
}

/// One cell of the matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub lock: LockFamily,
    pub access: Access,
    pub concurrency: Concurrency,
    /// True if B was refused while A held the lock.
    pub serialized: bool,
    /// The errno B got (`EAGAIN`), or `null` when B was granted.
    pub errno: Option<String>,
}

/// Measures every cell, in report order.
pub(super) fn measure_all(dir: &ScratchDir, helper: &Path) -> Result<Vec<Cell>, MatrixError> {
    let mut cells = Vec::with_capacity(32);
    for lock in LockFamily::ALL {
        for access in Access::ALL {
            for concurrency in Concurrency::ALL {
                cells.push(measure(dir, helper, lock, access, concurrency)?);
            }
        }
    }
    Ok(cells)
}

/// Measures one cell on a fresh file.
pub(super) fn measure(
    dir: &ScratchDir,
    helper: &Path,
    lock: LockFamily,
    access: Access,
    concurrency: Concurrency,
) -> Result<Cell, MatrixError> {
    let name = format!("cell-{lock}-{}-{}", access.name(), concurrency.name());
    let (path, a) = dir.fresh(&name)?;
    let attempt = match concurrency {
        Concurrency::Threads => in_a_thread(&path, &a, lock, access)?,
        Concurrency::Processes => in_the_helper(helper, &path, &a, lock, access)?,
    };
    let errno = try_outcome(lock, "B's non-blocking exclusive request", attempt)?;
    Ok(Cell {
        lock,
        access,
        concurrency,
        serialized: errno.is_some(),
        errno,
    })
    // `a`, B's descriptor and the helper are gone here: every lock of the cell is released.
}

fn lock_a(lock: LockFamily, a: &File) -> Result<(), MatrixError> {
    lock.lock(a, LockMode::Exclusive, Wait::NoWait)
        .map_err(|e| MatrixError::Unexpected {
            lock,
            what: format!(
                "A's exclusive lock on a fresh file failed with {}",
                super::errno_name(e)
            ),
        })
}

/// B is a second thread of this process.
fn in_a_thread(
    path: &Path,
    a: &File,
    lock: LockFamily,
    access: Access,
) -> Result<Result<(), nix::errno::Errno>, MatrixError> {
    let own = match access {
        Access::SameFd => None,
        Access::DupFd => Some(
            a.try_clone()
                .map_err(super::file_err("dup a descriptor of", path))?,
        ),
        Access::TwoFds => Some(scratch::open(path)?),
        Access::PassedFd => Some(File::from(pass_in_process(a)?)),
    };
    let b = own.as_ref().unwrap_or(a);
    lock_a(lock, a)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| lock.lock(b, LockMode::Exclusive, Wait::NoWait))
            .join()
    })
    .map_err(|_| MatrixError::Unexpected {
        lock,
        what: "contender B's thread panicked".to_string(),
    })
}

/// B is the helper process.
fn in_the_helper(
    helper: &Path,
    path: &Path,
    a: &File,
    lock: LockFamily,
    access: Access,
) -> Result<Result<(), nix::errno::Errno>, MatrixError> {
    let inheritable = || -> Result<OwnedFd, MatrixError> {
        a.try_clone()
            .map(OwnedFd::from)
            .map_err(super::file_err("dup a descriptor of", path))
    };
    let helper_slot =
        |r: Result<u32, nix::errno::Errno>, what| r.map_err(|e| MatrixError::Helper(what, e));
    let (mut b, slot) = match access {
        Access::SameFd | Access::DupFd => {
            let mut b = PeerProcess::spawn_inheriting(helper, inheritable()?)?;
            let inherited = helper_slot(
                b.slot(&PeerRequest::Inherited, None)?,
                "name its inherited descriptor",
            )?;
            let slot = if access == Access::DupFd {
                helper_slot(
                    b.slot(&PeerRequest::Dup { slot: inherited }, None)?,
                    "dup its inherited descriptor",
                )?
            } else {
                inherited
            };
            (b, slot)
        }
        Access::TwoFds => super::helper_opening(helper, path)?,
        Access::PassedFd => {
            let mut b = PeerProcess::spawn(helper)?;
            let slot = helper_slot(
                b.slot(&PeerRequest::Adopt, Some(a.as_fd()))?,
                "receive the descriptor",
            )?;
            (b, slot)
        }
    };
    lock_a(lock, a)?;
    Ok(b.act(&PeerRequest::Lock {
        slot,
        family: lock,
        mode: LockMode::Exclusive,
        wait: false,
    })?)
}

/// Sends `fd` to ourselves over a socketpair with SCM_RIGHTS and returns what arrived: a new
/// descriptor for the same open file description, as the seed's receiving process gets.
fn pass_in_process(fd: impl AsFd) -> Result<OwnedFd, MatrixError> {
    let sys = |what| move |e| MatrixError::Sys(what, e);
    let (tx, rx) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("create a socketpair"))?;
    send_with_fds(&tx, b"fd", &[fd.as_fd()], None)
        .map_err(sys("send a descriptor over SCM_RIGHTS"))?;
    let mut buf = [0u8; 8];
    let mut control = vec![0u8; control_space(1)];
    let mut got = recv_with_fds(&rx, &mut buf, &mut control, MsgFlags::MSG_DONTWAIT)
        .map_err(sys("receive a descriptor over SCM_RIGHTS"))?;
    got.fds.pop().ok_or(MatrixError::Sys(
        "receive a descriptor over SCM_RIGHTS",
        nix::errno::Errno::EBADMSG,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The thread half needs no helper binary, so it runs here; the process half runs in the
    /// integration tests.
    #[test]
    fn threads_exclude_only_across_descriptions_and_never_with_posix_locks() {
        let dir = ScratchDir::create().unwrap();
        let nowhere = Path::new("/nonexistent/helper");
        for lock in LockFamily::ALL {
            for access in Access::ALL {
                let cell = measure(&dir, nowhere, lock, access, Concurrency::Threads).unwrap();
                let expected =
                    matches!(lock, LockFamily::Flock | LockFamily::Ofd) && access == Access::TwoFds;
                assert_eq!(cell.serialized, expected, "{cell:?}");
                assert_eq!(cell.errno.is_some(), expected, "{cell:?}");
            }
        }
    }

    #[test]
    fn a_passed_descriptor_is_a_new_number_for_the_same_description() {
        let f = memfd::MemfdOptions::default()
            .create("pass")
            .unwrap()
            .into_file();
        let passed = pass_in_process(&f).unwrap();
        assert_ne!(passed.as_raw_fd(), f.as_raw_fd());
        // Same description: a seek through one moves the other.
        use std::io::{Seek, Write};
        let mut g = File::from(passed);
        g.write_all(b"abc").unwrap();
        let mut f = f;
        assert_eq!(f.stream_position().unwrap(), 3);
    }
}
