//! What the kernel shows for a live lock of each kind: its `/proc/locks` line and, if `lslocks`
//! is installed, `lslocks`' line.
//!
//! This process holds an exclusive lock of the kind on a fresh file while both are read. The
//! kernel names flock's locks `FLOCK` and POSIX ones (fcntl and lockf alike) `POSIX`, with this
//! process's pid; OFD locks are `OFDLCK` with pid -1, because they belong to an open file
//! description, not to any process.

use serde::Serialize;

use super::MatrixError;
use super::scratch::ScratchDir;
use crate::locking::LockFamily;
use crate::procinfo::{ProcLock, lslocks_for, proc_locks_for};
use crate::sys::locks::{LockMode, Wait};

/// The kernel's view of one live lock.
#[derive(Clone, Debug, Serialize)]
pub struct KernelView {
    pub lock: LockFamily,
    /// The type `/proc/locks` is documented to print for this kind.
    pub expected_kind: &'static str,
    /// `/proc/locks` for the file while we hold the lock.
    pub proc_locks: Vec<ProcLock>,
    /// `lslocks`' lines for the file (`COMMAND PID TYPE MODE M START END PATH INODE`, raw), or
    /// `null` if `lslocks` is not installed or failed.
    pub lslocks: Option<Vec<String>>,
}

pub(super) fn measure_all(dir: &ScratchDir) -> Result<Vec<KernelView>, MatrixError> {
    LockFamily::ALL
        .into_iter()
        .map(|lock| {
            let (_, file) = dir.fresh(&format!("view-{lock}"))?;
            lock.lock(&file, LockMode::Exclusive, Wait::NoWait)
                .map_err(|e| MatrixError::Sys("take the lock", e))?;
            Ok(KernelView {
                lock,
                expected_kind: lock.proc_locks_type(),
                proc_locks: proc_locks_for(&file),
                lslocks: lslocks_for(&file),
            })
        })
        .collect()
}
