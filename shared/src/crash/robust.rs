//! The robust mutex's cells: the process-shared robust mutex (glibc's protocol) where the variant
//! says it lives, driven through [`crate::sys::robust_mutex`] directly (the `robust-mutex` variant repairs `EOWNERDEAD` inside
//! its round loop, which would hide exactly what this experiment shows).
//!
//! The holder locks and dies. The kernel walks the dead thread's robust list (registered by
//! `sys::robust_list`, in the holder's private memory), finds the mutex's futex word holding its
//! TID, sets FUTEX_OWNER_DIED and wakes a waiter, which takes the lock and is told the owner died
//! (glibc's `EOWNERDEAD`). Then the two ways on:
//! - plain: the survivor unlocks without repair, as code that ignores the return value would;
//!   the mutex becomes `ENOTRECOVERABLE`, and the next lock attempt says so.
//! - survivable: the survivor repairs and marks it consistent (`pthread_mutex_consistent`); the
//!   next lock is clean.

use nix::errno::Errno;

use crate::sys::clock::monotonic_ns;
use crate::sys::robust_mutex::{Locked, MutexRoom, RobustMutex};

/// The holder: takes the mutex (free at the start). Keep the handle until the process dies: it
/// is what lets go if dropped.
pub(super) fn hold(room: &MutexRoom) -> Result<RobustMutex<'_>, Errno> {
    let mutex = RobustMutex::attach(room)?;
    mutex.lock()?;
    Ok(mutex)
}

/// What the survivor saw: when it got the lock, whether it was told of the death, and what a
/// second lock attempt found after it let go (with or without repair).
#[derive(Clone, Copy, Debug)]
pub(super) struct Survived {
    pub at_ns: u64,
    pub owner_died: bool,
    /// The errno of the lock attempt after the unlock, 0 if it succeeded.
    pub relock: i32,
}

/// The survivor: waits for the mutex with no bound (the driver kills it after the limit), then
/// lets go, repairing first if `repair`, and tries again.
pub(super) fn survive(room: &MutexRoom, repair: bool) -> Result<Survived, Errno> {
    let mutex = RobustMutex::attach(room)?;
    let locked = mutex.lock()?;
    let at_ns = monotonic_ns();
    let owner_died = locked == Locked::OwnerDied;
    if owner_died && repair {
        mutex.consistent()?;
    }
    mutex.unlock()?;
    let relock = match mutex.try_lock() {
        Ok(_) => {
            mutex.unlock()?;
            0
        }
        Err(e) => e as i32,
    };
    Ok(Survived {
        at_ns,
        owner_died,
        relock,
    })
}
