//! `ofd`: F_OFD_SETLKW on the whole file, each side through its **own** open file description
//! (the server reopens `/proc/self/fd/N` of the memfd it received). The locks now exclude, but
//! unlock only wakes the waiter: the releaser usually re-takes the lock before the woken waiter
//! runs, and the waiter finds it is still not its turn (a whoop).

use std::os::fd::OwnedFd;

use super::holder_death::{Description, HolderDeath};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, no_preparation};
use super::{Ctx, Opened, SetupError, file_lock};
use crate::locking::LockFamily;

pub(super) const SPEC: Spec = Spec {
    name: "ofd",
    family: Family::FileLocks,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath::plain(
        &[Description::Own, Description::Shared],
        file_lock::owned_by_description,
    ),
    whoops_in_storms: true,
    yardstick: file_lock::NO_YARDSTICK,
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Released,
        needs: "Linux ≥ 3.15 (OFD locks); a description of its own per process",
        from_async: "a blocking fcntl: spawn_blocking (no descriptor to poll)",
    },
};

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(file_lock::opened(ctx, LockFamily::Ofd))
}
