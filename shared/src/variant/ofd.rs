//! `ofd`: F_OFD_SETLKW on the whole file, each side through its **own** open file description
//! (the server reopens `/proc/self/fd/N` of the memfd it received). The locks now exclude, but
//! unlock only wakes the waiter: the releaser usually re-takes the lock before the woken waiter
//! runs, and the waiter finds it is still not its turn (a whoop).

use std::os::fd::OwnedFd;

use super::spec::Spec;
use super::{Ctx, Opened, SetupError, file_lock};
use crate::locking::LockFamily;

pub(super) const SPEC: Spec = file_lock::whole_file(
    "ofd",
    open,
    file_lock::owned_by_description,
    "Linux ≥ 3.15 (OFD locks); a description of its own per process",
    "a blocking fcntl: spawn_blocking (no descriptor to poll)",
);

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(file_lock::opened(ctx, LockFamily::Ofd))
}
