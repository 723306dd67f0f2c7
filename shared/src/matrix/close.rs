//! The close pitfall: closing *any* descriptor of a file drops the process's POSIX locks on it.
//!
//! This process locks the file through one descriptor, then opens the same path again (an
//! unrelated descriptor that never locked anything, as a library reading the file would) and
//! closes it. A helper process, with its own open of the file, then asks for an exclusive lock
//! without waiting: granted means the lock is gone. POSIX record locks (`posix`, and `lockf`,
//! which is one) belong to the process and `close(2)` drops them all; `flock` and OFD locks
//! belong to the open file description and stay until its last descriptor closes.

use std::path::Path;

use serde::Serialize;

use super::scratch::{self, ScratchDir};
use super::{MatrixError, try_outcome};
use crate::locking::LockFamily;
use crate::peer::PeerRequest;
use crate::procinfo::{ProcLock, lock_file_id, proc_locks_for_id};
use crate::sys::locks::{LockMode, Wait};

/// The close experiment for one lock kind.
#[derive(Clone, Debug, Serialize)]
pub struct ClosePitfall {
    pub lock: LockFamily,
    /// `/proc/locks` while we hold the lock, before the unrelated close.
    pub proc_locks_before_close: Vec<ProcLock>,
    /// `/proc/locks` right after the unrelated descriptor was closed.
    pub proc_locks_after_close: Vec<ProcLock>,
    /// The other process's non-blocking exclusive request after the close: `null` granted.
    pub other_process_errno: Option<String>,
    /// The verdict: the close released our lock (the other process got it).
    pub released_by_unrelated_close: bool,
}

pub(super) fn measure_all(
    dir: &ScratchDir,
    helper: &Path,
) -> Result<Vec<ClosePitfall>, MatrixError> {
    LockFamily::ALL
        .into_iter()
        .map(|lock| measure(dir, helper, lock))
        .collect()
}

fn measure(dir: &ScratchDir, helper: &Path, lock: LockFamily) -> Result<ClosePitfall, MatrixError> {
    let (path, ours) = dir.fresh(&format!("close-{lock}"))?;
    let id = lock_file_id(&ours).ok_or(MatrixError::Sys(
        "fstat the experiment's file",
        nix::errno::Errno::EBADF,
    ))?;
    let (mut other, slot) = super::helper_opening(helper, &path)?;

    lock.lock(&ours, LockMode::Exclusive, Wait::NoWait)
        .map_err(|e| MatrixError::Sys("take the lock", e))?;
    let proc_locks_before_close = proc_locks_for_id(&id);
    drop(scratch::open(&path)?);
    let proc_locks_after_close = proc_locks_for_id(&id);

    let attempt = other.act(&PeerRequest::Lock {
        slot,
        family: lock,
        mode: LockMode::Exclusive,
        wait: false,
    })?;
    let other_process_errno = try_outcome(lock, "the other process's request", attempt)?;
    Ok(ClosePitfall {
        lock,
        proc_locks_before_close,
        proc_locks_after_close,
        released_by_unrelated_close: other_process_errno.is_none(),
        other_process_errno,
    })
}
