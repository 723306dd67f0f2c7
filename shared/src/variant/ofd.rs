//! `ofd`: F_OFD_SETLKW on the whole file, each side through its **own** open file description
//! (the server reopens `/proc/self/fd/N` of the memfd it received). The locks now exclude, but
//! unlock only wakes the waiter: the releaser usually re-takes the lock before the woken waiter
//! runs, and the waiter finds it is still not its turn (a whoop).

use crate::locking::LockFamily;

pub(super) const FAMILY: LockFamily = LockFamily::Ofd;
