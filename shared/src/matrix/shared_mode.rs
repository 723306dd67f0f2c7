//! Shared mode: do two shared holders coexist?
//!
//! This process takes the kind's shared lock through its own open of the file; a helper process,
//! through its own open, asks for the same without waiting. `flock(LOCK_SH)`, `F_RDLCK` and
//! OFD `F_RDLCK` coexist: `/proc/locks` lists two `READ` holders. `lockf(3)` has no shared
//! command at all (`F_LOCK`/`F_TLOCK` are exclusive): the best either side can ask for is its one
//! mode, the kernel lists it as `WRITE`, and the second holder is refused.

use std::path::Path;

use serde::Serialize;

use super::scratch::ScratchDir;
use super::{MatrixError, try_outcome};
use crate::locking::LockFamily;
use crate::peer::PeerRequest;
use crate::procinfo::{ProcLock, proc_locks_for};
use crate::sys::locks::{LockMode, Wait};

/// The shared-mode experiment for one lock kind.
#[derive(Clone, Debug, Serialize)]
pub struct SharedMode {
    pub lock: LockFamily,
    /// What both holders asked for: `shared`, or `exclusive` for lockf, which has nothing else.
    pub mode: LockMode,
    /// The second holder's non-blocking request: `null` granted, else the errno.
    pub second_errno: Option<String>,
    /// The verdict: both hold the lock at once.
    pub coexist: bool,
    /// `/proc/locks` with both requests made.
    pub proc_locks: Vec<ProcLock>,
}

pub(super) fn measure_all(dir: &ScratchDir, helper: &Path) -> Result<Vec<SharedMode>, MatrixError> {
    LockFamily::ALL
        .into_iter()
        .map(|lock| measure(dir, helper, lock))
        .collect()
}

/// The most shared mode the kind offers.
pub fn most_shared_mode(lock: LockFamily) -> LockMode {
    match lock {
        LockFamily::Lockf => LockMode::Exclusive,
        _ => LockMode::Shared,
    }
}

fn measure(dir: &ScratchDir, helper: &Path, lock: LockFamily) -> Result<SharedMode, MatrixError> {
    let mode = most_shared_mode(lock);
    let (path, first) = dir.fresh(&format!("shared-{lock}"))?;
    let (mut second, slot) = super::helper_opening(helper, &path)?;
    lock.lock(&first, mode, Wait::NoWait)
        .map_err(|e| MatrixError::Sys("take the first lock", e))?;
    let attempt = second.act(&PeerRequest::Lock {
        slot,
        family: lock,
        mode,
        wait: false,
    })?;
    let second_errno = try_outcome(lock, "the second holder's request", attempt)?;
    Ok(SharedMode {
        lock,
        mode,
        coexist: second_errno.is_none(),
        second_errno,
        proc_locks: proc_locks_for(&first),
    })
}
